"""请假: one leave per (person, session occurrence); a repeat updates the reason."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Checkin, Leave
from storage.queries.common import insert_if_absent


async def checked_in_occurrences(session: AsyncSession, person_id: int,
                                 occurrence_ids: Sequence[int]) -> set[int]:
    """Which of these occurrences the person already checked in to."""
    if not occurrence_ids:
        return set()
    rows = await session.scalars(select(Checkin.occurrence_id).where(
        Checkin.person_id == person_id, Checkin.occurrence_id.in_(list(occurrence_ids))))
    return set(rows.all())


async def record_leave(session: AsyncSession, *, person_id: int, occurrence_id: int, reason: str,
                       at: datetime) -> bool:
    """Store a leave once; a repeat only replaces the reason. True when it is new."""
    inserted = await insert_if_absent(session, Leave.__table__, {
        "person_id": person_id, "occurrence_id": occurrence_id, "reason": reason, "at": at,
    }, ["person_id", "occurrence_id"])
    if not inserted:
        await session.execute(update(Leave).where(
            Leave.person_id == person_id, Leave.occurrence_id == occurrence_id).values(reason=reason))
    return inserted
