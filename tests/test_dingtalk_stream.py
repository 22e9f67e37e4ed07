"""Stream mode: a school without a public IP; the bot dials out to a (fake) DingTalk gateway.

What goes over the socket is compared byte for byte with what the official Python SDK,
dingtalk-stream 0.24.3, writes (`AckMessage.to_dict()` through `json.dumps`).
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from platforms.dingtalk import stream as dingtalk_stream
from storage.models import Checkin, Inbound
from tests.conftest import FakeClock
from tests.conftest import count_rows as count
from tests.dingtalk_fake import (
    APP_KEY,
    APP_SECRET,
    FakeDingTalk,
    StreamConnection,
    dingtalk_config,
    load,
    robot_message,
    start_fake,
)

FRAMES = load("stream_frames.json")
# distinct small waits, so a test can tell which of the SDK's pauses the bot chose
OPEN_FAILURE, ABNORMAL_CLOSE, OTHER_ERROR = 0.011, 0.012, 0.013


def sdk_ack(code: int, message_id: str, message: str, data: str) -> str:
    """An ACK as the SDK's json.dumps(AckMessage.to_dict()) spells it, written out by hand."""
    data_literal = data.replace("\\", "\\\\").replace('"', '\\"')
    return (f'{{"code": {code}, "headers": {{"contentType": "application/json", '
            f'"messageId": "{message_id}"}}, "message": "{message}", "data": "{data_literal}"}}')


def callback_frame(payload: dict[str, Any], message_id: str,
                   topic: str = dingtalk_stream.BOT_TOPIC) -> dict[str, Any]:
    frame = copy.deepcopy(FRAMES["callback_frame"])
    frame["headers"].update(messageId=message_id, topic=topic)
    frame["data"] = json.dumps(payload, ensure_ascii=False)  # data is a JSON string (§5.3)
    return frame


def system_frame(topic: str, message_id: str, data: str | None) -> dict[str, Any]:
    frame: dict[str, Any] = {"specVersion": "1.0", "type": "SYSTEM",
                             "headers": {"topic": topic, "messageId": message_id,
                                         "contentType": "application/json"}}
    if data is not None:
        frame["data"] = data
    return frame


def ack_for(message_id: str, code: int = 200) -> dict[str, Any]:
    ack = copy.deepcopy(FRAMES["callback_ack"])
    ack["headers"]["messageId"] = message_id
    if code != 200:
        ack.update(code=code, data=json.dumps({"response": "bad request"}))
    return ack


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[dingtalk_stream.StreamClient]:
    """The Stream clients the app starts, to read which pauses they chose; SDK pauses made short."""
    made: list[dingtalk_stream.StreamClient] = []

    class Recorded(dingtalk_stream.StreamClient):
        async def start(self) -> None:
            made.append(self)
            await super().start()

    monkeypatch.setattr(dingtalk_stream, "StreamClient", Recorded)
    monkeypatch.setattr(dingtalk_stream, "RETRY_AFTER_OPEN_FAILURE_S", OPEN_FAILURE)
    monkeypatch.setattr(dingtalk_stream, "RETRY_AFTER_ABNORMAL_CLOSE_S", ABNORMAL_CLOSE)
    monkeypatch.setattr(dingtalk_stream, "RETRY_AFTER_ERROR_S", OTHER_ERROR)
    return made


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDingTalk:
    return await start_fake(aiohttp_server)


@pytest.fixture
async def start(aiohttp_client: Any, tmp_path: Path, db_url: str, clock: FakeClock, seeded: Any,
                fake: FakeDingTalk, clients: list[Any]) -> Any:
    async def started() -> StreamConnection:
        config = dingtalk_config(tmp_path, db_url, fake.base, mode="stream")
        client = await aiohttp_client(create_app(config, clock=clock))
        assert (await client.post("/dingtalk/callback", json={})).status == 404  # no public endpoint
        return await fake.next_connection()

    return started


@pytest.fixture
async def stream(start: Any) -> StreamConnection:
    return await start()


def never_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every pause an hour: a test that still gets its next connection saw none."""
    for name in ("RETRY_AFTER_OPEN_FAILURE_S", "RETRY_AFTER_ABNORMAL_CLOSE_S", "RETRY_AFTER_ERROR_S"):
        monkeypatch.setattr(dingtalk_stream, name, 3600.0)


async def test_the_bot_registers_with_its_credentials_and_answers_pings(
        stream: StreamConnection, fake: FakeDingTalk) -> None:
    expected = FRAMES["open_connection_request"]["body"]
    [opened] = fake.opens
    assert opened["clientId"] == APP_KEY and opened["clientSecret"] == APP_SECRET
    assert opened["subscriptions"] == expected["subscriptions"]
    await stream.push(FRAMES["ping_frame"])
    assert await stream.answer_text() == sdk_ack(200, "FAKE_ping_0001", "OK",
                                                 '{"opaque": "fake-opaque-0001"}')
    # the SDK decodes the data and writes it again: its own spacing, not the gateway's
    await stream.push(system_frame("ping", "FAKE_ping_0002", '{"opaque":"fake-opaque-0002"}'))
    assert await stream.answer_text() == sdk_ack(200, "FAKE_ping_0002", "OK",
                                                 '{"opaque": "fake-opaque-0002"}')


async def test_a_teacher_checks_in_over_stream_and_gets_the_reply_by_session_webhook(
        stream: StreamConnection, fake: FakeDingTalk, clock: FakeClock, seeded: Any) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    await stream.push(callback_frame(payload, "FAKE_msgid_0001"))
    # ACKed byte for byte as the SDK's ChatbotHandler answers `return STATUS_OK, "OK"`
    raw = await stream.answer_text()
    assert raw == sdk_ack(200, "FAKE_msgid_0001", "", '{"response": "OK"}')
    assert json.loads(raw) == FRAMES["callback_ack"]
    await fake.wait_posted()
    [(session, body)] = fake.session_posts
    assert session == "FAKEsession000000000000000000001"
    assert body["msgtype"] == "text" and "张明 签到成功" in body["text"]["content"]
    assert await count(seeded, Checkin) == 1

    # DingTalk re-pushes the same msgId: ACKed again, no second record, no second reply
    await stream.push(callback_frame(payload, "FAKE_msgid_0002"))
    assert await stream.answer() == ack_for("FAKE_msgid_0002")
    progress = robot_message("private_text.json", base=fake.base, at=clock.now)
    await stream.push(callback_frame(progress, "FAKE_msgid_0003"))
    assert await stream.answer() == ack_for("FAKE_msgid_0003")
    await fake.wait_posted()
    assert len(fake.session_posts) == 2 and "学时：" in fake.session_posts[1][1]["text"]["content"]
    assert await count(seeded, Checkin) == 1 and await count(seeded, Inbound) == 2


async def test_a_malformed_message_is_refused_and_nothing_is_stored(
        stream: StreamConnection, fake: FakeDingTalk, clock: FakeClock, seeded: Any) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    del payload["msgId"]
    await stream.push(callback_frame(payload, "FAKE_bad_0001"))
    assert await stream.answer_text() == sdk_ack(400, "FAKE_bad_0001", "",
                                                 '{"response": "bad request"}')
    frame = callback_frame(payload, "FAKE_bad_0002")
    frame["data"] = "{not json"
    await stream.push(frame)
    assert await stream.answer() == ack_for("FAKE_bad_0002", code=400)
    assert await count(seeded, Inbound) == 0 and fake.session_posts == []


@pytest.mark.parametrize("field", ["msgId", "conversationId", "senderStaffId"])
async def test_a_message_with_an_oversized_id_is_refused_over_stream_and_nothing_is_stored(
        stream: StreamConnection, fake: FakeDingTalk, clock: FakeClock, seeded: Any,
        field: str) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    payload[field] = "x" * 100_000
    await stream.push(callback_frame(payload, "FAKE_huge_0001"))
    assert await stream.answer() == ack_for("FAKE_huge_0001", code=400)
    assert await count(seeded, Inbound) == 0 and await count(seeded, Checkin) == 0
    ok = robot_message("group_text.json", base=fake.base, at=clock.now)
    await stream.push(callback_frame(ok, "FAKE_ok_0001"))
    assert await stream.answer() == ack_for("FAKE_ok_0001")
    assert await count(seeded, Inbound) == 1 and await count(seeded, Checkin) == 1


async def test_every_system_frame_is_acknowledged_echoing_its_data(stream: StreamConnection) -> None:
    await stream.push(system_frame("KEEPALIVE", "FAKE_sys_0001", '{"reason":"过期"}'))
    assert await stream.answer_text() == sdk_ack(200, "FAKE_sys_0001", "OK",
                                                 '{"reason": "\\u8fc7\\u671f"}')
    await stream.push(system_frame("REGISTERED", "FAKE_sys_0002", None))  # no data: {}
    assert await stream.answer_text() == sdk_ack(200, "FAKE_sys_0002", "OK", "{}")


async def test_events_and_foreign_callbacks_are_answered_as_the_sdk_answers_them(
        stream: StreamConnection) -> None:
    event = {"specVersion": "1.0", "type": "EVENT",
             "headers": {"topic": "*", "messageId": "FAKE_event_0001", "eventType": "user_add_org",
                         "contentType": "application/json"},
             "data": '{"userId": ["fake-staff-0001"]}'}
    await stream.push(event)  # no event handler registered: the SDK's default handler
    assert await stream.answer_text() == sdk_ack(404, "FAKE_event_0001", "not implement",
                                                 '{"userId": ["fake-staff-0001"]}')
    card = callback_frame({"outTrackId": "x"}, "FAKE_card_0001", topic="/v1.0/card/instances/callback")
    await stream.push(card)  # a callback topic without a handler gets no ACK at all
    await stream.push(FRAMES["ping_frame"])
    assert (await stream.answer())["headers"]["messageId"] == "FAKE_ping_0001"


async def test_a_disconnect_frame_is_acknowledged_and_the_bot_moves_at_once(
        stream: StreamConnection, fake: FakeDingTalk, clients: list[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    never_wait(monkeypatch)
    await stream.push(FRAMES["disconnect_frame"])
    assert await stream.answer_text() == sdk_ack(200, "FAKE_disc_0001", "OK",
                                                 '{"reason": "connection is expired"}')
    second = await fake.next_connection()
    assert len(fake.opens) == 2 and clients[0].pauses == []
    await second.push(FRAMES["ping_frame"])
    assert await second.answer() == FRAMES["ping_ack"]


async def test_after_the_gateway_closes_normally_the_bot_dials_again_at_once(
        stream: StreamConnection, fake: FakeDingTalk, clock: FakeClock, seeded: Any,
        clients: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    await stream.push(FRAMES["ping_frame"])
    await stream.answer()
    never_wait(monkeypatch)
    await stream.ws.close()  # code 1000
    second = await fake.next_connection()
    assert len(fake.opens) == 2 and fake.rejected_tickets == 0 and clients[0].pauses == []
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    await second.push(callback_frame(payload, "FAKE_after_close"))
    assert await second.answer() == ack_for("FAKE_after_close")
    await fake.wait_posted()
    assert await count(seeded, Checkin) == 1


async def test_a_gateway_that_closes_before_sending_anything_is_not_redialled_in_a_loop(
        stream: StreamConnection, fake: FakeDingTalk, clients: list[Any]) -> None:
    await stream.ws.close()
    await fake.next_connection()
    assert clients[0].pauses == [OTHER_ERROR]


async def test_a_lost_connection_is_dialled_again_after_the_sdks_pause(
        stream: StreamConnection, fake: FakeDingTalk, clients: list[Any]) -> None:
    stream.drop()  # no closing handshake: websockets raises ConnectionClosedError
    await fake.next_connection()
    assert clients[0].pauses == [ABNORMAL_CLOSE] and len(fake.opens) == 2


async def test_a_gateway_that_stops_answering_pings_is_left_with_1011(
        start: Any, fake: FakeDingTalk, clients: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dingtalk_stream, "PING_INTERVAL_S", 0.02)
    monkeypatch.setattr(dingtalk_stream, "PING_TIMEOUT_S", 0.5)
    stream = await start()
    async with asyncio.timeout(5):
        while stream.pings < 3:  # answered pings keep the connection
            await asyncio.sleep(0.01)
    assert fake.connections.empty() and clients[0].connections == 1
    fake.answer_pings = False
    assert await asyncio.wait_for(stream.ended, 5) == 1011  # "keepalive ping timeout"
    fake.answer_pings = True
    await fake.next_connection()
    assert clients[0].pauses == [ABNORMAL_CLOSE]


async def test_a_failed_registration_and_a_refused_handshake_wait_as_the_sdk_waits(
        start: Any, fake: FakeDingTalk, clients: list[Any]) -> None:
    fake.failing_opens, fake.refused_handshakes = 1, 1
    await start()
    assert clients[0].pauses == [OPEN_FAILURE, OTHER_ERROR] and len(fake.opens) == 3
