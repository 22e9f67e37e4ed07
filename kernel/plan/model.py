"""The term plan as the rest of the bot reads it: validated specs and what they imply.

A `Plan` is built only by kernel.plan.reading (which names the exact key of any problem);
`Occurrence` is one meeting of a session, computed by kernel.plan.schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kernel.calendar import SchoolCalendar

TASK_KINDS = ("reflection", "photos")


class PlanError(Exception):
    """A plan that cannot be used; `key` names where, e.g. "task[1].due" or "term.timezone"."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ThemeSpec:
    month: str  # "YYYY-MM"
    title: str
    form: str | None = None  # 体现形式


@dataclass(frozen=True, slots=True)
class SessionSpec:
    name: str
    weekdays: tuple[int, ...]  # 0 = Monday
    start: time
    minutes: int = 40
    checkin_opens_before: int = 10
    checkin_closes_after: int = 20
    hours: float = 1.0
    remind_before: int | None = None  # minutes


@dataclass(frozen=True, slots=True)
class TaskSpec:
    id: str
    kind: str  # "reflection" | "photos"
    title: str
    due: datetime  # aware, in the term's timezone
    hours: float = 0.0
    min_chars: int | None = None
    min_photos: int | None = None
    remind_before_days: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Weekly:
    weekday: int  # 0 = Monday
    at: time


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated term plan. `tz` and `calendar` are derived from the other fields."""

    name: str
    start: date
    end: date
    timezone: str = "Asia/Shanghai"
    required_hours: float = 36.0
    count_punctuation: bool = False
    non_school_dates: tuple[date, ...] = ()
    extra_school_dates: tuple[date, ...] = ()
    remind_at: time = time(8, 0)
    missed_grace_minutes: int = 120
    themes: tuple[ThemeSpec, ...] = ()
    sessions: tuple[SessionSpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    school_digest: Weekly | None = None
    district_digest: Weekly | None = None
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    calendar: SchoolCalendar = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", ZoneInfo(self.timezone))
        calendar = SchoolCalendar(self.non_school_dates, self.extra_school_dates)
        object.__setattr__(self, "calendar", calendar)

    @property
    def starts_at(self) -> datetime:
        """Midnight opening the term's first day."""
        return datetime.combine(self.start, time(), tzinfo=self.tz)

    @property
    def ends_at(self) -> datetime:
        """Midnight closing the term's last day (exclusive)."""
        return datetime.combine(self.end + timedelta(days=1), time(), tzinfo=self.tz)

    def task(self, task_id: str) -> TaskSpec | None:
        return next((t for t in self.tasks if t.id == task_id), None)


@dataclass(frozen=True, slots=True)
class Occurrence:
    session: str
    starts_at: datetime
    ends_at: datetime
    opens_at: datetime  # check-in window [opens_at, closes_at)
    closes_at: datetime
    hours: float
