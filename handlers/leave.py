"""请假: excuse oneself from a session; an excused session counts neither as attended nor missed."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.verbs import verb
from kernel.leave_dates import parse_leave
from kernel.messages import Reply
from kernel.records import OccurrenceInfo
from storage.queries.leave import checked_in_occurrences, record_leave

UPCOMING_SHOWN = 3


def _local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def session_weekdays(ctx: Context) -> list[str]:
    """The weekdays sessions meet on, e.g. ["二", "四"], for "研修安排在每周二、周四"."""
    assert ctx.term is not None
    days = sorted({d for a in ctx.term.plan.meetings if a.every != "once" for d in a.weekdays})
    return ["一二三四五六日"[d] for d in days]


def _upcoming(ctx: Context) -> list[OccurrenceInfo]:
    assert ctx.term is not None
    return [i for i in ctx.term.occurrences if i.occurrence.ends_at > ctx.now]


@verb("leave", "请假", evidence=True, takes_args=True, help="help/leave.j2", order=40)
async def handle_leave(ctx: Context, session: AsyncSession) -> Reply:
    assert ctx.person is not None
    if ctx.term is None:
        return Reply("no_plan")
    tz = ctx.term.plan.tz
    request = parse_leave(ctx.command.args, _local_day(ctx.now, tz))
    upcoming = _upcoming(ctx)
    base = {"tz": tz, "said": request.said, "day": request.day,
            "weekdays": session_weekdays(ctx),
            "upcoming": [i.occurrence for i in upcoming[:UPCOMING_SHOWN]]}
    if request.error is not None:
        return Reply("leave_bad_date", base)
    if request.day is not None and request.day < _local_day(ctx.now, tz):
        return Reply("leave_past_day", base)  # 昨天, 上周四…: never moved onto a coming session
    if not request.reason:
        return Reply("leave_usage", base)

    if request.day is None:
        # only a session whose check-in window has opened can hold a check-in
        opened = [i.id for i in upcoming if i.occurrence.opens_at <= ctx.now]
        checked = await checked_in_occurrences(session, ctx.person.id, opened)
        chosen = next((i for i in upcoming if i.id not in checked), None)
        if chosen is None:
            return Reply("leave_no_session", base)
        targets = [chosen]
    else:
        that_day = [i for i in ctx.term.occurrences
                    if _local_day(i.occurrence.starts_at, tz) == request.day]
        if not that_day:
            return Reply("leave_no_session", base)
        open_ones = [i for i in that_day if i.occurrence.ends_at > ctx.now]
        if not open_ones:
            return Reply("leave_too_late", {**base, "sessions": [i.occurrence for i in that_day]})
        checked = await checked_in_occurrences(session, ctx.person.id, [i.id for i in open_ones])
        targets = [i for i in open_ones if i.id not in checked]
        if not targets:
            return Reply("leave_checked_in", {**base, "sessions": [i.occurrence for i in open_ones]})

    new = [await record_leave(session, person_id=ctx.person.id, occurrence_id=i.id,
                              reason=request.reason, at=ctx.now) for i in targets]
    return Reply("leave_ok", {**base, "name": ctx.person.name, "reason": request.reason,
                              "sessions": [i.occurrence for i in targets],
                              "repeated": not any(new)})
