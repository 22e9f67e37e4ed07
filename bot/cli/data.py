"""The commands that load what a district runs on: db upgrade, roster import, plan load/show,
group bind/list."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from bot.cli import common
from bot.cli.common import CliError
from bot.cli.errors import file_problem, plan_error
from bot.cli.say import say
from kernel.roster import formula_warnings
from platforms import PLATFORMS

# --- db -----------------------------------------------------------------------------------

def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import upgrade_schema

    config = common.config_of(args)
    upgrade_schema(config.database.url)
    print(say("schema_up_to_date"))
    return 0


# --- roster -------------------------------------------------------------------------------

def _read_roster(path: str) -> tuple[list[Any], list[Any], dict[str, str]]:
    """The file's good rows, rejected rows and column headers as it spells them; a file that
    cannot be read at all is one line naming it."""
    from kernel.roster import RosterFileError, parse_roster, read_table, spelled_headers

    table: list[list[object]] = []
    try:
        table = read_table(Path(path))
        rows, rejected = parse_roster(table)
    except OSError as exc:
        raise CliError(file_problem(path, exc)) from None
    except RosterFileError as exc:
        spelled = spelled_headers(table[0]) if table else {}
        if exc.code == "missing_columns":
            columns = [spelled.get(c, c) for c in exc.columns]
            raise CliError(say("roster_missing_columns", file=path, columns=columns)) from None
        raise CliError(say(f"roster_{exc.code}", file=path) if exc.code else f"{path}: {exc}") from None
    return rows, rejected, spelled_headers(table[0])


def cmd_roster_import(args: argparse.Namespace) -> int:
    from storage.queries.roster import apply_roster

    rows, rejected, spelled = _read_roster(args.file)
    config = common.config_of(args)
    print(say("roster_read", rows=len(rows) + len(rejected), file=args.file), file=sys.stderr)

    async def run(db: Any) -> Any:
        async with db.sessions() as s, s.begin():
            return await apply_roster(s, rows)

    result = asyncio.run(common.with_db(config, run))
    rejected = sorted([*rejected, *result.rejected], key=lambda r: r.line)
    print(say("roster_summary", added=result.added, updated=result.updated,
              unchanged=result.unchanged, rejected=len(rejected)))
    for r in rejected:
        print(say("roster_rejected", line=r.line, reason=_rejection(r, spelled)))
    for w in formula_warnings(rows):
        print(say("roster_formula", line=w.line, column=spelled[w.field], char=w.char), file=sys.stderr)
    return 1 if rejected else 0


_TWO_PEOPLE = re.compile(r"(?P<columns>.+) belong to two different people")


def _rejection(row: Any, spelled: dict[str, str]) -> str:
    """Why a row was not imported, naming its columns as the file spells them."""
    column = spelled.get(row.column, row.column)
    if row.code == "no_identity":
        return say("roster_no_identity", first=spelled["dingtalk_userid"], second=spelled["wecom_userid"])
    if row.code == "repeated_id":
        return say("roster_repeated_id", column=column, value=row.value, other=row.other_line)
    if row.code in ("bad_role", "bad_mobile"):
        return say(f"roster_{row.code}", column=column, value=row.value)
    if row.code:
        return say(f"roster_{row.code}", column=column)
    two = _TWO_PEOPLE.fullmatch(row.reason)  # found against the database (storage/queries/roster.py)
    if two is not None:
        return say("roster_two_people", columns=[spelled.get(c, c) for c in two["columns"].split(" and ")])
    return str(row.reason)


# --- plan ---------------------------------------------------------------------------------

def _load_plan_file(path: str) -> tuple[Any, str]:
    from kernel.plan import PlanError, plan_from_text

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(file_problem(path, exc)) from None
    except UnicodeDecodeError:
        raise CliError(say("file_not_utf8", file=path)) from None
    try:
        return plan_from_text(text), text
    except PlanError as exc:
        raise CliError(plan_error(path, exc.key, exc.problem, text)) from None


def cmd_plan_load(args: argparse.Namespace) -> int:
    from kernel.plan import scheduled_sends, session_occurrences
    from storage.queries.terms import save_plan

    config = common.config_of(args)
    plan, text = _load_plan_file(args.file)

    async def run(db: Any) -> int:
        async with db.sessions() as s, s.begin():
            return await save_plan(s, plan, text, common.now())

    asyncio.run(common.with_db(config, run))
    print(say("plan_loaded", name=plan.name, sessions=len(session_occurrences(plan)),
              tasks=len(plan.tasks), sends=len(scheduled_sends(plan))))
    _say_holiday_sources(plan)
    return 0


def _say_holiday_sources(plan: Any) -> None:
    """Once, on stderr: where each year's holidays come from and, for a year chinese-calendar
    does not cover yet, the holidays estimated for it and the 调休 days the plan must list."""
    from kernel.calendar import holiday_data_version, holiday_sources
    from kernel.plan import sessions_without_holiday_data

    note = say("holidays", sources=holiday_sources(plan.start, plan.end),
               counts=sessions_without_holiday_data(plan), official_version=holiday_data_version())
    if note:
        print(note, file=sys.stderr)


def cmd_plan_show(args: argparse.Namespace) -> int:
    from kernel.plan import plan_show_json

    if args.file:
        plan, _ = _load_plan_file(args.file)
    else:
        config = common.config_of(args)

        async def run(db: Any) -> Any:
            from storage.queries.directory import active_term

            async with db.sessions() as s:
                return await active_term(s)

        term = asyncio.run(common.with_db(config, run))
        if term is None:
            raise CliError(say("no_plan_or_file"))
        plan = term.plan
    shown = plan_show_json(plan)
    _say_holiday_sources(plan)
    if args.json:
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return 0
    print(say("plan_title", name=plan.name, start=plan.start, end=plan.end, timezone=plan.timezone))
    print(say("plan_sessions", count=len(shown["sessions"])))
    for s in shown["sessions"]:
        print(say("plan_session", start=s["start"], name=s["name"]))
    print(say("plan_sends", count=len(shown["sends"])))
    for s in shown["sends"]:
        print(say("plan_send", at=s["at"], kind=s["kind"], ref=s["ref"]))
    return 0


# --- groups -------------------------------------------------------------------------------

def cmd_group_bind(args: argparse.Namespace) -> int:
    from storage.queries.groups import bind_group, school_by_code

    config = common.config_of(args)
    if args.secret and not args.webhook:
        raise CliError(say("secret_needs_webhook"))
    platform = next(p for p in PLATFORMS if p.name == args.platform)
    route_kind = platform.bind_route(bool(args.webhook)) if platform.bind_route else None

    async def run(db: Any) -> str:
        async with db.sessions() as s, s.begin():
            school = await school_by_code(s, args.school)
            if school is None:
                raise CliError(say("no_school", code=args.school))
            await bind_group(s, platform=args.platform, conversation_id=args.conversation_id,
                             school_id=school.id, now=common.now(), route_kind=route_kind,
                             route_url=args.webhook, route_secret=args.secret)
            return school.name

    name = asyncio.run(common.with_db(config, run))
    print(say("bound", platform=args.platform, code=args.school, name=name,
              route=route_kind or "reply-only", webhook=bool(args.webhook), secret=bool(args.secret)))
    return 0


def cmd_group_list(args: argparse.Namespace) -> int:
    from storage.queries.groups import groups_with_school

    config = common.config_of(args)

    async def run(db: Any) -> Any:
        async with db.sessions() as s:
            return await groups_with_school(s)

    rows = asyncio.run(common.with_db(config, run))
    if not rows:
        print(say("no_groups"))
    for g, school in rows:
        print(say("group_row", platform=g.platform, conversation=g.conversation_id,
                  school=f"{school.code} {school.name}" if school else "",
                  route=g.route_kind or "reply-only", webhook=bool(g.route_url), secret=bool(g.route_secret)))
    return 0
