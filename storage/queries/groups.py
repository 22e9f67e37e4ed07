"""Chat groups: binding a conversation to a school and its proactive-send route."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChatGroup, School
from storage.queries.directory import directory_changed


async def bind_group(session: AsyncSession, *, platform: str, conversation_id: str, school_id: int | None,
                     now: datetime, title: str | None = None, route_kind: str | None = None,
                     route_url: str | None = None, route_secret: str | None = None) -> ChatGroup:
    """Bind (or re-bind) a conversation; a route given replaces the stored one."""
    group = await session.scalar(select(ChatGroup).where(
        ChatGroup.platform == platform, ChatGroup.conversation_id == conversation_id))
    if group is None:
        group = ChatGroup(platform=platform, conversation_id=conversation_id)
        session.add(group)
    group.school_id, group.bound_at = school_id, now
    if title:
        group.title = title
    if route_kind:
        group.route_kind, group.route_url, group.route_secret = route_kind, route_url, route_secret
    await session.flush()
    await directory_changed(session)
    return group


async def groups_with_school(session: AsyncSession) -> list[tuple[ChatGroup, School | None]]:
    rows = await session.execute(select(ChatGroup, School).outerjoin(
        School, School.id == ChatGroup.school_id).order_by(ChatGroup.id))
    return [(g, s) for g, s in rows.all()]


async def school_by_code(session: AsyncSession, code: str) -> School | None:
    return await session.scalar(select(School).where(School.code == code))
