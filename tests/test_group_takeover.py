"""A bound group stays its school's: no lead takes it over, and a school's names stay in its
own chats. The district admin re-binds a group only with 确认 (SPEC §3)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import ChatGroup, Outbox, School
from tests.conftest import FakeClock, SimChat
from tests.known_records import add_known_records


@pytest.fixture
async def known(seeded: Database, clock: FakeClock) -> dict[str, int]:
    people = await add_known_records(seeded)
    clock.set(2023, 3, 17, 16, 0)
    return people


async def bound_school(db: Database, conversation: str) -> str | None:
    """The code of the school a simulator group is bound to (None: the district's group)."""
    async with db.sessions() as s:
        group = await s.scalar(select(ChatGroup).where(ChatGroup.conversation_id == conversation))
        assert group is not None
        if group.school_id is None:
            return None
        return await s.scalar(select(School.code).where(School.id == group.school_id))


async def outbox_texts(db: Database) -> list[str]:
    async with db.sessions() as s:
        return list((await s.scalars(select(Outbox.text))).all())


async def test_a_lead_of_another_school_cannot_take_over_a_bound_group(chat: SimChat, seeded, known) -> None:
    for text in ("绑定 LX002", "绑定 兰西县实验中学", "绑定"):
        reply = await chat.say("赵建国", text, school="LX001")  # LX002's lead, in LX001's group
        assert reply == ("本群已经绑定到「兰西县第一小学」（LX001），不能改绑。\n"
                         "如确需改绑，请区管理员在本群发送「绑定 学校代码」并回复「确认」。")
    assert await bound_school(seeded, "sim-group-LX001") == "LX001"
    # nothing of LX002's (a digest with its teachers' names) can now go out through LX001's group
    assert await chat.say("赵建国", "确认", school="LX001") == "现在没有需要您确认的操作。"
    assert await bound_school(seeded, "sim-group-LX001") == "LX001"


async def test_a_lead_rebinding_their_own_group_changes_nothing(chat: SimChat, seeded, known) -> None:
    reply = await chat.say("王丽华", "绑定 LX001", school="LX001")
    assert reply == "本群已经绑定到「兰西县第一小学」（LX001），不用再绑定。"
    assert await bound_school(seeded, "sim-group-LX001") == "LX001"


async def test_a_lead_cannot_turn_the_district_group_into_their_schools(chat: SimChat, seeded, known) -> None:
    assert "全区研修工作群" in await chat.say("钱志强", "绑定 全区", school="DISTRICT")
    reply = await chat.say("王丽华", "绑定 LX001", school="DISTRICT")
    assert reply.startswith("本群已经是全区研修工作群，不能改绑。")
    assert await bound_school(seeded, "sim-group-DISTRICT") is None


async def test_the_district_admin_rebinds_a_group_only_after_confirming(chat: SimChat, seeded, known) -> None:
    asked = await chat.say("钱志强", "绑定 LX002", school="LX001")
    assert asked == ("本群现在绑定在「兰西县第一小学」（LX001），要改绑到「兰西县实验中学」（LX002）吗？\n"
                     "改绑后，这所学校的通知、提醒和进度汇总（含老师姓名）都会发到本群。\n"
                     "回复「确认」改绑，回复「取消」不改（10 分钟内有效）。")
    assert await bound_school(seeded, "sim-group-LX001") == "LX001"  # not before 确认
    done = await chat.say("钱志强", "确认", school="LX001")
    assert done.startswith("本群已绑定到「兰西县实验中学」（LX002）（不再属于「兰西县第一小学」）。")
    assert await bound_school(seeded, "sim-group-LX001") == "LX002"


async def test_a_cancelled_or_stale_rebind_changes_nothing(chat: SimChat, seeded, known, clock: FakeClock) -> None:
    await chat.say("钱志强", "绑定 LX002", school="LX001")
    assert await chat.say("钱志强", "取消", school="LX001") == "已取消改绑，本群的绑定不变。"
    assert await chat.say("钱志强", "确认", school="LX001") == "现在没有需要您确认的操作。"
    assert await bound_school(seeded, "sim-group-LX001") == "LX001"

    await chat.say("钱志强", "绑定 LX002", school="LX001")
    clock.advance(minutes=10, seconds=1)
    late = await chat.say("钱志强", "确认", school="LX001")
    assert late == "这次改绑超过 10 分钟没有确认，已经作废，什么都没有发送或改变。如仍需要，请重新发送。"
    assert await bound_school(seeded, "sim-group-LX001") == "LX001"


async def test_a_leads_progress_in_another_schools_group_shows_no_names(chat: SimChat, seeded, known) -> None:
    reply = await chat.say("赵建国", "本校进度", school="LX001")
    assert reply == ("本群是「兰西县第一小学」的群，为保护老师的信息，兰西县实验中学的进度不在这里显示。\n"
                     "请私聊我发送「本校进度」，或在本校的群里发送。")
    for name in ("孙晓梅", "周海涛"):
        assert name not in reply
    nudge = await chat.say("赵建国", "催交", school="LX001")
    assert "催交名单不在这里显示" in nudge and "孙晓梅" not in nudge
    assert await outbox_texts(seeded) == []  # nothing queued either
    # in a 1:1 chat and in its own group the lead gets the digest as before
    assert "孙晓梅" in await chat.say("赵建国", "本校进度", school=None)
    assert "孙晓梅" in await chat.say("赵建国", "本校进度", school="LX002")


async def test_a_school_digest_is_not_shown_in_an_unbound_group(chat: SimChat, seeded, known) -> None:
    reply = await chat.say("王丽华", "本校进度", school="PARENTS")
    assert reply.startswith("本群还没有绑定到学校，为保护老师的信息，兰西县第一小学的进度不在这里显示。")
    assert "张明" not in reply


async def test_the_admin_sees_a_schools_digest_only_in_its_own_group_or_privately(
        chat: SimChat, seeded, known) -> None:
    refused = await chat.say("钱志强", "学校进度 LX002", school="LX001")
    assert refused.startswith("本群是「兰西县第一小学」的群") and "孙晓梅" not in refused
    assert "孙晓梅" in await chat.say("钱志强", "学校进度 LX002", school=None)
