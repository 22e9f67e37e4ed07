"""What every `yanxiu` command shares: its errors, the clock, the config it reads, the database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.cli.say import say
from bot.config import Config, config_from_mapping, load_config

DEFAULT_CONFIG = "./config.toml"


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def now() -> datetime:
    return datetime.now(UTC)


def config_path(args: argparse.Namespace) -> str | None:
    """The config file this command reads: --config, or ./config.toml when it exists."""
    given = getattr(args, "config", None)
    if given is not None:
        return str(given)
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).exists() else None


def config_of(args: argparse.Namespace) -> Config:
    """The --config file; without --config, ./config.toml, or when that is missing too the
    embedded default (SQLite in the current folder) — saying so, with the database's URL."""
    if args.config is not None:
        return load_config(args.config)
    if Path(DEFAULT_CONFIG).exists():
        return load_config(DEFAULT_CONFIG)
    config = config_from_mapping({})
    print(f"yanxiu: {say('config_default', config=DEFAULT_CONFIG, database=shown_database(config.database.url))}",
          file=sys.stderr)
    return config


def shown_database(url: str) -> str:
    """A database URL fit to print: the password masked, a SQLite file's full path added."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from storage.db import sqlite_file

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return say("database_url_unparsable")
    file = sqlite_file(url)
    return say("database_file", url=shown, file=file) if file is not None else shown


async def with_db(config: Config, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from storage.db import Database

    db = Database(config.database.url)
    try:
        await db.upgrade()
        return await fn(db)
    finally:
        await db.close()
