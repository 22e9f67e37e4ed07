"""What a chat platform is to the rest of the bot, and what the app lends it.

A `Platform` names its identity space (the `(platform, user id)` half of an identity), its
config section, how `group bind` routes its proactive sends, and `install`, which mounts its
endpoints and plugs its fetcher, replier, send routes and long-running clients into the
`Switchboard`. Its adapters turn the wire into `IncomingMessage`s and hand them to
`Switchboard.handle` (the app's dispatch); nothing outside `platforms/` knows a wire format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.lifecycle import Service
from kernel.messages import Dispatched, IncomingMessage, OutgoingText
from kernel.outbound import ImageFetcher, Replier, SendRoute
from storage.db import Database
from storage.directory import Directory

# keeps what the message showed and the reply it got in the same transaction (the simulator)
Record = Callable[[AsyncSession, OutgoingText | None], Awaitable[None]]


class Handle(Protocol):
    """The app's way with one message: stored once, handled, committed, then answered."""

    async def __call__(self, msg: IncomingMessage, *, markdown: bool = False,
                       record: Record | None = None) -> Dispatched: ...


@dataclass
class Switchboard:
    """What the app lends each platform: where messages go, and where the platform plugs in."""

    handle: Handle
    clock: Callable[[], datetime]
    db: Database
    directory: Directory
    http: Callable[[], aiohttp.ClientSession]  # the app's client session, once it is open
    max_body_bytes: int = 1024 * 1024
    max_fetch_bytes: int = 20 * 1024 * 1024  # the largest picture or document a fetcher takes
    background: bool = True  # this process keeps the long connections (worker 0, or alone)
    fetchers: dict[str, ImageFetcher] = field(default_factory=dict)  # by platform
    repliers: dict[str, Replier] = field(default_factory=dict)  # by platform
    routes: dict[str, SendRoute] = field(default_factory=dict)  # by route kind
    services: list[Service] = field(default_factory=list)  # started and stopped by the app


@dataclass(frozen=True, slots=True)
class Platform:
    """One chat platform, as the app registers it (platforms.PLATFORMS)."""

    name: str  # the identity space of its user ids, and its config section: "dingtalk"
    label: str  # how people call it: "钉钉"
    settings: type  # its config section's dataclass (with an `enabled` flag)
    install: Callable[[web.Application, Switchboard, Any], object]
    # the send route `yanxiu group bind` stores: given a webhook (True) or not; None: replies only
    bind_route: Callable[[bool], str | None] | None = None
    # the send route a group gets when it is bound in chat (绑定) without one of its own
    chat_route: str | None = None
    roster_ids: bool = False  # its sender ids are roster person ids (the simulator)
    loopback_only: bool = False  # it trusts whoever reaches it: never beyond 127.0.0.1

    def enabled(self, settings: Any) -> bool:
        return bool(getattr(settings, "enabled", False))
