"""A deadline that repeats (材料7每月最后一个星期五上传): a small grammar on purpose.

    "<which> of <period> HH:MM"
    last fri of month 17:00        每月最后一个星期五
    first mon of month 08:00       每月第一个星期一
    last day of month 17:00        每月月底
    fri of every week 17:00        每周五
    fri of every 2 weeks 17:00     隔周五 (the week holding the first day counts first)

Each occurrence is its own deadline; none is pulled into the term from outside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time, timedelta

_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_FORM = re.compile(
    r"\s*(?:(?P<nth>first|second|third|fourth|last)\s+(?P<day>\S+)\s+of\s+month"
    r"|(?P<lastday>last\s+day)\s+of\s+month"
    r"|(?P<wday>\S+)\s+of\s+every\s+(?:(?P<n>2)\s+)?weeks?)"
    r"\s+(?P<clock>\d{1,2}[:：]\d{2})\s*", re.IGNORECASE)
EXAMPLE = '"last fri of month 17:00"'


@dataclass(frozen=True, slots=True)
class RecurringDue:
    """One deadline per month, week or fortnight, at `at` on the chosen day."""

    text: str
    period: str  # month | week | 2 weeks
    weekday: int | None  # 0 = Monday; None with `last day of month`
    nth: int  # 1…4, or -1 for the last (months only)
    at: time

    def days(self, first: date, last: date) -> Iterator[date]:
        """The deadline days between `first` and `last`, both included."""
        if self.period == "month":
            year, month = first.year, first.month
            while date(year, month, 1) <= last:
                day = self._in_month(year, month)
                if day is not None and first <= day <= last:
                    yield day
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            return
        assert self.weekday is not None
        step = 14 if self.period == "2 weeks" else 7
        monday = first - timedelta(days=first.weekday())
        day = monday + timedelta(days=self.weekday)
        while day <= last:
            if day >= first:
                yield day
            day += timedelta(days=step)

    def _in_month(self, year: int, month: int) -> date | None:
        following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        end = following - timedelta(days=1)
        if self.weekday is None:
            return end
        if self.nth == -1:
            return end - timedelta(days=(end.weekday() - self.weekday) % 7)
        first = date(year, month, 1)
        day = first + timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (self.nth - 1))
        return day if day.month == month else None


def parse_recurring(text: str, weekday_of: dict[str, int]) -> RecurringDue | None:
    """The recurring deadline `text` names, or None when it is not one of the forms above."""
    match = _FORM.fullmatch(text)
    if match is None:
        return None
    hour, minute = (int(part) for part in re.split(r"[:：]", match["clock"]))
    if hour > 23 or minute > 59:
        return None
    at = time(hour, minute)
    if match["lastday"]:
        return RecurringDue(text, "month", None, -1, at)
    if match["nth"]:
        weekday = weekday_of.get(match["day"].lower())
        if weekday is None:
            return None
        return RecurringDue(text, "month", weekday, _ORDINALS[match["nth"].lower()], at)
    weekday = weekday_of.get(match["wday"].lower())
    if weekday is None:
        return None
    return RecurringDue(text, "2 weeks" if match["n"] else "week", weekday, 1, at)
