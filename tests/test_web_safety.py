"""What a roster name or a typed text cannot do to the web pages: a name that is HTML or script
shows as the literal text in the simulator, and the simulator and the dashboard are sent with
a Content-Security-Policy that allows no inline script, and still work under it in Chromium.
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import Config, config_from_mapping
from storage.db import Database
from storage.files import photo_path
from storage.models import Photo
from tests.browser import have_chromium, headless_chromium
from tests.conftest import DATA, FakeClock, SimChat, seed
from tests.known_records import DIGEST_AT, add_known_records
from tests.test_dashboard import link_of

# each one, if it ever became markup, would set the title and a flag on the page
PERSON = """<img src=x onerror="document.title='pwned-person';window.__pwned='person'">"""
SCHOOL = """<svg onload="document.title='pwned-school';window.__pwned='school'"></svg>第九小学"""
TYPED = """签到 <img src=y onerror="window.__pwned='typed'">"""
SIM_TITLE = "研修助手 · 本地模拟器"

needs_chromium = pytest.mark.skipif(
    not have_chromium(), reason="Chromium not installed (apt-get install chromium chromium-driver; "
                                ".ci/run installs them)")

# installed before any page script: every CSP violation the page causes is kept in a list
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.effectiveDirective + " " + (e.blockedURI || "inline")));
"""


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    """The simulator switched on explicitly: these tests are about its page."""
    return config_from_mapping({
        "database": {"url": db_url},
        "storage": {"files_dir": str(tmp_path / "files")},
        "server": {"public_base_url": "http://127.0.0.1:8080"},
        "sim": {"enabled": True},
    }, env={})


@pytest.fixture
async def seeded(db: Database, spec_plan_text: str, clock: FakeClock, tmp_path: Path) -> Database:
    """The usual roster, plus a teacher of 兰西县第一小学 and a school whose names are markup."""
    roster = tmp_path / "roster.csv"
    rows = list(csv.reader((DATA / "roster.csv").read_text(encoding="utf-8").splitlines()))
    rows.append(["LX001", "兰西县第一小学", PERSON, "教师", "dt-payload", "", "13800000009", "语文", "小学"])
    rows.append(["LX009", SCHOOL, "吴磊", "教师", "dt-wulei", "", "13800000010", "数学", "小学"])
    with roster.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    await seed(db, spec_plan_text, clock.now, roster=roster)
    return db


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = headless_chromium(tmp_path / "chromium-profile")
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    try:
        yield driver
    finally:
        driver.quit()


class Browser:
    """Chromium driven from a worker thread, so the app keeps serving on the event loop."""

    def __init__(self, driver: Any, client: Any) -> None:
        self.driver, self.client = driver, client
        self.earlier: list[str] | None = None  # the violations of the pages left behind

    async def open(self, path: str) -> None:
        if self.earlier is not None:
            self.earlier += await self._violations_here()
        await asyncio.to_thread(self.driver.get, str(self.client.make_url(path)))
        self.earlier = self.earlier or []

    async def js(self, script: str, *args: Any) -> Any:
        return await asyncio.to_thread(self.driver.execute_script, script, *args)

    async def wait_for(self, script: str, *args: Any) -> Any:
        """Until the script returns something truthy (the page polls every 1.5 s)."""
        from selenium.webdriver.support.ui import WebDriverWait

        def until() -> Any:
            return WebDriverWait(self.driver, 30).until(lambda d: d.execute_script(script, *args))

        return await asyncio.to_thread(until)

    async def choose(self, select_id: str, value: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        await asyncio.to_thread(
            lambda: Select(self.driver.find_element(By.ID, select_id)).select_by_value(value))

    async def type_and_send(self, text: str) -> None:
        from selenium.webdriver.common.by import By

        def act() -> None:
            self.driver.find_element(By.ID, "text").send_keys(text)
            self.driver.find_element(By.ID, "send").click()

        await asyncio.to_thread(act)

    async def send_file(self, path: Path) -> None:
        """Pick a file with the page's 图片 button (a hidden file input, as on a phone)."""
        from selenium.webdriver.common.by import By

        await asyncio.to_thread(lambda: self.driver.find_element(By.ID, "file").send_keys(str(path)))

    async def _violations_here(self) -> list[str]:
        return list(await self.js("return window.__violations || ['recorder missing']"))

    async def violations(self) -> list[str]:
        """Every CSP violation on every page this browser opened."""
        return (self.earlier or []) + await self._violations_here()


OPTIONS = "return [...document.querySelectorAll(arguments[0] + ' option')].map(o => o.textContent)"
BUBBLES = ("return [...document.querySelectorAll('#log .msg')].map(m => [m.className,"
           " m.querySelector('.who').textContent, m.querySelector('.bubble').textContent])")


def policy(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: [sources]}."""
    parts = (p.split() for p in header.split(";") if p.strip())
    return {p[0]: p[1:] for p in parts}


def assert_no_inline_script(header: str) -> None:
    directives = policy(header)
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts is not None and scripts, header
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, header
    assert "'unsafe-inline'" not in directives.get("style-src", directives["default-src"]), header
    assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"], header
    assert directives["frame-ancestors"] == ["'none'"], header


def assert_nothing_inline(html: str) -> None:
    """No inline script, style element, style attribute or event-handler attribute in the page."""
    tags = re.findall(r"<[a-zA-Z][^>]*>", html)  # escaped text (&lt;…) is no tag
    assert tags and not [t for t in tags if t.startswith("<script") and " src=" not in t]
    assert not [t for t in tags if t.startswith("<style")]
    assert not [t for t in tags if re.search(r"\s(style|on[a-z]+)\s*=", t)]


@needs_chromium
async def test_a_roster_name_that_is_markup_shows_as_that_text_in_the_simulator_and_runs_nothing(
        app_client: Any, chat: SimChat, browser: Any) -> None:
    page = Browser(browser, app_client)
    await chat.load()
    payload_id = chat.ids[PERSON]
    await page.open("/sim/")
    await page.wait_for("return document.querySelectorAll('#who option').length > 1")
    assert await page.js("return [document.title, window.__pwned || null]") == [SIM_TITLE, None]

    people = await page.js(OPTIONS, "#who")
    assert f"{PERSON} · 兰西县第一小学 · 教师" in people
    assert f"吴磊 · {SCHOOL} · 教师" in people
    assert f"{SCHOOL}研修群" in await page.js(OPTIONS, "#conv")

    await page.choose("who", str(payload_id))
    assert await page.js("return document.getElementById('conv').value") == "sim-group-LX001"
    await page.type_and_send("签到")
    await page.wait_for("return document.querySelector('#log .msg.bot')")
    await page.type_and_send(TYPED)
    await page.wait_for("return document.querySelectorAll('#log .msg.bot').length >= 2")
    mine, checked_in, typed, not_understood = await page.js(BUBBLES)
    assert mine == ["msg me", PERSON, "@研修助手 签到"]
    assert checked_in[:2] == ["msg bot", "研修助手"] and f"✅ {PERSON} 签到成功" in checked_in[2]
    assert typed == ["msg me", PERSON, f"@研修助手 {TYPED}"]
    assert TYPED[:20] in not_understood[2] and PERSON in not_understood[2]  # echoed, as text

    assert await page.js("return [document.title, window.__pwned || null]") == [SIM_TITLE, None]
    assert await page.js("return document.querySelectorAll('#log img, select img, select svg').length") == 0
    assert await page.violations() == []


@needs_chromium
async def test_the_simulator_works_under_its_policy_a_teacher_checks_in_and_reads_the_reply(
        app_client: Any, chat: SimChat, browser: Any) -> None:
    page = Browser(browser, app_client)
    await chat.load()
    await page.open("/sim/")
    await page.wait_for("return document.querySelectorAll('#who option').length > 1")
    await page.choose("who", str(chat.ids["张明"]))
    await page.type_and_send("签到")
    await page.wait_for("return document.querySelector('#log .msg.bot')")
    mine, reply = await page.js(BUBBLES)
    assert mine == ["msg me", "张明", "@研修助手 签到"]
    assert "签到成功" in reply[2]
    # the stylesheet came from its file: the header is the simulator's blue
    assert await page.js(
        "return getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(22, 119, 255)"
    # the chips are buttons built by the script: 进度 sends at once
    await page.js("[...document.querySelectorAll('#chips button')].find(b => b.textContent === '进度').click()")
    await page.wait_for("return document.querySelectorAll('#log .msg.bot').length >= 2")
    # the choice of person survives a reload
    await page.open("/sim/")
    await page.wait_for("return document.querySelectorAll('#log .msg').length >= 4")
    assert await page.js("return document.getElementById('who').value") == str(chat.ids["张明"])
    assert await page.violations() == []


@needs_chromium
async def test_under_its_policy_a_teacher_sends_a_large_phone_photo_and_the_page_shrinks_it(
        app_client: Any, chat: SimChat, browser: Any, seeded: Database, config: Config,
        tmp_path: Path) -> None:
    from PIL import Image

    photo = tmp_path / "phone.png"  # 2000×1000 stored uncompressed: ~6 MB, over the 700 KB limit
    Image.linear_gradient("L").resize((2000, 1000)).convert("RGB").save(photo, compress_level=0)
    page = Browser(browser, app_client)
    await chat.load()
    await page.open("/sim/")
    await page.wait_for("return document.querySelectorAll('#who option').length > 1")
    await page.choose("who", str(chat.ids["张明"]))
    await page.choose("conv", f"sim-dm-{chat.ids['张明']}")
    await page.send_file(photo)
    await page.wait_for("return document.querySelector('#log .msg.bot')")
    mine, reply = await page.js(BUBBLES)
    assert mine == ["msg me", "张明", "[图片]"] and "已收到第 1/3 张" in reply[2]
    async with seeded.sessions() as s:
        (sha, mime), = (await s.execute(select(Photo.sha256, Photo.mime))).all()
    assert mime == "image/jpeg"  # shrunk in the page before it was sent
    with Image.open(photo_path(Path(config.storage.files_dir), sha, mime)) as stored:
        assert stored.size == (1600, 800)
    assert await page.violations() == []


@needs_chromium
async def test_the_dashboard_renders_under_its_policy_with_the_markup_name_as_text(
        app_client: Any, chat: SimChat, browser: Any, clock: FakeClock, seeded: Database) -> None:
    people = await add_known_records(seeded)
    clock.now = DIGEST_AT
    page = Browser(browser, app_client)
    await chat.load()
    link = await link_of(chat, "王丽华")
    await page.open(link)
    await page.wait_for("return document.querySelector('#grid tbody tr')")
    names = await page.js("return [...document.querySelectorAll('#grid tbody tr td:first-child a')]"
                          ".map(a => a.textContent)")
    assert PERSON in names and "张明" in names
    assert await page.js("return document.querySelectorAll('#grid img').length") == 0
    # the stylesheet applied (a file, not inline) and the bars have their widths
    assert await page.js(
        "return getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(22, 119, 255)"
    widths = await page.js("return [...document.querySelectorAll('#trend .bar rect')]"
                           ".map(r => r.getBoundingClientRect().width)")
    assert widths and max(widths) > 0
    await page.open(f"/dashboard/teacher/{people['李秀英']}?{link.split('?', 1)[1]}")
    assert await page.js("return document.querySelector('h1').textContent") == "李秀英 · 研修记录"
    await page.open(f"/dashboard/school/LX002?{link.split('?', 1)[1]}")
    assert await page.js("return document.querySelector('h1').textContent") == "无法打开（403）"
    assert await page.js("return getComputedStyle(document.querySelector('h1')).color") == "rgb(207, 19, 34)"
    assert await page.js("return window.__pwned === undefined") is True
    assert await page.violations() == []


async def test_the_simulator_and_every_dashboard_page_come_with_a_policy_allowing_no_inline_script(
        app_client: Any, chat: SimChat) -> None:
    await chat.load()
    school_link = await link_of(chat, "王丽华")
    district_link = await link_of(chat, "钱志强")
    token = school_link.split("?", 1)[1]
    pages = {"/sim/": 200, school_link: 302, district_link: 302, "/dashboard/district?t=forged": 403,
             "/dashboard/school/LX001?" + token: 200, "/dashboard/school/LX002?" + token: 403,
             f"/dashboard/teacher/{chat.ids['张明']}?{token}": 200,
             "/dashboard/district?" + district_link.split("?", 1)[1]: 200}
    assets = set()
    for path, status in pages.items():
        resp = await app_client.get(path, allow_redirects=False)
        assert resp.status == status, path
        assert_no_inline_script(resp.headers["Content-Security-Policy"])
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        if status != 302:
            html = await resp.text()
            assert_nothing_inline(html)
            assets |= set(re.findall(r'(?:src|href)="((?:/|static/)[^"?]*\.(?:js|css))"', html))
    sim_policy = policy((await app_client.get("/sim/")).headers["Content-Security-Policy"])
    assert sim_policy["script-src"] == ["'self'"]
    dashboard = await app_client.get("/dashboard/district?t=forged")
    assert policy(dashboard.headers["Content-Security-Policy"])["script-src"] == ["'none'"]
    assert assets == {"static/sim.js", "static/sim.css", "/dashboard/static/dashboard.css"}


async def test_the_pages_script_and_styles_are_served_as_their_types_and_nothing_else_is(
        app_client: Any) -> None:
    types = {"/sim/static/sim.js": "text/javascript", "/sim/static/sim.css": "text/css",
             "/dashboard/static/dashboard.css": "text/css"}
    for path, kind in types.items():
        resp = await app_client.get(path)
        assert resp.status == 200 and resp.content_type == kind, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        again = await app_client.get(path, headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status == 304 and await again.read() == b""
    assert "textContent" in await (await app_client.get("/sim/static/sim.js")).text()
    for path in ("/sim/static/sim.html", "/dashboard/static/_ui.html", "/dashboard/static/sim.js",
                 "/sim/static/../sim.html", "/sim/static/%2e%2e/web/sim.html", "/dashboard/static/"):
        assert (await app_client.get(path)).status == 404, path
