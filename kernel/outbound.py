"""The boundary between proactive sending and the platforms.

The outbox stores an `OutboundMessage`'s parts; a `SendRoute` per route kind (each platform
registers its own) turns it into a platform request and
answers with a `SendOutcome` the sender can act on. `ImageFetcher` and `Replier` are how
the photo downloader reaches a platform without knowing its wire format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kernel.messages import ImageRef, OutgoingText


@dataclass(frozen=True, slots=True)
class SendOutcome:
    kind: Literal["ok", "retry", "give_up"]
    retry_after_s: float | None  # None with kind="retry" = the sender's exponential backoff
    reason: str  # never contains a URL, token or secret


OK = SendOutcome("ok", None, "ok")


@dataclass(frozen=True, slots=True)
class Mention:
    """Someone a proactive message @-mentions; each route renders it in its own dialect."""

    name: str
    userid: str | None = None  # the platform userid of the group's platform
    mobile: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One proactive message for one group, as the outbox stored it."""

    outbox_id: int
    platform: str  # the group's platform: sim | dingtalk | wecom
    conversation_id: str
    route_kind: str
    route_url: str | None
    route_secret: str | None  # never logged
    text: str
    markdown: bool = False
    title: str = ""
    mentions: tuple[Mention, ...] = ()
    image_path: str | None = None


class SendRoute(Protocol):
    """Delivers outbox rows of one route kind."""

    kind: str
    per_minute: int  # the platform's limit per robot/webhook
    # optional `charts`: "image" (it sends a picture) or "markdown" (it embeds one by URL)

    def rate_key(self, msg: OutboundMessage) -> str:
        """Messages sharing a key share one rate limit (e.g. one custom robot's webhook)."""

    async def send(self, msg: OutboundMessage) -> SendOutcome: ...


@dataclass(frozen=True, slots=True)
class FetchError:
    reason: str
    retry: bool = True


class ImageFetcher(Protocol):
    """Gets a picture's bytes from its platform (download code, encrypted URL, media id)."""

    async def fetch(self, image: ImageRef) -> bytes | FetchError: ...


class Replier(Protocol):
    """Answers a message after its request was acknowledged (e.g. "已收到第 2/3 张").

    `context` is the adapter's own opaque `IncomingMessage.reply_context`.
    """

    async def reply(self, context: Mapping[str, Any], text: OutgoingText) -> SendOutcome: ...
