"""WeCom AI bot over a WebSocket long connection (§2c): no public IP, no crypto layer.

Connect to `ws_url`, subscribe with bot_id + secret, ping every 30 s (two missed acks = a
dead link), reconnect with backoff 1 s → 2 s → … → 30 s. Each `aibot_msg_callback` goes
through the same parse → dispatch path as the HTTP callback and is answered with an
`aibot_respond_msg` frame on the same req_id. The secret is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from kernel.outbound import SendOutcome
from platforms.wecom import wire

log = logging.getLogger(__name__)

Handle = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any] | None]]


class SubscribeRefused(Exception):
    """The server answered aibot_subscribe with a non-zero errcode."""


class WeComWsClient:
    """One long connection per bot; `start()` runs it in the background until `stop()`."""

    def __init__(self, *, url: str, bot_id: str, secret: str,
                 http: Callable[[], aiohttp.ClientSession], handle: Handle,
                 heartbeat_s: float = 30.0, max_missed_pings: int = 2,
                 backoff_initial_s: float = 1.0, backoff_max_s: float = 30.0,
                 ack_timeout_s: float = 5.0) -> None:
        self._url = url
        self._bot_id = bot_id
        self._secret = secret
        self._http = http
        self._handle = handle
        self.heartbeat_s = heartbeat_s
        self.max_missed_pings = max_missed_pings
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.ack_timeout_s = ack_timeout_s
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._send_lock = asyncio.Lock()
        self._acks: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.subscribed = asyncio.Event()
        self.connections = 0  # successful subscriptions so far

    def __repr__(self) -> str:
        return "WeComWsClient(<redacted>)"

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="wecom-ws")

    async def stop(self) -> None:
        tasks = [t for t in (self._runner, *self._handlers) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None

    # ------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        delay = self.backoff_initial_s
        while True:
            try:
                await self._connection()
                delay = self.backoff_initial_s  # it was up: start the backoff over
            except SubscribeRefused as exc:
                log.warning("wecom websocket: subscribe refused (%s)", exc)
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                log.warning("wecom websocket: connection failed (%s)", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _connection(self) -> None:
        """One connection: subscribe, then read frames until it closes or stops answering."""
        async with self._http().ws_connect(self._url, autoping=True, heartbeat=None) as ws:
            self._ws = ws
            reader = asyncio.create_task(self._read(ws))
            heart: asyncio.Task[None] | None = None
            try:
                ack = await self._request(wire.subscribe_frame(self._bot_id, self._secret,
                                                               wire.new_req_id()))
                if ack is None:
                    raise TimeoutError
                code = wire.errcode_of(ack)
                if code != 0:
                    raise SubscribeRefused(f"errcode {code}")
                self.connections += 1
                self.subscribed.set()
                log.info("wecom websocket: subscribed")
                heart = asyncio.create_task(self._heartbeat(ws))
                await reader
            finally:
                self.subscribed.clear()
                self._ws = None
                for task in (reader, heart):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await task
                for fut in self._acks.values():
                    fut.cancel()
                self._acks.clear()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(frame, dict):
                    self._on_frame(frame)
        finally:
            for fut in self._acks.values():  # no ack can come on a closed link: stop waiting
                fut.cancel()

    def _on_frame(self, frame: Mapping[str, Any]) -> None:
        req_id = wire.frame_req_id(frame)
        cmd = frame.get("cmd")
        if not cmd:  # an ack: {"headers": {"req_id"}, "errcode", "errmsg"}
            fut = self._acks.pop(req_id, None) if req_id else None
            if fut is not None and not fut.done():
                fut.set_result(frame)
            return
        body = frame.get("body")
        if cmd == "aibot_msg_callback" and req_id and isinstance(body, Mapping):
            task = asyncio.create_task(self._answer(req_id, body))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        # aibot_event_callback (enter_chat, card events) and others: nothing to do

    async def _answer(self, req_id: str, body: Mapping[str, Any]) -> None:
        try:
            answer = await self._handle(body)
        except Exception:  # one bad message must not take the connection down
            log.exception("wecom websocket: handling a message failed")
            return
        if answer is None:
            return
        ack = await self._request(wire.respond_frame(req_id, answer))
        code = wire.errcode_of(ack) if ack is not None else None
        if code != 0:
            log.warning("wecom websocket: reply not acknowledged (errcode %s)", code)

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        missed = 0
        while not ws.closed:
            await asyncio.sleep(self.heartbeat_s)
            ack = await self._request(wire.ping_frame(wire.new_req_id()),
                                      wait_s=self.heartbeat_s)
            missed = 0 if ack is not None else missed + 1
            if missed >= self.max_missed_pings:
                log.warning("wecom websocket: %d pings unanswered, reconnecting", missed)
                await ws.close()
                return

    # ------------------------------------------------------------ frames out

    async def _request(self, frame: Mapping[str, Any], *, wait_s: float | None = None) -> Mapping[str, Any] | None:
        """Send a frame and wait for the ack with its req_id; None when none came in time."""
        ws = self._ws
        req_id = wire.frame_req_id(frame)
        if ws is None or ws.closed or req_id is None:
            return None
        fut: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[req_id] = fut
        try:
            async with self._send_lock:
                await ws.send_str(json.dumps(frame, ensure_ascii=False))
            return await asyncio.wait_for(fut, wait_s or self.ack_timeout_s)
        except (TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError):
            return None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return None  # the ack future was cancelled: the connection closed
        finally:
            if self._acks.get(req_id) is fut:
                del self._acks[req_id]

    async def send_markdown(self, chatid: str, content: str) -> SendOutcome:
        """Proactive `aibot_send_msg` to a group chatid or a userid (the photo replies)."""
        if self._ws is None or not self.subscribed.is_set():
            return SendOutcome("retry", None, "websocket not connected")
        ack = await self._request(wire.send_markdown_frame(wire.new_req_id(), chatid, content))
        if ack is None:
            return SendOutcome("retry", None, "websocket send not acknowledged")
        return wire.classify_api_result(200, ack)
