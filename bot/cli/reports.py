"""The commands that read what was done: digest (printed or queued) and export."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.cli import common
from bot.cli.common import CliError
from bot.cli.errors import file_problem
from bot.cli.say import say

# --- digest -------------------------------------------------------------------------------

_DIGEST_PROBLEMS = {"no_plan": "digest_no_plan", "unknown_school": "digest_unknown_school",
                    "no_groups": "digest_no_groups"}


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
        raise CliError(say(_DIGEST_PROBLEMS[result.problem]))
    if args.send:
        print(say("digest_queued", count=result.queued), file=sys.stderr)
    return 0


# --- export -------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from bot.export import write_csv, write_xlsx
    from handlers.digest import all_school_figures
    from storage.queries.directory import active_term

    config = common.config_of(args)
    out = Path(args.output)
    if not out.parent.exists():
        raise CliError(say("output_folder_missing", folder=out.parent))

    async def run(db: Any) -> Any:
        async with db.sessions() as s:
            term = await active_term(s)
            if term is None:
                raise CliError(say("no_plan"))
            schools = await all_school_figures(s, term, common.now())
        return term, schools

    term, schools = asyncio.run(common.with_db(config, run))
    if args.school:
        schools = [x for x in schools if x.code == args.school]
        if not schools:
            raise CliError(say("no_school_exported", code=args.school))

    def progress(done: int, total: int) -> None:
        if total >= 20 and (done % max(total // 10, 1) == 0 or done == total):
            print(say("export_progress", done=done, total=total), file=sys.stderr, flush=True)

    try:
        if args.format == "csv":
            people = write_csv(out, term.plan, schools)
        else:
            people = write_xlsx(out, term.plan, schools, progress)
    except OSError as exc:  # a folder of that name, no permission, a full disk
        raise CliError(file_problem(out, exc, writing=True)) from None
    print(say("exported", people=people, schools=len(schools), file=out))
    return 0
