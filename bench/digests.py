"""Bench: every school digest plus the district digest, 500 schools / 20,000 teachers / a full
term of records on SQLite, through the real code, against a raw-SQL baseline in the same run.

Builds the district once (cached in --dir; SQLAlchemy Core executemany): the spec's spring
term (37 sessions, 4 monthly reflections of ~1000 字, 2 photo tasks), check-ins for ~80 % of
the sessions (some late), leave for a few of the rest, reflections accepted / drafts /
near-duplicate flags, photos (a district built by an older checkout is migrated to the current
schema first). Then, in a fresh process (so its peak RSS is the digests') with `yanxiu
serve`'s event loop and collector settings:
  - baseline: the three per-school completion aggregates in raw sqlite3, nothing else;
  - all school digests + the district digest from one read of the records:
    handlers.digest.all_school_figures, render_school_digest for every school, then
    district_digest over the same figures and render_district_digest (judged on this);
  - as scheduled: the school-digest send and the district-digest send each on their own
    (each reads the records: all_school_figures / district_figures, then renders);
  - peak memory: tracemalloc's peak over one pass, and ru_maxrss of the whole process.
Targets (SPEC §9): ≤ 2 s, ≤ 300 MB.

Run: python -m bench.digests [--schools 500] [--teachers 20000] [--runs 3] [--dir /tmp/yanxiu-digests]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select

from bot.cli import tune_gc
from handlers.digest import (
    all_school_figures,
    district_figures,
    render_district_digest,
    render_school_digest,
)
from kernel.figures import district_digest
from kernel.plan import plan_from_text
from storage.db import Database, upgrade_schema
from storage.models import (
    Checkin,
    Identity,
    Leave,
    Person,
    Photo,
    School,
    SessionOccurrence,
    Submission,
    Task,
)

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "tests" / "data" / "spec_plan.toml"
MONTHLY = """
[[task]]
id = "reflection-{m}"
kind = "reflection"
title = "{m}月研修心得"
min_chars = 1000
due = 2023-{m:02d}-28T17:00:00
hours = 2
"""
PHOTOS = """
[[task]]
id = "photos-june"
kind = "photos"
title = "六月听课照片"
min_photos = 3
due = 2023-06-30T17:00:00
hours = 1
"""
NOW = datetime(2023, 7, 14, 18, 0, tzinfo=UTC)  # the end of term: every session held, every task due
TEXT = ("本学期我认真参加校本研修，围绕课堂教学与课程思政的融合开展学习与实践，反思自己的教学设计。" * 30)[:1000]
CHUNK = 50_000


def plan_text() -> str:
    """The spec's plan plus April–June reflections and a second photo task."""
    return PLAN.read_text(encoding="utf-8") + "".join(MONTHLY.format(m=m) for m in (4, 5, 6)) + PHOTOS


# ---------------------------------------------------------------- building the district


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


async def _load_plan(url: str) -> None:
    from storage.queries.terms import save_plan

    db = Database(url)
    try:
        await db.upgrade()
        text = plan_text()
        async with db.sessions() as s, s.begin():
            await save_plan(s, plan_from_text(text), text, datetime(2023, 2, 20, tzinfo=UTC))
    finally:
        await db.close()


def build(path: Path, schools: int, teachers: int) -> None:
    """Schools, people and a term of records; ~80 % of sessions attended."""
    url = f"sqlite+aiosqlite:///{path}"
    asyncio.run(_load_plan(url))
    started = time.perf_counter()
    engine = create_engine(f"sqlite:///{path}")
    rng = random.Random(2023)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.execute(insert(School), [{"id": i + 1, "code": f"S{i:04d}", "name": f"第{i + 1}学校"}
                                      for i in range(schools)])
        people: list[dict[str, int | str | None]] = [
            {"id": p + 1, "school_id": p % schools + 1, "name": f"教师{p:05d}",
             "role": "school_lead" if p < schools else "teacher", "mobile": f"138{p:08d}"}
            for p in range(teachers)]
        people += [{"id": teachers + k + 1, "school_id": None, "name": f"区教研员{k}", "role": "district_admin",
                    "mobile": None} for k in range(3)]
        conn.execute(insert(Person), people)
        conn.execute(insert(Identity), [{"platform": "dingtalk", "user_id": f"dt{p:05d}", "person_id": p + 1}
                                        for p in range(teachers)])
        occurrences = conn.execute(select(SessionOccurrence.id, SessionOccurrence.starts_at)).all()
        tasks = conn.execute(select(Task.id, Task.kind)).all()
        attended: set[tuple[int, int]] = set()

        def checkins() -> Iterator[dict[str, Any]]:
            for oid, starts in occurrences:  # stored session by session, as they arrive
                for p in range(1, teachers + 1):
                    if rng.random() < 0.8:
                        late = rng.random() < 0.1
                        attended.add((p, oid))
                        yield {"person_id": p, "occurrence_id": oid, "late": late, "platform": "dingtalk",
                               "at": starts + timedelta(minutes=rng.randint(1, 15) if late else -rng.randint(0, 9)),
                               "msg_id": f"msg{p}-{oid}"}

        def leaves() -> Iterator[dict[str, Any]]:
            for oid, starts in occurrences:
                for p in range(1, teachers + 1):
                    if (p, oid) not in attended and rng.random() < 0.15:
                        yield {"person_id": p, "occurrence_id": oid, "reason": "外出培训",
                               "at": starts - timedelta(days=1)}

        def submissions() -> Iterator[dict[str, Any]]:
            for tid, kind in tasks:
                if kind != "reflection":
                    continue
                for p in range(1, teachers + 1):
                    roll = rng.random()
                    if roll >= 0.88:
                        continue  # nothing sent
                    accepted = roll < 0.8
                    flagged = roll < 0.03
                    yield {"person_id": p, "task_id": tid, "text": TEXT if accepted else TEXT[:420],
                           "chars": 1000 if accepted else 420, "state": "accepted" if accepted else "draft",
                           "flag": "near_duplicate" if flagged else None,
                           "similar_to_person_id": (p % teachers) + 1 if flagged else None,
                           "similarity": 0.86 if flagged else None, "signature": bytes(256),
                           "updated_at": NOW - timedelta(days=30), "accepted_at": NOW - timedelta(days=30)
                           if accepted else None}

        def photos() -> Iterator[dict[str, Any]]:
            for tid, kind in tasks:
                if kind != "photos":
                    continue
                for p in range(1, teachers + 1):
                    for n in range(rng.choice((0, 1, 2, 3, 3, 3, 3, 3))):
                        digest = hashlib.sha256(f"{p}/{tid}/{n}".encode()).hexdigest()
                        yield {"person_id": p, "task_id": tid, "sha256": digest, "mime": "image/jpeg",
                               "size": 180_000, "at": NOW - timedelta(days=20)}

        for name, model, rows in (("check-ins", Checkin, checkins()), ("leaves", Leave, leaves()),
                                  ("reflections", Submission, submissions()), ("photos", Photo, photos())):
            counts[name] = 0
            for batch in _chunks(rows):
                conn.execute(insert(model), batch)
                counts[name] += len(batch)
    engine.dispose()
    figures = ", ".join(f"{n:,} {name}" for name, n in counts.items())
    print(f"built {path.name} in {time.perf_counter() - started:.0f} s: {schools} schools, {teachers:,} people, "
          f"{len(occurrences)} sessions, {figures}", flush=True)


# ---------------------------------------------------------------- measuring


BASELINE_SQL = (
    "SELECT p.school_id, COUNT(*) FROM checkin c JOIN person p ON p.id = c.person_id GROUP BY p.school_id",
    "SELECT p.school_id, s.task_id, COUNT(*) FROM submission s JOIN person p ON p.id = s.person_id "
    "WHERE s.state = 'accepted' GROUP BY p.school_id, s.task_id",
    "SELECT school_id, task_id, COUNT(*) FROM (SELECT p.school_id, f.task_id FROM photo f "
    "JOIN person p ON p.id = f.person_id GROUP BY f.person_id, f.task_id HAVING COUNT(*) >= 3) "
    "GROUP BY school_id, task_id",
)


def baseline(path: Path) -> float:
    """Per-school completion only (check-ins, accepted reflections, complete photo sets), raw sqlite3."""
    con = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        for sql in BASELINE_SQL:
            con.execute(sql).fetchall()
        return time.perf_counter() - started
    finally:
        con.close()


@dataclass
class Timing:
    wall: float
    cpu: float
    size: int = 0


async def _timed(fn: Callable[[], Awaitable[int]]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    size = await fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu, size)


async def one_pass(db: Database, term: Any) -> int:
    """Every school digest and the district digest from one read of the records; bytes of text."""
    async with db.sessions() as s:
        figures = await all_school_figures(s, term, NOW)
    texts = [render_school_digest(d) for d in figures]
    texts.append(render_district_digest(district_digest(term, figures, NOW)))
    return sum(len(t.encode()) for t in texts)


async def school_send(db: Database, term: Any) -> int:
    """What the scheduled school-digest send builds: every school's digest."""
    async with db.sessions() as s:
        return sum(len(render_school_digest(d).encode()) for d in await all_school_figures(s, term, NOW))


async def district_send(db: Database, term: Any) -> int:
    """What the scheduled district-digest send builds (its own read of the records)."""
    async with db.sessions() as s:
        return len(render_district_digest(await district_figures(s, term, NOW)).encode())


async def measure(path: Path, runs: int) -> None:
    from storage.queries.directory import active_term

    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.sessions() as s:
            term = await active_term(s)
        assert term is not None
        await one_pass(db, term)  # warm-up: templates compiled, pages cached, as in a running bot
        bases, passes = [], []
        for run in range(1, runs + 1):
            base = baseline(path)
            both = await _timed(lambda: one_pass(db, term))
            school = await _timed(lambda: school_send(db, term))
            district = await _timed(lambda: district_send(db, term))
            bases.append(base)
            passes.append(both)
            print(f"run {run}: baseline (raw SQL aggregates) {base:.2f} s | all school digests + district digest "
                  f"{both.wall:.2f} s (CPU {both.cpu:.2f} s, {both.size / 1e6:.1f} MB of text) | as scheduled: "
                  f"school send {school.wall:.2f} s, district send {district.wall:.2f} s | "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        tracemalloc.start()
        await one_pass(db, term)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await db.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = statistics.median(p.wall for p in passes)
    base = statistics.median(bases)
    print(f"median of {runs}: all school digests + district digest {wall:.2f} s "
          f"(CPU {statistics.median(p.cpu for p in passes):.2f} s; target ≤ 2 s), "
          f"baseline {base:.2f} s: {wall / base:.1f}x the bare aggregates")
    print(f"memory: tracemalloc peak {traced_peak / 2**20:.0f} MB over one pass, process peak RSS {rss:.0f} MB "
          f"(target ≤ 300 MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schools", type=int, default=500)
    ap.add_argument("--teachers", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/yanxiu-digests")
    ap.add_argument("--rebuild", action="store_true", help="build the district again")
    ap.add_argument("--measure", metavar="DB", help=argparse.SUPPRESS)  # the fresh measuring process
    args = ap.parse_args()
    if args.measure:
        tune_gc()  # as `yanxiu serve`, which runs the scheduled digests
        runner: Any = asyncio.run
        try:  # the loop `yanxiu serve` runs on
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
        runner(measure(Path(args.measure), args.runs))
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"district-{args.schools}-{args.teachers}.db"
    if args.rebuild or not path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        build(path, args.schools, args.teachers)
    else:  # a district built by an older checkout: bring its schema (indexes) up to this one's
        upgrade_schema(f"sqlite+aiosqlite:///{path}")
    print(f"digests: {args.schools} schools, {args.teachers:,} teachers, {path}", flush=True)
    subprocess.run([sys.executable, "-m", "bench.digests", "--measure", str(path), "--runs", str(args.runs)],
                   cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
