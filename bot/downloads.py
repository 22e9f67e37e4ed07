"""The downloader: fetches pictures and documents acknowledged earlier, stores them, answers
"第 N/M 张" / "第 N/M 个文件".

Pending rows are claimed with a conditional UPDATE of `attempts`, so several processes can
share the table. Retries back off from `created_at`: attempt k may start once
`created_at + delay(0) + … + delay(k-1)` has passed, which also turns a claim into a lease
(a worker that died mid-fetch is retried by anyone after that delay). Finishing is
conditional too, so only one worker records the result and replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.files import PreparedFile, file_reply, prepare_file, record_file
from handlers.photos import PreparedPhoto, photo_reply, prepare_photo, record_photo
from kernel.messages import ImageRef, Reply
from kernel.outbound import FetchError
from kernel.plan import TaskSpec
from storage.queries.files import file_count
from storage.queries.photos import (
    PendingRow,
    claim_download,
    finish_download,
    pending_downloads,
    photo_count,
    record_download_failure,
)
from templates.render import render_reply

if TYPE_CHECKING:
    from bot.dispatch import Services

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
FIRST_DELAY = timedelta(seconds=60)  # longer than a fetch may take: it is also the lease
MAX_DELAY = timedelta(minutes=10)


def retry_delay(failed_attempts: int, first: timedelta = FIRST_DELAY,
                cap: timedelta = MAX_DELAY) -> timedelta:
    """Time from a row's creation until attempt `failed_attempts + 1` may start (doubling)."""
    return sum((min(first * 2 ** i, cap) for i in range(failed_attempts)), timedelta())


class PhotoDownloader:
    """Drains pending downloads in the background; `drain()` runs one full pass now."""

    name = "photo-downloader"

    def __init__(self, services: Services, *, max_attempts: int = MAX_ATTEMPTS,
                 first_delay: timedelta = FIRST_DELAY, max_delay: timedelta = MAX_DELAY,
                 poll_seconds: float = 2.0, concurrency: int = 4, batch: int = 50) -> None:
        self.services = services
        self.max_attempts = max_attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._limit = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin the background loop; its first pass resumes rows left from before a restart."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="photo-downloader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.drain()
            except Exception:  # a broken pass must not end the loop; the rows stay pending
                log.exception("photo download pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()

    async def drain(self) -> int:
        """Work until nothing is due now; returns how many attempts were made."""
        total = 0
        async with self._lock:
            while made := await self._pass():
                total += made
        return total

    def _due(self, row: PendingRow, now: datetime) -> bool:
        return row.created_at + retry_delay(row.attempts, self.first_delay, self.max_delay) <= now

    async def _pass(self) -> int:
        fetchers = self.services.fetchers
        async with self.services.db.sessions() as session:
            rows = await pending_downloads(session, fetchers.keys(), self.batch)
        now = self.services.clock()
        due = [row for row in rows if self._due(row, now)]
        results = await asyncio.gather(*(self._guarded(row) for row in due))
        return sum(results)

    async def _guarded(self, row: PendingRow) -> int:
        async with self._limit:
            try:
                return await self._attempt(row)
            except Exception:
                log.exception("photo download %s failed unexpectedly", row.id)
                return 0

    async def _attempt(self, row: PendingRow) -> int:
        db = self.services.db
        if not await db.write(lambda s: claim_download(s, row.id, row.attempts)):
            return 0
        attempt = row.attempts + 1
        if attempt > self.max_attempts:  # a worker died during the last attempt
            await self._fail(row, attempt, "gave up", final=True)
            return 1
        fetcher = self.services.fetchers[row.platform]
        try:
            fetched = await fetcher.fetch(ImageRef(row.ref, aes_key=row.aes_key))
        except Exception as exc:  # the reason is the type only: messages may carry URLs
            fetched = FetchError(f"fetch raised {type(exc).__name__}")
        if isinstance(fetched, FetchError):
            final = not fetched.retry or attempt >= self.max_attempts
            await self._fail(row, attempt, fetched.reason, final=final)
            return 1
        if row.kind == "file":
            return await self._document(row, attempt, fetched)
        prepared = await prepare_photo(self.services.files_dir, fetched,
                                       self.services.max_photo_bytes)
        if isinstance(prepared, str):
            await self._fail(row, attempt, prepared, final=True, refusal=prepared)
            return 1
        await self._store(row, prepared)
        return 1

    async def _document(self, row: PendingRow, attempt: int, data: bytes) -> int:
        """A fetched document: checked against its task, stored for its owner, answered; a
        refusal (type, size) is answered once, as the message's own reply would have been."""
        found = await self._task_spec(row.task_id)
        if found is None or row.owner is None:
            await self._fail(row, attempt, "task gone", final=True)
            return 1
        spec, tz = found
        prepared = await prepare_file(self.services.files_dir, data, row.name, spec,
                                      self.services.max_file_bytes)
        if isinstance(prepared, str):
            won = await self.services.db.write(
                lambda s: record_download_failure(s, row.id, attempt, prepared, True))
            if won:
                await self._reply(row, file_reply(spec, tz, name=row.name, outcome=prepared, have=0,
                                                  max_bytes=self.services.max_file_bytes))
            return 1
        await self._store_document(row, prepared, spec, tz)
        return 1

    async def _store_document(self, row: PendingRow, document: PreparedFile, spec: TaskSpec,
                              tz: ZoneInfo) -> None:
        now, owner = self.services.clock(), row.owner
        assert owner is not None

        async def unit(session: AsyncSession) -> tuple[bool, bool, int]:
            new = await record_file(session, document, task_id=row.task_id, owner=owner,
                                    person_id=row.person_id, name=row.name, at=now)
            won = await finish_download(session, row.id)
            return won, new, await file_count(session, row.task_id, owner)

        won, new, have = await self.services.db.write(unit)
        if won:
            await self._reply(row, file_reply(spec, tz, name=row.name, have=have,
                                              outcome="new" if new else "duplicate",
                                              max_bytes=self.services.max_file_bytes,
                                              school=spec.by != "teacher"))

    async def _store(self, row: PendingRow, photo: PreparedPhoto) -> None:
        now = self.services.clock()

        async def unit(session: AsyncSession) -> tuple[bool, bool, int]:
            new = await record_photo(session, photo, person_id=row.person_id,
                                     task_id=row.task_id, at=now)
            won = await finish_download(session, row.id)
            return won, new, await photo_count(session, row.person_id, row.task_id)

        won, new, have = await self.services.db.write(unit)
        if not won:
            return  # another worker finished it and answered
        found = await self._task_spec(row.task_id)
        if found is not None:
            spec, tz = found
            await self._reply(row, photo_reply(spec, tz, have=have, new=int(new),
                                               duplicates=int(not new)))

    async def _fail(self, row: PendingRow, attempt: int, reason: str, *, final: bool,
                    refusal: str | None = None) -> None:
        recorded = await self.services.db.write(
            lambda s: record_download_failure(s, row.id, attempt, reason, final))
        log.info("photo download %s attempt %d failed: %s%s", row.id, attempt, reason,
                 " (giving up)" if final else "")
        if final and recorded and row.kind == "file":
            await self._reply(row, Reply("file_failed", {"name": row.name}))
        elif final and recorded:
            await self._reply(row, Reply("photo_failed", {
                "reason": refusal, "max_mb": round(self.services.max_photo_bytes / 1048576, 1)}))

    async def _task_spec(self, task_id: int) -> tuple[TaskSpec, ZoneInfo] | None:
        term = await self.services.directory.term()
        if term is None:
            return None
        key = next((k for k, v in term.task_ids.items() if v == task_id), None)
        spec = term.plan.task(key) if key else None
        return (spec, term.plan.tz) if spec else None

    async def _reply(self, row: PendingRow, reply: Reply) -> None:
        replier = self.services.repliers.get(row.platform)
        if replier is None or row.reply_route is None:
            return
        try:
            outcome = await replier.reply(row.reply_route, render_reply(reply))
        except Exception as exc:
            log.warning("reply for photo download %s failed: %s", row.id, type(exc).__name__)
            return
        if outcome.kind != "ok":
            log.warning("reply for photo download %s not delivered: %s", row.id, outcome.reason)
