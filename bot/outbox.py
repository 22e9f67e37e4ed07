"""The outbox sender: drains due outbox rows through their routes, within each route's limit.

Rows are claimed with a conditional UPDATE (pending → sending), handed to one worker per
rate key (one robot / webhook), and each worker sends one message at a time through an
`aiolimiter.AsyncLimiter(1, 60 / per_minute)` — a leaky bucket of size one, so no window
of 60 s ever holds more than `per_minute` sends (a bucket of size N would let 2N-1 through
in a minute: N at once, then N-1 more as it drains).

Outcomes: ok → sent; retry → pending again after the route's `retry_after_s` (throttled:
the route's penalty window) or an exponential backoff, and the whole rate key waits too;
give_up or too many attempts → failed with the reason.

Only the holder of the "outbox" lease sends, so per-route limits hold for the whole
deployment, not per process. Delivery is at least once at the edges: a process that dies
between a platform's "ok" and the row's update leaves the row 'sending'; the next holder
returns it to pending and it goes out again. Everywhere else it is exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from aiolimiter import AsyncLimiter
from sqlalchemy.ext.asyncio import AsyncSession

from bot.lease import Lease
from kernel.outbound import OutboundMessage, SendOutcome, SendRoute
from storage.db import Database
from storage.queries import outbox as q
from storage.queries.outbox import DueRow

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 4000
LIMIT_MARGIN = 1.05  # space sends 5% wider than the limit: clocks and networks jitter


class Limiter(Protocol):
    async def acquire(self, amount: float = 1) -> None: ...


def spaced_limiter(per_minute: int, period_s: float = 60.0) -> Limiter:
    """At most `per_minute` acquisitions in any `period_s` window (one every period/N)."""
    return AsyncLimiter(1, period_s * LIMIT_MARGIN / max(per_minute, 1))


def max_bytes_of(route: SendRoute | None) -> int:
    """A route's size cap per message (attribute `max_bytes`, default 4000)."""
    return int(getattr(route, "max_bytes", DEFAULT_MAX_BYTES) or DEFAULT_MAX_BYTES)


def to_message(row: DueRow) -> OutboundMessage:
    return OutboundMessage(outbox_id=row.id, platform=row.platform, conversation_id=row.conversation_id,
                           route_kind=row.route_kind or "", route_url=row.route_url,
                           route_secret=row.route_secret, text=row.text, markdown=row.markdown,
                           title=row.title, mentions=row.mentions, image_path=row.image_path)


@dataclass
class _Key:
    """One rate key's queue of claimed rows, its limiter and its worker."""

    route: SendRoute
    limiter: Limiter
    rows: deque[DueRow] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    blocked_until: datetime | None = None
    groups: set[int] = field(default_factory=set)  # groups seen sending through this key

    def busy(self, now: datetime) -> bool:
        """A minute of work is queued already, or the key waits out a penalty."""
        return len(self.rows) >= max(self.route.per_minute, 1) or (
            self.blocked_until is not None and now < self.blocked_until)


class Sender:
    """Owns the sending task; `notify()` after an enqueue wakes it at once."""

    name = "outbox-sender"

    def __init__(self, db: Database, routes: Mapping[str, SendRoute], clock: Callable[[], datetime],
                 *, lease: Lease | None = None, poll_s: float = 1.0, batch: int = 200,
                 max_attempts: int = 8, backoff_s: float = 5.0, backoff_cap_s: float = 1800.0,
                 send_timeout_s: float = 60.0,
                 limiter_factory: Callable[[int], Limiter] = spaced_limiter) -> None:
        self.db, self.routes, self.clock = db, routes, clock
        self.lease = lease
        if lease is not None:
            lease.on_acquired = self._recover
        self.poll_s, self.batch, self.max_attempts = poll_s, batch, max_attempts
        self.backoff_s, self.backoff_cap_s, self.send_timeout_s = backoff_s, backoff_cap_s, send_timeout_s
        self.limiter_factory = limiter_factory
        self._keys: dict[str, _Key] = {}
        self._inflight: set[int] = set()  # claimed by this process, not yet settled
        self._wake = asyncio.Event()
        self._pumping = asyncio.Lock()
        self._recover_from: str | None = None  # set when the lease became ours
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    # ------------------------------------------------------------------ lifecycle

    def notify(self) -> None:
        """Something was enqueued: look for due rows now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *(k.worker for k in self._keys.values())) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        queued = [row.id for key in self._keys.values() for row in key.rows]
        self._keys.clear()
        if queued:
            await self._release(queued, self.clock())
        if self.lease is not None:
            await self.lease.release()

    async def _run(self) -> None:
        while True:
            try:
                await self.pump()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox pump failed; trying again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def drain(self) -> None:
        """Send everything due now and wait until it is settled (tests, `--send` commands)."""
        while True:
            claimed = await self.pump()
            workers = [k.worker for k in self._keys.values() if k.worker and not k.worker.done()]
            if workers:
                await asyncio.gather(*workers, return_exceptions=True)
            if not claimed and not workers:
                return

    # ------------------------------------------------------------------ claiming

    async def _recover(self, previous: str | None) -> None:
        """The lease became ours: rows another sender left in 'sending' were never confirmed."""
        self._recover_from = previous or "an earlier sender"

    async def _recover_pending(self) -> None:
        """Return those rows to pending (done on the next pump, so a failure is retried)."""
        keep = set(self._inflight)
        count = await self.db.write(lambda s: q.recover_sending(s, keep))
        if count:
            log.warning("outbox: %d rows left 'sending' by %s returned to pending", count,
                        self._recover_from)
        self._recover_from = None

    def _key_for(self, row: DueRow, route: SendRoute) -> str:
        return f"{route.kind}:{route.rate_key(to_message(row))}"

    async def pump(self) -> int:
        """Claim due rows and hand them to their rate keys' workers; returns how many."""
        async with self._pumping:  # the background loop and drain() take turns
            return await self._pump()

    async def _pump(self) -> int:
        if self.lease is not None and not await self.lease.hold():
            return 0
        if self._recover_from is not None:
            await self._recover_pending()
        now = self.clock()
        busy = {g for key in self._keys.values() if key.busy(now) for g in key.groups}
        async with self.db.sessions() as session:  # busy groups left out: no head-of-line blocking
            candidates = await q.due_rows(session, now, self.batch, skip_groups=busy)
        wanted: list[tuple[DueRow, str, SendRoute]] = []
        no_route: list[int] = []
        unknown: list[int] = []
        oversized: list[tuple[int, int]] = []
        planned: Counter[str] = Counter()
        for row in candidates:
            if row.id in self._inflight:
                continue
            if row.route_kind is None:
                no_route.append(row.id)
                continue
            route = self.routes.get(row.route_kind)
            if route is None:
                unknown.append(row.id)
                continue
            if q.too_long(row.text, row.mentions, max_bytes_of(route)):
                oversized.append((row.id, max_bytes_of(route)))  # cut into parts, sent next pump
                continue
            name = self._key_for(row, route)
            key = self._keys.get(name)
            queued = planned[name] + (len(key.rows) if key is not None else 0)
            if queued >= max(route.per_minute, 1) or (key is not None and key.busy(now)):
                continue  # a minute of work is queued already, or the key waits out a penalty
            planned[name] += 1
            wanted.append((row, name, route))

        async def claim_unit(session: AsyncSession) -> set[int]:
            await q.close_unsendable(session, no_route, "skipped", "no_route: group has no send route")
            await q.close_unsendable(session, unknown, "failed", "no_route: route kind not available")
            for row_id, max_bytes in oversized:
                await q.split_oversized(session, row_id, max_bytes)
            return await q.claim(session, [row.id for row, _, _ in wanted])

        claimed = await self.db.write(claim_unit) if (wanted or no_route or unknown or oversized) else set()
        for row, name, route in wanted:
            if row.id not in claimed:
                continue  # another process took it first
            key = self._keys.get(name)
            if key is None:
                key = self._keys[name] = _Key(route, self.limiter_factory(route.per_minute))
            self._inflight.add(row.id)
            key.rows.append(row)
            key.groups.add(row.group_id)
            if key.worker is None or key.worker.done():
                key.worker = asyncio.create_task(self._work(name, key), name=f"outbox-{name[:40]}")
        return len(claimed) + len(oversized)

    def _blocked(self, key: _Key, now: datetime) -> bool:
        return key.blocked_until is not None and now < key.blocked_until

    # ------------------------------------------------------------------ sending

    async def _work(self, name: str, key: _Key) -> None:
        """Send one rate key's rows in order, one at a time, within its limit."""
        try:
            while key.rows:
                now = self.clock()
                if self._blocked(key, now) or (self.lease is not None and not self.lease.held):
                    until = key.blocked_until if self._blocked(key, now) else now
                    waiting = [row.id for row in key.rows]
                    key.rows.clear()
                    await self._release(waiting, until or now)
                    return
                await key.limiter.acquire()
                row = key.rows.popleft()
                outcome = await self._try(key.route, row)
                await self._settle(key, row, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox worker %s failed", name)
            waiting = [row.id for row in key.rows]
            key.rows.clear()
            await self._release(waiting, self.clock())

    async def _try(self, route: SendRoute, row: DueRow) -> SendOutcome:
        try:
            async with asyncio.timeout(self.send_timeout_s):
                return await route.send(to_message(row))
        except TimeoutError:
            return SendOutcome("retry", None, "timeout")
        except Exception as exc:  # a route's bug or a network error: retry, name only the type
            log.warning("outbox %d: route %s raised %s", row.id, route.kind, type(exc).__name__)
            return SendOutcome("retry", None, f"error: {type(exc).__name__}")

    def backoff(self, attempts: int) -> timedelta:
        """The wait before try number attempts+1: backoff_s, doubling, capped."""
        return timedelta(seconds=min(self.backoff_cap_s, self.backoff_s * 2 ** max(attempts - 1, 0)))

    async def _settle(self, key: _Key, row: DueRow, outcome: SendOutcome) -> None:
        now = self.clock()
        attempts = row.attempts + 1
        if outcome.kind == "ok":
            await self.db.write(lambda s: q.mark_sent(s, row.id, now))
            self.sent += 1
        elif outcome.kind == "retry" and attempts < self.max_attempts:
            wait = (timedelta(seconds=outcome.retry_after_s) if outcome.retry_after_s is not None
                    else self.backoff(attempts))
            at = now + wait
            key.blocked_until = at  # the robot is throttled or failing: its other rows wait too
            await self.db.write(lambda s: q.mark_retry(s, row.id, at, outcome.reason))
        else:
            reason = outcome.reason if outcome.kind == "give_up" else \
                f"gave up after {attempts} attempts: {outcome.reason}"
            await self.db.write(lambda s: q.mark_failed(s, row.id, reason))
            log.warning("outbox %d (%s %s) failed: %s", row.id, row.kind, row.ref, reason)
        self._inflight.discard(row.id)

    async def _release(self, ids: list[int], at: datetime) -> None:
        if not ids:
            return
        await self.db.write(lambda s: q.release(s, ids, at))
        self._inflight.difference_update(ids)
