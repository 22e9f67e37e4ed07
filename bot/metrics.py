"""GET /metrics in the Prometheus text format: requests by endpoint and outcome, handler
latency by verb, outbox depth and failures by route, who holds the scheduler lease."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from storage.db import Database
from storage.queries.metrics import live_leases, outbox_by_state_and_route

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _RequestsAndLatency:
    """A custom collector for the two figures touched on every request.

    prometheus_client's Counter and Histogram take a lock and walk the buckets in Python on
    each call (perf stat: ~8k and ~12k instructions); these are plain counters kept on the
    event loop, turned into metric families only when /metrics is scraped.
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, list[float]] = {}  # verb -> [count per bucket…, +Inf, sum]

    def count(self, endpoint: str, status: int) -> None:
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def observe(self, verb: str, seconds: float) -> None:
        row = self.latency.get(verb)
        if row is None:
            row = self.latency[verb] = [0.0] * (len(self.buckets) + 2)
        row[bisect_left(self.buckets, seconds)] += 1  # le: a value on a bound is in it
        row[-1] += seconds

    def snapshot(self) -> dict[str, Any]:
        return {"requests": [[e, st, n] for (e, st), n in self.requests.items()],
                "latency": self.latency}

    def merged(self, others: list[dict[str, Any]]) -> _RequestsAndLatency:
        """These counts plus other workers' snapshots (a worker's figures are its own)."""
        total = _RequestsAndLatency(self.buckets)
        for snap in [self.snapshot(), *others]:
            for endpoint, status, n in snap["requests"]:
                total.requests[(endpoint, status)] = total.requests.get((endpoint, status), 0) + n
            for verb, row in snap["latency"].items():
                mine = total.latency.setdefault(verb, [0.0] * (len(self.buckets) + 2))
                for i, v in enumerate(row):
                    mine[i] += v
        return total

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("yanxiu_http_requests", "HTTP requests by endpoint and outcome",
                                       labels=["endpoint", "status"])
        for (endpoint, status), n in sorted(self.requests.items()):
            requests.add_metric([endpoint, str(status)], n)
        yield requests
        latency = HistogramMetricFamily(
            "yanxiu_handler_seconds", "Time from a parsed message to its committed reply, by verb",
            labels=["verb"])
        bounds = [*(f"{b}" for b in self.buckets), "+Inf"]
        for verb, row in sorted(self.latency.items()):
            cumulative = list(accumulate(row[:-1]))
            latency.add_metric([verb], list(zip(bounds, cumulative, strict=True)), sum_value=row[-1])
        yield latency


class _AllWorkers:
    """`serve --workers N`: each worker publishes its request counts to a shared folder
    every PUBLISH_SECONDS; whichever worker is scraped adds the others' to its own.

    Files are named by process, and a dead worker's file stays: its restarted successor
    counts from zero in a file of its own, so the sums never go down (which Prometheus
    would read as a reset of the whole counter)."""

    def __init__(self, hot: _RequestsAndLatency, folder: Path, worker: int) -> None:
        self.hot = hot
        self.folder = folder
        self.own = folder / f"worker-{worker}-{os.getpid()}.json"

    def publish(self) -> None:
        tmp = self.own.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.hot.snapshot()), encoding="utf-8")
        os.replace(tmp, self.own)

    def others(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.folder.glob("worker-*.json")):
            if path != self.own:
                with contextlib.suppress(OSError, ValueError):  # a worker not yet started
                    found.append(json.loads(path.read_text(encoding="utf-8")))
        return found

    def collect(self) -> Iterator[Metric]:
        yield from self.hot.merged(self.others()).collect()


PUBLISH_SECONDS = 1.0


class Metrics:
    """One registry per app, so several apps (tests, two instances) never share counters."""

    def __init__(self, shared_dir: Path | None = None, worker: int = 0) -> None:
        self.registry = CollectorRegistry()
        self._hot = _RequestsAndLatency(LATENCY_BUCKETS)
        self._all = _AllWorkers(self._hot, shared_dir, worker) if shared_dir is not None else None
        self.registry.register(self._all or self._hot)
        self.outbox = Gauge("yanxiu_outbox_messages", "Outbox rows by state and send route",
                            ["state", "route"], registry=self.registry)
        self.lease = Gauge("yanxiu_lease_holder", "1 for the process holding each lease",
                           ["lease", "holder"], registry=self.registry)

    @contextlib.asynccontextmanager
    async def publishing(self) -> AsyncIterator[None]:
        """While inside: with several workers, publish this one's counts once a second."""
        if self._all is None:
            yield
            return
        shared = self._all

        async def loop() -> None:
            while True:
                await asyncio.sleep(PUBLISH_SECONDS)
                try:
                    shared.publish()
                except OSError as exc:  # a full disk: /metrics shows older counts meanwhile
                    log.warning("could not publish this worker's metrics: %s", exc.strerror)

        shared.publish()
        task = asyncio.create_task(loop(), name="metrics-publisher")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        shared.publish()

    def observe_handler(self, verb: str, seconds: float) -> None:
        self._hot.observe(verb, seconds)

    def count_response(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """Every response, errors and unmatched paths included, by endpoint and status."""
        match_info = getattr(request, "match_info", None)
        resource = match_info.route.resource if match_info is not None else None
        self._hot.count(resource.canonical if resource is not None else "unmatched", response.status)

    def handler_args(self) -> dict[str, Any]:
        """`web.Application(handler_args=…)`: count each response from aiohttp's access-log
        hook, which every runner calls once a response is sent, whatever produced it.

        Neither a middleware nor `on_response_prepare`: with no middleware aiohttp calls
        the handler directly, and the signal's dispatch alone cost ~9k instructions a
        request in the check-in burst; this hook is a plain method call.
        """
        count = self.count_response

        class ResponseCounter(AbstractAccessLogger):
            def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
                count(request, response)

        # the logger is only a required argument: ResponseCounter never writes to it
        return {"access_log_class": ResponseCounter, "access_log": logging.getLogger("yanxiu.requests")}

    async def refresh(self, db: Database, now: datetime) -> None:
        async with db.sessions() as session:
            depth = await outbox_by_state_and_route(session)
            leases = await live_leases(session, now)
        self.outbox.clear()
        for state, route, n in depth:
            self.outbox.labels(state, route).set(n)
        self.lease.clear()
        for name, holder in leases:
            self.lease.labels(name, holder).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_view(metrics: Metrics, db: Database, clock: Callable[[], datetime]) -> Handler:
    async def view(request: web.Request) -> web.Response:
        await metrics.refresh(db, clock())
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return view
