"""The stored-once guard: a platform message id is handled at most once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.inline import sqlite_driver, sqlite_time
from storage.models import Inbound
from storage.queries.common import insert_if_absent


async def handle_once(session: AsyncSession, platform: str, msg_id: str, at: datetime,
                      handle: Callable[[], Awaitable[str | None]]) -> tuple[bool, str | None]:
    """Run `handle` for a message id not seen before and keep the reply text it returns with
    the id: (True, reply). For an id seen before, `handle` does not run: (False, its reply).

    On PostgreSQL (and any session but the SQLite writer's) the id is claimed first with an
    INSERT … ON CONFLICT DO NOTHING, so a second instance handling the same message waits on
    that key and then finds it taken; the reply is added by an UPDATE.

    On the SQLite group-commit writer, one look-up and one INSERT with the reply do the same
    with a statement less. No other process can slip the id in between: once the batch has
    written, it holds the write lock until its commit, and before that WAL refuses to let a
    transaction write over a snapshot that another has since changed (SQLITE_BUSY_SNAPSHOT),
    which the writer rolls back and retries, to find the id taken.
    """
    raw = sqlite_driver(session)
    if raw is None:
        if not await claim_inbound(session, platform, msg_id, at):
            return False, await stored_reply(session, platform, msg_id)
        text = await handle()
        await remember_reply(session, platform, msg_id, text)
        return True, text
    seen = raw.execute("SELECT reply_text FROM inbound WHERE platform = ? AND msg_id = ?",
                       (platform, msg_id)).fetchone()
    if seen is not None:
        return False, seen[0]
    text = await handle()
    raw.execute("INSERT INTO inbound (platform, msg_id, received_at, reply_text) VALUES (?, ?, ?, ?)",
                (platform, msg_id, sqlite_time(at), text))
    return True, text


async def claim_inbound(session: AsyncSession, platform: str, msg_id: str, at: datetime) -> bool:
    """True when this message is new; False when it was handled (or is being handled) before."""
    return await insert_if_absent(
        session, Inbound.__table__, {"platform": platform, "msg_id": msg_id, "received_at": at},
        ["platform", "msg_id"])


async def stored_reply(session: AsyncSession, platform: str, msg_id: str) -> str | None:
    return await session.scalar(
        select(Inbound.reply_text).where(Inbound.platform == platform, Inbound.msg_id == msg_id))


async def remember_reply(session: AsyncSession, platform: str, msg_id: str, text: str | None) -> None:
    await session.execute(update(Inbound).where(Inbound.platform == platform, Inbound.msg_id == msg_id)
                          .values(reply_text=text))
