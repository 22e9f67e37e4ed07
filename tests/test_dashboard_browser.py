"""The dashboard in a real browser (headless Chromium at a phone's size): a lead and the district
admin open the link the bot sent them and read the numbers; another school or an expired link
shows the 403 page. The app is served over loopback by aiohttp's test server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import PHONE, have_chromium, headless_chromium
from tests.conftest import FakeClock, SimChat
from tests.known_records import DIGEST_AT, add_known_records
from tests.test_dashboard import link_of

pytestmark = pytest.mark.skipif(not have_chromium(),
                                reason="Chromium not installed (apt-get install chromium chromium-driver; "
                                       ".ci/run installs them)")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = headless_chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def known(seeded: Any, clock: FakeClock) -> dict[str, int]:
    people = await add_known_records(seeded)
    clock.now = DIGEST_AT
    return people


class Page:
    """The browser, driven from a worker thread so the app keeps serving on the event loop."""

    def __init__(self, driver: Any, client: Any) -> None:
        self.driver, self.client = driver, client

    async def open(self, path: str) -> None:
        await asyncio.to_thread(self.driver.get, str(self.client.make_url(path)))

    async def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        def read() -> str:
            return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

        return await asyncio.to_thread(read)

    async def texts(self, css: str) -> list[str]:
        from selenium.webdriver.common.by import By

        def read() -> list[str]:
            return [str(e.text) for e in self.driver.find_elements(By.CSS_SELECTOR, css)]

        return await asyncio.to_thread(read)

    async def click(self, link_text: str) -> None:
        from selenium.webdriver.common.by import By

        await asyncio.to_thread(lambda: self.driver.find_element(By.LINK_TEXT, link_text).click())

    async def path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(await asyncio.to_thread(lambda: self.driver.current_url)).path

    async def script(self, js: str) -> Any:
        return await asyncio.to_thread(self.driver.execute_script, js)


async def test_a_lead_opens_the_link_on_a_phone_and_reads_the_schools_numbers(
        app_client: Any, chat: SimChat, known: dict[str, int], browser: Any) -> None:
    page = Page(browser, app_client)
    await page.open(await link_of(chat, "王丽华"))
    assert await page.path() == "/dashboard/school/LX001"
    assert await page.text("h1") == "兰西县第一小学 · 研修进度"
    assert await page.text("#sum-checkins") == "68%"
    assert await page.text("#sum-reflections") == "50%"
    assert await page.text("#sum-photos") == "25%"
    assert await page.text("#sum-overall") == "47%"
    zhang = await page.text(f"#member-{known['张明']}")
    assert zhang.startswith("张明") and "5/5" in zhang and "草稿 500/1000" in zhang
    assert "通过·疑似雷同" in await page.text(f"#member-{known['李秀英']}")
    assert "李秀英「三月研修心得」与 王丽华 相似 82%" in await page.text("#flags")
    # laid out for the phone: the page itself never scrolls sideways (the grid scrolls in its box)
    assert await page.script("return window.innerWidth") == PHONE[0]
    assert await page.script("return document.documentElement.scrollWidth") <= PHONE[0]

    await page.click("李秀英")
    assert await page.path() == f"/dashboard/teacher/{known['李秀英']}"
    assert await page.text("h1") == "李秀英 · 研修记录"
    assert await page.text("#sum-checkins") == "3/4"
    assert "3月9日 10:00 校本研修集中学习：家中有事" in await page.text("#checkins")


async def test_a_lead_gets_403_for_another_school_and_once_the_link_expires(
        app_client: Any, chat: SimChat, known: dict[str, int], browser: Any, clock: FakeClock) -> None:
    page = Page(browser, app_client)
    link = await link_of(chat, "王丽华")
    query = link.split("?", 1)[1]
    await page.open(f"/dashboard/school/LX002?{query}")
    assert await page.text("h1") == "无法打开（403）"
    assert "只能查看本校" in await page.text("#denied")
    assert await page.texts("#summary") == []  # no figures on the page
    status = await app_client.get(f"/dashboard/school/LX002?{query}")
    assert status.status == 403

    await page.open(f"/dashboard/district?{query}")
    assert await page.text("h1") == "无法打开（403）"

    await page.open(link)
    assert await page.text("#sum-checkins") == "68%"
    clock.advance(hours=13)
    await page.open(link)
    assert await page.text("h1") == "无法打开（403）"
    assert "这个链接已过期" in await page.text("#denied")


async def test_the_district_admin_sees_the_school_falling_behind_first_and_opens_it(
        app_client: Any, chat: SimChat, known: dict[str, int], browser: Any) -> None:
    page = Page(browser, app_client)
    await page.open(await link_of(chat, "钱志强"))
    assert await page.path() == "/dashboard/district"
    assert await page.text("#sum-overall") == "28%"
    assert await page.text("#sum-members") == "7"
    ranking = [" ".join(item.split()) for item in await page.texts("#ranking li")]
    assert ranking[0].startswith("1 兰西县实验中学 2% 签到 6%")
    assert ranking[1].startswith("2 兰西县第一小学 47% 签到 68% · 心得 50% · 照片 25%")
    weeks = await page.texts("#trend tbody tr")
    assert weeks[0].startswith("3月13日–3月19日 2 次 42%（6/14）")  # latest week first
    await page.click("兰西县第一小学")
    assert await page.path() == "/dashboard/school/LX001"
    assert await page.text("#sum-overall") == "47%"
    await page.click("← 全区")
    assert await page.path() == "/dashboard/district"
