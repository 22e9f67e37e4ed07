"""What happens when: every meeting of the plan's sessions, with holidays, 调休 and the plan's
own dates applied, and which session or task is current at a moment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from kernel.calendar import has_holiday_data
from kernel.plan.model import Occurrence, Plan, TaskSpec


def _term_days(plan: Plan) -> Iterable[date]:
    return (plan.start + timedelta(days=n) for n in range((plan.end - plan.start).days + 1))


def session_occurrences(plan: Plan) -> list[Occurrence]:
    """Every session meeting in the term, sorted; holidays, 调休 and plan dates applied."""
    calendar, extra = plan.calendar, set(plan.extra_school_dates)
    found: list[Occurrence] = []
    for day in _term_days(plan):
        if not calendar.is_school_day(day):
            continue
        for s in plan.sessions:
            if day.weekday() in s.weekdays or day in extra:
                starts = datetime.combine(day, s.start, tzinfo=plan.tz)
                found.append(
                    Occurrence(
                        session=s.name,
                        starts_at=starts,
                        ends_at=starts + timedelta(minutes=s.minutes),
                        opens_at=starts - timedelta(minutes=s.checkin_opens_before),
                        closes_at=starts + timedelta(minutes=s.checkin_closes_after),
                        hours=s.hours,
                    )
                )
    found.sort(key=lambda o: (o.starts_at, o.session))
    return found


def sessions_without_holiday_data(plan: Plan) -> dict[int, int]:
    """{year: sessions placed in it} for each year of the term whose public holidays and 调休
    the holiday calendar does not know yet: there, every Mon–Fri outside the plan's own
    `non_school_dates` holds its sessions, holidays included, until the plan lists them."""
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
    """The session whose check-in window [opens_at, closes_at) holds `now` (earliest start first)."""
    return min(
        (o for o in occurrences if o.opens_at <= now < o.closes_at),
        key=lambda o: (o.starts_at, o.session),
        default=None,
    )


def next_occurrence_after(occurrences: Iterable[Occurrence], now: datetime) -> Occurrence | None:
    """The next session whose check-in opens after `now`."""
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
