"""DingTalk wire format: signatures, callback parsing, outgoing bodies.

Pure functions, no I/O. Facts and section numbers refer to docs/platforms/dingtalk.md.
Everything that doc marks UNCONFIRMED is a module-level constant below.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus, urlsplit

from kernel.messages import ImageRef, IncomingMessage, OutgoingText

PLATFORM = "dingtalk"
MAX_CLOCK_SKEW_MS = 3_600_000  # §1.1 / §3.2: "more than 1 hour" is illegal
QUOTA_PAUSED_ERROR_CODE = 20001  # §1.2 / §6.3: Webhook&Stream monthly quota exhausted
MAX_AT_USERS = 50  # §2.2: custom-robot doc, at most 50 atUserIds per message
GROUP_MSG_PARAM_MAX_BYTES = 15_000  # §2.4 / §6.1 (documented)
OTO_MAX_USER_IDS = 20  # §6.2 (doc says 20, an error text says 100)
# §1.2 id lengths: a longer id is refused (400) before anything is stored
MAX_MSG_ID_CHARS = 128  # inbound.msg_id / checkin.msg_id are String(200)
MAX_CONVERSATION_ID_CHARS = 128  # chat_group.conversation_id is String(200)
MAX_USER_ID_CHARS = 64  # person.dingtalk_userid is String(100)
# --- UNCONFIRMED (doc §10) -- easy to change ---
WEBHOOK_BODY_MAX_BYTES = 20_000  # §2.4: observed 460101 / "body 大小不合法", not in docs
ACCEPT_TOP_LEVEL_CONTENT = True  # §1.2: one official HTTP sample has top-level "content": str
STRIP_GENERIC_LEADING_AT_IN_RICHTEXT = True  # §1.3: "@<robot name>" kept in a richText item

UNSUPPORTED_KINDS = frozenset({"audio", "video"})
MAX_FILE_NAME_CHARS = 120  # a file name is quoted back and stored; longer is cut, not refused
DEFAULT_MARKDOWN_TITLE = "研修助手"  # what the conversation list shows for a markdown message


@dataclass(frozen=True, slots=True)
class ParseError:
    reason: str  # "malformed" | "no_staff_id" | "quota_paused" | "platform_error"


@dataclass(slots=True)  # not frozen: built once per message (see kernel/messages.py)
class DingTalkContext:
    session_webhook: str | None
    session_webhook_expires_ms: int | None
    robot_code: str | None
    conversation_title: str | None
    create_at_ms: int | None = None

    def reply_context(self, conversation_id: str, is_group: bool, sender_id: str) -> dict[str, Any]:
        """A plain JSON-able dict for IncomingMessage.reply_context (stored with pending work)."""
        return {
            "session_webhook": self.session_webhook,
            "session_webhook_expires_ms": self.session_webhook_expires_ms,
            "robot_code": self.robot_code,
            "conversation_id": conversation_id,
            "is_group": is_group,
            "sender_id": sender_id,
        }

    def as_reply_context(self, msg: IncomingMessage) -> dict[str, Any]:
        return self.reply_context(msg.conversation_id, msg.is_group, msg.sender_id)


# ---------------------------------------------------------------- signatures


def _hmac_b64(timestamp: str, secret: str) -> str:
    msg = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def callback_signature(timestamp: str, app_secret: str) -> str:
    """§1.1: base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret)), not URL-encoded."""
    return _hmac_b64(timestamp, app_secret)


def verify_callback(
    timestamp: str | None, sign: str | None, app_secret: str, now_ms: int
) -> str | None:
    """None when the HTTP callback headers are valid, else a reason string."""
    if not timestamp or not sign or not isinstance(timestamp, str) or not isinstance(sign, str):
        return "missing_headers"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 16:
        return "bad_timestamp"
    if abs(now_ms - int(timestamp)) > MAX_CLOCK_SKEW_MS:
        return "stale_timestamp"
    expected = callback_signature(timestamp, app_secret).encode()
    if not hmac.compare_digest(expected, sign.encode("utf-8", "replace")):
        return "bad_sign"
    return None


def custom_robot_signed_url(webhook_url: str, secret: str, timestamp_ms: int) -> str:
    """§3.2 加签: webhook + "&timestamp=" + ts + "&sign=" + quote_plus(base64(hmac))."""
    ts = str(int(timestamp_ms))
    sep = "&" if "?" in webhook_url else "?"
    return f"{webhook_url}{sep}timestamp={ts}&sign={quote_plus(_hmac_b64(ts, secret))}"


def is_allowed_origin(url: str, base: str) -> bool:
    """True iff `url` has exactly the scheme, host and port of `base` (and no userinfo)."""
    if not isinstance(url, str) or not isinstance(base, str):
        return False
    if any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
        return False  # urlsplit silently drops tabs/newlines; other parsers treat "\\" as "/"
    try:
        u, b = urlsplit(url), urlsplit(base)
        u_port, b_port = u.port, b.port
    except ValueError:
        return False
    scheme, default_ports = u.scheme.lower(), {"https": 443, "http": 80}
    return (
        "@" not in u.netloc
        and bool(u.hostname)
        and scheme in default_ports
        and scheme == b.scheme.lower()
        and u.hostname == b.hostname
        and (u_port or default_ports[scheme]) == (b_port or default_ports[scheme])
    )


SESSION_WEBHOOK_MARGIN_MS = 60_000  # stop using a sessionWebhook a minute before it expires


def usable_session_webhook(
    url: Any, expires_ms: Any, oapi_base: str, now_ms: int
) -> str | None:
    """The sessionWebhook URL if it is on the configured origin and not about to expire."""
    if not isinstance(url, str) or not is_allowed_origin(url, oapi_base):
        return None
    expiry = _opt_ms(expires_ms)
    if expiry is None or now_ms > expiry - SESSION_WEBHOOK_MARGIN_MS:
        return None
    return url


# ---------------------------------------------------------------- incoming


class _Malformed(Exception):
    pass


def _opt_str(payload: Mapping[Any, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _Malformed(key)


def _req_str(payload: Mapping[Any, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise _Malformed(key)
    return value


def _req_id(payload: Mapping[Any, Any], key: str, max_chars: int) -> str:
    """A required id no longer than `max_chars` (an oversized one is malformed)."""
    value = _req_str(payload, key)
    if len(value) > max_chars:
        raise _Malformed(key)
    return value


def _opt_ms(value: Any) -> int | None:
    """A millisecond time given as a JSON number or a digit string (createAt is both)."""
    kind = type(value)  # exact types, as JSON gives them (a bool is not a time)
    if kind is int or kind is float:
        return int(value) if -1e16 < value < 1e16 else None  # False for nan and inf
    if kind is str and value.isascii() and value.isdigit() and len(value) <= 16:
        return int(value)
    return None


def _is_mapping(value: Any) -> bool:
    # parsed JSON is a dict: answered without the ABC check, which costs ten times more
    return type(value) is dict or isinstance(value, Mapping)


def _strip_names(text: str, names: Collection[str]) -> str:
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for name in names:
            tag = f"@{name}"
            if name and text.startswith(tag):
                text, changed = text[len(tag) :].strip(), True
            if name and text.endswith(tag):
                text, changed = text[: -len(tag)].strip(), True
    return text


_LEADING_AT = re.compile(r"\A\s*@\S+\s*")


def _is_rich_picture(item: Mapping[Any, Any]) -> bool:
    """§1.3: a richText picture is `{"type": "picture", "downloadCode", …}`; an item with a
    downloadCode and no type is one too (the SDK's get_image_list takes any downloadCode)."""
    kind = item.get("type")
    return kind == "picture" or (kind is None and "downloadCode" in item)


def _recognition(content: Any) -> str:
    """§1.3: the platform's speech-to-text of an audio message (`content.recognition`), or ""."""
    heard = content.get("recognition") if _is_mapping(content) else None
    return heard.strip() if isinstance(heard, str) else ""


def parse_callback(
    payload: Any, received_at: datetime, robot_names: Collection[str] = ()
) -> tuple[IncomingMessage, DingTalkContext] | ParseError:
    """Parse a robot message (HTTP body or Stream `data`); never raises on bad input.

    `robot_names` (optional) are display names whose "@name" is stripped from either end.
    """
    try:
        names = tuple(n for n in robot_names if isinstance(n, str)) if robot_names else ()
        return _parse(payload, received_at, names)
    except (_Malformed, TypeError, ValueError, AttributeError, RecursionError):
        return ParseError("malformed")


def _parse(
    payload: Any, received_at: datetime, names: tuple[str, ...]
) -> tuple[IncomingMessage, DingTalkContext] | ParseError:
    if not _is_mapping(payload):
        return ParseError("malformed")
    err = payload.get("errorCode", payload.get("errCode"))
    if err is not None:
        paused = str(err).strip() == str(QUOTA_PAUSED_ERROR_CODE)
        return ParseError("quota_paused" if paused else "platform_error")
    msg_id = _req_id(payload, "msgId", MAX_MSG_ID_CHARS)
    msgtype = _req_str(payload, "msgtype")
    conversation_id = _req_id(payload, "conversationId", MAX_CONVERSATION_ID_CHARS)
    conv_type = payload.get("conversationType")
    if isinstance(conv_type, int) and not isinstance(conv_type, bool):
        conv_type = str(conv_type)
    if conv_type not in ("1", "2"):
        raise _Malformed("conversationType")
    staff_id = _opt_str(payload, "senderStaffId")
    if not staff_id:
        return ParseError("no_staff_id")
    if len(staff_id) > MAX_USER_ID_CHARS:
        raise _Malformed("senderStaffId")
    sender_name = _opt_str(payload, "senderNick") or ""
    context = DingTalkContext(  # by position, in field order (see kernel/messages.py)
        _opt_str(payload, "sessionWebhook") or None,  # session_webhook
        _opt_ms(payload.get("sessionWebhookExpiredTime")),  # session_webhook_expires_ms
        _opt_str(payload, "robotCode") or None,  # robot_code
        _opt_str(payload, "conversationTitle"),  # conversation_title
        _opt_ms(payload.get("createAt")),  # create_at_ms
    )

    text, unsupported, spoken = "", None, False
    images: tuple[ImageRef, ...] = ()
    files: tuple[ImageRef, ...] = ()
    content = payload.get("content")
    if msgtype == "text":
        body = payload.get("text")
        if _is_mapping(body) and isinstance(body.get("content"), str):
            raw = body["content"]
        elif ACCEPT_TOP_LEVEL_CONTENT and isinstance(content, str):
            raw = content
        else:
            raise _Malformed("text")
        text = _strip_names(raw, names)
    elif msgtype == "picture":
        if not isinstance(content, Mapping):
            raise _Malformed("content")
        images = (ImageRef(ref=_req_str(content, "downloadCode")),)
    elif msgtype == "richText":
        items = content.get("richText") if isinstance(content, Mapping) else None
        if not isinstance(items, list):
            raise _Malformed("richText")
        parts: list[str] = []
        refs: list[ImageRef] = []
        for item in items:
            if not isinstance(item, Mapping):
                raise _Malformed("richText item")
            if isinstance(item.get("text"), str):
                parts.append(item["text"])
            elif _is_rich_picture(item):
                refs.append(ImageRef(ref=_req_str(item, "downloadCode")))
        text = _strip_names("".join(parts), names)
        if STRIP_GENERIC_LEADING_AT_IN_RICHTEXT and not names:
            text = _LEADING_AT.sub("", text, count=1).strip()
        images = tuple(refs)
    elif msgtype == "file":  # §1.3: 1:1 chats only; fetched like a picture (§4)
        if not isinstance(content, Mapping):
            raise _Malformed("content")
        name = (_opt_str(content, "fileName") or "")[:MAX_FILE_NAME_CHARS] or None
        files = (ImageRef(ref=_req_str(content, "downloadCode"), name=name),)
    elif msgtype == "audio" and (heard := _recognition(content)):
        text, spoken = _strip_names(heard, names), True
    else:
        unsupported = msgtype if msgtype in UNSUPPORTED_KINDS else "unknown"

    message = IncomingMessage(  # by position, in field order (see kernel/messages.py)
        PLATFORM,  # platform
        msg_id,  # msg_id
        conversation_id,  # conversation_id
        conv_type == "2",  # is_group
        staff_id,  # sender_id
        sender_name,  # sender_name
        text,  # text
        received_at,  # received_at
        images,  # images
        unsupported,  # unsupported
        context.reply_context(conversation_id, conv_type == "2", staff_id),  # reply_context
        files,  # files
        spoken,  # spoken
    )
    return message, context


# ---------------------------------------------------------------- outgoing bodies


def _with_mentions(text: str, user_ids: tuple[str, ...]) -> str:
    """§2.2: the text must contain "@<userId>" where each mention should render."""
    missing = [f"@{uid}" for uid in user_ids if f"@{uid}" not in text]
    return f"{text} {' '.join(missing)}" if missing else text


def _at_ids(at_user_ids: Collection[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(at_user_ids))[:MAX_AT_USERS]


def text_body(
    text: str,
    at_user_ids: Collection[str] = (),
    at_mobiles: Collection[str] = (),
    msg_uuid: str | None = None,
) -> dict[str, Any]:
    """sessionWebhook / custom-robot text body (§2.2, §3.3); msg_uuid only for /robot/send."""
    # most replies @ nobody: skip the mention bookkeeping then
    ids = _at_ids(at_user_ids) if at_user_ids else ()
    mobiles = tuple(dict.fromkeys(at_mobiles))[:MAX_AT_USERS] if at_mobiles else ()
    body: dict[str, Any] = {
        "msgtype": "text",
        "text": {"content": _with_mentions(_with_mentions(text, ids), mobiles) if ids or mobiles else text},
        "at": {"atUserIds": list(ids), "atMobiles": list(mobiles), "isAtAll": False},
    }
    return body if msg_uuid is None else {**body, "msgUuid": msg_uuid}


def markdown_body(
    title: str,
    text: str,
    at_user_ids: Collection[str] = (),
    msg_uuid: str | None = None,
    at_mobiles: Collection[str] = (),
) -> dict[str, Any]:
    """sessionWebhook / custom-robot markdown body (§2.2, §3.3, fixture reply_markdown.json)."""
    ids = _at_ids(at_user_ids)
    mobiles = tuple(dict.fromkeys(at_mobiles))[:MAX_AT_USERS]
    at: dict[str, Any] = {"atUserIds": list(ids), "isAtAll": False}
    if mobiles:
        at = {"atUserIds": list(ids), "atMobiles": list(mobiles), "isAtAll": False}
    body: dict[str, Any] = {
        "msgtype": "markdown",
        "markdown": {"title": title, "text": _with_mentions(_with_mentions(text, ids), mobiles)},
        "at": at,
    }
    return body if msg_uuid is None else {**body, "msgUuid": msg_uuid}


def reply_body(out: OutgoingText | None) -> dict[str, Any]:
    """A chat reply as an HTTP-callback response or a sessionWebhook body (§2.1, §2.2)."""
    if out is None or not out.text:
        return empty_reply_body()
    if out.markdown:
        return markdown_body(out.title or DEFAULT_MARKDOWN_TITLE, out.text, out.mentions)
    return text_body(out.text, out.mentions)


def empty_reply_body() -> dict[str, Any]:
    """§2.1: HTTP-callback response meaning "post nothing"."""
    return {"msgtype": "empty"}


def _msg_param(text: str, markdown_title: str | None) -> tuple[str, str]:
    if markdown_title is None:
        return "sampleText", json.dumps({"content": text}, ensure_ascii=False)
    return "sampleMarkdown", json.dumps({"title": markdown_title, "text": text}, ensure_ascii=False)


def group_send_body(
    robot_code: str, open_conversation_id: str, text: str, markdown_title: str | None = None
) -> dict[str, Any]:
    """POST /v1.0/robot/groupMessages/send (§6.1). msgParam is a JSON string, ≤ 15 000 bytes."""
    key, param = _msg_param(text, markdown_title)
    return {
        "robotCode": robot_code,
        "openConversationId": open_conversation_id,
        "msgKey": key,
        "msgParam": param,
    }


def oto_send_body(
    robot_code: str, user_ids: Collection[str], text: str, markdown_title: str | None = None
) -> dict[str, Any]:
    """POST /v1.0/robot/oToMessages/batchSend (§6.2); at most OTO_MAX_USER_IDS per call."""
    ids = list(dict.fromkeys(user_ids))
    if not ids or len(ids) > OTO_MAX_USER_IDS:
        raise ValueError(f"need 1..{OTO_MAX_USER_IDS} user ids, got {len(ids)}")
    key, param = _msg_param(text, markdown_title)
    return {"robotCode": robot_code, "userIds": ids, "msgKey": key, "msgParam": param}
