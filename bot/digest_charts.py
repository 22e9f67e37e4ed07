"""Charts that follow the scheduled digests, on routes that can show a picture.

The scheduler calls `DigestCharts.follow` once a digest's texts are made (its `followers`):
for each group that got one and whose route can show an image, a chart row is queued
afterwards under the send's ref plus `#chart` — once per (send, group), like the text:
- a route whose `charts` is "image" (WeCom's group webhook): an image message (the row's
  `image_path`; the route sends the picture);
- a route whose `charts` is "markdown" (DingTalk's): a markdown message embedding the chart by
  URL (`<public_base_url>/charts/<sha>.png`), only when that URL is not a loopback address.
Other routes (the simulator, a group without a route) get no chart.

Drawing takes ~0.2 s a school, so it runs in a background task (figures read in its own
session, pictures drawn in a worker thread) and never holds the digests back; a failure or
a shutdown mid-way costs only charts. Chart rows are due a second after the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.dispatch import Services
from handlers.charts import district_chart, school_chart
from handlers.digest import all_school_figures
from handlers.jobs import Draft, JobContext
from kernel.figures import district_digest
from kernel.outbound import SendRoute
from kernel.records import TermInfo
from storage.chart_files import ChartFile, save_chart
from storage.db import Database
from storage.queries.outbox import enqueue
from templates.render import render_text

log = logging.getLogger(__name__)

CHART_SUFFIX = "#chart"
CHART_DELAY = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class ChartTarget:
    group_id: int
    mode: str  # image | markdown
    school_code: str | None  # None for a district group


@dataclass(frozen=True, slots=True)
class ChartJob:
    """The charts one digest send still owes, taken from its builder's context."""

    kind: str
    ref: str  # the outbox ref of the chart rows
    term: TermInfo
    now: datetime
    district: bool
    targets: tuple[ChartTarget, ...]


@dataclass(eq=False)
class DigestCharts:
    """Per app: where charts are saved, the public URL they are served at, the work under way."""

    db: Database
    files_dir: Path
    public_base_url: str | None  # None: phones cannot reach it (no markdown charts)
    routes: Mapping[str, SendRoute] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def mode(self, route_kind: str | None) -> str | None:
        """How a group on this route can be shown a chart: "image", "markdown", or None."""
        route = self.routes.get(route_kind) if route_kind else None
        shown = getattr(route, "charts", None)
        if shown == "markdown" and not self.public_base_url:
            return None  # a phone cannot fetch a picture from a loopback address
        return shown if shown in ("image", "markdown") else None

    def followers(self) -> dict[str, Callable[[JobContext, list[Draft], str], None]]:
        """What the scheduler runs once each digest's texts are made: that digest's charts."""
        return {"school_digest": partial(self.follow, district=False),
                "district_digest": partial(self.follow, district=True)}

    def follow(self, ctx: JobContext, drafts: list[Draft], ref: str, *, district: bool) -> None:
        """Start drawing the charts a digest send owes (a chart is a bonus: never an error)."""
        job = chart_job(ctx, drafts, self, district, ref)
        if job is not None:
            self.begin(job)

    def begin(self, job: ChartJob) -> None:
        """Draw and queue one send's charts in the background."""
        task = asyncio.create_task(self.run(job), name=f"digest-charts-{job.ref[:40]}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for every chart under way (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    name = "digest-charts"

    async def start(self) -> None:
        """Nothing to do until a digest is sent (the builders start the drawing)."""

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.drain()

    async def run(self, job: ChartJob) -> None:
        try:
            made = await self._queue(job, await self._draw_all(job))
            log.info("digest charts: %d rows for %s %s", made, job.kind, job.ref)
        except asyncio.CancelledError:
            raise
        except Exception:  # a chart is a bonus: the digest went out without it
            log.exception("digest charts for %s %s failed", job.kind, job.ref)

    async def _draw(self, draw: Callable[[], bytes]) -> ChartFile:
        png = await asyncio.to_thread(draw)
        return await asyncio.to_thread(save_chart, self.files_dir, png)

    async def _draw_all(self, job: ChartJob) -> dict[int, ChartFile]:
        async with self.db.sessions() as session:
            schools = await all_school_figures(session, job.term, job.now)
        if job.district:
            figures = district_digest(job.term, schools, job.now)
            chart = await self._draw(lambda: district_chart(figures))
            return {t.group_id: chart for t in job.targets}
        by_code = {s.code: s for s in schools}
        drawn: dict[str, ChartFile] = {}
        charts = {}
        for target in job.targets:
            digest = by_code.get(target.school_code or "")
            if digest is None:
                continue
            if digest.code not in drawn:
                drawn[digest.code] = await self._draw(lambda d=digest: school_chart(d))  # type: ignore[misc]
            charts[target.group_id] = drawn[digest.code]
        return charts

    async def _queue(self, job: ChartJob, charts: dict[int, ChartFile]) -> int:
        title = render_text("digest/chart_title.j2", district=job.district)
        send_at = job.now + CHART_DELAY

        async def unit(session: AsyncSession) -> int:
            made = 0
            for target in job.targets:
                chart = charts.get(target.group_id)
                if chart is None:
                    continue
                if target.mode == "image":
                    made += await enqueue(session, kind=job.kind, ref=job.ref, group_id=target.group_id,
                                          text="", now=job.now, title=title, image_path=str(chart.path),
                                          send_at=send_at)
                else:
                    text = render_text("digest/chart_markdown.j2", title=title,
                                       url=f"{self.public_base_url}/charts/{chart.name}")
                    made += await enqueue(session, kind=job.kind, ref=job.ref, group_id=target.group_id,
                                          text=text, now=job.now, markdown=True, title=title,
                                          send_at=send_at)
            return made

        return await self.db.write(unit) if charts else 0


CHARTS = web.AppKey("digest_charts", DigestCharts)


def public_chart_base(url: str) -> str | None:
    """The base URL phones can fetch charts from; None for localhost or a loopback address."""
    host = (urlsplit(url).hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return url.rstrip("/")


def chart_job(ctx: JobContext, drafts: list[Draft], charts: DigestCharts, district: bool,
              ref: str) -> ChartJob | None:
    """The charts this send owes: groups that got a text and whose route can show a picture."""
    got_text = {d.group_id for d in drafts}
    targets = []
    for group in ctx.groups:
        mode = charts.mode(group.route_kind) if group.id in got_text else None
        if mode is None:
            continue
        school = ctx.directory.school(group.school_id)
        if not district and school is None:
            continue
        targets.append(ChartTarget(group.id, mode, None if district else school.code))  # type: ignore[union-attr]
    if not targets:
        return None
    return ChartJob(ctx.send.kind, f"{ref}{CHART_SUFFIX}", ctx.term, ctx.now, district, tuple(targets))


def install(app: web.Application, config: Config, services: Services) -> DigestCharts:
    """Charts for this app's digests: saved under files_dir, linked from public_base_url."""
    charts = DigestCharts(services.db, services.files_dir, public_chart_base(config.server.public_base_url),
                          services.routes)
    app[CHARTS] = charts
    return charts
