"""WeCom (企业微信): the AI bot (智能机器人) for groups — HTTP callbacks or its WebSocket long
connection — the self-built app for 1:1 chats, and each group's robot webhook for proactive
sends.

Layout: `wire` (formats, pure), `crypto` (the message crypto), `api` (the HTTP client, image
fetcher, replier), `webhook` (the outbox route), `ws` (the WebSocket client), `adapter`
(the endpoints and their wiring). Section numbers refer to docs/platforms/wecom.md.
"""

from __future__ import annotations

from platforms.base import Platform
from platforms.wecom import wire
from platforms.wecom.adapter import install
from platforms.wecom.settings import WeComConfig
from platforms.wecom.webhook import KIND as WEBHOOK_KIND


def bind_route(webhook: bool) -> str | None:
    """`group bind`: a group's robot webhook; without one, the group only gets replies."""
    return WEBHOOK_KIND if webhook else None


PLATFORM = Platform(name=wire.PLATFORM, label="企业微信", settings=WeComConfig, install=install,
                    bind_route=bind_route)
