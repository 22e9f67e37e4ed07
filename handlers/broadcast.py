"""广播 / 通知: a district admin's notice to every bound school group, or to the schools named first."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from bot.directory import Directory
from bot.messages import Reply
from bot.render import render_text
from handlers.context import Context
from handlers.lead import find_school, refused
from storage.queries.directory import SchoolInfo
from storage.queries.outbox import enqueue

_FIRST_WORD = re.compile(r"[\s:：]+")
_LIST_SEPARATORS = re.compile(r"[,，、]")


def split_audience(directory: Directory, args: str) -> tuple[list[SchoolInfo] | None, str]:
    """(named schools, text) when the first word is a list of schools, every item one; else (None, args)."""
    parts = _FIRST_WORD.split(args.strip(), maxsplit=1)
    items = [item.strip() for item in _LIST_SEPARATORS.split(parts[0]) if item.strip()]
    if not items:
        return None, args.strip()
    schools: dict[int, SchoolInfo] = {}
    for item in items:
        school = find_school(directory, item)
        if school is None:
            return None, args.strip()
        schools.setdefault(school.id, school)
    return list(schools.values()), parts[1].strip() if len(parts) > 1 else ""


def broadcast_ref(ctx: Context) -> str:
    """The message that asked for the broadcast identifies it: a redelivery sends nothing new."""
    return f"broadcast:{ctx.msg.platform}:{ctx.msg.msg_id}"


async def handle_broadcast(ctx: Context, session: AsyncSession) -> Reply:
    if (refusal := refused(ctx, "district_admin")) is not None:
        return refusal
    assert ctx.person is not None
    directory = ctx.directory
    named, text = split_audience(directory, ctx.command.args)
    if not text:
        example = "，".join(s.code for s in directory.schools()[:2]) or "学校A，学校B"
        return Reply("broadcast_usage", {"example": example})
    schools = named if named is not None else directory.schools()
    groups = [g for s in schools for g in directory.groups_of_school(s.id) if g.route_kind]
    reached = {g.school_id for g in groups}
    unreachable = [s for s in schools if s.id not in reached]
    if not groups:
        return Reply("broadcast_no_groups", {"schools": named or []})
    post = render_text("chat/broadcast_post.j2", text=text, sender=ctx.person.name, markdown=False)
    created = 0
    for group in groups:
        created += await enqueue(session, kind="broadcast", ref=broadcast_ref(ctx), group_id=group.id,
                                 text=post, now=ctx.now, title="通知")
    return Reply("broadcast_queued", {"groups": len(groups), "schools": named or [],
                                      "school_count": len(reached), "unreachable": unreachable,
                                      "already": created == 0})
