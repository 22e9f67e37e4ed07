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


async def test_the_same_message_from_two_writers_is_handled_once(db: Database) -> None:
    """Each message id is handled once whoever else writes it, on both databases. On SQLite
    another process tries to write the same id after our look-up and before our write; on
    PostgreSQL a second transaction claims it concurrently."""
    from storage.queries.inbound import handle_once

    await db.start()
    now = datetime.now(UTC)
    runs: list[str] = []

    if db.url.startswith("sqlite"):
        path = db.url.split("///", 1)[1]
        refused: list[str] = []

        async def handle() -> str:
            # another process tries to write the same id between our look-up and our insert
            other = sqlite3.connect(path, timeout=0)
            try:
                other.execute("INSERT INTO inbound (platform, msg_id, received_at, reply_text) "
                              "VALUES ('t', 'race', '2026-01-01 00:00:00.000000', 'theirs')")
                other.commit()
            except sqlite3.OperationalError as exc:  # the batch holds the write lock
                refused.append(str(exc))
            finally:
                other.close()
            runs.append("ours")
            return "ours"

        outcome = await db.write(lambda s: handle_once(s, "t", "race", now, handle))
        assert outcome == (True, "ours") and runs == ["ours"]
        assert refused == ["database is locked"]
    else:
        async def slow() -> str:
            runs.append("first")
            await asyncio.sleep(0.2)  # the second claim waits on this uncommitted key
            return "first"

        async def fast() -> str:
            runs.append("second")
            return "second"

        async def one(handle):  # type: ignore[no-untyped-def]
            async with db.sessions() as s, s.begin():
                return await handle_once(s, "t", "race", now, handle)

        first = asyncio.create_task(one(slow))
        await asyncio.sleep(0.05)
        outcomes = await asyncio.gather(first, one(fast))
        assert sorted(outcomes) == [(False, "first"), (True, "first")]
        assert runs == ["first"]
    async with db.sessions() as s:
        rows = (await s.execute(select(Inbound.msg_id, Inbound.reply_text))).all()
    assert [tuple(r) for r in rows] == [("race", "ours" if db.url.startswith("sqlite") else "first")]
