"""The month's theme and the reminder before each session: to every school group."""

from __future__ import annotations

from datetime import datetime

from handlers.jobs import Draft, JobContext, job
from kernel.plan import Plan, session_occurrences
from kernel.plan.sends import SessionReminder, ThemeSend
from templates.render import render_text


def _month_of(value: datetime, plan: Plan) -> str:
    return value.astimezone(plan.tz).strftime("%Y-%m")


@job("theme")
async def announce_theme(ctx: JobContext) -> list[Draft]:
    """The month's theme, its form, the month's sessions and the tasks due in it."""
    assert isinstance(ctx.send, ThemeSend)
    theme = next((t for t in ctx.plan.themes if t.month == ctx.send.month), None)
    if theme is None:
        return []
    sessions = [{"name": o.session, "starts_at": o.starts_at, "ends_at": o.ends_at}
                for o in session_occurrences(ctx.plan) if _month_of(o.starts_at, ctx.plan) == theme.month]
    tasks = [t for t in ctx.plan.tasks if _month_of(t.due, ctx.plan) == theme.month]
    text = render_text("sched/theme.j2", theme=theme, month_label=f"{int(theme.month[5:])}月",
                       sessions=sessions, tasks=tasks, tz=ctx.plan.tz)
    title = render_text("sched/title.j2", kind="theme", theme=theme)
    return [Draft(g.id, text, title=title) for g in ctx.groups]


@job("session_reminder")
async def remind_of_session(ctx: JobContext) -> list[Draft]:
    """When the session starts, when check-in opens and closes, what it earns."""
    assert isinstance(ctx.send, SessionReminder)
    occurrence = ctx.send.occurrence
    minutes = int((occurrence.ends_at - occurrence.starts_at).total_seconds() // 60)
    text = render_text("sched/session_reminder.j2", name=occurrence.session,
                       starts_at=occurrence.starts_at, opens_at=occurrence.opens_at,
                       closes_at=occurrence.closes_at, minutes=minutes, hours=occurrence.hours,
                       tz=ctx.plan.tz)
    title = render_text("sched/title.j2", kind="session_reminder")
    return [Draft(g.id, text, title=title) for g in ctx.groups]
