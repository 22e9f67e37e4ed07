"""WeCom HTTP APIs: access-token cache, message/send, media/get, AI-bot image download,
response_url — and the ImageFetcher / Replier the photo downloader calls (§4, §5).

Tokens, keys and URLs never appear in a FetchError / SendOutcome reason or in a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from kernel.messages import ImageRef, OutgoingText
from kernel.outbound import OK, FetchError, SendOutcome
from kernel.textsplit import split_text
from platforms.wecom import wire
from platforms.wecom.crypto import CryptoError, decrypt_media
from platforms.wecom.settings import WeComConfig

log = logging.getLogger(__name__)

TOKEN_REFRESH_MARGIN_S = 300.0  # refetch a little before expires_in runs out
# §2b/§4.3: the AI-bot image host is UNCONFIRMED; allow Tencent's storage hosts by suffix.
DEFAULT_IMAGE_HOST_SUFFIXES = (".myqcloud.com", ".qq.com", ".qpic.cn")
DOWNLOAD_TIMEOUT_S = 30.0

WsSender = Callable[[str, str], Awaitable[SendOutcome]]


def _retry(reason: str, after: float | None = None) -> SendOutcome:
    return SendOutcome("retry", after, reason)


def _give_up(reason: str) -> SendOutcome:
    return SendOutcome("give_up", None, reason)


def _network_reason(exc: BaseException) -> str:
    """A reason for a transport failure; aiohttp messages can carry the URL, so use the type."""
    return "timeout" if isinstance(exc, TimeoutError) else f"network error ({type(exc).__name__})"


class WeComApi:
    """One self-built app's API client plus AI-bot media download, on a shared ClientSession."""

    def __init__(self, config: WeComConfig, http: Callable[[], aiohttp.ClientSession], *,
                 max_image_bytes: int = 10 * 1024 * 1024,
                 image_host_suffixes: tuple[str, ...] = DEFAULT_IMAGE_HOST_SUFFIXES,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._http = http
        self._base = config.api_base.rstrip("/")
        self._max_image_bytes = max_image_bytes
        self._image_hosts = image_host_suffixes
        self._monotonic = monotonic
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.token_fetches = 0  # how many times gettoken was called (tests, metrics)

    def __repr__(self) -> str:
        return "WeComApi(<redacted>)"

    # ------------------------------------------------------------ access token (§4.1)

    async def access_token(self, *, refresh: bool = False, stale: str | None = None) -> str | SendOutcome:
        """The cached token; `refresh` refetches unless another caller already replaced `stale`."""
        async with self._token_lock:
            fresh = self._token and self._monotonic() < self._token_expires
            if fresh and not (refresh and self._token == stale):
                return self._token  # type: ignore[return-value]
            if not self._config.corp_id or not self._config.corp_secret:
                return _give_up("wecom.corp_id / corp_secret not configured")
            params = {"corpid": self._config.corp_id, "corpsecret": self._config.corp_secret.value}
            self.token_fetches += 1
            try:
                async with self._http().get(f"{self._base}/cgi-bin/gettoken", params=params,
                                            allow_redirects=False) as resp:
                    status, body = resp.status, await _json_or_none(resp)
            except (TimeoutError, aiohttp.ClientError) as exc:
                return _retry(f"gettoken: {_network_reason(exc)}")
            token = body.get("access_token") if isinstance(body, Mapping) else None
            if wire.errcode_of(body) == 0 and isinstance(token, str) and token:
                expires_in = body.get("expires_in") if isinstance(body, Mapping) else None
                ttl = float(expires_in) if isinstance(expires_in, int | float) else 7200.0
                self._token = token
                self._token_expires = self._monotonic() + max(ttl - TOKEN_REFRESH_MARGIN_S, 60.0)
                return token
            outcome = wire.classify_api_result(status, body)
            return outcome if outcome.kind != "ok" else _retry("gettoken: no access_token")

    async def _with_token(self, call: Callable[[str], Awaitable[tuple[int, Any]]]
                          ) -> tuple[int, Any] | SendOutcome:
        """Run an API call with the token; on 40014/42001/42009 refetch once and run it again."""
        token = await self.access_token()
        if isinstance(token, SendOutcome):
            return token
        status, body = await call(token)
        if wire.errcode_of(body) in wire.TOKEN_EXPIRED_CODES:
            token = await self.access_token(refresh=True, stale=token)
            if isinstance(token, SendOutcome):
                return token
            status, body = await call(token)
        return status, body

    # ------------------------------------------------------------ message/send (§5.1)

    async def send_app_text(self, touser: str, content: str) -> SendOutcome:
        """Send text to one member through the app; long text goes in ≤ 2048-byte parts."""
        parts = split_text(content, wire.APP_TEXT_MAX_BYTES)
        for n, part in enumerate(parts):
            outcome = await self._send_app_part(touser, part)
            if outcome.kind != "ok":
                if n:  # never re-send the parts that went out: stop here
                    return _give_up(f"partly sent ({n}/{len(parts)}): {outcome.reason}")
                return outcome
        return OK

    async def _send_app_part(self, touser: str, content: str) -> SendOutcome:
        body = wire.app_text_body(touser, self._config.agent_id, content)

        async def call(token: str) -> tuple[int, Any]:
            async with self._http().post(f"{self._base}/cgi-bin/message/send",
                                         params={"access_token": token}, json=body,
                                         allow_redirects=False) as resp:
                return resp.status, await _json_or_none(resp)

        try:
            result = await self._with_token(call)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return _retry(f"message/send: {_network_reason(exc)}")
        if isinstance(result, SendOutcome):
            return result
        return wire.classify_api_result(*result)

    # ------------------------------------------------------------ response_url (§5.3)

    async def post_response_url(self, url: str, content: str) -> SendOutcome:
        if not wire.is_response_url(url, self._config.api_base):
            return _give_up("response_url not on the configured API origin")
        try:
            async with self._http().post(url, json=wire.response_url_body(content),
                                         allow_redirects=False) as resp:
                return wire.classify_api_result(resp.status, await _json_or_none(resp))
        except (TimeoutError, aiohttp.ClientError) as exc:
            return _retry(f"response_url: {_network_reason(exc)}")

    # ------------------------------------------------------------ images (§4.2, §4.3)

    async def media_get(self, media_id: str) -> bytes | FetchError:
        """An app image by MediaId; an error answers JSON instead of bytes."""

        async def call(token: str) -> tuple[int, Any]:
            async with self._http().get(f"{self._base}/cgi-bin/media/get",
                                        params={"access_token": token, "media_id": media_id},
                                        allow_redirects=False) as resp:
                ctype = resp.headers.get("Content-Type", "")
                if resp.status == 200 and not ctype.startswith(("application/json", "text/")):
                    return resp.status, await self._read_capped(resp, self._max_image_bytes)
                return resp.status, await _json_or_none(resp)

        try:
            result = await self._with_token(call)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return FetchError(f"media/get: {_network_reason(exc)}")
        if isinstance(result, SendOutcome):
            return FetchError(f"media/get: {result.reason}", retry=result.kind == "retry")
        status, body = result
        if isinstance(body, bytes | FetchError):
            return body
        outcome = wire.classify_api_result(status, body)
        return FetchError(f"media/get: {outcome.reason}", retry=outcome.kind == "retry")

    def image_url_allowed(self, url: str) -> bool:
        """AI-bot image URLs: https on Tencent's storage hosts, or the configured API origin."""
        if wire.same_origin(url, self._config.api_base):
            return True
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        return (parts.scheme == "https" and "@" not in parts.netloc
                and any(host.endswith(s) for s in self._image_hosts))

    async def download_aibot_image(self, url: str, aes_key: str | None) -> bytes | FetchError:
        """GET the encrypted bytes (valid ~5 min) and decrypt them with the per-message aeskey
        (WebSocket) or the bot's EncodingAESKey (HTTP)."""
        if not self.image_url_allowed(url):
            return FetchError("image host not allowed", retry=False)
        key = aes_key or self._config.bot_encoding_aes_key.value
        if not key:
            return FetchError("no key for the AI-bot image", retry=False)
        try:
            async with self._http().get(url, allow_redirects=False,
                                        timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)) as resp:
                if resp.status >= 500:
                    return FetchError(f"image download: http_{resp.status}")
                if resp.status != 200:  # 403/404 once the link expired
                    return FetchError(f"image download: http_{resp.status}", retry=False)
                data = await self._read_capped(resp, self._max_image_bytes + 32)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return FetchError(f"image download: {_network_reason(exc)}")
        if isinstance(data, FetchError):
            return data
        plain = decrypt_media(data, key)
        if isinstance(plain, CryptoError):
            return FetchError(f"image decrypt failed ({plain.reason})", retry=False)
        return plain

    @staticmethod
    async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes | FetchError:
        if resp.content_length is not None and resp.content_length > cap:
            return FetchError("image too large", retry=False)
        data = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > cap:
                return FetchError("image too large", retry=False)
        return bytes(data)


async def _json_or_none(resp: aiohttp.ClientResponse) -> Any:
    try:
        return json.loads(await resp.read())
    except (ValueError, UnicodeDecodeError):
        return None


class WeComImageFetcher:
    """kernel.outbound.ImageFetcher for WeCom: `media:<MediaId>` via media/get, else an AI-bot URL."""

    def __init__(self, api: WeComApi) -> None:
        self._api = api

    async def fetch(self, image: ImageRef) -> bytes | FetchError:
        if image.data is not None:
            return image.data
        if image.ref.startswith(wire.MEDIA_REF_PREFIX):
            return await self._api.media_get(image.ref.removeprefix(wire.MEDIA_REF_PREFIX))
        return await self._api.download_aibot_image(image.ref, image.aes_key)


class WeComReplier:
    """kernel.outbound.Replier for WeCom, picked by reply_context["via"]:
    "app" → message/send, "response_url" → once within its hour, "ws" → aibot_send_msg."""

    def __init__(self, api: WeComApi, clock: Callable[[], datetime],
                 ws_sender: WsSender | None = None) -> None:
        self._api = api
        self._clock = clock
        self.ws_sender = ws_sender
        self._used_urls: dict[str, float] = {}  # response_url → its expiry (epoch seconds)

    async def reply(self, context: Mapping[str, Any], text: OutgoingText) -> SendOutcome:
        via = context.get("via") if isinstance(context, Mapping) else None
        if via == "app" and isinstance(context.get("touser"), str):
            return await self._api.send_app_text(context["touser"], text.text)
        if via == "response_url":
            return await self._once(context, text)
        if via == "ws" and isinstance(context.get("chatid"), str):
            if self.ws_sender is None:
                return _retry("websocket not running")
            return await self.ws_sender(context["chatid"], text.text)
        return _give_up("no reply route for this message")

    async def _once(self, context: Mapping[str, Any], text: OutgoingText) -> SendOutcome:
        url, expires = context.get("url"), context.get("expires_at")
        now = self._clock().timestamp()
        if not isinstance(url, str) or not isinstance(expires, int | float) or now >= expires:
            return _give_up("response_url expired")
        self._used_urls = {u: e for u, e in self._used_urls.items() if e > now}
        if url in self._used_urls:
            return _give_up("response_url already used")
        self._used_urls[url] = float(expires)
        outcome = await self._api.post_response_url(url, text.text)
        if outcome.kind == "retry":
            self._used_urls.pop(url, None)  # not consumed: a later attempt may still use it
        return outcome
