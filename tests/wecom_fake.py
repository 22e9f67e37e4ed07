"""A fake WeCom on 127.0.0.1: gettoken, message/send, media/get, the AI-bot response_url,
encrypted AI-bot image URLs, group-robot webhooks and the AI-bot WebSocket gateway.

It checks what it receives the way WeCom would (access_token, webhook key, bot secret) and
records every request so tests can assert on what the bot sent. Plus helpers that build
encrypted callbacks the way WeCom signs them.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.config import Config, config_from_mapping
from platforms.wecom.crypto import WeComCrypto

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "platforms"
WX = FIXTURES / "wecom"
VECTOR = json.loads((WX / "crypto_vector.json").read_text("utf-8"))
TOKEN = VECTOR["inputs"]["token"]
AES_KEY = VECTOR["inputs"]["encoding_aes_key"]
CORP_ID = VECTOR["inputs"]["corpid_receiveid"]
AGENT_ID = 1000002
CORP_SECRET = "FAKE-corp-secret-0000000000000000000000000"
BOT_ID = "FAKEAIBOTID0001"
BOT_SECRET = "FAKE-bot-secret-000000000000000000000000000"
WEBHOOK_KEY = "fake-webhook-key-6f1b7c3e-0000-4000-8000-000000000001"
PNG = (WX / "tiny_1x1.png").read_bytes()


def load(name: str) -> Any:
    return json.loads((WX / name).read_text(encoding="utf-8"))


def wecom_config(tmp_path: Path, db_url: str, base: str, *, mode: str = "http",
                 ws_url: str | None = None) -> Config:
    """Both WeCom surfaces on the vector's token/key; api_base (and ws_url) are the fake."""
    wecom: dict[str, Any] = {
        "enabled": True, "mode": mode, "bot_id": BOT_ID, "bot_token": TOKEN,
        "bot_encoding_aes_key": AES_KEY, "bot_secret": BOT_SECRET, "corp_id": CORP_ID,
        "corp_secret": CORP_SECRET, "agent_id": AGENT_ID, "token": TOKEN,
        "encoding_aes_key": AES_KEY, "api_base": base}
    if ws_url:
        wecom["ws_url"] = ws_url
    return config_from_mapping({
        "database": {"url": db_url},
        "storage": {"files_dir": str(tmp_path / "files")},
        "wecom": wecom,
    }, env={})


# ---------------------------------------------------------------- signing callbacks


def media_encrypt(data: bytes, key_text: str = AES_KEY) -> bytes:
    """What an AI-bot image URL serves: raw AES-256-CBC, IV = key[:16], PKCS#7 to 32."""
    key = base64.b64decode(key_text + "=" * (-len(key_text) % 4))
    n = 32 - len(data) % 32
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return enc.update(data + bytes([n]) * n) + enc.finalize()


@dataclass
class Signer:
    """Encrypts and signs callbacks as WeCom does (our crypto is cross-checked with wechatpy)."""

    receive_id: str
    token: str = TOKEN
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def crypto(self) -> WeComCrypto:
        return WeComCrypto(self.token, AES_KEY, self.receive_id)

    def query(self, encrypted: str, **extra: str) -> str:
        ts, nonce = "1678154100", f"nonce{next(self.counter)}"
        sig = self.crypto.signature(ts, nonce, encrypted)
        return "?" + urlencode({"msg_signature": sig, "timestamp": ts, "nonce": nonce, **extra})

    def aibot(self, payload: dict[str, Any]) -> tuple[str, bytes]:
        """(query, body) of an AI-bot POST carrying `payload`."""
        encrypted, _ = self.crypto.encrypt(json.dumps(payload, ensure_ascii=False).encode(), "0", "0")
        return self.query(encrypted), json.dumps({"encrypt": encrypted}).encode()

    def app(self, xml: str) -> tuple[str, bytes]:
        """(query, body) of a self-built-app POST carrying the plaintext `xml`."""
        encrypted, _ = self.crypto.encrypt(xml.encode("utf-8"), "0", "0")
        body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]>"
                f"</Encrypt><AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>")
        return self.query(encrypted), body.encode()


def app_text_xml(userid: str, content: str, msg_id: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{userid}]]>"
            f"</FromUserName><CreateTime>1678154100</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>"
            f"<AgentID>{AGENT_ID}</AgentID></xml>")


def aibot_text(userid: str, content: str, msgid: str, base: str, *, group: bool = True) -> dict[str, Any]:
    """The fixture's group text message, from `userid`, with a response_url on the fake."""
    payload = load("aibot_text_message.json")
    payload.update(msgid=msgid, **{"from": {"userid": userid}})
    payload["text"] = {"content": content}
    payload["response_url"] = f"{base}/cgi-bin/aibot/response?response_code=RC-{msgid}"
    if not group:
        payload["chattype"] = "single"
        payload.pop("chatid")
    return payload


# ---------------------------------------------------------------- the fake server


@dataclass
class WsConnection:
    """The server side of one AI-bot WebSocket: the test pushes frames and reads the bot's."""

    ws: web.WebSocketResponse
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    async def push(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def next(self, cmd: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame the bot sent with this cmd (pings are answered and skipped)."""
        while True:
            frame = await asyncio.wait_for(self.inbox.get(), timeout)
            if frame.get("cmd") == cmd:
                return frame


@dataclass
class FakeWeCom:
    base: str = ""
    token_seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    valid_token: str | None = None
    token_requests: int = 0
    sends: list[dict[str, Any]] = field(default_factory=list)
    send_tokens: list[str] = field(default_factory=list)
    sent: asyncio.Event = field(default_factory=asyncio.Event)
    media: dict[str, bytes] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)  # path → encrypted bytes
    image_gets: int = 0
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    webhook_posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    webhook_answers: list[dict[str, Any]] = field(default_factory=list)  # scripted, then ok
    subscribes: list[dict[str, Any]] = field(default_factory=list)
    connections: asyncio.Queue[WsConnection] = field(default_factory=asyncio.Queue)
    answer_pings: bool = True
    open_sockets: set[web.WebSocketResponse] = field(default_factory=set)
    closing: bool = False

    async def close_sockets(self) -> None:
        """Hang up on every client and take no new ones (the server can then shut down)."""
        self.closing = True
        for ws in list(self.open_sockets):
            await ws.close()

    def expire_token(self) -> None:
        """WeCom invalidates the current token early (message/send then answers 42001)."""
        self.valid_token = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/message/send", self.message_send)
        app.router.add_get("/cgi-bin/media/get", self.media_get)
        app.router.add_post("/cgi-bin/aibot/response", self.response_url)
        app.router.add_post("/cgi-bin/webhook/send", self.webhook_send)
        app.router.add_get("/img/{name}", self.image)
        app.router.add_get("/ws", self.websocket)
        return app

    async def gettoken(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        if request.query.get("corpid") != CORP_ID or request.query.get("corpsecret") != CORP_SECRET:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.valid_token = f"FAKE_ACCESS_TOKEN_{next(self.token_seq):04d}"
        return web.json_response({**load("gettoken_response.json"), "access_token": self.valid_token})

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token")
        if not token:
            return web.json_response({"errcode": 41001, "errmsg": "access_token missing"})
        if token != self.valid_token:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        return None

    async def message_send(self, request: web.Request) -> web.Response:
        error = self._token_error(request)
        self.send_tokens.append(request.query.get("access_token", ""))
        if error is not None:
            return error
        body = await request.json()
        assert body["agentid"] == AGENT_ID and body["msgtype"] == "text", body
        self.sends.append(body)
        self.sent.set()
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"m{len(self.sends)}"})

    async def media_get(self, request: web.Request) -> web.Response:
        error = self._token_error(request)
        if error is not None:
            return error
        data = self.media.get(request.query.get("media_id", ""))
        if data is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        return web.Response(body=data, content_type="image/png",
                            headers={"Content-Disposition": 'attachment; filename="a.png"'})

    async def response_url(self, request: web.Request) -> web.Response:
        code = request.query.get("response_code", "")
        if any(c == code for c, _ in self.responses):
            return web.json_response({"errcode": 40000, "errmsg": "response_code used"})
        self.responses.append((code, await request.json()))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def webhook_send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if key != WEBHOOK_KEY:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        self.webhook_posts.append((key, await request.json()))
        if self.webhook_answers:
            return web.json_response(self.webhook_answers.pop(0))
        return web.json_response(load("webhook_response_ok.json"))

    async def image(self, request: web.Request) -> web.Response:
        self.image_gets += 1
        data = self.images.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if self.closing:
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.open_sockets.add(ws)
        try:
            await self._serve(ws)
        finally:
            self.open_sockets.discard(ws)
        return ws

    async def _serve(self, ws: web.WebSocketResponse) -> None:
        conn = WsConnection(ws)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            req_id = frame.get("headers", {}).get("req_id")
            if frame.get("cmd") == "aibot_subscribe":
                self.subscribes.append(frame["body"])
                ok = frame["body"] == {"bot_id": BOT_ID, "secret": BOT_SECRET}
                await ws.send_json({"headers": {"req_id": req_id}, "errcode": 0 if ok else 40001,
                                    "errmsg": "ok" if ok else "invalid secret"})
                if ok:
                    await self.connections.put(conn)
                continue
            if frame.get("cmd") == "ping" and not self.answer_pings:
                await conn.inbox.put(frame)
                continue
            await ws.send_json({"headers": {"req_id": req_id}, "errcode": 0, "errmsg": "ok"})
            await conn.inbox.put(frame)
