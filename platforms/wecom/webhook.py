"""Proactive sends to a WeCom group through its robot webhook (send route "wecom_webhook", §1).

The webhook `key` is the whole credential: it is never logged, never put in a reason, and
the rate key is a digest of it. The URL must be `{api_base}/cgi-bin/webhook/send?key=…`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from kernel.outbound import Mention, OutboundMessage, SendOutcome
from platforms.wecom import wire

KIND = "wecom_webhook"
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # §1.2: JPG or PNG only


def _give_up(reason: str) -> SendOutcome:
    return SendOutcome("give_up", None, reason)


def _mention_names(mentions: Sequence[Mention], *, with_mobile: bool) -> str:
    """Plain "@name" for people the body cannot @ by userid (or mobile)."""
    names = [f"@{m.name}" for m in mentions
             if not m.userid and not (with_mobile and m.mobile) and m.name]
    return " ".join(names)


def text_body(text: str, mentions: Sequence[Mention] = ()) -> dict[str, Any]:
    """§1.2 text: content ≤ 2048 bytes; mentioned_list by userid, mentioned_mobile_list by mobile."""
    userids = list(dict.fromkeys(m.userid for m in mentions if m.userid))
    mobiles = list(dict.fromkeys(m.mobile for m in mentions if not m.userid and m.mobile))
    extra = _mention_names(mentions, with_mobile=True)
    tail = f"\n{extra}" if extra else ""
    room = wire.WEBHOOK_TEXT_MAX_BYTES - len(tail.encode("utf-8"))
    body: dict[str, Any] = {"content": wire.truncate_utf8(text, room) + tail}
    if userids:
        body["mentioned_list"] = userids
    if mobiles:
        body["mentioned_mobile_list"] = mobiles
    return {"msgtype": "text", "text": body}


def markdown_body(text: str, mentions: Sequence[Mention] = ()) -> dict[str, Any]:
    """§1.2 markdown: content ≤ 4096 bytes; mentions are `<@userid>` inside the content."""
    tags = [f"<@{uid}>" for uid in dict.fromkeys(m.userid for m in mentions if m.userid)
            if f"<@{uid}>" not in text]
    extra = " ".join(filter(None, [" ".join(tags), _mention_names(mentions, with_mobile=False)]))
    tail = f"\n{extra}" if extra else ""
    room = wire.WEBHOOK_MARKDOWN_MAX_BYTES - len(tail.encode("utf-8"))
    return {"msgtype": "markdown", "markdown": {"content": wire.truncate_utf8(text, room) + tail}}


def image_body(raw: bytes) -> dict[str, Any]:
    """§1.2 image: base64 of the raw bytes and the hex md5 of the raw bytes."""
    return {"msgtype": "image", "image": {"base64": base64.b64encode(raw).decode("ascii"),
                                          "md5": hashlib.md5(raw).hexdigest()}}


def _read_image(path: str) -> bytes | SendOutcome:
    try:
        file = Path(path)
        if file.stat().st_size > wire.WEBHOOK_IMAGE_MAX_BYTES:
            return _give_up("image larger than 2 MB")
        raw = file.read_bytes()
    except OSError:
        return _give_up("image file missing")
    if len(raw) > wire.WEBHOOK_IMAGE_MAX_BYTES:
        return _give_up("image larger than 2 MB")
    if not raw.startswith(_IMAGE_MAGIC):
        return _give_up("image is not JPG or PNG")
    return raw


class WeComWebhookRoute:
    """kernel.outbound.SendRoute for WeCom group robots: one rate limit (20/min) per key.

    A row with `image_path` is sent as one image message (its text is not sent: put a
    caption in its own row), else as markdown or text.
    """

    kind = KIND
    charts = "image"  # a chart sent as the picture itself
    per_minute = 20  # §1.4
    # what the sender should split text to: the text cap; markdown (4096) keeps the rest
    # for `<@userid>` mentions
    max_bytes = wire.WEBHOOK_TEXT_MAX_BYTES
    max_markdown_bytes = wire.WEBHOOK_MARKDOWN_MAX_BYTES

    def __init__(self, api_base: str, http: Callable[[], aiohttp.ClientSession]) -> None:
        self._api_base = api_base
        self._http = http

    def __repr__(self) -> str:
        return "WeComWebhookRoute()"

    def rate_key(self, msg: OutboundMessage) -> str:
        """One limit per webhook key; a digest, so a logged rate key cannot leak the key."""
        key = wire.webhook_key(msg.route_url, self._api_base)
        if key is None:
            return "invalid"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]

    async def send(self, msg: OutboundMessage) -> SendOutcome:
        if wire.webhook_key(msg.route_url, self._api_base) is None:
            return _give_up("webhook URL is not a group-robot webhook on the configured API origin")
        body: dict[str, Any]
        if msg.image_path:
            raw = await asyncio.to_thread(_read_image, msg.image_path)
            if isinstance(raw, SendOutcome):
                return raw
            body = image_body(raw)
        elif msg.markdown:
            body = markdown_body(msg.text, msg.mentions)
        else:
            body = text_body(msg.text, msg.mentions)
        assert msg.route_url is not None
        try:
            async with self._http().post(msg.route_url, json=body, allow_redirects=False) as resp:
                status = resp.status
                try:
                    answer = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    answer = None
        except TimeoutError:
            return SendOutcome("retry", None, "timeout")
        except aiohttp.ClientError as exc:  # its text may hold the URL: name the type only
            return SendOutcome("retry", None, f"network error ({type(exc).__name__})")
        return wire.classify_api_result(status, answer)
