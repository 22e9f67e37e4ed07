"""Teachers talk to the WeCom AI bot (智能机器人) over its encrypted JSON callback /wecom/bot."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import select

from bot.app import DOWNLOADER, create_app
from kernel.messages import ImageRef, IncomingMessage, OutgoingText
from platforms.wecom import wire as wire
from platforms.wecom.adapter import ADAPTER
from platforms.wecom.crypto import WeComCrypto
from storage.models import Checkin, Inbound, PendingDownload, Photo
from tests.conftest import FakeClock
from tests.conftest import count_rows as count
from tests.wecom_fake import (
    AES_KEY,
    PNG,
    TOKEN,
    VECTOR,
    FakeWeCom,
    Signer,
    aibot_text,
    load,
    media_encrypt,
    wecom_config,
)


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeWeCom:
    fake = FakeWeCom()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def bot(aiohttp_client: Any, tmp_path: Any, db_url: str, clock: FakeClock, seeded: Any,
              fake: FakeWeCom) -> Any:
    return await aiohttp_client(create_app(wecom_config(tmp_path, db_url, fake.base), clock=clock))


signer = Signer(receive_id="")  # the AI bot's receiveid is the empty string


async def post(bot: Any, payload: dict[str, Any]) -> Any:
    query, body = signer.aibot(payload)
    return await bot.post(f"/wecom/bot{query}", data=body, headers={"Content-Type": "application/json"})


async def answer_of(resp: Any) -> dict[str, Any]:
    """Check the passive reply's signature as WeCom would, then decrypt it."""
    assert resp.status == 200, await resp.text()
    envelope = json.loads(await resp.text())
    crypto = WeComCrypto(TOKEN, AES_KEY, "")
    plain = crypto.decrypt(envelope["msgsignature"], str(envelope["timestamp"]), envelope["nonce"],
                           envelope["encrypt"])
    assert isinstance(plain, bytes), plain
    return json.loads(plain)


async def test_url_verification_answers_the_bare_echo(bot: Any) -> None:
    encrypted, _ = signer.crypto.encrypt(b"echo-4242+/=", "0", "0")
    resp = await bot.get(f"/wecom/bot{signer.query(encrypted, echostr=encrypted)}")
    assert resp.status == 200 and await resp.text() == "echo-4242+/="
    # WeCom may send the base64 unescaped: a raw "+" must still verify
    raw_query = signer.query(encrypted).replace("?", "?echostr=" + encrypted + "&", 1)
    resp = await bot.get(f"/wecom/bot{raw_query}")
    assert resp.status == 200 and await resp.text() == "echo-4242+/="
    bad = await bot.get(f"/wecom/bot{signer.query(encrypted, echostr=encrypted)}".replace(
        "msg_signature=", "msg_signature=0"))
    assert bad.status == 401


async def test_a_teacher_checks_in_by_mentioning_the_bot_in_the_group(bot: Any, seeded: Any,
                                                                      fake: FakeWeCom) -> None:
    resp = await post(bot, aibot_text("wx-zhangming", "@研修助手 签到", "MSG-A1", fake.base))
    answer = await answer_of(resp)
    assert answer["msgtype"] == "stream" and answer["stream"]["finish"] is True
    assert answer["stream"]["id"] == "MSG-A1"
    assert "张明 签到成功" in answer["stream"]["content"]
    async with seeded.sessions() as s:
        checkin = await s.scalar(select(Checkin))
    assert checkin.platform == "wecom" and checkin.msg_id == "bot:MSG-A1"
    assert fake.responses == []  # answered in the body, the response_url is kept unused


async def test_a_redelivered_msgid_is_handled_once(bot: Any, seeded: Any, fake: FakeWeCom,
                                                   clock: FakeClock) -> None:
    payload = aibot_text("wx-zhangming", "@研修助手 签到", "MSG-R1", fake.base)
    first = await answer_of(await post(bot, payload))
    clock.advance(seconds=5)  # WeCom retries after 5 s
    second = await answer_of(await post(bot, payload))
    # the same answer on the same stream: WeCom shows one reply, never two
    assert second == first and "签到成功" in first["stream"]["content"]
    assert await count(seeded, Checkin) == 1
    assert await count(seeded, Inbound) == 1
    assert fake.responses == []


async def test_a_stream_refresh_gets_the_stored_answer(bot: Any, fake: FakeWeCom) -> None:
    first = await answer_of(await post(bot, aibot_text("wx-lixiuying", "进度", "MSG-S1", fake.base)))
    refresh = load("aibot_stream_refresh.json")
    refresh["stream"]["id"] = "MSG-S1"
    again = await answer_of(await post(bot, refresh))
    assert again == first and "签到：" in again["stream"]["content"]
    unknown = load("aibot_stream_refresh.json")
    resp = await post(bot, unknown)
    assert resp.status == 200 and await resp.text() == ""


async def test_a_one_to_one_chat_and_an_unsupported_voice(bot: Any, fake: FakeWeCom) -> None:
    progress = await answer_of(await post(
        bot, aibot_text("wx-zhangming", "进度", "MSG-D1", fake.base, group=False)))
    assert "学时：" in progress["stream"]["content"]
    voice = aibot_text("wx-zhangming", "", "MSG-V1", fake.base, group=False)
    voice.pop("text")
    voice.update(msgtype="voice", voice={"content": ""})  # nothing recognised
    answer = await answer_of(await post(bot, voice))
    assert "这条语音没有转成文字" in answer["stream"]["content"]


async def test_a_spoken_check_in_and_reflection_reach_their_verbs(bot: Any, fake: FakeWeCom,
                                                                  seeded: Any) -> None:
    """WeCom's AI bot delivers a 1:1 voice message as its speech-to-text, voice.content."""
    def voice(content: str, msgid: str) -> dict[str, Any]:
        payload = aibot_text("wx-zhangming", "", msgid, fake.base, group=False)
        payload.pop("text")
        payload.update(msgtype="voice", voice={"content": content})
        return payload

    checked_in = await answer_of(await post(bot, voice("签到", "MSG-V2")))
    assert "签到成功" in checked_in["stream"]["content"] and await count(seeded, Checkin) == 1
    said = "反思：今天听了王老师的课，我学会了用问题串引导学生"
    reflected = (await answer_of(await post(bot, voice(said, "MSG-V3"))))["stream"]["content"]
    assert "已存为草稿" in reflected and "语音转成的文字" in reflected
    assert "今天听了王老师的课，我学会了用问题串引导学生" in reflected


async def test_events_are_acknowledged_without_a_record(bot: Any, seeded: Any) -> None:
    event = {"msgid": "EV1", "aibotid": "FAKEAIBOTID0001", "chattype": "single",
             "from": {"userid": "wx-zhangming"}, "msgtype": "event",
             "event": {"eventtype": "enter_chat"}}
    resp = await post(bot, event)
    assert resp.status == 200 and await resp.text() == ""
    assert await count(seeded, Inbound) == 0


def _raw(plain: bytes) -> str:
    """AES-CBC of `plain` as is (no padding added), with the shared key."""
    key = base64.b64decode(AES_KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


async def test_forged_or_broken_callbacks_are_rejected_and_nothing_is_stored(
        bot: Any, seeded: Any, fake: FakeWeCom) -> None:
    payload = aibot_text("wx-zhangming", "@研修助手 签到", "MSG-X1", fake.base)
    query, body = signer.aibot(payload)
    encrypted = json.loads(body)["encrypt"]
    headers = {"Content-Type": "application/json"}

    forged = query.replace("msg_signature=", "msg_signature=f")
    assert (await bot.post(f"/wecom/bot{forged}", data=body, headers=headers)).status == 401
    no_sig = "?timestamp=1&nonce=2"
    assert (await bot.post(f"/wecom/bot{no_sig}", data=body, headers=headers)).status == 401
    wrong_token = Signer(receive_id="", token="someone-elses-token").aibot(payload)
    assert (await bot.post(f"/wecom/bot{wrong_token[0]}", data=wrong_token[1], headers=headers)).status == 401

    other = Signer(receive_id="wwSOMEOTHERCORP").aibot(payload)  # a foreign receiveid
    assert (await bot.post(f"/wecom/bot{other[0]}", data=other[1], headers=headers)).status == 403

    truncated = encrypted[:64]  # whole base64, but the ciphertext is cut short
    resp = await bot.post(f"/wecom/bot{signer.query(truncated)}",
                          data=json.dumps({"encrypt": truncated}), headers=headers)
    assert resp.status == 400
    odd = base64.b64encode(base64.b64decode(encrypted)[:-5]).decode()  # not whole AES blocks
    resp = await bot.post(f"/wecom/bot{signer.query(odd)}", data=json.dumps({"encrypt": odd}),
                          headers=headers)
    assert resp.status == 400
    bad_padding = _raw(b"x" * 16 + b"\x00\x00\x00\x02{}" + b"\x00" * 42)  # pad byte 0
    resp = await bot.post(f"/wecom/bot{signer.query(bad_padding)}",
                          data=json.dumps({"encrypt": bad_padding}), headers=headers)
    assert resp.status == 400
    big_pad = _raw(b"x" * 16 + b"\x00\x00\x00\x02{}" + b"\x21" * 42)  # pad value 33 > 32
    resp = await bot.post(f"/wecom/bot{signer.query(big_pad)}",
                          data=json.dumps({"encrypt": big_pad}), headers=headers)
    assert resp.status == 400

    for raw_body in (b"not json", b"[]", b'{"encrypt": 5}'):
        assert (await bot.post(f"/wecom/bot{query}", data=raw_body, headers=headers)).status == 400
    not_json_inside = signer.crypto.encrypt("签到".encode(), "0", "0")[0]
    resp = await bot.post(f"/wecom/bot{signer.query(not_json_inside)}",
                          data=json.dumps({"encrypt": not_json_inside}), headers=headers)
    assert resp.status == 400
    no_sender = {k: v for k, v in payload.items() if k != "from"}
    assert (await post(bot, no_sender)).status == 400
    huge = await bot.post(f"/wecom/bot{query}", data=b"x" * (1024 * 1024 + 1), headers=headers)
    assert huge.status == 413

    assert await count(seeded, Inbound) == 0
    assert await count(seeded, Checkin) == 0
    # the genuine one still works afterwards
    assert "签到成功" in (await answer_of(await post(bot, payload)))["stream"]["content"]


@pytest.mark.parametrize("field", ["msgid", "userid", "chatid"])
async def test_an_oversized_id_is_refused_and_nothing_is_stored(
        bot: Any, seeded: Any, fake: FakeWeCom, field: str) -> None:
    huge = "x" * 100_000
    payload = aibot_text(huge if field == "userid" else "wx-zhangming", "@研修助手 签到",
                         huge if field == "msgid" else "MSG-H1", fake.base)
    if field == "chatid":
        payload["chatid"] = huge
    resp = await post(bot, payload)
    assert resp.status == 400
    just_over = aibot_text("wx-zhangming", "签到", "m" * (wire.MAX_MSG_ID + 1), fake.base)
    assert (await post(bot, just_over)).status == 400
    assert await count(seeded, Inbound) == 0 and await count(seeded, Checkin) == 0
    longest = "m" * wire.MAX_MSG_ID  # as long as the cap: still taken
    ok = await answer_of(await post(bot, aibot_text("wx-zhangming", "@研修助手 签到", longest,
                                                    fake.base)))
    assert "签到成功" in ok["stream"]["content"] and await count(seeded, Checkin) == 1


async def test_the_replier_uses_a_response_url_once_within_its_hour(bot: Any, fake: FakeWeCom,
                                                                   clock: FakeClock) -> None:
    adapter = bot.server.app[ADAPTER]
    payload = aibot_text("wx-zhangming", "进度", "MSG-U1", fake.base)
    msg = wire.parse_aibot(payload, clock(), api_base=fake.base)
    assert not isinstance(msg, wire.ParseError | wire.Ignored | wire.StreamRefresh)
    assert msg.reply_context is not None
    first = await adapter.replier.reply(msg.reply_context, OutgoingText("✅ 已收到第 1/3 张"))
    again = await adapter.replier.reply(msg.reply_context, OutgoingText("✅ 已收到第 2/3 张"))
    assert first.kind == "ok" and again.kind == "give_up" and "already used" in again.reason
    assert fake.responses == [("RC-MSG-U1", {"msgtype": "markdown",
                                             "markdown": {"content": "✅ 已收到第 1/3 张"}})]

    later = wire.parse_aibot(aibot_text("wx-zhangming", "进度", "MSG-U2", fake.base), clock(),
                             api_base=fake.base)
    clock.advance(hours=1, seconds=1)
    expired = await adapter.replier.reply(later.reply_context, OutgoingText("x"))  # type: ignore[union-attr]
    assert expired.kind == "give_up" and "expired" in expired.reason

    elsewhere = dict(payload, response_url="https://evil.example/cgi-bin/aibot/response?x=1")
    parsed = wire.parse_aibot(elsewhere, clock(), api_base=fake.base)
    assert parsed.reply_context is None  # type: ignore[union-attr]
    forged = {"via": "response_url", "url": "https://evil.example/cgi-bin/aibot/response",
              "expires_at": int(clock().timestamp()) + 60}
    refused = await adapter.replier.reply(forged, OutgoingText("x"))
    assert refused.kind == "give_up" and "evil" not in refused.reason
    assert len(fake.responses) == 1


async def test_a_photo_with_an_at_mention_is_decrypted_stored_and_counted(
        bot: Any, seeded: Any, fake: FakeWeCom) -> None:
    fake.images["p1.png"] = media_encrypt(PNG)
    payload = aibot_text("wx-zhangming", "", "MSG-P1", fake.base)
    payload.pop("text")
    payload.update(msgtype="mixed", mixed={"msg_item": [
        {"msgtype": "text", "text": {"content": "@研修助手 "}},
        {"msgtype": "image", "image": {"url": f"{fake.base}/img/p1.png"}}]})
    resp = await post(bot, payload)
    assert resp.status == 200 and await resp.text() == ""  # no reply now: the photo answers once stored
    async with seeded.sessions() as s:
        pending = await s.scalar(select(PendingDownload))
    assert pending.ref == f"{fake.base}/img/p1.png" and pending.aes_key is None

    await bot.server.app[DOWNLOADER].drain()
    assert await count(seeded, Photo) == 1
    assert fake.image_gets == 1
    assert len(fake.responses) == 1 and "已收到第 1/3 张" in \
        fake.responses[0][1]["markdown"]["content"]


async def test_the_fetcher_decrypts_ai_bot_images_and_refuses_what_it_should(
        bot: Any, fake: FakeWeCom) -> None:
    from kernel.messages import ImageRef
    from kernel.outbound import FetchError

    fetcher = bot.server.app[ADAPTER].fetcher
    vector = VECTOR["aibot_media_download"]  # bytes as the CDN serves them, for the shared key
    fake.images["vector.bin"] = base64.b64decode(vector["downloaded_bytes_base64"])
    assert await fetcher.fetch(ImageRef(f"{fake.base}/img/vector.bin")) == PNG

    per_message_key = base64.b64encode(bytes(range(32))).decode().rstrip("=")
    fake.images["ws.bin"] = media_encrypt(PNG, per_message_key)
    assert await fetcher.fetch(ImageRef(f"{fake.base}/img/ws.bin", aes_key=per_message_key)) == PNG

    wrong = await fetcher.fetch(ImageRef(f"{fake.base}/img/ws.bin"))  # bot key cannot open it
    assert isinstance(wrong, FetchError) and not wrong.retry
    gone = await fetcher.fetch(ImageRef(f"{fake.base}/img/expired.bin"))
    assert isinstance(gone, FetchError) and not gone.retry and "127.0.0.1" not in gone.reason
    foreign = await fetcher.fetch(ImageRef("http://169.254.169.254/latest/meta-data"))
    assert isinstance(foreign, FetchError) and foreign.reason == "image host not allowed"
    before = fake.image_gets
    fake.images["big.bin"] = media_encrypt(b"\x89PNG\r\n\x1a\n" + b"0" * (21 * 1024 * 1024))  # over max_fetch_bytes (20 MB)
    big = await fetcher.fetch(ImageRef(f"{fake.base}/img/big.bin"))
    assert isinstance(big, FetchError) and big.reason == "image too large"
    assert fake.image_gets == before + 1


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=X", True),
    ("https://qyapi.weixin.qq.com:443/cgi-bin/aibot/response?response_code=X", True),
    ("http://qyapi.weixin.qq.com/cgi-bin/aibot/response", False),
    ("https://qyapi.weixin.qq.com.evil.example/cgi-bin/aibot/response", False),
    ("https://user@qyapi.weixin.qq.com/cgi-bin/aibot/response", False),
    ("https://qyapi.weixin.qq.com\\@evil.example/cgi-bin/aibot/response", False),
    ("https://qyapi.weixin.qq.com:8443/cgi-bin/aibot/response", False),
    ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x", False),
    ("https://qyapi.weixin.qq.com/cgi-bin/aibot/response\n", False),
    (None, False),
])
def test_only_the_api_origin_response_url_is_trusted(url: Any, allowed: bool) -> None:
    assert wire.is_response_url(url, "https://qyapi.weixin.qq.com") is allowed


def test_wire_helpers_cut_utf8_safely_and_read_webhook_keys() -> None:
    assert wire.webhook_key("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
                            "https://qyapi.weixin.qq.com") == "abc"
    for bad in ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=",
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=a&key=b",
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=a&debug=1",
                "https://other.example/cgi-bin/webhook/send?key=abc", None):
        assert wire.webhook_key(bad, "https://qyapi.weixin.qq.com") is None
    cut = wire.truncate_utf8("研修" * 10, 10)
    assert len(cut.encode()) <= 10 and cut.endswith("…")
    assert wire.strip_bot_mention("@研修助手 签到") == "签到"
    assert wire.strip_bot_mention("＠研修助手　進度") == "進度"


def test_a_file_is_a_document_to_fetch_over_http_and_websocket(fake: FakeWeCom) -> None:
    """§2b: an AI bot `file` (1:1 only) carries `file.url` — encrypted like an image (§4.3),
    with the message's own `aeskey` over the long connection — and no file name."""
    payload = aibot_text("wx-zhangming", "", "MSG-F1", fake.base, group=False)
    payload.pop("text")
    payload.update(msgtype="file", file={"url": "https://files.example/enc-1"})
    msg = wire.parse_aibot(payload, datetime(2023, 3, 15, tzinfo=UTC), api_base=fake.base)
    assert isinstance(msg, IncomingMessage) and msg.unsupported is None and msg.images == ()
    assert msg.files == (ImageRef(ref="https://files.example/enc-1"),)
    payload["file"] = {"url": "https://files.example/enc-2", "aeskey": "S0VZ"}
    ws = wire.parse_aibot(payload, datetime(2023, 3, 15, tzinfo=UTC), api_base=fake.base,
                          websocket=True)
    assert isinstance(ws, IncomingMessage)
    assert ws.files == (ImageRef(ref="https://files.example/enc-2", aes_key="S0VZ"),)
    payload["file"] = {}
    assert isinstance(wire.parse_aibot(payload, datetime(2023, 3, 15, tzinfo=UTC),
                                       api_base=fake.base), wire.ParseError)


@pytest.mark.parametrize(("voice", "text", "spoken", "unsupported"), [
    ({"content": " 签到 "}, "签到", True, None),
    ({"content": "@研修助手 进度"}, "进度", True, None),  # a spoken mention is dropped like a typed one
    ({"content": ""}, "", False, "audio"),
    ({}, "", False, "audio"),
    (None, "", False, "audio"),  # no voice object at all: still a voice message, not malformed
])
def test_the_ai_bot_voice_shape(fake: FakeWeCom, clock: FakeClock, voice: Any, text: str,
                                spoken: bool, unsupported: str | None) -> None:
    payload = aibot_text("wx-zhangming", "", "MSG-V9", fake.base, group=False)
    payload.pop("text")
    payload["msgtype"] = "voice"
    if voice is not None:
        payload["voice"] = voice
    msg = wire.parse_aibot(payload, clock(), api_base=fake.base)
    assert not isinstance(msg, wire.ParseError | wire.Ignored | wire.StreamRefresh)
    assert (msg.text, msg.spoken, msg.unsupported) == (text, spoken, unsupported)
