"""The WeCom AI bot over its WebSocket long connection: a school without a public IP."""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import DOWNLOADER, create_app
from kernel.messages import OutgoingText
from platforms.wecom.adapter import ADAPTER
from storage.models import Checkin, Inbound, PendingDownload, Photo
from tests.conftest import FakeClock
from tests.conftest import count_rows as count
from tests.wecom_fake import (
    BOT_ID,
    BOT_SECRET,
    PNG,
    FakeWeCom,
    WsConnection,
    load,
    media_encrypt,
    wecom_config,
)

FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "ack_timeout_s": 2.0}


@pytest.fixture
async def fake(aiohttp_server: Any) -> AsyncIterator[FakeWeCom]:
    fake = FakeWeCom()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    yield fake
    await fake.close_sockets()  # before the server closes: it waits for open handlers


async def start_bot(aiohttp_client: Any, tmp_path: Any, db_url: str, clock: FakeClock,
                    fake: FakeWeCom, **tuning: float) -> Any:
    config = wecom_config(tmp_path, db_url, fake.base, mode="websocket",
                          ws_url=fake.base.replace("http://", "ws://") + "/ws")
    app = create_app(config, clock=clock)
    ws = app[ADAPTER].ws
    assert ws is not None
    for name, value in {**FAST, **tuning}.items():
        setattr(ws, name, value)
    return await aiohttp_client(app)


async def connection(fake: FakeWeCom) -> WsConnection:
    return await asyncio.wait_for(fake.connections.get(), 5)


def text_frame(userid: str, content: str, msgid: str, req_id: str) -> dict[str, Any]:
    frame = copy.deepcopy(load("aibot_ws_text_frame.json"))
    frame["headers"]["req_id"] = req_id
    frame["body"].update(msgid=msgid, text={"content": content}, **{"from": {"userid": userid}})
    return frame


async def test_subscribe_answer_then_reconnect_after_a_drop(aiohttp_client: Any, tmp_path: Any,
                                                            db_url: str, clock: FakeClock,
                                                            seeded: Any, fake: FakeWeCom) -> None:
    client = await start_bot(aiohttp_client, tmp_path, db_url, clock, fake)
    assert client.server.app.router.resources()  # /wecom/bot is not served in websocket mode
    assert all(r.canonical != "/wecom/bot" for r in client.server.app.router.resources())
    conn = await connection(fake)
    assert fake.subscribes == [{"bot_id": BOT_ID, "secret": BOT_SECRET}]

    await conn.push(text_frame("wx-zhangming", "@研修助手 签到", "WS-MSG-1", "REQ-1"))
    reply = await conn.next("aibot_respond_msg")
    assert reply["headers"]["req_id"] == "REQ-1"
    stream = reply["body"]["stream"]
    assert reply["body"]["msgtype"] == "stream" and stream["finish"] is True
    assert stream["id"] == "WS-MSG-1" and "张明 签到成功" in stream["content"]

    await conn.ws.close()  # the gateway drops the link
    again = await connection(fake)
    assert len(fake.subscribes) == 2
    await again.push(text_frame("wx-zhangming", "@研修助手 签到", "WS-MSG-1", "REQ-2"))  # redelivered
    second = await again.next("aibot_respond_msg")
    assert second["headers"]["req_id"] == "REQ-2" and second["body"]["stream"] == stream
    await again.push(text_frame("wx-lixiuying", "进度", "WS-MSG-2", "REQ-3"))
    progress = await again.next("aibot_respond_msg")
    assert "签到：" in progress["body"]["stream"]["content"]
    assert await count(seeded, Checkin) == 1
    assert await count(seeded, Inbound) == 2


async def test_the_fixture_frame_goes_through_the_same_path(aiohttp_client: Any, tmp_path: Any,
                                                            db_url: str, clock: FakeClock,
                                                            seeded: Any, fake: FakeWeCom) -> None:
    await start_bot(aiohttp_client, tmp_path, db_url, clock, fake)
    conn = await connection(fake)
    await conn.push(load("aibot_ws_text_frame.json"))  # from an id not on the roster
    reply = await conn.next("aibot_respond_msg")
    assert reply["headers"]["req_id"] == "FAKE_REQ_ID_0001"
    assert "花名册里还没有您" in reply["body"]["stream"]["content"]


@pytest.mark.parametrize("field", ["msgid", "userid", "chatid"])
async def test_a_frame_with_an_oversized_id_is_dropped_and_nothing_is_stored(
        aiohttp_client: Any, tmp_path: Any, db_url: str, clock: FakeClock, seeded: Any,
        fake: FakeWeCom, field: str) -> None:
    await start_bot(aiohttp_client, tmp_path, db_url, clock, fake)
    conn = await connection(fake)
    huge = "x" * 100_000
    frame = text_frame(huge if field == "userid" else "wx-zhangming", "@研修助手 签到",
                       huge if field == "msgid" else "WS-HUGE-1", "REQ-HUGE")
    if field == "chatid":
        frame["body"]["chatid"] = huge
    await conn.push(frame)
    await conn.push(text_frame("wx-lixiuying", "@研修助手 签到", "WS-OK-1", "REQ-OK"))
    reply = await conn.next("aibot_respond_msg")  # only the genuine one is answered
    assert reply["headers"]["req_id"] == "REQ-OK" and "签到成功" in reply["body"]["stream"]["content"]
    assert await count(seeded, Inbound) == 1 and await count(seeded, Checkin) == 1


async def test_heartbeats_and_a_silent_gateway_means_reconnect(aiohttp_client: Any, tmp_path: Any,
                                                               db_url: str, clock: FakeClock,
                                                               seeded: Any, fake: FakeWeCom) -> None:
    await start_bot(aiohttp_client, tmp_path, db_url, clock, fake, heartbeat_s=0.02)
    conn = await connection(fake)
    ping = await conn.next("ping")
    assert ping["headers"]["req_id"]
    fake.answer_pings = False  # the link goes quiet: two unanswered pings, then a new link
    await connection(fake)
    assert len(fake.subscribes) == 2


async def test_a_refused_subscribe_is_retried_with_backoff(aiohttp_client: Any, tmp_path: Any,
                                                           db_url: str, clock: FakeClock,
                                                           seeded: Any, fake: FakeWeCom) -> None:
    config = wecom_config(tmp_path, db_url, fake.base, mode="websocket",
                          ws_url=fake.base.replace("http://", "ws://") + "/ws")
    app = create_app(config, clock=clock)
    ws = app[ADAPTER].ws
    assert ws is not None
    for name, value in FAST.items():
        setattr(ws, name, value)
    ws._secret = "not-the-secret"
    await aiohttp_client(app)
    async with asyncio.timeout(5):
        while len(fake.subscribes) < 3:  # refused (40001), and tried again
            await asyncio.sleep(0.01)
    assert ws.connections == 0 and fake.connections.empty()
    ws._secret = BOT_SECRET  # the operator fixes the secret
    await connection(fake)
    async with asyncio.timeout(5):
        await ws.subscribed.wait()
    assert ws.connections == 1
    # secrets never show in what the client prints about itself
    assert BOT_SECRET not in repr(ws) and BOT_SECRET not in repr(app[ADAPTER].replier)


async def test_photo_replies_go_out_as_proactive_markdown(aiohttp_client: Any, tmp_path: Any,
                                                          db_url: str, clock: FakeClock,
                                                          seeded: Any, fake: FakeWeCom) -> None:
    client = await start_bot(aiohttp_client, tmp_path, db_url, clock, fake)
    replier = client.server.app[ADAPTER].replier
    conn = await connection(fake)
    outcome = await replier.reply({"via": "ws", "chatid": "wrFAKECHATID000000000000000001"},
                                  OutgoingText("✅ 已收到第 1/3 张"))
    assert outcome.kind == "ok"
    frame = await conn.next("aibot_send_msg")
    assert frame["body"] == {"chatid": "wrFAKECHATID000000000000000001", "msgtype": "markdown",
                             "markdown": {"content": "✅ 已收到第 1/3 张"}}


async def test_a_one_to_one_photo_is_opened_with_its_own_aeskey(aiohttp_client: Any, tmp_path: Any,
                                                                db_url: str, clock: FakeClock,
                                                                seeded: Any, fake: FakeWeCom) -> None:
    client = await start_bot(aiohttp_client, tmp_path, db_url, clock, fake)
    conn = await connection(fake)
    aeskey = base64.b64encode(bytes(range(100, 132))).decode()  # per message, not the bot's key
    fake.images["ws-photo.png"] = media_encrypt(PNG, aeskey)
    frame = text_frame("wx-zhangming", "", "WS-IMG-1", "REQ-IMG")
    body = frame["body"]
    body.pop("text")
    body.pop("chatid")
    body.update(chattype="single", msgtype="image",
                image={"url": f"{fake.base}/img/ws-photo.png", "aeskey": aeskey})
    await conn.push(frame)
    while await count(seeded, PendingDownload) == 0:  # no reply now: the photo answers once stored
        await asyncio.sleep(0.01)

    await client.server.app[DOWNLOADER].drain()
    assert await count(seeded, Photo) == 1
    sent = [await asyncio.wait_for(conn.inbox.get(), 5.0)]
    while sent[-1].get("cmd") != "aibot_send_msg":
        sent.append(await asyncio.wait_for(conn.inbox.get(), 5.0))
    assert "aibot_respond_msg" not in [f.get("cmd") for f in sent]  # one visible reply per photo
    later = sent[-1]  # "第 1/3 张" goes to the teacher's 1:1 chat
    assert later["body"]["chatid"] == "wx-zhangming"
    assert "已收到第 1/3 张" in later["body"]["markdown"]["content"]
