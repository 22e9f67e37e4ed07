"""What the web dashboard reads beyond the digest figures: weekly trends, one teacher's evidence.

Trends are set-wise: check-ins and excused leave counted per session in SQL, accepted
reflections counted per week bucket in SQL (a CASE over the week boundaries, so the same
statement runs on SQLite and PostgreSQL). Nothing is asked per teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.records import MEMBER_ROLES
from storage.models import Checkin, Leave, Person, Photo, School, SessionOccurrence, Submission

MAX_LISTED = 500  # district staff are a handful; beyond this many, a sub-select (old SQLite: 999 parameters)


def _non_members() -> Select[Any]:
    """The few people whose records never count (district staff): subtracted from district totals."""
    return select(Person.id).where(or_(Person.school_id.is_(None), Person.role.not_in(MEMBER_ROLES)))


async def _members_only(session: AsyncSession, stmt: Any, person_col: Any,
                        school_id: int | None) -> dict[Any, int]:
    """`stmt` (key, count) over one school's members; for the district, everyone's counts less the
    non-members' — two index-friendly scans instead of a join with every person."""
    if school_id is not None:  # the school's people first, then their rows by (person, …) index
        mine = stmt.join(Person, Person.id == person_col).where(Person.school_id == school_id,
                                                                 Person.role.in_(MEMBER_ROLES))
        return {k: n for k, n in (await session.execute(mine)).all()}
    counts = {k: n for k, n in (await session.execute(stmt)).all()}
    # the non-members' ids as a list, not a sub-select: with the list, the planner looks their
    # rows up by (person, …) index; with a sub-select, SQLite walked every row of the term
    # (a check-in count: 220 ms at 20,000 teachers, against half a millisecond)
    others = list((await session.scalars(_non_members())).all())
    if not others:
        return counts
    if len(others) > MAX_LISTED:
        subtract = stmt.where(person_col.in_(_non_members()))
    else:
        subtract = stmt.where(person_col.in_(others))
    for k, n in (await session.execute(subtract)).all():
        counts[k] = counts.get(k, 0) - n
    return counts


@dataclass(frozen=True, slots=True)
class SessionCounts:
    checkins: dict[int, int]  # occurrence id -> members who checked in
    excused: dict[int, int]  # occurrence id -> members on leave who did not check in


async def session_counts(session: AsyncSession, occurrence_ids: Sequence[int],
                         school_id: int | None = None) -> SessionCounts:
    """Check-ins and excused absences per session, over every member (or one school's)."""
    if not occurrence_ids:
        return SessionCounts({}, {})
    ids = list(occurrence_ids)
    checkin_q = (select(Checkin.occurrence_id, func.count())
                 .where(Checkin.occurrence_id.in_(ids)).group_by(Checkin.occurrence_id))
    came = exists().where(and_(Checkin.person_id == Leave.person_id,
                               Checkin.occurrence_id == Leave.occurrence_id))
    leave_q = (select(Leave.occurrence_id, func.count())
               .where(Leave.occurrence_id.in_(ids), ~came).group_by(Leave.occurrence_id))
    return SessionCounts(await _members_only(session, checkin_q, Checkin.person_id, school_id),
                         await _members_only(session, leave_q, Leave.person_id, school_id))


async def accepted_by_bucket(session: AsyncSession, task_ids: Sequence[int], bounds: Sequence[datetime],
                             school_id: int | None = None) -> dict[int, int]:
    """Accepted submissions of `task_ids` per bucket: bucket i holds those accepted before bounds[i]
    (and not before bounds[i-1]); len(bounds) counts the ones after the last bound."""
    if not task_ids or not bounds:
        return {}
    when = func.coalesce(Submission.accepted_at, Submission.updated_at)
    bucket = case(*[(when < bound, i) for i, bound in enumerate(bounds)], else_=len(bounds)).label("bucket")
    stmt = (select(bucket, func.count())
            .where(Submission.task_id.in_(list(task_ids)), Submission.state == "accepted")
            .group_by(bucket))
    return {int(b): n for b, n in (await _members_only(session, stmt, Submission.person_id, school_id)).items()}


# ------------------------------------------------------------------ one teacher's evidence


@dataclass(frozen=True, slots=True)
class PersonRow:
    id: int
    name: str
    role: str
    school_id: int | None
    school_name: str | None
    subject: str | None
    stage: str | None
    school_code: str | None = None
    township: str | None = None


@dataclass(frozen=True, slots=True)
class CheckinEvidence:
    session: str
    starts_at: datetime
    at: datetime
    late: bool


@dataclass(frozen=True, slots=True)
class LeaveEvidence:
    session: str
    starts_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SubmissionEvidence:
    task_id: int
    state: str
    chars: int
    text: str
    flag: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PhotoEvidence:
    task_id: int
    sha256: str
    mime: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Evidence:
    checkins: list[CheckinEvidence]
    leaves: list[LeaveEvidence]
    submissions: dict[int, SubmissionEvidence]  # task id ->
    photos: list[PhotoEvidence]


async def school_info_by_code(session: AsyncSession, code: str) -> tuple[int, str, str] | None:
    """(id, code, name) of the school with this code."""
    row = (await session.execute(select(School.id, School.code, School.name)
                                 .where(School.code == code))).first()
    return (row[0], row[1], row[2]) if row else None


async def person_row(session: AsyncSession, person_id: int) -> PersonRow | None:
    row = (await session.execute(
        select(Person.id, Person.name, Person.role, Person.school_id, School.name, Person.subject,
               Person.stage, School.code, School.township).outerjoin(School, School.id == Person.school_id)
        .where(Person.id == person_id))).first()
    return PersonRow(*row) if row else None


async def person_evidence(session: AsyncSession, person_id: int, term_id: int,
                          task_ids: Sequence[int]) -> Evidence:
    """One person's check-ins (with times), leave, reflection texts and photos in a term."""
    checkins = await session.execute(
        select(SessionOccurrence.name, SessionOccurrence.starts_at, Checkin.at, Checkin.late)
        .join(SessionOccurrence, SessionOccurrence.id == Checkin.occurrence_id)
        .where(Checkin.person_id == person_id, SessionOccurrence.term_id == term_id)
        .order_by(SessionOccurrence.starts_at))
    leaves = await session.execute(
        select(SessionOccurrence.name, SessionOccurrence.starts_at, Leave.reason)
        .join(SessionOccurrence, SessionOccurrence.id == Leave.occurrence_id)
        .where(Leave.person_id == person_id, SessionOccurrence.term_id == term_id)
        .order_by(SessionOccurrence.starts_at))
    evidence = Evidence([CheckinEvidence(*r) for r in checkins.all()],
                        [LeaveEvidence(name, at, reason or "") for name, at, reason in leaves.all()],
                        {}, [])
    if task_ids:
        subs = await session.execute(
            select(Submission.task_id, Submission.state, Submission.chars, Submission.text,
                   Submission.flag, Submission.updated_at)
            .where(Submission.person_id == person_id, Submission.task_id.in_(list(task_ids))))
        evidence.submissions.update({r[0]: SubmissionEvidence(*r) for r in subs.all()})
        photos = await session.execute(
            select(Photo.task_id, Photo.sha256, Photo.mime, Photo.at)
            .where(Photo.person_id == person_id, Photo.task_id.in_(list(task_ids)))
            .order_by(Photo.at, Photo.id))
        evidence.photos.extend(PhotoEvidence(*r) for r in photos.all())
    return evidence


async def photo_owners(session: AsyncSession, sha256: str) -> list[tuple[int | None, str]]:
    """(school id, mime) of everyone who sent the picture with this hash."""
    rows = await session.execute(
        select(Person.school_id, Photo.mime).join(Person, Person.id == Photo.person_id)
        .where(Photo.sha256 == sha256))
    return [(school_id, mime) for school_id, mime in rows.all()]
