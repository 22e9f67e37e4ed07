"""The records the rest of the project passes around: who is who (people, schools, groups,
the active term with its sessions), one person's evidence, and what a set of digests is made
of. Storage fills them; handlers, the figures and the pages read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from kernel.outbound import Mention
from kernel.plan import Occurrence, Plan


@dataclass(frozen=True, slots=True)
class PersonInfo:
    id: int
    name: str
    role: str
    school_id: int | None
    ids: tuple[tuple[str, str], ...]  # (platform, user id) for each platform they are on
    mobile: str | None

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


@dataclass(frozen=True, slots=True)
class SchoolRow:
    id: int
    code: str
    name: str


class MemberRow(NamedTuple):
    id: int
    school_id: int
    name: str
    role: str
    mobile: str | None


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
    # person id -> (attended, late, hours): check-ins in the term's sessions and what they earn
    attendance: dict[int, tuple[int, int, float]] = field(default_factory=dict)
    submissions: dict[int, dict[int, SubmissionRow]] = field(default_factory=dict)  # task -> person ->
    photos: dict[int, dict[int, int]] = field(default_factory=dict)  # task -> person -> photos stored
    leaves: list[LeaveRow] = field(default_factory=list)  # every leave in the term
    similar_to: set[int] = field(default_factory=set)  # people a submission was found to resemble
    names: dict[int, str] = field(default_factory=dict)  # members, and anyone a flag points at
