"""A teacher, a lead and the district admin use the simulator: 签到, 进度, 帮助, 绑定."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import ChatGroup, Checkin, Inbound, SimMessage
from tests.conftest import FakeClock, SimChat
from tests.conftest import count_rows as count


async def test_a_teacher_checks_in_twice(chat: SimChat, seeded, clock: FakeClock) -> None:
    first = await chat.say("张明", "@研修助手 签到")
    assert "张明 签到成功" in first and "迟到" not in first
    assert "03月07日 10:00".lstrip("0") in first or "3月7日 10:00" in first
    clock.advance(minutes=3)
    second = await chat.say("张明", "签到 @研修助手")
    assert "已签到" in second and "09:55:00" in second  # the first time, not the second
    assert await count(seeded, Checkin) == 1


async def test_late_checkin_is_recorded_as_late(chat: SimChat, seeded, clock: FakeClock) -> None:
    clock.set(2023, 3, 7, 10, 15)
    reply = await chat.say("李秀英", "打卡")
    assert "签到成功（迟到）" in reply
    async with seeded.sessions() as s:
        assert (await s.scalar(select(Checkin.late))) is True


async def test_traditional_fullwidth_and_typo_forms_check_in(chat: SimChat, seeded) -> None:
    assert "签到成功" in await chat.say("张明", "＠研修助手　簽到！")
    assert "已签到" in await chat.say("张明", "签道")
    assert "已签到" in await chat.say("张明", "到")


async def test_outside_a_window_tells_when_the_next_session_opens(chat: SimChat, seeded, clock: FakeClock) -> None:
    clock.set(2023, 3, 7, 11, 0)  # after Tuesday's window closed
    reply = await chat.say("张明", "签到")
    assert "不在签到时间内" in reply
    assert "3月9日" in reply and "周四" in reply and "09:50" in reply
    assert await count(seeded, Checkin) == 0


async def test_progress_shows_the_checkin_and_hours(chat: SimChat, seeded, clock: FakeClock) -> None:
    await chat.say("张明", "签到")
    clock.set(2023, 3, 10, 9, 0)  # held by then: Thu 2nd, Tue 7th, Thu 9th
    reply = await chat.say("张明", "我的进度")
    assert "签到：1/3 次" in reply
    assert "三月研修心得：未提交" in reply
    assert "0/3 张" in reply
    assert "学时：1/36" in reply


async def test_a_redelivered_message_is_handled_once(chat: SimChat, seeded) -> None:
    a = await chat.send("张明", "签到", msg_id="same-id")
    b = await chat.send("张明", "签到", msg_id="same-id")
    assert a["duplicate"] is False and b["duplicate"] is True
    assert a["reply"] == b["reply"] and "签到成功" in b["reply"]
    assert await count(seeded, Checkin) == 1
    assert await count(seeded, Inbound) == 1
    async with seeded.sessions() as s:
        bot_lines = await s.scalar(select(func.count()).where(SimMessage.from_bot.is_(True)))
    assert bot_lines == 1  # the retry produced no second reply in the chat


async def test_help_fits_the_role(chat: SimChat) -> None:
    teacher = await chat.say("张明", "帮助")
    lead = await chat.say("王丽华", "help")
    admin = await chat.say("钱志强", "菜单", school=None)
    assert "签到" in teacher and "本校进度" not in teacher and "广播" not in teacher
    assert "本校进度" in lead and "广播" not in lead
    assert "广播" in admin and "本校进度" in admin


async def test_unknown_text_gets_a_short_help(chat: SimChat) -> None:
    reply = await chat.say("张明", "今天天气怎么样")
    assert reply.startswith("没看懂「今天天气怎么样」") and "签到" in reply


async def test_a_teacher_cannot_use_a_lead_command(chat: SimChat, seeded) -> None:
    reply = await chat.say("张明", "绑定 LX002")
    assert "只有学校负责人" in reply
    async with seeded.sessions() as s:
        groups = (await s.scalars(select(ChatGroup.conversation_id))).all()
    assert "sim-group-LX002" in groups and len(groups) == 2  # nothing changed


async def test_an_unknown_sender_is_told_whom_to_ask(app_client, seeded) -> None:
    resp = await app_client.post("/sim/api/send", json={
        "person_id": 999, "conversation_id": "sim-group-LX001", "text": "签到", "msg_id": "x1"})
    body = await resp.json()
    assert resp.status == 200 and "花名册里还没有您" in body["reply"]
    assert await count(seeded, Checkin) == 0


async def test_a_lead_binds_a_new_group_to_their_school(chat: SimChat, seeded) -> None:
    refused = await chat.say("王丽华", "绑定 LX002", school="NEW")
    assert "只能把群绑定到本校" in refused
    ok = await chat.say("王丽华", "绑定 兰西县第一小学", school="NEW")
    assert "本群已绑定到「兰西县第一小学」" in ok
    async with seeded.sessions() as s:
        group = await s.scalar(select(ChatGroup).where(ChatGroup.conversation_id == "sim-group-NEW"))
    assert group is not None and group.route_kind == "sim"
    in_dm = await chat.say("王丽华", "绑定 LX001", school=None)
    assert "学校群里" in in_dm


async def test_the_district_admin_binds_any_school(chat: SimChat, seeded) -> None:
    reply = await chat.say("钱志强", "绑定 LX002", school="EXTRA")
    assert "实验中学" in reply
    unknown = await chat.say("钱志强", "绑定 不存在的学校", school="EXTRA2")
    assert "没有找到学校「不存在的学校」" in unknown and "LX001" in unknown


async def test_malformed_sim_requests_are_400_and_change_nothing(app_client, seeded) -> None:
    for body in (b"not json", b"[]", b'{"person_id": "2"}', b'{"person_id": 2, "conversation_id": "c", "image": "%%%"}'):
        resp = await app_client.post("/sim/api/send", data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 400
    assert await count(seeded, Inbound) == 0


async def test_an_oversized_body_is_413(app_client, seeded) -> None:
    resp = await app_client.post("/sim/api/send", data=b"x" * (1024 * 1024 + 10),
                                 headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert await count(seeded, Inbound) == 0


async def test_healthz_checks_the_database(app_client) -> None:
    resp = await app_client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["database"] == "ok"


async def test_root_redirects_to_the_simulator(app_client) -> None:
    resp = await app_client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/sim/"
    page = await app_client.get("/sim/")
    assert page.status == 200 and "研修助手" in await page.text()
