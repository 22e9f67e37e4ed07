"""`yanxiu`: the command line. Errors are one clear line and a non-zero exit.

The commands live beside this parser: data.py (db, roster, plan, group), reports.py (digest,
export), serving.py (serve, demo); common.py has what they share.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bot.cli import common
from bot.cli.common import CliError
from bot.cli.data import (
    cmd_db_upgrade,
    cmd_group_bind,
    cmd_group_list,
    cmd_plan_load,
    cmd_plan_show,
    cmd_roster_import,
)
from bot.cli.reports import cmd_digest, cmd_export
from bot.cli.serving import cmd_demo, cmd_serve, tune_gc
from bot.config import ConfigError
from platforms import PLATFORMS

__all__ = ["CliError", "build_parser", "main", "tune_gc"]


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
                        help=f"path to config.toml (default {common.DEFAULT_CONFIG})")
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
