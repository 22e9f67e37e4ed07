"""The migrations build exactly the schema the models describe, and 0003 (the change
stamp the per-process caches compare) goes down and up again, on the suite's database."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import Database
from storage.models import Base
from storage.queries.directory import directory_changed, directory_version
from tests.test_digest_index import migrate


async def test_the_migrations_build_the_models_schema(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff: list[Any] = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
    assert diff == []


async def test_migration_0003_adds_the_change_stamp_and_takes_it_away(db: Database) -> None:
    async with db.sessions() as s, s.begin():
        assert await directory_version(s) == 0  # the row is there from the migration
        await directory_changed(s)
    async with db.sessions() as s:
        assert await directory_version(s) == 1
    await asyncio.to_thread(migrate, db.url, "downgrade", "0002")
    async with db.engine.connect() as conn:
        assert "change_stamp" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
    await asyncio.to_thread(migrate, db.url, "upgrade", "head")
    async with db.sessions() as s, s.begin():
        assert await directory_version(s) == 0
        await directory_changed(s)
        await directory_changed(s)
    async with db.sessions() as s:
        assert await directory_version(s) == 2
