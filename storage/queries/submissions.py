"""Reflections: one current text per (person, task), its 字数, state and near-duplicate flag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.inline import sqlite_driver
from storage.models import Submission
from storage.queries.common import upsert_insert


@dataclass(frozen=True, slots=True)
class StoredSubmission:
    text: str
    chars: int
    state: str  # draft | accepted
    flag: str | None


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """What a reflection handler decided to keep for one person and task."""

    person_id: int
    task_id: int
    text: str
    chars: int
    state: str  # draft | accepted
    signature: bytes
    flag: str | None = None  # near_duplicate
    similar_to_person_id: int | None = None
    similarity: float | None = None


async def current_submission(session: AsyncSession, person_id: int,
                             task_id: int) -> StoredSubmission | None:
    row = (await session.execute(
        select(Submission.text, Submission.chars, Submission.state, Submission.flag).where(
            Submission.person_id == person_id, Submission.task_id == task_id))).first()
    return StoredSubmission(*row) if row else None


async def other_signatures(session: AsyncSession, task_id: int,
                           person_id: int) -> list[tuple[int, bytes]]:
    """Every other person's signature in this task (drafts and accepted), in one query."""
    raw = sqlite_driver(session)
    if raw is not None:  # in the group-commit writer: skip SQLAlchemy's per-row cost
        return raw.execute(
            "SELECT person_id, signature FROM submission WHERE task_id = ? AND person_id != ? "
            "AND signature IS NOT NULL", (task_id, person_id)).fetchall()
    rows = await session.execute(select(Submission.person_id, Submission.signature).where(
        Submission.task_id == task_id, Submission.person_id != person_id,
        Submission.signature.is_not(None)))
    return [(pid, bytes(sig)) for pid, sig in rows if sig is not None]


async def save_submission(session: AsyncSession, new: NewSubmission, now: datetime) -> None:
    """Insert or replace the person's submission for the task (unique person/task)."""
    values = {
        "text": new.text, "chars": new.chars, "state": new.state, "flag": new.flag,
        "similar_to_person_id": new.similar_to_person_id, "similarity": new.similarity,
        "signature": new.signature, "updated_at": now,
        "accepted_at": now if new.state == "accepted" else None,
    }
    stmt = upsert_insert(session, Submission.__table__).values(
        person_id=new.person_id, task_id=new.task_id, **values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["person_id", "task_id"], set_=values))
