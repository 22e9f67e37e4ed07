"""DingTalk OpenAPI client over the app's aiohttp session: access token, file download, sends.

Also the two adapters the photo downloader uses: `DingTalkImageFetcher` (downloadCode →
bytes) and `SessionWebhookReplier` (answer a message after its request was acknowledged).
Section numbers refer to docs/platforms/dingtalk.md. No URL, token or secret is
ever logged or put into a reason string.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from kernel.messages import ImageRef, OutgoingText
from kernel.outbound import FetchError, SendOutcome
from platforms.dingtalk import results, wire
from platforms.dingtalk.settings import DingTalkConfig

log = logging.getLogger(__name__)

TOKEN_PATH = "/v1.0/oauth2/accessToken"  # §4.1
DOWNLOAD_PATH = "/v1.0/robot/messageFiles/download"  # §4.2
GROUP_SEND_PATH = "/v1.0/robot/groupMessages/send"  # §6.1
OTO_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"  # §6.2
TOKEN_HEADER = "x-acs-dingtalk-access-token"
TOKEN_REFRESH_EARLY = timedelta(minutes=5)  # the official SDK refreshes 5 minutes early
# UNCONFIRMED: which api.dingtalk.com codes mean "this access token is no longer valid"
AUTH_ERROR_CODES = frozenset({"InvalidAuthentication", "invalidAuthentication"})
DOWNLOAD_CODE_INVALID = "invalidParameter.robotCode.downloadCode"  # wrong or expired (§4.2)
DOWNLOAD_CHUNK = 64 * 1024
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: dict[str, Any] | None  # decoded JSON object, None when absent or not an object


def _retry(reason: str, after: float | None = None) -> SendOutcome:
    return SendOutcome("retry", after, reason)


def _give_up(reason: str) -> SendOutcome:
    return SendOutcome("give_up", None, reason)


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _is_auth_error(resp: ApiResponse) -> bool:
    code = resp.body.get("code") if resp.body else None
    return resp.status == 401 or code in AUTH_ERROR_CODES


class DingTalkApi:
    """The app's credentials, its cached access token and the calls that need them."""

    def __init__(self, http: aiohttp.ClientSession, config: DingTalkConfig,
                 clock: Callable[[], datetime]) -> None:
        self.http = http
        self.config = config
        self.clock = clock
        self.api_base = config.api_base.rstrip("/")
        self._token: str | None = None
        self._token_expires: datetime | None = None
        self._token_lock = asyncio.Lock()
        self.token_fetches = 0  # how many times a token was requested (tests, metrics)

    @property
    def robot_code(self) -> str:
        """The configured robotCode; for an enterprise robot it equals the Client ID (§10.11)."""
        return self.config.robot_code or self.config.app_key.value

    # ------------------------------------------------------------ transport

    async def post_json(self, url: str, body: Mapping[str, Any],
                        headers: Mapping[str, str] | None = None) -> ApiResponse | SendOutcome:
        """POST a JSON body; a network failure is a retry outcome, never an exception."""
        try:
            async with self.http.post(url, data=_json_bytes(body),
                                      headers={**JSON_HEADERS, **(headers or {})}) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("dingtalk request failed: %s", type(exc).__name__)
            return _retry("network")
        try:
            decoded = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            decoded = None
        return ApiResponse(status, decoded if isinstance(decoded, dict) else None)

    async def post_webhook(self, url: str, body: Mapping[str, Any]) -> SendOutcome:
        """POST to a custom-robot webhook or a sessionWebhook (no token) and classify it."""
        resp = await self.post_json(url, body)
        if isinstance(resp, SendOutcome):
            return resp
        return results.classify_send_result(resp.status, resp.body)

    # ------------------------------------------------------------ access token

    async def access_token(self, *, stale: str | None = None) -> str | SendOutcome:
        """The cached app token; fetched when missing, near expiry, or equal to `stale`."""
        async with self._token_lock:
            now = self.clock()
            if (self._token is not None and self._token != stale and self._token_expires
                    and now < self._token_expires - TOKEN_REFRESH_EARLY):
                return self._token
            self._token = None
            self.token_fetches += 1
            resp = await self.post_json(f"{self.api_base}{TOKEN_PATH}", {
                "appKey": self.config.app_key.value, "appSecret": self.config.app_secret.value})
            if isinstance(resp, SendOutcome):
                return resp
            body = resp.body or {}
            token, expires_in = body.get("accessToken"), body.get("expireIn")
            if resp.status == 200 and isinstance(token, str) and token:
                seconds = expires_in if isinstance(expires_in, int | float) else 7200
                self._token, self._token_expires = token, now + timedelta(seconds=float(seconds))
                return token
            if body.get("code") == "invalidClientIdOrSecret":
                log.error("dingtalk rejected the app credentials (dingtalk.app_key/app_secret)")
                return _give_up("bad_credentials")
            outcome = results.classify_send_result(resp.status, resp.body)
            return outcome if outcome.kind != "ok" else _retry("token_unavailable")

    async def call(self, path: str, body: Mapping[str, Any]) -> ApiResponse | SendOutcome:
        """POST an api.dingtalk.com call with the token; on an auth error refresh it once."""
        token = await self.access_token()
        if isinstance(token, SendOutcome):
            return token
        resp = await self.post_json(f"{self.api_base}{path}", body, {TOKEN_HEADER: token})
        if isinstance(resp, ApiResponse) and _is_auth_error(resp):
            token = await self.access_token(stale=token)
            if isinstance(token, SendOutcome):
                return token
            resp = await self.post_json(f"{self.api_base}{path}", body, {TOKEN_HEADER: token})
        return resp

    # ------------------------------------------------------------ files

    async def download(self, download_code: str, robot_code: str, max_bytes: int) -> bytes | FetchError:
        """§4.2: exchange a downloadCode for a short-lived URL, then GET it (size-capped)."""
        resp = await self.call(DOWNLOAD_PATH, {"downloadCode": download_code, "robotCode": robot_code})
        if isinstance(resp, SendOutcome):
            return FetchError(resp.reason, retry=resp.kind == "retry")
        url = resp.body.get("downloadUrl") if resp.body else None
        if resp.status != 200 or not isinstance(url, str):
            if resp.body and resp.body.get("code") == DOWNLOAD_CODE_INVALID:
                return FetchError("download_code_invalid", retry=False)
            outcome = results.classify_send_result(resp.status, resp.body)
            if outcome.kind == "ok":
                return FetchError("no_download_url", retry=False)
            return FetchError(outcome.reason, retry=outcome.kind == "retry")
        if urlsplit(url).scheme not in ("http", "https"):
            return FetchError("bad_download_url", retry=False)
        return await self._get_capped(url, max_bytes)

    async def _get_capped(self, url: str, max_bytes: int) -> bytes | FetchError:
        try:
            async with self.http.get(url) as resp:
                if resp.status != 200:
                    retry = resp.status >= 500 or resp.status in (408, 429)
                    return FetchError(f"download_http_{resp.status}", retry=retry)
                if resp.content_length is not None and resp.content_length > max_bytes:
                    return FetchError("too_large", retry=False)
                data = bytearray()
                async for chunk in resp.content.iter_chunked(DOWNLOAD_CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        return FetchError("too_large", retry=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("dingtalk file download failed: %s", type(exc).__name__)
            return FetchError("network", retry=True)
        return bytes(data) if data else FetchError("empty_file", retry=False)

    # ------------------------------------------------------------ proactive sends (§6)

    async def group_send(self, conversation_id: str, text: str,
                         markdown_title: str | None = None) -> SendOutcome:
        """groupMessages/send (sampleText / sampleMarkdown); cannot @ anyone."""
        body = wire.group_send_body(self.robot_code, conversation_id, text, markdown_title)
        if len(body["msgParam"].encode()) > wire.GROUP_MSG_PARAM_MAX_BYTES:
            return _give_up("message_too_long")
        resp = await self.call(GROUP_SEND_PATH, body)
        if isinstance(resp, SendOutcome):
            return resp
        return results.classify_send_result(resp.status, resp.body)

    async def oto_send(self, user_ids: Collection[str], text: str,
                       markdown_title: str | None = None) -> SendOutcome:
        """oToMessages/batchSend to at most 20 users; throttled users mean "retry later"."""
        try:
            body = wire.oto_send_body(self.robot_code, user_ids, text, markdown_title)
        except ValueError:
            return _give_up("bad_user_ids")
        if len(body["msgParam"].encode()) > wire.GROUP_MSG_PARAM_MAX_BYTES:
            return _give_up("message_too_long")
        resp = await self.call(OTO_SEND_PATH, body)
        if isinstance(resp, SendOutcome):
            return resp
        outcome = results.classify_send_result(resp.status, resp.body)
        if outcome.kind == "ok" and resp.body:
            if resp.body.get("flowControlledStaffIdList"):
                return _retry("throttled", results.OPENAPI_THROTTLE_RETRY_S)
            invalid = resp.body.get("invalidStaffIdList")
            if isinstance(invalid, list) and len(invalid) >= len(body["userIds"]):
                return _give_up("invalid_user")
        return outcome


class DingTalkImageFetcher:
    """kernel.outbound.ImageFetcher for DingTalk: an ImageRef's `ref` is its downloadCode."""

    def __init__(self, api: DingTalkApi, max_bytes: int) -> None:
        self.api = api
        self.max_bytes = max_bytes

    async def fetch(self, image: ImageRef) -> bytes | FetchError:
        if image.data is not None:
            return image.data
        if not image.ref:
            return FetchError("no_download_code", retry=False)
        return await self.api.download(image.ref, self.api.robot_code, self.max_bytes)


class SessionWebhookReplier:
    """kernel.outbound.Replier for DingTalk: the message's sessionWebhook while it is valid and on
    the configured origin, else the OpenAPI (group send, or a 1:1 batchSend to the sender)."""

    def __init__(self, api: DingTalkApi, oapi_base: str, clock: Callable[[], datetime]) -> None:
        self.api = api
        self.oapi_base = oapi_base
        self.clock = clock

    async def reply(self, context: Mapping[str, Any], text: OutgoingText) -> SendOutcome:
        now_ms = int(self.clock().timestamp() * 1000)
        url = wire.usable_session_webhook(context.get("session_webhook"),
                                          context.get("session_webhook_expires_ms"),
                                          self.oapi_base, now_ms)
        if url is not None:
            return await self.api.post_webhook(url, wire.reply_body(text))
        title = (text.title or wire.DEFAULT_MARKDOWN_TITLE) if text.markdown else None
        conversation, sender = context.get("conversation_id"), context.get("sender_id")
        if context.get("is_group") and isinstance(conversation, str) and conversation:
            return await self.api.group_send(conversation, text.text, title)
        if not context.get("is_group") and isinstance(sender, str) and sender:
            return await self.api.oto_send([sender], text.text, title)
        return _give_up("no_reply_route")
