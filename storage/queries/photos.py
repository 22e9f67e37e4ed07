"""Photos per (person, task, sha256), and the pictures and documents still to download from a
platform."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PendingDownload, Photo
from storage.queries.common import affected, insert_if_absent


async def add_photo(session: AsyncSession, *, person_id: int, task_id: int, sha256: str,
                    mime: str, size: int, at: datetime) -> bool:
    """Store the photo once per person and task; True when it is new."""
    return await insert_if_absent(session, Photo.__table__, {
        "person_id": person_id, "task_id": task_id, "sha256": sha256, "mime": mime,
        "size": size, "at": at}, ["person_id", "task_id", "sha256"])


async def photo_count(session: AsyncSession, person_id: int, task_id: int) -> int:
    """Distinct photos this person has for the task."""
    return int(await session.scalar(select(func.count()).select_from(Photo).where(
        Photo.person_id == person_id, Photo.task_id == task_id)) or 0)


@dataclass(frozen=True, slots=True)
class PendingRow:
    id: int
    platform: str
    msg_id: str
    ref: str
    aes_key: str | None
    person_id: int
    task_id: int
    reply_route: Mapping[str, Any] | None
    attempts: int
    created_at: datetime
    kind: str = "photo"  # photo | file
    name: str | None = None  # a file's own name
    owner: str | None = None  # whose a file counts for


async def add_pending_download(session: AsyncSession, *, platform: str, msg_id: str, ref: str,
                               aes_key: str | None, person_id: int, task_id: int,
                               reply_route: Mapping[str, Any] | None, now: datetime,
                               kind: str = "photo", name: str | None = None,
                               owner: str | None = None) -> bool:
    """Remember a picture (or a document: kind "file", its name and owner) to fetch after the
    platform is acknowledged; True when new."""
    return await insert_if_absent(session, PendingDownload.__table__, {
        "platform": platform, "msg_id": msg_id, "ref": ref, "aes_key": aes_key,
        "person_id": person_id, "task_id": task_id, "kind": kind, "name": name, "owner": owner,
        "reply_route": dict(reply_route) if reply_route is not None else None,
        "state": "pending", "attempts": 0, "created_at": now,
    }, ["platform", "msg_id", "ref"])


async def pending_downloads(session: AsyncSession, platforms: Iterable[str],
                            limit: int = 100) -> list[PendingRow]:
    """The oldest pending pictures of the platforms that have a fetcher."""
    names = list(platforms)
    if not names:
        return []
    rows = await session.execute(select(
        PendingDownload.id, PendingDownload.platform, PendingDownload.msg_id, PendingDownload.ref,
        PendingDownload.aes_key, PendingDownload.person_id, PendingDownload.task_id,
        PendingDownload.reply_route, PendingDownload.attempts, PendingDownload.created_at,
        PendingDownload.kind, PendingDownload.name, PendingDownload.owner,
    ).where(PendingDownload.state == "pending", PendingDownload.platform.in_(names))
        .order_by(PendingDownload.id).limit(limit))
    return [PendingRow(*row) for row in rows]


async def claim_download(session: AsyncSession, download_id: int, seen_attempts: int) -> bool:
    """Take the next attempt (attempts += 1) unless another worker took it first."""
    result = await session.execute(update(PendingDownload).where(
        PendingDownload.id == download_id, PendingDownload.state == "pending",
        PendingDownload.attempts == seen_attempts).values(attempts=seen_attempts + 1))
    return bool(affected(result))


async def finish_download(session: AsyncSession, download_id: int) -> bool:
    """Mark the picture stored; False when another worker already finished it."""
    result = await session.execute(update(PendingDownload).where(
        PendingDownload.id == download_id, PendingDownload.state == "pending")
        .values(state="done", last_error=None))
    return bool(affected(result))


async def record_download_failure(session: AsyncSession, download_id: int, attempt: int,
                                  error: str, final: bool) -> bool:
    """Note why this attempt failed (and give up when `final`); False when it is stale."""
    values: dict[str, Any] = {"last_error": error[:500]}
    if final:
        values["state"] = "failed"
    result = await session.execute(update(PendingDownload).where(
        PendingDownload.id == download_id, PendingDownload.state == "pending",
        PendingDownload.attempts == attempt).values(**values))
    return bool(affected(result))
