"""进度: a teacher's own progress this term."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.checkin import my_activities
from handlers.context import Context
from handlers.verbs import verb
from kernel.hours import TaskStatus, progress_of
from kernel.messages import Reply
from storage.queries.records import person_records


def current_tasks(tasks: tuple[TaskStatus, ...], now: datetime) -> list[TaskStatus]:
    """The tasks worth a line: each task, and of a recurring one (材料 every month, notes every
    week) only the occurrence due next — or its last, once all are due."""
    shown: dict[str, TaskStatus] = {}
    for status in sorted(tasks, key=lambda s: s.due):
        series = status.key.split("@", 1)[0]
        kept = shown.get(series)
        if kept is None or kept.due < now:
            shown[series] = status
    return sorted(shown.values(), key=lambda s: s.due)


@verb("progress", "进度", "我的进度", "我的学时", "学时", writes=False, evidence=True,
      help="help/progress.j2", order=50)
async def handle_progress(ctx: Context, session: AsyncSession) -> Reply:
    assert ctx.person is not None
    if ctx.term is None:
        return Reply("no_plan")
    term = ctx.term
    records = await person_records(session, ctx.person.id, [i.id for i in term.occurrences],
                                   list(term.task_ids.values()))
    progress = progress_of(term, records, ctx.now, ctx.profile)
    mine = my_activities(ctx)
    ahead = [i for i in term.occurrences if i.occurrence.starts_at > ctx.now and i.occurrence.activity in mine]
    return Reply("progress", {
        "name": ctx.person.name, "p": progress, "tasks": current_tasks(progress.tasks, ctx.now),
        "now": ctx.now, "term": term.plan.name,
        "tz": term.plan.tz,
        "upcoming_leaves": [i.occurrence for i in ahead if i.id in records.excused],
        "next_session": next((i.occurrence for i in ahead if i.id not in records.excused), None),
    })
