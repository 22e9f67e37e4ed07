"""签到: check in to the session whose window is open now."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.verbs import verb
from kernel.messages import Reply
from kernel.records import OccurrenceInfo
from storage.queries.records import record_checkin


def open_occurrence(ctx: Context) -> OccurrenceInfo | None:
    if ctx.term is None:
        return None
    for info in ctx.term.occurrences:
        if info.occurrence.opens_at <= ctx.now < info.occurrence.closes_at:
            return info
    return None


def next_occurrence(ctx: Context) -> OccurrenceInfo | None:
    if ctx.term is None:
        return None
    return next((i for i in ctx.term.occurrences if i.occurrence.opens_at > ctx.now), None)


@verb("checkin", "签到", "打卡", "到", evidence=True, help="help/checkin.j2", order=10)
async def handle_checkin(ctx: Context, session: AsyncSession) -> Reply:
    assert ctx.person is not None
    if ctx.term is None:
        return Reply("no_plan")
    info = open_occurrence(ctx)
    if info is None:
        nxt = next_occurrence(ctx)
        return Reply("checkin_closed", {"next": nxt.occurrence if nxt else None,
                                        "tz": ctx.term.plan.tz})
    occ = info.occurrence
    late = ctx.now > occ.starts_at
    new, first_at = await record_checkin(
        session, person_id=ctx.person.id, occurrence_id=info.id, at=ctx.now, late=late,
        platform=ctx.msg.platform, msg_id=ctx.msg.msg_id)
    return Reply("checkin_ok" if new else "checkin_dup", {
        "name": ctx.person.name, "session": occ, "at": first_at, "late": late, "tz": ctx.term.plan.tz})
