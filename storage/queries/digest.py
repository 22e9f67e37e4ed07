"""What digests are made of, for one school or the whole district, in five set-wise queries.

Each query covers every school member at once (GROUP BY in SQL where it can); nothing is
asked per teacher. The caller assembles per-teacher and per-school figures in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    ChatGroup,
    Checkin,
    Leave,
    Person,
    Photo,
    School,
    SessionOccurrence,
    Submission,
)

MEMBER_ROLES = ("teacher", "school_lead")  # who a school's completion is about


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: int
    school_id: int
    name: str
    role: str
    dingtalk_userid: str | None
    wecom_userid: str | None
    mobile: str | None


@dataclass(frozen=True, slots=True)
class AttendanceRow:
    attended: int  # check-ins in the term's sessions
    late: int
    hours: float  # what those sessions earn


@dataclass(frozen=True, slots=True)
class SubmissionRow:
    state: str  # draft | accepted
    chars: int
    flag: str | None
    similar_to_person_id: int | None
    similarity: float | None


@dataclass(frozen=True, slots=True)
class LeaveRow:
    person_id: int
    starts_at: datetime
    reason: str
    attended: bool  # checked in anyway: then the leave excuses nothing


@dataclass(frozen=True, slots=True)
class SchoolRow:
    id: int
    code: str
    name: str


@dataclass
class DigestRecords:
    """Everything a set of digests needs, keyed by person id (and task id)."""

    schools: list[SchoolRow] = field(default_factory=list)
    members: list[MemberRow] = field(default_factory=list)  # by school, then roster order
    attendance: dict[int, AttendanceRow] = field(default_factory=dict)
    submissions: dict[tuple[int, int], SubmissionRow] = field(default_factory=dict)
    photos: dict[tuple[int, int], int] = field(default_factory=dict)
    leaves: list[LeaveRow] = field(default_factory=list)  # by session start
    names: dict[int, str] = field(default_factory=dict)  # anyone a flag points at


def _members_only(stmt: Select, person_col: object, school_id: int | None) -> Select:
    """Restrict a per-person query to one school's members (no filter for the district)."""
    if school_id is None:
        return stmt
    members = select(Person.id).where(Person.school_id == school_id)
    return stmt.where(person_col.in_(members))  # type: ignore[attr-defined]


async def digest_records(session: AsyncSession, *, term_id: int, task_ids: Sequence[int],
                         school_id: int | None = None) -> DigestRecords:
    """Schools, members, attendance, submissions, photos and leave of one term.

    `school_id` narrows every query to one school; None reads the whole district.
    """
    rec = DigestRecords()
    school_q = select(School.id, School.code, School.name).order_by(School.code)
    if school_id is not None:
        school_q = school_q.where(School.id == school_id)
    rec.schools = [SchoolRow(*row) for row in (await session.execute(school_q)).all()]

    member_q = select(Person.id, Person.school_id, Person.name, Person.role, Person.dingtalk_userid,
                      Person.wecom_userid, Person.mobile).where(
        Person.school_id.is_not(None), Person.role.in_(MEMBER_ROLES)).order_by(Person.school_id, Person.id)
    if school_id is not None:
        member_q = member_q.where(Person.school_id == school_id)
    rec.members = [MemberRow(*row) for row in (await session.execute(member_q)).all()]

    late = func.sum(case((Checkin.late.is_(True), 1), else_=0))
    attendance_q = (select(Checkin.person_id, func.count(), late, func.sum(SessionOccurrence.hours))
                    .join(SessionOccurrence, SessionOccurrence.id == Checkin.occurrence_id)
                    .where(SessionOccurrence.term_id == term_id).group_by(Checkin.person_id))
    attendance_q = _members_only(attendance_q, Checkin.person_id, school_id)
    rec.attendance = {pid: AttendanceRow(n, int(lates or 0), float(hours or 0))
                      for pid, n, lates, hours in (await session.execute(attendance_q)).all()}

    if task_ids:
        submission_q = select(Submission.person_id, Submission.task_id, Submission.state, Submission.chars,
                              Submission.flag, Submission.similar_to_person_id, Submission.similarity
                              ).where(Submission.task_id.in_(list(task_ids)))
        submission_q = _members_only(submission_q, Submission.person_id, school_id)
        rec.submissions = {(pid, tid): SubmissionRow(state, chars, flag, other, score)
                           for pid, tid, state, chars, flag, other, score
                           in (await session.execute(submission_q)).all()}
        photo_q = (select(Photo.person_id, Photo.task_id, func.count())
                   .where(Photo.task_id.in_(list(task_ids))).group_by(Photo.person_id, Photo.task_id))
        photo_q = _members_only(photo_q, Photo.person_id, school_id)
        rec.photos = {(pid, tid): n for pid, tid, n in (await session.execute(photo_q)).all()}

    checked_in = exists().where(and_(Checkin.person_id == Leave.person_id,
                                     Checkin.occurrence_id == Leave.occurrence_id))
    leave_q = (select(Leave.person_id, SessionOccurrence.starts_at, Leave.reason, checked_in)
               .join(SessionOccurrence, SessionOccurrence.id == Leave.occurrence_id)
               .where(SessionOccurrence.term_id == term_id)
               .order_by(SessionOccurrence.starts_at, Leave.person_id))
    leave_q = _members_only(leave_q, Leave.person_id, school_id)
    rec.leaves = [LeaveRow(pid, at, reason or "", bool(came))
                  for pid, at, reason, came in (await session.execute(leave_q)).all()]

    rec.names = {m.id: m.name for m in rec.members}
    others = {s.similar_to_person_id for s in rec.submissions.values()
              if s.similar_to_person_id is not None and s.similar_to_person_id not in rec.names}
    if others:
        rows = await session.execute(select(Person.id, Person.name).where(Person.id.in_(others)))
        rec.names.update({pid: name for pid, name in rows.all()})
    return rec


async def digest_recipients(session: AsyncSession, school_id: int | None) -> list[tuple[int, str | None]]:
    """(group id, route kind) of the groups a digest goes to: the school's, or (None) the district's.

    A district group is one bound with no school (绑定 全区), as the scheduler reads it.
    """
    cond = ChatGroup.school_id == school_id if school_id is not None else ChatGroup.school_id.is_(None)
    rows = await session.execute(select(ChatGroup.id, ChatGroup.route_kind)
                                 .where(cond, ChatGroup.bound_at.is_not(None)).order_by(ChatGroup.id))
    return [(gid, kind) for gid, kind in rows.all()]


async def school_by_code(session: AsyncSession, code: str) -> SchoolRow | None:
    row = (await session.execute(select(School.id, School.code, School.name).where(School.code == code))).first()
    return SchoolRow(*row) if row else None
