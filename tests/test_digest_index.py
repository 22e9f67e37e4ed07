"""The digests and the dashboard's trend read submissions from their covering index, and
migration 0002 puts it in place (and takes it out again) on the database the suite runs on."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, inspect, make_url

from bot.web.views import weekly_trend
from handlers.digest import build_all_digests, build_school_digest
from storage.db import Database, alembic_config, is_sqlite
from storage.queries.directory import active_term, all_schools
from tests.known_records import DIGEST_AT, add_known_records


async def submission_indexes(db: Database) -> dict[str, list[str]]:
    async with db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_indexes("submission"))
    return {ix["name"]: list(ix["column_names"]) for ix in found}


def migrate(url: str, direction: str, revision: str) -> None:
    getattr(command, direction)(alembic_config(url), revision)


async def test_migration_0002_swaps_the_task_index_for_the_digest_index_and_back(db: Database) -> None:
    digest_columns = ["task_id", "person_id", "state", "chars", "flag", "similar_to_person_id", "similarity",
                      "accepted_at", "updated_at"]
    at_head = await submission_indexes(db)
    assert at_head.get("ix_submission_digest") == digest_columns
    assert "ix_submission_task_id" not in at_head

    await db.engine.dispose()
    await asyncio.to_thread(migrate, db.url, "downgrade", "0001")
    before = await submission_indexes(db)
    assert before.get("ix_submission_task_id") == ["task_id"] and "ix_submission_digest" not in before

    await db.engine.dispose()
    await asyncio.to_thread(migrate, db.url, "upgrade", "head")
    assert await submission_indexes(db) == at_head


async def test_the_digests_never_read_the_submission_rows(seeded: Database) -> None:
    """The rows hold each reflection's ~3 KB of text; the digest's columns are all in the index."""
    if not is_sqlite(seeded.url):
        pytest.skip("the query plan checked here is SQLite's")
    await add_known_records(seeded)
    reads: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM submission" in statement:
            reads.append((statement, parameters))

    event.listen(seeded.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with seeded.sessions() as s:
            term = await active_term(s)
            await build_all_digests(s, term, DIGEST_AT)  # the district's read
            await weekly_trend(s, term, DIGEST_AT, 7)  # the dashboard's reflections by week
            district = len(reads)
            await build_school_digest(s, term, (await all_schools(s))[0], DIGEST_AT)  # one school's
    finally:
        event.remove(seeded.engine.sync_engine, "before_cursor_execute", capture)
    assert district >= 1 and len(reads) > district

    con = sqlite3.connect(make_url(seeded.url).database or "")
    try:
        plans = [(statement, " | ".join(row[3] for row in con.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)))
                 for statement, parameters in reads]
    finally:
        con.close()
    covering = [plan for _, plan in plans if "COVERING INDEX ix_submission_digest" in plan]
    # the district totals less the few district staff: their rows are looked up by person
    by_person = [plan for _, plan in plans if plan.startswith("SEARCH submission") and "(person_id=?" in plan]
    assert len(covering) + len(by_person) == len(plans), plans
    assert len(covering) >= 3, plans  # the district's digest and trend, and the school's digest
