"""绑定: a lead or the district admin binds the group they are typing in to a school.

`绑定 全区` (or 区, 全县, 县) by a district admin makes it a district staff group: bound with no
school, it receives the district digest (see bot.sends.recipients).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Reply
from handlers.context import Context
from storage.queries.groups import bind_group

DISTRICT_WORDS = frozenset({"全区", "区", "区级", "全县", "县", "县级"})


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
    if wanted in DISTRICT_WORDS:
        return await bind_district(ctx, session)
    school = ctx.directory.find_school(wanted)
    if school is None:
        return Reply("bind_unknown_school", {"wanted": wanted, "schools": ctx.directory.schools()[:10]})
    if ctx.person.role == "school_lead" and school.id != ctx.person.school_id:
        return Reply("bind_not_your_school", {"school": school})
    await bind_group(session, platform=ctx.msg.platform, conversation_id=ctx.msg.conversation_id,
                     school_id=school.id, now=ctx.now)
    ctx.after_commit.append(ctx.directory.load)
    return Reply("bind_ok", {"school": school, "previous": ctx.group.school_id if ctx.group else None})


async def bind_district(ctx: Context, session: AsyncSession) -> Reply:
    """A district admin's 绑定 全区: the group becomes a district group (no school)."""
    assert ctx.person is not None
    if ctx.person.role != "district_admin":
        return Reply("bind_district_not_allowed")
    await bind_group(session, platform=ctx.msg.platform, conversation_id=ctx.msg.conversation_id,
                     school_id=None, now=ctx.now)  # type: ignore[arg-type]  # NULL = district
    ctx.after_commit.append(ctx.directory.load)
    previous = ctx.directory.school(ctx.group.school_id) if ctx.group else None
    return Reply("bind_district_ok", {"previous": previous})
