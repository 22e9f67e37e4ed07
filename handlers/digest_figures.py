"""The figures a digest shows, assembled in Python from the set-wise rows of storage.queries.digest.

Per-member progress uses the same rules as 进度 (handlers/hours.py): the same task states,
the same 学时 (sessions attended + tasks done, capped at the term's requirement).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.plan import TaskSpec
from handlers.hours import Progress, TaskStatus, task_done
from storage.queries.digest import DigestRecords, MemberRow, SchoolRow, SubmissionRow
from storage.queries.directory import TermInfo

LEAVE_LINES = 10  # the most recent leaves a school digest lists
NEAR_DUPLICATE = "near_duplicate"


@dataclass(frozen=True, slots=True)
class Rate:
    done: int
    total: int

    @property
    def pct(self) -> int | None:
        """Whole percent, rounded down (100 only when complete); None when nothing was due."""
        return self.done * 100 // self.total if self.total else None

    @property
    def ratio(self) -> float | None:
        return self.done / self.total if self.total else None

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.done + other.done, self.total + other.total)


NO_RATE = Rate(0, 0)


@dataclass(frozen=True, slots=True)
class MemberProgress:
    member: MemberRow
    progress: Progress
    checkins_due: int  # held sessions not excused
    absent: int  # of those, not checked in

    @property
    def name(self) -> str:
        return self.member.name


@dataclass(frozen=True, slots=True)
class Short:
    """A member who has started a task but not finished it (draft 字数, photos short)."""

    name: str
    have: int
    need: int


@dataclass(frozen=True, slots=True)
class TaskSummary:
    key: str
    kind: str
    title: str
    due: datetime
    done: Rate
    short: tuple[Short, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FlagLine:
    name: str
    task: str
    similar_to: str | None
    similarity: int | None  # percent


@dataclass(frozen=True, slots=True)
class LeaveLine:
    name: str
    starts_at: datetime
    reason: str
    upcoming: bool


@dataclass(frozen=True, slots=True)
class SchoolDigest:
    code: str
    name: str
    term: str
    now: datetime
    tz: ZoneInfo
    members: tuple[MemberProgress, ...]
    held: int
    checkins: Rate
    late: int
    excused: int
    absentees: tuple[tuple[str, int], ...]
    tasks: tuple[TaskSummary, ...]
    reflections: Rate
    photos: Rate
    flags: tuple[FlagLine, ...]
    leaves: tuple[LeaveLine, ...]
    older_leaves: int  # listed leaves left out
    hours_required: float

    @property
    def overall(self) -> float | None:
        """The mean of the check-in, reflection and photo rates that apply (None if none does)."""
        ratios = [r.ratio for r in (self.checkins, self.reflections, self.photos) if r.total]
        return sum(r for r in ratios if r is not None) / len(ratios) if ratios else None

    @property
    def overall_pct(self) -> int | None:
        return None if self.overall is None else int(self.overall * 100 + 1e-9)

    @property
    def hours_avg(self) -> float:
        if not self.members:
            return 0.0
        return round(sum(m.progress.hours_earned for m in self.members) / len(self.members), 1)

    @property
    def hours_full(self) -> int:
        return sum(1 for m in self.members if m.progress.hours_earned >= self.hours_required)

    @property
    def hours_by_member(self) -> list[tuple[str, float]]:
        ranked = sorted(self.members, key=lambda m: m.progress.hours_earned)
        return [(m.name, m.progress.hours_earned) for m in ranked]


@dataclass(frozen=True, slots=True)
class DistrictDigest:
    term: str
    now: datetime
    tz: ZoneInfo
    schools: tuple[SchoolDigest, ...]  # falling behind first
    members: int
    checkins: Rate
    reflections: Rate
    photos: Rate
    hours_avg: float

    @property
    def overall_pct(self) -> int | None:
        ratios = [r.ratio for r in (self.checkins, self.reflections, self.photos) if r.total]
        return int(sum(r for r in ratios if r is not None) / len(ratios) * 100 + 1e-9) if ratios else None


def task_status(spec: TaskSpec, sub: SubmissionRow | None, photos: int) -> TaskStatus:
    """One member's state in one task, by the rules of handlers/hours.progress_of."""
    if spec.kind == "reflection":
        if sub is None:
            state = "missing"
        else:
            state = "flagged" if sub.flag and sub.state == "accepted" else sub.state
        return TaskStatus(spec.id, spec.kind, spec.title, spec.due, state, sub.chars if sub else 0,
                          spec.min_chars or 0, spec.hours)
    need = spec.min_photos or 0
    state = "accepted" if photos >= need else ("partial" if photos else "missing")
    return TaskStatus(spec.id, spec.kind, spec.title, spec.due, state, photos, need, spec.hours)


def member_progress(term: TermInfo, rec: DigestRecords, member: MemberRow, held: int,
                    excused: int) -> MemberProgress:
    plan = term.plan
    att = rec.attendance.get(member.id)
    attended, late, earned = (att.attended, att.late, att.hours) if att else (0, 0, 0.0)
    tasks = []
    for spec in plan.tasks:
        tid = term.task_ids.get(spec.id)
        sub = rec.submissions.get((member.id, tid)) if tid is not None else None
        status = task_status(spec, sub, rec.photos.get((member.id, tid), 0) if tid is not None else 0)
        if task_done(status):
            earned += spec.hours
        tasks.append(status)
    progress = Progress(attended=attended, late=late, held=held, excused=excused, tasks=tuple(tasks),
                        hours_earned=min(earned, plan.required_hours), hours_required=plan.required_hours)
    due = max(held - excused, 0)
    return MemberProgress(member, progress, due, max(due - attended, 0))


def _held_and_excused(term: TermInfo, rec: DigestRecords, now: datetime) -> tuple[int, dict[int, int]]:
    held = sum(1 for i in term.occurrences if i.occurrence.starts_at <= now)
    excused: dict[int, int] = defaultdict(int)
    for leave in rec.leaves:
        if leave.starts_at <= now and not leave.attended:
            excused[leave.person_id] += 1
    return held, excused


def _task_summary(spec: TaskSpec, members: list[MemberProgress], index: int) -> TaskSummary:
    short, missing, done = [], [], 0
    for m in members:
        status = m.progress.tasks[index]
        if task_done(status):
            done += 1
        elif status.state == "missing":
            missing.append(m.name)
        else:
            short.append(Short(m.name, status.have, status.need))
    return TaskSummary(spec.id, spec.kind, spec.title, spec.due, Rate(done, len(members)),
                       tuple(short), tuple(missing))


def _flags(term: TermInfo, rec: DigestRecords, members: list[MemberRow]) -> tuple[FlagLine, ...]:
    lines = []
    for spec in term.plan.tasks:
        tid = term.task_ids.get(spec.id)
        if spec.kind != "reflection" or tid is None:
            continue
        for m in members:
            sub = rec.submissions.get((m.id, tid))
            if sub is not None and sub.flag == NEAR_DUPLICATE:
                other = rec.names.get(sub.similar_to_person_id) if sub.similar_to_person_id else None
                score = int(sub.similarity * 100) if sub.similarity is not None else None
                lines.append(FlagLine(m.name, spec.title, other, score))
    return tuple(lines)


def _leaves(rec: DigestRecords, member_ids: set[int], now: datetime) -> tuple[list[LeaveLine], int]:
    lines = [LeaveLine(rec.names[leave.person_id], leave.starts_at, leave.reason, leave.starts_at > now)
             for leave in rec.leaves if leave.person_id in member_ids and not leave.attended]
    upcoming = [x for x in lines if x.upcoming]
    past = [x for x in lines if not x.upcoming]
    room = max(LEAVE_LINES - len(upcoming), 0)
    kept = past[-room:] if room else []
    return kept + upcoming, len(past) - len(kept)


def school_digests(term: TermInfo, rec: DigestRecords, now: datetime) -> list[SchoolDigest]:
    """One digest per school in `rec` (in school-code order)."""
    held, excused = _held_and_excused(term, rec, now)
    by_school: dict[int, list[MemberRow]] = defaultdict(list)
    for m in rec.members:
        by_school[m.school_id].append(m)
    return [_school_digest(term, rec, now, school, by_school.get(school.id, []), held, excused)
            for school in rec.schools]


def _school_digest(term: TermInfo, rec: DigestRecords, now: datetime, school: SchoolRow,
                   members: list[MemberRow], held: int, excused: dict[int, int]) -> SchoolDigest:
    plan = term.plan
    progress = [member_progress(term, rec, m, held, excused.get(m.id, 0)) for m in members]
    tasks = tuple(_task_summary(spec, progress, i) for i, spec in enumerate(plan.tasks))
    reflections = sum((t.done for t in tasks if t.kind == "reflection"), NO_RATE)
    photos = sum((t.done for t in tasks if t.kind == "photos"), NO_RATE)
    checkins = Rate(sum(min(p.progress.attended, p.checkins_due) for p in progress),
                    sum(p.checkins_due for p in progress))
    absentees = sorted(((p.name, p.absent) for p in progress if p.absent),
                       key=lambda pair: -pair[1])
    leaves, older = _leaves(rec, {m.id for m in members}, now)
    return SchoolDigest(
        code=school.code, name=school.name, term=plan.name, now=now, tz=plan.tz, members=tuple(progress),
        held=held, checkins=checkins, late=sum(p.progress.late for p in progress),
        excused=sum(p.progress.excused for p in progress), absentees=tuple(absentees), tasks=tasks,
        reflections=reflections, photos=photos, flags=_flags(term, rec, members), leaves=tuple(leaves),
        older_leaves=older, hours_required=plan.required_hours)


def district_digest(term: TermInfo, schools: list[SchoolDigest], now: datetime) -> DistrictDigest:
    """Every school's completion, the ones falling behind first (no figures yet → last)."""
    ranked = sorted(schools, key=lambda s: (s.overall is None, s.overall or 0.0, s.code))
    members = sum(len(s.members) for s in schools)
    hours = sum(m.progress.hours_earned for s in schools for m in s.members)
    return DistrictDigest(
        term=term.plan.name, now=now, tz=term.plan.tz, schools=tuple(ranked), members=members,
        checkins=sum((s.checkins for s in schools), NO_RATE),
        reflections=sum((s.reflections for s in schools), NO_RATE),
        photos=sum((s.photos for s in schools), NO_RATE),
        hours_avg=round(hours / members, 1) if members else 0.0)
