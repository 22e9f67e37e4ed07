"""Wrong addresses and refused commands, as a person sees them: a Chinese 404 page (under the
same no-inline-script policy as every page) for the dashboard and the simulator, an icon for
both, and a teacher who sends 后台 told who may use it — school leads and district admins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import config_from_mapping
from storage.db import Database
from tests.conftest import FakeClock, SimChat
from tests.test_web_safety import assert_no_inline_script, assert_nothing_inline

NOT_FOUND = "页面不存在（404）"
HTML = {"Accept": "text/html,application/xhtml+xml"}


async def test_a_wrong_dashboard_or_simulator_address_gets_a_chinese_404_page(app_client: Any) -> None:
    for path in ("/dashboard/nope", "/dashboard/school/LX001/extra", "/dashboard/teacher/abc",
                 "/sim/nope", "/sim/static/nope.js", f"/charts/{'0' * 64}.png"):
        resp = await app_client.get(path)
        html = await resp.text()
        assert resp.status == 404 and resp.content_type == "text/html", path
        assert NOT_FOUND in html and 'lang="zh-CN"' in html, path
        assert "返回本地模拟器" in html, path  # the demo serves the simulator: a way back
        assert_no_inline_script(resp.headers["Content-Security-Policy"])
        assert_nothing_inline(html)
        assert resp.headers["Cache-Control"] == "no-store"
    dashboard = await (await app_client.get("/dashboard/nope")).text()
    assert "发送「后台」获取新链接" in dashboard
    simulator = await (await app_client.get("/sim/nope")).text()
    assert "发送「后台」" not in simulator


async def test_a_browser_at_any_wrong_address_gets_the_page_and_a_platform_server_does_not(
        app_client: Any) -> None:
    browser = await app_client.get("/nope", headers=HTML)
    assert browser.status == 404 and NOT_FOUND in await browser.text()
    server = await app_client.get("/nope", headers={"Accept": "application/json"})
    assert server.status == 404 and NOT_FOUND not in await server.text()
    posted = await app_client.post("/dashboard/nope", json={})
    assert posted.status in (404, 405) and NOT_FOUND not in await posted.text()


@pytest.fixture
async def served_client(aiohttp_client: Any, tmp_path: Path, db_url: str, clock: FakeClock,
                        seeded: Database) -> Any:
    """The app as `yanxiu serve` runs it: no simulator."""
    from bot.app import create_app

    config = config_from_mapping({
        "database": {"url": db_url},
        "storage": {"files_dir": str(tmp_path / "served-files")},
        "server": {"public_base_url": "http://127.0.0.1:8080"},
    }, env={})
    return await aiohttp_client(create_app(config, clock=clock))


async def test_without_the_simulator_the_404_page_offers_no_way_to_it(served_client: Any) -> None:
    resp = await served_client.get("/sim/")
    html = await resp.text()
    assert resp.status == 404 and NOT_FOUND in html and "返回本地模拟器" not in html


async def test_the_pages_have_an_icon_and_it_is_served_as_an_image(app_client: Any) -> None:
    for path in ("/favicon.svg", "/favicon.ico"):
        resp = await app_client.get(path)
        assert resp.status == 200 and resp.content_type == "image/svg+xml", path
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        body = await resp.text()
        assert body.startswith("<svg") and "<script" not in body
    page = await (await app_client.get("/dashboard/district?t=forged")).text()  # the 403 page too
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in page


async def test_the_simulator_page_links_the_icon(app_client: Any, chat: SimChat) -> None:
    page = await (await app_client.get("/sim/")).text()
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in page
    missing = await (await app_client.get("/sim/nope")).text()
    assert '<link rel="icon" href="/favicon.svg"' in missing


async def test_a_teacher_sending_后台_is_told_leads_and_district_admins_may(chat: SimChat) -> None:
    refusal = await chat.say("张明", "后台", school=None)
    assert refusal == ("抱歉，这个功能只有学校负责人和区管理员可以使用。"
                       "发送「帮助」查看您可以用的功能。")
    assert "/dashboard/?t=" in await chat.say("钱志强", "后台", school=None)  # as it says
    assert "只有学校负责人可以使用" in await chat.say("张明", "催交")  # other verbs: as declared
