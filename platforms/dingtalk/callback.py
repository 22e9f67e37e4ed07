"""`POST /dingtalk/callback` (HTTP mode).

A callback is verified (timestamp + sign, §1.1) before its body is even read; a bad or
missing signature, or a timestamp more than an hour off, is 401; a body over the size
limit is 413; bad JSON or a malformed message is 400 — none of them touches the database.
A valid message is handled (stored once per msgId, handled, committed) and only then
answered, with the reply in the response body (§2.1).
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from platforms.base import Switchboard
from platforms.dingtalk import wire
from platforms.dingtalk.inbound import handle_robot_message

log = logging.getLogger(__name__)

CALLBACK_PATH = "/dingtalk/callback"
READ_CHUNK = 64 * 1024
JSON = "application/json"


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

    def __init__(self, board: Switchboard, app_secret: str, max_body_bytes: int) -> None:
        self.board = board
        self._secret = app_secret
        self.max_body_bytes = max_body_bytes

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return _error(413, "body too large")
        now_ms = int(self.board.clock().timestamp() * 1000)
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
        handled = await handle_robot_message(self.board, payload)
        if handled.status != 200:
            return _error(handled.status, "not a robot message")
        return web.Response(body=orjson.dumps(wire.reply_body(handled.reply)), content_type=JSON,
                            charset="utf-8")
