"""DingTalk (钉钉): the enterprise internal robot in HTTP-callback or Stream mode, and its
proactive-send routes (a group's custom robot with 加签; the app robot's group send).

Layout: `wire` (formats and signatures, pure), `frames` (Stream frames), `results`
(what an answer means), `api` (the HTTP client, image fetcher, session-webhook replier),
`send` (outbox routes), `inbound` (one message to the app), `callback` (the HTTP endpoint),
`stream` (the Stream client). Section numbers refer to docs/platforms/dingtalk.md.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kernel.settings import ConfigError
from platforms.base import Platform, Switchboard
from platforms.dingtalk import stream, wire
from platforms.dingtalk.api import DingTalkApi, DingTalkImageFetcher, SessionWebhookReplier
from platforms.dingtalk.callback import CALLBACK_PATH, CallbackEndpoint
from platforms.dingtalk.send import CustomRobotRoute, OpenApiGroupRoute
from platforms.dingtalk.settings import DingTalkConfig


class DingTalkLink:
    """The app's side of DingTalk once its HTTP session is open: API client, image fetcher,
    replier and send routes plugged into the switchboard, and (Stream mode) the connection."""

    name = "dingtalk"

    def __init__(self, board: Switchboard, settings: DingTalkConfig) -> None:
        self.board, self.settings = board, settings
        self.stream: stream.StreamClient | None = None

    async def start(self) -> None:
        board, dt = self.board, self.settings
        api = DingTalkApi(board.http(), dt, board.clock)
        replier = SessionWebhookReplier(api, dt.oapi_base, board.clock)
        board.fetchers[wire.PLATFORM] = DingTalkImageFetcher(api, board.max_fetch_bytes)
        board.repliers[wire.PLATFORM] = replier
        board.routes[CustomRobotRoute.kind] = CustomRobotRoute(api, dt.oapi_base, board.clock)
        board.routes[OpenApiGroupRoute.kind] = OpenApiGroupRoute(api)
        if dt.mode == "stream":
            # every worker its own Stream connection: DingTalk gives each push to one of an
            # app's connections, so Stream mode spreads over the workers too
            self.stream = stream.StreamClient(api, board, replier)
            await self.stream.start()

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None


def install(app: web.Application, board: Switchboard, settings: Any) -> None:
    """The callback route (HTTP mode) now; the rest once the app's HTTP session is open."""
    dt: DingTalkConfig = settings
    if not dt.app_secret:
        raise ConfigError("dingtalk.app_secret: required when dingtalk.enabled is true")
    if dt.mode == "stream" and not dt.app_key:
        raise ConfigError("dingtalk.app_key: required when dingtalk.mode is \"stream\"")
    if dt.mode == "http":
        endpoint = CallbackEndpoint(board, dt.app_secret.value, board.max_body_bytes)
        app.router.add_post(CALLBACK_PATH, endpoint.handle)
    board.services.append(DingTalkLink(board, dt))


def bind_route(webhook: bool) -> str:
    """`group bind`: a custom robot webhook can @ people; without one, the app robot's group send."""
    return CustomRobotRoute.kind if webhook else OpenApiGroupRoute.kind


PLATFORM = Platform(name=wire.PLATFORM, label="钉钉", settings=DingTalkConfig, install=install,
                    bind_route=bind_route)
