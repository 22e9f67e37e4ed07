"""The stored-once guard: a platform message id is handled at most once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.inline import sqlite_driver, sqlite_time
from storage.models import Inbound
from storage.queries.common import insert_if_absent


async def claim_inbound(session: AsyncSession, platform: str, msg_id: str, at: datetime) -> bool:
    """True when this message is new; False when it was handled (or is being handled) before."""
    raw = sqlite_driver(session)
    if raw is not None:  # the burst's hot path: driver-level SQL, same statement
        cur = raw.execute("INSERT INTO inbound (platform, msg_id, received_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (platform, msg_id) DO NOTHING", (platform, msg_id, sqlite_time(at)))
        return bool(cur.rowcount)
    return await insert_if_absent(
        session, Inbound.__table__, {"platform": platform, "msg_id": msg_id, "received_at": at},
        ["platform", "msg_id"])


async def stored_reply(session: AsyncSession, platform: str, msg_id: str) -> str | None:
    return await session.scalar(
        select(Inbound.reply_text).where(Inbound.platform == platform, Inbound.msg_id == msg_id))


async def remember_reply(session: AsyncSession, platform: str, msg_id: str, text: str | None) -> None:
    raw = sqlite_driver(session)
    if raw is not None:
        raw.execute("UPDATE inbound SET reply_text = ? WHERE platform = ? AND msg_id = ?",
                    (text, platform, msg_id))
        return
    await session.execute(update(Inbound).where(Inbound.platform == platform, Inbound.msg_id == msg_id)
                          .values(reply_text=text))
