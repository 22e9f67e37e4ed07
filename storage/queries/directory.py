"""Who is who: people, schools, groups and the active term, as small frozen records.

These change rarely (roster import, plan load, 绑定), so the bot caches them per process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.plan import Occurrence, plan_from_text
from kernel.records import GroupInfo, OccurrenceInfo, PersonInfo, SchoolInfo, TermInfo
from storage.models import (
    ChangeStamp,
    ChatGroup,
    Identity,
    Person,
    School,
    SessionOccurrence,
    Task,
    Term,
)


def person_info(p: Person, ids: tuple[tuple[str, str], ...]) -> PersonInfo:
    return PersonInfo(p.id, p.name, p.role, p.school_id, ids, p.mobile, p.subject, p.stage, p.title)


async def identities_of(session: AsyncSession, person_ids: list[int] | None = None
                        ) -> dict[int, tuple[tuple[str, str], ...]]:
    """person id → their (platform, user id)s: of everyone, or of the people asked about."""
    stmt = select(Identity.person_id, Identity.platform, Identity.user_id)
    if person_ids is not None:
        stmt = stmt.where(Identity.person_id.in_(person_ids))
    found: dict[int, list[tuple[str, str]]] = {}
    for person_id, platform, user_id in (await session.execute(stmt.order_by(Identity.platform))).all():
        found.setdefault(person_id, []).append((platform, user_id))
    return {pid: tuple(ids) for pid, ids in found.items()}


def group_info(g: ChatGroup) -> GroupInfo:
    return GroupInfo(g.id, g.platform, g.conversation_id, g.school_id, g.title, g.route_kind)


async def all_people(session: AsyncSession) -> list[PersonInfo]:
    ids = await identities_of(session)
    return [person_info(p, ids.get(p.id, ())) for p in (await session.scalars(select(Person))).all()]


async def person_by_identity(session: AsyncSession, platform: str, user_id: str) -> PersonInfo | None:
    """Whoever `user_id` is on `platform`, by the identity table."""
    person_id = await session.scalar(select(Identity.person_id).where(
        Identity.platform == platform, Identity.user_id == user_id))
    return await person_by_id(session, person_id) if person_id is not None else None


async def person_by_id(session: AsyncSession, person_id: int) -> PersonInfo | None:
    p = await session.get(Person, person_id)
    if p is None:
        return None
    return person_info(p, (await identities_of(session, [p.id])).get(p.id, ()))


async def all_schools(session: AsyncSession) -> list[SchoolInfo]:
    rows = (await session.scalars(select(School).order_by(School.code))).all()
    return [SchoolInfo(s.id, s.code, s.name, s.township) for s in rows]


async def all_groups(session: AsyncSession) -> list[GroupInfo]:
    return [group_info(g) for g in (await session.scalars(select(ChatGroup))).all()]


async def group_by_conversation(session: AsyncSession, platform: str, conversation_id: str) -> GroupInfo | None:
    g = await session.scalar(select(ChatGroup).where(
        ChatGroup.platform == platform, ChatGroup.conversation_id == conversation_id))
    return group_info(g) if g else None


async def active_term(session: AsyncSession) -> TermInfo | None:
    term = await session.scalar(select(Term).where(Term.active.is_(True)).order_by(Term.loaded_at.desc()))
    if term is None:
        return None
    plan = plan_from_text(term.plan_toml)
    occ_rows = (await session.scalars(select(SessionOccurrence).where(
        SessionOccurrence.term_id == term.id).order_by(SessionOccurrence.starts_at))).all()
    occurrences = tuple(OccurrenceInfo(o.id, Occurrence(
        session=o.name, starts_at=o.starts_at, ends_at=o.ends_at, opens_at=o.opens_at,
        closes_at=o.closes_at, hours=o.hours, activity=o.activity, unit=o.unit)) for o in occ_rows)
    tasks = (await session.execute(select(Task.key, Task.id).where(Task.term_id == term.id))).all()
    return TermInfo(term.id, plan, term.loaded_at, occurrences, {k: i for k, i in tasks})


DIRECTORY = "directory"


async def directory_version(session: AsyncSession) -> int:
    """The directory's change counter (0 before its first change)."""
    return await session.scalar(select(ChangeStamp.version).where(ChangeStamp.name == DIRECTORY)) or 0


async def directory_changed(session: AsyncSession) -> None:
    """Bump the counter in the transaction that changes people, schools or groups, so that
    every other process reloads its cache (its own reloads after commit)."""
    bumped = await session.execute(update(ChangeStamp).where(ChangeStamp.name == DIRECTORY)
                                   .values(version=ChangeStamp.version + 1))
    if not bumped.rowcount:  # type: ignore[attr-defined]
        session.add(ChangeStamp(name=DIRECTORY, version=1))
        await session.flush()


async def active_term_stamp(session: AsyncSession) -> datetime | None:
    """When the active plan was loaded: lets a process notice another one's `plan load`."""
    return await session.scalar(select(Term.loaded_at).where(Term.active.is_(True))
                                .order_by(Term.loaded_at.desc()))
