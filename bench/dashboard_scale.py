"""Bench: dashboard pages and digest charts for a large district, on SQLite.

Uses the district bench.digests builds (500 schools, 20,000 teachers, a full term of
records; built once into --dir). Times the district page's figures and weekly trend, one
school's page, one teacher's evidence, the district ranking chart and school charts.

Run: python -m bench.dashboard_scale [--schools 500] [--teachers 20000] [--charts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from bench.digests import NOW, build
from storage.db import Database


async def measure(path: Path, charts: int) -> None:
    from bot.web.views import district_view, school_view, teacher_view
    from handlers.charts import district_chart, school_chart
    from storage.queries.dashboard import person_row
    from storage.queries.directory import active_term, all_schools

    db = Database(f"sqlite+aiosqlite:///{path}")
    now = NOW
    try:
        async with db.sessions() as s:
            term = await active_term(s)
            assert term is not None
            schools = await all_schools(s)
            for run in (1, 2):
                started = time.perf_counter()
                district = await district_view(s, term, now)
                print(f"run {run}: district page figures + {len(district.trend)}-week trend for "
                      f"{len(district.digest.schools)} schools in {time.perf_counter() - started:.2f} s")
            started = time.perf_counter()
            school = await school_view(s, term, schools[0], now)
            print(f"school page ({len(school.digest.members)} teachers): {time.perf_counter() - started:.3f} s")
            person = await person_row(s, school.digest.members[0].member.id)
            assert person is not None
            started = time.perf_counter()
            await teacher_view(s, term, person, now)
            print(f"teacher page: {time.perf_counter() - started:.3f} s")
        started = time.perf_counter()
        png = district_chart(district.digest)
        print(f"district chart: {time.perf_counter() - started:.3f} s, {len(png) // 1024} KB")
        school_chart(school.digest)  # the first draw loads the font
        started = time.perf_counter()
        sizes = [len(school_chart(d)) for d in district.digest.schools[:charts]]
        each = (time.perf_counter() - started) / len(sizes)
        print(f"school charts: {each:.3f} s each ({len(sizes)} drawn, {sum(sizes) // len(sizes) // 1024} KB "
              f"average); {len(schools)} schools ≈ {each * len(schools):.0f} s in the background")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--teachers", type=int, default=20_000)
    parser.add_argument("--charts", type=int, default=20)
    parser.add_argument("--dir", default="/tmp/yanxiu-digests")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"district-{args.schools}-{args.teachers}.db"  # shared with bench/digests.py
    if not path.exists():
        build(path, args.schools, args.teachers)
    asyncio.run(measure(path, args.charts))


if __name__ == "__main__":
    main()
