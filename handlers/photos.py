"""Photos for the current photo task: checked by type and size, stored by content hash.

A picture that arrives with its bytes (the simulator) is stored at once; one that must be
fetched from its platform becomes a pending download in the same transaction, and
bot/downloads.py stores it later through the same two steps (`prepare_photo` for the file,
`record_photo` for the row), so both paths count and refuse alike.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.verbs import verb
from kernel.filetypes import sniff_image
from kernel.messages import Reply
from kernel.plan import TaskSpec
from kernel.task_choice import choose, short_name
from storage.files import write_photo_file
from storage.queries.photos import add_pending_download, add_photo, photo_count


@dataclass(frozen=True, slots=True)
class PreparedPhoto:
    """A checked picture whose file is already on disk under its hash."""

    sha256: str
    mime: str
    size: int


async def prepare_photo(files_dir: Path, data: bytes, max_bytes: int) -> PreparedPhoto | str:
    """Check the bytes and write the file (file first, row later); a refusal code otherwise."""
    mime = sniff_image(data)
    if mime is None:
        return "not_image"
    if len(data) > max_bytes:
        return "too_large"
    sha = hashlib.sha256(data).hexdigest()
    await asyncio.to_thread(write_photo_file, files_dir, sha, mime, data)
    return PreparedPhoto(sha, mime, len(data))


async def record_photo(session: AsyncSession, photo: PreparedPhoto, *, person_id: int,
                       task_id: int, at: datetime) -> bool:
    """Insert the photo row; False when this person already sent this picture for the task."""
    return await add_photo(session, person_id=person_id, task_id=task_id, sha256=photo.sha256,
                           mime=photo.mime, size=photo.size, at=at)


def photo_reply(spec: TaskSpec, tz: ZoneInfo, *, have: int | None, new: int = 0,
                duplicates: int = 0, refused: tuple[str, ...] = (), pending: int = 0,
                max_bytes: int = 0) -> Reply:
    """The one reply for every mix of stored, repeated, refused and still-downloading pictures."""
    return Reply("photo_received", {
        "task": spec, "need": spec.min_photos or 0, "have": have, "new": new,
        "duplicates": duplicates, "refused": refused, "pending": pending, "tz": tz,
        "max_mb": round(max_bytes / (1024 * 1024), 1)})


@verb("photo", evidence=True, help="help/photo.j2", order=30)  # reached by a picture, not by words
async def handle_photo(ctx: Context, session: AsyncSession) -> Reply | None:
    assert ctx.person is not None
    if ctx.term is None:
        return Reply("no_plan")
    plan = ctx.term.plan
    # the words sent with the pictures (图文一起发) may name the task: 推门听课 + 3 张
    choice = choose(plan, ("photos",), ctx.hander, ctx.now, text=ctx.command.text)
    if choice.how == "none":
        return Reply("photo_no_task")
    if choice.how == "several":
        return Reply("photo_which", {"tasks": [(t, short_name(plan, t)) for t in choice.open],
                                     "tz": plan.tz,
                                     "sent": len(ctx.msg.images), "is_group": ctx.msg.is_group})
    spec = choice.task
    task_id = ctx.term.task_ids.get(spec.id) if spec else None
    if spec is None or task_id is None:
        return Reply("photo_no_task")
    if not ctx.msg.images:
        return Reply("photo_usage", {"task": spec, "tz": plan.tz, "is_group": ctx.msg.is_group})
    if choice.how in ("past_due", "not_open"):
        return Reply("photo_past_due", {"task": spec, "tz": plan.tz, "how": choice.how})

    new = duplicates = pending = 0
    refused: list[str] = []
    for image in ctx.msg.images:
        if image.data is None:
            pending += await add_pending_download(
                session, platform=ctx.msg.platform, msg_id=ctx.msg.msg_id, ref=image.ref,
                aes_key=image.aes_key, person_id=ctx.person.id, task_id=task_id,
                reply_route=ctx.msg.reply_context, now=ctx.now)
            continue
        prepared = await prepare_photo(ctx.files_dir, image.data, ctx.max_photo_bytes)
        if isinstance(prepared, str):
            refused.append(prepared)
        elif await record_photo(session, prepared, person_id=ctx.person.id, task_id=task_id,
                                at=ctx.now):
            new += 1
        else:
            duplicates += 1
    # a picture still to be fetched is answered by the downloader once it is stored (or has
    # failed), through the message's reply route: one visible reply per photo, none now
    later = pending > 0 and ctx.msg.reply_context is not None
    if later and not (new or duplicates or refused):
        return None
    have = await photo_count(session, ctx.person.id, task_id) if new or duplicates else None
    return photo_reply(spec, plan.tz, have=have, new=new, duplicates=duplicates,
                       refused=tuple(refused), pending=0 if later else pending,
                       max_bytes=ctx.max_photo_bytes)
