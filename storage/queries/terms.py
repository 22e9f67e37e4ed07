"""Storing a validated term plan: the term, its themes, tasks and session occurrences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.plan import Plan, session_occurrences
from storage.models import (
    Checkin,
    FileSubmission,
    Leave,
    Photo,
    SessionOccurrence,
    Submission,
    Task,
    Term,
    Theme,
)


async def save_plan(session: AsyncSession, plan: Plan, toml_text: str, now: datetime) -> int:
    """Make `plan` the active term; re-loading the same plan keeps every record's references."""
    term = await session.scalar(select(Term).where(Term.name == plan.name))
    if term is None:
        term = Term(name=plan.name)
        session.add(term)
    term.timezone, term.start, term.end = plan.timezone, plan.start, plan.end
    term.required_hours, term.plan_toml, term.loaded_at = plan.required_hours, toml_text, now
    term.active = True
    await session.flush()
    await session.execute(update(Term).where(Term.id != term.id).values(active=False))

    await session.execute(delete(Theme).where(Theme.term_id == term.id))
    for t in plan.themes:
        session.add(Theme(term_id=term.id, month=t.month, title=t.title, form=t.form))

    tasks = {t.key: t for t in (await session.scalars(select(Task).where(Task.term_id == term.id))).all()}
    for spec in plan.tasks:
        task = tasks.pop(spec.id, None) or Task(term_id=term.id, key=spec.id)
        task.kind, task.title, task.due_at, task.hours = spec.kind, spec.title, spec.due, spec.hours
        session.add(task)
    for stale in tasks.values():  # dropped from the plan: keep it only if it holds evidence
        used = await session.scalar(select(exists().where(Submission.task_id == stale.id))) or \
            await session.scalar(select(exists().where(Photo.task_id == stale.id))) or \
            await session.scalar(select(exists().where(FileSubmission.task_id == stale.id)))
        if not used:
            await session.delete(stale)

    wanted = {(o.session, o.starts_at): o for o in session_occurrences(plan)}
    existing = (await session.scalars(select(SessionOccurrence).where(
        SessionOccurrence.term_id == term.id))).all()
    for row in existing:
        occ = wanted.pop((row.name, row.starts_at), None)
        if occ is not None:
            row.ends_at, row.opens_at, row.closes_at, row.hours = occ.ends_at, occ.opens_at, occ.closes_at, occ.hours
            row.activity, row.unit = occ.activity, occ.unit
            continue
        used = await session.scalar(select(exists().where(Checkin.occurrence_id == row.id))) or \
            await session.scalar(select(exists().where(Leave.occurrence_id == row.id)))
        if not used:
            await session.delete(row)
    for occ in wanted.values():
        session.add(SessionOccurrence(term_id=term.id, name=occ.session, activity=occ.activity,
                                      unit=occ.unit, starts_at=occ.starts_at, ends_at=occ.ends_at,
                                      opens_at=occ.opens_at, closes_at=occ.closes_at, hours=occ.hours))
    await session.flush()
    return term.id
