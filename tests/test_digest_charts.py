"""A scheduled digest is followed by its chart, once, where the group's route can show a picture:
WeCom robots get an image message, DingTalk robots a markdown message with the chart's URL."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import SCHEDULER, SENDER, create_app
from bot.config import Config, ServerConfig
from bot.digest_charts import CHART_SUFFIX, CHARTS, public_chart_base
from handlers.charts import SCHOOL_SIZE, district_size
from kernel.settings import Secret
from platforms.dingtalk.settings import DingTalkConfig
from storage.db import Database
from storage.models import ChatGroup, Outbox
from storage.queries.groups import bind_group, school_by_code
from tests.conftest import DATA, FakeClock, local, seed
from tests.known_records import DIGEST_AT, add_known_records
from tests.test_charts import decode
from tests.wecom_fake import WEBHOOK_KEY, FakeWeCom, wecom_config

LOADED = local(2023, 2, 28, 20, 0)



@pytest.fixture
async def fake_wecom(aiohttp_server: Any) -> FakeWeCom:
    fake = FakeWeCom()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def chart_config(tmp_path: Path, db_url: str, fake_wecom: FakeWeCom) -> Config:
    cfg = wecom_config(tmp_path, db_url, fake_wecom.base)
    # LX002's group is a DingTalk robot's: DingTalk is on too (its sends go nowhere reachable)
    dingtalk = DingTalkConfig(enabled=True, app_secret=Secret("chart-test"), api_base="https://api.invalid",
                              oapi_base="https://oapi.invalid")
    return dataclasses.replace(cfg, server=ServerConfig(public_base_url="https://yanxiu.example.org"),
                               platforms={**cfg.platforms, "dingtalk": dingtalk})


@pytest.fixture
async def chart_db(chart_config: Config, fake_wecom: FakeWeCom) -> Any:
    """Known records; LX001 also has a WeCom robot group, LX002 a DingTalk robot, plus a district group."""
    db = Database(chart_config.database.url)
    await db.upgrade()
    await seed(db, (DATA / "spec_plan.toml").read_text(encoding="utf-8"), LOADED)
    await add_known_records(db)
    async with db.sessions() as s, s.begin():
        lx001, lx002 = await school_by_code(s, "LX001"), await school_by_code(s, "LX002")
        assert lx001 is not None and lx002 is not None
        await bind_group(s, platform="wecom", conversation_id="wx-lx001", school_id=lx001.id, now=LOADED,
                         route_kind="wecom_webhook",
                         route_url=f"{fake_wecom.base}/cgi-bin/webhook/send?key={WEBHOOK_KEY}")
        await bind_group(s, platform="dingtalk", conversation_id="cid-lx002", school_id=lx002.id, now=LOADED,
                         route_kind="dingtalk_robot", route_url="https://oapi.invalid/robot/send?access_token=x")
        await bind_group(s, platform="wecom", conversation_id="wx-district", school_id=None,  # type: ignore[arg-type]
                         now=LOADED, route_kind="wecom_webhook",
                         route_url=f"{fake_wecom.base}/cgi-bin/webhook/send?key={WEBHOOK_KEY}")
    yield db
    await db.close()


async def outbox_by_conv(db: Database) -> list[tuple[Outbox, str]]:
    async with db.sessions() as s:
        rows = await s.execute(select(Outbox, ChatGroup.conversation_id)
                               .join(ChatGroup, ChatGroup.id == Outbox.group_id).order_by(Outbox.id))
        return [(o, conv) for o, conv in rows.all()]


async def test_the_friday_digest_is_followed_by_its_chart_once_where_the_route_shows_pictures(
        aiohttp_client: Any, chart_config: Config, chart_db: Database, fake_wecom: FakeWeCom,
        clock: FakeClock) -> None:
    clock.now = DIGEST_AT  # Friday 16:00: the school digests are due
    client = await aiohttp_client(create_app(chart_config, clock=clock))
    await client.app[CHARTS].drain()  # drawn in the background once the digests were queued
    await client.app[SENDER].drain()
    texts = [body for _, body in fake_wecom.webhook_posts]
    assert [b["msgtype"] for b in texts] == ["text"]  # the digest first; the chart is due a second later
    assert "兰西县第一小学 · 研修进度" in texts[0]["text"]["content"]

    clock.advance(seconds=2)
    await client.app[SENDER].drain()
    assert [b["msgtype"] for _, b in fake_wecom.webhook_posts] == ["text", "image"]
    image = fake_wecom.webhook_posts[1][1]["image"]
    raw = base64.b64decode(image["base64"])
    assert hashlib.md5(raw).hexdigest() == image["md5"] and decode(raw).size == SCHOOL_SIZE

    rows = await outbox_by_conv(chart_db)
    charts = {conv: o for o, conv in rows if o.ref.endswith(CHART_SUFFIX)}
    assert set(charts) == {"wx-lx001", "cid-lx002"}  # the simulator's groups get text only
    wecom, dingtalk = charts["wx-lx001"], charts["cid-lx002"]
    assert wecom.state == "sent" and await asyncio.to_thread(Path(wecom.image_path).read_bytes) == raw
    assert dingtalk.markdown and dingtalk.image_path is None
    url = re.search(r"\((https://yanxiu\.example\.org/charts/([0-9a-f]{64})\.png)\)", dingtalk.text)
    assert url is not None and "本校研修进度图" in dingtalk.text
    served = await client.get(f"/charts/{url.group(2)}.png")
    assert served.status == 200 and served.content_type == "image/png"
    assert decode(await served.read()).size == SCHOOL_SIZE

    before = len(rows)
    assert await client.app[SCHEDULER].enqueue_due() == 0  # firing again creates nothing
    assert len(await outbox_by_conv(chart_db)) == before

    clock.set(2023, 3, 20, 8, 30)  # Monday: the district digest, to the district group
    await client.app[SCHEDULER].enqueue_due()
    await client.app[CHARTS].drain()
    clock.advance(seconds=2)
    await client.app[SENDER].drain()
    district = [(o, conv) for o, conv in await outbox_by_conv(chart_db) if o.kind == "district_digest"]
    sent = sorted((conv, o.ref.split(":", 1)[1]) for o, conv in district if o.state == "sent")
    assert sent == [("wx-district", "2023-03-20"), ("wx-district", "2023-03-20#chart")]
    assert {o.last_error for o, _ in district if o.state != "sent"} == {"missed while down"}
    assert [b["msgtype"] for _, b in fake_wecom.webhook_posts[-2:]] == ["text", "image"]
    last = fake_wecom.webhook_posts[-1][1]
    assert decode(base64.b64decode(last["image"]["base64"])).size == district_size(2)


def test_only_an_address_a_phone_can_reach_gets_markdown_charts() -> None:
    assert public_chart_base("https://yanxiu.example.org/") == "https://yanxiu.example.org"
    assert public_chart_base("http://10.1.2.3:8080") == "http://10.1.2.3:8080"
    for local_url in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080",
                      "http://127.8.0.1"):
        assert public_chart_base(local_url) is None


async def test_a_chart_that_cannot_be_drawn_never_holds_the_digest_back(
        aiohttp_client: Any, chart_config: Config, chart_db: Database, fake_wecom: FakeWeCom,
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import bot.digest_charts

    def broken(digest: Any) -> bytes:
        raise RuntimeError("no font today")

    monkeypatch.setattr(bot.digest_charts, "school_chart", broken)
    clock.now = DIGEST_AT
    client = await aiohttp_client(create_app(chart_config, clock=clock))
    await client.app[CHARTS].drain()
    clock.advance(seconds=2)
    await client.app[SENDER].drain()
    assert [b["msgtype"] for _, b in fake_wecom.webhook_posts] == ["text"]
    rows = await outbox_by_conv(chart_db)
    assert not [o for o, _ in rows if o.ref.endswith(CHART_SUFFIX)]
    assert {conv for o, conv in rows if o.kind == "school_digest" and o.state == "sent"} >= {"wx-lx001"}
    assert "digest charts for school_digest" in caplog.text
