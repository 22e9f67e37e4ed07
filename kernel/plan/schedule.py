"""What happens when: every meeting of the plan's activities, with holidays, 调休 and the plan's
own dates applied, and which meeting or task is current at a moment.

A meeting day that is not a school day is not held and not moved (fortnights keep counting
across it). `extra_school_dates` add a meeting to first-edition sessions and `every = "week"`
activities. Each meeting's `unit` is what one attendance is: the meeting itself, or with
`attend = "one"` its cycle (the week, the fortnight, the month, or all the dates of a
one-off), so one check-in on any day of the cycle counts for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta

from kernel.calendar import has_holiday_data
from kernel.plan.model import ActivitySpec, Occurrence, Plan, TaskSpec

_NTH = {"first": 0, "second": 1, "third": 2, "fourth": 3}


def _term_days(plan: Plan) -> Iterable[date]:
    return (plan.start + timedelta(days=n) for n in range((plan.end - plan.start).days + 1))


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _meeting_days(plan: Plan, activity: ActivitySpec) -> Iterator[date]:
    """The school days an activity meets on, in order."""
    first = max(activity.first or plan.start, plan.start)
    last = min(activity.last or plan.end, plan.end)
    if activity.every == "once":
        days: Iterable[date] = activity.dates
    else:
        days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    extra = set(plan.extra_school_dates) if activity.on_extra_days or activity.every == "week" else set()
    anchor = _monday(first)
    for day in days:
        if not plan.calendar.is_school_day(day):
            continue
        if activity.every == "once" or day in extra or _meets_on(activity, day, anchor):
            yield day


def _meets_on(activity: ActivitySpec, day: date, anchor: date) -> bool:
    if day.weekday() not in activity.weekdays:
        return False
    if activity.every == "2 weeks":
        return ((_monday(day) - anchor).days // 7) % 2 == 0
    if activity.every == "month":
        if activity.nth == "last":
            return (day + timedelta(days=7)).month != day.month
        return (day.day - 1) // 7 == _NTH[activity.nth]
    return True


def _unit(activity: ActivitySpec, day: date, anchor: date) -> str:
    """What one attendance is: this meeting day, or (attend = "one") its cycle."""
    if activity.attend == "each":
        return f"{activity.id}@{day.isoformat()}"
    if activity.every == "week":
        year, week, _ = day.isocalendar()
        return f"{activity.id}@{year}-W{week:02d}"
    if activity.every == "2 weeks":
        return f"{activity.id}@F{(_monday(day) - anchor).days // 14 + 1}"
    if activity.every == "month":
        return f"{activity.id}@{day:%Y-%m}"
    return f"{activity.id}@once"


def session_occurrences(plan: Plan) -> list[Occurrence]:
    """Every meeting in the term, sorted; holidays, 调休 and plan dates applied."""
    found: list[Occurrence] = []
    for activity in plan.meetings:
        assert activity.start is not None
        anchor = _monday(max(activity.first or plan.start, plan.start))
        for day in _meeting_days(plan, activity):
            starts = datetime.combine(day, activity.start, tzinfo=plan.tz)
            found.append(Occurrence(
                session=activity.name, starts_at=starts,
                ends_at=starts + timedelta(minutes=activity.minutes),
                opens_at=starts - timedelta(minutes=activity.checkin_opens_before),
                closes_at=starts + timedelta(minutes=activity.checkin_closes_after),
                hours=activity.hours, activity=activity.id, unit=_unit(activity, day, anchor)))
    found.sort(key=lambda o: (o.starts_at, o.session))
    return found


def sessions_without_holiday_data(plan: Plan) -> dict[int, int]:
    """{year: meetings placed in it} for each year of the term whose public holidays and 调休
    the holiday calendar does not know yet: there, every Mon–Fri outside the plan's own
    `non_school_dates` holds its meetings, holidays included, until the plan lists them."""
    years = [y for y in range(plan.start.year, plan.end.year + 1) if not has_holiday_data(y)]
    if not years:
        return {}
    counts = dict.fromkeys(years, 0)
    for occurrence in session_occurrences(plan):
        year = occurrence.starts_at.year
        if year in counts:
            counts[year] += 1
    return counts


def open_occurrence_at(occurrences: Iterable[Occurrence], now: datetime) -> Occurrence | None:
    """The meeting whose check-in window [opens_at, closes_at) holds `now` (earliest start first)."""
    return min(
        (o for o in occurrences if o.opens_at <= now < o.closes_at),
        key=lambda o: (o.starts_at, o.session),
        default=None,
    )


def next_occurrence_after(occurrences: Iterable[Occurrence], now: datetime) -> Occurrence | None:
    """The next meeting whose check-in opens after `now`."""
    return min(
        (o for o in occurrences if o.opens_at > now),
        key=lambda o: (o.opens_at, o.session),
        default=None,
    )


def current_task(plan: Plan, kind: str, now: datetime) -> TaskSpec | None:
    """The task of `kind` due next (earliest due >= now); after all are due, the last one."""
    tasks = [t for t in plan.tasks if t.kind == kind]
    upcoming = [t for t in tasks if t.due >= now]
    if upcoming:
        return min(upcoming, key=lambda t: t.due)
    return max(tasks, key=lambda t: t.due, default=None)
