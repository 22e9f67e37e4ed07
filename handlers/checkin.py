"""签到: check in to the meeting whose window is open now, among the activities the teacher
takes part in. With `attend = "one"` the days of a cycle are alternatives: a second check-in
in the same week says when the first one was, and stores nothing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.verbs import verb
from kernel.attendance import activities_for
from kernel.messages import Reply
from kernel.records import OccurrenceInfo
from storage.queries.records import first_checkin_among, record_checkin


def my_activities(ctx: Context) -> frozenset[str]:
    """The ids of the activities the sender takes part in (derived once per term and profile)."""
    assert ctx.term is not None
    profile = ctx.profile
    key = ("activities", profile)
    found = ctx.term.derived.get(key)
    if found is None:
        found = ctx.term.derived[key] = activities_for(ctx.term.plan, profile)
    return found  # type: ignore[return-value]


def open_occurrence(ctx: Context) -> OccurrenceInfo | None:
    if ctx.term is None:
        return None
    mine = my_activities(ctx)
    for info in ctx.term.occurrences:
        occurrence = info.occurrence
        if occurrence.opens_at <= ctx.now < occurrence.closes_at and occurrence.activity in mine:
            return info
    return None


def next_occurrence(ctx: Context) -> OccurrenceInfo | None:
    if ctx.term is None:
        return None
    mine = my_activities(ctx)
    return next((i for i in ctx.term.occurrences
                 if i.occurrence.opens_at > ctx.now and i.occurrence.activity in mine), None)


@verb("checkin", "签到", "打卡", "到", evidence=True, help="help/checkin.j2", order=10)
async def handle_checkin(ctx: Context, session: AsyncSession) -> Reply:
    assert ctx.person is not None
    if ctx.term is None:
        return Reply("no_plan")
    info = open_occurrence(ctx)
    tz = ctx.term.plan.tz
    if info is None:
        nxt = next_occurrence(ctx)
        return Reply("checkin_closed", {"next": nxt.occurrence if nxt else None, "tz": tz})
    occ = info.occurrence
    others = [i for i in ctx.term.unit_days(occ.unit) if i.id != info.id]
    if others:  # attend = "one": another day of this cycle may hold the attendance already
        earlier = await first_checkin_among(session, ctx.person.id, [i.id for i in others])
        if earlier is not None:
            day, at = earlier
            shown = next((i.occurrence for i in others if i.id == day), occ)
            return Reply("checkin_dup_cycle", {"name": ctx.person.name, "session": shown, "at": at, "tz": tz})
    late = ctx.now > occ.starts_at
    new, first_at = await record_checkin(
        session, person_id=ctx.person.id, occurrence_id=info.id, at=ctx.now, late=late,
        platform=ctx.msg.platform, msg_id=ctx.msg.msg_id)
    return Reply("checkin_ok" if new else "checkin_dup", {
        "name": ctx.person.name, "session": occ, "at": first_at, "late": late, "tz": tz})
