"""`yanxiu`: the command line, in Chinese (`--lang en` or YANXIU_LANG=en for scripts). Errors
are one clear line naming the file, the line and the key, and a non-zero exit.

The commands live beside this parser: data.py (db, roster, plan, group), reports.py (digest,
export), serving.py (serve, demo); common.py has what they share.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

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
from bot.cli.errors import config_error
from bot.cli.parsing import Parser
from bot.cli.reports import cmd_digest, cmd_export
from bot.cli.say import LANGUAGES, help_text, language_from, metavar, say
from bot.cli.say import use as say_in
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
        raise argparse.ArgumentTypeError(say("port_range", text=repr(text)))
    return port


def _common_options(top: bool) -> argparse.ArgumentParser:
    """--config and --lang as a parent parser. The top level holds the real defaults (None:
    ./config.toml, the language from the environment); each subcommand's copy defaults to
    SUPPRESS, so it sets them only when given after the subcommand and never overwrites one
    given before it."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", default=None if top else argparse.SUPPRESS,
                        metavar=metavar("PATH"), help=help_text("config"))
    parent.add_argument("--lang", choices=LANGUAGES, default=None if top else argparse.SUPPRESS,
                        help=help_text("lang"))
    return parent


def _commands(parser: argparse.ArgumentParser, dest: str) -> Any:
    return parser.add_subparsers(dest=dest, required=True, title=help_text("commands"),
                                 metavar=metavar("COMMAND"))


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, its help in the current language (bot.cli.say)."""
    p = Parser(prog="yanxiu", description=help_text("description"), epilog=help_text("epilog"),
               parents=[_common_options(True)])
    common = _common_options(False)
    sub = _commands(p, "command")

    def command(where: Any, name: str, key: str, **kwargs: Any) -> Any:
        return where.add_parser(name, help=help_text(key), description=help_text(key), **kwargs)

    demo = command(sub, "demo", "demo", parents=[common])
    demo.add_argument("--port", type=_port, default=8080, metavar=metavar("PORT"), help=help_text("demo.port"))
    demo.add_argument("--data-dir", metavar=metavar("DIR"), help=help_text("demo.data_dir"))
    demo.set_defaults(fn=cmd_demo)

    serve = command(sub, "serve", "serve", parents=[common])
    serve.add_argument("--workers", type=int, metavar=metavar("N"), help=help_text("serve.workers"))
    serve.set_defaults(fn=cmd_serve)

    db = _commands(command(sub, "db", "db"), "db_command")
    command(db, "upgrade", "db.upgrade", parents=[common]).set_defaults(fn=cmd_db_upgrade)

    roster = _commands(command(sub, "roster", "roster"), "roster_command")
    imp = command(roster, "import", "roster.import", parents=[common])
    imp.add_argument("file", metavar=metavar("FILE"), help=help_text("roster.import.file"))
    imp.set_defaults(fn=cmd_roster_import)

    group = _commands(command(sub, "group", "group"), "group_command")
    bind = command(group, "bind", "group.bind", parents=[common])
    bind.add_argument("--school", required=True, metavar=metavar("CODE"), help=help_text("group.bind.school"))
    bind.add_argument("--platform", required=True, choices=[p.name for p in PLATFORMS if p.bind_route],
                      help=help_text("group.bind.platform"))
    bind.add_argument("--conversation-id", required=True, metavar=metavar("ID"),
                      help=help_text("group.bind.conversation_id"))
    bind.add_argument("--webhook", metavar=metavar("URL"), help=help_text("group.bind.webhook"))
    bind.add_argument("--secret", metavar=metavar("SECRET"), help=help_text("group.bind.secret"))
    bind.set_defaults(fn=cmd_group_bind)
    command(group, "list", "group.list", parents=[common]).set_defaults(fn=cmd_group_list)

    plan = _commands(command(sub, "plan", "plan"), "plan_command")
    load = command(plan, "load", "plan.load", parents=[common])
    load.add_argument("file", metavar=metavar("FILE"), help=help_text("plan.load.file"))
    load.set_defaults(fn=cmd_plan_load)
    show = command(plan, "show", "plan.show", parents=[common])
    show.add_argument("file", nargs="?", metavar=metavar("FILE"), help=help_text("plan.show.file"))
    show.add_argument("--json", action="store_true", help=help_text("plan.show.json"))
    show.set_defaults(fn=cmd_plan_show)

    digest = command(sub, "digest", "digest", parents=[common])
    which = digest.add_mutually_exclusive_group(required=True)
    which.add_argument("--school", metavar=metavar("CODE"), help=help_text("digest.school"))
    which.add_argument("--district", action="store_true", help=help_text("digest.district"))
    digest.add_argument("--send", action="store_true", help=help_text("digest.send"))
    digest.set_defaults(fn=cmd_digest)

    export = command(sub, "export", "export", parents=[common])
    export.add_argument("--format", choices=["csv", "xlsx"], required=True, help=help_text("export.format"))
    export.add_argument("-o", "--output", required=True, metavar=metavar("FILE"), help=help_text("export.output"))
    export.add_argument("--school", metavar=metavar("CODE"), help=help_text("export.school"))
    export.set_defaults(fn=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("YANXIU_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    say_in(language_from(argv, os.environ))
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except CliError as exc:
        print(f"yanxiu: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"yanxiu: {config_error(str(exc), common.config_path(args))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
