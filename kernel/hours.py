"""学时 accounting: what sessions and tasks earn per the plan, capped by the term's requirement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kernel.records import PersonRecords, TermInfo


@dataclass(frozen=True, slots=True)
class TaskStatus:
    key: str
    kind: str
    title: str
    due: datetime
    state: str  # accepted | draft | flagged | missing | partial (photos)
    have: int  # 字数 or photo count
    need: int
    hours: float


@dataclass(frozen=True, slots=True)
class Progress:
    attended: int
    late: int
    held: int
    excused: int
    tasks: tuple[TaskStatus, ...]
    hours_earned: float
    hours_required: float


def task_done(status: TaskStatus) -> bool:
    return status.state in ("accepted", "flagged")


def progress_of(term: TermInfo, records: PersonRecords, now: datetime) -> Progress:
    plan = term.plan
    held = [i for i in term.occurrences if i.occurrence.starts_at <= now]
    attended = [i for i in term.occurrences if i.id in records.attended]
    excused = [i for i in held if i.id in records.excused and i.id not in records.attended]
    earned = sum(i.occurrence.hours for i in attended)
    tasks = []
    for spec in plan.tasks:
        tid = term.task_ids.get(spec.id)
        if spec.kind == "reflection":
            sub = records.submissions.get(tid) if tid else None
            state = "missing" if sub is None else ("flagged" if sub.flag and sub.state == "accepted" else sub.state)
            status = TaskStatus(spec.id, spec.kind, spec.title, spec.due, state, sub.chars if sub else 0,
                                spec.min_chars or 0, spec.hours)
        else:
            have = records.photos.get(tid, 0) if tid else 0
            need = spec.min_photos or 0
            state = "accepted" if have >= need else ("partial" if have else "missing")
            status = TaskStatus(spec.id, spec.kind, spec.title, spec.due, state, have, need, spec.hours)
        if task_done(status):
            earned += spec.hours
        tasks.append(status)
    return Progress(
        attended=len(attended), late=sum(1 for i in attended if records.attended[i.id]),
        held=len(held), excused=len(excused), tasks=tuple(tasks),
        hours_earned=min(earned, plan.required_hours), hours_required=plan.required_hours)
