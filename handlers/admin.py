"""绑定: a lead or the district admin binds the group they are typing in to a school.

`绑定 全区` (or 区, 全县, 县) by a district admin makes it a district staff group: bound with no
school, it receives the district digest (see bot.sends.recipients).

A group already bound is never taken over by a lead (SPEC §3): the reply names the school it
belongs to and who can change it. The district admin can re-bind it, in two steps: the
request is kept and carried out by their `确认` (handlers.confirm → `rebind`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.pending import CONFIRM_MINUTES, ask
from handlers.verbs import verb
from kernel.messages import Reply
from kernel.records import SchoolInfo
from storage.queries.groups import bind_group

DISTRICT_WORDS = frozenset({"全区", "区", "区级", "全县", "县", "县级"})


@verb("bind", "绑定", who="school_lead", takes_args=True, help="help/bind.j2", order=60)
async def handle_bind(ctx: Context, session: AsyncSession) -> Reply:
    assert ctx.person is not None
    if not ctx.msg.is_group:
        return Reply("bind_needs_group")
    wanted = ctx.command.args.strip()
    if not wanted:
        own = ctx.directory.school(ctx.person.school_id)
        if ctx.person.role == "school_lead" and own is not None:
            wanted = own.code
        else:
            return Reply("bind_usage", {"schools": ctx.directory.schools()[:10],
                                        "district": ctx.person.role == "district_admin"})
    school: SchoolInfo | None = None
    if wanted in DISTRICT_WORDS:
        if ctx.person.role != "district_admin":
            return Reply("bind_district_not_allowed")
    else:
        school = ctx.directory.find_school(wanted)
        if school is None:
            return Reply("bind_unknown_school", {"wanted": wanted, "schools": ctx.directory.schools()[:10]})
        if ctx.person.role == "school_lead" and school.id != ctx.person.school_id:
            return Reply("bind_not_your_school", {"school": school})
    target = school.id if school is not None else None
    current = ctx.group  # a group the bot knows is bound: to a school, or to the district
    if current is not None and current.school_id == target:
        return Reply("bind_already", {"school": school})
    if current is not None:
        owner = ctx.directory.school(current.school_id)
        if ctx.person.role != "district_admin":
            return Reply("bind_taken", {"owner": owner})
        await ask(ctx, session, "rebind", {"platform": ctx.msg.platform,
                                           "conversation_id": ctx.msg.conversation_id,
                                           "school_id": target, "route": ctx.chat_route})
        return Reply("bind_confirm", {"owner": owner, "school": school, "minutes": CONFIRM_MINUTES})
    return await _bind(ctx, session, ctx.msg.platform, ctx.msg.conversation_id, school, None,
                       ctx.chat_route)


async def rebind(ctx: Context, session: AsyncSession, payload: dict[str, Any]) -> Reply:
    """The district admin's 确认 of a re-bind they asked for: carried out as asked."""
    assert ctx.person is not None
    if ctx.person.role != "district_admin":
        return Reply("bind_taken", {"owner": None})  # no longer an admin since asking
    school_id = payload.get("school_id")
    school = ctx.directory.school(int(school_id)) if school_id is not None else None
    if school_id is not None and school is None:
        return Reply("bind_unknown_school", {"wanted": str(school_id), "schools": ctx.directory.schools()[:10]})
    platform, conversation = str(payload["platform"]), str(payload["conversation_id"])
    group = await ctx.directory.group(platform, conversation)
    previous = ctx.directory.school(group.school_id) if group is not None else None
    route = payload.get("route")
    return await _bind(ctx, session, platform, conversation, school, previous,
                       str(route) if route else None)


async def _bind(ctx: Context, session: AsyncSession, platform: str, conversation_id: str,
                school: SchoolInfo | None, previous: SchoolInfo | None, route: str | None) -> Reply:
    """Store the binding (school None = the district's group) and refresh the cache after commit.
    `route`: the send route the platform gives a group bound in chat (a stored one is kept)."""
    await bind_group(session, platform=platform, conversation_id=conversation_id,
                     school_id=school.id if school is not None else None, now=ctx.now,
                     route_kind=route)
    ctx.after_commit.append(ctx.directory.load)
    if school is None:
        return Reply("bind_district_ok", {"previous": previous})
    return Reply("bind_ok", {"school": school, "previous": previous})
