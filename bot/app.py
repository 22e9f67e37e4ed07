"""The application factory: routes, and every long-lived resource opened in cleanup_ctx."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import text

from bot.config import Config
from bot.dispatch import Services
from bot.downloads import PhotoDownloader
from bot.lease import Lease
from bot.metrics import Metrics, metrics_view
from bot.outbox import Sender
from bot.platforms import sim
from bot.platforms.sim_route import SimRoute
from bot.scheduler import Scheduler
from bot.workers import Worker
from kernel.language import load_dictionary
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


async def to_simulator(request: web.Request) -> web.Response:
    raise web.HTTPFound("/sim/")


def create_app(config: Config, *, clock: Callable[[], datetime] = utc_now,
               upgrade: bool = True, worker: Worker | None = None) -> web.Application:
    """Build the aiohttp app; resources open on startup and close on cleanup.

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
    services = Services(db=db, directory=Directory(db.sessions), clock=clock,
                        files_dir=Path(config.storage.files_dir),
                        max_photo_bytes=config.storage.max_photo_bytes,
                        observe=metrics.observe_handler)
    app[SERVICES] = services

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        if upgrade:
            await db.upgrade()
        services.files_dir.mkdir(parents=True, exist_ok=True)
        await db.start()
        await services.directory.load()
        # everything loaded so far lives as long as the process: keep it out of the cyclic
        # GC's scans, which otherwise walk the whole roster on every full collection
        gc.collect()
        gc.freeze()
        yield
        await db.close()

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            app[HTTP] = session
            yield

    async def dictionary_ctx(app: web.Application) -> AsyncIterator[None]:
        # jieba's dictionary (~0.7 s) loads in a thread while the app serves: the first
        # reflection finds it ready, and no check-in waits behind it in the writer
        loading = asyncio.ensure_future(asyncio.to_thread(load_dictionary))
        yield
        await loading

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(http_ctx)
    app.cleanup_ctx.append(dictionary_ctx)
    app.cleanup_ctx.append(metrics.publishing_ctx)
    if worker is not None:
        app.cleanup_ctx.append(worker.orphan_ctx)
    app[DOWNLOADER] = PhotoDownloader(services)

    async def downloads_ctx(app: web.Application) -> AsyncIterator[None]:
        await app[DOWNLOADER].start()  # its first pass resumes downloads left pending
        yield
        await app[DOWNLOADER].stop()

    if background:
        app.cleanup_ctx.append(downloads_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view(metrics, db, clock))
    if config.sim.enabled:  # `yanxiu demo`, or `[sim] enabled = true` on a loopback host
        app[sim.SERVICES] = services
        sim.add_routes(app)
        app.router.add_get("/", to_simulator)
    if config.dingtalk.enabled:  # callback route or Stream, fetcher, replier, send routes
        from bot.platforms import dingtalk

        # every worker its own Stream connection: DingTalk gives each push to one of an
        # app's connections, so Stream mode spreads over the workers too
        dingtalk.install(app, config, services, HTTP)
    if config.wecom.enabled:  # /wecom/bot, /wecom/callback or WebSocket, fetcher, replier, webhook route
        from bot.platforms import wecom

        wecom.install(app, config, services, HTTP, long_connection=background)
    from bot import dashboard, digest_charts  # /dashboard/…, /charts/…, 后台 links, charts

    dashboard.install(app, config, services)
    digest_charts.install(app, config, services)
    _install_scheduling(app, config, services, run=background)
    return app


def _install_scheduling(app: web.Application, config: Config, services: Services,
                        *, run: bool = True) -> None:
    """The outbox sender and the scheduler; started last, so every send route is registered."""
    if config.sim.enabled:
        services.routes.setdefault("sim", SimRoute(services.db, services.clock))
    sender = app[SENDER] = Sender(services.db, services.routes, services.clock,
                                  lease=Lease(services.db, "outbox", services.clock))
    scheduler = app[SCHEDULER] = Scheduler(services, sender=sender)

    async def scheduling_ctx(app: web.Application) -> AsyncIterator[None]:
        await sender.start()
        await scheduler.start()
        yield
        await scheduler.stop()
        await sender.stop()

    if run:
        app.cleanup_ctx.append(scheduling_ctx)
