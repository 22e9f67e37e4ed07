"""The reminders before a task's deadline: per school group, @-mentioning only the school's
members who still owe the task (none owe it: no reminder)."""

from __future__ import annotations

from handlers.jobs import Draft, JobContext, job
from kernel.plan.sends import DeadlineReminder
from kernel.records import mention_for
from storage.queries.sched import people_owing
from templates.render import render_text


@job("deadline_reminder")
async def remind_of_deadline(ctx: JobContext) -> list[Draft]:
    assert isinstance(ctx.send, DeadlineReminder)
    task = ctx.plan.task(ctx.send.task)
    task_id = ctx.term.task_ids.get(ctx.send.task)
    if task is None or task_id is None:
        return []
    school_ids = sorted({g.school_id for g in ctx.groups if g.school_id is not None})
    owing = await people_owing(ctx.session, task_id=task_id, kind=task.kind,
                               min_photos=task.min_photos, school_ids=school_ids)
    days_left = (task.due.astimezone(ctx.plan.tz).date() - ctx.send.at.astimezone(ctx.plan.tz).date()).days
    drafts = []
    title = render_text("sched/title.j2", kind="deadline_reminder")
    for group in ctx.groups:
        people = owing.get(group.school_id or -1, [])
        if not people:
            continue  # everyone in this school has done it: no reminder
        text = render_text("sched/deadline_reminder.j2", task=task, people=people,
                           days_left=days_left, tz=ctx.plan.tz)
        drafts.append(Draft(group.id, text, title=title,
                            mentions=tuple(mention_for(p, group.platform) for p in people)))
    return drafts
