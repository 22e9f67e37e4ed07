"""Teachers ask for leave (请假) from a session; excused sessions count neither way."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from kernel.leave_dates import LeaveRequest, parse_leave
from storage.models import Leave, Person, SessionOccurrence
from tests.conftest import TZ, FakeClock, SimChat, local

TUESDAY = date(2023, 3, 7)


@pytest.mark.parametrize("text,day,reason", [
    ("下次 外出参加培训", None, "外出参加培训"),
    ("外出参加培训", None, "外出参加培训"),
    ("下一次，孩子生病", None, "孩子生病"),
    ("今天 身体不适", date(2023, 3, 7), "身体不适"),
    ("明天下午有公开课", date(2023, 3, 8), "下午有公开课"),
    ("后天 外出", date(2023, 3, 9), "外出"),
    ("3月9日 孩子生病", date(2023, 3, 9), "孩子生病"),
    ("3月9号：孩子生病", date(2023, 3, 9), "孩子生病"),
    ("3-9 外出", date(2023, 3, 9), "外出"),
    ("3/14 外出", date(2023, 3, 14), "外出"),
    ("2023-03-09 外出", date(2023, 3, 9), "外出"),
    ("2023年3月9日 外出", date(2023, 3, 9), "外出"),
    ("０３－０９　外出", date(2023, 3, 9), "外出"),  # full-width digits and space
    ("周四 外出", date(2023, 3, 9), "外出"),
    ("星期二 外出", date(2023, 3, 7), "外出"),  # today is Tuesday
    ("週四 外出", date(2023, 3, 9), "外出"),
    ("礼拜四 外出", date(2023, 3, 9), "外出"),
    ("周一 外出", date(2023, 3, 13), "外出"),  # the coming Monday
    ("本周一 外出", date(2023, 3, 6), "外出"),  # this week's, already past
    ("下周二 外出", date(2023, 3, 14), "外出"),
    ("下个星期四 外出", date(2023, 3, 16), "外出"),
    ("12月1日 外出", date(2022, 12, 1), "外出"),  # recent past stays in this year
    ("3节课冲突", None, "3节课冲突"),  # digits that are not a date belong to the reason
    ("", None, ""),
    ("明天", date(2023, 3, 8), ""),
    ("昨天 生病", date(2023, 3, 6), "生病"),
    ("前天 生病", date(2023, 3, 5), "生病"),
    ("上周四 外出", date(2023, 3, 2), "外出"),
    ("上个星期二 外出", date(2023, 2, 28), "外出"),
])
def test_the_day_and_reason_are_read(text: str, day: date | None, reason: str) -> None:
    parsed = parse_leave(text, TUESDAY)
    assert (parsed.day, parsed.reason, parsed.error) == (day, reason, None)


def test_a_month_day_means_the_nearest_such_day() -> None:
    assert parse_leave("1月5日 外出", date(2023, 12, 20)).day == date(2024, 1, 5)
    assert parse_leave("2月29日 外出", TUESDAY).day == date(2024, 2, 29)  # the only one near


def test_an_impossible_date_is_an_error_that_names_the_words() -> None:
    assert parse_leave("2月30日 外出", TUESDAY) == LeaveRequest(None, "外出", "2月30日", "bad_date")
    assert parse_leave("13-01 外出", TUESDAY).error == "bad_date"


async def leaves(db: Any) -> list[tuple[str, Any, str]]:
    """(name, local start of the excused session, reason) for every leave stored."""
    async with db.sessions() as s:
        rows = await s.execute(select(Person.name, SessionOccurrence.starts_at, Leave.reason)
                               .join(Leave, Leave.person_id == Person.id)
                               .join(SessionOccurrence, SessionOccurrence.id == Leave.occurrence_id)
                               .order_by(Leave.id))
        return [(name, starts, reason) for name, starts, reason in rows]


async def test_by_default_the_session_open_now_is_excused(chat: SimChat, seeded) -> None:
    reply = await chat.say("张明", "@研修助手 请假 外出参加培训")
    assert "请假已记录" in reply and "3月7日（周二）10:00" in reply
    assert "原因：外出参加培训" in reply and "不算缺勤" in reply
    assert await leaves(seeded) == [("张明", local(2023, 3, 7, 10, 0), "外出参加培训")]


async def test_after_checking_in_the_next_session_is_excused(chat: SimChat, seeded) -> None:
    await chat.say("张明", "签到")
    reply = await chat.say("张明", "请假 下次 外出参加培训")
    assert "3月9日（周四）10:00" in reply
    assert await leaves(seeded) == [("张明", local(2023, 3, 9, 10, 0), "外出参加培训")]


async def test_a_day_already_checked_in_needs_no_leave(chat: SimChat, seeded) -> None:
    await chat.say("张明", "签到")
    reply = await chat.say("张明", "请假 今天 临时有事")
    assert "已经签到了3月7日的「校本研修集中学习」，不用请假" in reply
    assert await leaves(seeded) == []


async def test_a_day_without_a_session_says_which_days_have_them(chat: SimChat, seeded) -> None:
    reply = await chat.say("张明", "请假 3月8日 外出")
    assert "3月8日（周三）没有研修活动" in reply
    assert "每周二、周四" in reply and "3月7日（周二）10:00" in reply and "3月9日（周四）" in reply
    holiday = await chat.say("张明", "请假 5月2日 回老家")  # a Tuesday in the 劳动节 holiday
    assert "5月2日（周二）没有研修活动" in holiday
    assert await leaves(seeded) == []


async def test_asking_again_updates_the_reason(chat: SimChat, seeded) -> None:
    await chat.say("张明", "请假 3月9日 外出")
    reply = await chat.say("李秀英", "请假 周四 孩子生病")
    assert "请假已记录" in reply
    again = await chat.say("张明", "請假 3月9號 到县里参加培训")  # 繁体, another spelling of the day
    assert "已经请过假了" in again and "到县里参加培训" in again
    assert await leaves(seeded) == [("张明", local(2023, 3, 9, 10, 0), "到县里参加培训"),
                                    ("李秀英", local(2023, 3, 9, 10, 0), "孩子生病")]


async def test_a_session_that_has_ended_cannot_be_excused(chat: SimChat, seeded, clock: FakeClock) -> None:
    clock.set(2023, 3, 7, 10, 41)  # the session ended at 10:40
    reply = await chat.say("张明", "请假 今天 临时有事")
    assert "3月7日的「校本研修集中学习」已经结束" in reply and "联系本校研修负责人" in reply
    default = await chat.say("张明", "请假 临时有事")  # the next one not yet over: Thursday
    assert "3月9日（周四）" in default
    assert await leaves(seeded) == [("张明", local(2023, 3, 9, 10, 0), "临时有事")]


async def test_a_session_in_progress_can_be_excused_when_not_checked_in(
        chat: SimChat, seeded, clock: FakeClock) -> None:
    clock.set(2023, 3, 7, 10, 25)  # check-in closed at 10:20, the session runs until 10:40
    reply = await chat.say("张明", "请假 突发急事")
    assert "3月7日（周二）10:00" in reply
    assert len(await leaves(seeded)) == 1


async def test_bad_input_changes_nothing(chat: SimChat, seeded) -> None:
    bad_date = await chat.say("张明", "请假 2月30日 外出")
    assert "没有「2月30日」这一天" in bad_date and "请假 3月9日" in bad_date
    usage = await chat.say("张明", "请假")
    assert "请假 下次 外出参加培训" in usage and "接下来：3月7日（周二）10:00" in usage
    no_reason = await chat.say("张明", "请假 明天")
    assert no_reason.startswith("3月8日（周三）的请假还没有记录：请写上原因")
    assert await leaves(seeded) == []


async def test_after_the_last_session_there_is_nothing_to_excuse(chat: SimChat, seeded, clock: FakeClock) -> None:
    clock.set(2023, 7, 14, 12, 0)
    reply = await chat.say("张明", "请假 外出")
    assert "已经没有还没开始的研修活动" in reply
    assert await leaves(seeded) == []


async def test_an_excused_session_counts_neither_way(chat: SimChat, seeded, clock: FakeClock) -> None:
    await chat.say("张明", "请假 临时有事")  # Tuesday 7th
    await chat.say("张明", "请假 3月9日 外出")
    before = await chat.say("张明", "进度")
    assert "已请假：3月7日（周二）、3月9日（周四）" in before
    assert "下次研修：3月14日（周二）10:00" in before
    clock.set(2023, 3, 14, 9, 55)
    await chat.say("张明", "签到")
    clock.set(2023, 3, 15, 9, 0)  # held: 2nd, 7th, 9th, 14th
    after = await chat.say("张明", "进度")
    assert "签到：1/4 次，请假 2 次" in after
    assert "学时：1/36" in after  # only the attended session earns hours


async def test_a_lead_may_ask_leave_and_an_unknown_sender_may_not(chat: SimChat, app_client, seeded) -> None:
    assert "请假已记录" in await chat.say("王丽华", "请假 下次 区里开会")
    resp = await app_client.post("/sim/api/send", json={
        "person_id": 999, "conversation_id": "sim-group-LX001", "text": "请假 外出", "msg_id": "u1"})
    assert "花名册里还没有您" in (await resp.json())["reply"]
    assert [name for name, _, _ in await leaves(seeded)] == ["王丽华"]


async def test_a_redelivered_leave_is_recorded_once(chat: SimChat, seeded) -> None:
    a = await chat.send("张明", "请假 3月9日 外出", msg_id="leave-1")
    b = await chat.send("张明", "请假 3月9日 外出", msg_id="leave-1")
    assert b["duplicate"] is True and a["reply"] == b["reply"] and "请假已记录" in b["reply"]
    assert len(await leaves(seeded)) == 1


def test_a_reason_cannot_break_a_markdown_reply() -> None:
    from kernel.messages import Reply
    from templates.render import render_reply

    occurrence = SimpleNamespace(session="校本研修集中学习", starts_at=local(2023, 3, 9, 10, 0))
    reply = Reply("leave_ok", {"tz": TZ, "name": "张_明", "reason": "**孩子**生病 [链接](x)",
                               "sessions": [occurrence], "repeated": False})
    plain = render_reply(reply, markdown=False).text
    marked = render_reply(reply, markdown=True).text
    assert "原因：**孩子**生病 [链接](x)" in plain
    assert "原因：\\*\\*孩子\\*\\*生病 \\[链接\\](x)" in marked and "张\\_明" in marked


@pytest.mark.parametrize("text", ["请假 昨天 生病", "请假 前天 生病", "请假 上周四 外出", "请假 3月2日 外出",
                                  "请假 本周一 外出", "请假 昨天"])
async def test_a_teacher_asking_leave_for_a_past_day_is_told_so_and_nothing_is_recorded(
        chat: SimChat, seeded, clock: FakeClock, text: str) -> None:
    clock.set(2023, 3, 7, 8, 0)  # Tuesday morning: the next session is today at 10:00
    reply = await chat.say("张明", text)
    assert "已经过去了，不能再请假，也没有记录" in reply, reply
    day = parse_leave(text.removeprefix("请假 "), date(2023, 3, 7)).day
    assert day is not None and reply.startswith(f"{day.month}月{day.day}日（周")
    assert await leaves(seeded) == []  # never moved onto today's or a coming session


async def test_every_leave_reply_says_which_day_it_is_about(chat: SimChat, seeded) -> None:
    assert "3月7日（周二）10:00" in await chat.say("张明", "请假 家里有事")  # the next session
    assert "3月9日（周四）10:00" in await chat.say("张明", "请假 周四 家里有事")
    assert (await chat.say("张明", "请假 周四")).startswith("3月9日（周四）的请假")
