"""What `yanxiu` says, in the operator's language: Chinese unless `--lang en` or
YANXIU_LANG=en asks for English (for scripts). The sentences are macros in
templates/cli/<lang>.j2; this module picks the language and calls them by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
ENV_LANGUAGE = "YANXIU_LANG"

_current = [DEFAULT_LANGUAGE]


def language_from(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The language asked for: `--lang X` / `--lang=X` anywhere on the line, else $YANXIU_LANG
    ("en", "en_US.UTF-8"… are English), else Chinese. A value that is neither is left for the
    parser to refuse."""
    wanted = env.get(ENV_LANGUAGE, "")
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            wanted = argv[i + 1]
        elif arg.startswith("--lang="):
            wanted = arg.removeprefix("--lang=")
    return "en" if wanted.strip().lower().startswith("en") else DEFAULT_LANGUAGE


def use(language: str) -> None:
    _current[0] = language if language in LANGUAGES else DEFAULT_LANGUAGE


def language() -> str:
    return _current[0]


def chinese() -> bool:
    return _current[0] == "zh"


@lru_cache(maxsize=len(LANGUAGES))
def _table(lang: str) -> Any:
    from templates.render import environment

    return environment().get_template(f"cli/{lang}.j2").module


def say(message: str, /, **data: Any) -> str:
    """The sentence `message` (a macro's name) with `data`, in the current language."""
    return str(getattr(_table(_current[0]), message)(**data)).strip("\n")


def has(name: str) -> bool:
    """Whether the current language has a sentence `name` (the e_* translations are Chinese only)."""
    return hasattr(_table(_current[0]), name)


def help_text(key: str) -> str:
    """An option's or a command's help line (the `help` table of the language's file); argparse
    expands %(default)s in it, so a literal percent sign is written %%."""
    return str(_table(_current[0]).help[key])


def metavar(name: str) -> str:
    return str(_table(_current[0]).metavar.get(name, name))
