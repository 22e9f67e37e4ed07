"""The SQLite writer lock that `serve --workers N` shares: writers of several processes take
turns through a lock file, a waiting writer is woken by the doorbell (not by polling), and
the lock dies with the process that held it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import db as db_module
from storage.db import Database, WriterBusy, WriterLock
from storage.models import Inbound
from storage.queries.inbound import claim_inbound

GUARD_S = 30.0  # only a hang guard: a broken lock or doorbell never returns
ROOT = Path(__file__).resolve().parents[1]


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"


async def test_a_waiting_writer_is_woken_by_the_doorbell(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "LOCK_POLL_SECONDS", 3600.0)  # no polling to fall back on
    a, b = WriterLock(tmp_path / "x-writer.lock"), WriterLock(tmp_path / "x-writer.lock")
    try:
        assert a.try_acquire()
        assert not b.try_acquire()  # flock: two opens exclude each other, even in one process
        loop = asyncio.get_running_loop()
        waiting = asyncio.create_task(b.acquire(loop.time() + GUARD_S))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        a.release()
        await asyncio.wait_for(waiting, GUARD_S)
        assert not a.try_acquire()  # b holds it now
        b.release()
        assert a.try_acquire()
        a.release()
    finally:
        a.close()
        b.close()


async def test_a_writer_gives_up_at_the_deadline(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "LOCK_POLL_SECONDS", 0.01)
    a, b = WriterLock(tmp_path / "x-writer.lock"), WriterLock(tmp_path / "x-writer.lock")
    try:
        assert a.try_acquire()
        with pytest.raises(WriterBusy, match="x-writer.lock"):
            await b.acquire(asyncio.get_running_loop().time() + 0.05)
    finally:
        a.close()
        b.close()


def start_holder(path: Path) -> subprocess.Popen[str]:
    """Another process that takes the lock, says so, and sleeps holding it."""
    return subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from storage.db import WriterLock\n"
         f"lock = WriterLock(Path({str(path)!r})); assert lock.try_acquire(); print('held', flush=True)\n"
         "time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)


def lock_file_exists(folder: Path) -> bool:
    return Path(f"{folder / 'shared.db'}-writer.lock").exists()


async def test_the_lock_dies_with_the_process_that_held_it(tmp_path: Path) -> None:
    path = tmp_path / "x-writer.lock"
    holder = start_holder(path)
    lock = WriterLock(path)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not lock.try_acquire()
        holder.kill()  # SIGKILL: it never releases
        holder.wait(GUARD_S)
        await asyncio.wait_for(lock.acquire(asyncio.get_running_loop().time() + GUARD_S), GUARD_S)
        lock.release()
    finally:
        holder.kill()
        holder.wait()
        lock.close()


@pytest.mark.parametrize("shared", [True, False], ids=["inline-commit", "commit-in-thread"])
async def test_two_databases_on_one_file_commit_every_write_once(tmp_path: Path, shared: bool) -> None:
    """Two group-commit writers on one file, as two workers are: 2 × 300 concurrent writes,
    each acknowledged only once it is committed, none lost, none doubled."""
    url = sqlite_url(tmp_path)
    first, second = Database(url, shared=shared), Database(url, shared=shared)
    await first.upgrade()
    await first.start()
    await second.start()
    now = datetime.now(UTC)
    try:
        results = await asyncio.wait_for(asyncio.gather(
            *(db.write(lambda s, i=i, name=name: claim_inbound(s, "t", f"{name}{i}", now))
              for i in range(300) for name, db in (("a", first), ("b", second)))), GUARD_S * 2)
        assert all(results)
        # the same messages again, from the other writer: the stored-once guard refuses all
        again = await asyncio.gather(*(second.write(lambda s, i=i: claim_inbound(s, "t", f"a{i}", now))
                                       for i in range(300)))
        assert not any(again)
        async with first.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Inbound)) == 600
        assert first.batches < 300 and second.batches < 600  # both still commit in groups
        assert lock_file_exists(tmp_path)
    finally:
        await first.close()
        await second.close()


async def test_a_batch_that_never_gets_the_lock_fails_whole_and_stores_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holds the write lock past the busy deadline: every waiting write
    fails with WriterBusy (no one-by-one retry that would wait again), nothing is stored,
    and once the lock is free the same writer commits again."""
    monkeypatch.setattr(db_module, "BUSY_RETRY_SECONDS", 0.2)
    monkeypatch.setattr(db_module, "LOCK_POLL_SECONDS", 0.01)
    db = Database(sqlite_url(tmp_path), shared=True)
    await db.upgrade()
    await db.start()
    holder = start_holder(Path(f"{tmp_path / 'shared.db'}-writer.lock"))
    now = datetime.now(UTC)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        results = await asyncio.wait_for(asyncio.gather(
            *(db.write(lambda s, i=i: claim_inbound(s, "t", f"m{i}", now)) for i in range(5)),
            return_exceptions=True), GUARD_S)
        assert all(isinstance(r, WriterBusy) for r in results), results
        assert db.batches == 1  # failed whole, not retried unit by unit
        holder.kill()
        holder.wait(GUARD_S)
        assert await asyncio.wait_for(db.write(lambda s: claim_inbound(s, "t", "m0", now)), GUARD_S)
        async with db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Inbound)) == 1
    finally:
        holder.kill()
        holder.wait()
        await db.close()
