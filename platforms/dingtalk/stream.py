"""DingTalk Stream mode (§5): an outbound WebSocket instead of a public callback URL.

Register a connection (POST /v1.0/gateway/connections/open → endpoint + one-use ticket),
connect, ACK every SYSTEM frame, leave on a `disconnect`, and ACK each chatbot CALLBACK once
`dispatch` has committed it; the reply then goes through the sessionWebhook (the socket
cannot carry chat messages). Frames, ACKs, keepalive and reconnect timing follow the
official Python SDK, dingtalk-stream 0.24.3 (see docs/platforms/dingtalk.md §5.4–5.5).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import quote, urlsplit

import aiohttp

from kernel.outbound import SendOutcome
from platforms.base import Switchboard
from platforms.dingtalk import frames
from platforms.dingtalk.api import DingTalkApi, SessionWebhookReplier
from platforms.dingtalk.inbound import handle_robot_message

log = logging.getLogger(__name__)

OPEN_PATH = "/v1.0/gateway/connections/open"
BOT_TOPIC = "/v1.0/im/bot/messages/get"
USER_AGENT = "yanxiu-bot/0.1"
# keepalive: what websockets.connect() does by default under the SDK (stream.py start())
PING_INTERVAL_S = 20.0  # a ping every 20 s
PING_TIMEOUT_S = 20.0  # no pong 20 s after it: close with 1011, an abnormal close
MAX_FRAME_BYTES = 2**20  # websockets' max_size: a bigger frame closes the link (1009)
# reconnect: stream.py start() in 0.24.3
RETRY_AFTER_OPEN_FAILURE_S = 10.0  # open_connection() failed
RETRY_AFTER_ABNORMAL_CLOSE_S = 10.0  # ConnectionClosedError: lost, or keepalive gave up
RETRY_AFTER_ERROR_S = 3.0  # any other exception (handshake refused, connection refused…)
NORMAL_CLOSE_CODES = frozenset({1000, 1001, 1005})  # websockets' OK_CLOSE_CODES


class StreamClient:
    """Keeps one Stream connection open and routes chatbot messages through dispatch."""

    name = "dingtalk-stream"

    def __init__(self, api: DingTalkApi, board: Switchboard, replier: SessionWebhookReplier, *,
                 max_in_flight: int = 256) -> None:
        self.api = api
        self.board = board
        self.replier = replier
        self._slots = asyncio.Semaphore(max_in_flight)
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.connections = 0  # websocket connections opened so far
        self.pauses: list[float] = []  # the wait chosen before each reconnect (for tests)

    async def start(self) -> None:
        self._runner = asyncio.create_task(self.run(), name="dingtalk-stream")

    async def stop(self) -> None:
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None

    async def run(self) -> None:
        """Connect, serve, reconnect — until cancelled."""
        while True:
            try:
                pause = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke, the loop must survive and reconnect
                log.warning("dingtalk stream connection failed: %s", type(exc).__name__)
                pause = RETRY_AFTER_ERROR_S
            if pause:
                self.pauses.append(pause)
                await asyncio.sleep(pause)

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

    async def _connect_once(self) -> float:
        """One connection's life; returns how long to wait before the next one."""
        url = await self._register()
        if url is None:
            return RETRY_AFTER_OPEN_FAILURE_S
        async with self.api.http.ws_connect(url, autoping=False, heartbeat=None,
                                            max_msg_size=MAX_FRAME_BYTES) as ws:
            self.connections += 1
            log.info("dingtalk stream connected")
            pongs, leaving = asyncio.Event(), asyncio.Event()
            keepalive = asyncio.create_task(self._keepalive(ws, pongs, leaving))
            try:
                return await self._serve(ws, pongs)
            finally:
                if not leaving.is_set():  # else let it finish its closing handshake
                    keepalive.cancel()
                await asyncio.gather(keepalive, return_exceptions=True)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, pongs: asyncio.Event) -> float:
        """Read frames until the connection ends. The SDK reconnects at once after a normal
        close (its own after `disconnect`, or the gateway's) and waits after an abnormal one."""
        frames_seen = 0
        while True:
            message = await ws.receive()
            kind = message.type
            if kind == aiohttp.WSMsgType.TEXT:
                frames_seen += 1
                if await self._on_frame(ws, message.data) == "rotate":
                    await ws.close()
                    return 0.0
            elif kind == aiohttp.WSMsgType.PING:
                await self._locked(partial(ws.pong, message.data))
            elif kind == aiohttp.WSMsgType.PONG:
                pongs.set()
            elif kind == aiohttp.WSMsgType.CLOSE:
                log.info("dingtalk stream: the gateway closed the connection (%s)", message.data)
                if message.data not in NORMAL_CLOSE_CODES:
                    return RETRY_AFTER_ABNORMAL_CLOSE_S
                # a gateway that closes before it sent anything must not make us spin
                return 0.0 if frames_seen else RETRY_AFTER_ERROR_S
            elif kind in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                          aiohttp.WSMsgType.ERROR):
                log.warning("dingtalk stream: connection lost")
                return RETRY_AFTER_ABNORMAL_CLOSE_S

    async def _keepalive(self, ws: aiohttp.ClientWebSocketResponse, pongs: asyncio.Event,
                         leaving: asyncio.Event) -> None:
        """websockets' keepalive: ping every PING_INTERVAL_S; no pong within PING_TIMEOUT_S
        closes the connection with 1011 ("keepalive ping timeout")."""
        while not ws.closed:
            await asyncio.sleep(PING_INTERVAL_S)
            pongs.clear()
            if not await self._locked(ws.ping):
                return
            try:
                await asyncio.wait_for(pongs.wait(), PING_TIMEOUT_S)
            except TimeoutError:
                log.warning("dingtalk stream: no pong to a keepalive ping, reconnecting")
                leaving.set()
                await ws.close(code=aiohttp.WSCloseCode.INTERNAL_ERROR,
                               message=b"keepalive ping timeout")
                return

    async def _locked(self, write: Callable[[], Awaitable[None]]) -> bool:
        """Run one websocket write under the send lock; False when it failed."""
        async with self._send_lock:
            try:
                await write()
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                log.warning("dingtalk stream: could not write a frame: %s", type(exc).__name__)
                return False
        return True

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> bool:
        if ws.closed:
            return False
        return await self._locked(partial(ws.send_str, text))

    async def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, raw: str) -> str | None:
        """Route one frame as stream.py `route_message` does; "rotate" after a disconnect."""
        frame = frames.read_frame(raw)
        if frame is None:
            log.warning("dingtalk stream: a frame without headers.messageId was ignored")
            return None
        if frame.kind == "CALLBACK":
            if frame.topic != BOT_TOPIC:  # the SDK has no handler for it: no ACK
                log.warning("dingtalk stream: a callback on an unknown topic was ignored")
                return None
            task = asyncio.create_task(self._on_robot_message(ws, frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        if frame.kind not in ("SYSTEM", "EVENT"):
            log.warning("dingtalk stream: a frame of unknown type was ignored")
            return None
        try:
            data = frames.decode_data(frame.data)
        except frames.UndecodableData:
            log.warning("dingtalk stream: a %s frame with undecodable data was ignored", frame.kind)
            return None
        if frame.kind == "EVENT":
            await self._send(ws, frames.event_ack(frame.message_id, data))
            return None
        await self._send(ws, frames.system_ack(frame.message_id, data))  # every topic, as the SDK
        if frame.topic == "disconnect":  # ACK first, then leave (§5.5)
            log.info("dingtalk stream: server rotates the connection")
            return "rotate"
        return None

    async def _on_robot_message(self, ws: aiohttp.ClientWebSocketResponse,
                                frame: frames.Frame) -> None:
        """Dispatch (commit), then ACK, then reply; on a failure send no ACK (re-pushed later)."""
        async with self._slots:
            try:
                payload = frames.decode_data(frame.data)
            except frames.UndecodableData:
                payload = None  # refused below like any malformed message
            try:
                handled = await handle_robot_message(self.board, payload)
            except Exception:
                log.exception("dingtalk stream: handling a message failed; not acknowledged")
                return
            if handled.status != 200:
                await self._send(ws, frames.callback_refusal(frame.message_id))
                return
            await self._send(ws, frames.callback_ack(frame.message_id))
            if handled.duplicate or handled.reply is None or handled.reply_context is None:
                return  # a redelivery gets no second reply
            outcome = await self.replier.reply(handled.reply_context, handled.reply)
            if outcome.kind != "ok":
                log.warning("dingtalk stream: reply not delivered (%s)", outcome.reason)
