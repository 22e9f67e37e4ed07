"""Lead and district verbs: 本校进度 (学校进度 <code>), 催交, 全区进度.

Each verb's declaration gates its role (handlers/verbs.py): called from anywhere, a sender
below it is refused before any query runs.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.digest import district_figures, school_digest_figures
from handlers.verbs import verb
from kernel.figures import MemberProgress
from kernel.hours import TaskStatus, task_done
from kernel.messages import Reply
from kernel.outbound import Mention
from kernel.records import SchoolInfo, mention_for
from storage.directory import Directory
from storage.queries.outbox import enqueue
from templates.render import render_text

_NOT_AN_ARGUMENT = " \t\n,.!:;~。，！：；、…?？"


def find_school(directory: Directory, text: str) -> SchoolInfo | None:
    """A school by code or name as typed on a phone (a code in lower case too)."""
    text = unicodedata.normalize("NFKC", text).strip()
    return directory.find_school(text) or (directory.find_school(text.upper()) if text else None)


def lead_school(ctx: Context) -> SchoolInfo | Reply:
    """What 本校进度 and 催交 both check first (the verb's gate checked the role): a loaded
    plan, which school, and that this chat may see that school's teachers' names."""
    if ctx.term is None:
        return Reply("no_plan")
    school = school_in_question(ctx)
    if isinstance(school, Reply) or may_show_names(ctx, school):
        return school
    group = ctx.group
    return Reply("lead_wrong_group", {
        "school": school, "verb": ctx.command.verb, "unbound": group is None,
        "owner": ctx.directory.school(group.school_id) if group is not None else None})


def may_show_names(ctx: Context, school: SchoolInfo) -> bool:
    """A school's teachers' names go to a 1:1 chat, that school's own group, or (for the
    district admin) the district's group — never into another school's or an unbound group."""
    if not ctx.msg.is_group:
        return True
    group = ctx.group
    if group is None:
        return False
    if group.school_id is None:
        return ctx.role == "district_admin"
    return group.school_id == school.id


def school_in_question(ctx: Context) -> SchoolInfo | Reply:
    """The school a lead or admin means: a lead's own; an admin's named one, else the group's."""
    assert ctx.person is not None
    wanted = ctx.command.args.strip(_NOT_AN_ARGUMENT)
    named = find_school(ctx.directory, wanted) if wanted else None
    if wanted and named is None:
        return Reply("lead_unknown_school", {"wanted": wanted, "schools": ctx.directory.schools()[:10]})
    if ctx.person.role == "school_lead":
        own = ctx.directory.school(ctx.person.school_id)
        if own is None:
            return Reply("lead_no_school")
        if named is not None and named.id != own.id:
            return Reply("lead_not_your_school", {"school": named, "own": own})
        return own
    if named is not None:
        return named
    if ctx.group is not None and ctx.school is not None:
        return ctx.school
    return Reply("lead_which_school", {"verb": ctx.command.verb, "schools": ctx.directory.schools()[:10]})


@verb("school_progress", "本校进度", "学校进度", who="school_lead", writes=False, optional_arg=True,
      help="help/school_progress.j2", order=70)
async def handle_school_progress(ctx: Context, session: AsyncSession) -> Reply:
    """本校进度: the school digest now, as the reply."""
    school = lead_school(ctx)
    if isinstance(school, Reply):
        return school
    assert ctx.term is not None
    digest = await school_digest_figures(session, ctx.term, school, ctx.now)
    return Reply("school_digest", {"d": digest, "title": render_text("sched/title.j2", kind="school_digest")})


@verb("district_progress", "全区进度", "区进度", who="district_admin", writes=False,
      help="help/district_progress.j2", order=100)
async def handle_district_progress(ctx: Context, session: AsyncSession) -> Reply:
    """全区进度: the district digest now, as the reply."""
    if ctx.term is None:
        return Reply("no_plan")
    digest = await district_figures(session, ctx.term, ctx.now)
    return Reply("district_digest", {"d": digest, "title": render_text("sched/title.j2", kind="district_digest")})


@dataclass(frozen=True, slots=True)
class Owing:
    """A member and the tasks they owe now."""

    member: Any  # a members row (storage.queries.digest)
    tasks: tuple[TaskStatus, ...]


def owed_now(status: TaskStatus, now: datetime, tz: ZoneInfo) -> bool:
    """Unfinished and still useful to remind: not yet due, or due today."""
    if task_done(status) or status.state == "none":  # done, or not theirs to do
        return False
    return status.due >= now or status.due.astimezone(tz).date() == now.astimezone(tz).date()


def who_owes(members: tuple[MemberProgress, ...], now: datetime, tz: ZoneInfo) -> list[Owing]:
    found = []
    for m in members:
        tasks = tuple(t for t in m.progress.tasks if owed_now(t, now, tz))
        if tasks:
            found.append(Owing(m.member, tasks))
    return found


def mention_of(ctx: Context, member: Any, platform: str) -> Mention:
    """A member @-mentioned by their id on the group's platform (by name when unknown)."""
    person = ctx.directory.person_by_id(member.id)
    if person is None:
        return Mention(name=member.name, mobile=member.mobile)
    return mention_for(person, platform)


def nudge_ref(school: SchoolInfo, now: datetime) -> str:
    """One reminder per school per minute, however often the message is retried."""
    return f"nudge:{school.code}:{now.astimezone(UTC):%Y%m%dT%H%M}"


@verb("nudge", "催交", "提醒", who="school_lead", help="help/nudge.j2", order=80)
async def handle_nudge(ctx: Context, session: AsyncSession) -> Reply:
    """催交: one message to the school's group(s) @-mentioning each member who owes something now."""
    school = lead_school(ctx)
    if isinstance(school, Reply):
        return school
    assert ctx.term is not None
    tz = ctx.term.plan.tz
    digest = await school_digest_figures(session, ctx.term, school, ctx.now)
    owing = who_owes(digest.members, ctx.now, tz)
    if not owing:
        return Reply("nudge_nobody", {"school": school})
    groups = [g for g in ctx.directory.groups_of_school(school.id) if g.route_kind]
    if not groups:
        return Reply("nudge_no_group", {"school": school})
    owed_keys = {t.key for o in owing for t in o.tasks}
    tasks = [t for t in ctx.term.plan.tasks if t.id in owed_keys]
    text = render_text("chat/nudge_post.j2", school=school, owing=owing, tasks=tasks, tz=tz,
                       markdown=False)
    ref = nudge_ref(school, ctx.now)
    created = 0
    for group in groups:
        mentions = [mention_of(ctx, o.member, group.platform) for o in owing]
        created += await enqueue(session, kind="nudge", ref=ref, group_id=group.id, text=text,
                                 now=ctx.now, title="研修提醒", mentions=mentions)
    return Reply("nudge_queued", {"school": school, "count": len(owing), "groups": len(groups),
                                  "already": created == 0, "names": [o.member.name for o in owing]})
