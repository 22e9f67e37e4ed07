"""The database: engine set-up (SQLite pragmas), schema migrations, and group commit.

Group commit: every unit of work that must be durable before a platform is acknowledged
goes through `Database.write(fn)`. One writer task takes all the units waiting, runs them
in one transaction, commits once, then releases every caller. If the batch fails, each
unit is re-run in its own transaction so one bad unit cannot sink the others.

SQLite is the one-process embedded default: one `yanxiu serve` writes to it (a CLI command
such as `roster import` may write meanwhile; the writer then retries). Several serving
processes or hosts use PostgreSQL, whose own locking carries them (bot/workers.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from storage.inline import InlineSession

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[AsyncSession], Awaitable[Any]]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_RETRY_SECONDS = 30.0


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def create_engine(url: str) -> AsyncEngine:
    """An async engine; for SQLite: WAL, a busy timeout, foreign keys, full sync on commit."""
    if not is_sqlite(url):
        return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    db_file = sqlite_file(url)
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})
    _sqlite_pragmas(engine.sync_engine)
    return engine


def create_writer_engine(url: str) -> Engine:
    """SQLite's single writer connection, driven synchronously by the group-commit writer."""
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_sync_engine(sync_url, poolclass=StaticPool,
                                connect_args={"timeout": 0, "check_same_thread": False})
    _sqlite_pragmas(engine)

    @event.listens_for(engine, "connect")
    def _no_busy_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")  # see Database._run_inline
        # the driver would BEGIN lazily, at the first INSERT; the writer begins itself:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        # take the write lock when the batch starts, not at its first write: a look-up
        # (the stored-once guard's) and the write that follows it see the same database
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(url: str) -> Any:
    """Alembic's configuration for this project's migrations against `url`."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade_schema(url: str, revision: str = "head") -> None:
    """Run Alembic migrations up to `revision` (blocking; call from a thread in async code)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


class Database:
    """Owns the engine, the session factory and the group-commit writer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer_engine = create_writer_engine(url) if is_sqlite(url) else None
        self._queue: asyncio.Queue[tuple[Unit, asyncio.Future[Any]]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        self.units = 0

    async def upgrade(self) -> None:
        await asyncio.to_thread(upgrade_schema, self.url)

    async def start(self) -> None:
        if self._writer is None:
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write_loop(), name="db-writer")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            self._writer = None
        if self._writer_engine is not None:
            self._writer_engine.dispose()
        await self.engine.dispose()

    async def write(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `fn(session)` in a transaction; return once it is committed (group commit)."""
        if self._queue is None:
            async with self.sessions() as session, session.begin():
                return await fn(session)
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, fut))
        return await fut

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit_batch(batch)
            except asyncio.CancelledError:
                for _, fut in batch:
                    if not fut.done():
                        fut.cancel()
                raise

    async def _commit_batch(self, batch: list[tuple[Unit, asyncio.Future[Any]]]) -> None:
        self.batches += 1
        self.units += len(batch)
        results: list[Any] = []
        try:
            if self._writer_engine is not None:
                results = await self._run_inline(batch)
            else:
                async with self.sessions() as session, session.begin():
                    for fn, _ in batch:
                        results.append(await fn(session))
        except Exception as exc:
            if len(batch) == 1:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            log.warning("group commit of %d units failed; retrying them one by one", len(batch))
            for unit in batch:
                await self._commit_batch([unit])
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def _run_inline(self, batch: list[tuple[Unit, asyncio.Future[Any]]]) -> list[Any]:
        """SQLite: statements inline on the loop, the commit (fsync) in a worker thread.

        The writer connection never waits for a lock inside SQLite (that would block the
        event loop): a database busy with another process's write (a CLI command) rolls the
        batch back and retries it after an asynchronous pause, up to BUSY_RETRY_SECONDS.
        """
        assert self._writer_engine is not None
        delay = 0.002
        deadline = asyncio.get_running_loop().time() + BUSY_RETRY_SECONDS
        while True:
            session = Session(self._writer_engine, expire_on_commit=False)
            try:
                session.begin()
                inline = InlineSession(session)
                results = [await fn(inline) for fn, _ in batch]  # type: ignore[arg-type]
                await asyncio.to_thread(session.commit)
                return results
            except (OperationalError, sqlite3.OperationalError) as exc:
                session.rollback()
                if not _is_busy(exc) or asyncio.get_running_loop().time() > deadline:
                    raise
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)


def _is_busy(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "locked" in text or "busy" in text
