"""What each scheduled send says, per group: a table of builders keyed by send kind.

A builder gets a `SendContext` (a read-only session, the send, the term, the groups it
still has to reach) and answers one `Draft` per group that should get a message; a group
left without a draft gets nothing this time (recorded as skipped: nothing to send).
Other modules plug their own in with `register_builder(kind, fn)` — the digests do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kernel.outbound import Mention
from kernel.plan import Plan, Send, session_occurrences
from kernel.records import GroupInfo, TermInfo, mention_for
from storage.directory import Directory
from storage.queries.sched import people_owing
from templates.render import render_text

log = logging.getLogger(__name__)

DISTRICT_KINDS = frozenset({"district_digest"})  # sent to district groups; the rest to schools


@dataclass(frozen=True, slots=True)
class Draft:
    """One group's message for a scheduled send."""

    group_id: int
    text: str
    markdown: bool = False
    title: str = ""
    mentions: tuple[Mention, ...] = ()


@dataclass(frozen=True, slots=True)
class SendContext:
    session: AsyncSession  # for reading; the outbox rows are written after the builder returns
    send: Send
    plan: Plan
    term: TermInfo
    groups: tuple[GroupInfo, ...]  # the groups this send has still to reach
    directory: Directory
    now: datetime


Builder = Callable[[SendContext], Awaitable[list[Draft]]]
SEND_BUILDERS: dict[str, Builder] = {}


def register_builder(kind: str, fn: Builder) -> Builder | None:
    """Make `fn` build the messages of `kind`; returns the builder it replaced."""
    previous = SEND_BUILDERS.get(kind)
    SEND_BUILDERS[kind] = fn
    return previous


def is_district_group(group: GroupInfo) -> bool:
    """A group bound with no school (绑定 全区) belongs to the district staff."""
    return group.school_id is None


def recipients(kind: str, groups: Sequence[GroupInfo]) -> list[GroupInfo]:
    """The district digest goes to district groups; every other send to the schools' groups."""
    district = kind in DISTRICT_KINDS
    return [g for g in groups if is_district_group(g) == district]


# ---------------------------------------------------------------- theme announcement


def _month_of(value: datetime, plan: Plan) -> str:
    return value.astimezone(plan.tz).strftime("%Y-%m")


async def build_theme(ctx: SendContext) -> list[Draft]:
    """The month's theme, its form, the month's sessions and the tasks due in it."""
    theme = next((t for t in ctx.plan.themes if t.month == ctx.send.ref), None)
    if theme is None:
        return []
    sessions = [{"name": o.session, "starts_at": o.starts_at, "ends_at": o.ends_at}
                for o in session_occurrences(ctx.plan) if _month_of(o.starts_at, ctx.plan) == theme.month]
    tasks = [t for t in ctx.plan.tasks if _month_of(t.due, ctx.plan) == theme.month]
    text = render_text("sched/theme.j2", theme=theme, month_label=f"{int(theme.month[5:])}月",
                       sessions=sessions, tasks=tasks, tz=ctx.plan.tz)
    title = render_text("sched/title.j2", kind="theme", theme=theme)
    return [Draft(g.id, text, title=title) for g in ctx.groups]


# ---------------------------------------------------------------- session reminder


async def build_session_reminder(ctx: SendContext) -> list[Draft]:
    name, _, starts = ctx.send.ref.rpartition("@")
    occurrence = next((o for o in session_occurrences(ctx.plan)
                       if o.session == name and o.starts_at.isoformat() == starts), None)
    if occurrence is None:
        return []
    minutes = int((occurrence.ends_at - occurrence.starts_at).total_seconds() // 60)
    text = render_text("sched/session_reminder.j2", name=occurrence.session,
                       starts_at=occurrence.starts_at, opens_at=occurrence.opens_at,
                       closes_at=occurrence.closes_at, minutes=minutes, hours=occurrence.hours,
                       tz=ctx.plan.tz)
    title = render_text("sched/title.j2", kind="session_reminder")
    return [Draft(g.id, text, title=title) for g in ctx.groups]


# ---------------------------------------------------------------- deadline reminder


async def build_deadline_reminder(ctx: SendContext) -> list[Draft]:
    """Per school group: @-mentions only the school's members who still owe the task."""
    task_key, _, _offset = ctx.send.ref.rpartition("/")
    task = ctx.plan.task(task_key)
    task_id = ctx.term.task_ids.get(task_key)
    if task is None or task_id is None:
        return []
    school_ids = sorted({g.school_id for g in ctx.groups if g.school_id is not None})
    owing = await people_owing(ctx.session, task_id=task_id, kind=task.kind,
                               min_photos=task.min_photos, school_ids=school_ids)
    days_left = (task.due.astimezone(ctx.plan.tz).date() - ctx.send.at.astimezone(ctx.plan.tz).date()).days
    drafts = []
    title = render_text("sched/title.j2", kind="deadline_reminder")
    for group in ctx.groups:
        people = owing.get(group.school_id or -1, [])
        if not people:
            continue  # everyone in this school has done it: no reminder
        text = render_text("sched/deadline_reminder.j2", task=task, people=people,
                           days_left=days_left, tz=ctx.plan.tz)
        drafts.append(Draft(group.id, text, title=title,
                            mentions=tuple(mention_for(p, group.platform) for p in people)))
    return drafts


# ---------------------------------------------------------------- digests (handlers.digest)


async def build_school_digests(ctx: SendContext) -> list[Draft]:
    """Each school group's digest (all schools from one pass over the records)."""
    from handlers.digest import build_school_digests as school_texts

    texts = await school_texts(ctx.session, ctx.term, ctx.now)
    title = render_text("sched/title.j2", kind="school_digest")
    drafts = []
    for group in ctx.groups:
        school = ctx.directory.school(group.school_id)
        if school is not None and school.code in texts:
            drafts.append(Draft(group.id, texts[school.code], title=title))
    return drafts


async def build_district_digest(ctx: SendContext) -> list[Draft]:
    from handlers.digest import build_district_digest as district_text

    text = await district_text(ctx.session, ctx.term, ctx.now)
    title = render_text("sched/title.j2", kind="district_digest")
    return [Draft(g.id, text, title=title) for g in ctx.groups]


register_builder("theme", build_theme)
register_builder("session_reminder", build_session_reminder)
register_builder("deadline_reminder", build_deadline_reminder)
register_builder("school_digest", build_school_digests)
register_builder("district_digest", build_district_digest)
