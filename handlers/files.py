"""Documents for file tasks (教案, 课件, 证书, a school's 材料): typed, checked, stored by hash.

A document goes to the file task its file name names, else the one the sender chose with
「文件 <名称>」 in the last CONFIRM_MINUTES, else the only one open; with several open and
no name nothing is stored and the reply lists them. Its type is read from its bytes
(kernel/filetypes.py) and must be one the task takes. It counts for its owner: the teacher,
or for a school task their school, for a subject task their school's 教研组
(storage/queries/files.py). A document the platform must be asked for becomes a pending
download (kind "file") answered by bot/downloads.py through `prepare_file` and
`record_file`, as photos are.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.pending import CONFIRM_MINUTES
from handlers.verbs import verb
from kernel.filetypes import labels, sniff_document
from kernel.messages import ImageRef, Reply
from kernel.plan import TaskSpec
from kernel.records import PersonInfo
from kernel.task_choice import Choice, choose, hands_in, is_open, owed, short_name
from storage.files import write_document_file
from storage.queries.files import add_file, file_count, person_owner, school_owner
from storage.queries.pending import ask_to_confirm, peek_pending
from storage.queries.photos import add_pending_download

FILE_TARGET = "file_for"  # the pending action 「文件 <名称>」 leaves for the next documents


@dataclass(frozen=True, slots=True)
class PreparedFile:
    """A checked document whose file is already on disk under its hash."""

    sha256: str
    ext: str
    size: int


async def prepare_file(files_dir: Path, data: bytes, name: str | None, task: TaskSpec,
                       max_bytes: int) -> PreparedFile | str:
    """Check the bytes against the task and write the file; a refusal code otherwise."""
    if len(data) > max_bytes:
        return "too_large"
    ext = sniff_document(data, name)
    if ext is None:
        return "not_document"
    if not task.takes(ext):
        return "wrong_type"
    sha = hashlib.sha256(data).hexdigest()
    await asyncio.to_thread(write_document_file, files_dir, sha, ext, data)
    return PreparedFile(sha, ext, len(data))


def owner_of(task: TaskSpec, person: PersonInfo) -> str:
    """Whose the document counts for: the teacher's, their school's or their 教研组's."""
    if task.by == "teacher" or person.school_id is None:
        return person_owner(person.id)
    return school_owner(person.school_id, person.subject if task.by == "subject" else None)


async def record_file(session: AsyncSession, prepared: PreparedFile, *, task_id: int, owner: str,
                      person_id: int, name: str | None, at: datetime) -> bool:
    """Insert the document's row; False when its owner already handed in these very bytes."""
    return await add_file(session, task_id=task_id, owner=owner, person_id=person_id,
                          sha256=prepared.sha256, name=name or f"文件.{prepared.ext}",
                          ext=prepared.ext, size=prepared.size, at=at)


def file_reply(spec: TaskSpec, tz: ZoneInfo, *, name: str | None, outcome: str, have: int,
               how: str = "", max_bytes: int = 0, school: bool = False) -> Reply:
    """One document's answer: stored (第 N/M 个), already had, or why it was refused."""
    return Reply("file_received", {
        "task": spec, "need": spec.min_files or 1, "have": have, "name": name,
        "outcome": outcome, "how": how, "tz": tz, "max_mb": round(max_bytes / 1048576, 1),
        "accept": labels(spec.accept) if spec.accept else "", "school": school})


async def _target(ctx: Context, session: AsyncSession) -> TaskSpec | None:
    """The task the sender chose with 「文件 <名称>」 a short while ago, if still open."""
    assert ctx.person is not None and ctx.term is not None
    pending = await peek_pending(session, ctx.person.id)
    if pending is None or pending.kind != FILE_TARGET or pending.expires_at <= ctx.now:
        return None
    task = ctx.term.plan.task(str(pending.payload.get("task", "")))
    if task is None or not is_open(task, ctx.now) or \
            not hands_in(ctx.term.plan, task, ctx.hander):
        return None
    return task


def _listing(ctx: Context, choice: Choice) -> list[tuple[TaskSpec, str]]:
    assert ctx.term is not None
    return [(t, short_name(ctx.term.plan, t)) for t in choice.open]


@verb("file", "文件", "交文件", "提交文件", "交材料", "提交材料", evidence=True, takes_args=True,
      optional_arg=True, help="help/file.j2", order=35)
async def handle_file(ctx: Context, session: AsyncSession) -> Reply | None:
    assert ctx.person is not None
    if ctx.term is None:
        return Reply("no_plan")
    if not ctx.msg.files:
        return await _choose_target(ctx, session)
    plan = ctx.term.plan
    target = await _target(ctx, session)
    replies: list[dict[str, Any]] = []
    pending = 0
    for document in ctx.msg.files:
        if target is not None:
            choice = Choice("named", target)
        else:
            choice = choose(plan, ("file",), ctx.hander, ctx.now,
                            text=ctx.command.args, file_name=document.name)
        refusal = _refusal(ctx, choice, document)
        if refusal is not None:
            return refusal
        spec = choice.task
        assert spec is not None
        task_id = ctx.term.task_ids[spec.id]
        owner = owner_of(spec, ctx.person)
        if document.data is None:
            pending += await add_pending_download(
                session, platform=ctx.msg.platform, msg_id=ctx.msg.msg_id, ref=document.ref,
                aes_key=document.aes_key, person_id=ctx.person.id, task_id=task_id,
                reply_route=ctx.msg.reply_context, now=ctx.now, kind="file",
                name=document.name, owner=owner)
            continue
        prepared = await prepare_file(ctx.files_dir, document.data, document.name, spec,
                                      ctx.max_file_bytes)
        outcome = prepared if isinstance(prepared, str) else (
            "new" if await record_file(session, prepared, task_id=task_id, owner=owner,
                                       person_id=ctx.person.id, name=document.name, at=ctx.now)
            else "duplicate")
        replies.append({"spec": spec, "name": document.name, "outcome": outcome, "how": choice.how,
                        "have": await file_count(session, task_id, owner)})
    if not replies:
        # fetched later: the downloader answers once it is stored (or has failed)
        return None if ctx.msg.reply_context is not None else Reply("file_saving")
    last = replies[-1]
    return file_reply(last["spec"], plan.tz, name=last["name"], outcome=last["outcome"],
                      have=last["have"], how=last["how"], max_bytes=ctx.max_file_bytes,
                      school=last["spec"].by != "teacher")


def _refusal(ctx: Context, choice: Choice, document: ImageRef) -> Reply | None:
    """Why this document goes to no task, or None when it has one."""
    assert ctx.term is not None
    tz = ctx.term.plan.tz
    if choice.how == "none":
        return Reply("file_no_task", {"role": ctx.role})
    if choice.how == "several":
        return Reply("file_which", {"tasks": _listing(ctx, choice), "tz": tz, "name": document.name})
    if choice.how in ("past_due", "not_open"):
        return Reply("file_past_due", {"task": choice.task, "tz": tz, "how": choice.how})
    return None


async def _choose_target(ctx: Context, session: AsyncSession) -> Reply:
    """「文件」 alone: what is owed and how to send it; 「文件 <名称>」: the next documents'
    task, kept for CONFIRM_MINUTES."""
    assert ctx.person is not None and ctx.term is not None
    plan = ctx.term.plan
    choice = choose(plan, ("file",), ctx.hander, ctx.now, text=ctx.command.args)
    if choice.how == "none":
        return Reply("file_no_task", {"role": ctx.role})
    if choice.how == "named" and choice.task is not None and ctx.command.args.strip():
        expires = ctx.now + timedelta(minutes=CONFIRM_MINUTES)
        await ask_to_confirm(session, person_id=ctx.person.id, kind=FILE_TARGET,
                             payload={"task": choice.task.id}, now=ctx.now, expires_at=expires)
        task_id = ctx.term.task_ids[choice.task.id]
        have = await file_count(session, task_id, owner_of(choice.task, ctx.person))
        return Reply("file_target", {"task": choice.task, "tz": plan.tz, "have": have,
                                     "need": choice.task.min_files or 1,
                                     "minutes": CONFIRM_MINUTES, "is_group": ctx.msg.is_group,
                                     "accept": labels(choice.task.accept)})
    if choice.how in ("past_due", "not_open") and ctx.command.args.strip():
        return Reply("file_past_due", {"task": choice.task, "tz": plan.tz, "how": choice.how})
    mine = [t for t in owed(plan, ("file",), ctx.hander) if is_open(t, ctx.now)]
    listing = []
    for task in mine[:5]:
        have = await file_count(session, ctx.term.task_ids[task.id], owner_of(task, ctx.person))
        listing.append({"task": task, "name": short_name(plan, task), "have": have,
                        "need": task.min_files or 1})
    return Reply("file_usage", {"tasks": listing, "tz": plan.tz, "is_group": ctx.msg.is_group})
