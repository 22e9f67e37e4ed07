"""School days: China's public holidays and 调休, plus a plan's own dates.

Where a year's holidays come from:
- `chinese_calendar`, for the years it covers: the State Council's published arrangement,
  holidays and 调休 workdays alike ("official").
- the `holidays` package's China calendar, for a later year (the arrangement is published
  late in the year before, and packaged after that): the statutory days, moved off weekends
  by its observed rule, plus the Spring Festival break estimated as 除夕 to 正月初七 — what
  every arrangement under the 2024 rules has given (2025, 2026; a test checks it against
  chinese_calendar). Such a year's 调休 workdays are not known: a plan lists them ("estimated").
A weekday is never taken as a school day for want of data.

A school day is a Monday–Friday that is not a public holiday, unless the plan says otherwise:
`non_school_dates` (寒暑假, exam weeks) remove days, `extra_school_dates` add days — typically
a weekend make-up workday (调休上班) on which the school does hold sessions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

_SEARCH_LIMIT_DAYS = 366
OFFICIAL = "chinese-calendar"
ESTIMATED = "holidays"
# the 2024 revision of 全国年节及纪念日放假办法 (in force from 2025) made 除夕 a statutory
# day; each arrangement since has given 除夕 through 正月初七 off
_EIGHT_DAY_SPRING_FESTIVAL_FROM = 2025
_SPRING_FESTIVAL_DAYS = 8
_SPRING_FESTIVAL = "春节"
_EVE = "农历除夕"


@lru_cache(maxsize=64)
def has_holiday_data(year: int) -> bool:
    """Whether chinese_calendar has `year`'s published arrangement (holidays and 调休)."""
    try:
        chinese_calendar.get_holiday_detail(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def holiday_data_version() -> str:
    """The installed chinese-calendar's version (the official source)."""
    return _package_version("chinese_calendar")


def estimate_data_version() -> str:
    """The installed holidays package's version (the source for later years)."""
    return _package_version("holidays")


@lru_cache(maxsize=64)
def estimated_rest_days(year: int) -> dict[date, str]:
    """{day: holiday name} of `year` per the holidays package (names in Chinese), with the
    Spring Festival break widened to 除夕–正月初七 under the rules in force since 2025."""
    import holidays

    found = {d: str(name) for d, name in holidays.China(years=year, language="zh_CN").items()}
    if year >= _EIGHT_DAY_SPRING_FESTIVAL_FROM:
        eve = next((d for d, name in found.items() if name == _EVE), None)
        if eve is not None:
            for n in range(_SPRING_FESTIVAL_DAYS):
                found.setdefault(eve + timedelta(days=n), _SPRING_FESTIVAL)
    return found


def _holiday_detail(d: date) -> tuple[bool, str | None]:
    """(rest day, holiday name) — chinese_calendar's answer, or the estimate for a year it
    does not cover (a weekend is a rest day there; no 调休 workday is known)."""
    if has_holiday_data(d.year):
        return chinese_calendar.get_holiday_detail(d)
    name = estimated_rest_days(d.year).get(d)
    if name is not None:
        return True, name
    return d.weekday() >= 5, None


@dataclass(frozen=True, slots=True)
class HolidaySpan:
    """Consecutive rest days of one holiday, e.g. 春节 2027-02-05 – 2027-02-12."""

    name: str
    first: date
    last: date


@dataclass(frozen=True, slots=True)
class YearHolidays:
    """Where one year's holidays come from; for an estimated year, its holidays in the term."""

    year: int
    source: str  # OFFICIAL or ESTIMATED
    version: str
    spans: tuple[HolidaySpan, ...] = ()


def _festival(name: str) -> str:
    """The holiday a day belongs to: 春节（补假） and 农历除夕 are 春节."""
    base = name.split("（")[0].split("(")[0].strip()
    return _SPRING_FESTIVAL if base == _EVE else base


def _spans(days: dict[date, str], first: date, last: date) -> tuple[HolidaySpan, ...]:
    spans: list[HolidaySpan] = []
    for day in sorted(d for d in days if first <= d <= last):
        name = _festival(days[day])
        if spans and spans[-1].name == name and spans[-1].last == day - timedelta(days=1):
            spans[-1] = HolidaySpan(name, spans[-1].first, day)
        else:
            spans.append(HolidaySpan(name, day, day))
    return tuple(spans)


def holiday_sources(first: date, last: date) -> list[YearHolidays]:
    """For each year of [first, last]: where its holidays come from and, for an estimated
    year, which holidays fall in [first, last] (what `plan load` tells the operator)."""
    found = []
    for year in range(first.year, last.year + 1):
        if has_holiday_data(year):
            found.append(YearHolidays(year, OFFICIAL, holiday_data_version()))
        else:
            found.append(YearHolidays(year, ESTIMATED, estimate_data_version(),
                                      _spans(estimated_rest_days(year), first, last)))
    return found


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
        """A statutory holiday (any day of the week), or a Mon–Fri rest day of the arrangement."""
        is_holiday, name = _holiday_detail(d)
        return is_holiday and (d.weekday() < 5 or name is not None)

    @staticmethod
    def is_makeup_workday(d: date) -> bool:
        """A Saturday or Sunday that is an official workday (调休上班); none is known for an
        estimated year."""
        return d.weekday() >= 5 and not _holiday_detail(d)[0]

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
