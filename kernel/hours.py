"""学时 accounting: what attendance and tasks earn per the plan, by category, capped by the
term's requirement — for one person (进度, the teacher's page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kernel.attendance import NOBODY, Profile, Units, activities_for, tasks_for
from kernel.plan import Plan, TaskSpec
from kernel.records import PersonRecords, TermInfo


@dataclass(frozen=True, slots=True)
class TaskStatus:
    key: str
    kind: str
    title: str
    due: datetime
    state: str  # accepted | draft | flagged | missing | partial (photos, files)
    have: int  # 字数, photos or files
    need: int
    hours: float
    category: str | None = None


@dataclass(frozen=True, slots=True)
class CategoryHours:
    name: str
    earned: float
    minimum: float

    @property
    def met(self) -> bool:
        return self.earned >= self.minimum


@dataclass(frozen=True, slots=True)
class Progress:
    attended: int
    late: int
    held: int
    excused: int
    tasks: tuple[TaskStatus, ...]
    hours_earned: float  # capped at the requirement
    hours_required: float
    categories: tuple[CategoryHours, ...] = ()  # the plan's categories, in its order
    hours_total: float = 0.0  # not capped
    waiting: int = 0  # check-ins at meetings not started yet: counted once they start


def task_done(status: TaskStatus) -> bool:
    return status.state in ("accepted", "flagged")


def count_status(spec: TaskSpec, have: int) -> TaskStatus:
    """A photos or file task by how many were handed in."""
    need = spec.need
    state = "accepted" if have >= need else ("partial" if have else "missing")
    return TaskStatus(spec.id, spec.kind, spec.title, spec.due, state, have, need, spec.hours, spec.category)


def categories_of(plan: Plan, earned: dict[str | None, float]) -> tuple[CategoryHours, ...]:
    return tuple(CategoryHours(name, round(earned.get(name, 0.0), 2), minimum)
                 for name, minimum in plan.categories)


def progress_of(term: TermInfo, records: PersonRecords, now: datetime,
                profile: Profile = NOBODY) -> Progress:
    """One person's progress: the meetings of their activities, their own tasks, their 学时."""
    plan = term.plan
    units = Units(plan, term.occurrences, now)
    activities = activities_for(plan, profile)
    tally = units.tally(records.attended, records.excused, activities)
    earned = units.hours(tally.by_activity)
    tasks = []
    for spec in tasks_for(plan, profile):
        tid = term.task_ids.get(spec.id)
        if spec.kind == "reflection":
            sub = records.submissions.get(tid) if tid else None
            state = "missing" if sub is None else ("flagged" if sub.flag and sub.state == "accepted" else sub.state)
            status = TaskStatus(spec.id, spec.kind, spec.title, spec.due, state, sub.chars if sub else 0,
                                spec.min_chars or 0, spec.hours, spec.category)
        else:
            found = records.photos if spec.kind == "photos" else records.files
            status = count_status(spec, found.get(tid, 0) if tid else 0)
        if task_done(status):
            earned[spec.category] = earned.get(spec.category, 0.0) + spec.hours
        tasks.append(status)
    total = sum(earned.values())
    return Progress(
        attended=tally.attended, late=tally.late, held=tally.held, excused=tally.excused,
        tasks=tuple(tasks), hours_earned=min(total, plan.required_hours),
        hours_required=plan.required_hours, categories=categories_of(plan, earned),
        hours_total=round(total, 2), waiting=tally.waiting)
