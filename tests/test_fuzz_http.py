"""Both platforms' verification paths end to end over HTTP, fuzzed: whatever arrives without
a valid signature is a 4xx and stores nothing (inbound and check-in rows are counted around
every request); forged signatures are always 401; validly signed garbage is never a 5xx.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import create_app
from bot.config import config_from_mapping
from platforms.dingtalk import wire as dingtalk_wire
from platforms.wecom.crypto import WeComCrypto
from storage.models import Checkin, Inbound
from tests.conftest import FIXTURES, FakeClock
from tests.wecom_fake import AES_KEY, CORP_ID, TOKEN, Signer, app_text_xml

# one app (and database) serves every example of a test: the fixture is function-scoped on purpose
HTTP = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

DT_SECRET = "FUZZ-app-secret-0000000000000000000000000000000000000000000000"
NOWHERE = "http://127.0.0.1:9"  # never called: nothing here gets past verification


@pytest.fixture
async def bot(aiohttp_client: Any, tmp_path: Path, db_url: str, clock: FakeClock, seeded: Any) -> Any:
    config = config_from_mapping({
        "database": {"url": db_url}, "storage": {"files_dir": str(tmp_path / "files")},
        "dingtalk": {"enabled": True, "app_secret": DT_SECRET, "api_base": NOWHERE, "oapi_base": NOWHERE},
        "wecom": {"enabled": True, "bot_token": TOKEN, "bot_encoding_aes_key": AES_KEY, "corp_id": CORP_ID,
                  "corp_secret": "FUZZ", "agent_id": 1000002, "token": TOKEN, "encoding_aes_key": AES_KEY,
                  "api_base": NOWHERE},
    }, env={})
    client = await aiohttp_client(create_app(config, clock=clock))
    client.db = seeded
    return client


async def stored(db: Any) -> tuple[int, int]:
    async with db.sessions() as s:
        inbound = await s.scalar(select(func.count()).select_from(Inbound))
        checkins = await s.scalar(select(func.count()).select_from(Checkin))
    return inbound, checkins


header_text = st.one_of(st.none(), st.text(st.characters(codec="ascii", exclude_categories=["Cc"]),
                                           max_size=50))
bodies = st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                   st.sampled_from([b"{}", b"[]", b"null", b'{"msgtype":"text"}', b"<xml/>"]))
REAL_CHECKIN = FIXTURES / "dingtalk" / "group_text.json"


def _checkin_body(msg_id: str) -> bytes:
    payload = json.loads(REAL_CHECKIN.read_text(encoding="utf-8"))
    payload.update(msgId=msg_id, senderStaffId="dt-zhangming")
    return json.dumps(payload, ensure_ascii=False).encode()


@HTTP
@given(timestamp=header_text, sign=header_text, body=bodies, real_message=st.booleans())
async def test_dingtalk_callbacks_without_a_valid_signature_are_refused(
        bot: Any, timestamp: str | None, sign: str | None, body: bytes, real_message: bool) -> None:
    before = await stored(bot.db)
    headers = {k: v for k, v in (("timestamp", timestamp), ("sign", sign)) if v is not None}
    data = _checkin_body("msgFUZZ0001==") if real_message else body
    resp = await bot.post("/dingtalk/callback", data=data, headers=headers)
    assert resp.status == 401, (headers, resp.status)
    assert await stored(bot.db) == before


@HTTP
@given(skew_ms=st.one_of(st.integers(-10**7, 10**7), st.sampled_from([3_600_001, -3_600_001])),
       secret=st.sampled_from(["", "wrong", DT_SECRET + "x", DT_SECRET.lower()]), sign_ok=st.booleans())
async def test_forged_or_stale_dingtalk_signatures_are_refused(
        bot: Any, clock: FakeClock, skew_ms: int, secret: str, sign_ok: bool) -> None:
    before = await stored(bot.db)
    ts = str(int(clock.now.timestamp() * 1000) + skew_ms)
    if sign_ok:  # the right secret, but a timestamp more than an hour off
        assume(abs(skew_ms) > dingtalk_wire.MAX_CLOCK_SKEW_MS)
        secret = DT_SECRET
    headers = {"timestamp": ts, "sign": dingtalk_wire.callback_signature(ts, secret)}
    resp = await bot.post("/dingtalk/callback", data=_checkin_body("msgFUZZ0002=="), headers=headers)
    assert resp.status == 401
    assert await stored(bot.db) == before


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=15),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)


@HTTP
@given(body=st.one_of(bodies, json_like.map(lambda v: json.dumps(v).encode())))
async def test_signed_garbage_to_dingtalk_is_never_a_server_error(bot: Any, clock: FakeClock, body: bytes) -> None:
    before = await stored(bot.db)
    ts = str(int(clock.now.timestamp() * 1000))
    headers = {"timestamp": ts, "sign": dingtalk_wire.callback_signature(ts, DT_SECRET)}
    resp = await bot.post("/dingtalk/callback", data=body, headers=headers)
    event(f"HTTP {resp.status}")
    assert resp.status in (200, 400), resp.status
    inbound, checkins = await stored(bot.db)
    assert checkins == before[1]
    assert inbound - before[0] <= (1 if resp.status == 200 else 0)


bot_signer = Signer(receive_id="")
app_signer = Signer(receive_id=CORP_ID)
query_values = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["", "1678154100", "nonce1"]))


def _query(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


@HTTP
@given(method=st.sampled_from(["GET", "POST"]), path=st.sampled_from(["/wecom/bot", "/wecom/callback"]),
       sig=query_values, ts=query_values, nonce=query_values, echostr=query_values, body=bodies)
async def test_wecom_requests_with_random_signatures_are_refused(
        bot: Any, method: str, path: str, sig: str | None, ts: str | None, nonce: str | None,
        echostr: str | None, body: bytes) -> None:
    before = await stored(bot.db)
    params = _query(msg_signature=sig, timestamp=ts, nonce=nonce, echostr=echostr)
    resp = await bot.request(method, path, params=params, data=body if method == "POST" else None)
    event(f"HTTP {resp.status}")
    assert 400 <= resp.status < 500, (method, path, params, resp.status)
    assert await stored(bot.db) == before


@HTTP
@given(path=st.sampled_from(["/wecom/bot", "/wecom/callback"]),
       token=st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20),
       tamper=st.sampled_from(["token", "signature", "ciphertext"]), verify=st.booleans())
async def test_forged_wecom_signatures_are_always_rejected(
        bot: Any, path: str, token: str, tamper: str, verify: bool) -> None:
    assume(token != TOKEN)
    before = await stored(bot.db)
    signer = app_signer if path == "/wecom/callback" else bot_signer
    if path == "/wecom/callback":
        plain = app_text_xml("wc-zhangming", "签到", "7000000000000000001").encode()
    else:
        plain = json.dumps({"msgid": "FUZZ1", "chattype": "single", "msgtype": "text",
                            "from": {"userid": "wc-zhangming"}, "text": {"content": "签到"}}).encode()
    encrypted, _ = signer.crypto.encrypt(plain, "0", "0")
    ts, nonce = "1678154100", "nonceFUZZ"
    sig = signer.crypto.signature(ts, nonce, encrypted)
    if tamper == "token":
        sig = WeComCrypto(token, AES_KEY, signer.receive_id).signature(ts, nonce, encrypted)
    elif tamper == "signature":
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    else:
        encrypted = encrypted[::-1] if encrypted[::-1] != encrypted else encrypted + "A"
    params = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
    if verify:
        resp = await bot.get(path, params={**params, "echostr": encrypted})
    elif path == "/wecom/bot":
        resp = await bot.post(path, params=params, data=json.dumps({"encrypt": encrypted}))
    else:
        resp = await bot.post(path, params=params, data=f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
    assert resp.status == 401, (path, tamper, resp.status)
    assert await stored(bot.db) == before


@HTTP
@given(path=st.sampled_from(["/wecom/bot", "/wecom/callback"]),
       plain=st.one_of(st.binary(max_size=200), json_like.map(lambda v: json.dumps(v).encode()),
                       st.text(max_size=100).map(lambda t: f"<xml>{t}</xml>".encode())),
       receive_id=st.sampled_from(["", CORP_ID, "wwSOMEONEELSE"]))
async def test_validly_signed_garbage_to_wecom_is_never_a_server_error(
        bot: Any, path: str, plain: bytes, receive_id: str) -> None:
    before = await stored(bot.db)
    signer = Signer(receive_id=receive_id)
    encrypted, _ = signer.crypto.encrypt(plain, "0", "0")
    query = signer.query(encrypted)
    if path == "/wecom/bot":
        resp = await bot.post(path + query, data=json.dumps({"encrypt": encrypted}))
    else:
        resp = await bot.post(path + query, data=f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
    event(f"{path} HTTP {resp.status}")
    assert resp.status < 500, resp.status
    inbound, checkins = await stored(bot.db)
    assert checkins == before[1]
    assert inbound - before[0] <= (1 if resp.status == 200 else 0)
