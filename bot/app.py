"""The application factory: routes, the platforms, and one owner for everything that runs.

Everything long-lived starts in this order and stops in the reverse one (kernel.lifecycle):
the database (schema, group-commit writer, directory cache), the HTTP client session, the
word dictionary, the metrics publisher and orphan watch (workers), each platform's link
(API clients, send routes, Stream/WebSocket clients), then — in the process that keeps the
background work — the photo downloader, the digest charts, the outbox sender and the
scheduler, which need the send routes to be registered first.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import text

from bot import digest_charts
from bot.config import Config
from bot.dispatch import Services, dispatch
from bot.downloads import PhotoDownloader
from bot.lease import Lease
from bot.metrics import Metrics, metrics_view
from bot.outbox import Sender
from bot.scheduler import Scheduler
from bot.web import dashboard
from bot.workers import Worker
from kernel.language import load_dictionary
from kernel.lifecycle import Lifecycle, Within
from platforms.base import Switchboard
from storage.db import Database
from storage.directory import Directory

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
DATABASE = web.AppKey("database", Database)
SERVICES = web.AppKey("services", Services)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
DOWNLOADER = web.AppKey("downloader", PhotoDownloader)
SENDER = web.AppKey("sender", Sender)
SCHEDULER = web.AppKey("scheduler", Scheduler)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)


# the clock every request reads (several times): a partial calls straight into C
utc_now: Callable[[], datetime] = partial(datetime.now, UTC)


async def healthz(request: web.Request) -> web.Response:
    db = request.app[DATABASE]
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not healthy", never a traceback
        log.warning("health check failed: %s", type(exc).__name__)
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


def create_app(config: Config, *, clock: Callable[[], datetime] = utc_now,
               upgrade: bool = True, worker: Worker | None = None) -> web.Application:
    """Build the aiohttp app; what it runs starts on startup and stops on cleanup.

    `worker`: one of `serve --workers N`'s processes. All of them answer requests and keep
    a DingTalk Stream connection; only the first keeps the WeCom WebSocket (WeCom allows one
    per bot), the photo downloader, the scheduler and the outbox sender.
    """
    background = worker is None or worker.index == 0
    metrics = Metrics(worker.metrics_dir, worker.index) if worker is not None else Metrics()
    app = web.Application(client_max_size=config.server.max_body_bytes,
                          handler_args=metrics.handler_args())  # counts every response
    app[METRICS] = metrics
    app[CONFIG] = config
    app[CLOCK] = clock
    db = Database(config.database.url)
    app[DATABASE] = db
    directory = Directory(db.sessions, roster_ids=frozenset(
        p.name for p, _ in config.enabled_platforms() if p.roster_ids))
    services = Services(db=db, directory=directory, clock=clock,
                        files_dir=Path(config.storage.files_dir),
                        max_photo_bytes=config.storage.max_photo_bytes,
                        max_file_bytes=config.storage.max_file_bytes,
                        observe=metrics.observe_handler)
    services.chat_routes.update({p.name: p.chat_route for p, _ in config.enabled_platforms() if p.chat_route})
    app[SERVICES] = services
    lifecycle = app[LIFECYCLE] = Lifecycle()

    @asynccontextmanager
    async def database() -> AsyncIterator[None]:
        if upgrade:
            await db.upgrade()
        services.files_dir.mkdir(parents=True, exist_ok=True)
        await db.start()
        await directory.load()
        # everything loaded so far lives as long as the process: keep it out of the cyclic
        # GC's scans, which otherwise walk the whole roster on every full collection
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await db.close()

    @asynccontextmanager
    async def http_session() -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            app[HTTP] = session
            yield

    @asynccontextmanager
    async def dictionary() -> AsyncIterator[None]:
        # jieba's dictionary (~0.7 s) loads in a thread while the app serves: the first
        # reflection finds it ready, and no check-in waits behind it in the writer
        loading = asyncio.ensure_future(asyncio.to_thread(load_dictionary))
        try:
            yield
        finally:
            await loading

    lifecycle.add(Within("database", database))
    lifecycle.add(Within("http-session", http_session))
    lifecycle.add(Within("dictionary", dictionary))
    lifecycle.add(Within("metrics-publisher", metrics.publishing))
    if worker is not None:
        lifecycle.add(Within("orphan-watch", worker.orphan_watch))

    board = Switchboard(handle=partial(dispatch, services), clock=clock, db=db, directory=directory,
                        http=lambda: app[HTTP], max_body_bytes=config.server.max_body_bytes,
                        max_fetch_bytes=max(config.storage.max_photo_bytes,
                                            config.storage.max_file_bytes),
                        background=background,
                        fetchers=services.fetchers, repliers=services.repliers,
                        routes=services.routes)
    for platform, settings in config.enabled_platforms():
        platform.install(app, board, settings)
    for service in board.services:
        lifecycle.add(service)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view(metrics, db, clock))
    dashboard.install(app, config, services)
    charts = digest_charts.install(app, config, services)
    sender = app[SENDER] = Sender(db, services.routes, clock, lease=Lease(db, "outbox", clock))
    scheduler = app[SCHEDULER] = Scheduler(services, sender=sender, followers=charts.followers())
    downloader = app[DOWNLOADER] = PhotoDownloader(services)
    if background:
        lifecycle.add(downloader)  # its first pass resumes downloads left pending
        lifecycle.add(charts)
        lifecycle.add(sender)
        lifecycle.add(scheduler)

    async def run(app: web.Application) -> AsyncIterator[None]:
        await lifecycle.start()
        yield
        await lifecycle.stop()

    app.cleanup_ctx.append(run)
    return app
