"""The local simulator's chat log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SimMessage


async def add_sim_message(session: AsyncSession, conversation_id: str, sender: str, text: str,
                          at: datetime, from_bot: bool) -> None:
    session.add(SimMessage(conversation_id=conversation_id, sender=sender, text=text, at=at,
                           from_bot=from_bot))


async def sim_messages_after(session: AsyncSession, conversation_id: str, after_id: int,
                             limit: int = 200) -> list[SimMessage]:
    rows = await session.scalars(select(SimMessage).where(
        SimMessage.conversation_id == conversation_id, SimMessage.id > after_id)
        .order_by(SimMessage.id).limit(limit))
    return list(rows.all())
