"""Attendance as districts count it: who a meeting is for, what one attendance is, and when
it counts as held — the one rule 进度, the digests, the dashboard and the exports share.

- A meeting is for the people its activity's scope admits (kernel.plan.model.Scope).
- One attendance is a *unit*: a meeting day, or with `attend = "one"` its cycle (the week of a
  周二/周四 pair: coming on either day is the whole week's attendance).
- A meeting counts once it has started (`has_started`), not when check-in opens: a check-in
  made in the minutes before the start waits until then (`Tally.waiting`).
- A unit is *held* once all its days have started, or as soon as the person attended one of
  its days that has started (so Tuesday's attendance counts on Tuesday, and nobody is absent
  for a week whose Thursday is still ahead).
- A unit is *excused* when it is held, not attended, and a 请假 covers every day of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from kernel.plan import ActivitySpec, Plan, Scope, TaskSpec
from kernel.records import OccurrenceInfo, PersonInfo, SchoolInfo


@dataclass(frozen=True, slots=True)
class Profile:
    """What scopes look at: the person's school, 学段, 学科 and the school's 乡镇."""

    school: str | None
    stage: str | None
    subject: str | None
    township: str | None

    def in_scope(self, scope: Scope) -> bool:
        return scope.admits(school=self.school, stage=self.stage, subject=self.subject,
                            township=self.township)


NOBODY = Profile(None, None, None, None)  # in no scope but the one for everyone


def profile_of(person: PersonInfo, school: SchoolInfo | None) -> Profile:
    """A person's profile: their own school (not the group they write in)."""
    return Profile(school.code if school else None, person.stage, person.subject,
                   school.township if school else None)


def activities_for(plan: Plan, profile: Profile) -> frozenset[str]:
    """The ids of the activities this person takes part in."""
    return frozenset(a.id for a in plan.activities if profile.in_scope(a.scope))


def tasks_for(plan: Plan, profile: Profile) -> tuple[TaskSpec, ...]:
    """The teacher tasks this person owes (school and subject tasks are their school's)."""
    return tuple(t for t in plan.tasks if t.per_teacher and profile.in_scope(plan.task_scope(t)))


def has_started(info: OccurrenceInfo, now: datetime) -> bool:
    """Whether a meeting is held at `now`: from its start on (the one rule every count uses)."""
    return info.occurrence.starts_at <= now


@dataclass(frozen=True, slots=True)
class Tally:
    """One person's attendance at `now`."""

    attended: int
    late: int
    held: int  # units held (see the module docstring)
    excused: int
    by_activity: Mapping[str, int]  # attended units per activity
    waiting: int = 0  # check-ins at meetings not started yet: they count from the start on

    @property
    def due(self) -> int:
        """Held units a check-in was owed for."""
        return max(self.held - self.excused, 0)

    @property
    def absent(self) -> int:
        return max(self.due - self.attended, 0)


class Units:
    """The term's meetings grouped into units, and which are held at `now`."""

    def __init__(self, plan: Plan, occurrences: Sequence[OccurrenceInfo], now: datetime) -> None:
        self.plan, self.now = plan, now
        self.activities: dict[str, ActivitySpec] = {a.id: a for a in plan.meetings}
        self.unit_of: dict[int, str] = {}
        self.activity_of: dict[str, str] = {}
        days: dict[str, list[OccurrenceInfo]] = defaultdict(list)
        for info in occurrences:
            occurrence = info.occurrence
            unit = occurrence.unit or f"#{info.id}"
            self.unit_of[info.id] = unit
            self.activity_of[unit] = occurrence.activity or occurrence.session
            days[unit].append(info)
        self.days = dict(days)
        self.started = frozenset(i.id for i in occurrences if has_started(i, now))
        self.complete = frozenset(u for u, infos in days.items()
                                  if all(i.id in self.started for i in infos))
        # meetings of a unit begun but not complete: an attendance there counts before its end
        self.open_ids = frozenset(i.id for u, infos in days.items() if u not in self.complete
                                  for i in infos)
        held: dict[str, int] = defaultdict(int)
        for unit in self.complete:
            held[self.activity_of[unit]] += 1
        self.held_by_activity = dict(held)

    def held_for(self, activities: Iterable[str]) -> int:
        return sum(self.held_by_activity.get(a, 0) for a in activities)

    def label(self, occurrence_id: int) -> str:
        """How the digests group a meeting's check-ins: its activity, and whether its unit is
        still open (an attendance there counts as held before the unit completes), or the
        meeting has not started (its check-ins wait: "ahead")."""
        unit = self.unit_of[occurrence_id]
        if occurrence_id not in self.started:
            return f"{self.activity_of[unit]}|ahead"
        return f"{self.activity_of[unit]}|{'open' if occurrence_id in self.open_ids else 'done'}"

    def labels(self) -> dict[int, str]:
        return {oid: self.label(oid) for oid in self.unit_of}

    def excused(self, leaves: Iterable[tuple[int, bool]], activities: frozenset[str]) -> int:
        """Held units of these activities with a 请假 for every day and no check-in on any:
        `leaves` are (meeting id, checked in there anyway)."""
        covered: dict[str, set[int]] = defaultdict(set)
        came: set[str] = set()
        for oid, attended in leaves:
            unit = self.unit_of.get(oid)
            if unit is None:
                continue
            covered[unit].add(oid)
            if attended:
                came.add(unit)
        return sum(1 for unit, ids in covered.items()
                   if unit in self.complete and unit not in came and self.activity_of[unit] in activities
                   and ids >= {i.id for i in self.days[unit]})

    def tally(self, checkins: Mapping[int, bool], leaves: Iterable[int],
              activities: frozenset[str]) -> Tally:
        """One person's tally from their check-ins (occurrence id → late) and leaves."""
        attended_units: dict[str, bool] = {}
        waiting = 0
        for oid, late in checkins.items():
            unit = self.unit_of.get(oid)
            if unit is None or self.activity_of[unit] not in activities:
                continue
            if oid not in self.started:
                waiting += 1  # checked in early: counts once the meeting starts
                continue
            attended_units[unit] = attended_units.get(unit, False) or late
        by_activity: dict[str, int] = defaultdict(int)
        open_attended = 0
        for unit in attended_units:
            by_activity[self.activity_of[unit]] += 1
            if unit not in self.complete:
                open_attended += 1
        held = self.held_for(activities) + open_attended
        excused = self.excused(((oid, oid in checkins or self.unit_of.get(oid) in attended_units)
                                for oid in leaves), activities)
        return Tally(len(attended_units), sum(attended_units.values()), held, excused, dict(by_activity),
                     waiting)

    def hours(self, by_activity: Mapping[str, int]) -> dict[str | None, float]:
        """学时 the attended units earn, by category (None: no category)."""
        earned: dict[str | None, float] = defaultdict(float)
        for activity_id, units in by_activity.items():
            activity = self.activities.get(activity_id)
            if activity is not None:
                earned[activity.category] += units * activity.hours
        return dict(earned)
