"""The group-commit writer: acknowledged means committed, one bad unit sinks no other,
and a database locked by someone else never blocks the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.models import Inbound
from storage.queries.inbound import claim_inbound


async def inbound_count(db: Database) -> int:
    async with db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(Inbound))


async def test_concurrent_writes_are_committed_together(db: Database) -> None:
    await db.start()
    now = datetime.now(UTC)
    results = await asyncio.gather(*(db.write(lambda s, i=i: claim_inbound(s, "t", f"m{i}", now))
                                      for i in range(200)))
    assert all(results)
    assert await inbound_count(db) == 200
    assert db.batches < 200  # some commits carried several units


async def test_a_failing_unit_does_not_sink_the_others(db: Database) -> None:
    await db.start()
    now = datetime.now(UTC)

    async def bad(session):  # type: ignore[no-untyped-def]
        await claim_inbound(session, "t", "bad", now)
        raise ValueError("handler bug")

    good = [db.write(lambda s, i=i: claim_inbound(s, "t", f"g{i}", now)) for i in range(20)]
    outcomes = await asyncio.gather(*good, db.write(bad), return_exceptions=True)
    assert all(o is True for o in outcomes[:20])
    assert isinstance(outcomes[20], ValueError)
    async with db.sessions() as s:
        ids = set((await s.scalars(select(Inbound.msg_id))).all())
    assert "bad" not in ids and len(ids) == 20


async def test_a_locked_database_waits_without_blocking_the_loop(db: Database, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite locking")
    await db.start()
    path = db_url.split("///", 1)[1]
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    tick_task = asyncio.create_task(ticker())
    write = asyncio.create_task(db.write(lambda s: claim_inbound(s, "t", "late", datetime.now(UTC))))
    while ticks < 20:  # the loop keeps running while the write waits
        await asyncio.sleep(0.001)
    assert not write.done()
    other.rollback()
    other.close()
    assert await write is True
    tick_task.cancel()
    assert await inbound_count(db) == 1
