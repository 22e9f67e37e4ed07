"""The outbox: each proactive message exists once per (kind, ref, group) and is sent once.

States: pending → sending → sent / failed, or pending → skipped. A message too long for
its route is stored as several rows: the first under `ref`, the next under `ref#2`, `ref#3`…,
all created in the transaction that created the first, so an occurrence is either wholly
there or not at all (a second enqueue of the same occurrence creates nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.outbound import Mention
from kernel.textsplit import split_text
from storage.models import ChatGroup, Outbox
from storage.queries.common import affected, insert_if_absent

PART_SEPARATOR = "#"
_PART_SUFFIX = re.compile(r"#[\d.]+$")  # "#2" made at enqueue, "#57.2" made at send time


def mentions_json(mentions: Sequence[Mention]) -> list[dict[str, str | None]]:
    return [{"name": m.name, "userid": m.userid, "mobile": m.mobile} for m in mentions]


def mentions_from_json(data: Any) -> tuple[Mention, ...]:
    if not isinstance(data, list):
        return ()
    return tuple(Mention(name=str(m.get("name", "")), userid=m.get("userid"), mobile=m.get("mobile"))
                 for m in data if isinstance(m, dict))


async def enqueue(session: AsyncSession, *, kind: str, ref: str, group_id: int, text: str, now: datetime,
                  markdown: bool = False, title: str = "", mentions: Sequence[Mention] = (),
                  image_path: str | None = None, send_at: datetime | None = None,
                  state: str = "pending", last_error: str | None = None) -> bool:
    """Create the outbox row unless (kind, ref, group) exists; True when this call created it.

    `state="skipped"` records an occurrence that will never be sent (with `last_error` why).
    """
    return await insert_if_absent(session, Outbox.__table__, {
        "kind": kind, "ref": ref, "group_id": group_id, "text": text, "markdown": markdown,
        "title": title, "image_path": image_path, "state": state, "attempts": 0,
        "mentions": mentions_json(mentions), "last_error": last_error,
        "next_attempt_at": send_at or now, "created_at": now,
    }, ["kind", "ref", "group_id"])


def mention_reserve(mentions: Sequence[Mention]) -> int:
    """Bytes a route may append to render the @-mentions ("@userid " each)."""
    return sum(len(f"@{m.userid or m.name} ".encode()) for m in mentions)


async def enqueue_split(session: AsyncSession, *, kind: str, ref: str, group_id: int, text: str,
                        now: datetime, max_bytes: int, markdown: bool = False, title: str = "",
                        mentions: Sequence[Mention] = (), image_path: str | None = None,
                        send_at: datetime | None = None) -> int:
    """Enqueue `text` as one row per part that fits `max_bytes`; returns rows created (0: exists).

    The @-mentions ride on the last part; every part leaves room for them.
    """
    budget = max(max_bytes - mention_reserve(mentions), max_bytes // 2)
    parts = split_text(text, budget)
    created = 0
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        made = await enqueue(
            session, kind=kind, ref=ref if number == 1 else f"{ref}{PART_SEPARATOR}{number}",
            group_id=group_id, text=part, now=now, markdown=markdown, title=title,
            mentions=mentions if last else (), image_path=image_path if number == 1 else None,
            send_at=send_at)
        if number == 1 and not made:
            return 0  # this occurrence was enqueued before: create none of its parts again
        created += int(made)
    return created


def too_long(text: str, mentions: Sequence[Mention], max_bytes: int) -> bool:
    return len(text.encode("utf-8")) + mention_reserve(mentions) > max_bytes


async def split_oversized(session: AsyncSession, outbox_id: int, max_bytes: int) -> int:
    """A pending row too long for its route (enqueued without `enqueue_split`), cut in place.

    It keeps the first part; the others become rows `ref#<id>.2`, `ref#<id>.3`… due with it,
    created in the same transaction, so no part can be sent twice or lost. Returns the parts.
    """
    row = await session.get(Outbox, outbox_id)
    if row is None or row.state != "pending":
        return 0
    mentions = mentions_from_json(row.mentions)
    parts = split_text(row.text, max(max_bytes - mention_reserve(mentions), max_bytes // 2))
    row.text = parts[0]
    if len(parts) > 1:
        row.mentions = []
    for number, part in enumerate(parts[1:], start=2):
        await enqueue(session, kind=row.kind, ref=f"{row.ref}{PART_SEPARATOR}{row.id}.{number}",
                      group_id=row.group_id, text=part, now=row.created_at, markdown=row.markdown,
                      title=row.title, mentions=mentions if number == len(parts) else (),
                      send_at=row.next_attempt_at)
    await session.flush()
    return len(parts)


@dataclass(frozen=True, slots=True)
class DueRow:
    """An outbox row that is due, with what its group's route needs to send it."""

    id: int
    kind: str
    ref: str
    group_id: int
    text: str
    markdown: bool
    title: str
    mentions: tuple[Mention, ...]
    image_path: str | None
    attempts: int
    next_attempt_at: datetime
    platform: str
    conversation_id: str
    route_kind: str | None
    route_url: str | None
    route_secret: str | None


async def due_rows(session: AsyncSession, now: datetime, limit: int,
                   skip_groups: Iterable[int] = ()) -> list[DueRow]:
    """Pending rows whose time has come, oldest first, leaving out `skip_groups` (busy ones)."""
    stmt = (select(Outbox, ChatGroup.platform, ChatGroup.conversation_id, ChatGroup.route_kind,
                   ChatGroup.route_url, ChatGroup.route_secret)
            .join(ChatGroup, ChatGroup.id == Outbox.group_id)
            .where(Outbox.state == "pending", Outbox.next_attempt_at <= now)
            .order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)
            .with_for_update(skip_locked=True, of=Outbox))
    skip = list(skip_groups)
    if skip:
        stmt = stmt.where(Outbox.group_id.not_in(skip))
    rows = (await session.execute(stmt)).all()
    return [DueRow(o.id, o.kind, o.ref, o.group_id, o.text, o.markdown, o.title,
                   mentions_from_json(o.mentions), o.image_path, o.attempts, o.next_attempt_at,
                   platform, conv, kind, url, secret)
            for o, platform, conv, kind, url, secret in rows]


async def claim(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    """pending → sending for those of `ids` still pending; returns the ids this call claimed."""
    if not ids:
        return set()
    result = await session.execute(
        update(Outbox).where(Outbox.id.in_(list(ids)), Outbox.state == "pending")
        .values(state="sending").returning(Outbox.id))
    return {row[0] for row in result.all()}


async def close_unsendable(session: AsyncSession, ids: Sequence[int], state: str, reason: str) -> None:
    """Rows that cannot be sent from here: a group without a route, a route not registered."""
    if ids:
        await session.execute(update(Outbox).where(Outbox.id.in_(list(ids)), Outbox.state == "pending")
                              .values(state=state, last_error=reason))


async def mark_sent(session: AsyncSession, outbox_id: int, now: datetime) -> None:
    await session.execute(update(Outbox).where(Outbox.id == outbox_id, Outbox.state == "sending")
                          .values(state="sent", sent_at=now, attempts=Outbox.attempts + 1,
                                  last_error=None))


async def mark_retry(session: AsyncSession, outbox_id: int, at: datetime, reason: str) -> None:
    await session.execute(update(Outbox).where(Outbox.id == outbox_id, Outbox.state == "sending")
                          .values(state="pending", next_attempt_at=at, attempts=Outbox.attempts + 1,
                                  last_error=reason))


async def mark_failed(session: AsyncSession, outbox_id: int, reason: str) -> None:
    await session.execute(update(Outbox).where(Outbox.id == outbox_id, Outbox.state == "sending")
                          .values(state="failed", attempts=Outbox.attempts + 1, last_error=reason))


async def release(session: AsyncSession, ids: Iterable[int], at: datetime) -> None:
    """Claimed rows not tried after all (their route is throttled, the lease was lost): pending again.

    Their attempts are unchanged; they are due again at `at` (they were due when claimed).
    """
    ids = list(ids)
    if ids:
        await session.execute(update(Outbox).where(Outbox.id.in_(ids), Outbox.state == "sending")
                              .values(state="pending", next_attempt_at=at))


async def recover_sending(session: AsyncSession, keep: Iterable[int] = ()) -> int:
    """Rows left in 'sending' by a sender that died: pending again (except ours, `keep`)."""
    stmt = update(Outbox).where(Outbox.state == "sending")
    keep = list(keep)
    if keep:
        stmt = stmt.where(Outbox.id.not_in(keep))
    result = await session.execute(stmt.values(state="pending"))
    return int(affected(result) or 0)


async def occurrence_keys(session: AsyncSession, ref_prefix: str) -> set[tuple[str, str, int]]:
    """(kind, ref, group) of every row whose ref starts with `ref_prefix` (parts left out)."""
    rows = await session.execute(select(Outbox.kind, Outbox.ref, Outbox.group_id)
                                 .where(Outbox.ref.startswith(ref_prefix, autoescape=True)))
    return {(k, r, g) for k, r, g in rows.all() if not _PART_SUFFIX.search(r)}
