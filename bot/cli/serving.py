"""The commands that run the bot: serve (one process, or a supervisor of --workers N) and
demo (the simulator on a fresh SQLite file). A port that is taken is one line, exit 1."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bot.cli import common
from bot.cli.common import CliError
from bot.cli.say import say
from bot.config import MAX_WORKERS, config_from_mapping, load_config

# --- serve / demo -------------------------------------------------------------------------

def tune_gc() -> None:
    """The serving process's collector: a request allocates a few hundred objects, and a
    digest tens of thousands, so the young generation is collected less often (the benches
    measure with the same setting)."""
    gc.set_threshold(100_000, 50, 100)


def _listen_problem(exc: OSError, host: str, port: int, hint: str) -> str:
    """One line saying why the server cannot listen on host:port, and what to do."""
    if exc.errno == errno.EADDRINUSE:
        return say("port_busy", port=port, hint=hint)
    if exc.errno == errno.EACCES:
        return say("port_privileged", port=port, hint=hint)
    if exc.errno == errno.EADDRNOTAVAIL:
        return say("no_such_address", host=host, port=port)
    return say("cannot_listen", host=host, port=port, why=exc.strerror or exc)


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

    config_path = args.config or common.DEFAULT_CONFIG
    config = load_config(config_path)
    count = config.server.workers if args.workers is None else args.workers
    if not 1 <= count <= MAX_WORKERS:
        raise CliError(say("workers_range", most=MAX_WORKERS))
    if count > 1 and is_sqlite(config.database.url):
        raise CliError(say("workers_need_postgres", count=count))
    host, port = config.server.host, config.server.port
    hint = say("hint_config_port", config=config_path)
    banner = say("serving", host=host, port=port)
    worker = worker_from_env()
    if worker is None:  # a worker shares the port its siblings hold (SO_REUSEPORT)
        _check_port(host, port, hint)
    if worker is None and count > 1:  # the supervisor: migrate once, then start the workers
        upgrade_schema(config.database.url)
        print(say("serving_workers", host=host, port=port, count=count), flush=True)
        argv = [sys.executable, "-m", "bot.cli", "serve", "--config", config_path]
        return Supervisor(argv, count).run()
    app = create_app(config, upgrade=worker is None, worker=worker)
    _run_app(app, host, port, None if worker else banner, hint, reuse_port=worker is not None)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo on a fresh database: in --data-dir (kept), or a new temp folder (removed
    again if the demo cannot start)."""
    hint = say("hint_demo_port")
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
    now = common.now()
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

    print(say("demo_data", folder=folder), file=sys.stderr)
    asyncio.run(common.with_db(config, seed))
    app = create_app(config)
    _run_app(app, "127.0.0.1", port, say("demo_open", port=port), hint)
    return 0
