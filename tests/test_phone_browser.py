"""The pages on a phone (headless Chromium at 390×844 CSS pixels): a lead scrolls the school's
teachers × tasks grid sideways and the names stay in place while every column comes into view
whole; in the simulator each role sees its own chips, the 后台 link in a reply opens, and an
address someone typed stays text; a wrong address gets the Chinese 404 page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import PHONE, headless_chromium
from tests.conftest import FakeClock, SimChat
from tests.known_records import DIGEST_AT, add_known_records
from tests.test_dashboard import link_of
from tests.test_web_safety import RECORD_VIOLATIONS, Browser, needs_chromium

pytestmark = needs_chromium

# for each column after the names: scroll the grid so the column starts just right of the
# fixed name column, then measure where the column, the name column and the names are
COLUMNS = """
const box = document.querySelector('#grid .scroll');
const heads = [...box.querySelectorAll('thead th')];
const first = heads[0];
const seen = [];
for (const th of heads.slice(1)) {
  const at = th.getBoundingClientRect().left - box.getBoundingClientRect().left + box.scrollLeft;
  box.scrollLeft = at - first.getBoundingClientRect().width;
  const b = box.getBoundingClientRect(), f = first.getBoundingClientRect(), r = th.getBoundingClientRect();
  seen.push({text: th.textContent.trim(), left: r.left, right: r.right, boxLeft: b.left,
             boxRight: b.right, nameLeft: f.left, nameRight: f.right, scrolled: box.scrollLeft,
             clipped: th.scrollWidth > th.clientWidth,
             names: [...box.querySelectorAll('tbody td:first-child')].map(td => {
               const n = td.getBoundingClientRect(); return [td.textContent.trim(), n.left, n.right]; })});
}
return seen;
"""
CHIPS = "return [...document.querySelectorAll('#chips button')].map(b => b.textContent.trim())"
LINKS = ("return [...document.querySelectorAll('#log .bubble a')].map(a => [a.href, a.textContent,"
         " a.target, a.rel])")
LAST_BOT = "const all = document.querySelectorAll('#log .msg.bot .bubble'); return all[all.length - 1].textContent"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = headless_chromium(tmp_path / "chromium-profile")
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    try:
        yield driver
    finally:
        driver.quit()


async def test_on_a_phone_the_grid_scrolls_sideways_with_the_names_fixed_and_every_column_whole(
        app_client: Any, chat: SimChat, browser: Any, seeded: Any, clock: FakeClock) -> None:
    await add_known_records(seeded)
    clock.now = DIGEST_AT
    page = Browser(browser, app_client)
    await page.open(await link_of(chat, "王丽华"))
    await page.wait_for("return document.querySelector('#grid tbody tr')")
    assert await page.js("return [window.innerWidth, window.innerHeight]") == list(PHONE)
    assert await page.js("return document.documentElement.scrollWidth") <= PHONE[0]  # only the grid scrolls
    assert await page.js("const b = document.querySelector('#grid .scroll'); return b.scrollWidth > b.clientWidth")
    hint = await page.js("const h = document.querySelector('#grid .scroll-hint');"
                         " return h && h.offsetParent !== null ? h.textContent : null")
    assert hint == "表格可左右滑动，姓名一列固定"
    # and the box's right edge shades while more columns lie beyond it
    assert "radial-gradient" in await page.js(
        "return getComputedStyle(document.querySelector('#grid .scroll')).backgroundImage")

    columns = await page.js(COLUMNS)
    assert [c["text"] for c in columns] == ["签到", "请假", "心得·三月研修心得",
                                            "照片·推门听课出课照片(三张不同角度)", "学时"]
    assert columns[-1]["scrolled"] > 0  # the last columns were off-screen at first
    for c in columns:
        assert abs(c["nameLeft"] - c["boxLeft"]) < 1, c  # the name column stays at the left edge
        assert c["left"] >= c["nameRight"] - 1 and c["right"] <= c["boxRight"] + 1, c  # all of it shows
        assert not c["clipped"], c  # its header is whole
        names = c["names"]
        assert [n for n, _, _ in names][:2] == ["王丽华 负责人", "张明"]
        assert all(abs(left - c["boxLeft"]) < 1 and right <= c["boxRight"] for _, left, right in names), c
    assert await page.violations() == []


async def test_in_the_simulator_each_role_sees_its_own_chips(
        app_client: Any, chat: SimChat, browser: Any) -> None:
    page = Browser(browser, app_client)
    await chat.load()
    await page.open("/sim/")
    await page.wait_for("return document.querySelectorAll('#who option').length > 1")
    await page.choose("who", str(chat.ids["张明"]))
    assert await page.js(CHIPS) == ["签到", "进度", "反思", "续写", "请假 下次", "帮助"]
    await page.choose("who", str(chat.ids["王丽华"]))
    assert await page.js(CHIPS) == ["签到", "进度", "反思", "续写", "请假 下次", "本校进度", "催交",
                                    "后台", "帮助"]
    await page.choose("who", str(chat.ids["钱志强"]))
    assert await page.js(CHIPS) == ["全区进度", "广播", "后台", "帮助"]
    assert await page.violations() == []


async def test_the_后台_link_in_a_reply_opens_the_dashboard_and_a_typed_address_stays_text(
        app_client: Any, chat: SimChat, browser: Any) -> None:
    page = Browser(browser, app_client)
    await chat.load()
    await page.open("/sim/")
    await page.wait_for("return document.querySelectorAll('#who option').length > 1")
    lead = chat.ids["王丽华"]
    await page.choose("who", str(lead))
    await page.choose("conv", f"sim-dm-{lead}")
    await page.js("[...document.querySelectorAll('#chips button')].find(b => b.textContent === '后台').click()")
    await page.wait_for("return document.querySelector('#log .msg.bot')")
    (href, text, target, rel), = await page.js(LINKS)
    assert href.startswith("http://127.0.0.1:8080/dashboard/?t=") and text == href  # public_base_url
    assert target == "_blank" and "noopener" in rel.split()
    assert f"\n{href}\n" in await page.js(LAST_BOT)  # the link is the reply's own line, in place
    await page.open(href.removeprefix("http://127.0.0.1:8080"))  # this test's server
    assert await page.js("return document.querySelector('h1').textContent") == "兰西县第一小学 · 研修进度"

    await page.open("/sim/")
    await page.wait_for("return document.querySelectorAll('#who option').length > 1")
    await page.choose("who", str(chat.ids["张明"]))
    await page.type_and_send("https://evil.example/x")  # quoted back in the bot's reply
    await page.wait_for("return document.querySelector('#log .msg.bot')")
    assert "「https://evil.example" in await page.js(LAST_BOT)  # an address, quoted as typed
    assert await page.js(LINKS) == []
    await page.choose("conv", f"sim-dm-{chat.ids['张明']}")
    await page.js("document.getElementById('text').value = ''")
    await page.type_and_send("后台")
    await page.wait_for("return document.querySelector('#log .msg.bot')")
    assert "只有学校负责人和区管理员可以使用" in await page.js(LAST_BOT)
    assert await page.violations() == []


async def test_a_wrong_address_shows_the_chinese_404_page_with_its_styles(
        app_client: Any, browser: Any) -> None:
    page = Browser(browser, app_client)
    await page.open("/sim/no-such-page")
    assert await page.js("return document.querySelector('h1').textContent") == "页面不存在（404）"
    assert await page.js("return document.title") == "页面不存在 · 研修助手"
    assert await page.js("return getComputedStyle(document.querySelector('main')).borderRadius") == "10px"
    await page.js("[...document.querySelectorAll('a')].find(a => a.textContent === '返回本地模拟器').click()")
    await page.wait_for("return document.querySelectorAll('#who option').length > 1")
    await page.open("/dashboard/district/extra")
    assert "发送「后台」获取新链接" in await page.js("return document.body.textContent")
    assert await page.violations() == []
