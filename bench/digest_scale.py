"""Bench: every school digest plus the district digest for a large district, on SQLite.

Builds (once, cached in --dir) a district of --schools schools and --teachers teachers with
a full spring term of records: check-ins (~90 %, some late), leave, four monthly
reflections of ~1000 字 (accepted, drafts, near-duplicate flags), two photo tasks. Then
times all school digests + the district digest at the end of term, and prints the peak RSS.
Targets (SPEC §9): ≤ 2 s, ≤ 300 MB.

Run: python -m bench.digest_scale [--schools 500] [--teachers 20000] [--dir /tmp/yanxiu-digest-bench]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.plan import plan_from_text
from storage.db import Database
from storage.queries.terms import save_plan

TZ_PLAN = """
[term]
name = "bench-spring"
start = 2023-03-01
end = 2023-07-14
timezone = "Asia/Shanghai"
required_hours = 36

[[session]]
name = "校本研修集中学习"
weekdays = ["tue", "thu"]
start = "10:00"
hours = 1
{tasks}
[digest]
school = "fri 16:00"
district = "mon 08:30"
"""
REFLECTIONS = [(f"reflection-{m}", f"{m}月研修心得", f"2023-{m:02d}-28T17:00:00") for m in (3, 4, 5, 6)]
PHOTOS = [("photos-april", "四月听课照片", "2023-04-30T17:00:00"), ("photos-june", "六月听课照片", "2023-06-30T17:00:00")]
STAMP = "%Y-%m-%d %H:%M:%S.%f"
TEXT = ("本学期我认真参加校本研修，围绕课堂教学与课程思政的融合开展学习与实践，" * 40)[:1000]


def plan_text() -> str:
    tasks = "".join(f'\n[[task]]\nid = "{k}"\nkind = "reflection"\ntitle = "{t}"\nmin_chars = 1000\n'
                    f"due = {d}\nhours = 2\n" for k, t, d in REFLECTIONS)
    tasks += "".join(f'\n[[task]]\nid = "{k}"\nkind = "photos"\ntitle = "{t}"\nmin_photos = 3\n'
                     f"due = {d}\nhours = 1\n" for k, t, d in PHOTOS)
    return TZ_PLAN.format(tasks=tasks)


def utc(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime(STAMP)


async def build(path: Path, schools: int, teachers: int) -> None:
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    await db.upgrade()
    text = plan_text()
    async with db.sessions() as s, s.begin():
        await save_plan(s, plan_from_text(text), text, datetime(2023, 3, 1, tzinfo=UTC))
    await db.close()
    rng = random.Random(2023)
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO school (id, code, name) VALUES (?, ?, ?)",
                    [(i + 1, f"S{i:04d}", f"第{i}学校") for i in range(schools)])
    con.executemany("INSERT INTO person (id, school_id, name, role, dingtalk_userid) VALUES (?, ?, ?, ?, ?)",
                    [(p + 1, p % schools + 1, f"教师{p}", "school_lead" if p < schools else "teacher", f"dt{p}")
                     for p in range(teachers)])
    occurrences = con.execute("SELECT id, starts_at FROM session_occurrence").fetchall()
    tasks = dict(con.execute("SELECT key, id FROM task").fetchall())
    checkins, leaves, submissions, photos = [], [], [], []
    signature = bytes(512)
    for p in range(1, teachers + 1):
        for oid, starts in occurrences:
            roll = rng.random()
            if roll < 0.9:
                checkins.append((p, oid, starts, int(roll < 0.09), "sim", f"{p}-{oid}"))
            elif roll < 0.93:
                leaves.append((p, oid, "事假", starts))
        for key, _, _ in REFLECTIONS:
            roll = rng.random()
            if roll < 0.85:
                accepted = roll < 0.7
                flag = "near_duplicate" if roll < 0.035 else None
                other = (p % schools) + 1 if flag else None
                submissions.append((p, tasks[key], TEXT if accepted else TEXT[:400], 1000 if accepted else 400,
                                    "accepted" if accepted else "draft", flag, other, 0.8 if flag else None,
                                    signature, "2023-03-20 08:00:00.000000"))
        for key, _, _ in PHOTOS:
            for n in range(rng.choice((0, 1, 2, 3, 3, 3, 4))):
                photos.append((p, tasks[key], f"{p:08d}{key}{n}", "image/jpeg", 100_000, "2023-04-20 08:00:00.000000"))
    # stored in the order they arrive: session by session, reflections and photos over the weeks
    checkins.sort(key=lambda row: (row[2], rng.random()))
    rng.shuffle(submissions)
    rng.shuffle(photos)
    con.executemany("INSERT INTO checkin (person_id, occurrence_id, at, late, platform, msg_id) "
                    "VALUES (?, ?, ?, ?, ?, ?)", checkins)
    con.executemany("INSERT INTO leave (person_id, occurrence_id, reason, at) VALUES (?, ?, ?, ?)", leaves)
    con.executemany("INSERT INTO submission (person_id, task_id, text, chars, state, flag, similar_to_person_id, "
                    "similarity, signature, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", submissions)
    con.executemany("INSERT INTO photo (person_id, task_id, sha256, mime, size, at) VALUES (?, ?, ?, ?, ?, ?)",
                    photos)
    con.commit()
    con.close()
    print(f"built {path}: {schools} schools, {teachers} people, {len(checkins)} check-ins, {len(leaves)} leaves, "
          f"{len(submissions)} reflections, {len(photos)} photos")


async def measure(path: Path, runs: int) -> None:
    from handlers.digest import build_all_digests
    from storage.queries.directory import active_term

    db = Database(f"sqlite+aiosqlite:///{path}")
    now = datetime(2023, 7, 14, 18, 0, tzinfo=UTC)
    try:
        async with db.sessions() as s:
            term = await active_term(s)
        for run in range(1, runs + 1):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started, cpu = time.perf_counter(), time.process_time()
            async with db.sessions() as s:
                schools, district = await build_all_digests(s, term, now)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            size = sum(len(t.encode()) for t in schools.values()) + len(district.encode())
            print(f"run {run}: {len(schools)} school digests + district digest in {took:.2f} s (CPU {cpu:.2f} s); "
                  f"peak RSS {peak / 1024:.0f} MB (was {before / 1024:.0f} MB); {size / 1e6:.1f} MB of text")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--teachers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default="/tmp/yanxiu-digest-bench")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"digest-{args.schools}-{args.teachers}.db"
    if not path.exists():
        asyncio.run(build(path, args.schools, args.teachers))
    asyncio.run(measure(path, args.runs))


if __name__ == "__main__":
    main()
