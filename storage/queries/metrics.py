"""Figures for /metrics that live in the database: outbox depth by state and route, lease holders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChatGroup, Outbox, SchedulerLease


async def outbox_by_state_and_route(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = await session.execute(
        select(Outbox.state, func.coalesce(ChatGroup.route_kind, "none"), func.count())
        .join(ChatGroup, ChatGroup.id == Outbox.group_id)
        .group_by(Outbox.state, ChatGroup.route_kind))
    return [(state, route, n) for state, route, n in rows]


async def live_leases(session: AsyncSession, now: datetime) -> list[tuple[str, str]]:
    rows = await session.execute(select(SchedulerLease.name, SchedulerLease.holder)
                                 .where(SchedulerLease.expires_at > now))
    return [(name, holder) for name, holder in rows]
