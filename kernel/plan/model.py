"""The term plan as the rest of the bot reads it: validated specs and what they imply.

A `Plan` is built only by kernel.plan.reading (which names the exact key of any problem);
`Occurrence` is one meeting of an activity, computed by kernel.plan.schedule. The plan's
second edition (docs/plan-format.md) is the model; a first-edition `[[session]]` is read as
an activity that meets every week, each day on its own (`attend = "each"`), for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kernel.calendar import SchoolCalendar

TASK_KINDS = ("reflection", "photos", "file")
EVERY = ("week", "2 weeks", "month", "once")
ATTEND = ("one", "each")
NTH = ("first", "second", "third", "fourth", "last")
BY = ("teacher", "school", "subject")


class PlanError(Exception):
    """A plan that cannot be used; `key` names where, e.g. "task[1].due" or "term.timezone"."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whom something is for: each key present narrows (AND); values in a key are alternatives
    (OR). Empty: everyone on a school's roster."""

    schools: tuple[str, ...] = ()  # school codes
    stages: tuple[str, ...] = ()  # 学段
    subjects: tuple[str, ...] = ()  # 学科
    townships: tuple[str, ...] = ()  # the school's 乡镇

    @property
    def everyone(self) -> bool:
        return not (self.schools or self.stages or self.subjects or self.townships)

    def admits(self, *, school: str | None, stage: str | None, subject: str | None,
               township: str | None) -> bool:
        """Whether someone with these roster values is in scope (an empty value matches none)."""
        return ((not self.schools or school in self.schools)
                and (not self.stages or stage in self.stages)
                and (not self.subjects or subject in self.subjects)
                and (not self.townships or township in self.townships))

    def disjoint(self, other: Scope) -> bool:
        """No one can be in both: a key present in both shares no value."""
        return any(mine and theirs and not set(mine) & set(theirs) for mine, theirs in (
            (self.schools, other.schools), (self.stages, other.stages),
            (self.subjects, other.subjects), (self.townships, other.townships)))

    def narrowed(self, other: Scope) -> Scope:
        """Someone in both scopes: each key the intersection where both have it."""
        def both(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(v for v in a if v in b) if a and b else (a or b)
        return Scope(both(self.schools, other.schools), both(self.stages, other.stages),
                     both(self.subjects, other.subjects), both(self.townships, other.townships))


EVERYONE = Scope()


@dataclass(frozen=True, slots=True)
class ThemeSpec:
    month: str  # "YYYY-MM"
    title: str
    form: str | None = None  # 体现形式
    schools: tuple[str, ...] = ()  # 一校一案: replaces the district's theme for these schools


@dataclass(frozen=True, slots=True)
class ActivitySpec:
    """Anything teachers take part in. With `start` it is a meeting (签到 in its window); without,
    a period (推门听课 3月1日—4月30日) whose evidence is the tasks that point to it."""

    id: str
    name: str
    type: str | None = None  # a label for digests, exports and the 签到簿
    every: str = "week"  # week | 2 weeks | month | once
    weekdays: tuple[int, ...] = ()  # 0 = Monday
    dates: tuple[date, ...] = ()  # every = "once"
    nth: str = "first"  # every = "month": which of the month's weekdays
    attend: str = "each"  # one: the days of a cycle are alternatives; each: every day counts
    first: date | None = None  # `from`: a meeting's first possible day; a period's first day
    last: date | None = None  # `to`
    start: time | None = None  # None: a period
    minutes: int = 40
    checkin_opens_before: int = 10
    checkin_closes_after: int = 20
    hours: float = 1.0
    category: str | None = None  # the 学时 category its hours count in
    remind_before: int | None = None  # minutes
    scope: Scope = EVERYONE
    on_extra_days: bool = False  # also meets on every extra school date (a first-edition session)

    @property
    def is_meeting(self) -> bool:
        return self.start is not None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    id: str  # a recurring task's occurrence: "<series>@<due date>"
    kind: str  # reflection | photos | file
    title: str
    due: datetime  # aware, in the term's timezone
    hours: float = 0.0
    min_chars: int | None = None
    min_photos: int | None = None
    remind_before_days: tuple[int, ...] = ()
    min_files: int | None = None
    accept: tuple[str, ...] = ()  # file extensions taken (lower case, no dot); empty: any
    activity: str | None = None  # the activity this is evidence of
    by: str = "teacher"  # teacher | school (one per school, by a lead) | subject (per school and subject)
    category: str | None = None
    scope: Scope = EVERYONE  # its own `for` (narrowed by its activity's when it has one)
    series: str = ""  # the task's id in the plan (a recurring task's occurrences share it)
    opens: datetime | None = None  # a recurring occurrence takes submissions after this

    @property
    def need(self) -> int:
        """How much makes it done: 字数, photos or files."""
        return (self.min_chars if self.kind == "reflection" else
                self.min_photos if self.kind == "photos" else self.min_files) or 0

    @property
    def per_teacher(self) -> bool:
        return self.by == "teacher"

    def takes(self, extension: str) -> bool:
        """A file task takes this kind of file (any, when `accept` is empty)."""
        return not self.accept or extension.lower().lstrip(".") in self.accept


@dataclass(frozen=True, slots=True)
class Weekly:
    weekday: int  # 0 = Monday
    at: time


@dataclass(frozen=True, slots=True)
class Assessment:
    """考评, out of 100: what each part weighs and the pass mark."""

    pass_mark: float
    attendance: float = 0.0
    tasks: float = 0.0
    lead: float = 0.0  # the school lead's own mark (评分)
    pass_hours: float | None = None  # 学时 reported for a pass, whatever the per-item sum


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
    activities: tuple[ActivitySpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    school_digest: Weekly | None = None
    district_digest: Weekly | None = None
    year_required: float | None = None  # the school year's 学时, over its terms
    categories: tuple[tuple[str, float], ...] = ()  # (学时 category, its minimum this term)
    assessment: Assessment | None = None
    edition: int = 1  # 1: [[session]]; 2: [[activity]]
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

    @property
    def meetings(self) -> tuple[ActivitySpec, ...]:
        """The activities people check in to."""
        return tuple(a for a in self.activities if a.is_meeting)

    @property
    def sessions(self) -> tuple[ActivitySpec, ...]:
        """The first edition's name for the meetings."""
        return self.meetings

    def task(self, task_id: str) -> TaskSpec | None:
        return next((t for t in self.tasks if t.id == task_id), None)

    def activity(self, activity_id: str | None) -> ActivitySpec | None:
        return next((a for a in self.activities if a.id == activity_id), None)

    def task_scope(self, task: TaskSpec) -> Scope:
        """Whom a task is for: its own `for`, within its activity's people."""
        activity = self.activity(task.activity)
        return task.scope.narrowed(activity.scope) if activity is not None else task.scope


@dataclass(frozen=True, slots=True)
class Occurrence:
    session: str  # the activity's name, as people see it
    starts_at: datetime
    ends_at: datetime
    opens_at: datetime  # check-in window [opens_at, closes_at)
    closes_at: datetime
    hours: float
    activity: str = ""  # the activity's id
    unit: str = ""  # what one attendance is: this meeting, or (attend = "one") its cycle
