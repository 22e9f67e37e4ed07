"""The figures a digest shows, assembled in Python from the set-wise rows of storage.queries.digest.

Per-member progress uses the same rules as 进度 (kernel/hours.py, kernel/attendance.py): the
meetings of the activities each member takes part in (their scope), one attendance per unit,
the member's own tasks, the same 学时 by category, capped at the term's requirement. A task
out of a member's scope shows as "none" (the columns stay aligned with the plan's tasks).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from kernel.attendance import Profile, Units, activities_for
from kernel.hours import Progress, TaskStatus, categories_of, count_status
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
    progress: Progress  # its tasks: every teacher task of the plan, "none" where out of scope
    checkins_due: int  # held units not excused
    absent: int  # of those, not checked in


@dataclass(frozen=True, slots=True)
class SchoolTaskLine:
    """A task the school hands in (材料), or one per subject: how far it is."""

    key: str
    title: str
    due: datetime
    have: int
    need: int
    subject: str | None = None

    @property
    def done(self) -> bool:
        return self.have >= self.need


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
    school_tasks: tuple[SchoolTaskLine, ...] = ()  # what the school itself hands in

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
    return count_status(spec, photos)


def not_for(spec: TaskSpec) -> TaskStatus:
    """A task this member does not owe (out of their scope)."""
    return TaskStatus(spec.id, spec.kind, spec.title, spec.due, "none", 0, spec.need, 0.0, spec.category)


_DONE = frozenset(("accepted", "flagged"))  # kernel/hours.task_done
_NOTHING: dict[int, Any] = {}


class _Assembler:
    """Per-member progress across a district; members in the same state share one TaskStatus."""

    def __init__(self, term: TermInfo, rec: DigestRecords, now: datetime) -> None:
        self.term, self.rec, self.now = term, rec, now
        self.plan = term.plan
        self.units = Units(self.plan, term.occurrences, now)
        self.held = len(self.units.complete)
        self.started = len(self.units.started)
        self.starts = {i.id: i.occurrence.starts_at for i in term.occurrences}
        in_time_order = sorted(term.occurrences, key=lambda i: i.occurrence.starts_at)
        self.rank = {info.id: n for n, info in enumerate(in_time_order)}
        self.leaves: dict[int, list[tuple[int, bool]]] = defaultdict(list)
        for leave in rec.leaves:
            self.leaves[leave.person_id].append((leave.occurrence_id, leave.attended))
        self.specs = tuple(s for s in self.plan.tasks if s.per_teacher)
        # per task: each person's status (people without a record share the default), and per
        # person the hours their finished tasks earn — one pass over the rows, not per member
        self.columns: list[tuple[dict[int, TaskStatus], TaskStatus]] = []
        self.task_hours: dict[int, dict[str | None, float]] = defaultdict(lambda: defaultdict(float))
        self.flagged: dict[int, list[tuple[str, SubmissionRow]]] = defaultdict(list)
        for spec in self.specs:
            self.columns.append(self._column(spec))
        self.schools = {s.id: s for s in rec.schools}
        self._scopes: dict[Profile, tuple[frozenset[str], tuple[bool, ...]]] = {}

    def _column(self, spec: TaskSpec) -> tuple[dict[int, TaskStatus], TaskStatus]:
        tid = self.term.task_ids.get(spec.id)
        is_reflection = spec.kind == "reflection"
        if tid is None:
            found: dict[int, Any] = _NOTHING
        elif is_reflection:
            found = self.rec.submissions.get(tid, _NOTHING)
        elif spec.kind == "photos":
            found = self.rec.photos.get(tid, _NOTHING)
        else:  # files: counted per owner, a teacher's owner is "p:<id>"
            found = {int(owner[2:]): n for owner, n in self.rec.files.get(tid, {}).items()
                     if owner.startswith("p:")}
        shared: dict[tuple[str | None, bool, int], TaskStatus] = {}
        column: dict[int, TaskStatus] = {}
        for pid, value in found.items():
            # a reflection is a SubmissionRow-shaped row (read by position); photos/files a count
            key = (value[0], bool(value[2]), value[1]) if is_reflection else (None, False, value)
            status = shared.get(key)
            if status is None:
                status = shared[key] = (reflection_status(spec, *key) if is_reflection
                                        else count_status(spec, value))
            column[pid] = status
            if status.state in _DONE:
                self.task_hours[pid][spec.category] += spec.hours
            if is_reflection and value[2] == NEAR_DUPLICATE:
                self.flagged[pid].append((spec.title, SubmissionRow(*value)))
        default = reflection_status(spec, None, False, 0) if is_reflection else count_status(spec, 0)
        return column, default

    def scope_of(self, member: MemberRow) -> tuple[frozenset[str], tuple[bool, ...]]:
        """The member's activities and, per teacher task, whether they owe it (per profile)."""
        school = self.schools.get(member.school_id)
        profile = Profile(school.code if school else None, member.stage, member.subject,
                          school.township if school else None)
        found = self._scopes.get(profile)
        if found is None:
            found = self._scopes[profile] = (
                activities_for(self.plan, profile),
                tuple(profile.in_scope(self.plan.task_scope(s)) for s in self.specs))
        return found

    def member(self, member: MemberRow) -> MemberProgress:
        pid, plan = member.id, self.plan
        activities, owed = self.scope_of(member)
        attended = late = open_attended = waiting = 0
        by_activity: dict[str, int] = {}
        for label, (n, lates) in self.rec.attendance.get(pid, {}).items():
            activity, _, state = label.partition("|")
            if activity not in activities:
                continue
            if state == "ahead":  # checked in before the start: counts from the start on
                waiting += n
                continue
            attended += n
            late += lates
            by_activity[activity] = by_activity.get(activity, 0) + n
            if state == "open":
                open_attended += n
        held = self.units.held_for(activities) + open_attended
        excused = self.units.excused(self.leaves.get(pid, ()), activities)
        earned = self.units.hours(by_activity)
        for category, hours in self.task_hours.get(pid, {}).items():
            earned[category] = earned.get(category, 0.0) + hours
        tasks = tuple([column.get(pid, default) if mine else not_for(spec)
                       for (column, default), mine, spec in zip(self.columns, owed, self.specs, strict=True)])
        total = sum(earned.values()) if earned else 0.0
        progress = Progress(attended=attended, late=late, held=held, excused=excused, tasks=tasks,
                            hours_earned=min(total, plan.required_hours), hours_required=plan.required_hours,
                            categories=categories_of(plan, earned), hours_total=round(total, 2),
                            waiting=waiting)
        due = max(held - excused, 0)
        return MemberProgress(member, member.name, progress, due, max(due - attended, 0))

    def school_tasks(self, school: SchoolRow, members: list[MemberRow]) -> tuple[SchoolTaskLine, ...]:
        """The school's own tasks (by = "school"), and per subject (by = "subject")."""
        lines = []
        for spec in self.plan.tasks:
            if spec.per_teacher:
                continue
            scope = self.plan.task_scope(spec)
            tid = self.term.task_ids.get(spec.id)
            owners = self.rec.files.get(tid, {}) if tid is not None else {}
            in_scope = [m for m in members
                        if Profile(school.code, m.stage, m.subject, school.township).in_scope(scope)]
            if not in_scope and not scope.everyone:
                continue
            if spec.by == "school":
                lines.append(SchoolTaskLine(spec.id, spec.title, spec.due, owners.get(f"s:{school.id}", 0),
                                            spec.need))
                continue
            for subject in sorted({m.subject for m in in_scope if m.subject}):
                lines.append(SchoolTaskLine(spec.id, spec.title, spec.due,
                                            owners.get(f"s:{school.id}:{subject}", 0), spec.need, subject))
        return tuple(lines)

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
    owing = [0] * len(specs)
    for m in members:
        for index, status in enumerate(m.progress.tasks):
            state = status.state
            if state == "none":
                continue  # not this member's task
            owing[index] += 1
            if state in _DONE:
                done[index] += 1
            elif state == "missing":
                missing[index].append(m.name)
            else:
                short[index].append(Short(m.name, status.have, status.need))
    return tuple(TaskSummary(spec.id, spec.kind, spec.title, spec.due, Rate(done[i], owing[i]),
                             tuple(short[i]), tuple(missing[i])) for i, spec in enumerate(specs))


def _leaves(assembler: _Assembler, leaves: list[LeaveRow]) -> tuple[list[LeaveLine], int]:
    """The last LEAVE_LINES leaves that excuse something (upcoming ones always), and how many older."""
    rank = assembler.rank  # occurrences in time order: the first `started` have started
    dated = sorted(((rank[leave.occurrence_id], leave) for leave in leaves
                    if not leave.attended and leave.occurrence_id in rank), key=itemgetter(0))
    past = sum(1 for order, _ in dated if order < assembler.started)
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
    tasks = _task_summaries(assembler.specs, progress)
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
        overall=_overall(checkins, reflections, photos),
        school_tasks=assembler.school_tasks(school, members))


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
