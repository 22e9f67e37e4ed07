"""School days: China's public holidays and 调休 (via `chinese_calendar`) plus a plan's own dates.

A school day is a Monday–Friday that is not a public holiday, unless the plan says otherwise:
`non_school_dates` (寒暑假, exam weeks) remove days, `extra_school_dates` add days — typically
a weekend make-up workday (调休上班) on which the school does hold sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta

import chinese_calendar

log = logging.getLogger(__name__)

_SEARCH_LIMIT_DAYS = 366
_warned_years: set[int] = set()


def _holiday_detail(d: date) -> tuple[bool, str | None] | None:
    """(is_holiday, holiday name) per chinese_calendar, or None for a year it does not cover."""
    try:
        return chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:
        if d.year not in _warned_years:
            _warned_years.add(d.year)
            log.warning(
                "chinese_calendar has no holiday data for %d: treating Mon–Fri as workdays "
                "and weekends as rest days (update the chinese-calendar package)",
                d.year,
            )
        return None


def has_holiday_data(year: int) -> bool:
    """Whether chinese_calendar knows `year`'s public holidays and 调休 (the State Council
    publishes a year's arrangement late in the year before; the package follows)."""
    return _holiday_detail(date(year, 1, 1)) is not None


def holiday_data_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chinese_calendar")
    except PackageNotFoundError:
        return "unknown"


class SchoolCalendar:
    """Answers "is this a school day?" for one term plan."""

    __slots__ = ("non_school_dates", "extra_school_dates", "_cache")

    def __init__(
        self, non_school_dates: Iterable[date] = (), extra_school_dates: Iterable[date] = ()
    ) -> None:
        self.non_school_dates: frozenset[date] = frozenset(non_school_dates)
        self.extra_school_dates: frozenset[date] = frozenset(extra_school_dates)
        self._cache: dict[date, bool] = {}

    def __repr__(self) -> str:
        return (
            f"SchoolCalendar(non_school_dates={len(self.non_school_dates)} days, "
            f"extra_school_dates={sorted(self.extra_school_dates)})"
        )

    @staticmethod
    def is_public_holiday(d: date) -> bool:
        """A statutory holiday (any day of the week), or a Mon–Fri rest day per chinese_calendar."""
        detail = _holiday_detail(d)
        if detail is None:
            return False
        is_holiday, name = detail
        return is_holiday and (d.weekday() < 5 or name is not None)

    @staticmethod
    def is_makeup_workday(d: date) -> bool:
        """A Saturday or Sunday that is an official workday (调休上班)."""
        if d.weekday() < 5:
            return False
        detail = _holiday_detail(d)
        return detail is not None and not detail[0]

    def is_school_day(self, d: date) -> bool:
        """Listed extra days count; listed non-school days don't; else Mon–Fri minus holidays.

        A weekend make-up workday is not a school day unless it is in `extra_school_dates`.
        """
        cached = self._cache.get(d)
        if cached is None:
            if d in self.extra_school_dates:
                cached = True
            elif d in self.non_school_dates:
                cached = False
            else:
                cached = d.weekday() < 5 and not self.is_public_holiday(d)
            self._cache[d] = cached
        return cached

    def next_school_day_on_or_after(self, d: date, until: date | None = None) -> date | None:
        """The first school day in [d, until] (until defaults to a year on); None if there is none."""
        last = until if until is not None else d + timedelta(days=_SEARCH_LIMIT_DAYS)
        while d <= last:
            if self.is_school_day(d):
                return d
            d += timedelta(days=1)
        return None

    def previous_school_day_on_or_before(self, d: date, since: date | None = None) -> date | None:
        """The last school day in [since, d] (since defaults to a year back); None if none."""
        first = since if since is not None else d - timedelta(days=_SEARCH_LIMIT_DAYS)
        while d >= first:
            if self.is_school_day(d):
                return d
            d -= timedelta(days=1)
        return None

    def first_school_day_of_month(self, year: int, month: int) -> date | None:
        """The month's first school day, or None when the whole month has none."""
        first = date(year, month, 1)
        last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
        return self.next_school_day_on_or_after(first, until=last)
