"""What digests are made of, for one school or the whole district, in a handful of set-wise queries.

Each query covers every school member at once (GROUP BY in SQL where it can); nothing is
asked per teacher. Statements use the tables' Core columns, so rows skip the ORM's loading
step (at 20,000 teachers that step costs more than the SQL).

For the whole district the queries are shaped for SQLite's planner (PostgreSQL reads them
the same way): `col + 0` keeps an index from being used where a scan is cheaper — a count
per teacher reads only the (person_id, occurrence_id) index, and the `late` flags are read
in one pass over the table instead of one random row lookup per check-in. Submissions are
read from their covering index (ix_submission_digest), never from the rows that hold the text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.records import (
    MEMBER_ROLES,
    DigestRecords,
    LeaveRow,
    MemberRow,
    SchoolRow,
    SubmissionRow,
)
from storage.models import (
    ChatGroup,
    Checkin,
    FileSubmission,
    Leave,
    Person,
    Photo,
    School,
    SessionOccurrence,
    Submission,
)

# Core tables: statements over their columns skip the ORM's per-row loading step
PERSON, SCHOOL, GROUP = Person.__table__, School.__table__, ChatGroup.__table__
CHECKIN, LEAVE, OCCURRENCE = Checkin.__table__, Leave.__table__, SessionOccurrence.__table__
SUBMISSION, PHOTO, FILE = Submission.__table__, Photo.__table__, FileSubmission.__table__












def _members_only(stmt: Any, person_col: Any, school_id: int | None) -> Any:
    """Restrict a per-person query to one school's members (no filter for the district)."""
    if school_id is None:
        return stmt
    return stmt.where(person_col.in_(select(PERSON.c.id).where(PERSON.c.school_id == school_id)))


def _label_of(column: Any, labels: Mapping[int, str]) -> ColumnElement[Any]:
    """Each meeting's label, by its id: a constant when all meetings share one."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for oid, label in labels.items():
        by_label[label].append(oid)
    if len(by_label) <= 1:
        return literal(next(iter(by_label), ""))
    return case(*((column.in_(ids), literal(label)) for label, ids in by_label.items()), else_=literal(""))


async def _attendance(session: AsyncSession, labels: Mapping[int, str],
                      school_id: int | None) -> dict[int, dict[str, tuple[int, int]]]:
    """Per person and label: check-ins and how many were late (one query, GROUP BY in SQL)."""
    ids = list(labels)
    if not ids:
        return {}
    district = school_id is None
    occurrence = CHECKIN.c.occurrence_id + 0 if district else CHECKIN.c.occurrence_id
    label = _label_of(occurrence, labels)
    late = func.sum(case((CHECKIN.c.late.is_(True), 1), else_=0))
    counts = _members_only(select(CHECKIN.c.person_id, label, func.count(), late).where(occurrence.in_(ids))
                           .group_by(CHECKIN.c.person_id, label), CHECKIN.c.person_id, school_id)
    found: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for pid, name, n, lates in (await session.execute(counts)).all():
        found[pid][name] = (n, int(lates or 0))
    return dict(found)


async def digest_records(session: AsyncSession, *, term_id: int, task_ids: Sequence[int],
                         labels: Mapping[int, str], school_id: int | None = None) -> DigestRecords:
    """Schools, members, attendance, submissions, photos and leave of one term.

    `school_id` narrows every query to one school (index lookups); None reads the district.

    The queries run one after another on one connection. A second connection for half of
    them was tried: Python's sqlite3 hands the GIL back and forth on every row it steps, so
    two readers in one process convoy on it — about twice the CPU and no less wall time.
    """
    rec = DigestRecords()
    occurrences = list(labels)
    await _people_and_checkins(session, rec, labels, school_id)
    await _tasks_and_leave(session, rec, occurrences, task_ids, school_id)
    rec.names = {m.id: m.name for m in rec.members}
    others = rec.similar_to - rec.names.keys()
    if others:
        rows = await session.execute(select(PERSON.c.id, PERSON.c.name).where(PERSON.c.id.in_(others)))
        rec.names.update({pid: name for pid, name in rows.all()})
    return rec


async def _people_and_checkins(session: AsyncSession, rec: DigestRecords,
                               labels: Mapping[int, str], school_id: int | None) -> None:
    district = school_id is None
    school_q = select(SCHOOL.c.id, SCHOOL.c.code, SCHOOL.c.name, SCHOOL.c.township).order_by(SCHOOL.c.code)
    if not district:
        school_q = school_q.where(SCHOOL.c.id == school_id)
    rec.schools = [SchoolRow(*row) for row in (await session.execute(school_q)).all()]
    person = PERSON.c
    member_q = select(person.id, person.school_id, person.name, person.role, person.mobile,
                      person.subject, person.stage).where(person.role.in_(MEMBER_ROLES))
    member_q = member_q.where((person.school_id + 0).is_not(None) if district else person.school_id == school_id)
    rec.members = sorted((MemberRow(*row) for row in (await session.execute(member_q)).all()),
                         key=lambda m: (m.school_id, m.id))
    rec.attendance = await _attendance(session, labels, school_id)


async def _tasks_and_leave(session: AsyncSession, rec: DigestRecords, occurrences: list[int],
                           task_ids: Sequence[int], school_id: int | None) -> None:
    district = school_id is None
    if task_ids:
        sub = SUBMISSION.c  # read from ix_submission_digest alone, by task, never the rows
        submission_q = _members_only(  # columns in SubmissionRow's order
            select(sub.state, sub.chars, sub.flag, sub.similar_to_person_id, sub.similarity, sub.person_id,
                   sub.task_id).where(sub.task_id.in_(list(task_ids))), sub.person_id, school_id)
        for row in (await session.execute(submission_q)).all():
            rec.submissions.setdefault(row[6], {})[row[5]] = cast(SubmissionRow, row)
            if row[3] is not None:
                rec.similar_to.add(row[3])
        photo = PHOTO.c
        photo_task = photo.task_id + 0 if district else photo.task_id
        photo_q = _members_only(select(photo.person_id, photo.task_id, func.count())
                                .where(photo_task.in_(list(task_ids))).group_by(photo.person_id, photo.task_id),
                                photo.person_id, school_id)
        for pid, tid, n in (await session.execute(photo_q)).all():
            rec.photos.setdefault(tid, {})[pid] = n
        rec.files = await _files(session, task_ids, school_id)
    if occurrences:
        leave, checkin = LEAVE.c, CHECKIN.c
        leave_occurrence = leave.occurrence_id + 0 if district else leave.occurrence_id
        leave_q = _members_only(
            select(leave.person_id, leave.occurrence_id, leave.reason, checkin.id.is_not(None))
            .outerjoin(CHECKIN, and_(checkin.person_id == leave.person_id,
                                     checkin.occurrence_id == leave.occurrence_id))
            .where(leave_occurrence.in_(occurrences)), leave.person_id, school_id)
        rec.leaves = [LeaveRow(pid, oid, reason, bool(came))
                      for pid, oid, reason, came in (await session.execute(leave_q)).all()]


async def _files(session: AsyncSession, task_ids: Sequence[int],
                 school_id: int | None) -> dict[int, dict[str, int]]:
    """task → owner → documents (teachers' and schools'), of one school or the district."""
    f = FILE.c
    stmt = select(f.task_id, f.owner, func.count()).where(f.task_id.in_(list(task_ids)))
    if school_id is not None:  # the school's own, its subjects', and its members'
        members = select(PERSON.c.id).where(PERSON.c.school_id == school_id)
        stmt = stmt.where(or_(f.owner == f"s:{school_id}", f.owner.like(f"s:{school_id}:%"),
                              f.person_id.in_(members)))
    found: dict[int, dict[str, int]] = {}
    for tid, owner, n in (await session.execute(stmt.group_by(f.task_id, f.owner))).all():
        found.setdefault(tid, {})[owner] = n
    return found


async def digest_recipients(session: AsyncSession, school_id: int | None) -> list[tuple[int, str | None]]:
    """(group id, route kind) of the groups a digest goes to: the school's, or (None) the district's.

    A district group is one bound with no school (绑定 全区), as the scheduler reads it.
    """
    cond = GROUP.c.school_id == school_id if school_id is not None else GROUP.c.school_id.is_(None)
    rows = await session.execute(select(GROUP.c.id, GROUP.c.route_kind)
                                 .where(cond, GROUP.c.bound_at.is_not(None)).order_by(GROUP.c.id))
    return [(gid, kind) for gid, kind in rows.all()]


async def school_by_code(session: AsyncSession, code: str) -> SchoolRow | None:
    stmt = select(SCHOOL.c.id, SCHOOL.c.code, SCHOOL.c.name, SCHOOL.c.township).where(SCHOOL.c.code == code)
    row = (await session.execute(stmt)).first()
    return SchoolRow(*row) if row else None
