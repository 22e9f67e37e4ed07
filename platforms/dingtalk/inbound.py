"""One DingTalk robot message, whichever way it came (HTTP callback or Stream): parsed,
handed to the app (stored once, handled, committed), and what to answer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernel.messages import OutgoingText, Reply
from platforms.base import Switchboard
from platforms.dingtalk import wire
from templates.render import render_reply

log = logging.getLogger(__name__)

REPLY_AS_MARKDOWN = False  # chat replies are plain text: it renders line breaks as typed


@dataclass(slots=True)  # not frozen: built once per message (see kernel/messages.py)
class Handled:
    """The outcome of one robot message, for the HTTP response or the Stream ACK."""

    status: int  # 200, or 400 for a malformed message
    reply: OutgoingText | None
    duplicate: bool
    reply_context: Mapping[str, Any] | None  # where a later reply goes (sessionWebhook…)


def _unknown_sender(payload: Mapping[str, Any]) -> Handled:
    """A sender without a staff id (external member, or a robot not yet published)."""
    nick = payload.get("senderNick")
    is_group = payload.get("conversationType") in ("2", 2)
    reply = render_reply(Reply("unknown_sender", {"sender": nick if isinstance(nick, str) else "",
                                                  "is_group": is_group}), markdown=REPLY_AS_MARKDOWN)
    context = {"session_webhook": payload.get("sessionWebhook"),
               "session_webhook_expires_ms": payload.get("sessionWebhookExpiredTime"),
               "is_group": is_group}
    return Handled(200, reply, False, context)


async def handle_robot_message(board: Switchboard, payload: Any) -> Handled:
    """Parse a robot message (HTTP body or Stream data), dispatch it, return what to answer."""
    parsed = wire.parse_callback(payload, board.clock())
    if isinstance(parsed, wire.ParseError):
        if parsed.reason == "malformed":
            return Handled(400, None, False, None)
        if parsed.reason == "no_staff_id":
            return _unknown_sender(payload)
        if parsed.reason == "quota_paused":
            log.warning("dingtalk: the org's Webhook&Stream quota is exhausted; message dropped")
        else:
            log.warning("dingtalk: platform error payload (%s); message dropped", parsed.reason)
        return Handled(200, None, False, None)
    msg, _ = parsed  # the message already carries its reply context
    result = await board.handle(msg, markdown=REPLY_AS_MARKDOWN)
    return Handled(200, result.reply, result.duplicate, msg.reply_context)
