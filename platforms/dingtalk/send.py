"""DingTalk proactive-send routes for the outbox (kernel.outbound.SendRoute).

- `dingtalk_robot`: a group's custom robot webhook, signed with its 加签 secret; can @ by
  userid or mobile; 20 messages a minute per robot, 10 minutes of penalty beyond (§3).
- `dingtalk_openapi`: the app robot's groupMessages/send; cannot @, so mentions are
  written as plain names (§6.1).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime

from kernel.outbound import Mention, OutboundMessage, SendOutcome
from platforms.dingtalk import wire
from platforms.dingtalk.api import DingTalkApi
from templates.render import md_escape

log = logging.getLogger(__name__)

PER_MINUTE = 20  # §3.4 documented for custom robots; applied to OpenAPI group sends too (§6.3)
# Text bytes per message the sender should split at; the rest of the body budget is for
# the at-list, mention tokens and JSON escaping (§2.4: webhook ≤ 20 000, msgParam ≤ 15 000).
ROBOT_TEXT_MAX_BYTES = 12_000
OPENAPI_TEXT_MAX_BYTES = 12_000


def _give_up(reason: str) -> SendOutcome:
    return SendOutcome("give_up", None, reason)


def _plain_names(mentions: tuple[Mention, ...], markdown: bool) -> str:
    names = [md_escape(m.name) if markdown else m.name for m in mentions if m.name]
    return " ".join(f"@{name}" for name in names)


def _append(text: str, extra: str) -> str:
    return f"{text}\n{extra}" if extra else text


class CustomRobotRoute:
    """Per-group custom robot webhook with 加签; only to the configured DingTalk origin."""

    kind = "dingtalk_robot"
    per_minute = PER_MINUTE
    charts = "markdown"  # a chart embedded by its URL
    max_bytes = ROBOT_TEXT_MAX_BYTES

    def __init__(self, api: DingTalkApi, oapi_base: str, clock: Callable[[], datetime]) -> None:
        self.api = api
        self.oapi_base = oapi_base
        self.clock = clock

    def rate_key(self, msg: OutboundMessage) -> str:
        """One limit per robot; the webhook URL is a credential, so only its hash is the key."""
        digest = hashlib.sha256((msg.route_url or "").encode()).hexdigest()[:32]
        return f"{self.kind}:{digest}"

    def body(self, msg: OutboundMessage) -> dict[str, object]:
        """The /robot/send body: @ by userid, else by mobile, else the name in plain text."""
        user_ids = [m.userid for m in msg.mentions if m.userid]
        mobiles = [m.mobile for m in msg.mentions if not m.userid and m.mobile]
        named_only = tuple(m for m in msg.mentions if not m.userid and not m.mobile)
        text = _append(msg.text, _plain_names(named_only, msg.markdown))
        uuid = f"yanxiu-outbox-{msg.outbox_id}"  # §3.3: a retried send is not posted twice
        if msg.markdown:
            return wire.markdown_body(msg.title or wire.DEFAULT_MARKDOWN_TITLE, text, user_ids,
                                      msg_uuid=uuid, at_mobiles=mobiles)
        return wire.text_body(text, user_ids, mobiles, msg_uuid=uuid)

    async def send(self, msg: OutboundMessage) -> SendOutcome:
        if not msg.route_url or not wire.is_allowed_origin(msg.route_url, self.oapi_base):
            log.error("outbox %s: custom robot webhook is not on the configured DingTalk origin",
                      msg.outbox_id)
            return _give_up("webhook_not_allowed")
        body = self.body(msg)
        if len(json.dumps(body, ensure_ascii=False).encode()) > wire.WEBHOOK_BODY_MAX_BYTES:
            return _give_up("message_too_long")
        url = msg.route_url
        if msg.route_secret:  # a fresh timestamp per request (§3.2)
            now_ms = int(self.clock().timestamp() * 1000)
            url = wire.custom_robot_signed_url(url, msg.route_secret, now_ms)
        return await self.api.post_webhook(url, body)


class OpenApiGroupRoute:
    """The app robot's groupMessages/send to the group's openConversationId."""

    kind = "dingtalk_openapi"
    per_minute = PER_MINUTE
    max_bytes = OPENAPI_TEXT_MAX_BYTES
    charts = "markdown"  # a chart embedded by its URL

    def __init__(self, api: DingTalkApi) -> None:
        self.api = api

    def rate_key(self, msg: OutboundMessage) -> str:
        return f"{self.kind}:{msg.conversation_id}"

    async def send(self, msg: OutboundMessage) -> SendOutcome:
        text = _append(msg.text, _plain_names(msg.mentions, msg.markdown))
        title = (msg.title or wire.DEFAULT_MARKDOWN_TITLE) if msg.markdown else None
        return await self.api.group_send(msg.conversation_id, text, title)
