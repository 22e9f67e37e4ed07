"""DingTalk enterprise robot adapter: `POST /dingtalk/callback` (HTTP mode) and start-up wiring.

A callback is verified (timestamp + sign, §1.1) before its body is even read; a bad or
missing signature, or a timestamp more than an hour off, is 401; a body over the size
limit is 413; bad JSON or a malformed message is 400 — none of them touches the database.
A valid message goes through `dispatch` (stored once per msgId, handled, committed) and
only then is answered, with the reply in the response body (§2.1). Stream mode
(dingtalk_stream.py) shares `handle_robot_message`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bot.config import Config, ConfigError
from bot.dispatch import Services, dispatch
from bot.platforms import dingtalk_wire as wire
from bot.platforms.dingtalk_api import DingTalkApi, DingTalkImageFetcher, SessionWebhookReplier
from bot.platforms.dingtalk_send import CustomRobotRoute, OpenApiGroupRoute
from kernel.messages import OutgoingText, Reply
from templates.render import render_reply

log = logging.getLogger(__name__)

CALLBACK_PATH = "/dingtalk/callback"
REPLY_AS_MARKDOWN = False  # chat replies are plain text: it renders line breaks as typed
READ_CHUNK = 64 * 1024
JSON = "application/json"


@dataclass(slots=True)  # not frozen: built once per message (see bot/messages.py)
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


async def handle_robot_message(services: Services, payload: Any) -> Handled:
    """Parse a robot message (HTTP body or Stream data), dispatch it, return what to answer."""
    parsed = wire.parse_callback(payload, services.clock())
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
    result = await dispatch(services, msg, markdown=REPLY_AS_MARKDOWN)
    return Handled(200, result.reply, result.duplicate, msg.reply_context)


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` bytes."""
    if request.content_length is not None:
        if request.content_length > limit:
            return None
        return await request.read()  # the length is known and within the limit
    data = bytearray()
    try:
        async for chunk in request.content.iter_chunked(READ_CHUNK):
            data += chunk
            if len(data) > limit:
                return None
    except web.HTTPRequestEntityTooLarge:
        return None
    return bytes(data)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


class CallbackEndpoint:
    """`POST /dingtalk/callback`: verify → size → JSON → dispatch → reply in the body."""

    def __init__(self, services: Services, app_secret: str, max_body_bytes: int) -> None:
        self.services = services
        self._secret = app_secret
        self.max_body_bytes = max_body_bytes

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return _error(413, "body too large")
        now_ms = int(self.services.clock().timestamp() * 1000)
        problem = wire.verify_callback(request.headers.get("timestamp"),
                                       request.headers.get("sign"), self._secret, now_ms)
        if problem is not None:
            log.info("dingtalk callback rejected: %s", problem)
            return _error(401, "signature check failed")
        raw = await read_capped(request, self.max_body_bytes)
        if raw is None:
            return _error(413, "body too large")
        try:
            payload = orjson.loads(raw)  # the burst's hottest two lines: orjson, not json
        except orjson.JSONDecodeError:
            return _error(400, "body is not JSON")
        handled = await handle_robot_message(self.services, payload)
        if handled.status != 200:
            return _error(handled.status, "not a robot message")
        return web.Response(body=orjson.dumps(wire.reply_body(handled.reply)), content_type=JSON,
                            charset="utf-8")


def install(app: web.Application, config: Config, services: Services,
            http: web.AppKey[aiohttp.ClientSession]) -> None:
    """Add the callback route (HTTP mode) and, on start-up, the API client, the image
    fetcher, the replier, the two send routes and (Stream mode) the Stream connection."""
    dt = config.dingtalk
    if not dt.app_secret:
        raise ConfigError("dingtalk.app_secret: required when dingtalk.enabled is true")
    if dt.mode == "stream" and not dt.app_key:
        raise ConfigError("dingtalk.app_key: required when dingtalk.mode is \"stream\"")
    if dt.mode == "http":
        endpoint = CallbackEndpoint(services, dt.app_secret.value, config.server.max_body_bytes)
        app.router.add_post(CALLBACK_PATH, endpoint.handle)

    async def dingtalk_ctx(app: web.Application) -> AsyncIterator[None]:
        api = DingTalkApi(app[http], dt, services.clock)
        replier = SessionWebhookReplier(api, dt.oapi_base, services.clock)
        services.fetchers[wire.PLATFORM] = DingTalkImageFetcher(api, services.max_photo_bytes)
        services.repliers[wire.PLATFORM] = replier
        services.routes[CustomRobotRoute.kind] = CustomRobotRoute(api, dt.oapi_base, services.clock)
        services.routes[OpenApiGroupRoute.kind] = OpenApiGroupRoute(api)
        if dt.mode != "stream":
            yield
            return
        from bot.platforms.dingtalk_stream import StreamClient

        stream = StreamClient(api, services, replier)
        stream.start()
        try:
            yield
        finally:
            await stream.stop()

    app.cleanup_ctx.append(dingtalk_ctx)
