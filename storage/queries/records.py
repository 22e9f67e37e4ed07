"""A teacher's evidence: check-ins, leave, reflections and photos."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.records import PersonRecords, SubmissionState
from storage.inline import sqlite_datetime, sqlite_driver, sqlite_time
from storage.models import Checkin, FileSubmission, Leave, Photo, Submission
from storage.queries.common import insert_if_absent
from storage.queries.files import person_owner


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






async def first_checkin_among(session: AsyncSession, person_id: int,
                              occurrence_ids: list[int]) -> tuple[int, datetime] | None:
    """(occurrence id, time) of this person's check-in on any of these meetings, if any: the
    other days of an either-day cycle."""
    raw = sqlite_driver(session)
    if raw is not None:  # the burst's path: driver-level SQL
        marks = ",".join("?" * len(occurrence_ids))
        row = raw.execute(f"SELECT occurrence_id, at FROM checkin WHERE person_id = ? "
                          f"AND occurrence_id IN ({marks}) ORDER BY at LIMIT 1",
                          (person_id, *occurrence_ids)).fetchone()
        return (row[0], sqlite_datetime(row[1])) if row is not None else None
    row = (await session.execute(select(Checkin.occurrence_id, Checkin.at).where(
        Checkin.person_id == person_id, Checkin.occurrence_id.in_(occurrence_ids))
        .order_by(Checkin.at).limit(1))).first()
    return (row[0], row[1]) if row is not None else None


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
        files = await session.execute(select(FileSubmission.task_id, func.count()).where(
            FileSubmission.owner == person_owner(person_id), FileSubmission.task_id.in_(task_ids))
            .group_by(FileSubmission.task_id))
        rec.files = {tid: n for tid, n in files}
    return rec
