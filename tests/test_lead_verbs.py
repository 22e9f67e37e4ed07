"""Leads and the district admin in the simulator: 本校进度, 催交, 全区进度, 广播 — and every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from storage.db import Database
from storage.models import ChatGroup, Outbox, Photo, Submission, Task
from tests.conftest import FakeClock, SimChat, local
from tests.known_records import add_known_records
from tests.test_digest import DISTRICT, SCHOOL_LX001, assert_lines

LEAD_VERBS = ("nudge", "broadcast")  # the outbox kinds these verbs create


@pytest.fixture
async def known(seeded: Database, clock: FakeClock) -> dict[str, int]:
    people = await add_known_records(seeded)
    clock.set(2023, 3, 17, 16, 0)
    return people


async def queued(db: Database) -> list[dict[str, Any]]:
    """The outbox rows the lead verbs created (the scheduler's own sends left aside)."""
    async with db.sessions() as s:
        rows = (await s.scalars(select(Outbox).where(Outbox.kind.in_(LEAD_VERBS)).order_by(Outbox.id))).all()
    return [{"kind": r.kind, "ref": r.ref, "group": r.group_id, "text": r.text,
             "mentions": [m["name"] for m in r.mentions]} for r in rows]


# --- 本校进度 / 学校进度 --------------------------------------------------------------------

async def test_a_lead_gets_their_schools_digest_as_the_reply(chat: SimChat, seeded, known) -> None:
    assert_lines(await chat.say("王丽华", "@研修助手 本校进度"), SCHOOL_LX001)
    assert_lines(await chat.say("王丽华", "学校进度", school=None), SCHOOL_LX001)  # 1:1 too
    assert await queued(seeded) == []


async def test_a_lead_cannot_read_another_schools_digest(chat: SimChat, seeded, known) -> None:
    reply = await chat.say("王丽华", "学校进度 LX002")
    assert reply == "您只能查看本校（兰西县第一小学）的进度，不能查看「兰西县实验中学」。"
    assert_lines(await chat.say("王丽华", "学校进度 lx001"), SCHOOL_LX001)  # own code, any case


async def test_the_district_admin_reads_any_schools_digest(chat: SimChat, seeded, known) -> None:
    in_group = await chat.say("钱志强", "本校进度", school="LX002")
    assert in_group.startswith("兰西县实验中学 · 研修进度\n")
    assert_lines(await chat.say("钱志强", "学校进度 LX001", school=None), SCHOOL_LX001)
    assert_lines(await chat.say("钱志强", "學校進度　兰西县第一小学", school=None), SCHOOL_LX001)
    which = await chat.say("钱志强", "本校进度", school=None)
    assert which.startswith("请告诉我是哪所学校，例如「学校进度 LX001」") and "LX002 兰西县实验中学" in which
    unknown = await chat.say("钱志强", "学校进度 不存在", school=None)
    assert unknown.startswith("没有找到学校「不存在」")


# --- 全区进度 ---------------------------------------------------------------------------------

async def test_the_district_admin_gets_the_district_digest(chat: SimChat, seeded, known) -> None:
    assert_lines(await chat.say("钱志强", "全区进度", school=None), DISTRICT)
    assert_lines(await chat.say("钱志强", "区进度"), DISTRICT)


# --- refusals --------------------------------------------------------------------------------

LEAD_ONLY = "抱歉，这个功能只有学校负责人可以使用。发送「帮助」查看您可以用的功能。"
ADMIN_ONLY = "抱歉，这个功能只有区管理员可以使用。发送「帮助」查看您可以用的功能。"


@pytest.mark.parametrize(("who", "text", "answer"), [
    ("张明", "本校进度", LEAD_ONLY),
    ("张明", "学校进度 LX001", LEAD_ONLY),
    ("张明", "催交", LEAD_ONLY),
    ("张明", "提醒", LEAD_ONLY),
    ("张明", "全区进度", ADMIN_ONLY),
    ("张明", "广播 明天停课", ADMIN_ONLY),
    ("张明", "通知 LX001 明天停课", ADMIN_ONLY),
    ("王丽华", "全区进度", ADMIN_ONLY),
    ("王丽华", "广播 明天停课", ADMIN_ONLY),
    ("王丽华", "广播 LX001 明天停课", ADMIN_ONLY),
])
async def test_a_lower_role_is_refused_and_nothing_changes(chat: SimChat, seeded, known,
                                                           who: str, text: str, answer: str) -> None:
    assert await chat.say(who, text) == answer
    assert await chat.say(who, text, school=None) == answer
    assert await queued(seeded) == []


async def test_the_handlers_refuse_on_their_own_too(seeded, known, tmp_path) -> None:
    """Even called directly (not through the registry), a teacher's 广播/催交 does nothing."""
    from handlers.broadcast import handle_broadcast
    from handlers.context import Context
    from handlers.lead import handle_district_progress, handle_nudge, handle_school_progress
    from handlers.registry import parse_command
    from kernel.messages import IncomingMessage
    from storage.directory import Directory
    from storage.queries.directory import active_term

    directory = Directory(seeded.sessions, roster_ids=frozenset({"sim"}))  # the simulator: roster ids
    await directory.load()
    teacher = await directory.person("sim", str(known["张明"]))
    async with seeded.sessions() as s:
        term = await active_term(s)
    for text, handler in (("广播 明天停课", handle_broadcast), ("催交", handle_nudge),
                          ("本校进度", handle_school_progress), ("全区进度", handle_district_progress)):
        msg = IncomingMessage("sim", f"direct-{text}", "sim-group-LX001", True, str(known["张明"]), "张明",
                              text, local(2023, 3, 17, 16))
        ctx = Context(msg=msg, command=parse_command(text), now=msg.received_at, person=teacher,
                      group=None, school=directory.school(teacher.school_id), term=term,
                      directory=directory, files_dir=tmp_path)
        reply = await seeded.write(lambda s, h=handler, c=ctx: h(c, s))
        assert reply.template == "not_allowed"
    assert await queued(seeded) == []


# --- 催交 -------------------------------------------------------------------------------------

NUDGE_TEXT = """\
【研修提醒】兰西县第一小学
以下老师还有研修任务没完成，请抓紧：
张明：三月研修心得（草稿 500/1000 字）、推门听课出课照片(三张不同角度)（0/3 张）
李秀英：推门听课出课照片(三张不同角度)（2/3 张）
刘洋：三月研修心得（未提交）
三月研修心得 3月31日 17:00 截止
推门听课出课照片(三张不同角度) 4月30日 17:00 截止"""


async def give_photos(db: Database, person_id: int, task_id: int, count: int) -> None:
    async with db.sessions() as s, s.begin():
        s.add_all(Photo(person_id=person_id, task_id=task_id, sha256=f"{person_id}-{n}".encode().hex(),
                        mime="image/jpeg", size=1, at=local(2023, 3, 12)) for n in range(count))


async def task_id(db: Database, key: str = "lesson-photos") -> int:
    async with db.sessions() as s:
        return await s.scalar(select(Task.id).where(Task.key == key))


async def test_a_nudge_mentions_only_those_who_owe_and_says_what(chat: SimChat, seeded, known) -> None:
    await give_photos(seeded, known["王丽华"], await task_id(seeded), 3)  # she owes nothing now
    reply = await chat.say("王丽华", "催交", msg_id="nudge-1")
    assert reply == "已提醒兰西县第一小学 3 位老师：张明、李秀英、刘洋。\n消息已排队，稍后发到学校群。"
    rows = await queued(seeded)
    assert len(rows) == 1
    assert rows[0]["kind"] == "nudge" and rows[0]["ref"] == "nudge:LX001:20230317T0800"
    assert rows[0]["mentions"] == ["张明", "李秀英", "刘洋"]
    assert_lines(rows[0]["text"], NUDGE_TEXT)
    async with seeded.sessions() as s:
        group = await s.scalar(select(Outbox.group_id).where(Outbox.kind == "nudge"))
        conv = await s.scalar(select(ChatGroup.conversation_id).where(ChatGroup.id == group))
    assert conv == "sim-group-LX001"

    again = await chat.send("王丽华", "催交", msg_id="nudge-1")  # the platform redelivers
    assert again["duplicate"] is True and again["reply"] == reply
    same_minute = await chat.say("王丽华", "提醒")  # typed again within the minute
    assert same_minute == "这一分钟内已经提醒过兰西县第一小学了，不再重复发送。"
    assert len(await queued(seeded)) == 1


async def test_a_nudge_covers_what_is_due_today_but_not_what_is_past(chat: SimChat, seeded, known,
                                                                    clock: FakeClock) -> None:
    await give_photos(seeded, known["王丽华"], await task_id(seeded), 3)
    clock.set(2023, 3, 31, 18, 0)  # the reflection was due at 17:00 today: still worth a nudge
    await chat.say("王丽华", "催交")
    rows = await queued(seeded)
    assert rows[-1]["mentions"] == ["张明", "李秀英", "刘洋"]
    assert "刘洋：三月研修心得（未提交）" in rows[-1]["text"].splitlines()

    clock.set(2023, 5, 8, 9, 0)  # both tasks are past due: nothing is owed now
    reply = await chat.say("王丽华", "催交")
    assert reply == "兰西县第一小学现在没有需要催交的老师：当前任务都已完成。"
    assert len(await queued(seeded)) == 1


async def test_nobody_owing_means_nothing_is_queued(chat: SimChat, seeded, known) -> None:
    photos = await task_id(seeded)
    await give_photos(seeded, known["王丽华"], photos, 3)
    await give_photos(seeded, known["张明"], photos, 3)
    await give_photos(seeded, known["李秀英"], photos, 1)  # her third
    async with seeded.sessions() as s, s.begin():
        await s.execute(update(Submission).values(state="accepted", chars=1000))
        s.add(Submission(person_id=known["刘洋"], task_id=await task_id(seeded, "reflection-march"), text="…",
                         chars=1000, state="accepted", updated_at=local(2023, 3, 16)))
    reply = await chat.say("王丽华", "催交")
    assert reply == "兰西县第一小学现在没有需要催交的老师：当前任务都已完成。"
    assert await queued(seeded) == []


async def test_the_admin_nudges_the_group_they_are_in(chat: SimChat, seeded, known) -> None:
    reply = await chat.say("钱志强", "催交", school="LX002")
    assert reply.startswith("已提醒兰西县实验中学 3 位老师：赵建国、孙晓梅、周海涛。")
    assert (await queued(seeded))[0]["ref"].startswith("nudge:LX002:")
    in_dm = await chat.say("钱志强", "催交", school=None)
    assert in_dm.startswith("请告诉我是哪所学校") and "发送「催交」" in in_dm


# --- 广播 -------------------------------------------------------------------------------------

async def group_ids(db: Database) -> dict[str, int]:
    async with db.sessions() as s:
        return {c: i for c, i in (await s.execute(select(ChatGroup.conversation_id, ChatGroup.id))).all()}


async def test_a_broadcast_goes_to_every_bound_school_group(chat: SimChat, seeded, known) -> None:
    asked = await chat.say("钱志强", "广播 本周四上午第三节集中研修，请准时签到。", school=None, msg_id="b-1")
    assert asked == ("将发到 2 个学校群（全部 2 所学校）：\n「本周四上午第三节集中研修，请准时签到。」\n"
                     "回复「确认」发送，回复「取消」放弃（10 分钟内有效）。")
    assert await queued(seeded) == []  # nothing before the admin confirms
    reply = await chat.say("钱志强", "确认", school=None, msg_id="b-1-ok")
    assert reply == "✅ 已确认，通知稍后发到 2 个学校群（2 所学校）。"
    rows = await queued(seeded)
    ids = await group_ids(seeded)
    assert [r["group"] for r in rows] == [ids["sim-group-LX001"], ids["sim-group-LX002"]]
    assert {r["ref"] for r in rows} == {"broadcast:sim:b-1"}
    assert rows[0]["text"] == "【区进修学校通知】\n本周四上午第三节集中研修，请准时签到。\n—— 钱志强"
    again = await chat.send("钱志强", "确认", school=None, msg_id="b-1-ok")
    assert again["duplicate"] is True and len(await queued(seeded)) == 2
    assert await chat.say("钱志强", "确认", school=None) == "现在没有需要您确认的操作。"
    assert len(await queued(seeded)) == 2


async def test_a_broadcast_to_named_schools_only(chat: SimChat, seeded, known) -> None:
    ids = await group_ids(seeded)
    asked = await chat.say("钱志强", "通知 LX002 明天下午教研组长会议", school=None)
    assert asked.startswith("将发到 1 个学校群（兰西县实验中学）：\n「明天下午教研组长会议」\n")
    assert await chat.say("钱志强", "确认", school=None) == "✅ 已确认，通知稍后发到 1 个学校群（1 所学校）。"
    rows = await queued(seeded)
    assert [r["group"] for r in rows] == [ids["sim-group-LX002"]]
    assert rows[0]["text"] == "【区进修学校通知】\n明天下午教研组长会议\n—— 钱志强"

    asked = await chat.say("钱志强", "广播 兰西县第一小学，实验中学：周五交材料", school=None)
    assert asked.startswith("将发到 2 个学校群（兰西县第一小学、兰西县实验中学）：\n「周五交材料」\n")
    assert await chat.say("钱志强", "确认", school=None) == "✅ 已确认，通知稍后发到 2 个学校群（2 所学校）。"
    assert (await queued(seeded))[-1]["text"].splitlines()[1] == "周五交材料"


async def test_a_first_word_that_is_not_all_schools_is_part_of_the_text(chat: SimChat, seeded, known) -> None:
    asked = await chat.say("钱志强", "广播 LX001,教研室 明天开会", school=None)
    assert asked.startswith("将发到 2 个学校群（全部 2 所学校）：\n「LX001,教研室 明天开会」\n")
    await chat.say("钱志强", "确认", school=None)
    rows = await queued(seeded)
    assert len(rows) == 2 and rows[0]["text"].splitlines()[1] == "LX001,教研室 明天开会"


async def test_an_empty_broadcast_gets_the_usage(chat: SimChat, seeded, known) -> None:
    for text in ("广播", "广播 ", "通知 LX001、LX002"):
        reply = await chat.say("钱志强", text, school=None)
        assert reply.startswith("请在「广播」后面写上通知内容") and "广播 LX001，LX002 <内容>" in reply
    assert await queued(seeded) == []
