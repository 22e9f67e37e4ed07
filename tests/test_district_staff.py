"""The district admin is on no school's roster: their own 签到 or 心得 counts nowhere, so the
bot says so instead of answering 签到成功 (and stores nothing)."""

from __future__ import annotations

import pytest

from storage.db import Database
from storage.models import Checkin, Inbound, Leave, PendingDownload, Photo, Submission
from tests.conftest import SimChat, count_rows
from tests.images import png_b64


@pytest.mark.parametrize("text", ["签到", "反思 今天的研修很有收获", "续写 接着写", "请假 下次 外出开会"])
async def test_the_district_admins_checkin_is_answered_as_counting_nowhere(
        chat: SimChat, seeded: Database, text: str) -> None:
    reply = await chat.say("钱志强", text, school="LX001")
    assert reply.startswith("您是区管理员，不在任何学校的研修名单上：这次"), reply
    assert "不计入任何学校的进度和学时，没有记录" in reply and "成功" not in reply
    for model in (Checkin, Submission, Leave):
        assert await count_rows(seeded, model) == 0
    assert await count_rows(seeded, Inbound) == 1  # the message itself is handled once


async def test_the_district_admins_photo_is_not_stored_as_evidence(chat: SimChat, seeded: Database) -> None:
    reply = await chat.say("钱志强", "", school=None, image=png_b64(10, 20, 30))
    assert reply.startswith("您是区管理员，不在任何学校的研修名单上：这次照片")
    assert await count_rows(seeded, Photo) == 0 and await count_rows(seeded, PendingDownload) == 0


async def test_the_district_admins_progress_says_there_is_none_of_their_own(chat: SimChat) -> None:
    reply = await chat.say("钱志强", "进度", school=None)
    assert reply.startswith("您是区管理员，不在任何学校的研修名单上，没有本人的签到和任务。")
    assert "全区进度" in reply


async def test_a_school_lead_still_checks_in_as_a_member(chat: SimChat, seeded: Database) -> None:
    assert "签到成功" in await chat.say("王丽华", "签到")
    assert await count_rows(seeded, Checkin) == 1
