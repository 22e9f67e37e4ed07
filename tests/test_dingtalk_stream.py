"""Stream mode: a school without a public IP; the bot dials out to a (fake) DingTalk gateway."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.platforms import dingtalk_stream
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


def callback_frame(payload: dict[str, Any], message_id: str) -> dict[str, Any]:
    frame = copy.deepcopy(FRAMES["callback_frame"])
    frame["headers"]["messageId"] = message_id
    frame["data"] = json.dumps(payload, ensure_ascii=False)  # data is a JSON string (§5.3)
    return frame


def ack_for(message_id: str, code: int = 200) -> dict[str, Any]:
    ack = copy.deepcopy(FRAMES["callback_ack"])
    ack["headers"]["messageId"] = message_id
    if code != 200:
        ack.update(code=code, message="bad request")
    return ack


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDingTalk:
    return await start_fake(aiohttp_server)


@pytest.fixture
async def stream(aiohttp_client: Any, tmp_path: Path, db_url: str, clock: FakeClock, seeded: Any,
                 fake: FakeDingTalk, monkeypatch: pytest.MonkeyPatch) -> StreamConnection:
    monkeypatch.setattr(dingtalk_stream, "BACKOFF_INITIAL_S", 0.01)
    config = dingtalk_config(tmp_path, db_url, fake.base, mode="stream")
    client = await aiohttp_client(create_app(config, clock=clock))
    assert (await client.post("/dingtalk/callback", json={})).status == 404  # no public endpoint
    return await fake.next_connection()


async def test_the_bot_registers_with_its_credentials_and_answers_pings(
        stream: StreamConnection, fake: FakeDingTalk) -> None:
    expected = FRAMES["open_connection_request"]["body"]
    [opened] = fake.opens
    assert opened["clientId"] == APP_KEY and opened["clientSecret"] == APP_SECRET
    assert opened["subscriptions"] == expected["subscriptions"]
    await stream.push(FRAMES["ping_frame"])
    assert await stream.answer() == FRAMES["ping_ack"]


async def test_a_teacher_checks_in_over_stream_and_gets_the_reply_by_session_webhook(
        stream: StreamConnection, fake: FakeDingTalk, clock: FakeClock, seeded: Any) -> None:
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    await stream.push(callback_frame(payload, "FAKE_msgid_0001"))
    assert await stream.answer() == FRAMES["callback_ack"]  # ACKed exactly as the protocol shows
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
    assert await stream.answer() == ack_for("FAKE_bad_0001", code=400)
    frame = callback_frame(payload, "FAKE_bad_0002")
    frame["data"] = "{not json"
    await stream.push(frame)
    assert await stream.answer() == ack_for("FAKE_bad_0002", code=400)
    assert await count(seeded, Inbound) == 0 and fake.session_posts == []


async def test_a_dropped_connection_is_re_established_with_a_fresh_ticket(
        stream: StreamConnection, fake: FakeDingTalk, clock: FakeClock, seeded: Any) -> None:
    await stream.ws.close()  # the gateway goes away
    second = await fake.next_connection()
    assert len(fake.opens) == 2 and fake.rejected_tickets == 0
    payload = robot_message("group_text.json", base=fake.base, at=clock.now)
    await second.push(callback_frame(payload, "FAKE_after_drop"))
    assert await second.answer() == ack_for("FAKE_after_drop")
    await fake.wait_posted()
    assert await count(seeded, Checkin) == 1


async def test_a_disconnect_frame_is_acknowledged_and_the_bot_moves_to_a_new_connection(
        stream: StreamConnection, fake: FakeDingTalk) -> None:
    await stream.push(FRAMES["disconnect_frame"])
    ack = await stream.answer()
    assert ack["code"] == 200 and ack["headers"]["messageId"] == "FAKE_disc_0001"
    second = await fake.next_connection()
    assert len(fake.opens) == 2
    await second.push(FRAMES["ping_frame"])
    assert await second.answer() == FRAMES["ping_ack"]
