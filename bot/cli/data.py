"""The commands that load what a district runs on: db upgrade, roster import, plan load/show,
group bind/list."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from bot.cli import common
from bot.cli.common import CliError
from platforms import PLATFORMS

# --- db -----------------------------------------------------------------------------------

def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import upgrade_schema

    config = common.config_of(args)
    upgrade_schema(config.database.url)
    print("database schema is up to date")
    return 0


# --- roster -------------------------------------------------------------------------------

def cmd_roster_import(args: argparse.Namespace) -> int:
    from kernel.roster import RosterFileError, load_roster
    from storage.queries.roster import apply_roster

    config = common.config_of(args)
    try:
        rows, rejected = load_roster(args.file)
    except (RosterFileError, FileNotFoundError) as exc:
        raise CliError(f"roster: {exc}") from None
    print(f"read {len(rows) + len(rejected)} rows from {args.file}", file=sys.stderr)

    async def run(db: Any) -> Any:
        async with db.sessions() as s, s.begin():
            return await apply_roster(s, rows)

    result = asyncio.run(common.with_db(config, run))
    rejected = sorted([*rejected, *result.rejected], key=lambda r: r.line)
    print(f"added {result.added}, updated {result.updated}, unchanged {result.unchanged}, "
          f"rejected {len(rejected)}")
    for r in rejected:
        print(f"  line {r.line}: {r.reason}")
    _warn_formulas(rows)
    return 1 if rejected else 0


_FIELD_NAMES = {"school_code": "学校代码", "school_name": "学校名称", "name": "姓名",
                "dingtalk_userid": "钉钉ID", "wecom_userid": "企业微信ID", "mobile": "手机号",
                "subject": "学科", "stage": "学段"}
_CHAR_NAMES = {"\t": "制表符", "\r": "回车符"}


def _warn_formulas(rows: list[Any]) -> None:
    """On stderr, each imported cell a spreadsheet would take for a formula (the row is kept;
    `yanxiu export` prefixes the cell with a quote)."""
    from kernel.roster import formula_warnings

    for w in formula_warnings(rows):
        char = _CHAR_NAMES.get(w.char, f"“{w.char}”")
        print(f"  第 {w.line} 行：{_FIELD_NAMES.get(w.field, w.field)}以{char}开头，"
              f"导出时会加 ' 防止被当作公式", file=sys.stderr)


# --- plan ---------------------------------------------------------------------------------

def _load_plan_file(path: str) -> tuple[Any, str]:
    from kernel.plan import PlanError, plan_from_text

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None
    try:
        return plan_from_text(text), text
    except PlanError as exc:
        raise CliError(f"plan: {exc}") from None


def cmd_plan_load(args: argparse.Namespace) -> int:
    from kernel.plan import scheduled_sends, session_occurrences
    from storage.queries.terms import save_plan

    config = common.config_of(args)
    plan, text = _load_plan_file(args.file)

    async def run(db: Any) -> int:
        async with db.sessions() as s, s.begin():
            return await save_plan(s, plan, text, common.now())

    asyncio.run(common.with_db(config, run))
    print(f"loaded {plan.name}: {len(session_occurrences(plan))} sessions, {len(plan.tasks)} tasks, "
          f"{len(scheduled_sends(plan))} scheduled sends")
    _warn_holiday_gaps(plan)
    return 0


def _warn_holiday_gaps(plan: Any) -> None:
    """Say, on stderr, which years of the term the holiday calendar does not know yet: there,
    sessions land on public holidays unless the plan lists them."""
    from kernel.calendar import holiday_data_version
    from kernel.plan import sessions_without_holiday_data

    for year, sessions in sessions_without_holiday_data(plan).items():
        print(f"yanxiu: warning: chinese-calendar {holiday_data_version()} has no public holidays "
              f"or 调休 for {year}: the {sessions} sessions this term places in {year} take every "
              f"weekday as a school day, holidays included. List {year}'s holidays in "
              f"term.non_school_dates (make-up school days in term.extra_school_dates), or "
              f"upgrade chinese-calendar once it covers {year}.", file=sys.stderr)


def cmd_plan_show(args: argparse.Namespace) -> int:
    from kernel.plan import plan_from_text, plan_show_json

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
            raise CliError("no plan loaded: run `yanxiu plan load FILE` first, or pass FILE")
        plan = plan_from_text(Path(args.file).read_text()) if args.file else term.plan
    shown = plan_show_json(plan)
    _warn_holiday_gaps(plan)
    if args.json:
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return 0
    print(f"{plan.name} ({plan.start} – {plan.end}, {plan.timezone})")
    print(f"sessions: {len(shown['sessions'])}")
    for s in shown["sessions"]:
        print(f"  {s['start']}  {s['name']}")
    print(f"scheduled sends: {len(shown['sends'])}")
    for s in shown["sends"]:
        print(f"  {s['at']}  {s['kind']:<18} {s['ref']}")
    return 0


# --- groups -------------------------------------------------------------------------------

def cmd_group_bind(args: argparse.Namespace) -> int:
    from storage.queries.groups import bind_group, school_by_code

    config = common.config_of(args)
    if args.secret and not args.webhook:
        raise CliError("--secret needs --webhook")
    platform = next(p for p in PLATFORMS if p.name == args.platform)
    route_kind = platform.bind_route(bool(args.webhook)) if platform.bind_route else None

    async def run(db: Any) -> str:
        async with db.sessions() as s, s.begin():
            school = await school_by_code(s, args.school)
            if school is None:
                raise CliError(f"--school: no school with code {args.school!r} (import the roster first)")
            await bind_group(s, platform=args.platform, conversation_id=args.conversation_id,
                             school_id=school.id, now=common.now(), route_kind=route_kind,
                             route_url=args.webhook, route_secret=args.secret)
            return school.name

    name = asyncio.run(common.with_db(config, run))
    route = route_kind or "reply-only"
    print(f"bound {args.platform} conversation to {args.school} {name} (route: {route}"
          f"{', webhook stored' if args.webhook else ''}{', secret stored' if args.secret else ''})")
    return 0


def cmd_group_list(args: argparse.Namespace) -> int:
    from storage.queries.groups import groups_with_school

    config = common.config_of(args)

    async def run(db: Any) -> Any:
        async with db.sessions() as s:
            return await groups_with_school(s)

    rows = asyncio.run(common.with_db(config, run))
    if not rows:
        print("no groups bound")
    for g, school in rows:
        where = f"{school.code} {school.name}" if school else "(unbound)"
        print(f"{g.platform:<8} {g.conversation_id:<40} {where:<24} route={g.route_kind or 'reply-only'}"
              f"{' webhook=set' if g.route_url else ''}{' secret=set' if g.route_secret else ''}")
    return 0
