"""What the scheduled messages need to know: who still owes a task, which groups receive sends."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.records import MEMBER_ROLES, GroupInfo, PersonInfo
from storage.models import ChatGroup, Person, Photo, Submission
from storage.queries.directory import group_info, identities_of, person_info


async def people_owing(session: AsyncSession, *, task_id: int, kind: str, min_photos: int | None,
                       school_ids: Sequence[int]) -> dict[int, list[PersonInfo]]:
    """school id → its members who still owe the task, in roster order (one query).

    A reflection is owed until it is accepted (a flagged one counts as accepted); photos
    are owed while fewer than `min_photos` are stored.
    """
    if not school_ids:
        return {}
    members = and_(Person.school_id.in_(list(school_ids)), Person.role.in_(MEMBER_ROLES))
    if kind == "reflection":
        stmt = (select(Person).outerjoin(Submission, and_(
            Submission.person_id == Person.id, Submission.task_id == task_id,
            Submission.state == "accepted"))
            .where(members, Submission.id.is_(None)))
    else:
        stmt = (select(Person).outerjoin(Photo, and_(Photo.person_id == Person.id, Photo.task_id == task_id))
                .where(members).group_by(Person.id)
                .having(func.count(Photo.id) < (min_photos or 1)))
    people = (await session.scalars(stmt.order_by(Person.id))).all()
    ids = await identities_of(session, [p.id for p in people])
    owing: dict[int, list[PersonInfo]] = {}
    for person in people:
        assert person.school_id is not None
        owing.setdefault(person.school_id, []).append(person_info(person, ids.get(person.id, ())))
    return owing


async def receiving_groups(session: AsyncSession) -> list[GroupInfo]:
    """Every bound group: a school's group, or (school_id NULL) a district staff group."""
    rows = await session.scalars(select(ChatGroup).where(ChatGroup.bound_at.is_not(None))
                                 .order_by(ChatGroup.id))
    return [group_info(g) for g in rows.all()]
