"""Errors from below the command line, told the operator's way: the file, the line where the
file writes the key, the key as the file spells it, and the problem in Chinese.

The plan reader, the config reader and the OS phrase their problems in English for the code
and the tests below; this edge matches those phrasings and says each one with a macro of
templates/cli/zh.j2. In English (--lang en) they are shown as they are. One not matched here
is shown as it is too, still with its file and line.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from bot.cli.say import chinese, has, say

# ------------------------------------------------------------------------- files


def file_problem(path: str | Path, exc: OSError, *, writing: bool = False) -> str:
    """One line naming the file: not there, a folder, not allowed, a full disk, or the OS's
    reason."""
    file = str(path)
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return say("file_not_found", file=file)
    if isinstance(exc, IsADirectoryError) or exc.errno == errno.EISDIR:
        return say("file_is_folder", file=file)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return say("file_no_write_permission" if writing else "file_no_permission", file=file)
    if exc.errno == errno.ENOSPC:
        return say("disk_full", file=file)
    return say("file_unwritable" if writing else "file_unreadable", file=file, why=exc.strerror or str(exc))


# ------------------------------------------------------------------------- where a TOML key is

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]\s]+)\s*\]\]?\s*(?:#.*)?")
_ASSIGN = re.compile(r"""\s*["']?([A-Za-z0-9_-]+)["']?\s*=""")
_PART = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")


def key_line(text: str, key: str, *, or_table: bool = True) -> int | None:
    """The line (from 1) where a TOML file writes `key` — "task[1].due" is `due =` in its
    second [[task]] — or, with `or_table`, its table's header when the key itself is not
    written (a missing key). None when neither is in the file (a value from the environment)."""
    parts = [(m[1], int(m[2]) if m[2] is not None else None) for m in _PART.finditer(key)]
    if not parts:
        return None
    (table, index), rest = parts[0], parts[1:]
    lines = text.splitlines()
    header: int | None = None
    seen = -1
    for n, line in enumerate(lines):
        found = _HEADER.fullmatch(line)
        if found is None:
            continue
        if header is not None:
            return _in_table(lines, header, n, rest, or_table)
        if found[2] == table:
            seen += found[1] == "[["
            if index is None or seen == index:
                header = n
    if header is not None:
        return _in_table(lines, header, len(lines), rest, or_table)
    first_header = next((n for n, line in enumerate(lines) if _HEADER.fullmatch(line)), len(lines))
    return _assignment(lines, 0, first_header, [(table, None)])


def _in_table(lines: list[str], header: int, end: int, rest: list[tuple[str, int | None]],
              or_table: bool) -> int | None:
    """The line of the key in the table whose header is at `header` (the header itself for the
    table as a whole, or with `or_table` when the key is not written)."""
    if not rest:
        return header + 1
    return _assignment(lines, header + 1, end, rest) or (header + 1 if or_table else None)


def _assignment(lines: list[str], start: int, end: int, rest: list[tuple[str, int | None]]) -> int | None:
    for n in range(start, end):
        found = _ASSIGN.match(lines[n])
        if found is not None and found[1] == rest[0][0]:
            return n + 1
    return None


def _read(path: str | Path | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


# ------------------------------------------------------------------------- the term plan

_TOML_AT = re.compile(r"(?P<detail>.+?) \(at line (?P<line>\d+), column (?P<column>\d+)\)", re.S)
_TOML_AT_END = re.compile(r"(?P<detail>.+?) \(at end of document\)", re.S)
_EXPECTED = re.compile(r"expected (?P<what>.+), got (?P<got>.+)", re.S)
_TABLES = re.compile(r"an array of tables written \[\[(?P<table>.+)\]\]")
_GOT_VALUE = re.compile(r"(?P<kind>a date|a date-time|a time) \((?P<value>.+)\)")
_PLAN_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.S), name) for pattern, name in (
        (r"unknown key \(did you mean '(?P<close>[^']+)'\?\)", "e_plan_unknown_key"),
        (r"unknown key; known: (?P<known>.+)", "e_plan_unknown_key"),
        (r"missing \(required\)", "e_plan_missing"),
        (r"missing \(required for a (?P<kind>\w+) task\)", "e_plan_missing_for"),
        (r"must not be empty", "e_plan_empty"),
        (r"must be (?P<positive>more than 0|0 or more), got (?P<value>.+)", "e_plan_bound"),
        (r"unknown timezone (?P<name>.+); e\.g\. \"Asia/Shanghai\"", "e_plan_timezone"),
        (r"(?P<value>.+) is not a time of day", "e_plan_not_a_time"),
        (r"(?P<value>.+) is outside the calendar", "e_plan_outside_calendar"),
        (r"unknown weekday (?P<value>.+); use mon tue wed thu fri sat sun or 周一…周日", "e_plan_weekday"),
        (r"(?P<to>\S+) is before from = (?P<from_>\S+)", "e_plan_to_before_from"),
        (r"(?P<end>\S+) is before term\.start (?P<start>\S+)", "e_plan_end_before_start"),
        (r"a term is at most (?P<most>\d+) days \(one school year\); (?P<start>\S+) to (?P<end>\S+) "
         r"is (?P<days>\d+)", "e_plan_too_long"),
        (r"(?P<value>\S+) is outside the term (?P<start>\S+) – (?P<end>\S+)", "e_plan_outside_term"),
        (r"(?P<day>\S+) is also in term\.non_school_dates", "e_plan_both_lists"),
        (r"(?P<month>\S+) already has a theme", "e_plan_theme_twice"),
        (r"(?P<id>.+) is used by another task", "e_plan_task_id_twice"),
        (r"(?P<name>.+) is used by another (?:session|activity)", "e_plan_session_name_twice"),
        (r"unknown kind (?P<kind>.+); use \"reflection\", \"photos\" or \"file\"", "e_plan_task_kind"),
        (r"(?P<value>.+) is not a deadline; write a date-time such as \S+ or a recurring due "
         r"such as \"last fri of month 17:00\"", "e_plan_not_a_deadline"),
        (r"does not apply to a (?P<kind>\w+) task \(use (?P<needed>\w+)\)", "e_plan_not_for_kind"),
        (r"(?P<name>'.+') overlaps session\[(?P<first>\d+)\] \((?P<other>'.+'), (?P<from_>[\d:]+)–"
         r"(?P<to>[\d:]+)\) on (?P<when>.+)", "e_plan_overlap"),
    ))
_DEFAULTS = {"close": "", "known": ""}


def plan_problem(problem: str) -> str:
    """A PlanError's problem in Chinese, or as it is when it is not one we know."""
    expected = _EXPECTED.fullmatch(problem)
    if expected is not None:
        what, got = expected["what"], expected["got"]
        tables = _TABLES.fullmatch(what)
        value = _GOT_VALUE.fullmatch(got)
        if value is not None:
            return say("e_plan_expected_value", what=what, got=value["kind"], value=value["value"])
        return say("e_plan_expected", what="an array of tables" if tables else what, got=got,
                   table=tables["table"] if tables else "")
    for pattern, name in _PLAN_PROBLEMS:
        match = pattern.fullmatch(problem)
        if match is not None:
            data = {k: v for k, v in match.groupdict().items() if v is not None}
            if name == "e_plan_unknown_key":
                data = {**_DEFAULTS, **data}
            if name == "e_plan_bound":
                data["positive"] = data["positive"] == "more than 0"
            if name == "e_plan_overlap":
                data["first"] = int(data["first"])
            return say(name, **data)
    return problem


def plan_error(path: str | Path, key: str, problem: str, text: str | None) -> str:
    """One line: the plan file, the line (and column) of the problem, the key as the file
    writes it, what is wrong."""
    file = str(path)
    if not chinese():
        return f"{file}: {key}: {problem}"
    if key == "<file>":
        syntax = problem.removeprefix("TOML syntax error: ")
        at = _TOML_AT.fullmatch(syntax)
        if at is not None:
            return say("e_plan", file=file, line=int(at["line"]), column=int(at["column"]), where="",
                       problem=say("e_plan_toml", detail=at["detail"]))
        at_end = _TOML_AT_END.fullmatch(syntax)
        detail = at_end["detail"] if at_end is not None else syntax
        return say("e_plan", file=file, line=None, column=None, where="",
                   problem=say("e_plan_toml", detail=detail) if syntax != problem else problem)
    parts = [(m[1], m[2]) for m in _PART.finditer(key)]
    if len(parts) > 1 or parts[0][1] is not None:
        rest = key[len(parts[0][0]) + (len(parts[0][1]) + 2 if parts[0][1] is not None else 0):]
        where = say("e_plan_where", table=parts[0][0],
                    index=int(parts[0][1]) if parts[0][1] is not None else None, key=rest.lstrip("."))
    else:
        where = say("e_plan_top", key=key)
    line = key_line(text, key) if text is not None else None
    return say("e_plan", file=file, line=line, column=None, where=where, problem=plan_problem(problem))


# ------------------------------------------------------------------------- config.toml

_CONFIG_KEYED = re.compile(r"(?P<key>[A-Za-z0-9_.-]+): (?P<problem>.+)", re.S)
_CONFIG_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.S), name) for pattern, name in (
        (r"must be (?P<allowed>\"[^\"]+\"(?: or \"[^\"]+\")+)", "e_config_one_of"),
        (r"must be between (?P<low>\d+) and (?P<high>\d+)", "e_config_between"),
        (r"must be a SQLAlchemy URL such as (?P<example>\S+)", "e_config_database_url"),
    ))


def _config_problem(problem: str) -> str:
    for pattern, name in _CONFIG_PROBLEMS:
        match = pattern.fullmatch(problem)
        if match is not None:
            data = match.groupdict()
            if name == "e_config_one_of":
                data["allowed"] = data["allowed"].split(" or ")
            return say(name, **data)
    return say("e_config_problem", problem=problem)


def config_error(message: str, path: str | Path | None) -> str:
    """A ConfigError in Chinese, naming the config file and the line of the key it is about
    (a key set only in the environment, YANXIU_…, has no line)."""
    if not chinese() or not has("e_config"):
        return message
    file = str(path) if path is not None else None
    if file is not None and message.startswith(f"{file}: "):
        rest = message[len(file) + 2:]
        if rest.startswith("config file not found"):
            return say("e_config_not_found", file=file)
        at = _TOML_AT.fullmatch(rest)
        if at is not None:
            return say("e_config_toml", file=file, line=at["line"], column=at["column"],
                       detail=at["detail"])
        return message
    keyed = _CONFIG_KEYED.fullmatch(message)
    if keyed is None:
        return message
    key = keyed["key"]
    variable = "YANXIU_" + key.replace(".", "_").upper()
    if variable in os.environ:  # the environment overrides the file: that is where it is wrong
        return say("e_config_env", variable=variable, key=key, problem=_config_problem(keyed["problem"]))
    text = _read(path)
    line = key_line(text, key) if text is not None else None
    return say("e_config", file=file if line else "", line=line, key=key,
               problem=_config_problem(keyed["problem"]))
