"""DingTalk send results: an HTTP status + JSON answer → ok / retry (after how long) / give up.

Pure functions, no I/O. Facts and section numbers refer to docs/platforms/dingtalk.md;
the outbox and the photo downloader act on the `SendOutcome`s returned here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kernel.outbound import SendOutcome

# --- UNCONFIRMED (doc §10) -- easy to change ---
OPENAPI_THROTTLE_RETRY_S = 60.0  # §6.3: per-robot OpenAPI send rate undocumented
# --- documented retry windows ---
CUSTOM_ROBOT_PENALTY_S = 600.0  # §3.4: 20 msgs/min per robot, then throttled for 10 minutes
APP_QPS_RETRY_S = 1.0  # §6.3: QpsLimitForAppkeyAndApi -> "sleep 1 s and retry"
IP_BAN_RETRY_S = 300.0  # §6.3: 10 000 calls / 20 s per IP -> banned 5 min ({"status": 1111})


# ---------------------------------------------------------------- send results

_OK = SendOutcome("ok", None, "ok")


def _retry(reason: str, after: float | None = None) -> SendOutcome:
    return SendOutcome("retry", after, reason)


def _give_up(reason: str) -> SendOutcome:
    return SendOutcome("give_up", None, reason)


# Legacy oapi.dingtalk.com {"errcode": int} (§3.4 table, §2.4, §6.3 "old" codes).
ERRCODE_TABLE: dict[int, SendOutcome] = {
    -1: _retry("system_busy"),
    90002: _retry("qps_limit_api"),
    90018: _retry("qps_limit_app", APP_QPS_RETRY_S),
    410100: _retry("throttled", CUSTOM_ROBOT_PENALTY_S),
    130101: _retry("throttled", CUSTOM_ROBOT_PENALTY_S),  # observed, older servers
    40035: _give_up("missing_json_body"),
    43004: _give_up("bad_content_type"),
    90020: _give_up("monthly_api_quota"),
    101002: _give_up("message_too_long"),  # observed, older servers
    300001: _give_up("token_invalid"),  # not in the doc; seen for unknown robot tokens
    400013: _give_up("group_dissolved"),
    400101: _give_up("token_not_found"),
    400102: _give_up("robot_disabled"),
    400105: _give_up("unsupported_msgtype"),
    400106: _give_up("robot_not_found"),
    460101: _give_up("message_too_long"),  # observed
    **{code: _give_up("content_rejected") for code in range(430101, 430105)},
}
# Reasons after which the target (webhook / group) should be disabled, not retried later.
TARGET_GONE_REASONS = frozenset(
    {"group_dissolved", "token_not_found", "token_invalid", "robot_disabled", "robot_not_found"}
)
# errcode 310000 sub-kinds, matched on errmsg (English and newer Chinese texts, §3.1).
_SECURITY_HINTS = (
    ("security_keyword", ("keyword", "关键词")),
    ("security_timestamp", ("timestamp", "时间戳")),
    ("security_sign", ("sign", "签名")),
    ("security_ip", ("whitelist", "白名单", "ip地址")),
)
# New api.dingtalk.com string codes (§6.1, §6.3): exact match, then retry-by-prefix.
API_CODE_TABLE: dict[str, SendOutcome] = {
    "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi": _retry("qps_limit_app", APP_QPS_RETRY_S),
    "Forbidden.AccessDenied.QpsLimitForApi": _retry("qps_limit_api"),
    "Forbidden.AccessDenied.ApiCountLimitForOrg": _give_up("monthly_api_quota"),
    **{
        code: _retry("throttled", OPENAPI_THROTTLE_RETRY_S)
        for code in ("send.too.fast", "send.byToken.tooFast", "too.many.group", "too.many.people")
    },
    "system.error": _retry("system_error"),
    "group.disbanded": _give_up("group_dissolved"),
    "bot.stopped": _give_up("robot_disabled"),
    "session.expired": _give_up("session_expired"),
    "session.notExisted": _give_up("session_expired"),
    "invalidParameter.msgParam.tooLong": _give_up("message_too_long"),
}
_SAFE_CODE = re.compile(r"\A[A-Za-z0-9._-]{1,80}\Z")


def _as_errcode(value: Any) -> int | None:
    """errcode is an int, but one doc sample shows "0" as a string (§3.4): accept both."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classify_send_result(http_status: int, body: Mapping[str, Any] | None) -> SendOutcome:
    """Map an HTTP status + decoded JSON body (None if absent/not JSON) to ok/retry/give_up."""
    if not isinstance(body, Mapping):
        body = None
    if body is not None and body.get("status") == 1111:  # §6.3 per-IP ban page
        return _retry("ip_banned", IP_BAN_RETRY_S)
    if body is not None and "errcode" in body:
        code = _as_errcode(body.get("errcode"))
        if code == 0 and 200 <= http_status < 300:
            return _OK
        if code == 310000:
            msg = str(body.get("errmsg", "")).lower()
            hint = next((r for r, keys in _SECURITY_HINTS if any(k in msg for k in keys)), None)
            return _give_up(hint or "security_check_failed")
        if code in ERRCODE_TABLE:
            return ERRCODE_TABLE[code]
        if code is None:
            return _retry("server_error") if http_status >= 500 else _give_up("bad_errcode")
        if code != 0:
            return _retry(f"errcode_{code}") if http_status >= 500 else _give_up(f"errcode_{code}")
    if http_status == 401:
        return _retry("unauthorized")  # §4.1: drop the cached access token, then retry
    if http_status == 429:
        return _retry("throttled")
    if body is not None and isinstance(body.get("code"), str) and not 200 <= http_status < 300:
        api_code = body["code"]
        if api_code in API_CODE_TABLE:
            return API_CODE_TABLE[api_code]
        lowered = api_code.lower()
        if "qpslimit" in lowered or "throttl" in lowered or "toofast" in lowered:
            return _retry("throttled", OPENAPI_THROTTLE_RETRY_S)
        if http_status >= 500:
            return _retry("server_error")
        return _give_up(f"api_{api_code}" if _SAFE_CODE.match(api_code) else "api_error")
    if 200 <= http_status < 300:
        # Every documented success carries JSON (errcode 0 or processQueryKey).
        return _OK if body is not None else _retry("unparseable_response")
    if http_status >= 500:
        return _retry("server_error")
    return _give_up(f"http_{int(http_status)}")
