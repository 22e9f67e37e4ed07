"""A lease held in the database: only one process of a deployment does a singleton's work.

The holder renews it every `renew_s`; it lasts `ttl_s`, so a dead holder's lease is taken
over within `ttl_s`. Times come from the injected clock.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from storage.db import Database
from storage.queries.lease import release_lease, take_lease

log = logging.getLogger(__name__)

TTL_S = 30.0
RENEW_S = 10.0


def holder_name() -> str:
    """hostname:pid:random — unique per process, readable by an operator."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """`await hold()` says whether this process holds the lease, renewing it when due."""

    def __init__(self, db: Database, name: str, clock: Callable[[], datetime], *,
                 holder: str | None = None, ttl_s: float = TTL_S, renew_s: float = RENEW_S,
                 on_acquired: Callable[[str | None], Awaitable[None]] | None = None) -> None:
        self.db, self.name, self.clock = db, name, clock
        self.holder = holder or holder_name()
        self.ttl, self.renew = timedelta(seconds=ttl_s), timedelta(seconds=renew_s)
        self.on_acquired = on_acquired  # called with the previous holder when we take it over
        self._until: datetime | None = None  # our lease's end as last written

    @property
    def held(self) -> bool:
        """Held as far as this process knows (renewed and not yet run out)."""
        return self._until is not None and self.clock() < self._until

    async def hold(self) -> bool:
        """True while this process holds the lease; renews it (or tries to take it) when due."""
        now = self.clock()
        if self._until is not None and now < self._until - self.ttl + self.renew:
            return True
        try:
            held, previous = await self.db.write(
                lambda s: take_lease(s, self.name, self.holder, now, self.ttl))
        except Exception as exc:  # a database hiccup: keep what we had until it runs out
            log.warning("lease %s: renewal failed (%s)", self.name, type(exc).__name__)
            return self.held
        was_ours = self._until is not None
        self._until = now + self.ttl if held else None
        if held and (previous != self.holder or not was_ours):
            log.info("lease %s taken by %s (previous holder %s)", self.name, self.holder, previous)
            if self.on_acquired is not None:
                await self.on_acquired(previous)
        elif was_ours and not held:
            log.warning("lease %s lost to another process", self.name)
        return held

    async def release(self) -> None:
        if self._until is None:
            return
        self._until = None
        try:
            await self.db.write(lambda s: release_lease(s, self.name, self.holder))
        except Exception as exc:
            log.warning("lease %s: release failed (%s: %s)", self.name, type(exc).__name__, exc)
