"""One count everywhere: a session is held once it has started. In the ten minutes between
check-in opening and the start, teachers who check in early are not yet counted — not by 进度,
not by the dashboard's header, its grid or its weekly trend — and all are counted from the
start on. The leave cards count the leaves listed under them."""

from __future__ import annotations

import re
from typing import Any

from storage.db import Database
from tests.conftest import FakeClock, SimChat
from tests.test_dashboard import link_of, member_rows, page, text_of, token_of

EARLY = ("张明", "李秀英", "刘洋")  # check in at 9:55 for Tuesday 7 March's 10:00 session


def header_checkins(html: str) -> tuple[int, int]:
    """The summary card's 签到 done/total."""
    found = re.search(r'id="sum-checkins">[^<]*</b><span>签到 (\d+)/(\d+)<', html)
    assert found is not None, html[:2000]
    return int(found.group(1)), int(found.group(2))


def trend_checkins(html: str) -> tuple[int, int]:
    """The weekly trend's 签到完成 (done/total) added up over the weeks."""
    done = total = 0
    for row in re.findall(r'<tr data-week="[\d-]+">(.*?)</tr>', html, flags=re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        found = re.search(r"（(\d+)/(\d+)）", text_of(cells[2]))
        if found:
            done, total = done + int(found.group(1)), total + int(found.group(2))
    return done, total


def progress_checkins(reply: str) -> tuple[int, int]:
    """进度's 签到 attended/held."""
    found = re.search(r"签到[：:]\s*(\d+)/(\d+)", reply)
    assert found is not None, reply
    return int(found.group(1)), int(found.group(2))


async def pages(client: Any, chat: SimChat) -> tuple[str, str, str]:
    """The school page (as its lead sees it), the district page, 张明's teacher page."""
    school_q = token_of(await link_of(chat, "王丽华"))
    district_q = token_of(await link_of(chat, "钱志强"))
    return (await page(client, f"/dashboard/school/LX001?{school_q}"),
            await page(client, f"/dashboard/district?{district_q}"),
            await page(client, f"/dashboard/teacher/{chat.ids['张明']}?{school_q}"))


async def test_between_checkin_opening_and_the_start_every_count_agrees(
        app_client: Any, chat: SimChat, seeded: Database, clock: FakeClock) -> None:
    clock.set(2023, 3, 7, 9, 55)  # held so far: Thursday 2 March, when nobody checked in
    for name in EARLY:
        assert "签到成功" in await chat.say(name, "签到")
    school, district, teacher = await pages(app_client, chat)
    # 4 members × 1 session held, none attended: the early check-ins wait for the start
    assert header_checkins(school) == trend_checkins(school) == (0, 4)
    assert header_checkins(district) == trend_checkins(district) == (0, 7)
    assert "已开展 1 次活动" in school
    assert f"{0}/{1}" in member_rows(school)[chat.ids["张明"]].split()[1]
    assert progress_checkins(await chat.say("张明", "进度")) == (0, 1)
    assert 'id="sum-checkins">0/1<' in teacher and "另 1 次开始后计入" in teacher

    clock.set(2023, 3, 7, 10, 0)  # the session has started: now it is held, and they attended
    school, district, teacher = await pages(app_client, chat)
    assert header_checkins(school) == trend_checkins(school) == (3, 8)
    assert header_checkins(district) == trend_checkins(district) == (3, 14)
    assert "已开展 2 次活动" in school
    assert member_rows(school)[chat.ids["张明"]].split()[1] == "1/2"
    assert progress_checkins(await chat.say("张明", "进度")) == (1, 2)
    assert 'id="sum-checkins">1/2<' in teacher and "开始后计入" not in teacher


async def test_the_leave_cards_count_the_pending_leaves_they_list(
        app_client: Any, chat: SimChat, seeded: Database, clock: FakeClock) -> None:
    clock.set(2023, 3, 7, 11, 0)  # after Tuesday's session: three leaves for days to come
    for day in ("3月9日", "3月14日", "3月16日"):
        assert "请假已记录" in await chat.say("张明", f"请假 {day} 外出培训")
    school, _, teacher = await pages(app_client, chat)
    listed = re.findall(r"<li>[^<]*（待）[^<]*</li>", teacher)
    assert len(listed) == 3
    assert re.search(r'id="sum-leaves">3</b><span>请假（待 3）<', teacher)
    leaves = text_of(re.search(r'<section id="leaves">(.*?)</section>', school, flags=re.S).group(1))
    assert leaves.count("张明") == 3 and leaves.count("待") == 3
    assert re.search(r'id="sum-leaves">3</b><span>请假（待 3）<', school)

    clock.set(2023, 3, 9, 10, 30)  # one of them is past: excused, still listed, still counted
    school, _, teacher = await pages(app_client, chat)
    assert re.search(r'id="sum-leaves">3</b><span>请假（待 2）<', school)
    assert re.search(r'id="sum-leaves">3</b><span>请假（待 2）<', teacher)
    assert member_rows(school)[chat.ids["张明"]].split()[2] == "1"  # the 请假 column: excused so far
