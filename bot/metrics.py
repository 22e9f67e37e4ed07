"""GET /metrics in the Prometheus text format: requests by endpoint and outcome, handler
latency by verb, outbox depth and failures by route, who holds the scheduler lease."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from storage.db import Database
from storage.queries.metrics import live_leases, outbox_by_state_and_route

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """One registry per app, so several apps (tests, two instances) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("yanxiu_http_requests", "HTTP requests by endpoint and outcome",
                                ["endpoint", "status"], registry=self.registry)
        self.handler_seconds = Histogram(
            "yanxiu_handler_seconds", "Time from a parsed message to its committed reply, by verb",
            ["verb"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.outbox = Gauge("yanxiu_outbox_messages", "Outbox rows by state and send route",
                            ["state", "route"], registry=self.registry)
        self.lease = Gauge("yanxiu_lease_holder", "1 for the process holding each lease",
                           ["lease", "holder"], registry=self.registry)

        self._children: dict[tuple[str, ...], Any] = {}  # labels() is a dict walk + lock each call

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_handler(self, verb: str, seconds: float) -> None:
        self._child(self.handler_seconds, verb).observe(seconds)

    async def count_response(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """`on_response_prepare`: every response, errors included, by endpoint and status.

        A signal rather than a middleware: with no middleware aiohttp calls the handler
        directly, which the check-in burst notices.
        """
        match_info = getattr(request, "match_info", None)
        resource = match_info.route.resource if match_info is not None else None
        endpoint = resource.canonical if resource is not None else "unmatched"
        self._child(self.requests, endpoint, str(response.status)).inc()

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


def elapsed_since(start: float) -> float:
    return time.perf_counter() - start
