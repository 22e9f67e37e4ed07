"""The bot posts to a WeCom school group through the group's robot webhook (群机器人)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.outbox import Sender
from kernel.outbound import Mention, OutboundMessage
from platforms.wecom.webhook import WeComWebhookRoute
from storage.models import Outbox
from storage.queries.groups import bind_group, school_by_code
from storage.queries.outbox import enqueue
from tests.conftest import FakeClock
from tests.wecom_fake import WEBHOOK_KEY, WX, FakeWeCom, load

CHAT = "wrFAKECHATID000000000000000001"


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeWeCom:
    fake = FakeWeCom()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def route(fake: FakeWeCom) -> AsyncIterator[WeComWebhookRoute]:
    async with aiohttp.ClientSession() as http:
        yield WeComWebhookRoute(fake.base, lambda: http)


def hook(fake: FakeWeCom, key: str = WEBHOOK_KEY) -> str:
    return f"{fake.base}/cgi-bin/webhook/send?key={key}"


def outbound(url: str | None, text: str = "研修提醒", **kw: Any) -> OutboundMessage:
    return OutboundMessage(outbox_id=1, platform="wecom", conversation_id=CHAT,
                           route_kind="wecom_webhook", route_url=url, route_secret=None,
                           text=text, **kw)


async def test_text_with_mentions_by_userid_and_mobile(route: WeComWebhookRoute, fake: FakeWeCom) -> None:
    expected = load("webhook_text.json")
    mentions = (Mention("张三", userid="fake.teacher.zhangsan"), Mention("李四", userid="fake.teacher.lisi"),
                Mention("王五", mobile="13800000000"))
    outcome = await route.send(outbound(hook(fake), expected["text"]["content"], mentions=mentions))
    assert outcome.kind == "ok"
    assert fake.webhook_posts == [(WEBHOOK_KEY, expected)]


async def test_markdown_mentions_are_written_into_the_content(route: WeComWebhookRoute,
                                                              fake: FakeWeCom) -> None:
    digest = "## 本校研修进度\n>签到：<font color=\"info\">18/20</font>\n\n未交反思："
    outcome = await route.send(outbound(hook(fake), digest, markdown=True, mentions=(
        Mention("张三", userid="fake.teacher.zhangsan"), Mention("赵六"))))
    assert outcome.kind == "ok"
    body = fake.webhook_posts[0][1]
    assert body == {"msgtype": "markdown", "markdown": {
        "content": f"{digest}\n<@fake.teacher.zhangsan> @赵六"}}


async def test_an_image_goes_as_base64_and_md5(route: WeComWebhookRoute, fake: FakeWeCom,
                                               tmp_path: Path) -> None:
    outcome = await route.send(outbound(hook(fake), "", image_path=str(WX / "tiny_1x1.png")))
    assert outcome.kind == "ok"
    assert fake.webhook_posts[0][1] == load("webhook_image.json")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024))
    too_big = await route.send(outbound(hook(fake), "", image_path=str(big)))
    assert too_big.kind == "give_up" and "2 MB" in too_big.reason
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a....")
    assert (await route.send(outbound(hook(fake), "", image_path=str(gif)))).kind == "give_up"
    assert len(fake.webhook_posts) == 1


async def test_long_content_is_cut_at_the_byte_limit_never_mid_character(
        route: WeComWebhookRoute, fake: FakeWeCom) -> None:
    await route.send(outbound(hook(fake), "研" * 1000))  # 3000 bytes of text
    await route.send(outbound(hook(fake), "研" * 2000, markdown=True))  # 6000 bytes of markdown
    text, markdown = (body for _, body in fake.webhook_posts)
    assert len(text["text"]["content"].encode()) <= 2048
    assert len(markdown["markdown"]["content"].encode()) <= 4096
    assert route.max_bytes == 2048  # what the outbox splits to


async def test_errcodes_become_retry_or_give_up_and_never_show_the_key(
        route: WeComWebhookRoute, fake: FakeWeCom, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.webhook_answers = [{"errcode": 45009, "errmsg": "api freq out of limit"},
                            {"errcode": -1, "errmsg": "system busy"},
                            {"errcode": 40008, "errmsg": "invalid message type"}]
    throttled = await route.send(outbound(hook(fake)))
    assert throttled.kind == "retry" and throttled.retry_after_s is not None
    assert throttled.retry_after_s >= 60
    busy = await route.send(outbound(hook(fake)))
    assert busy.kind == "retry" and busy.retry_after_s is None  # the sender's backoff
    other = await route.send(outbound(hook(fake)))
    assert other.kind == "give_up" and "40008" in other.reason
    bad_key = await route.send(outbound(hook(fake, "removed-key-0000")))
    assert bad_key.kind == "give_up" and bad_key.reason == "bad key (93000)"

    elsewhere = await route.send(outbound(f"https://evil.example/cgi-bin/webhook/send?key={WEBHOOK_KEY}"))
    wrong_path = await route.send(outbound(f"{fake.base}/cgi-bin/message/send?key={WEBHOOK_KEY}"))
    assert elsewhere.kind == wrong_path.kind == "give_up"
    async with aiohttp.ClientSession() as http:
        down = WeComWebhookRoute("http://127.0.0.1:9", lambda: http)  # nothing listens there
        unreachable = await down.send(outbound(f"http://127.0.0.1:9/cgi-bin/webhook/send?key={WEBHOOK_KEY}"))
    assert unreachable.kind == "retry"

    reasons = [o.reason for o in (throttled, busy, other, bad_key, elsewhere, wrong_path, unreachable)]
    assert all(WEBHOOK_KEY not in r and "removed-key" not in r for r in reasons)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert WEBHOOK_KEY not in ours and "removed-key" not in ours  # (the fake's access log has it)
    key = route.rate_key(outbound(hook(fake)))
    assert key == route.rate_key(outbound(hook(fake), "another message"))
    assert key != route.rate_key(outbound(hook(fake, "other-group-key")))
    assert WEBHOOK_KEY not in key and WEBHOOK_KEY not in repr(route)
    assert len(fake.webhook_posts) == 3  # only the three on the right origin with the right key


async def test_a_throttled_reminder_is_delivered_later_exactly_once(
        seeded: Any, clock: FakeClock, route: WeComWebhookRoute, fake: FakeWeCom) -> None:
    async with seeded.sessions() as s, s.begin():
        school = await school_by_code(s, "LX001")
        assert school is not None
        group = await bind_group(s, platform="wecom", conversation_id=CHAT, school_id=school.id,
                                 now=clock.now, route_kind="wecom_webhook", route_url=hook(fake))
        assert await enqueue(s, kind="session_reminder", ref="2023-03-07T10:00", group_id=group.id,
                             text="研修提醒：10:00 集中学习，请准时签到。", now=clock.now,
                             mentions=(Mention("张明", userid="wx-zhangming"),))
    fake.webhook_answers = [{"errcode": 45009, "errmsg": "api freq out of limit"}]
    sender = Sender(seeded, {"wecom_webhook": route}, clock)

    await sender.drain()
    async with seeded.sessions() as s:
        row = await s.scalar(select(Outbox))
    assert row.state == "pending" and row.attempts == 1 and "45009" in (row.last_error or "")
    assert (row.next_attempt_at - clock.now).total_seconds() >= 60
    assert WEBHOOK_KEY not in (row.last_error or "")

    clock.advance(seconds=30)  # still inside the penalty window: nothing goes out
    await sender.drain()
    assert len(fake.webhook_posts) == 1
    clock.advance(seconds=31)
    await sender.drain()
    await sender.drain()  # and nothing more on another pass
    async with seeded.sessions() as s:
        row = await s.scalar(select(Outbox))
    assert row.state == "sent"
    assert len(fake.webhook_posts) == 2  # the throttled attempt and the one delivery
    delivered = fake.webhook_posts[1][1]
    assert delivered == {"msgtype": "text", "text": {
        "content": "研修提醒：10:00 集中学习，请准时签到。", "mentioned_list": ["wx-zhangming"]}}
    assert json.dumps(delivered, ensure_ascii=False).count("研修提醒") == 1
