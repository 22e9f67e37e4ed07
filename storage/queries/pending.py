"""Actions waiting for their author's 确认: one per person, gone once confirmed or cancelled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PendingAction
from storage.queries.common import upsert_insert


@dataclass(frozen=True, slots=True)
class Pending:
    kind: str
    payload: dict[str, Any]
    expires_at: datetime


async def ask_to_confirm(session: AsyncSession, *, person_id: int, kind: str,
                         payload: dict[str, Any], now: datetime, expires_at: datetime) -> None:
    """Keep `payload` until the person confirms; a newer request replaces an older one."""
    values = {"person_id": person_id, "kind": kind, "payload": payload, "created_at": now,
              "expires_at": expires_at}
    stmt = upsert_insert(session, PendingAction.__table__).values(**values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["person_id"],
        set_={"kind": kind, "payload": payload, "created_at": now, "expires_at": expires_at}))


async def take_pending(session: AsyncSession, person_id: int) -> Pending | None:
    """Remove and return the person's waiting action (expired or not: the caller says which).

    DELETE … RETURNING claims it: of two 确认 racing in two processes, one gets it."""
    row = (await session.execute(
        delete(PendingAction).where(PendingAction.person_id == person_id)
        .returning(PendingAction.kind, PendingAction.payload, PendingAction.expires_at))).first()
    return Pending(row[0], dict(row[1]), row[2]) if row is not None else None


async def peek_pending(session: AsyncSession, person_id: int) -> Pending | None:
    """The person's waiting action, left in place (a 「文件 <名称>」 serves several files)."""
    row = (await session.execute(select(PendingAction.kind, PendingAction.payload,
                                        PendingAction.expires_at)
                                 .where(PendingAction.person_id == person_id))).first()
    return Pending(row[0], dict(row[1]), row[2]) if row is not None else None


async def pending_kind(session: AsyncSession, person_id: int) -> str | None:
    return await session.scalar(select(PendingAction.kind).where(PendingAction.person_id == person_id))
