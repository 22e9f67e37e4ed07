"""Reading the operator's TOML into a `Plan`: every value checked, every problem naming its
exact key (`task[1].due: …`), two sessions that meet at the same time refused."""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kernel.plan.model import (
    TASK_KINDS,
    Occurrence,
    Plan,
    PlanError,
    SessionSpec,
    TaskSpec,
    ThemeSpec,
    Weekly,
)
from kernel.plan.schedule import session_occurrences

_ENGLISH_DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_WEEKDAY_NAMES: dict[str, int] = {
    name: i
    for i, (full, zh) in enumerate(zip(_ENGLISH_DAYS, "一二三四五六日", strict=True))
    for name in (full, full[:3], zh, f"周{zh}", f"星期{zh}", f"礼拜{zh}")
} | {name: 6 for name in ("天", "周天", "星期天", "礼拜天")}

_CLOCK = re.compile(r"(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?")
_WEEKLY = re.compile(r"\s*(\S+?)\s*(\d{1,2}[:：]\d{2})\s*")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_REQUIRED: Any = object()


Reader = Callable[[Any, str], Any]


def _wrong(key: str, expected: str, value: object) -> PlanError:
    if isinstance(value, bool):
        got = "true/false"
    elif isinstance(value, str | int | float):
        got = repr(value)
    elif isinstance(value, date | time):
        kind = "date-time" if isinstance(value, datetime) else type(value).__name__
        got = f"a {kind} ({value.isoformat()})"
    else:
        got = (
            "an array"
            if isinstance(value, list)
            else "a table"
            if isinstance(value, dict)
            else type(value).__name__
        )
    return PlanError(key, f"expected {expected}, got {got}")


def _read(table: object, prefix: str, schema: Mapping[str, tuple[Reader, Any]]) -> dict[str, Any]:
    """Check a table against {key: (reader, default)}; _REQUIRED marks a key without default."""
    if not isinstance(table, Mapping):
        raise _wrong(prefix, "a table", table)
    for name in table:
        if name not in schema:
            close = difflib.get_close_matches(name, list(schema), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; known: {', '.join(schema)}"
            raise PlanError(f"{prefix}.{name}" if prefix else name, f"unknown key{hint}")
    values: dict[str, Any] = {}
    for name, (reader, default) in schema.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in table:
            values[name] = reader(table[name], key)
        elif default is _REQUIRED:
            raise PlanError(key, "missing (required)")
        else:
            values[name] = default
    return values


def _array_of_tables(value: object, key: str) -> list[object]:
    if not isinstance(value, list):
        raise _wrong(key, f"an array of tables written [[{key}]]", value)
    return value


def _text(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise _wrong(key, "a string", value)
    if not value.strip():
        raise PlanError(key, "must not be empty")
    return value.strip()


def _count(value: object, key: str, positive: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(key, "a whole number", value)
    if value < 0 or (positive and value == 0):
        raise PlanError(key, f"must be {'more than 0' if positive else '0 or more'}, got {value}")
    return value


def _positive(value: object, key: str) -> int:
    return _count(value, key, positive=True)


def _amount(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _wrong(key, "a number", value)
    if value < 0:
        raise PlanError(key, f"must be 0 or more, got {value}")
    return float(value)


def _flag(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong(key, "true or false", value)
    return value


def _zone(value: object, key: str) -> str:
    name = _text(value, key)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PlanError(key, f'unknown timezone {name!r}; e.g. "Asia/Shanghai"') from None
    return name


def _day(value: object, key: str) -> date:
    if isinstance(value, str):
        raise PlanError(key, f"expected a TOML date such as 2023-03-01 (no quotes), got {value!r}")
    if isinstance(value, datetime) or not isinstance(value, date):
        raise _wrong(key, "a date such as 2023-03-01", value)
    return value


def _clock(value: object, key: str) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    match = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _wrong(key, 'a time "HH:MM" such as "10:00"', value)
    hour, minute, second = (int(g) if g else 0 for g in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise PlanError(key, f"{value!r} is not a time of day")
    return time(hour, minute, second)


MAX_TERM_DAYS = 400


def _moment(value: object, key: str, tz: ZoneInfo) -> datetime:
    """A TOML date-time: a local one is read in the term's zone, one with an offset converted."""
    if isinstance(value, str):
        example = "2023-03-31T17:00:00 (no quotes)"
        raise PlanError(key, f"expected a TOML date-time such as {example}, got {value!r}")
    if not isinstance(value, datetime):
        raise _wrong(key, "a date-time such as 2023-03-31T17:00:00", value)
    try:
        return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
    except OverflowError:  # an offset at the calendar's edge (0001-01-01T00:00+08:00)
        raise PlanError(key, f"{value.isoformat()} is outside the calendar") from None


def _weekday(value: object, key: str) -> int:
    number = _WEEKDAY_NAMES.get(value.strip().lower()) if isinstance(value, str) else None
    if number is None:
        raise PlanError(
            key, f"unknown weekday {value!r}; use mon tue wed thu fri sat sun or 周一…周日"
        )
    return number


def _weekdays(value: object, key: str) -> tuple[int, ...]:
    # an empty list is a session held only on the plan's extra_school_dates
    if not isinstance(value, list):
        raise _wrong(key, 'an array such as ["tue", "thu"]', value)
    return tuple(sorted({_weekday(w, f"{key}[{i}]") for i, w in enumerate(value)}))


def _weekly(value: object, key: str) -> Weekly:
    match = _WEEKLY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _wrong(key, 'a weekday and time such as "fri 16:00"', value)
    return Weekly(_weekday(match[1], key), _clock(match[2], key))


def _days_before(value: object, key: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _wrong(key, "an array of days such as [3, 1, 0]", value)
    return tuple(sorted({_count(d, f"{key}[{i}]") for i, d in enumerate(value)}, reverse=True))


def _dates(value: object, key: str) -> tuple[date, ...]:
    """Sorted dates; an item may be a range written { from = 2023-07-01, to = 2023-08-31 }."""
    if not isinstance(value, list):
        raise _wrong(key, "an array of dates", value)
    days: set[date] = set()
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            span = _read(item, f"{key}[{i}]", {"from": (_day, _REQUIRED), "to": (_day, _REQUIRED)})
            if span["to"] < span["from"]:
                raise PlanError(f"{key}[{i}].to", f"{span['to']} is before from = {span['from']}")
            count = (span["to"] - span["from"]).days + 1
            days.update(span["from"] + timedelta(days=n) for n in range(count))
        else:
            days.add(_day(item, f"{key}[{i}]"))
    return tuple(sorted(days))


# ---------------------------------------------------------------- the plan's parts

_TERM: dict[str, tuple[Reader, Any]] = {
    "name": (_text, _REQUIRED),
    "start": (_day, _REQUIRED),
    "end": (_day, _REQUIRED),
    "timezone": (_zone, "Asia/Shanghai"),
    "required_hours": (_amount, 36.0),
    "count_punctuation": (_flag, False),
    "non_school_dates": (_dates, ()),
    "extra_school_dates": (_dates, ()),
    "remind_at": (_clock, time(8, 0)),
    "missed_grace_minutes": (_count, 120),
}
_THEME: dict[str, tuple[Reader, Any]] = {
    "month": (_text, _REQUIRED),
    "title": (_text, _REQUIRED),
    "form": (_text, None),
}
_SESSION: dict[str, tuple[Reader, Any]] = {
    "name": (_text, _REQUIRED),
    "weekdays": (_weekdays, _REQUIRED),
    "start": (_clock, _REQUIRED),
    "minutes": (_positive, 40),
    "checkin_opens_before": (_count, 10),
    "checkin_closes_after": (_count, 20),
    "hours": (_amount, 1.0),
    "remind_before": (_count, None),
}
_DIGEST: dict[str, tuple[Reader, Any]] = {"school": (_weekly, None), "district": (_weekly, None)}


_TOP: dict[str, tuple[Reader, Any]] = {
    "term": (lambda value, key: value, _REQUIRED),
    "theme": (_array_of_tables, []),
    "session": (_array_of_tables, []),
    "task": (_array_of_tables, []),
    "digest": (lambda value, key: value, {}),
}


def _task_schema(tz: ZoneInfo) -> dict[str, tuple[Reader, Any]]:
    return {
        "id": (_text, _REQUIRED),
        "kind": (_text, _REQUIRED),
        "title": (_text, _REQUIRED),
        "due": (lambda value, key: _moment(value, key, tz), _REQUIRED),
        "hours": (_amount, 0.0),
        "min_chars": (_positive, None),
        "min_photos": (_positive, None),
        "remind_before_days": (_days_before, ()),
    }


def _parse_term(table: object) -> dict[str, Any]:
    term = _read(table, "term", _TERM)
    start, end = term["start"], term["end"]
    if end < start:
        raise PlanError("term.end", f"{end} is before term.start {start}")
    if (end - start).days > MAX_TERM_DAYS:
        raise PlanError("term.end", f"a term is at most {MAX_TERM_DAYS} days (one school year); "
                                    f"{start} to {end} is {(end - start).days}")
    for name in ("non_school_dates", "extra_school_dates"):
        outside = [d for d in term[name] if not start <= d <= end]
        if outside:
            raise PlanError(f"term.{name}", f"{outside[0]} is outside the term {start} – {end}")
    both = sorted(set(term["non_school_dates"]) & set(term["extra_school_dates"]))
    if both:
        raise PlanError("term.extra_school_dates", f"{both[0]} is also in term.non_school_dates")
    return term


def _parse_theme(item: object, key: str, start: date, end: date, seen: set[str]) -> ThemeSpec:
    theme = _read(item, key, _THEME)
    match = _MONTH.fullmatch(theme["month"])
    if match is None or not 1 <= int(match[2]) <= 12:
        raise _wrong(f"{key}.month", 'a month "YYYY-MM" such as "2023-03"', theme["month"])
    if not (start.year, start.month) <= (int(match[1]), int(match[2])) <= (end.year, end.month):
        raise PlanError(f"{key}.month", f"{match[0]} is outside the term {start} – {end}")
    if match[0] in seen:
        raise PlanError(f"{key}.month", f"{match[0]} already has a theme")
    seen.add(match[0])
    return ThemeSpec(**theme)


def _parse_task(item: object, key: str, plan: Mapping[str, Any], seen: set[str]) -> TaskSpec:
    task = _read(item, key, _task_schema(ZoneInfo(plan["timezone"])))
    if task["id"] in seen:
        raise PlanError(f"{key}.id", f"{task['id']!r} is used by another task")
    seen.add(task["id"])
    kind = task["kind"]
    if kind not in TASK_KINDS:
        raise PlanError(f"{key}.kind", f'unknown kind {kind!r}; use "reflection" or "photos"')
    needed, other = (
        ("min_chars", "min_photos") if kind == "reflection" else ("min_photos", "min_chars")
    )
    if task[other] is not None:
        raise PlanError(f"{key}.{other}", f"does not apply to a {kind} task (use {needed})")
    if task[needed] is None:
        raise PlanError(f"{key}.{needed}", f"missing (required for a {kind} task)")
    if not plan["start"] <= task["due"].date() <= plan["end"]:
        term = f"{plan['start']} – {plan['end']}"
        raise PlanError(f"{key}.due", f"{task['due'].date()} is outside the term {term}")
    return TaskSpec(**task)


def parse_plan(data: Mapping[str, Any]) -> Plan:
    """Validate a tomllib-loaded plan; a problem raises PlanError naming the exact key."""
    top = _read(data, "", _TOP)
    term = _parse_term(top["term"])
    themes: set[str] = set()
    names: set[str] = set()
    ids: set[str] = set()
    sessions: list[SessionSpec] = []
    for i, item in enumerate(top["session"]):
        session = SessionSpec(**_read(item, f"session[{i}]", _SESSION))
        if session.name in names:
            raise PlanError(f"session[{i}].name", f"{session.name!r} is used by another session")
        names.add(session.name)
        sessions.append(session)
    digest = _read(top["digest"], "digest", _DIGEST)
    plan = Plan(
        **term,
        themes=tuple(
            _parse_theme(item, f"theme[{i}]", term["start"], term["end"], themes)
            for i, item in enumerate(top["theme"])
        ),
        sessions=tuple(sessions),
        tasks=tuple(
            _parse_task(item, f"task[{i}]", term, ids) for i, item in enumerate(top["task"])
        ),
        school_digest=digest["school"],
        district_digest=digest["district"],
    )
    _check_overlaps(plan)
    return plan


def _check_overlaps(plan: Plan) -> None:
    """Two sessions for the same people at the same time: a check-in could not tell which one
    it is for. Names both sessions' keys and the first time they meet together."""
    index = {s.name: i for i, s in enumerate(plan.sessions)}
    running: Occurrence | None = None
    for occurrence in session_occurrences(plan):
        if running is not None and occurrence.starts_at < running.ends_at:
            first, second = index[running.session], index[occurrence.session]
            when = occurrence.starts_at.strftime("%Y-%m-%d %H:%M")
            raise PlanError(f"session[{second}].start",
                            f"{occurrence.session!r} overlaps session[{first}] ({running.session!r}, "
                            f"{running.starts_at:%H:%M}–{running.ends_at:%H:%M}) on {when}")
        if running is None or occurrence.ends_at > running.ends_at:
            running = occurrence


def plan_from_text(text: str) -> Plan:
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as e:
        raise PlanError("<file>", f"TOML syntax error: {e}") from None
    return parse_plan(data)


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file (UTF-8, a BOM from Windows editors is fine)."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise PlanError("<file>", f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise PlanError("<file>", f"{path} is not UTF-8 text; save it as UTF-8") from None
    try:
        return plan_from_text(text)
    except PlanError as e:
        if e.key == "<file>":
            raise PlanError("<file>", f"{path}: {e.problem}") from None
        raise
