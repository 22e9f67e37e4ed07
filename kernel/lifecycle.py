"""One owner for everything that runs in the background: started in the order it was added,
stopped in the reverse order, so what depends on another thing stops before it.

A `Service` is anything with `name`, `start()` and `stop()` (the scheduler, the outbox
sender, the photo downloader, a platform's Stream or WebSocket client, the metrics
publisher…). `start()` returns once the service runs; `stop()` once it has stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

log = logging.getLogger(__name__)


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Lifecycle:
    """Starts services in order, stops the started ones in reverse; a failed start stops the
    ones already running before it raises."""

    def __init__(self) -> None:
        self._services: list[Service] = []
        self._running: list[Service] = []

    def add(self, service: Service) -> None:
        self._services.append(service)

    @property
    def order(self) -> list[str]:
        return [s.name for s in self._services]

    async def start(self) -> None:
        for service in self._services:
            try:
                await service.start()
            except BaseException:
                await self.stop()
                raise
            self._running.append(service)
            log.debug("started %s", service.name)

    async def stop(self) -> None:
        while self._running:
            service = self._running.pop()
            try:
                await service.stop()
            except Exception:  # the others must still stop
                log.exception("stopping %s failed", service.name)


class Within:
    """A service made of an async context manager: entered on start, left on stop."""

    def __init__(self, name: str, factory: Callable[[], AbstractAsyncContextManager[object]]) -> None:
        self.name = name
        self._factory = factory
        self._entered: AbstractAsyncContextManager[object] | None = None

    async def start(self) -> None:
        entered = self._factory()
        await entered.__aenter__()
        self._entered = entered

    async def stop(self) -> None:
        entered, self._entered = self._entered, None
        if entered is not None:
            await entered.__aexit__(None, None, None)
