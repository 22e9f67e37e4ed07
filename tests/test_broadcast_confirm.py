"""广播 reaches every school: it is sent only after the admin saw the audience and confirmed,
and a school that is not there stops it instead of widening it (SPEC §3)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.models import Outbox, PendingAction
from tests.conftest import FakeClock, SimChat


async def broadcasts(db: Database) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Outbox)
                                  .where(Outbox.kind == "broadcast")) or 0)


async def waiting(db: Database) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(PendingAction)) or 0)


@pytest.mark.parametrize("text", ["广播 第九中学 测试", "广播 LX009 测试", "通知 LX001、第九中学 明天开会",
                                  "广播 兰西县第九小学，LX002 周五交材料"])
async def test_a_broadcast_to_a_school_that_does_not_exist_goes_nowhere(
        chat: SimChat, seeded: Database, text: str) -> None:
    reply = await chat.say("钱志强", text, school=None)
    missing = [w for w in ("第九中学", "LX009", "兰西县第九小学") if w in text]
    assert reply.startswith(f"没有找到学校：{'、'.join(missing)}。通知没有发送。\n"), reply
    assert await chat.say("钱志强", "确认", school=None) == "现在没有需要您确认的操作。"
    assert await broadcasts(seeded) == 0 and await waiting(seeded) == 0


async def test_a_cancelled_broadcast_is_never_sent(chat: SimChat, seeded: Database) -> None:
    await chat.say("钱志强", "广播 明天停课", school=None)
    assert await waiting(seeded) == 1
    assert await chat.say("钱志强", "取消", school=None) == "已取消广播，通知不会发送。"
    assert await chat.say("钱志强", "确认", school=None) == "现在没有需要您确认的操作。"
    assert await chat.say("钱志强", "取消", school=None) == "现在没有等待确认的操作，不用取消。"
    assert await broadcasts(seeded) == 0


async def test_a_confirmation_after_ten_minutes_sends_nothing(chat: SimChat, seeded: Database,
                                                              clock: FakeClock) -> None:
    await chat.say("钱志强", "广播 明天停课", school=None)
    clock.advance(minutes=10)
    reply = await chat.say("钱志强", "确认", school=None)
    assert reply == "这条广播超过 10 分钟没有确认，已经作废，什么都没有发送或改变。如仍需要，请重新发送。"
    assert await broadcasts(seeded) == 0 and await waiting(seeded) == 0


async def test_a_confirmation_in_time_sends_once_to_the_audience_shown(chat: SimChat, seeded: Database,
                                                                       clock: FakeClock) -> None:
    asked = await chat.say("钱志强", "广播 LX002 明天停课", school=None)
    assert asked.startswith("将发到 1 个学校群（兰西县实验中学）：")
    clock.advance(minutes=9, seconds=59)
    assert await chat.say("钱志强", "确认", school=None) == "✅ 已确认，通知稍后发到 1 个学校群（1 所学校）。"
    assert await broadcasts(seeded) == 1
    assert await chat.say("钱志强", "确认", school=None) == "现在没有需要您确认的操作。"
    assert await broadcasts(seeded) == 1


async def test_someone_elses_confirmation_sends_nothing(chat: SimChat, seeded: Database) -> None:
    await chat.say("钱志强", "广播 明天停课", school=None)
    assert await chat.say("王丽华", "确认", school="LX001") == "现在没有需要您确认的操作。"
    assert await chat.say("张明", "确认", school="LX001") == "现在没有需要您确认的操作。"
    assert await broadcasts(seeded) == 0 and await waiting(seeded) == 1  # still the admin's to confirm


async def test_a_newer_broadcast_replaces_the_one_waiting(chat: SimChat, seeded: Database) -> None:
    await chat.say("钱志强", "广播 明天停课", school=None)
    await chat.say("钱志强", "广播 LX001 明天照常上课", school=None)
    await chat.say("钱志强", "确认", school=None)
    async with seeded.sessions() as s:
        texts = list((await s.scalars(select(Outbox.text).where(Outbox.kind == "broadcast"))).all())
    assert texts == ["【区进修学校通知】\n明天照常上课\n—— 钱志强"]
