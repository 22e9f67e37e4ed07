"""The figures a digest shows, assembled in Python from the set-wise rows of storage.queries.digest.

Per-member progress uses the same rules as 进度 (kernel/hours.py): the same task states,
the same 学时 (sessions attended + tasks done, capped at the term's requirement).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from kernel.hours import Progress, TaskStatus
from kernel.plan import TaskSpec
from kernel.records import DigestRecords, LeaveRow, MemberRow, SchoolRow, SubmissionRow, TermInfo

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
    name: str
    progress: Progress
    checkins_due: int  # held sessions not excused
    absent: int  # of those, not checked in


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
    hours_avg: float
    hours_full: int  # members who reached the requirement
    hours_short: tuple[tuple[str, float], ...]  # members below the requirement, fewest first
    overall: float | None  # the mean of the check-in, reflection and photo rates that apply

    @property
    def overall_pct(self) -> int | None:
        return _pct(self.overall)


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
        return _pct(_overall(self.checkins, self.reflections, self.photos))


def _overall(*rates: Rate) -> float | None:
    ratios = [r.done / r.total for r in rates if r.total]
    return sum(ratios) / len(ratios) if ratios else None


def _pct(value: float | None) -> int | None:
    return None if value is None else int(value * 100 + 1e-9)


def reflection_status(spec: TaskSpec, state: str | None, flagged: bool, chars: int) -> TaskStatus:
    """One member's reflection by the rules of kernel/hours.progress_of (state None: nothing sent)."""
    shown = "missing" if state is None else ("flagged" if flagged and state == "accepted" else state)
    return TaskStatus(spec.id, spec.kind, spec.title, spec.due, shown, chars, spec.min_chars or 0, spec.hours)


def photos_status(spec: TaskSpec, photos: int) -> TaskStatus:
    need = spec.min_photos or 0
    state = "accepted" if photos >= need else ("partial" if photos else "missing")
    return TaskStatus(spec.id, spec.kind, spec.title, spec.due, state, photos, need, spec.hours)


_DONE = frozenset(("accepted", "flagged"))  # kernel/hours.task_done
_NOTHING: dict[int, Any] = {}


class _Assembler:
    """Per-member progress across a district; members in the same state share one TaskStatus."""

    def __init__(self, term: TermInfo, rec: DigestRecords, now: datetime) -> None:
        self.term, self.rec, self.now = term, rec, now
        self.plan = term.plan
        self.held = sum(1 for i in term.occurrences if i.occurrence.starts_at <= now)
        self.starts = {i.id: i.occurrence.starts_at for i in term.occurrences}
        in_time_order = sorted(term.occurrences, key=lambda i: i.occurrence.starts_at)
        self.rank = {info.id: n for n, info in enumerate(in_time_order)}
        self.excused: dict[int, int] = defaultdict(int)
        for leave in rec.leaves:
            starts = self.starts.get(leave.occurrence_id)
            if starts is not None and starts <= now and not leave.attended:
                self.excused[leave.person_id] += 1
        self.tasks = []
        for spec in self.plan.tasks:
            tid = term.task_ids.get(spec.id)
            found = (rec.submissions if spec.kind == "reflection" else rec.photos).get(tid, _NOTHING) \
                if tid is not None else _NOTHING
            self.tasks.append((spec, spec.kind == "reflection", found))
        # per task: each person's status (people without a record share the default), and per
        # person the hours their finished tasks earn — one pass over the rows, not per member
        self.columns: list[tuple[dict[int, TaskStatus], TaskStatus]] = []
        self.task_hours: dict[int, float] = defaultdict(float)
        self.flagged: dict[int, list[tuple[str, SubmissionRow]]] = defaultdict(list)
        for spec, is_reflection, found in self.tasks:
            self.columns.append(self._column(spec, is_reflection, found))

    def _column(self, spec: TaskSpec, is_reflection: bool,
                found: dict[int, Any]) -> tuple[dict[int, TaskStatus], TaskStatus]:
        shared: dict[tuple[str | None, bool, int], TaskStatus] = {}
        column: dict[int, TaskStatus] = {}
        for pid, value in found.items():
            # a reflection is a SubmissionRow-shaped row (read by position); photos are a count
            key = (value[0], bool(value[2]), value[1]) if is_reflection else (None, False, value)
            status = shared.get(key)
            if status is None:
                status = shared[key] = (reflection_status(spec, *key) if is_reflection
                                        else photos_status(spec, value))
            column[pid] = status
            if status.state in _DONE:
                self.task_hours[pid] += spec.hours
            if is_reflection and value[2] == NEAR_DUPLICATE:
                self.flagged[pid].append((spec.title, SubmissionRow(*value)))
        default = reflection_status(spec, None, False, 0) if is_reflection else photos_status(spec, 0)
        return column, default

    def member(self, member: MemberRow) -> MemberProgress:
        pid, plan = member.id, self.plan
        attended, late, earned = self.rec.attendance.get(pid, (0, 0, 0.0))
        tasks = tuple([column.get(pid, default) for column, default in self.columns])
        earned += self.task_hours.get(pid, 0.0)
        excused = self.excused.get(pid, 0)
        progress = Progress(attended=attended, late=late, held=self.held, excused=excused, tasks=tasks,
                            hours_earned=min(earned, plan.required_hours), hours_required=plan.required_hours)
        due = max(self.held - excused, 0)
        return MemberProgress(member, member.name, progress, due, max(due - attended, 0))

    def flags(self, members: list[MemberRow]) -> tuple[FlagLine, ...]:
        """Near-duplicate reflections of these members, with whom each resembles."""
        lines = []
        for m in members:
            for title, row in self.flagged.get(m.id, ()):
                other = self.rec.names.get(row.similar_to_person_id) if row.similar_to_person_id else None
                score = int(row.similarity * 100) if row.similarity is not None else None
                lines.append(FlagLine(m.name, title, other, score))
        return tuple(lines)


def _task_summaries(specs: tuple[TaskSpec, ...], members: list[MemberProgress]) -> tuple[TaskSummary, ...]:
    """Per task: how many are done, who has started but is short, who has sent nothing."""
    done = [0] * len(specs)
    short: list[list[Short]] = [[] for _ in specs]
    missing: list[list[str]] = [[] for _ in specs]
    for m in members:
        for index, status in enumerate(m.progress.tasks):
            state = status.state
            if state in _DONE:
                done[index] += 1
            elif state == "missing":
                missing[index].append(m.name)
            else:
                short[index].append(Short(m.name, status.have, status.need))
    return tuple(TaskSummary(spec.id, spec.kind, spec.title, spec.due, Rate(done[i], len(members)),
                             tuple(short[i]), tuple(missing[i])) for i, spec in enumerate(specs))


def _leaves(assembler: _Assembler, leaves: list[LeaveRow]) -> tuple[list[LeaveLine], int]:
    """The last LEAVE_LINES leaves that excuse something (upcoming ones always), and how many older."""
    rank = assembler.rank  # occurrences in time order: the first `held` have started
    dated = sorted(((rank[leave.occurrence_id], leave) for leave in leaves
                    if not leave.attended and leave.occurrence_id in rank), key=itemgetter(0))
    past = sum(1 for order, _ in dated if order < assembler.held)
    room = max(LEAVE_LINES - (len(dated) - past), 0)
    kept = dated[past - min(room, past):]
    starts, now, names = assembler.starts, assembler.now, assembler.rec.names
    lines = [LeaveLine(names[leave.person_id], starts[leave.occurrence_id], _short(leave.reason),
                       starts[leave.occurrence_id] > now) for _, leave in kept]
    return lines, past - min(room, past)


def _short(reason: str | None, limit: int = 30) -> str:
    """A leave reason on one line, cut to fit a phone."""
    text = " ".join((reason or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def school_digests(term: TermInfo, rec: DigestRecords, now: datetime) -> list[SchoolDigest]:
    """One digest per school in `rec` (in school-code order)."""
    assembler = _Assembler(term, rec, now)
    by_school: dict[int, list[MemberRow]] = defaultdict(list)
    for m in rec.members:
        by_school[m.school_id].append(m)
    school_of = {m.id: m.school_id for m in rec.members}
    leaves: dict[int, list[LeaveRow]] = defaultdict(list)
    for leave in rec.leaves:
        leaves[school_of.get(leave.person_id, -1)].append(leave)
    return [_school_digest(assembler, school, by_school.get(school.id, []), leaves.get(school.id, []))
            for school in rec.schools]


def _school_digest(assembler: _Assembler, school: SchoolRow, members: list[MemberRow],
                   leaves: list[LeaveRow]) -> SchoolDigest:
    now, plan = assembler.now, assembler.plan
    progress = [assembler.member(m) for m in members]
    tasks = _task_summaries(plan.tasks, progress)
    reflections = sum((t.done for t in tasks if t.kind == "reflection"), NO_RATE)
    photos = sum((t.done for t in tasks if t.kind == "photos"), NO_RATE)
    checkins = Rate(sum(min(p.progress.attended, p.checkins_due) for p in progress),
                    sum(p.checkins_due for p in progress))
    absentees = sorted(((p.name, p.absent) for p in progress if p.absent), key=lambda pair: -pair[1])
    leave_lines, older = _leaves(assembler, leaves)
    earned = [p.progress.hours_earned for p in progress]
    ranked = sorted(progress, key=lambda p: p.progress.hours_earned)
    return SchoolDigest(
        code=school.code, name=school.name, term=plan.name, now=now, tz=plan.tz, members=tuple(progress),
        held=assembler.held, checkins=checkins, late=sum(p.progress.late for p in progress),
        excused=sum(p.progress.excused for p in progress), absentees=tuple(absentees), tasks=tasks,
        reflections=reflections, photos=photos, flags=assembler.flags(members), leaves=tuple(leave_lines),
        older_leaves=older, hours_required=plan.required_hours,
        hours_avg=round(sum(earned) / len(earned), 1) if earned else 0.0,
        hours_full=sum(1 for h in earned if h >= plan.required_hours),
        hours_short=tuple((p.name, p.progress.hours_earned) for p in ranked
                          if p.progress.hours_earned < plan.required_hours),
        overall=_overall(checkins, reflections, photos))


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
