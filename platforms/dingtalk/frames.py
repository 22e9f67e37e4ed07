"""DingTalk Stream frames (docs/platforms/dingtalk.md §5.3–5.5): decoding a pushed frame and
writing the ACK for it, byte for byte as the official Python SDK (dingtalk-stream 0.24.3)
writes them.

Pure functions, no I/O. Every ACK is the SDK's `AckMessage.to_dict()` (frames.py) put on
the wire by `json.dumps` with its defaults (stream.py `route_message`): keys in the order
code, headers (contentType, then messageId), message, data; ", " and ": " separators;
non-ASCII escaped; `data` itself a `json.dumps` string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CONTENT_TYPE = "application/json"  # frames.py Headers.CONTENT_TYPE_APPLICATION_JSON
STATUS_OK = 200  # frames.py AckMessage.STATUS_OK
STATUS_BAD_REQUEST = 400  # frames.py AckMessage.STATUS_BAD_REQUEST
STATUS_NOT_IMPLEMENT = 404  # frames.py AckMessage.STATUS_NOT_IMPLEMENT
CALLBACK_OK_RESPONSE = "OK"  # what the SDK's ChatbotHandler examples return from process()
CALLBACK_BAD_RESPONSE = "bad request"  # our reason for a message we refuse (code 400)
SYSTEM_ACK_MESSAGE = "OK"  # handlers.py SystemHandler.process
EVENT_ACK_MESSAGE = "not implement"  # handlers.py EventHandler.process (no handler registered)


class UndecodableData(ValueError):
    """A frame whose `data` is not a JSON string (the SDK's json.loads raises: no ACK)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One pushed frame: its type (SYSTEM | EVENT | CALLBACK), topic and messageId."""

    kind: Any
    topic: Any
    message_id: str
    data: Any  # the raw `data` value, a JSON string when well formed


def read_frame(raw: str) -> Frame | None:
    """The frame in a websocket text message, or None when it is not a JSON object with
    headers.messageId (nothing to echo, so nothing to answer)."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    headers = frame.get("headers") if isinstance(frame, Mapping) else None
    if not isinstance(headers, Mapping) or not isinstance(headers.get("messageId"), str):
        return None
    return Frame(frame.get("type"), headers.get("topic"), headers["messageId"], frame.get("data"))


def decode_data(data: Any) -> Any:
    """frames.py `from_dict`: an empty or missing `data` is {}, else json.loads of it."""
    if not data:
        return {}
    if not isinstance(data, str):
        raise UndecodableData("data is not a string")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UndecodableData("data is not JSON") from exc


def _ack(code: int, message_id: str, message: str, data: Any) -> str:
    headers = {"contentType": CONTENT_TYPE, "messageId": message_id}  # Headers.to_dict order
    return json.dumps({"code": code, "headers": headers, "message": message,
                       "data": json.dumps(data)})


def callback_ack(message_id: str, response: str = CALLBACK_OK_RESPONSE,
                 code: int = STATUS_OK) -> str:
    """handlers.py CallbackHandler.raw_process: `message` stays "", data = {"response": …}."""
    return _ack(code, message_id, "", {"response": response})


def callback_refusal(message_id: str) -> str:
    """What a ChatbotHandler answers for a message it refuses: code 400, same shape."""
    return callback_ack(message_id, CALLBACK_BAD_RESPONSE, STATUS_BAD_REQUEST)


def system_ack(message_id: str, data: Any) -> str:
    """handlers.py SystemHandler.raw_process, for every SYSTEM topic: 200 "OK", the frame's
    decoded data serialised again (a ping's opaque comes back)."""
    return _ack(STATUS_OK, message_id, SYSTEM_ACK_MESSAGE, data)


def event_ack(message_id: str, data: Any) -> str:
    """handlers.py EventHandler.raw_process as the SDK runs it when no event handler is
    registered (we subscribe to none): 404 "not implement", the data echoed."""
    return _ack(STATUS_NOT_IMPLEMENT, message_id, EVENT_ACK_MESSAGE, data)
