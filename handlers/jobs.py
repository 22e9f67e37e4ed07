"""A scheduled job is declared once, on the function that fills it: the kind of send it
answers and who receives it. Given a `JobContext` (a read-only session, the typed send, the
term, the groups it still has to reach) it answers one `Draft` per group that should get a
message; a group left without one gets nothing this time (recorded as skipped).

    @job("theme")
    async def announce_theme(ctx: JobContext) -> list[Draft]: ...

handlers/registry.py gathers the jobs into JOBS, which the scheduler is given at start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kernel.outbound import Mention
from kernel.plan import Plan, Send
from kernel.records import GroupInfo, TermInfo
from storage.directory import Directory


@dataclass(frozen=True, slots=True)
class Draft:
    """One group's message for a scheduled send."""

    group_id: int
    text: str
    markdown: bool = False
    title: str = ""
    mentions: tuple[Mention, ...] = ()


@dataclass(frozen=True, slots=True)
class JobContext:
    session: AsyncSession  # for reading; the outbox rows are written after the job returns
    send: Send
    plan: Plan
    term: TermInfo
    groups: tuple[GroupInfo, ...]  # the groups this send has still to reach
    directory: Directory
    now: datetime


Builder = Callable[[JobContext], Awaitable[list[Draft]]]


@dataclass(frozen=True, slots=True)
class Job:
    kind: str  # the send kind it fills (kernel.plan.sends)
    build: Builder
    district: bool = False  # to the district's groups (bound with no school); else the schools'

    def recipients(self, groups: Sequence[GroupInfo]) -> list[GroupInfo]:
        """The groups this job's sends go to."""
        return [g for g in groups if (g.school_id is None) == self.district]


DECLARED_JOBS: list[Job] = []


def job(kind: str, *, district: bool = False) -> Callable[[Builder], Builder]:
    """Declare the function that fills sends of `kind`."""

    def declare(build: Builder) -> Builder:
        DECLARED_JOBS.append(Job(kind, build, district))
        return build

    return declare
