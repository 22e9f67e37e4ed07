"""Dialect-portable building blocks shared by the query modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import FromClause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_insert(session: AsyncSession, table: FromClause) -> Any:
    """An INSERT that supports `.on_conflict_do_nothing()` / `.on_conflict_do_update()`."""
    name = session.bind.dialect.name if session.bind is not None else "sqlite"
    builder: Any = postgresql.insert if name == "postgresql" else sqlite.insert
    return builder(table)


async def insert_if_absent(session: AsyncSession, table: FromClause, values: dict[str, Any],
                           conflict: list[str]) -> bool:
    """Insert one row unless its unique key exists; True when this call inserted it."""
    stmt = upsert_insert(session, table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    result = await session.execute(stmt)
    return bool(affected(result))


def affected(result: Any) -> int:
    """Rows an INSERT/UPDATE/DELETE touched (`CursorResult.rowcount`; plain `Result` is not typed so)."""
    return int(result.rowcount)
