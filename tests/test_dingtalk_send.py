"""The bot talks to DingTalk on its own: reminders through a group's custom robot or the
OpenAPI, pictures fetched with the app token, late replies through the sessionWebhook."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from sqlalchemy import select

from kernel.messages import ImageRef, OutgoingText
from kernel.outbound import FetchError, Mention, OutboundMessage, SendOutcome
from kernel.settings import Secret
from platforms.dingtalk import wire as wire
from platforms.dingtalk.api import DingTalkApi, DingTalkImageFetcher, SessionWebhookReplier
from platforms.dingtalk.send import CustomRobotRoute, OpenApiGroupRoute
from storage.models import ChatGroup, Outbox
from storage.queries.groups import bind_group, school_by_code
from storage.queries.outbox import enqueue
from tests.conftest import FakeClock
from tests.dingtalk_fake import (
    APP_KEY,
    PNG,
    ROBOT_SECRET,
    ROBOT_TOKEN,
    FakeDingTalk,
    dingtalk_config,
    load,
    ms,
    start_fake,
)

GROUP = "cidFAKEgroup0000000000000000000000=="


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDingTalk:
    return await start_fake(aiohttp_server)


@pytest.fixture
async def api(fake: FakeDingTalk, clock: FakeClock, tmp_path: Path, db_url: str) -> AsyncIterator[DingTalkApi]:
    config = dingtalk_config(tmp_path, db_url, fake.base)
    async with aiohttp.ClientSession() as http:
        yield DingTalkApi(http, config.dingtalk, clock)


def robot_url(fake: FakeDingTalk) -> str:
    return f"{fake.base}/robot/send?access_token={ROBOT_TOKEN}"


def outbound(url: str | None, **kw: Any) -> OutboundMessage:
    fields: dict[str, Any] = dict(outbox_id=7, platform="dingtalk", conversation_id=GROUP,
                                  route_kind="dingtalk_robot", route_url=url,
                                  route_secret=ROBOT_SECRET, text="研修提醒：今晚 20:00 前提交研修心得")
    fields.update(kw)
    return OutboundMessage(**fields)


# ---------------------------------------------------------------- custom robot


async def test_a_reminder_goes_through_the_custom_robot_signed_and_mentioning(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock) -> None:
    route = CustomRobotRoute(api, fake.base, clock)
    mentions = (Mention("张明", userid="dt-zhangming"), Mention("刘洋", mobile="13800000004"),
                Mention("周海涛"))
    outcome = await route.send(outbound(robot_url(fake), mentions=mentions))
    assert outcome == SendOutcome("ok", None, "ok")
    [post] = fake.robot_posts
    assert post["query"]["timestamp"] == str(ms(clock.now))  # a fresh timestamp, signed (the fake checks)
    assert post["content_type"].startswith("application/json")
    body = post["body"]
    assert body["msgtype"] == "text" and body["msgUuid"] == "yanxiu-outbox-7"
    assert body["at"] == {"atUserIds": ["dt-zhangming"], "atMobiles": ["13800000004"], "isAtAll": False}
    content = body["text"]["content"]
    assert content.startswith("研修提醒") and "@周海涛" in content
    assert "@dt-zhangming" in content and "@13800000004" in content
    assert route.per_minute == 20


async def test_a_markdown_digest_through_the_custom_robot(api: DingTalkApi, fake: FakeDingTalk,
                                                         clock: FakeClock) -> None:
    route = CustomRobotRoute(api, fake.base, clock)
    msg = outbound(robot_url(fake), markdown=True, title="本校进度", text="#### 本校进度\n- 已签到 12/30",
                   mentions=(Mention("张明", userid="dt-zhangming"),))
    assert (await route.send(msg)).kind == "ok"
    body = fake.robot_posts[0]["body"]
    assert body["markdown"]["title"] == "本校进度"
    assert body["markdown"]["text"].startswith("#### 本校进度") and body["at"]["atUserIds"] == ["dt-zhangming"]


@pytest.mark.parametrize("answer", ["throttled_documented", "throttled_observed_legacy"])
async def test_a_throttled_robot_is_retried_after_the_ten_minute_penalty(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock, answer: str) -> None:
    fake.robot_answers.append(load("custom_robot_signed_url.json")["responses"][answer])
    outcome = await CustomRobotRoute(api, fake.base, clock).send(outbound(robot_url(fake)))
    assert outcome.kind == "retry" and outcome.retry_after_s is not None
    assert outcome.retry_after_s >= 600


async def test_a_wrong_secret_is_given_up_not_retried(api: DingTalkApi, fake: FakeDingTalk,
                                                      clock: FakeClock) -> None:
    outcome = await CustomRobotRoute(api, fake.base, clock).send(
        outbound(robot_url(fake), route_secret="SECwrong"))
    assert outcome == SendOutcome("give_up", None, "security_sign")


@pytest.mark.parametrize("url", [
    "https://oapi.dingtalk.com/robot/send?access_token=x",  # real DingTalk, but not the configured base
    "http://127.0.0.2:1/robot/send?access_token=x",
    None,
])
async def test_a_webhook_outside_the_configured_origin_is_never_called(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock, url: str | None,
        caplog: pytest.LogCaptureFixture) -> None:
    outcome = await CustomRobotRoute(api, fake.base, clock).send(outbound(url))
    assert outcome == SendOutcome("give_up", None, "webhook_not_allowed")
    assert fake.robot_posts == []
    assert "access_token" not in caplog.text


def test_the_rate_key_is_per_robot_and_hides_the_token(api: DingTalkApi, fake: FakeDingTalk,
                                                       clock: FakeClock) -> None:
    route = CustomRobotRoute(api, fake.base, clock)
    a = route.rate_key(outbound(robot_url(fake)))
    assert ROBOT_TOKEN not in a and a == route.rate_key(outbound(robot_url(fake), conversation_id="x"))
    assert a != route.rate_key(outbound(robot_url(fake) + "1"))


async def test_a_message_over_the_size_cap_is_refused_without_sending(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock) -> None:
    route = CustomRobotRoute(api, fake.base, clock)
    outcome = await route.send(outbound(robot_url(fake), text="字" * 7000))  # 21 000 bytes
    assert outcome == SendOutcome("give_up", None, "message_too_long")
    assert fake.robot_posts == []
    assert len(("字" * (route.max_bytes // 3)).encode()) <= route.max_bytes


async def test_a_throttled_reminder_is_delivered_later_once_through_the_outbox(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock, seeded: Any) -> None:
    outbox = pytest.importorskip("bot.outbox", reason="the outbox sender has not landed yet")
    async with seeded.sessions() as s, s.begin():
        school = await school_by_code(s, "LX001")
        await bind_group(s, platform="dingtalk", conversation_id=GROUP, school_id=school.id,
                         now=clock.now, route_kind="dingtalk_robot", route_url=robot_url(fake),
                         route_secret=ROBOT_SECRET)
        group_id = await s.scalar(select(ChatGroup.id).where(ChatGroup.conversation_id == GROUP))
        await enqueue(s, kind="deadline_reminder", ref="reflection-march:3", group_id=group_id,
                      text="三月研修心得还有 3 天截止", now=clock.now,
                      mentions=(Mention("张明", userid="dt-zhangming"),))

    class NoWait:
        async def acquire(self, amount: float = 1) -> None:
            return None

    fake.robot_answers.append(load("custom_robot_signed_url.json")["responses"]["throttled_documented"])
    sender = outbox.Sender(seeded, {"dingtalk_robot": CustomRobotRoute(api, fake.base, clock)}, clock,
                           limiter_factory=lambda per_minute: NoWait())
    await sender.drain()
    assert len(fake.robot_posts) == 1
    clock.advance(minutes=9)
    await sender.drain()
    assert len(fake.robot_posts) == 1  # still inside the penalty window: nothing is sent
    clock.advance(minutes=1, seconds=30)
    await sender.drain()
    await sender.drain()
    assert len(fake.robot_posts) == 2
    async with seeded.sessions() as s:
        row = await s.scalar(select(Outbox))
    assert row.state == "sent"
    bodies = [p["body"] for p in fake.robot_posts]
    assert bodies[0]["msgUuid"] == bodies[1]["msgUuid"]  # DingTalk's own guard against a double post
    assert bodies[1]["at"]["atUserIds"] == ["dt-zhangming"]


# ---------------------------------------------------------------- OpenAPI group send


async def test_the_openapi_route_sends_with_the_token_and_names_people_in_plain_text(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock) -> None:
    route = OpenApiGroupRoute(api)
    msg = outbound(None, route_kind="dingtalk_openapi", route_secret=None, markdown=True, title="研修进度",
                   text="#### 本校进度\n- 已签到 12/30", mentions=(Mention("张明", userid="dt-zhangming"),))
    assert await route.send(msg) == SendOutcome("ok", None, "ok")
    [body] = fake.group_sends
    assert body["robotCode"] == APP_KEY and body["openConversationId"] == GROUP
    assert body["msgKey"] == "sampleMarkdown"
    param = json.loads(body["msgParam"])
    assert param == {"title": "研修进度", "text": "#### 本校进度\n- 已签到 12/30\n@张明"}
    assert route.rate_key(msg) == f"dingtalk_openapi:{GROUP}"


async def test_the_access_token_is_cached_and_refreshed_before_it_expires(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock) -> None:
    route = OpenApiGroupRoute(api)
    msg = outbound(None, route_kind="dingtalk_openapi")
    await route.send(msg)
    await route.send(msg)
    assert len(fake.token_requests) == 1
    assert fake.token_requests[0] == load("access_token_and_download.json")["access_token_request"]["body"]
    clock.advance(hours=1, minutes=56)  # within five minutes of the 2-hour expiry
    assert (await route.send(msg)).kind == "ok"
    assert len(fake.token_requests) == 2 and len(fake.group_sends) == 3


async def test_a_revoked_token_is_replaced_once_and_the_call_repeated(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock) -> None:
    route = OpenApiGroupRoute(api)
    msg = outbound(None, route_kind="dingtalk_openapi")
    await route.send(msg)
    fake.valid_tokens.clear()  # DingTalk no longer accepts the cached token
    assert (await route.send(msg)).kind == "ok"
    assert len(fake.token_requests) == 2 and len(fake.group_sends) == 2


async def test_wrong_app_credentials_give_up(fake: FakeDingTalk, clock: FakeClock, tmp_path: Path,
                                            db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    config = dingtalk_config(tmp_path, db_url, fake.base)
    dt = replace(config.dingtalk, app_secret=Secret("wrong-secret"))
    async with aiohttp.ClientSession() as http:
        outcome = await OpenApiGroupRoute(DingTalkApi(http, dt, clock)).send(
            outbound(None, route_kind="dingtalk_openapi"))
    assert outcome == SendOutcome("give_up", None, "bad_credentials")
    assert "wrong-secret" not in caplog.text


# ---------------------------------------------------------------- pictures


async def test_the_image_fetcher_downloads_a_picture_with_the_token_header(
        api: DingTalkApi, fake: FakeDingTalk) -> None:
    fetcher = DingTalkImageFetcher(api, max_bytes=1024 * 1024)
    data = await fetcher.fetch(ImageRef(ref="FAKEdownloadCode/picture+0001=="))
    assert data == PNG
    token, request = fake.downloads[0]
    assert token == fake.tokens_issued[0]
    assert request == load("access_token_and_download.json")["download_request"]["body"]
    assert await fetcher.fetch(ImageRef(ref="FAKEdownloadCode/picture+0001==")) == PNG
    assert len(fake.token_requests) == 1  # one token for both


async def test_an_expired_download_code_is_not_retried(api: DingTalkApi, fake: FakeDingTalk) -> None:
    result = await DingTalkImageFetcher(api, 1024 * 1024).fetch(ImageRef(ref="FAKEexpired=="))
    assert result == FetchError("download_code_invalid", retry=False)


async def test_a_picture_over_the_size_cap_is_refused(api: DingTalkApi, fake: FakeDingTalk) -> None:
    fake.files["FAKEbig=="] = PNG + b"\0" * 5000
    result = await DingTalkImageFetcher(api, max_bytes=4096).fetch(ImageRef(ref="FAKEbig=="))
    assert result == FetchError("too_large", retry=False)


# ---------------------------------------------------------------- late replies


def reply_context(fake: FakeDingTalk, clock: FakeClock, *, group: bool = True,
                  webhook: str | None = None) -> dict[str, Any]:
    return {"session_webhook": webhook or f"{fake.base}/robot/sendBySession?session=FAKEsession3",
            "session_webhook_expires_ms": ms(clock.now) + 5_400_000, "robot_code": APP_KEY,
            "conversation_id": GROUP if group else "cidFAKEprivate==", "is_group": group,
            "sender_id": "dt-zhangming"}


async def test_a_late_reply_goes_to_the_session_webhook_while_it_is_valid(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock) -> None:
    replier = SessionWebhookReplier(api, fake.base, clock)
    text = OutgoingText("✅ 已收到第 1/3 张。", mentions=("dt-zhangming",))
    assert (await replier.reply(reply_context(fake, clock), text)).kind == "ok"
    [(session, body)] = fake.session_posts
    assert session == "FAKEsession3"
    assert body == wire.text_body("✅ 已收到第 1/3 张。", ["dt-zhangming"])
    assert fake.token_requests == []  # the sessionWebhook needs no token


@pytest.mark.parametrize("group", [True, False])
async def test_after_the_session_webhook_expires_the_reply_uses_the_openapi(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock, group: bool) -> None:
    context = reply_context(fake, clock, group=group)
    clock.advance(minutes=90)
    outcome = await SessionWebhookReplier(api, fake.base, clock).reply(context, OutgoingText("已收到"))
    assert outcome.kind == "ok" and fake.session_posts == []
    if group:
        assert [b["openConversationId"] for b in fake.group_sends] == [GROUP]
    else:
        assert [b["userIds"] for b in fake.oto_sends] == [["dt-zhangming"]]


async def test_a_session_webhook_on_a_foreign_origin_is_never_posted_to(
        api: DingTalkApi, fake: FakeDingTalk, clock: FakeClock) -> None:
    evil = "http://127.0.0.1:9/robot/sendBySession?session=x"
    context = reply_context(fake, clock, webhook=evil)
    assert urlsplit(evil).netloc != urlsplit(fake.base).netloc
    outcome = await SessionWebhookReplier(api, fake.base, clock).reply(context, OutgoingText("已收到"))
    assert outcome.kind == "ok" and fake.session_posts == [] and len(fake.group_sends) == 1
