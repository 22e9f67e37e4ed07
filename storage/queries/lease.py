"""Leases: one holder at a time per name (the scheduler, the outbox sender), taken over on expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SchedulerLease
from storage.queries.common import affected, insert_if_absent

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def take_lease(session: AsyncSession, name: str, holder: str, now: datetime,
                     ttl: timedelta) -> tuple[bool, str | None]:
    """Take or renew the lease `name` for `holder` until now + ttl.

    Succeeds when nobody holds it, `holder` already does, or the holder's time ran out; the
    conditional UPDATE makes two contenders unable to both succeed. Returns (held now?,
    the previous holder as read before the attempt).
    """
    expires = now + ttl
    if await insert_if_absent(session, SchedulerLease.__table__,
                              {"name": name, "holder": holder, "expires_at": expires}, ["name"]):
        return True, None
    previous = await session.scalar(select(SchedulerLease.holder).where(SchedulerLease.name == name))
    result = await session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name,
               (SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now))
        .values(holder=holder, expires_at=expires))
    return bool(affected(result)), previous


async def release_lease(session: AsyncSession, name: str, holder: str) -> None:
    """Give the lease up at once (on shutdown) so another process need not wait for expiry."""
    await session.execute(update(SchedulerLease)
                          .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                          .values(expires_at=EPOCH))

