"""`yanxiu`: the command line. Errors are one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import MAX_WORKERS, Config, ConfigError, config_from_mapping, load_config
from platforms import PLATFORMS

log = logging.getLogger("yanxiu")
DEFAULT_CONFIG = "./config.toml"


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _now() -> datetime:
    return datetime.now(UTC)


def _config(args: argparse.Namespace) -> Config:
    """The --config file; without --config, ./config.toml, or when that is missing too the
    embedded default (SQLite in the current folder) — saying so, with the database's URL."""
    if args.config is not None:
        return load_config(args.config)
    if Path(DEFAULT_CONFIG).exists():
        return load_config(DEFAULT_CONFIG)
    config = config_from_mapping({})
    print(f"yanxiu: 没有 {DEFAULT_CONFIG}，使用默认数据库 {_shown_database(config.database.url)}",
          file=sys.stderr)
    return config


def _shown_database(url: str) -> str:
    """A database URL fit to print: the password masked, a SQLite file's full path added."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from storage.db import sqlite_file

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "（database.url 无法解析）"
    file = sqlite_file(url)
    return f"{shown}（文件 {file}）" if file is not None else shown


async def _with_db(config: Config, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from storage.db import Database

    db = Database(config.database.url)
    try:
        await db.upgrade()
        return await fn(db)
    finally:
        await db.close()


# --- db -----------------------------------------------------------------------------------

def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import upgrade_schema

    config = _config(args)
    upgrade_schema(config.database.url)
    print("database schema is up to date")
    return 0


# --- roster -------------------------------------------------------------------------------

def cmd_roster_import(args: argparse.Namespace) -> int:
    from kernel.roster import RosterFileError, load_roster
    from storage.queries.roster import apply_roster

    config = _config(args)
    try:
        rows, rejected = load_roster(args.file)
    except (RosterFileError, FileNotFoundError) as exc:
        raise CliError(f"roster: {exc}") from None
    print(f"read {len(rows) + len(rejected)} rows from {args.file}", file=sys.stderr)

    async def run(db: Any) -> Any:
        async with db.sessions() as s, s.begin():
            return await apply_roster(s, rows)

    result = asyncio.run(_with_db(config, run))
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

    config = _config(args)
    plan, text = _load_plan_file(args.file)

    async def run(db: Any) -> int:
        async with db.sessions() as s, s.begin():
            return await save_plan(s, plan, text, _now())

    asyncio.run(_with_db(config, run))
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
        config = _config(args)

        async def run(db: Any) -> Any:
            from storage.queries.directory import active_term

            async with db.sessions() as s:
                return await active_term(s)

        term = asyncio.run(_with_db(config, run))
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

    config = _config(args)
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
                             school_id=school.id, now=_now(), route_kind=route_kind,
                             route_url=args.webhook, route_secret=args.secret)
            return school.name

    name = asyncio.run(_with_db(config, run))
    route = route_kind or "reply-only"
    print(f"bound {args.platform} conversation to {args.school} {name} (route: {route}"
          f"{', webhook stored' if args.webhook else ''}{', secret stored' if args.secret else ''})")
    return 0


def cmd_group_list(args: argparse.Namespace) -> int:
    from storage.queries.groups import groups_with_school

    config = _config(args)

    async def run(db: Any) -> Any:
        async with db.sessions() as s:
            return await groups_with_school(s)

    rows = asyncio.run(_with_db(config, run))
    if not rows:
        print("no groups bound")
    for g, school in rows:
        where = f"{school.code} {school.name}" if school else "(unbound)"
        print(f"{g.platform:<8} {g.conversation_id:<40} {where:<24} route={g.route_kind or 'reply-only'}"
              f"{' webhook=set' if g.route_url else ''}{' secret=set' if g.route_secret else ''}")
    return 0


# --- digest -------------------------------------------------------------------------------

_DIGEST_PROBLEMS = {
    "no_plan": "no plan loaded: run `yanxiu plan load FILE` first",
    "unknown_school": "--school: no school with that code (import the roster first)",
    "no_groups": "nothing queued: no bound group with a send route receives this digest",
}


def cmd_digest(args: argparse.Namespace) -> int:
    from handlers.digest import digest_on_demand

    config = _config(args)
    now = _now()

    async def run(db: Any) -> Any:
        return await digest_on_demand(db, school_code=args.school, now=now, send=args.send)

    result = asyncio.run(_with_db(config, run))
    if result.text:
        print(result.text)
    if result.problem:
        raise CliError(_DIGEST_PROBLEMS[result.problem])
    if args.send:
        print(f"queued for {result.queued} group(s); a running `yanxiu serve` sends it", file=sys.stderr)
    return 0


# --- export -------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from handlers.digest import all_school_figures
    from handlers.export import write_csv, write_xlsx
    from storage.queries.directory import active_term

    config = _config(args)
    out = Path(args.output)
    if not out.parent.exists():
        raise CliError(f"-o: folder {out.parent} does not exist")

    async def run(db: Any) -> Any:
        async with db.sessions() as s:
            term = await active_term(s)
            if term is None:
                raise CliError("no plan loaded: run `yanxiu plan load FILE` first")
            schools = await all_school_figures(s, term, _now())
        return term, schools

    term, schools = asyncio.run(_with_db(config, run))
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


# --- serve / demo -------------------------------------------------------------------------

def tune_gc() -> None:
    """The serving process's collector: a request allocates a few hundred objects, and a
    digest tens of thousands, so the young generation is collected less often (the benches
    measure with the same setting)."""
    gc.set_threshold(100_000, 50, 100)


def _listen_problem(exc: OSError, host: str, port: int, hint: str) -> str:
    """One line saying why the server cannot listen on host:port, and what to do."""
    if exc.errno == errno.EADDRINUSE:
        return f"端口 {port} 已被占用，{hint}"
    if exc.errno == errno.EACCES:
        return f"没有权限监听端口 {port}（1024 以下的端口需要管理员权限），{hint}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"无法监听 {host}:{port}：本机没有这个地址，请检查 server.host"
    return f"无法监听 {host}:{port}：{exc.strerror or exc}"


def _check_port(host: str, port: int, hint: str) -> None:
    """Stop with one line, before any banner or file, when host:port cannot be listened on."""
    from bot.ports import bind_error

    exc = bind_error(host, port)
    if exc is not None:
        raise CliError(_listen_problem(exc, host, port, hint))


def _run_app(app: Any, host: str, port: int, banner: str | None, hint: str, *,
             reuse_port: bool = False) -> None:
    """Serve until Ctrl+C/SIGTERM; a bind that fails at start (the port taken since it was
    checked) is the same one line as a busy port found beforehand."""
    from aiohttp import web

    from bot.ports import BIND_ERRNOS

    loop: asyncio.AbstractEventLoop | None = None
    try:  # uvloop (extra "fast") when installed: the check-in burst needs it
        import uvloop

        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
    except ImportError:
        pass

    def listening(_aiohttp_banner: str) -> None:  # called once the port is bound
        if banner:
            print(banner, flush=True)

    tune_gc()
    try:
        web.run_app(app, host=host, port=port, print=listening, access_log=None, loop=loop,
                    reuse_port=reuse_port or None)
    except OSError as exc:  # asyncio and uvloop both say "error while attempting to bind"
        if exc.errno not in BIND_ERRNOS or "bind" not in str(exc):
            raise  # not the listening socket (a startup hook failing): the traceback helps
        raise CliError(_listen_problem(exc, host, port, hint)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import create_app
    from bot.workers import Supervisor, worker_from_env
    from storage.db import is_sqlite, upgrade_schema

    config_path = args.config or DEFAULT_CONFIG
    config = load_config(config_path)
    count = config.server.workers if args.workers is None else args.workers
    if not 1 <= count <= MAX_WORKERS:
        raise CliError(f"--workers: must be between 1 and {MAX_WORKERS}")
    if count > 1 and is_sqlite(config.database.url):
        raise CliError(f"--workers: {count} 个服务进程要共用 PostgreSQL（database.url = "
                       "\"postgresql+asyncpg://…\"）；SQLite 是单进程的内置数据库，请只用一个进程")
    host, port = config.server.host, config.server.port
    hint = f"请在 {config_path} 的 [server] 里换一个 port，或先停掉占用它的程序"
    banner = f"yanxiu serving on http://{host}:{port}/"
    worker = worker_from_env()
    if worker is None:  # a worker shares the port its siblings hold (SO_REUSEPORT)
        _check_port(host, port, hint)
    if worker is None and count > 1:  # the supervisor: migrate once, then start the workers
        upgrade_schema(config.database.url)
        print(f"{banner} with {count} workers", flush=True)
        argv = [sys.executable, "-m", "bot.cli", "serve", "--config", config_path]
        return Supervisor(argv, count).run()
    app = create_app(config, upgrade=worker is None, worker=worker)
    _run_app(app, host, port, None if worker else banner, hint, reuse_port=worker is not None)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo on a fresh database: in --data-dir (kept), or a new temp folder (removed
    again if the demo cannot start)."""
    hint = "请用 --port 换一个端口"
    _check_port("127.0.0.1", args.port, hint)
    if args.data_dir:
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
        return _demo_in(Path(args.data_dir), args.port, hint)
    folder = Path(tempfile.mkdtemp(prefix="yanxiu-demo-"))
    try:
        return _demo_in(folder, args.port, hint)
    except BaseException:  # a failed demo leaves no temp folder behind
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _demo_in(folder: Path, port: int, hint: str) -> int:
    """Seed a fresh demo database in `folder` and serve it with the simulator on `port`."""
    from bot.app import create_app
    from bot.demo import SCHOOLS, demo_plan_toml, demo_roster
    from kernel.plan import plan_from_text
    from platforms.sim.chat import group_conversation
    from storage.queries.groups import bind_group, school_by_code
    from storage.queries.roster import apply_roster
    from storage.queries.terms import save_plan

    db_file = folder / "yanxiu-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    config = config_from_mapping({
        "server": {"host": "127.0.0.1", "port": port,
                   "public_base_url": f"http://127.0.0.1:{port}"},
        "database": {"url": f"sqlite+aiosqlite:///{db_file}"},
        "storage": {"files_dir": str(folder / "files")},
        "sim": {"enabled": True},  # the demo is the simulator; `serve` does not mount it
    }, env={})
    now = _now()
    toml_text = demo_plan_toml(now)
    plan = plan_from_text(toml_text)

    async def seed(db: Any) -> None:
        async with db.sessions() as s, s.begin():
            await apply_roster(s, demo_roster())
            await save_plan(s, plan, toml_text, now)
            for code, name in SCHOOLS:
                school = await school_by_code(s, code)
                assert school is not None
                await bind_group(s, platform="sim", conversation_id=group_conversation(code),
                                 school_id=school.id, now=now, title=f"{name}研修群", route_kind="sim")

    print(f"demo data in {folder}", file=sys.stderr)
    asyncio.run(_with_db(config, seed))
    app = create_app(config)
    _run_app(app, "127.0.0.1", port, f"研修助手 demo: open http://127.0.0.1:{port}/sim/  (Ctrl+C to stop)",
             hint)
    return 0


# --- parser -------------------------------------------------------------------------------

def _port(text: str) -> int:
    """--port: a TCP port number."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"端口必须是 1 到 65535 之间的整数，不是 {text!r}")
    return port


def _config_option(default: str | None) -> argparse.ArgumentParser:
    """--config as a parent parser. The top level holds the real default (None: ./config.toml);
    each subcommand's copy defaults to SUPPRESS, so it sets --config only when given after the
    subcommand and never overwrites one given before it."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", default=default, metavar="PATH",
                        help=f"path to config.toml (default {DEFAULT_CONFIG})")
    return parent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yanxiu", description="研修助手 (yanxiu-bot)",
                                parents=[_config_option(None)])
    common = _config_option(argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", parents=[common], help="the whole product on an embedded default")
    demo.add_argument("--port", type=_port, default=8080)
    demo.add_argument("--data-dir", help="keep the demo's database and files here (default: a new temp folder)")
    demo.set_defaults(fn=cmd_demo)

    serve = sub.add_parser("serve", parents=[common], help="webhooks + scheduler + outbox sender")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="serving processes on this port, one per core (default: server.workers, 1)")
    serve.set_defaults(fn=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", parents=[common], help="create or migrate the schema").set_defaults(fn=cmd_db_upgrade)

    roster = sub.add_parser("roster", help="the roster").add_subparsers(dest="roster_command", required=True)
    imp = roster.add_parser("import", parents=[common], help="load a roster (CSV/XLSX)")
    imp.add_argument("file")
    imp.set_defaults(fn=cmd_roster_import)

    group = sub.add_parser("group", help="chat groups").add_subparsers(dest="group_command", required=True)
    bind = group.add_parser("bind", parents=[common], help="register a school's chat group and its send route")
    bind.add_argument("--school", required=True)
    bind.add_argument("--platform", required=True, choices=[p.name for p in PLATFORMS if p.bind_route])
    bind.add_argument("--conversation-id", required=True)
    bind.add_argument("--webhook")
    bind.add_argument("--secret")
    bind.set_defaults(fn=cmd_group_bind)
    group.add_parser("list", parents=[common], help="list bound groups").set_defaults(fn=cmd_group_list)

    plan = sub.add_parser("plan", help="the term plan").add_subparsers(dest="plan_command", required=True)
    load = plan.add_parser("load", parents=[common], help="load and validate a term plan")
    load.add_argument("file")
    load.set_defaults(fn=cmd_plan_load)
    show = plan.add_parser("show", parents=[common], help="print what will be sent when")
    show.add_argument("file", nargs="?", help="a plan file (default: the loaded plan)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(fn=cmd_plan_show)

    digest = sub.add_parser("digest", parents=[common], help="print (or --send) a digest now")
    which = digest.add_mutually_exclusive_group(required=True)
    which.add_argument("--school", metavar="CODE", help="one school's digest")
    which.add_argument("--district", action="store_true", help="the district digest")
    digest.add_argument("--send", action="store_true", help="also queue it for the school's (district's) groups")
    digest.set_defaults(fn=cmd_digest)

    export = sub.add_parser("export", parents=[common], help="records and 学时 per teacher, for 学分认定")
    export.add_argument("--format", choices=["csv", "xlsx"], required=True)
    export.add_argument("-o", "--output", required=True, metavar="FILE")
    export.add_argument("--school", metavar="CODE", help="only this school")
    export.set_defaults(fn=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("YANXIU_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except (CliError, ConfigError) as exc:
        print(f"yanxiu: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
