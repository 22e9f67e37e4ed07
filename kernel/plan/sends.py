"""Every proactive message of the term, as typed sends: what it is, when, and about what.

A send carries the data its job needs (the theme's month, the session meeting, the task and
how many days before its deadline, the digest's day); its `ref` — the key of its outbox rows
and what `plan show` prints — is derived from that data and never parsed back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar

from kernel.plan.model import Occurrence, Plan, Weekly
from kernel.plan.schedule import _term_days, session_occurrences


@dataclass(frozen=True, slots=True)
class ThemeSend:
    """The month's theme, on its first school day."""

    kind: ClassVar[str] = "theme"
    at: datetime
    month: str  # "2023-03"

    @property
    def ref(self) -> str:
        return self.month


@dataclass(frozen=True, slots=True)
class SessionReminder:
    """A reminder before one meeting of a session."""

    kind: ClassVar[str] = "session_reminder"
    at: datetime
    occurrence: Occurrence

    @property
    def ref(self) -> str:
        return f"{self.occurrence.session}@{self.occurrence.starts_at.isoformat()}"


@dataclass(frozen=True, slots=True)
class DeadlineReminder:
    """A reminder `days_before` a task's deadline, to those who still owe it."""

    kind: ClassVar[str] = "deadline_reminder"
    at: datetime
    task: str  # the task's id
    days_before: int

    @property
    def ref(self) -> str:
        return f"{self.task}/{self.days_before}"


@dataclass(frozen=True, slots=True)
class SchoolDigestSend:
    """Every school's digest, to its groups."""

    kind: ClassVar[str] = "school_digest"
    at: datetime
    day: date

    @property
    def ref(self) -> str:
        return self.day.isoformat()


@dataclass(frozen=True, slots=True)
class DistrictDigestSend:
    """The district digest, to the district's groups."""

    kind: ClassVar[str] = "district_digest"
    at: datetime
    day: date

    @property
    def ref(self) -> str:
        return self.day.isoformat()


Send = ThemeSend | SessionReminder | DeadlineReminder | SchoolDigestSend | DistrictDigestSend
SEND_TYPES: tuple[type, ...] = (ThemeSend, SessionReminder, DeadlineReminder, SchoolDigestSend,
                                DistrictDigestSend)
SEND_KINDS: tuple[str, ...] = tuple(t.kind for t in SEND_TYPES)  # type: ignore[attr-defined]


def send_order(send: Send) -> tuple[datetime, str, str]:
    return send.at, send.kind, send.ref


def _deadline_reminders(plan: Plan) -> Iterable[Send]:
    """At each offset before a deadline; one that falls on a non-school day moves to the school
    day before it (the deadline itself never moves), and is sent once if two land together."""
    for task in plan.tasks:
        seen: set[datetime] = set()
        for offset in task.remind_before_days:
            day = task.due.astimezone(plan.tz).date() - timedelta(days=offset)
            clock = plan.remind_at if offset == 0 else task.due.astimezone(plan.tz).time()
            moved = plan.calendar.previous_school_day_on_or_before(day, since=plan.start)
            if moved is None:
                continue
            at = datetime.combine(moved, clock, tzinfo=plan.tz)
            if plan.starts_at <= at < task.due and at not in seen:
                seen.add(at)
                yield DeadlineReminder(at, task.id, offset)


def _digests(plan: Plan, weekly: Weekly | None, district: bool) -> Iterable[Send]:
    if weekly is None:
        return
    seen: set[datetime] = set()
    for day in _term_days(plan):
        if day.weekday() != weekly.weekday:
            continue
        moved = plan.calendar.next_school_day_on_or_after(day, until=plan.end)
        if moved is None:
            continue
        at = datetime.combine(moved, weekly.at, tzinfo=plan.tz)
        if at not in seen:
            seen.add(at)
            yield DistrictDigestSend(at, moved) if district else SchoolDigestSend(at, moved)


def _theme_sends(plan: Plan) -> Iterable[Send]:
    for theme in plan.themes:
        year, month = (int(part) for part in theme.month.split("-"))
        first = max(date(year, month, 1), plan.start)
        month_end = (date(year, month, 28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        day = plan.calendar.next_school_day_on_or_after(first, until=min(month_end, plan.end))
        if day is not None:
            yield ThemeSend(datetime.combine(day, plan.remind_at, tzinfo=plan.tz), theme.month)


def scheduled_sends(plan: Plan, occurrences: list[Occurrence] | None = None) -> list[Send]:
    """Every proactive message of the term, sorted by (at, kind, ref)."""
    reminders = {a.id: a.remind_before for a in plan.meetings}
    sends: list[Send] = [
        *_theme_sends(plan),
        *_deadline_reminders(plan),
        *_digests(plan, plan.school_digest, district=False),
        *_digests(plan, plan.district_digest, district=True),
    ]
    for o in session_occurrences(plan) if occurrences is None else occurrences:
        before = reminders.get(o.activity)
        if before is not None:
            sends.append(SessionReminder(o.starts_at - timedelta(minutes=before), o))
    return sorted((s for s in sends if plan.starts_at <= s.at < plan.ends_at), key=send_order)


def plan_show_json(plan: Plan) -> dict[str, list[dict[str, str]]]:
    """The `yanxiu plan show --json` object (SPEC §10)."""
    occurrences = session_occurrences(plan)
    return {
        "sessions": [
            {"name": o.session, "start": o.starts_at.isoformat(), "end": o.ends_at.isoformat()}
            for o in occurrences
        ],
        "sends": [
            {"at": s.at.isoformat(), "kind": s.kind, "ref": s.ref}
            for s in scheduled_sends(plan, occurrences)
        ],
    }
