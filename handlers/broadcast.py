"""广播 / 通知: a district admin's notice to every bound school group, or to the schools named first.

Two steps (SPEC §3): `广播 …` answers with the exact audience and text and keeps the request;
the same admin's `确认` within ten minutes queues it (handlers.confirm → `send_broadcast`),
`取消` drops it. A first word that looks like a school but matches none queues nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.lead import find_school
from handlers.pending import CONFIRM_MINUTES, ask
from handlers.verbs import verb
from kernel.messages import Reply
from kernel.records import GroupInfo, SchoolInfo
from storage.directory import Directory
from storage.queries.outbox import enqueue
from templates.render import render_text

_FIRST_WORD = re.compile(r"[\s:：]+")
_LIST_SEPARATORS = re.compile(r"[,，、]")
# what an operator types for a school: a code such as LX001, or a name such as 第九中学
_SCHOOL_CODE = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_-]{2,20}")
_SCHOOL_NAME = re.compile(r".+(学校|中学|小学|幼儿园|中心校|学院|完小|一贯制)")
SHOWN_SCHOOLS = 10


def looks_like_school(word: str) -> bool:
    return bool(_SCHOOL_CODE.fullmatch(word) or _SCHOOL_NAME.fullmatch(word))


@dataclass(frozen=True, slots=True)
class Audience:
    """What `广播 <first word> <text>` asks for: named schools (None = every school), the text,
    and the words that look like schools but match none."""

    schools: list[SchoolInfo] | None
    text: str
    not_found: list[str]


def split_audience(directory: Directory, args: str) -> Audience:
    """The first word is a list of schools when every item is one; when an item merely looks
    like a school (a code, a name ending in 学校/中学/小学…), nothing is sent; else it is text."""
    parts = _FIRST_WORD.split(args.strip(), maxsplit=1)
    items = [item.strip() for item in _LIST_SEPARATORS.split(parts[0]) if item.strip()]
    schools: dict[int, SchoolInfo] = {}
    missing: list[str] = []
    for item in items:
        school = find_school(directory, item)
        if school is None:
            missing.append(item)
        else:
            schools.setdefault(school.id, school)
    if items and not missing:
        return Audience(list(schools.values()), parts[1].strip() if len(parts) > 1 else "", [])
    lookalikes = [item for item in missing if looks_like_school(item)]
    return Audience(None, args.strip(), lookalikes)


def reachable_groups(directory: Directory, schools: list[SchoolInfo]) -> list[GroupInfo]:
    """The schools' bound groups that have a send route."""
    return [g for s in schools for g in directory.groups_of_school(s.id) if g.route_kind]


@verb("broadcast", "广播", "通知", who="district_admin", takes_args=True, help="help/broadcast.j2",
      order=110)
async def handle_broadcast(ctx: Context, session: AsyncSession) -> Reply:
    """Step one: show the audience and the text, keep the request for the admin's 确认."""
    assert ctx.person is not None
    directory = ctx.directory
    asked = split_audience(directory, ctx.command.args)
    if asked.not_found:
        return Reply("broadcast_unknown_school", {"missing": asked.not_found,
                                                  "schools": directory.schools()[:SHOWN_SCHOOLS]})
    if not asked.text:
        example = "，".join(s.code for s in directory.schools()[:2]) or "学校A，学校B"
        return Reply("broadcast_usage", {"example": example})
    schools = asked.schools if asked.schools is not None else directory.schools()
    groups = reachable_groups(directory, schools)
    if not groups:
        return Reply("broadcast_no_groups", {"schools": asked.schools or []})
    reached = [s for s in schools if any(g.school_id == s.id for g in groups)]
    unreachable = [s for s in schools if s not in reached]
    await ask(ctx, session, "broadcast", {
        "text": asked.text, "group_ids": [g.id for g in groups],
        "ref": f"broadcast:{ctx.msg.platform}:{ctx.msg.msg_id}"})
    return Reply("broadcast_confirm", {
        "groups": len(groups), "schools": reached, "shown": SHOWN_SCHOOLS, "text": asked.text,
        "unreachable": unreachable, "everyone": asked.schools is None, "minutes": CONFIRM_MINUTES})


async def send_broadcast(ctx: Context, session: AsyncSession, payload: dict[str, Any]) -> Reply:
    """Step two (确认): queue the notice for the groups the admin saw, once per request."""
    if not ctx.has_role("district_admin"):  # no longer an admin since asking
        return Reply("not_allowed", {"verb": "broadcast", "role": ctx.role, "needed": "district_admin"})
    assert ctx.person is not None
    groups = [g for g in (ctx.directory.group_by_id(int(i)) for i in payload["group_ids"])
              if g is not None and g.school_id is not None and g.route_kind]
    if not groups:
        return Reply("broadcast_no_groups", {"schools": []})
    post = render_text("chat/broadcast_post.j2", text=payload["text"], sender=ctx.person.name,
                       markdown=False)
    created = 0
    for group in groups:
        created += await enqueue(session, kind="broadcast", ref=str(payload["ref"]),
                                 group_id=group.id, text=post, now=ctx.now, title="通知")
    return Reply("broadcast_queued", {"groups": len(groups), "already": created == 0,
                                      "school_count": len({g.school_id for g in groups})})
