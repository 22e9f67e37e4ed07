"""Documents handed in for file tasks: stored once per (task, owner, hash), counted per owner.

An owner is whose the document counts for: a teacher ("p:<id>"), a school ("s:<id>") or a
school's subject ("s:<id>:<学科>")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FileSubmission
from storage.queries.common import insert_if_absent


def person_owner(person_id: int) -> str:
    return f"p:{person_id}"


def school_owner(school_id: int, subject: str | None = None) -> str:
    return f"s:{school_id}:{subject}" if subject else f"s:{school_id}"


async def add_file(session: AsyncSession, *, task_id: int, owner: str, person_id: int, sha256: str,
                   name: str, ext: str, size: int, at: datetime) -> bool:
    """Store a handed-in document; False when the owner already handed in this very file."""
    return await insert_if_absent(session, FileSubmission.__table__, {
        "task_id": task_id, "owner": owner, "person_id": person_id, "sha256": sha256,
        "name": name[:255], "ext": ext[:20], "size": size, "at": at}, ["task_id", "owner", "sha256"])


async def file_count(session: AsyncSession, task_id: int, owner: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(FileSubmission).where(
        FileSubmission.task_id == task_id, FileSubmission.owner == owner)) or 0)


async def files_by_owner(session: AsyncSession, task_ids: list[int]) -> dict[int, dict[str, int]]:
    """task id → owner → documents: what the digests show of school and subject tasks."""
    if not task_ids:
        return {}
    rows = await session.execute(select(FileSubmission.task_id, FileSubmission.owner, func.count())
                                 .where(FileSubmission.task_id.in_(task_ids))
                                 .group_by(FileSubmission.task_id, FileSubmission.owner))
    found: dict[int, dict[str, int]] = {}
    for task_id, owner, n in rows.all():
        found.setdefault(task_id, {})[owner] = n
    return found
