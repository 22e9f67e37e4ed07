"""WeCom wire format: callback parsing, reply bodies, WebSocket frames, result mapping.

Pure functions, no I/O. Section numbers refer to docs/platforms/wecom.md; what that
doc marks UNCONFIRMED is a module-level constant here so it is easy to change.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kernel.messages import ImageRef, IncomingMessage
from kernel.outbound import SendOutcome

PLATFORM = "wecom"
BOT_MSG_PREFIX = "bot:"  # AI-bot msgid (HTTP and WebSocket share one id space)
APP_MSG_PREFIX = "app:"  # self-built app MsgId
MEDIA_REF_PREFIX = "media:"  # ImageRef.ref of an app image: fetch with media/get
# ids a message is stored under; longer ones are refused (400) before anything is stored.
# Real ones are short (msgid ~20–40, chatid ~30); a userid is 1–64 bytes (user/create).
MAX_MSG_ID = 128  # without its prefix; inbound.msg_id / checkin.msg_id are String(200)
MAX_CONVERSATION_ID = 128  # chat_group.conversation_id is String(200)
MAX_USER_ID = 64  # person.wecom_userid is String(100)

RESPONSE_URL_PATH = "/cgi-bin/aibot/response"  # §5.3
RESPONSE_URL_VALID_S = 3600  # §5.3: valid 1 hour, usable once
WEBHOOK_SEND_PATH = "/cgi-bin/webhook/send"  # §1.1
APP_TEXT_MAX_BYTES = 2048  # §5.1
WEBHOOK_TEXT_MAX_BYTES = 2048  # §1.2
WEBHOOK_MARKDOWN_MAX_BYTES = 4096  # §1.2
WEBHOOK_IMAGE_MAX_BYTES = 2 * 1024 * 1024  # §1.2
# --- UNCONFIRMED (doc "UNCONFIRMED" list) -- easy to change ---
STREAM_CONTENT_MAX_BYTES = 20480  # §2b, SDK comment only
RESPONSE_URL_MARKDOWN_MAX_BYTES = 4096  # §5.3 gives no cap; the webhook markdown cap is assumed
THROTTLE_RETRY_S = 60.0  # §1.4: 45009, cool down 60 s (SPEC §4: at least the penalty window)
THROTTLE_CODE = 45009
BAD_WEBHOOK_KEY_CODE = 93000
TOKEN_EXPIRED_CODES = frozenset({40014, 42001, 42009})  # §4.1: refetch the token once, retry

UNSUPPORTED_KINDS = {"voice": "audio", "video": "video", "shortvideo": "video", "file": "file"}
_NO_FILES: tuple[ImageRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ParseError:
    """Why a decrypted payload could not be taken (always answered with 400)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid callback that carries no message for us (an event, an unknown kind)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StreamRefresh:
    """AI-bot stream refresh callback (§2b): WeCom asks for the latest content of a stream."""

    stream_id: str


class _Malformed(Exception):
    pass


# ---------------------------------------------------------------- origins and URLs


_UNSAFE_URL_CHARS = re.compile(r"[\s\x00-\x1f\\]")  # urlsplit drops some; others read "\\" as "/"
_DEFAULT_PORTS = {"https": 443, "http": 80}


@lru_cache(maxsize=16)
def _origin_of(base: str) -> tuple[str, str, int] | None:
    try:
        b = urlsplit(base)
        scheme = b.scheme.lower()
        return (scheme, b.hostname or "", b.port or _DEFAULT_PORTS.get(scheme, 0)) if b.hostname else None
    except ValueError:
        return None


def same_origin(url: str, base: str) -> bool:
    """True iff `url` has exactly the scheme, host and port of `base` (and no userinfo)."""
    if not isinstance(url, str) or _UNSAFE_URL_CHARS.search(url):
        return False
    try:
        u = urlsplit(url)
        u_port = u.port
    except ValueError:
        return False
    scheme = u.scheme.lower()
    if scheme not in _DEFAULT_PORTS or "@" in u.netloc or not u.hostname:
        return False
    return (scheme, u.hostname, u_port or _DEFAULT_PORTS[scheme]) == _origin_of(base)


def is_response_url(url: Any, api_base: str) -> bool:
    """§5.3: only post to response_url on the configured API origin and the aibot path."""
    return isinstance(url, str) and same_origin(url, api_base) and \
        urlsplit(url).path == RESPONSE_URL_PATH


def webhook_key(url: str | None, api_base: str) -> str | None:
    """The `key` of a group-robot webhook URL on the API origin, else None."""
    if not url or not same_origin(url, api_base):
        return None
    parts = urlsplit(url)
    if parts.path != WEBHOOK_SEND_PATH:
        return None
    query = parse_qsl(parts.query, keep_blank_values=True)
    keys = [v for k, v in query if k == "key"]
    return keys[0] if len(keys) == 1 and keys[0] and len(query) == 1 else None


# ---------------------------------------------------------------- text sizes


def truncate_utf8(text: str, max_bytes: int, ellipsis: str = "…") -> str:
    """`text` cut to at most max_bytes of UTF-8, never mid-character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    room = max_bytes - len(ellipsis.encode("utf-8"))
    return raw[:max(room, 0)].decode("utf-8", "ignore") + ellipsis


# ---------------------------------------------------------------- AI bot (§2b, §2c)

_LEADING_MENTION = re.compile(r"\A\s*[@＠][^\s@＠]+(?:\s+|\Z)")


def strip_bot_mention(text: str) -> str:
    """Drop the leading "@BotName " WeCom keeps in text.content (§2b)."""
    return _LEADING_MENTION.sub("", text, count=1).strip()


def _str(obj: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _Malformed(key)
    return value


def _capped(value: str, max_chars: int, name: str) -> str:
    """`value` when it is no longer than `max_chars`; an oversized id is malformed."""
    if len(value) > max_chars:
        raise _Malformed(name)
    return value


def _obj(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, Mapping):
        raise _Malformed(key)
    return value


def _image_ref(image: Mapping[str, Any], websocket: bool) -> ImageRef:
    url = _str(image, "url")
    aes_key = image.get("aeskey") if websocket else None
    if aes_key is not None and not isinstance(aes_key, str):
        raise _Malformed("aeskey")
    return ImageRef(ref=url, aes_key=aes_key or None)


def _aibot_content(payload: Mapping[str, Any], msgtype: str, websocket: bool
                   ) -> tuple[str, tuple[ImageRef, ...], str | None]:
    """Text, pictures and the unsupported kind of an AI-bot message (files: _aibot_files)."""
    if msgtype == "file":  # §2b: 1:1 only, `file.url` (encrypted like an image, §4.3)
        return "", (), None
    if msgtype == "text":
        return strip_bot_mention(_str(_obj(payload, "text"), "content", required=False)), (), None
    if msgtype == "image":
        return "", (_image_ref(_obj(payload, "image"), websocket),), None
    if msgtype == "mixed":
        items = _obj(payload, "mixed").get("msg_item")
        if not isinstance(items, list):
            raise _Malformed("msg_item")
        texts: list[str] = []
        images: list[ImageRef] = []
        for item in items:
            if not isinstance(item, Mapping):
                raise _Malformed("msg_item")
            if item.get("msgtype") == "text":
                texts.append(_str(_obj(item, "text"), "content", required=False))
            elif item.get("msgtype") == "image":
                images.append(_image_ref(_obj(item, "image"), websocket))
        return strip_bot_mention(" ".join(t.strip() for t in texts if t.strip())), tuple(images), None
    voice = payload.get("voice") if msgtype == "voice" else None
    heard = voice.get("content") if isinstance(voice, Mapping) else None
    if isinstance(heard, str) and heard.strip():  # §2b: 1:1 only; WeCom's speech-to-text
        return strip_bot_mention(heard), (), None
    return "", (), UNSUPPORTED_KINDS.get(msgtype, "unknown")


def _aibot_files(payload: Mapping[str, Any], msgtype: str, websocket: bool
                 ) -> tuple[ImageRef, ...]:
    """A `file` message's document: no name on the wire, its type is read from its bytes."""
    if msgtype != "file":
        return _NO_FILES
    return (_image_ref(_obj(payload, "file"), websocket),)


def parse_aibot(payload: Any, received_at: datetime, *, api_base: str, websocket: bool = False
                ) -> IncomingMessage | StreamRefresh | Ignored | ParseError:
    """A decrypted AI-bot callback (HTTP) or `aibot_msg_callback` body (WebSocket); never raises.

    reply_context: {"via": "response_url", "url", "expires_at"} over HTTP (only a response_url
    on the API origin is kept), {"via": "ws", "chatid"} over WebSocket.
    """
    try:
        return _parse_aibot(payload, received_at, api_base, websocket)
    except (_Malformed, TypeError, ValueError, AttributeError, RecursionError):
        return ParseError("malformed")


def _parse_aibot(payload: Any, received_at: datetime, api_base: str, websocket: bool
                 ) -> IncomingMessage | StreamRefresh | Ignored | ParseError:
    if not isinstance(payload, Mapping):
        return ParseError("malformed")
    msgtype = _str(payload, "msgtype")
    if msgtype == "event":
        return Ignored("event")
    if msgtype == "stream":
        return StreamRefresh(_str(_obj(payload, "stream"), "id"))
    msgid = _capped(_str(payload, "msgid"), MAX_MSG_ID, "msgid")
    userid = _capped(_str(_obj(payload, "from"), "userid"), MAX_USER_ID, "userid")
    chattype = payload.get("chattype", "single")
    if chattype not in ("group", "single"):
        raise _Malformed("chattype")
    is_group = chattype == "group"
    conversation = (_capped(_str(payload, "chatid"), MAX_CONVERSATION_ID, "chatid")
                    if is_group else userid)
    text, images, unsupported = _aibot_content(payload, msgtype, websocket)
    context: dict[str, Any] | None
    if websocket:
        context = {"via": "ws", "chatid": conversation}
    else:
        url = payload.get("response_url")
        context = ({"via": "response_url", "url": url,
                    "expires_at": int(received_at.timestamp()) + RESPONSE_URL_VALID_S}
                   if is_response_url(url, api_base) else None)
    return IncomingMessage(
        platform=PLATFORM, msg_id=BOT_MSG_PREFIX + msgid, conversation_id=conversation,
        is_group=is_group, sender_id=userid, sender_name=userid, text=text,
        received_at=received_at, images=images, unsupported=unsupported, reply_context=context,
        files=_aibot_files(payload, msgtype, websocket),
        spoken=msgtype == "voice" and unsupported is None)


def stream_id_of(msg_id: str) -> str:
    """The stream id of our answer to a message: its own msgid, so a redelivery answers the
    same stream and a refresh callback can find the stored reply."""
    return msg_id.removeprefix(BOT_MSG_PREFIX)


def stream_reply(stream_id: str, content: str) -> dict[str, Any]:
    """A finished stream answer (§2b): the whole reply at once, markdown."""
    return {"msgtype": "stream", "stream": {
        "id": stream_id, "finish": True,
        "content": truncate_utf8(content, STREAM_CONTENT_MAX_BYTES)}}


def response_url_body(content: str) -> dict[str, Any]:
    """§5.3: markdown posted once to a callback's response_url."""
    return {"msgtype": "markdown",
            "markdown": {"content": truncate_utf8(content, RESPONSE_URL_MARKDOWN_MAX_BYTES)}}


# ---------------------------------------------------------------- WebSocket frames (§2c)


def new_req_id() -> str:
    return uuid.uuid4().hex


def subscribe_frame(bot_id: str, secret: str, req_id: str) -> dict[str, Any]:
    return {"cmd": "aibot_subscribe", "headers": {"req_id": req_id},
            "body": {"bot_id": bot_id, "secret": secret}}


def ping_frame(req_id: str) -> dict[str, Any]:
    return {"cmd": "ping", "headers": {"req_id": req_id}}


def respond_frame(req_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to an `aibot_msg_callback`: same req_id, cmd `aibot_respond_msg`."""
    return {"cmd": "aibot_respond_msg", "headers": {"req_id": req_id}, "body": dict(body)}


def send_markdown_frame(req_id: str, chatid: str, content: str) -> dict[str, Any]:
    """Proactive `aibot_send_msg` to a group chatid or a userid."""
    return {"cmd": "aibot_send_msg", "headers": {"req_id": req_id},
            "body": {"chatid": chatid, "msgtype": "markdown",
                     "markdown": {"content": truncate_utf8(content, RESPONSE_URL_MARKDOWN_MAX_BYTES)}}}


def frame_req_id(frame: Mapping[str, Any]) -> str | None:
    headers = frame.get("headers")
    req_id = headers.get("req_id") if isinstance(headers, Mapping) else None
    return req_id if isinstance(req_id, str) and req_id else None


# ---------------------------------------------------------------- self-built app (§2a)


def _xml_text(root: ET.Element, tag: str, *, required: bool = True) -> str:
    node = root.find(tag)
    value = (node.text or "").strip() if node is not None else ""
    if required and not value:
        raise _Malformed(tag)
    return value


def parse_app_xml(plain: bytes, received_at: datetime) -> IncomingMessage | Ignored | ParseError:
    """A decrypted self-built-app message (§2a): 1:1 text and image; never raises."""
    try:
        text = plain.decode("utf-8")
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            return ParseError("malformed")
        root = ET.fromstring(text)
        if root.tag != "xml":
            return ParseError("malformed")
        return _parse_app(root, received_at)
    except (_Malformed, ET.ParseError, UnicodeDecodeError, ValueError, RecursionError):
        return ParseError("malformed")


def _parse_app(root: ET.Element, received_at: datetime) -> IncomingMessage | Ignored:
    msgtype = _xml_text(root, "MsgType").lower()  # "Text", "IMAGE"… are the same kinds
    if msgtype == "event":
        return Ignored("event")
    msg_id = _capped(_xml_text(root, "MsgId"), MAX_MSG_ID, "MsgId")
    userid = _capped(_xml_text(root, "FromUserName"), MAX_USER_ID, "FromUserName")
    text, unsupported = "", None
    images: tuple[ImageRef, ...] = ()
    if msgtype == "text":
        text = _xml_text(root, "Content", required=False)
    elif msgtype == "image":
        images = (ImageRef(ref=MEDIA_REF_PREFIX + _xml_text(root, "MediaId")),)
    elif msgtype == "voice" and (heard := _xml_text(root, "Recognition", required=False)):
        text = heard  # §2a: speech-to-text, when switched on (UNCONFIRMED for WeCom apps)
    else:
        unsupported = UNSUPPORTED_KINDS.get(msgtype, "unknown")
    return IncomingMessage(
        platform=PLATFORM, msg_id=APP_MSG_PREFIX + msg_id, conversation_id=userid,
        is_group=False, sender_id=userid, sender_name=userid, text=text,
        received_at=received_at, images=images, unsupported=unsupported,
        reply_context={"via": "app", "touser": userid}, spoken=msgtype == "voice" and bool(text))


def app_text_body(touser: str, agent_id: int, content: str) -> dict[str, Any]:
    """§5.1 message/send, text (≤ 2048 bytes)."""
    return {"touser": touser, "msgtype": "text", "agentid": agent_id,
            "text": {"content": truncate_utf8(content, APP_TEXT_MAX_BYTES)}, "safe": 0}


# ---------------------------------------------------------------- results


def _errcode(body: Any) -> int | None:
    if not isinstance(body, Mapping):
        return None
    code = body.get("errcode")
    if isinstance(code, str) and re.fullmatch(r"-?\d{1,12}", code.strip()):
        return int(code)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def errcode_of(body: Any) -> int | None:
    """errcode of a decoded JSON body (int or digit string), None when absent."""
    return _errcode(body)


def classify_api_result(http_status: int, body: Any) -> SendOutcome:
    """An API answer (message/send, response_url, webhook) → ok / retry / give_up (§1.1, §4.1).

    Errors come back as HTTP 200 with errcode != 0. Reasons never carry a URL or key.
    """
    code = _errcode(body)
    if http_status >= 500 or code == -1:
        return SendOutcome("retry", None, "server_busy" if code == -1 else f"http_{http_status}")
    if code == 0 and 200 <= http_status < 300:
        return SendOutcome("ok", None, "ok")
    if code == THROTTLE_CODE:
        return SendOutcome("retry", THROTTLE_RETRY_S, "throttled (45009)")
    if code == BAD_WEBHOOK_KEY_CODE:
        return SendOutcome("give_up", None, "bad key (93000)")
    if code in TOKEN_EXPIRED_CODES:
        return SendOutcome("retry", None, f"access_token expired ({code})")
    if code is not None:
        return SendOutcome("give_up", None, f"errcode {code}")
    if 200 <= http_status < 300:
        return SendOutcome("retry", None, "unparseable_response")
    return SendOutcome("give_up", None, f"http_{http_status}")
