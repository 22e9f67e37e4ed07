"""A teacher's evidence: check-ins, leave, reflections and photos."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.records import PersonRecords, SubmissionState
from storage.inline import sqlite_driver, sqlite_time
from storage.models import Checkin, Leave, Photo, Submission
from storage.queries.common import insert_if_absent


async def record_checkin(session: AsyncSession, *, person_id: int, occurrence_id: int, at: datetime,
                         late: bool, platform: str, msg_id: str) -> tuple[bool, datetime]:
    """Store a check-in once; returns (new?, time of the first check-in)."""
    raw = sqlite_driver(session)
    if raw is not None:  # the burst's hot path: driver-level SQL, same statement
        cur = raw.execute(
            "INSERT INTO checkin (person_id, occurrence_id, at, late, platform, msg_id) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (person_id, occurrence_id) DO NOTHING",
            (person_id, occurrence_id, sqlite_time(at), late, platform, msg_id))
        if cur.rowcount:
            return True, at
    inserted = await insert_if_absent(session, Checkin.__table__, {
        "person_id": person_id, "occurrence_id": occurrence_id, "at": at, "late": late,
        "platform": platform, "msg_id": msg_id}, ["person_id", "occurrence_id"])
    if inserted:
        return True, at
    first = await session.scalar(select(Checkin.at).where(
        Checkin.person_id == person_id, Checkin.occurrence_id == occurrence_id))
    return False, first or at






async def person_records(session: AsyncSession, person_id: int, occurrence_ids: list[int],
                         task_ids: list[int]) -> PersonRecords:
    """Everything one person has done in a term, in four small queries."""
    rec = PersonRecords()
    if occurrence_ids:
        rows = await session.execute(select(Checkin.occurrence_id, Checkin.late).where(
            Checkin.person_id == person_id, Checkin.occurrence_id.in_(occurrence_ids)))
        rec.attended = {oid: late for oid, late in rows}
        rec.excused = set((await session.scalars(select(Leave.occurrence_id).where(
            Leave.person_id == person_id, Leave.occurrence_id.in_(occurrence_ids)))).all())
    if task_ids:
        subs = await session.execute(select(Submission.task_id, Submission.state, Submission.chars,
                                            Submission.flag).where(
            Submission.person_id == person_id, Submission.task_id.in_(task_ids)))
        rec.submissions = {tid: SubmissionState(s, c, f) for tid, s, c, f in subs}
        counts = await session.execute(select(Photo.task_id, func.count()).where(
            Photo.person_id == person_id, Photo.task_id.in_(task_ids)).group_by(Photo.task_id))
        rec.photos = {tid: n for tid, n in counts}
    return rec
