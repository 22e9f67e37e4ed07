"""A fake DingTalk on 127.0.0.1: OpenAPI (token, file download, group/1:1 sends), the
legacy oapi host (custom robot /robot/send, sessionWebhook) and the Stream gateway.

It checks what it receives the way DingTalk would (token header, 加签, one-use tickets)
and records every request so tests can assert on what the bot sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from bot.config import Config, config_from_mapping

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "platforms"
DT = FIXTURES / "dingtalk"
APP_KEY = "dingFAKErobotcode0001"
APP_SECRET = "FAKE-app-secret-do-not-use-0000000000000000000000000000000000"
ROBOT_SECRET = "SECfake0000000000000000000000000000000000000000000000000000000000"
ROBOT_TOKEN = "FAKEaccesstoken000000000000000000000000000000000000000000000000"
PNG = (FIXTURES / "wecom" / "tiny_1x1.png").read_bytes()


def load(name: str) -> dict[str, Any]:
    return json.loads((DT / name).read_text(encoding="utf-8"))


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def dingtalk_config(tmp_path: Path, db_url: str, base: str, mode: str = "http") -> Config:
    """A config whose api_base and oapi_base are the fake server."""
    return config_from_mapping({
        "database": {"url": db_url},
        "storage": {"files_dir": str(tmp_path / "files")},
        "dingtalk": {"enabled": True, "mode": mode, "app_key": APP_KEY, "app_secret": APP_SECRET,
                     "robot_code": APP_KEY, "api_base": base, "oapi_base": base},
    }, env={})


@dataclass
class StreamConnection:
    """The server side of one Stream websocket: the test pushes frames and reads answers."""

    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None = None
    inbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)  # answers, as sent
    pings: int = 0  # websocket pings the bot sent on this connection
    ended: asyncio.Future[int | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())  # its close code

    async def push(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def answer_text(self, timeout: float = 5.0) -> str:
        """The next answer exactly as the bot wrote it on the wire."""
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def answer(self, timeout: float = 5.0) -> dict[str, Any]:
        return json.loads(await self.answer_text(timeout))

    def drop(self) -> None:
        """The network goes: the TCP connection ends without a closing handshake."""
        assert self.transport is not None
        self.transport.abort()


@dataclass
class FakeDingTalk:
    base: str = ""
    tokens_issued: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    downloads: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=lambda: {"FAKEdownloadCode/picture+0001==": PNG})
    group_sends: list[dict[str, Any]] = field(default_factory=list)
    oto_sends: list[dict[str, Any]] = field(default_factory=list)
    session_posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    robot_posts: list[dict[str, Any]] = field(default_factory=list)
    robot_answers: list[dict[str, Any]] = field(default_factory=list)  # scripted, then ok
    opens: list[dict[str, Any]] = field(default_factory=list)
    failing_opens: int = 0  # answer this many registrations with 503 first
    refused_handshakes: int = 0  # refuse this many websocket handshakes first
    answer_pings: bool = True  # False: a gateway that no longer answers websocket pings
    tickets: set[str] = field(default_factory=set)
    rejected_tickets: int = 0
    connections: asyncio.Queue[StreamConnection] = field(default_factory=asyncio.Queue)
    open_sockets: set[web.WebSocketResponse] = field(default_factory=set)
    posted: asyncio.Event = field(default_factory=asyncio.Event)
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------ api.dingtalk.com

    def _authorised(self, request: web.Request) -> str | None:
        token = request.headers.get("x-acs-dingtalk-access-token")
        return token if token in self.valid_tokens else None

    @staticmethod
    def _unauthorised() -> web.Response:
        return web.json_response({"requestid": "FAKE", "code": "InvalidAuthentication",
                                  "message": "不合法的access_token"}, status=401)

    async def access_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.token_requests.append(body)
        if body != {"appKey": APP_KEY, "appSecret": APP_SECRET}:
            return web.json_response(load("access_token_and_download.json")["access_token_error"]["body"],
                                     status=400)
        token = f"FAKEaccessToken{next(self._n):04d}"
        self.tokens_issued.append(token)
        self.valid_tokens.add(token)
        return web.json_response({"accessToken": token, "expireIn": 7200})

    async def download(self, request: web.Request) -> web.Response:
        body = await request.json()
        token = self._authorised(request)
        self.downloads.append((request.headers.get("x-acs-dingtalk-access-token"), body))
        if token is None:
            return self._unauthorised()
        code = body.get("downloadCode")
        if body.get("robotCode") != APP_KEY or code not in self.files:
            return web.json_response(
                load("access_token_and_download.json")["download_error_expired"]["body"], status=400)
        name = hashlib.sha256(code.encode()).hexdigest()[:16]
        return web.json_response({"downloadUrl": f"{self.base}/oss/{name}.file?Expires=1&Signature=F"})

    async def oss(self, request: web.Request) -> web.Response:
        name = request.match_info["name"].removesuffix(".file")
        for code, data in self.files.items():
            if hashlib.sha256(code.encode()).hexdigest()[:16] == name:
                return web.Response(body=data, content_type="application/octet-stream")
        raise web.HTTPNotFound()

    async def group_send(self, request: web.Request) -> web.Response:
        if self._authorised(request) is None:
            return self._unauthorised()
        self.group_sends.append(await request.json())
        self.posted.set()
        return web.json_response({"processQueryKey": "FAKEprocessQueryKey0001"})

    async def oto_send(self, request: web.Request) -> web.Response:
        if self._authorised(request) is None:
            return self._unauthorised()
        self.oto_sends.append(await request.json())
        self.posted.set()
        return web.json_response({"processQueryKey": "FAKE2", "invalidStaffIdList": [],
                                  "flowControlledStaffIdList": []})

    # ------------------------------------------------------------ oapi.dingtalk.com

    async def send_by_session(self, request: web.Request) -> web.Response:
        self.session_posts.append((request.query.get("session", ""), await request.json()))
        self.posted.set()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def robot_send(self, request: web.Request) -> web.Response:
        q = request.query
        body = await request.json()
        expected = base64.b64encode(hmac.new(
            ROBOT_SECRET.encode(), f"{q.get('timestamp')}\n{ROBOT_SECRET}".encode(),
            hashlib.sha256).digest()).decode()
        self.robot_posts.append({"query": dict(q), "body": body,
                                 "content_type": request.headers.get("Content-Type", "")})
        if q.get("access_token") != ROBOT_TOKEN:
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        if q.get("sign") != expected:
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        if self.robot_answers:
            return web.json_response(self.robot_answers.pop(0))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    # ------------------------------------------------------------ Stream gateway

    async def open_connection(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.opens.append(body)
        if self.failing_opens:
            self.failing_opens -= 1
            return web.json_response({"code": "ServiceUnavailable"}, status=503)
        if body.get("clientId") != APP_KEY or body.get("clientSecret") != APP_SECRET:
            return web.json_response({"code": "Unauthorized"}, status=401)
        ticket = str(uuid.uuid4())
        self.tickets.add(ticket)
        ws_base = self.base.replace("http://", "ws://")
        return web.json_response({"endpoint": f"{ws_base}/connect", "ticket": ticket})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            self.rejected_tickets += 1
            raise web.HTTPForbidden()
        self.tickets.discard(ticket)  # one connection per ticket
        if self.refused_handshakes:
            self.refused_handshakes -= 1
            raise web.HTTPServiceUnavailable()
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = StreamConnection(ws, request.transport)
        await self.connections.put(conn)
        self.open_sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await conn.inbox.put(msg.data)
                elif msg.type == WSMsgType.PING:
                    conn.pings += 1
                    if self.answer_pings:
                        await ws.pong(msg.data)
        finally:
            self.open_sockets.discard(ws)
            if not conn.ended.done():
                conn.ended.set_result(ws.close_code)
        return ws

    async def close_sockets(self, app: web.Application) -> None:
        """On shutdown: a server waits for open websocket handlers, so close them first."""
        for ws in list(self.open_sockets):
            await ws.close()

    async def next_connection(self, timeout: float = 5.0) -> StreamConnection:
        return await asyncio.wait_for(self.connections.get(), timeout)

    async def wait_posted(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self.posted.wait(), timeout)
        self.posted.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1.0/oauth2/accessToken", self.access_token)
        app.router.add_post("/v1.0/robot/messageFiles/download", self.download)
        app.router.add_get("/oss/{name}", self.oss)
        app.router.add_post("/v1.0/robot/groupMessages/send", self.group_send)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self.oto_send)
        app.router.add_post("/robot/sendBySession", self.send_by_session)
        app.router.add_post("/robot/send", self.robot_send)
        app.router.add_post("/v1.0/gateway/connections/open", self.open_connection)
        app.router.add_get("/connect", self.connect)
        app.on_shutdown.append(self.close_sockets)
        return app


async def start_fake(aiohttp_server: Any) -> FakeDingTalk:
    fake = FakeDingTalk()
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


def robot_message(fixture: str, *, base: str, at: datetime, staff_id: str | None = "dt-zhangming",
                  msg_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """A fixture adapted to a rostered sender, the clock's time and the fake's sessionWebhook."""
    payload = load(fixture)
    created = ms(at)
    session = payload["sessionWebhook"].split("session=", 1)[1]
    payload.update(createAt=created, sessionWebhookExpiredTime=created + 5_400_000,
                   sessionWebhook=f"{base}/robot/sendBySession?session={session}")
    if staff_id is not None:
        payload["senderStaffId"] = staff_id
    if msg_id is not None:
        payload["msgId"] = msg_id
    payload.update(changes)
    return payload
