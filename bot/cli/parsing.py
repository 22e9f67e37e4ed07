"""argparse in the operator's language: its usage line, section titles, -h and its errors
("the following arguments are required…") come from templates/cli/ like every other line."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

from bot.cli.say import chinese, has, help_text, say

# argparse's own error sentences (Python 3.11–3.13 wording) → the macro that says each one
_ARGPARSE_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.S), name) for pattern, name in (
        (r"the following arguments are required: (?P<args>.+)", "e_required"),
        (r"unrecognized arguments: (?P<args>.+)", "e_unrecognized"),
        (r"invalid choice: (?P<value>.+?) \(choose from (?P<choices>.+)\)", "e_choice"),
        (r"invalid (?P<type>\w+) value: (?P<value>.+)", "e_invalid_value"),
        (r"expected one argument", "e_expected_one"),
        (r"expected at most one argument", "e_expected_at_most_one"),
        (r"expected at least one argument", "e_expected_at_least_one"),
        (r"not allowed with argument (?P<other>.+)", "e_not_allowed"),
        (r"one of the arguments (?P<args>.+) is required", "e_one_of"),
        (r"ambiguous option: (?P<option>\S+) could match (?P<matches>.+)", "e_ambiguous"),
        (r"ignored explicit argument (?P<value>.+)", "e_ignored"),
    ))
_ARGUMENT = re.compile(r"argument (?P<arg>\S+?): (?P<problem>.+)", re.S)


def argparse_message(message: str) -> str:
    """argparse's English error in Chinese (as is in English, or when it is not one we know)."""
    if not chinese():
        return message
    argument = _ARGUMENT.fullmatch(message)
    if argument is not None:
        return say("e_argument", arg=argument["arg"], problem=argparse_message(argument["problem"]))
    for pattern, name in _ARGPARSE_ERRORS:
        match = pattern.fullmatch(message)
        if match is not None and has(name):
            return say(name, **match.groupdict())
    return message


class Formatter(argparse.HelpFormatter):
    """Help with the language's "usage:" prefix."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, say("usage_prefix") if prefix is None else prefix)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose own words are the operator's language; subcommands get one too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = say("positionals")
        self._optionals.title = say("optionals")
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                          help=help_text("help"))

    def error(self, message: str) -> NoReturn:
        """The usage line, then one line saying what is wrong; exit status 2, as argparse does."""
        self.print_usage(sys.stderr)
        self.exit(2, say("argparse_error", prog=self.prog, message=argparse_message(message)) + "\n")
