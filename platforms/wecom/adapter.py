"""WeCom adapter: AI-bot callback (`/wecom/bot`, encrypted JSON), self-built app callback
(`/wecom/callback`, encrypted XML), and the AI bot's WebSocket mode (docs/platforms/wecom.md §0).

Every request is verified and decrypted before anything touches the database: a bad
signature is 401, a foreign receiveid 403, anything undecodable 400, a body over the
server's limit 413. A message is acknowledged only after dispatch() committed it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from kernel.messages import IncomingMessage, OutgoingText
from kernel.outbound import SendOutcome
from kernel.settings import ConfigError
from platforms.base import Switchboard
from platforms.wecom import wire
from platforms.wecom.api import WeComApi, WeComImageFetcher, WeComReplier
from platforms.wecom.crypto import CryptoError, WeComCrypto, extract_xml_encrypt
from platforms.wecom.settings import WeComConfig
from platforms.wecom.webhook import WeComWebhookRoute
from platforms.wecom.ws import WeComWsClient
from storage.queries.inbound import stored_reply

log = logging.getLogger(__name__)

INLINE_REPLY_S = 2.0  # wait this long for message/send before answering the callback (5 s cap)
REPLY_ATTEMPTS = 3
MAX_REPLY_RETRY_S = 60.0


class WeComAdapter:
    """Owns the WeCom crypto, API client, replier, fetcher, webhook route and WebSocket client."""

    name = "wecom"

    def __init__(self, wc: WeComConfig, board: Switchboard) -> None:
        http = board.http
        self.config = wc
        self.board = board
        self.bot_crypto = _crypto("bot_token", wc.bot_token.value, "bot_encoding_aes_key",
                                  wc.bot_encoding_aes_key.value, "")
        self.app_crypto = _crypto("token", wc.token.value, "encoding_aes_key",
                                  wc.encoding_aes_key.value, wc.corp_id)
        self.api = WeComApi(wc, http, max_image_bytes=board.max_fetch_bytes)
        self.fetcher = WeComImageFetcher(self.api)
        self.replier = WeComReplier(self.api, board.clock)
        self.webhook = WeComWebhookRoute(wc.api_base, http)
        self.ws: WeComWsClient | None = None
        if wc.mode == "websocket":
            if not wc.bot_id or not wc.bot_secret:
                raise ConfigError("wecom.bot_secret: websocket mode needs bot_id and bot_secret")
            self.ws = WeComWsClient(url=wc.ws_url, bot_id=wc.bot_id, secret=wc.bot_secret.value,
                                    http=http, handle=self.answer_ws)
            self.replier.ws_sender = self.ws.send_markdown
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ AI bot: one message

    async def answer_aibot(self, payload: Any, *, websocket: bool
                           ) -> dict[str, Any] | None | wire.ParseError:
        """Decrypted AI-bot JSON → dispatch → the stream reply to give back (None: nothing)."""
        parsed = wire.parse_aibot(payload, self.board.clock(), api_base=self.config.api_base,
                                  websocket=websocket)
        if isinstance(parsed, wire.ParseError):
            return parsed
        if isinstance(parsed, wire.Ignored):
            return None
        if isinstance(parsed, wire.StreamRefresh):
            return await self._refresh(parsed.stream_id)
        result = await self.board.handle(parsed, markdown=True)
        if result.reply is None:
            return None
        # a redelivery gets the same answer on the same stream id: one reply, never two
        return wire.stream_reply(wire.stream_id_of(parsed.msg_id), result.reply.text)

    async def answer_ws(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        answer = await self.answer_aibot(body, websocket=True)
        if isinstance(answer, wire.ParseError):
            log.warning("wecom websocket: malformed message frame dropped")
            return None
        return answer

    async def _refresh(self, stream_id: str) -> dict[str, Any] | None:
        """Our streams finish at once; a late refresh gets the stored answer again."""
        if len(stream_id) > wire.MAX_MSG_ID:
            return None
        async with self.board.db.sessions() as session:
            text = await stored_reply(session, wire.PLATFORM, wire.BOT_MSG_PREFIX + stream_id)
        return wire.stream_reply(stream_id, text) if text else None

    # ------------------------------------------------------------ app: reply after commit

    async def handle_app_message(self, msg: IncomingMessage) -> None:
        result = await self.board.handle(msg)
        if result.duplicate or result.reply is None or msg.reply_context is None:
            return  # a redelivery never calls message/send again
        task = asyncio.create_task(self._deliver(msg.reply_context, result.reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.wait({task}, timeout=INLINE_REPLY_S)  # usually done; else it goes on

    async def _deliver(self, context: Mapping[str, Any], text: OutgoingText) -> None:
        outcome = SendOutcome("give_up", None, "not sent")
        for attempt in range(REPLY_ATTEMPTS):
            outcome = await self.replier.reply(context, text)
            if outcome.kind != "retry":
                break
            if attempt + 1 < REPLY_ATTEMPTS:
                await asyncio.sleep(min(outcome.retry_after_s or 2.0 ** attempt, MAX_REPLY_RETRY_S))
        if outcome.kind != "ok":
            log.warning("wecom app reply not delivered: %s", outcome.reason)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.ws is not None:
            await self.ws.start()

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


ADAPTER = web.AppKey("wecom_adapter", WeComAdapter)


def _crypto(token_key: str, token: str, aes_key_name: str, aes_key: str,
            receive_id: str) -> WeComCrypto | None:
    if not token and not aes_key:
        return None
    try:
        return WeComCrypto(token, aes_key, receive_id)
    except ValueError:
        raise ConfigError(f"wecom.{aes_key_name if token else token_key}: "
                          "needs a token and a 43-character EncodingAESKey") from None


# ---------------------------------------------------------------- HTTP handlers


def _status_for(err: CryptoError) -> int:
    if err.reason == "bad_signature":
        return 401
    return 403 if err.reason == "bad_receive_id" else 400


def _reject(status: int, reason: str) -> web.Response:
    log.info("wecom callback rejected: %s", reason)
    return web.Response(status=status, text=reason)


def _signed_query(request: web.Request) -> tuple[str, str, str] | web.Response:
    q = request.query
    sig, ts, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
    if not sig:
        return _reject(401, "missing msg_signature")
    if not ts or not nonce:
        return _reject(400, "missing timestamp or nonce")
    return sig, ts, nonce


def _verify(crypto: WeComCrypto, request: web.Request) -> web.Response:
    """URL verification (GET): answer the decrypted echostr, bare, at once."""
    signed = _signed_query(request)
    if isinstance(signed, web.Response):
        return signed
    echostr = request.query.get("echostr", "").replace(" ", "+")  # a raw "+" decodes as space
    if not echostr:
        return _reject(400, "missing echostr")
    plain = crypto.verify_url(*signed, echostr)
    if isinstance(plain, CryptoError):
        return _reject(_status_for(plain), plain.reason)
    return web.Response(text=plain, content_type="text/plain")


async def bot_verify(request: web.Request) -> web.Response:
    crypto = request.app[ADAPTER].bot_crypto
    assert crypto is not None
    return _verify(crypto, request)


async def app_verify(request: web.Request) -> web.Response:
    crypto = request.app[ADAPTER].app_crypto
    assert crypto is not None
    return _verify(crypto, request)


async def bot_callback(request: web.Request) -> web.Response:
    """AI-bot message (POST {"encrypt"}): verify, decrypt, dispatch, encrypted passive reply."""
    adapter = request.app[ADAPTER]
    crypto = adapter.bot_crypto
    assert crypto is not None
    signed = _signed_query(request)
    if isinstance(signed, web.Response):
        return signed
    body = await request.read()  # over client_max_size → 413
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _reject(400, "body is not JSON")
    encrypted = envelope.get("encrypt") if isinstance(envelope, dict) else None
    if not isinstance(encrypted, str) or not encrypted:
        return _reject(400, "missing encrypt")
    plain = crypto.decrypt(*signed, encrypted)
    if isinstance(plain, CryptoError):
        return _reject(_status_for(plain), plain.reason)
    try:
        payload = json.loads(plain)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _reject(400, "decrypted message is not JSON")
    answer = await adapter.answer_aibot(payload, websocket=False)
    if isinstance(answer, wire.ParseError):
        return _reject(400, "malformed message")
    if answer is None:
        return web.Response(text="")
    timestamp = str(int(adapter.board.clock().timestamp()))
    reply = crypto.encrypted_json_reply(json.dumps(answer, ensure_ascii=False).encode("utf-8"),
                                        timestamp, secrets.token_hex(8))
    return web.Response(text=reply, content_type="application/json")


async def app_callback(request: web.Request) -> web.Response:
    """Self-built-app message (POST XML): verify, decrypt, dispatch, then an empty 200."""
    adapter = request.app[ADAPTER]
    crypto = adapter.app_crypto
    assert crypto is not None
    signed = _signed_query(request)
    if isinstance(signed, web.Response):
        return signed
    encrypted = extract_xml_encrypt(await request.read())
    if isinstance(encrypted, CryptoError):
        return _reject(400, encrypted.reason)
    plain = crypto.decrypt(*signed, encrypted)
    if isinstance(plain, CryptoError):
        return _reject(_status_for(plain), plain.reason)
    parsed = wire.parse_app_xml(plain, adapter.board.clock())
    if isinstance(parsed, wire.ParseError):
        return _reject(400, "malformed message")
    if isinstance(parsed, IncomingMessage):
        await adapter.handle_app_message(parsed)
    return web.Response(text="")


# ---------------------------------------------------------------- wiring


def install(app: web.Application, board: Switchboard, settings: Any) -> WeComAdapter:
    """Add the WeCom endpoints; plug the fetcher, replier and webhook route into the board,
    and the adapter (its WebSocket client, in that mode) into the app's lifecycle. Only the
    process that keeps long connections opens the WebSocket: WeCom allows one per bot."""
    adapter = WeComAdapter(settings, board)
    app[ADAPTER] = adapter
    board.fetchers[wire.PLATFORM] = adapter.fetcher
    board.repliers[wire.PLATFORM] = adapter.replier
    board.routes[adapter.webhook.kind] = adapter.webhook
    if adapter.config.mode == "http":
        if adapter.bot_crypto is not None:
            app.router.add_get("/wecom/bot", bot_verify)
            app.router.add_post("/wecom/bot", bot_callback)
        else:
            log.warning("wecom: bot_token/bot_encoding_aes_key not set, /wecom/bot is off")
    if adapter.app_crypto is not None:
        app.router.add_get("/wecom/callback", app_verify)
        app.router.add_post("/wecom/callback", app_callback)
    else:
        log.warning("wecom: token/encoding_aes_key not set, /wecom/callback is off")
    if not board.background:
        adapter.ws = None
    board.services.append(adapter)
    return adapter
