"""Profile: where `python -m bench.digests` spends its time over the bare aggregates — the
district's records read (each query through the app, and the same SQL in raw sqlite3), the
figures assembled, the 500 school digests and the district digest rendered — in one process,
on the district bench.digests built (run it first), on the loop `yanxiu serve` runs on.

Run: python -m bench.profile_digests [--runs 3] [--dir /tmp/yanxiu-digests] [--cprofile 30]
`--cprofile N`: after the timed runs, one more pass under cProfile, its N top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.digests import NOW, baseline
from bot.cli import tune_gc
from handlers.digest import render_district_digest, render_school_digest
from kernel.attendance import Units
from kernel.figures import district_digest, school_digests
from storage.db import Database
from storage.queries.digest import digest_records
from storage.queries.directory import active_term


async def one_pass(db: Database, term: Any, statements: list[tuple[str, Any, float]] | None = None
                   ) -> dict[str, float]:
    """Seconds of each step of all school digests + the district digest."""
    t0 = time.perf_counter()
    async with db.sessions() as s:
        rec = await digest_records(s, term_id=term.id, task_ids=list(term.task_ids.values()),
                                   labels=Units(term.plan, term.occurrences, NOW).labels())
    t1 = time.perf_counter()
    if statements is not None:
        statements.append(("", None, t1))  # the end of the last statement's rows
    figures = school_digests(term, rec, NOW)
    t2 = time.perf_counter()
    for d in figures:
        render_school_digest(d)
    t3 = time.perf_counter()
    render_district_digest(district_digest(term, figures, NOW))
    t4 = time.perf_counter()
    return {"records": t1 - t0, "assemble": t2 - t1, "render 500 schools": t3 - t2,
            "district": t4 - t3, "total": t4 - t0}


def raw_statements(path: Path, statements: list[tuple[str, Any, float]]) -> None:
    """Each statement the pass ran: its time in the app (to the next statement, so with the
    Python that builds its rows) against the same SQL and parameters in raw sqlite3."""
    con = sqlite3.connect(path)
    try:
        app_total = raw_total = 0.0
        for (sql, params, at), (_, _, end) in zip(statements, statements[1:], strict=False):
            started = time.perf_counter()
            rows = con.execute(sql, params).fetchall()
            raw = time.perf_counter() - started
            app_total, raw_total = app_total + end - at, raw_total + raw
            print(f"  app {end - at:.3f} s  raw {raw:.3f} s  {len(rows):6d} rows  {' '.join(sql.split())[:90]}")
        print(f"  records: app {app_total:.3f} s, the same SQL raw {raw_total:.3f} s")
    finally:
        con.close()


async def measure(path: Path, runs: int, top: int) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.sessions() as s:
            term = await active_term(s)
        assert term is not None
        await one_pass(db, term)  # warm-up: templates compiled, pages cached
        for run in range(1, runs + 1):
            base = baseline(path)
            steps = await one_pass(db, term)
            print(f"run {run}: baseline {base:.3f} s | " + " | ".join(f"{k} {v:.3f} s" for k, v in steps.items())
                  + f" | {steps['total'] / base:.1f}x the baseline")
        statements: list[tuple[str, Any, float]] = []

        def before(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
            statements.append((sql, params, time.perf_counter()))

        event.listen(db.engine.sync_engine, "before_cursor_execute", before)
        await one_pass(db, term, statements)
        event.remove(db.engine.sync_engine, "before_cursor_execute", before)
        raw_statements(path, statements)
        if top:
            profile = cProfile.Profile()
            profile.enable()
            await one_pass(db, term)
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(top)
    finally:
        await db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schools", type=int, default=500)
    ap.add_argument("--teachers", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/yanxiu-digests")
    ap.add_argument("--cprofile", type=int, default=0, metavar="N")
    args = ap.parse_args()
    path = Path(args.dir) / f"district-{args.schools}-{args.teachers}.db"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run python -m bench.digests first")
    tune_gc()  # as `yanxiu serve`
    asyncio.run(measure(path, args.runs, args.cprofile))


if __name__ == "__main__":
    main()
