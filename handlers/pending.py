"""Two steps for what reaches many people: the request is kept, its author's 确认 carries it out.

`ask` stores the request (replacing the author's earlier one); handlers.confirm takes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from storage.queries.pending import ask_to_confirm

CONFIRM_MINUTES = 10


async def ask(ctx: Context, session: AsyncSession, kind: str, payload: dict[str, Any]) -> datetime:
    """Keep `payload` for the sender's 确认 within CONFIRM_MINUTES; returns when it expires."""
    assert ctx.person is not None
    expires = ctx.now + timedelta(minutes=CONFIRM_MINUTES)
    await ask_to_confirm(session, person_id=ctx.person.id, kind=kind, payload=payload,
                         now=ctx.now, expires_at=expires)
    return expires
