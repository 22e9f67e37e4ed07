"""An AsyncSession look-alike over a synchronous SQLite Session, for the group-commit writer.

With aiosqlite every statement is a hop to the driver's thread and back (tens of µs of
pure overhead, several per message). SQLite statements themselves take microseconds, so
the writer runs them inline on the event loop through this adapter and sends only the
commit — the part that waits on fsync — to a worker thread: one thread hop per batch.
Handlers keep their `await session.execute(…)` code unchanged.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy.orm import Session


class InlineSession:
    """The subset of AsyncSession the handlers and queries use, executed synchronously."""

    def __init__(self, session: Session) -> None:
        self.sync_session = session
        self._driver: Any = None

    def driver_connection(self) -> Any:
        """The sqlite3 connection of this transaction (looked up once per batch)."""
        if self._driver is None:
            self._driver = self.sync_session.connection().connection.driver_connection
        return self._driver

    @property
    def bind(self) -> Any:
        return self.sync_session.bind

    async def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return self.sync_session.execute(statement, params, **kw)

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return self.sync_session.scalar(statement, params, **kw)

    async def scalars(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return self.sync_session.scalars(statement, params, **kw)

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        return self.sync_session.get(entity, ident, **kw)

    def add(self, instance: object) -> None:
        self.sync_session.add(instance)

    def add_all(self, instances: Any) -> None:
        self.sync_session.add_all(instances)

    async def delete(self, instance: object) -> None:
        self.sync_session.delete(instance)

    async def flush(self, objects: Any = None) -> None:
        self.sync_session.flush(objects)

    async def refresh(self, instance: object, attribute_names: Any = None) -> None:
        self.sync_session.refresh(instance, attribute_names)

    async def merge(self, instance: Any, **kw: Any) -> Any:
        return self.sync_session.merge(instance, **kw)


SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DateTime storage format


def sqlite_driver(session: Any) -> Any | None:
    """The raw sqlite3 connection behind an InlineSession, for the few hot-path statements.

    SQLAlchemy costs ~60 µs a statement, the driver ~6 µs; the check-in burst runs three
    statements per message. Anything else returns None and takes the portable path.
    """
    if not isinstance(session, InlineSession):
        return None
    return session.driver_connection()


_last_time: tuple[Any, str] = (None, "")


def sqlite_time(value: Any) -> str:
    """An aware datetime as the naive-UTC text UTCDateTime stores in SQLite."""
    global _last_time
    last = _last_time  # one message stores its receive time twice (inbound, check-in)
    if last[0] is value:
        return last[1]
    # the same text as strftime(SQLITE_DATETIME), several times faster
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = str(utc.isoformat(" ", "microseconds")[:26])  # without its "+00:00"
    _last_time = (value, text)
    return text


def sqlite_datetime(text: str) -> Any:
    """The naive-UTC text UTCDateTime stores in SQLite, back as an aware datetime."""
    from datetime import datetime

    return datetime.fromisoformat(text).replace(tzinfo=UTC)
