"""Reading the operator's TOML into a `Plan`: every value checked, every problem naming its
exact key (`activity[2].every: …`), two meetings for the same people at the same time refused.

Both editions load: `[[session]]` (first) is read as an `[[activity]]` that meets every week,
each day on its own, for everyone (docs/plan-format.md has every key).
"""

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
    ATTEND,
    BY,
    EVERY,
    EVERYONE,
    NTH,
    TASK_KINDS,
    ActivitySpec,
    Assessment,
    Occurrence,
    Plan,
    PlanError,
    Scope,
    TaskSpec,
    ThemeSpec,
    Weekly,
)
from kernel.plan.recurring import RecurringDue, parse_recurring
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


# ---------------------------------------------------------------- more value readers


def _choice(options: tuple[str, ...]) -> Reader:
    def read(value: object, key: str) -> str:
        text = _text(value, key)
        if text not in options:
            listed = ", ".join(f'"{o}"' for o in options[:-1]) + f' or "{options[-1]}"'
            raise PlanError(key, f"unknown value {text!r}; use {listed}")
        return text
    return read


def _texts(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _wrong(key, 'an array such as ["数学"]', value)
    if not value:
        raise PlanError(key, "must not be empty")
    return tuple(dict.fromkeys(_text(v, f"{key}[{i}]") for i, v in enumerate(value)))


_SCOPE: dict[str, tuple[Reader, Any]] = {
    "schools": (_texts, ()), "stages": (_texts, ()), "subjects": (_texts, ()), "townships": (_texts, ()),
}


def _scope(value: object, key: str) -> Scope:
    return Scope(**_read(value, key, _SCOPE))


def _extensions(value: object, key: str) -> tuple[str, ...]:
    found = _texts(value, key)
    for i, ext in enumerate(found):
        if ext.startswith("."):
            raise PlanError(f"{key}[{i}]", f"{ext!r} — write the extension without the dot: \"{ext[1:]}\"")
    return tuple(e.lower() for e in found)


def _identifier(value: object, key: str) -> str:
    """An activity id: used in message keys and meeting names, so no spaces, "/" or "@"."""
    text = _text(value, key)
    if re.search(r"[\s/@]", text):
        raise PlanError(key, 'must not contain spaces, "/" or "@"')
    return text


def _task_id(value: object, key: str) -> str:
    """A task id: "@" names a recurring task's occurrences (material-7@2023-03-31)."""
    text = _text(value, key)
    if "@" in text:
        raise PlanError(key, 'must not contain "@"')
    return text


def _categories(value: object, key: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping):
        raise _wrong(key, 'a table such as { "集中研修" = 8 }', value)
    return tuple((str(name), _amount(minimum, f"{key}.{name}")) for name, minimum in value.items())


# ---------------------------------------------------------------- the plan's parts

_TERM: dict[str, tuple[Reader, Any]] = {
    "name": (_text, _REQUIRED),
    "start": (_day, _REQUIRED),
    "end": (_day, _REQUIRED),
    "timezone": (_zone, "Asia/Shanghai"),
    "required_hours": (_amount, None),
    "count_punctuation": (_flag, False),
    "non_school_dates": (_dates, ()),
    "extra_school_dates": (_dates, ()),
    "remind_at": (_clock, time(8, 0)),
    "missed_grace_minutes": (_count, 120),
}
_HOURS: dict[str, tuple[Reader, Any]] = {
    "required": (_amount, None),
    "year_required": (_amount, None),
    "categories": (_categories, ()),
}
_THEME: dict[str, tuple[Reader, Any]] = {
    "month": (_text, _REQUIRED),
    "title": (_text, _REQUIRED),
    "form": (_text, None),
    "schools": (_texts, ()),
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
_ACTIVITY: dict[str, tuple[Reader, Any]] = {
    "id": (_identifier, _REQUIRED),
    "name": (_text, _REQUIRED),
    "type": (_text, None),
    "every": (_choice(EVERY), None),
    "weekdays": (_weekdays, None),
    "dates": (_dates, None),
    "nth": (_choice(NTH), None),
    "attend": (_choice(ATTEND), None),
    "from": (_day, None),
    "to": (_day, None),
    "start": (_clock, None),
    "minutes": (_positive, None),
    "checkin_opens_before": (_count, None),
    "checkin_closes_after": (_count, None),
    "hours": (_amount, None),
    "category": (_text, None),
    "remind_before": (_count, None),
    "for": (_scope, EVERYONE),
}
_MEETING_ONLY = ("every", "weekdays", "dates", "nth", "attend", "minutes", "checkin_opens_before",
                 "checkin_closes_after", "hours", "category", "remind_before")
_WEIGHTS: dict[str, tuple[Reader, Any]] = {
    "attendance": (_amount, 0.0), "tasks": (_amount, 0.0), "lead": (_amount, 0.0),
}
_ASSESSMENT: dict[str, tuple[Reader, Any]] = {
    "pass": (_amount, _REQUIRED),
    "weights": (lambda value, key: _read(value, key, _WEIGHTS), _REQUIRED),
    "pass_hours": (_amount, None),
}
_DIGEST: dict[str, tuple[Reader, Any]] = {"school": (_weekly, None), "district": (_weekly, None)}

_TOP: dict[str, tuple[Reader, Any]] = {
    "term": (lambda value, key: value, _REQUIRED),
    "hours": (lambda value, key: value, None),
    "theme": (_array_of_tables, []),
    "activity": (_array_of_tables, []),
    "session": (_array_of_tables, []),
    "task": (_array_of_tables, []),
    "assessment": (lambda value, key: value, None),
    "digest": (lambda value, key: value, {}),
}


def _due(tz: ZoneInfo) -> Reader:
    def read(value: object, key: str) -> datetime | RecurringDue:
        if isinstance(value, str):
            recurring = parse_recurring(value, _WEEKDAY_NAMES)
            if recurring is None:
                raise PlanError(key, f"{value!r} is not a deadline; write a date-time such as "
                                     f"2023-04-30T17:00:00 or a recurring due such as \"last fri of month 17:00\"")
            return recurring
        return _moment(value, key, tz)
    return read


def _task_schema(tz: ZoneInfo) -> dict[str, tuple[Reader, Any]]:
    return {
        "id": (_task_id, _REQUIRED),
        "kind": (_text, _REQUIRED),
        "title": (_text, _REQUIRED),
        "due": (_due(tz), _REQUIRED),
        "hours": (_amount, 0.0),
        "min_chars": (_positive, None),
        "min_photos": (_positive, None),
        "min_files": (_positive, None),
        "accept": (_extensions, ()),
        "activity": (_text, None),
        "by": (_choice(BY), "teacher"),
        "category": (_text, None),
        "for": (_scope, EVERYONE),
        "from": (_day, None),
        "to": (_day, None),
        "remind_before_days": (_days_before, ()),
    }


def _outside(key: str, day: date, term: Mapping[str, Any]) -> PlanError:
    return PlanError(key, f"{day} is outside the term {term['start']} – {term['end']}")


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
            raise _outside(f"term.{name}", outside[0], term)
    both = sorted(set(term["non_school_dates"]) & set(term["extra_school_dates"]))
    if both:
        raise PlanError("term.extra_school_dates", f"{both[0]} is also in term.non_school_dates")
    return term


def _parse_hours(table: object | None, term: Mapping[str, Any]) -> dict[str, Any]:
    """The term's 学时: [hours] (second edition) or term.required_hours (first), default 36."""
    hours: dict[str, Any] = (_read(table, "hours", _HOURS) if table is not None
                             else {"required": None, "year_required": None, "categories": ()})
    if hours["required"] is not None and term["required_hours"] is not None:
        raise PlanError("hours.required", "also set as term.required_hours; keep one (hours.required)")
    required = hours["required"] if hours["required"] is not None else term["required_hours"]
    required = 36.0 if required is None else required
    if hours["year_required"] is not None and hours["year_required"] < required:
        raise PlanError("hours.year_required", f"{hours['year_required']:g} is less than hours.required {required:g}")
    minima = sum(m for _, m in hours["categories"])
    if minima > required:
        raise PlanError("hours.categories", f"minima add up to {minima:g}, more than hours.required {required:g}")
    return {"required_hours": required, "year_required": hours["year_required"],
            "categories": hours["categories"]}


def _parse_theme(item: object, key: str, term: Mapping[str, Any],
                 seen: dict[tuple[str, str | None], int], index: int) -> ThemeSpec:
    theme = _read(item, key, _THEME)
    match = _MONTH.fullmatch(theme["month"])
    if match is None or not 1 <= int(match[2]) <= 12:
        raise _wrong(f"{key}.month", 'a month "YYYY-MM" such as "2023-03"', theme["month"])
    start, end = term["start"], term["end"]
    if not (start.year, start.month) <= (int(match[1]), int(match[2])) <= (end.year, end.month):
        raise PlanError(f"{key}.month", f"{match[0]} is outside the term {start} – {end}")
    for n, school in enumerate(theme["schools"] or (None,)):
        earlier = seen.get((match[0], school))
        if earlier is not None:
            if school is None:
                raise PlanError(f"{key}.month", f"{match[0]} already has a theme")
            raise PlanError(f"{key}.schools[{n}]",
                            f"{school!r} already has its own theme for {match[0]} (theme[{earlier}])")
        seen[(match[0], school)] = index
    return ThemeSpec(theme["month"], theme["title"], theme["form"], theme["schools"])


def _session_activity(item: object, key: str) -> ActivitySpec:
    """A first-edition [[session]]: every week, each day on its own, for everyone, and on
    every extra school date too (as the first edition meant it)."""
    s = _read(item, key, _SESSION)
    return ActivitySpec(
        id=s["name"], name=s["name"], every="week", weekdays=s["weekdays"], attend="each",
        start=s["start"], minutes=s["minutes"], checkin_opens_before=s["checkin_opens_before"],
        checkin_closes_after=s["checkin_closes_after"], hours=s["hours"],
        remind_before=s["remind_before"], on_extra_days=True)


def _parse_activity(item: object, key: str, term: Mapping[str, Any],
                    categories: set[str]) -> ActivitySpec:
    a = _read(item, key, _ACTIVITY)
    for end in ("from", "to"):
        if a[end] is not None and not term["start"] <= a[end] <= term["end"]:
            raise _outside(f"{key}.{end}", a[end], term)
    if a["from"] is not None and a["to"] is not None and a["to"] < a["from"]:
        raise PlanError(f"{key}.to", f"{a['to']} is before from = {a['from']}")
    if a["start"] is None:  # a period: no meetings, its evidence is its tasks
        for name in _MEETING_ONLY:
            if a[name] is not None:
                raise PlanError(f"{key}.{name}", "a period (no start) has no meetings; "
                                                 f"remove {name} or add start")
        if a["from"] is None or a["to"] is None:
            missing = "from" if a["from"] is None else "to"
            if a["from"] is None and a["to"] is None:
                raise PlanError(f"{key}.start", "missing (a meeting needs start; a period needs from and to instead)")
            raise PlanError(f"{key}.{missing}", "missing (a period needs from and to)")
        return ActivitySpec(id=a["id"], name=a["name"], type=a["type"], first=a["from"], last=a["to"],
                            scope=a["for"], every="once", attend="each")
    every = a["every"] or ("once" if a["dates"] is not None else "week")
    if every == "once":
        if a["weekdays"] is not None:
            raise PlanError(f"{key}.weekdays", 'not with every = "once" (list the days in dates)')
        if a["dates"] is None:
            raise PlanError(f"{key}.dates", 'missing (required when every = "once")')
        for end in ("from", "to"):
            if a[end] is not None:
                raise PlanError(f"{key}.{end}", 'not with every = "once" (the dates say when)')
        for i, day in enumerate(a["dates"]):
            if not term["start"] <= day <= term["end"]:
                raise _outside(f"{key}.dates[{i}]", day, term)
    else:
        if a["dates"] is not None:
            raise PlanError(f"{key}.dates", f'only with every = "once" (this activity has every = "{every}")')
        if a["weekdays"] is None:
            raise PlanError(f"{key}.weekdays", f'missing (required when every = "{every}")')
        if not a["weekdays"]:
            raise PlanError(f"{key}.weekdays", 'empty; list at least one day, or use every = "once" with dates')
    if a["nth"] is not None and every != "month":
        raise PlanError(f"{key}.nth", 'only with every = "month"')
    if a["category"] is not None and categories and a["category"] not in categories:
        known = ", ".join(sorted(categories))
        raise PlanError(f"{key}.category", f"{a['category']!r} is not in hours.categories ({known})")
    def given(name: str, default: Any) -> Any:
        return a[name] if a[name] is not None else default

    return ActivitySpec(
        id=a["id"], name=a["name"], type=a["type"], every=every, weekdays=a["weekdays"] or (),
        dates=a["dates"] or (), nth=a["nth"] or "first", attend=a["attend"] or "each",
        first=a["from"], last=a["to"], start=a["start"], minutes=given("minutes", 40),
        checkin_opens_before=given("checkin_opens_before", 10),
        checkin_closes_after=given("checkin_closes_after", 20), hours=given("hours", 1.0),
        category=a["category"], remind_before=a["remind_before"], scope=a["for"])


def _parse_task(item: object, key: str, term: Mapping[str, Any], seen: set[str],
                activities: Mapping[str, ActivitySpec], categories: set[str]) -> list[TaskSpec]:
    """One [[task]]: a task, or a recurring task's occurrences (one per deadline)."""
    tz = ZoneInfo(term["timezone"])
    task = _read(item, key, _task_schema(tz))
    if task["id"] in seen:
        raise PlanError(f"{key}.id", f"{task['id']!r} is used by another task")
    seen.add(task["id"])
    kind = task["kind"]
    if kind not in TASK_KINDS:
        raise PlanError(f"{key}.kind", f'unknown kind {kind!r}; use "reflection", "photos" or "file"')
    needed = {"reflection": "min_chars", "photos": "min_photos", "file": "min_files"}[kind]
    for other in ("min_chars", "min_photos", "min_files"):
        if other != needed and task[other] is not None:
            raise PlanError(f"{key}.{other}", f"does not apply to a {kind} task (use {needed})")
    if task[needed] is None and kind != "file":
        raise PlanError(f"{key}.{needed}", f"missing (required for a {kind} task)")
    if task["accept"] and kind != "file":
        raise PlanError(f"{key}.accept", "only for a file task")
    if task["activity"] is not None and task["activity"] not in activities:
        known = ", ".join(activities) or "none"
        raise PlanError(f"{key}.activity", f"{task['activity']!r} is not an activity id (known: {known})")
    if task["by"] != "teacher" and task["hours"]:
        raise PlanError(f"{key}.hours", f'a by = "{task["by"]}" task earns nobody 学时; remove hours')
    if task["category"] is not None and categories and task["category"] not in categories:
        known = ", ".join(sorted(categories))
        raise PlanError(f"{key}.category", f"{task['category']!r} is not in hours.categories ({known})")
    due = task["due"]
    if isinstance(due, datetime):
        for end in ("from", "to"):
            if task[end] is not None:
                raise PlanError(f"{key}.{end}", "only with a recurring due")
        if not term["start"] <= due.date() <= term["end"]:
            raise _outside(f"{key}.due", due.date(), term)
        return [_task_spec(task, task["id"], due, None)]
    first, last = task["from"] or term["start"], task["to"] or term["end"]
    for end, day in (("from", first), ("to", last)):
        if not term["start"] <= day <= term["end"]:
            raise _outside(f"{key}.{end}", day, term)
    if last < first:
        raise PlanError(f"{key}.to", f"{last} is before from = {first}")
    days = list(due.days(first, last))
    if not days:
        raise PlanError(f"{key}.due", f"no occurrence of {due.text!r} falls between {first} and {last}")
    specs, opens = [], datetime.combine(first, time(), tzinfo=tz)
    for day in days:
        moment = datetime.combine(day, due.at, tzinfo=tz)
        specs.append(_task_spec(task, f"{task['id']}@{day.isoformat()}", moment, opens))
        opens = moment
    return specs


def _task_spec(task: Mapping[str, Any], task_id: str, due: datetime, opens: datetime | None) -> TaskSpec:
    min_files = task["min_files"] if task["min_files"] is not None else (1 if task["kind"] == "file" else None)
    return TaskSpec(
        id=task_id, kind=task["kind"], title=task["title"], due=due, hours=task["hours"],
        min_chars=task["min_chars"], min_photos=task["min_photos"],
        remind_before_days=task["remind_before_days"], min_files=min_files, accept=task["accept"],
        activity=task["activity"], by=task["by"], category=task["category"], scope=task["for"],
        series=task["id"], opens=opens)


def _parse_assessment(table: object | None) -> Assessment | None:
    if table is None:
        return None
    a = _read(table, "assessment", _ASSESSMENT)
    if not 0 <= a["pass"] <= 100:
        raise PlanError("assessment.pass", f"must be between 0 and 100, got {a['pass']:g}")
    weights = a["weights"]
    total = weights["attendance"] + weights["tasks"] + weights["lead"]
    if abs(total - 100) > 1e-9:
        raise PlanError("assessment.weights", f"adds up to {total:g}; make it 100")
    return Assessment(pass_mark=a["pass"], pass_hours=a["pass_hours"], **weights)


def parse_plan(data: Mapping[str, Any]) -> Plan:
    """Validate a tomllib-loaded plan; a problem raises PlanError naming the exact key."""
    top = _read(data, "", _TOP)
    term = _parse_term(top["term"])
    hours = _parse_hours(top["hours"], term)
    categories = {name for name, _ in hours["categories"]}
    if top["session"] and top["activity"]:
        raise PlanError("session", "a plan has [[session]] or [[activity]], not both (a [[session]] "
                                   'is an [[activity]] with every = "week", attend = "each")')
    themes: dict[tuple[str, str | None], int] = {}
    activities: dict[str, ActivitySpec] = {}
    names: set[str] = set()
    kind = "session" if top["session"] else "activity"
    for i, item in enumerate(top["session"] or top["activity"]):
        key = f"{kind}[{i}]"
        activity = (_session_activity(item, key) if kind == "session"
                    else _parse_activity(item, key, term, categories))
        if activity.id in activities:  # a [[session]] has no id: its name is its id
            raise PlanError(f"{key}.{'name' if kind == 'session' else 'id'}",
                            f"{activity.id!r} is used by another {kind}")
        if activity.name in names:
            raise PlanError(f"{key}.name", f"{activity.name!r} is used by another {kind}")
        activities[activity.id] = activity
        names.add(activity.name)
    ids: set[str] = set()
    tasks = [spec for i, item in enumerate(top["task"])
             for spec in _parse_task(item, f"task[{i}]", term, ids, activities, categories)]
    digest = _read(top["digest"], "digest", _DIGEST)
    plan = Plan(
        name=term["name"], start=term["start"], end=term["end"], timezone=term["timezone"],
        required_hours=hours["required_hours"], count_punctuation=term["count_punctuation"],
        non_school_dates=term["non_school_dates"], extra_school_dates=term["extra_school_dates"],
        remind_at=term["remind_at"], missed_grace_minutes=term["missed_grace_minutes"],
        themes=tuple(_parse_theme(item, f"theme[{i}]", term, themes, i)
                     for i, item in enumerate(top["theme"])),
        activities=tuple(activities.values()), tasks=tuple(tasks),
        school_digest=digest["school"], district_digest=digest["district"],
        year_required=hours["year_required"], categories=hours["categories"],
        assessment=_parse_assessment(top["assessment"]), edition=1 if kind == "session" else 2,
    )
    _check_once_dates(plan, kind)
    _check_overlaps(plan, kind)
    return plan


def _check_once_dates(plan: Plan, kind: str) -> None:
    """A one-off meeting is never placed on a non-school day silently."""
    for i, activity in enumerate(plan.activities):
        if activity.is_meeting and activity.every == "once":
            for n, day in enumerate(activity.dates):
                if not plan.calendar.is_school_day(day):
                    raise PlanError(f"{kind}[{i}].dates[{n}]", f"{day} is not a school day")


def _check_overlaps(plan: Plan, kind: str) -> None:
    """Two meetings for people who can be in both, at the same time: a check-in could not tell
    which one it is for. Names both activities' keys and the first time they meet together."""
    index = {a.id: i for i, a in enumerate(plan.activities)}
    by_id = {a.id: a for a in plan.activities}
    running: list[Occurrence] = []
    for occurrence in session_occurrences(plan):
        running = [o for o in running if o.ends_at > occurrence.starts_at]
        for other in running:
            mine, theirs = by_id[occurrence.activity], by_id[other.activity]
            if mine.scope.disjoint(theirs.scope):
                continue
            first, second = index[other.activity], index[occurrence.activity]
            when = occurrence.starts_at.strftime("%Y-%m-%d %H:%M")
            raise PlanError(f"{kind}[{second}].start",
                            f"{occurrence.session!r} overlaps {kind}[{first}] ({other.session!r}, "
                            f"{other.starts_at:%H:%M}–{other.ends_at:%H:%M}) on {when}")
        running.append(occurrence)


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
