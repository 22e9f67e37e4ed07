"""The commands that read what was done: digest (printed or queued) and export."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.cli import common
from bot.cli.common import CliError

# --- digest -------------------------------------------------------------------------------

_DIGEST_PROBLEMS = {
    "no_plan": "no plan loaded: run `yanxiu plan load FILE` first",
    "unknown_school": "--school: no school with that code (import the roster first)",
    "no_groups": "nothing queued: no bound group with a send route receives this digest",
}


def cmd_digest(args: argparse.Namespace) -> int:
    from handlers.digest import digest_on_demand

    config = common.config_of(args)
    now = common.now()

    async def run(db: Any) -> Any:
        return await digest_on_demand(db, school_code=args.school, now=now, send=args.send)

    result = asyncio.run(common.with_db(config, run))
    if result.text:
        print(result.text)
    if result.problem:
        raise CliError(_DIGEST_PROBLEMS[result.problem])
    if args.send:
        print(f"queued for {result.queued} group(s); a running `yanxiu serve` sends it", file=sys.stderr)
    return 0


# --- export -------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from bot.export import write_csv, write_xlsx
    from handlers.digest import all_school_figures
    from storage.queries.directory import active_term

    config = common.config_of(args)
    out = Path(args.output)
    if not out.parent.exists():
        raise CliError(f"-o: folder {out.parent} does not exist")

    async def run(db: Any) -> Any:
        async with db.sessions() as s:
            term = await active_term(s)
            if term is None:
                raise CliError("no plan loaded: run `yanxiu plan load FILE` first")
            schools = await all_school_figures(s, term, common.now())
        return term, schools

    term, schools = asyncio.run(common.with_db(config, run))
    if args.school:
        schools = [x for x in schools if x.code == args.school]
        if not schools:
            raise CliError(f"--school: no school with code {args.school!r}")

    def progress(done: int, total: int) -> None:
        if total >= 20 and (done % max(total // 10, 1) == 0 or done == total):
            print(f"  {done}/{total} schools", file=sys.stderr, flush=True)

    if args.format == "csv":
        people = write_csv(out, term.plan, schools)
    else:
        people = write_xlsx(out, term.plan, schools, progress)
    print(f"exported {people} people from {len(schools)} schools to {out}")
    return 0
