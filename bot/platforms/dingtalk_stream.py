"""DingTalk Stream mode (§5): an outbound WebSocket instead of a public callback URL.

Register a connection (POST /v1.0/gateway/connections/open → endpoint + one-use ticket),
connect, answer SYSTEM pings, re-register on a `disconnect` frame, and ACK each chatbot
CALLBACK once `dispatch` has committed it; the reply then goes through the sessionWebhook
(the socket cannot carry chat messages). A dropped connection is re-established with a
bounded exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from bot.dispatch import Services
from bot.outbound import SendOutcome
from bot.platforms.dingtalk import handle_robot_message
from bot.platforms.dingtalk_api import DingTalkApi, SessionWebhookReplier

log = logging.getLogger(__name__)

OPEN_PATH = "/v1.0/gateway/connections/open"
BOT_TOPIC = "/v1.0/im/bot/messages/get"
USER_AGENT = "yanxiu-bot/0.1"
ROBOT_ACK_DATA = json.dumps({"response": None})  # §5.4: the server ignores it for robot messages
EVENT_ACK_DATA = json.dumps({"status": "SUCCESS", "message": "ignored"})
BACKOFF_INITIAL_S = 1.0  # the official Python SDK: 1 s doubling to 60 s
BACKOFF_MAX_S = 60.0
HEARTBEAT_S = 60.0  # websocket ping interval; no pong within half of it closes the connection


def ack_frame(message_id: str, data: str, code: int = 200, message: str = "OK") -> str:
    """§5.4: the answer to a pushed frame, echoing its headers.messageId."""
    return json.dumps({"code": code, "headers": {"messageId": message_id,
                                                 "contentType": "application/json"},
                       "message": message, "data": data}, ensure_ascii=False)


class StreamClient:
    """Keeps one Stream connection open and routes chatbot messages through dispatch."""

    def __init__(self, api: DingTalkApi, services: Services, replier: SessionWebhookReplier, *,
                 backoff_initial: float | None = None, backoff_max: float | None = None,
                 heartbeat: float = HEARTBEAT_S, max_in_flight: int = 256) -> None:
        self.api = api
        self.services = services
        self.replier = replier
        self.backoff_initial = BACKOFF_INITIAL_S if backoff_initial is None else backoff_initial
        self.backoff_max = BACKOFF_MAX_S if backoff_max is None else backoff_max
        self.heartbeat = heartbeat
        self._slots = asyncio.Semaphore(max_in_flight)
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.connections = 0  # websocket connections opened so far

    def start(self) -> None:
        self._runner = asyncio.create_task(self.run(), name="dingtalk-stream")

    async def stop(self) -> None:
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None

    async def run(self) -> None:
        """Connect, serve, reconnect — until cancelled."""
        delay = self.backoff_initial
        while True:
            try:
                outcome = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke, the loop must survive and reconnect
                log.warning("dingtalk stream connection failed: %s", type(exc).__name__)
                outcome = "failed"
            if outcome == "rotated":  # the server asked us to move: no waiting
                delay = self.backoff_initial
                continue
            if outcome == "served":  # it worked for a while: start the backoff afresh
                delay = self.backoff_initial
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max)

    async def _register(self) -> str | None:
        """§5.1: a websocket URL with a fresh one-use ticket, or None."""
        cfg = self.api.config
        resp = await self.api.post_json(f"{self.api.api_base}{OPEN_PATH}", {
            "clientId": cfg.app_key.value, "clientSecret": cfg.app_secret.value,
            "subscriptions": [{"type": "CALLBACK", "topic": BOT_TOPIC}], "ua": USER_AGENT})
        if isinstance(resp, SendOutcome):
            return None
        body = resp.body or {}
        endpoint, ticket = body.get("endpoint"), body.get("ticket")
        if resp.status == 401:
            log.error("dingtalk stream: the gateway rejected dingtalk.app_key/app_secret")
            return None
        if resp.status != 200 or not isinstance(endpoint, str) or not isinstance(ticket, str):
            log.warning("dingtalk stream: connection registration failed (HTTP %s)", resp.status)
            return None
        if urlsplit(endpoint).scheme not in ("ws", "wss"):
            log.warning("dingtalk stream: the gateway returned a non-websocket endpoint")
            return None
        sep = "&" if "?" in endpoint else "?"
        return f"{endpoint}{sep}ticket={quote(ticket, safe='')}"

    async def _connect_once(self) -> str:
        """One connection's life: "failed", "served" (frames flowed, then it was lost) or
        "rotated" (the server sent `disconnect`)."""
        url = await self._register()
        if url is None:
            return "failed"
        frames = 0
        async with self.api.http.ws_connect(url, heartbeat=self.heartbeat) as ws:
            self.connections += 1
            log.info("dingtalk stream connected")
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                frames += 1
                if await self._on_frame(ws, message.data) == "rotate":
                    await ws.close()
                    return "rotated"
            log.info("dingtalk stream connection closed")
        return "served" if frames else "failed"  # closed at once: keep backing off

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> bool:
        async with self._send_lock:
            if ws.closed:
                return False
            try:
                await ws.send_str(text)
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                log.warning("dingtalk stream: could not send an ACK: %s", type(exc).__name__)
                return False
        return True

    async def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, raw: str) -> str | None:
        try:
            frame = json.loads(raw)
        except (ValueError, RecursionError):
            log.warning("dingtalk stream: a frame that is not JSON was ignored")
            return None
        headers = frame.get("headers") if isinstance(frame, Mapping) else None
        if not isinstance(headers, Mapping) or not isinstance(headers.get("messageId"), str):
            log.warning("dingtalk stream: a frame without headers.messageId was ignored")
            return None
        kind, topic, message_id = frame.get("type"), headers.get("topic"), headers["messageId"]
        data = frame.get("data")
        if kind == "SYSTEM":
            if topic == "ping":
                await self._send(ws, ack_frame(message_id, data if isinstance(data, str) else ""))
            elif topic == "disconnect":  # ACK first, then leave (§5.5, as the Go SDK does)
                await self._send(ws, ack_frame(message_id, ROBOT_ACK_DATA))
                log.info("dingtalk stream: server rotates the connection")
                return "rotate"
            return None
        if kind == "CALLBACK" and topic == BOT_TOPIC:
            task = asyncio.create_task(self._on_robot_message(ws, message_id, data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "EVENT":
            await self._send(ws, ack_frame(message_id, EVENT_ACK_DATA))
        else:
            await self._send(ws, ack_frame(message_id, ROBOT_ACK_DATA, 404, "topic not handled"))
        return None

    async def _on_robot_message(self, ws: aiohttp.ClientWebSocketResponse, message_id: str,
                                data: Any) -> None:
        """Dispatch (commit), then ACK, then reply; on a failure send no ACK (re-pushed later)."""
        async with self._slots:
            try:
                payload = json.loads(data) if isinstance(data, str) else data
            except (ValueError, RecursionError):
                payload = None
            try:
                handled = await handle_robot_message(self.services, payload)
            except Exception:
                log.exception("dingtalk stream: handling a message failed; not acknowledged")
                return
            if handled.status != 200:
                await self._send(ws, ack_frame(message_id, ROBOT_ACK_DATA, 400, "bad request"))
                return
            await self._send(ws, ack_frame(message_id, ROBOT_ACK_DATA))
            if handled.duplicate or handled.reply is None or handled.reply_context is None:
                return  # a redelivery gets no second reply
            outcome = await self.replier.reply(handled.reply_context, handled.reply)
            if outcome.kind != "ok":
                log.warning("dingtalk stream: reply not delivered (%s)", outcome.reason)
