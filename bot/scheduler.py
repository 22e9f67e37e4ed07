"""The term plan → outbox rows, at the plan's times, exactly once per (send, group).

`fire_due(now)` does all the work: for every send of the active plan whose time has come
and every receiving group that has no outbox row for it yet, it creates the row —
built by the kind's job (handlers/jobs.py) while within `missed_grace_minutes` of the send's
time, else recorded as 'skipped' ("missed while down"). Rows are INSERT … ON CONFLICT DO
NOTHING on (kind, ref, group), so firing twice, two schedulers, or a restart create
nothing new. APScheduler (one date job per future send) is the production trigger of
`fire_due`; a tick every 10 s renews the lease, notices a newly loaded plan and catches
up. Only the holder of the "scheduler" lease fires.

Outbox refs are the plan's send refs prefixed with the term ("T3:2023-03"), so a task id
reused by next year's plan is a new occurrence. Sends whose time came before the plan was
loaded were never scheduled: they get no rows and are never sent late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch import Services
from bot.lease import Lease
from bot.outbox import Sender, max_bytes_of
from handlers.jobs import Draft, Job, JobContext
from handlers.registry import JOBS
from kernel.plan import Send, scheduled_sends
from kernel.records import GroupInfo, TermInfo
from storage.queries.outbox import enqueue, enqueue_split, occurrence_keys
from storage.queries.sched import receiving_groups

log = logging.getLogger(__name__)

Follower = Callable[[JobContext, list[Draft], str], None]

TICK_S = 10.0
MISSED = "missed while down"
NOTHING = "nothing to send"


def ref_prefix(term: TermInfo) -> str:
    return f"T{term.id}:"


class Scheduler:
    """Owns the APScheduler instance, the lease and the plan's sends."""

    name = "scheduler"

    def __init__(self, services: Services, *, sender: Sender | None = None,
                 lease: Lease | None = None, tick_s: float = TICK_S,
                 jobs: Mapping[str, Job] = JOBS, followers: Mapping[str, Follower] | None = None) -> None:
        """`jobs`: what fills each kind of send; `followers`: what runs once a kind's drafts
        are made (the digest charts), given the job's context, its drafts and outbox ref."""
        self.job_of = jobs
        self.followers = dict(followers or {})
        self.services, self.db, self.clock = services, services.db, services.clock
        self.sender = sender
        self.lease = lease or Lease(services.db, "scheduler", services.clock)
        self.tick_s = tick_s
        self._aps: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.term: TermInfo | None = None
        self.sends: list[Send] = []
        self._settled: set[tuple[str, str]] = set()  # every receiving group has its row
        self._settled_groups: frozenset[int] = frozenset()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the timers, catch up what was missed, then tick in the background."""
        self._aps = AsyncIOScheduler(timezone=UTC)
        try:
            await self.fire_due()
        except Exception:
            log.exception("scheduler: catch-up on start failed; the tick will try again")
        self._aps.start()  # timers added before the start are taken up in one go
        self._task = asyncio.create_task(self._run(), name="scheduler-tick")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
        self._aps = None
        await self.lease.release()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.fire_due()
            except Exception:
                log.exception("scheduler tick failed")

    async def _on_timer(self) -> None:
        try:
            await self.fire_due()
        except Exception:
            log.exception("scheduled job failed")

    def jobs(self) -> list[str]:
        """The ids ("kind|ref") of the timers set for future sends."""
        return sorted(job.id for job in self._aps.get_jobs()) if self._aps is not None else []

    # ------------------------------------------------------------------ the plan

    async def refresh_plan(self) -> None:
        """Take up the active term if it changed (a `plan load` anywhere): jobs replaced."""
        term = await self.services.directory.term()
        if term is None:
            self.term, self.sends = None, []
            self._set_timers()
            return
        if self.term is not None and (self.term.id, self.term.loaded_at) == (term.id, term.loaded_at):
            return
        self.term = term
        self.sends = scheduled_sends(term.plan)  # refs as `plan show` prints them
        self._settled.clear()
        self._set_timers()
        log.info("scheduler: plan %r with %d sends", term.plan.name, len(self.sends))

    def _set_timers(self) -> None:
        if self._aps is None:
            return
        self._aps.remove_all_jobs()
        if self.term is None:
            return
        now, real_now = self.clock(), datetime.now(UTC)
        grace = max(int(self.term.plan.missed_grace_minutes * 60), 1)
        for send in self.sends:
            if send.at > now:
                self._aps.add_job(self._on_timer, DateTrigger(run_date=real_now + (send.at - now)),
                                  id=f"{send.kind}|{send.ref}", misfire_grace_time=grace,
                                  coalesce=True, replace_existing=True)

    # ------------------------------------------------------------------ firing

    async def fire_due(self, now: datetime | None = None) -> int:
        """Create the outbox rows of every send due at `now` (default: the clock); lease holder only."""
        await self.refresh_plan()
        if not await self.lease.hold():
            return 0
        return await self.enqueue_due(now)

    async def enqueue_due(self, now: datetime | None = None) -> int:
        """The lease-free core of fire_due: idempotent, returns the rows created to be sent."""
        async with self._lock:
            term = self.term
            if term is None:
                return 0
            now = now or self.clock()
            async with self.db.sessions() as session:
                groups = await receiving_groups(session)
            group_ids = frozenset(g.id for g in groups)
            if group_ids != self._settled_groups:
                self._settled.clear()
                self._settled_groups = group_ids
            due = [s for s in self.sends if s.at <= now and (s.kind, s.ref) not in self._settled]
            if not due:
                return 0
            async with self.db.sessions() as session:
                existing = await occurrence_keys(session, ref_prefix(term))
            created = 0
            for send in due:
                ref = ref_prefix(term) + send.ref
                job = self.job_of.get(send.kind)
                receiving = job.recipients(groups) if job is not None else []
                targets = [g for g in receiving if (send.kind, ref, g.id) not in existing]
                try:
                    created += await self._fill(term, send, ref, targets, now)
                except Exception:
                    log.exception("scheduler: building %s %s failed; will try again", send.kind, send.ref)
                    continue
                self._settled.add((send.kind, send.ref))
        if created and self.sender is not None:
            self.sender.notify()
        return created

    async def _fill(self, term: TermInfo, send: Send, ref: str, targets: list[GroupInfo],
                    now: datetime) -> int:
        """Rows for one send's groups that have none: built, or skipped with the reason."""
        if not targets:
            return 0
        grace = timedelta(minutes=term.plan.missed_grace_minutes)
        job = self.job_of.get(send.kind)
        drafts: dict[int, Draft] = {}
        if send.at < term.loaded_at:
            return 0  # never scheduled: the plan did not exist yet (no rows, nothing sent late)
        if now - send.at > grace:
            reason = MISSED
        elif job is None:
            reason = f"no job for {send.kind}"
        else:
            reason = NOTHING
            async with self.db.sessions() as session:
                ctx = JobContext(session=session, send=send, plan=term.plan, term=term,
                                 groups=tuple(targets), directory=self.services.directory, now=now)
                made = await job.build(ctx)
            drafts = {d.group_id: d for d in made}
            follow = self.followers.get(send.kind)
            if follow is not None:
                try:
                    follow(ctx, made, ref)
                except Exception:  # a follower's extra (a chart) never holds the send back
                    log.exception("scheduler: follower of %s %s failed", send.kind, send.ref)
        routes = self.services.routes

        async def unit(session: AsyncSession) -> int:
            made = 0
            for group in targets:
                draft = drafts.get(group.id)
                if draft is None:
                    await enqueue(session, kind=send.kind, ref=ref, group_id=group.id, text="",
                                  now=now, state="skipped", last_error=reason)
                    continue
                route = routes.get(group.route_kind) if group.route_kind else None
                made += await enqueue_split(
                    session, kind=send.kind, ref=ref, group_id=group.id, text=draft.text, now=now,
                    max_bytes=max_bytes_of(route), markdown=draft.markdown, title=draft.title,
                    mentions=draft.mentions)
            return made

        return await self.db.write(unit)
