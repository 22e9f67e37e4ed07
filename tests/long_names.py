"""The longest real school and task names in the seeds, put into digest figures for the charts.

School names: the seed roster's (tests/data/seed_roster.csv, seed 004's 中心校 and 村小) and
the test roster's. They are all six or seven characters, so one longer name is added, made of
the seeds' own words (seed 004: a township's 中心校 and its 村小), to show the ellipsis.
Task titles: every task of seed 003's plan (tests/data/seed_003_spring.toml), kind as given.
"""

from __future__ import annotations

import csv
import dataclasses
import tomllib
from itertools import cycle, islice
from pathlib import Path

from kernel.figures import DistrictDigest, Rate, SchoolDigest

DATA = Path(__file__).resolve().parent / "data"
# longer than any seed name: a 村小 named after its township's 中心校, as seed 004 describes
LONG_SCHOOL = "兰西县榆林镇中心校东兴村小学（小规模学校）"


def school_names() -> list[str]:
    """Every school name of the two rosters, longest first, then LONG_SCHOOL."""
    names: set[str] = set()
    for roster in ("seed_roster.csv", "roster.csv"):
        with (DATA / roster).open(encoding="utf-8") as f:
            names.update(name for row in csv.DictReader(f) if (name := row.get("school_name") or row.get("学校名称")))
    return [*sorted(names, key=lambda n: (-len(n), n)), LONG_SCHOOL]


def seed_plan() -> dict[str, object]:
    with (DATA / "seed_003_spring.toml").open("rb") as f:
        return tomllib.load(f)


def task_titles() -> list[tuple[str, str]]:
    """(kind, title) of every task in seed 003's plan, in the plan's order."""
    tasks = seed_plan()["task"]
    assert isinstance(tasks, list)
    return [(str(t["kind"]), str(t["title"])) for t in tasks]


def term_name() -> str:
    term = seed_plan()["term"]
    assert isinstance(term, dict)
    return str(term["name"])


def school_with_long_names(digest: SchoolDigest) -> SchoolDigest:
    """`digest` renamed to the longest school name, with every seed 003 task (rates made up)."""
    model = digest.tasks[0]
    members = max(len(digest.members), 1)
    tasks = tuple(dataclasses.replace(model, key=f"seed-{n}", kind=kind, title=title,
                                      done=Rate(n * 7 % (members + 1), members))
                  for n, (kind, title) in enumerate(task_titles()))
    return dataclasses.replace(digest, name=school_names()[-1], term=term_name(), tasks=tasks)


def district_with_long_names(digest: DistrictDigest, schools: int = 24) -> DistrictDigest:
    """`digest` with `schools` schools under the seeds' names (the long one among the shown),
    completion spread from 12 % to 95 %, falling behind first as the district digest ranks."""
    names = islice(cycle(school_names()[::-1]), schools)
    models = cycle(digest.schools)
    renamed = [dataclasses.replace(next(models), name=name, code=f"SEED{n:03d}",
                                   overall=0.12 + 0.83 * n / max(schools - 1, 1))
               for n, name in enumerate(names)]
    return dataclasses.replace(digest, term=term_name(), schools=tuple(renamed))

