"""The records the rest of the project passes around: who is who (people, schools, groups,
the active term with its sessions), one person's evidence, and what a set of digests is made
of. Storage fills them; handlers, the figures and the pages read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, cast

from kernel.outbound import Mention
from kernel.plan import Occurrence, Plan

# who a school's figures count: teachers and every kind of lead on a school's roster
MEMBER_ROLES = ("teacher", "school_lead", "township_lead")


@dataclass(frozen=True, slots=True)
class PersonInfo:
    id: int
    name: str
    role: str
    school_id: int | None
    ids: tuple[tuple[str, str], ...]  # (platform, user id) for each platform they are on
    mobile: str | None
    subject: str | None = None  # 学科
    stage: str | None = None  # 学段
    title: str | None = None  # the roster's role word: 校长, 教研组长…

    def id_on(self, platform: str) -> str | None:
        """Their user id on `platform`, if they have one there."""
        return next((user for where, user in self.ids if where == platform), None)


def mention_for(person: PersonInfo, platform: str) -> Mention:
    """How a group on `platform` can @ this person: their user id there (none: by name)."""
    return Mention(name=person.name, userid=person.id_on(platform), mobile=person.mobile)


@dataclass(frozen=True, slots=True)
class SchoolInfo:
    id: int
    code: str
    name: str
    township: str | None = None  # 乡镇


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: int
    platform: str
    conversation_id: str
    school_id: int | None
    title: str | None
    route_kind: str | None


@dataclass(frozen=True, slots=True)
class OccurrenceInfo:
    id: int
    occurrence: Occurrence


@dataclass(frozen=True, slots=True)
class TermInfo:
    id: int
    plan: Plan
    loaded_at: datetime
    occurrences: tuple[OccurrenceInfo, ...]
    task_ids: dict[str, int]
    # what is derived from the plan once per loaded term (a profile's activities…), by key
    derived: dict[object, object] = field(default_factory=dict, compare=False, repr=False)

    def unit_days(self, unit: str) -> tuple[OccurrenceInfo, ...]:
        """The meetings of one unit (the days of an either-day cycle)."""
        days = cast("dict[str, tuple[OccurrenceInfo, ...]] | None", self.derived.get(("unit_days",)))
        if days is None:
            grouped: dict[str, list[OccurrenceInfo]] = {}
            for info in self.occurrences:
                grouped.setdefault(info.occurrence.unit, []).append(info)
            days = {u: tuple(i) for u, i in grouped.items()}
            self.derived[("unit_days",)] = days
        return days.get(unit, ())


@dataclass
class SubmissionState:
    state: str
    chars: int
    flag: str | None


@dataclass
class PersonRecords:
    attended: dict[int, bool] = field(default_factory=dict)  # occurrence id -> late?
    excused: set[int] = field(default_factory=set)
    submissions: dict[int, SubmissionState] = field(default_factory=dict)  # task id ->
    photos: dict[int, int] = field(default_factory=dict)  # task id -> count
    files: dict[int, int] = field(default_factory=dict)  # task id -> documents handed in


@dataclass(frozen=True, slots=True)
class SchoolRow:
    id: int
    code: str
    name: str
    township: str | None = None


class MemberRow(NamedTuple):
    id: int
    school_id: int
    name: str
    role: str
    mobile: str | None
    subject: str | None = None
    stage: str | None = None


class SubmissionRow(NamedTuple):
    """The fields of a submission row, by position (rows stay SQLAlchemy `Row`s: their index
    access is fast, attribute access is ~50x slower, and there are 100,000 of them)."""

    state: str  # draft | accepted
    chars: int
    flag: str | None
    similar_to_person_id: int | None
    similarity: float | None
    person_id: int
    task_id: int


class LeaveRow(NamedTuple):
    person_id: int
    occurrence_id: int
    reason: str | None
    attended: bool  # checked in anyway: the leave excuses nothing


@dataclass
class DigestRecords:
    """Everything a set of digests needs, keyed by person id (within a task where it applies)."""

    schools: list[SchoolRow] = field(default_factory=list)
    members: list[MemberRow] = field(default_factory=list)  # by school, then roster order
    # person id -> {label: (check-ins, of them late)}: a label groups meetings (an activity, and
    # whether its unit is still open), as the caller asked (digest_records' `labels`)
    attendance: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    submissions: dict[int, dict[int, SubmissionRow]] = field(default_factory=dict)  # task -> person ->
    photos: dict[int, dict[int, int]] = field(default_factory=dict)  # task -> person -> photos stored
    files: dict[int, dict[str, int]] = field(default_factory=dict)  # task -> owner -> documents
    leaves: list[LeaveRow] = field(default_factory=list)  # every leave in the term
    similar_to: set[int] = field(default_factory=set)  # people a submission was found to resemble
    names: dict[int, str] = field(default_factory=dict)  # members, and anyone a flag points at
