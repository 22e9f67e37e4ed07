"""The outbox: each proactive message exists once per (kind, ref, group) and is sent once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound import Mention
from storage.models import Outbox
from storage.queries.common import insert_if_absent


async def enqueue(session: AsyncSession, *, kind: str, ref: str, group_id: int, text: str, now: datetime,
                  markdown: bool = False, title: str = "", mentions: Sequence[Mention] = (),
                  image_path: str | None = None, send_at: datetime | None = None) -> bool:
    """Create the outbox row unless (kind, ref, group) exists; True when this call created it."""
    return await insert_if_absent(session, Outbox.__table__, {
        "kind": kind, "ref": ref, "group_id": group_id, "text": text, "markdown": markdown,
        "title": title, "image_path": image_path, "state": "pending", "attempts": 0,
        "mentions": [{"name": m.name, "userid": m.userid, "mobile": m.mobile} for m in mentions],
        "next_attempt_at": send_at or now, "created_at": now,
    }, ["kind", "ref", "group_id"])
