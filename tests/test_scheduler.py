"""The term's rhythm with a controllable clock: March of the SPEC plan, sent exactly once.

The app runs for real (aiohttp test server, scheduler and sender started in cleanup_ctx,
a SQLite file); the test moves the FakeClock to each send's time and calls `fire_due`,
which is what APScheduler's timers call in production.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiolimiter import AsyncLimiter
from sqlalchemy import select

from bot.app import SCHEDULER, SENDER, create_app
from bot.config import Config
from handlers.deadlines import remind_of_deadline as build_deadline_reminder
from handlers.jobs import Draft, Job
from handlers.jobs import JobContext as SendContext
from handlers.registry import JOBS
from kernel.outbound import Mention
from kernel.plan import plan_from_text, plan_show_json
from kernel.plan.sends import DeadlineReminder
from kernel.records import PersonInfo, mention_for
from storage.db import Database
from storage.models import ChatGroup, Outbox, Person, Photo, SimMessage, Submission, Task
from storage.queries.groups import bind_group, school_by_code
from storage.queries.sched import receiving_groups
from storage.queries.terms import save_plan
from tests.conftest import FakeClock, SimChat, local, seed

LOADED = local(2023, 2, 28, 20, 0)  # the plan was loaded the evening before term starts
DISTRICT = "sim-group-district"


async def trivial_school_digest(ctx: SendContext) -> list[Draft]:
    return [Draft(g.id, f"本周进度 {ctx.send.ref}") for g in ctx.groups]


async def trivial_district_digest(ctx: SendContext) -> list[Draft]:
    return [Draft(g.id, f"全区进度 {ctx.send.ref}") for g in ctx.groups]


@pytest.fixture
def digest_builders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Digests have their own tests; here a one-line builder stands in for each."""
    monkeypatch.setitem(JOBS, "school_digest", Job("school_digest", trivial_school_digest))
    monkeypatch.setitem(JOBS, "district_digest", Job("district_digest", trivial_district_digest, district=True))


@pytest.fixture
async def term_db(db: Database, spec_plan_text: str, clock: FakeClock, digest_builders: None) -> Database:
    """Roster + plan loaded on Feb 28; two school groups and one district group (绑定 全区)."""
    clock.now = LOADED
    await seed(db, spec_plan_text, LOADED)
    async with db.sessions() as s, s.begin():
        await bind_group(s, platform="sim", conversation_id=DISTRICT, school_id=None,  # type: ignore[arg-type]
                         now=LOADED, route_kind="sim")
    return db


def march_sends(plan_text: str) -> list[dict[str, str]]:
    return [s for s in plan_show_json(plan_from_text(plan_text))["sends"] if s["at"].startswith("2023-03")]


def expected_rows(sends: list[dict[str, str]]) -> Counter[tuple[str, str, str]]:
    """(kind, ref, conversation) for each send × the groups it goes to."""
    rows: Counter[tuple[str, str, str]] = Counter()
    for s in sends:
        convs = [DISTRICT] if s["kind"] == "district_digest" else ["sim-group-LX001", "sim-group-LX002"]
        rows.update((s["kind"], s["ref"], c) for c in convs)
    return rows


async def start_app(aiohttp_client: Any, config: Config, clock: FakeClock) -> Any:
    app = create_app(config, clock=clock)
    app[SENDER].limiter_factory = lambda per_minute: AsyncLimiter(1, 0.001)  # limits: test_outbox
    return await aiohttp_client(app)


async def walk(client: Any, clock: FakeClock, sends: list[dict[str, str]]) -> None:
    """Be there at each send's time: the timer fires, the sender drains."""
    for at in sorted({s["at"] for s in sends}):
        clock.now = datetime.fromisoformat(at)
        await client.app[SCHEDULER].fire_due()
        await client.app[SENDER].drain()


async def outbox(db: Database) -> list[tuple[Outbox, str]]:
    async with db.sessions() as s:
        result = await s.execute(select(Outbox, ChatGroup.conversation_id)
                                 .join(ChatGroup, ChatGroup.id == Outbox.group_id).order_by(Outbox.id))
        return [(o, conv) for o, conv in result.all()]


def unprefixed(ref: str) -> str:
    return ref.split(":", 1)[1]


async def bot_lines(db: Database, conversation_id: str) -> list[str]:
    async with db.sessions() as s:
        return list((await s.scalars(select(SimMessage.text).where(
            SimMessage.conversation_id == conversation_id, SimMessage.from_bot.is_(True))
            .order_by(SimMessage.id))).all())


async def test_a_month_of_sends_matches_plan_show(
        config: Config, clock: FakeClock, term_db: Database, spec_plan_text: str, aiohttp_client: Any) -> None:
    sends = march_sends(spec_plan_text)
    assert Counter(s["kind"] for s in sends) == {"theme": 1, "session_reminder": 9, "school_digest": 5,
                                                  "district_digest": 4, "deadline_reminder": 3}
    clock.now = local(2023, 3, 1, 0, 0)
    client = await start_app(aiohttp_client, config, clock)
    await walk(client, clock, sends)

    rows = await outbox(term_db)
    assert Counter((o.kind, unprefixed(o.ref), conv) for o, conv in rows) == expected_rows(sends)
    by_ref = {s["ref"]: datetime.fromisoformat(s["at"]) for s in sends}
    assert all(o.created_at == by_ref[unprefixed(o.ref)] for o, _ in rows)  # made at the send's time
    assert {o.state for o, _ in rows} == {"sent"}
    assert all(o.sent_at == o.created_at for o, _ in rows)  # and sent at once

    lx001 = await bot_lines(term_db, "sim-group-LX001")
    assert len(lx001) == len(sends) - 4  # every school send once; the district digests went elsewhere
    assert len(await bot_lines(term_db, DISTRICT)) == 4
    theme = lx001[0].split("\n")
    assert theme[0] == "📢 3月研修主题：如何上好新学期第一课"
    assert theme[2] == "本月集中研修（共 9 次）："
    assert theme[3] == "· 3月2日（周四）10:00–10:40 校本研修集中学习"
    assert "· 三月研修心得（不少于 1000 字），3月31日 17:00 截止，2 学时" in theme
    reminder = lx001[1].split("\n")
    assert reminder[0] == "⏰ 研修提醒：「校本研修集中学习」3月2日 10:00 开始（40 分钟）。"
    assert reminder[1] == "签到时间 09:50–10:20，届时在群里 @研修助手 发「签到」。"
    deadline = [line for line in lx001 if line.startswith("📌")]
    assert [d.split("\n")[0] for d in deadline] == [
        "📌 截止提醒：「三月研修心得」3月31日 17:00 截止，还有 3 天。",
        "📌 截止提醒：「三月研修心得」3月31日 17:00 截止，还有 1 天。",
        "📌 截止提醒：「三月研修心得」3月31日 17:00 截止，就在今天。"]
    assert deadline[0].split("\n")[2] == "还未完成（4 人）：王丽华、张明、李秀英、刘洋"
    assert deadline[0].split("\n")[3] == "@王丽华 @张明 @李秀英 @刘洋"

    await client.app[SCHEDULER].fire_due()  # a timer firing twice creates nothing
    await client.app[SCHEDULER].enqueue_due()
    assert len(await outbox(term_db)) == len(rows)


async def test_a_restart_sends_nothing_twice_and_catches_up_within_grace(
        config: Config, clock: FakeClock, term_db: Database, spec_plan_text: str, aiohttp_client: Any) -> None:
    sends = march_sends(spec_plan_text)
    clock.now = local(2023, 3, 1, 0, 0)
    first = await start_app(aiohttp_client, config, clock)
    before = [s for s in sends if datetime.fromisoformat(s["at"]) <= local(2023, 3, 9, 12, 0)]
    await walk(first, clock, before)
    sent_before = len(await bot_lines(term_db, "sim-group-LX001"))
    await first.close()  # down from Thursday noon …

    clock.now = local(2023, 3, 14, 9, 45)  # … until Tuesday 09:45
    second = await start_app(aiohttp_client, config, clock)  # start-up catches up
    await second.app[SENDER].drain()
    rows = {(o.kind, unprefixed(o.ref), conv): o for o, conv in await outbox(term_db)}
    missed = {("school_digest", "2023-03-10", "sim-group-LX001"),
              ("school_digest", "2023-03-10", "sim-group-LX002"),
              ("district_digest", "2023-03-13", DISTRICT)}
    for key in missed:
        assert (rows[key].state, rows[key].last_error) == ("skipped", "missed while down")
    reminder = ("session_reminder", "校本研修集中学习@2023-03-14T10:00:00+08:00", "sim-group-LX001")
    assert rows[reminder].state == "sent"  # 09:30 + 15 minutes is within the 120 minutes of grace
    lx001 = await bot_lines(term_db, "sim-group-LX001")
    assert len(lx001) == sent_before + 1 and lx001[-1].startswith("⏰ 研修提醒")

    await walk(second, clock, [s for s in sends if datetime.fromisoformat(s["at"]) > clock.now])
    rows_after = await outbox(term_db)
    assert Counter((o.kind, unprefixed(o.ref), conv) for o, conv in rows_after) == expected_rows(sends)
    assert Counter(o.state for o, _ in rows_after) == {"sent": len(rows_after) - 3, "skipped": 3}
    lines = await bot_lines(term_db, "sim-group-LX001")
    assert len(lines) == len(sends) - 4 - 1  # one school digest skipped, nothing sent twice


async def test_two_schedulers_on_one_database_send_each_occurrence_once(
        config: Config, clock: FakeClock, term_db: Database, spec_plan_text: str, aiohttp_client: Any) -> None:
    sends = march_sends(spec_plan_text)
    clock.now = local(2023, 3, 1, 0, 0)
    a = await start_app(aiohttp_client, config, clock)
    b = await start_app(aiohttp_client, config, clock)  # a second `serve` on the same SQLite file
    for at in sorted({s["at"] for s in sends}):
        clock.now = datetime.fromisoformat(at)
        fired = await asyncio.gather(a.app[SCHEDULER].fire_due(), b.app[SCHEDULER].fire_due(),
                                     a.app[SCHEDULER].enqueue_due(), b.app[SCHEDULER].enqueue_due())
        assert fired[0] == 0 or fired[1] == 0  # only the lease holder fired its timer
        await asyncio.gather(a.app[SENDER].drain(), b.app[SENDER].drain())
    rows = await outbox(term_db)
    assert Counter((o.kind, unprefixed(o.ref), conv) for o, conv in rows) == expected_rows(sends)
    assert {o.state for o, _ in rows} == {"sent"}
    for conv, count in Counter(conv for _, conv in rows).items():
        assert len(await bot_lines(term_db, conv)) == count  # each occurrence reached the chat once


async def test_a_reloaded_plan_replaces_the_timers(
        config: Config, clock: FakeClock, term_db: Database, spec_plan_text: str, aiohttp_client: Any) -> None:
    clock.now = local(2023, 3, 15, 12, 0)
    client = await start_app(aiohttp_client, config, clock)
    scheduler = client.app[SCHEDULER]
    old = "session_reminder|校本研修集中学习@2023-03-16T10:00:00+08:00"
    assert old in scheduler.jobs()
    assert not any("2023-03-14" in job for job in scheduler.jobs())  # only future sends get timers
    before = len(scheduler.jobs())

    moved = spec_plan_text.replace('start = "10:00"', 'start = "10:30"')
    async with term_db.sessions() as s, s.begin():
        await save_plan(s, plan_from_text(moved), moved, clock.now)
    await client.app[SCHEDULER].services.directory.load()  # what the directory notices within 30 s
    await scheduler.fire_due()
    assert old not in scheduler.jobs()
    assert "session_reminder|校本研修集中学习@2023-03-16T10:30:00+08:00" in scheduler.jobs()
    assert len(scheduler.jobs()) == before

    clock.now = local(2023, 3, 16, 10, 0)
    await scheduler.fire_due()
    await client.app[SENDER].drain()
    rows = [o for o, conv in await outbox(term_db) if conv == "sim-group-LX001"]
    assert {o.last_error for o in rows if o.state == "skipped"} == {"missed while down"}  # before noon
    assert [unprefixed(o.ref) for o in rows if o.state == "sent"] == [
        "校本研修集中学习@2023-03-16T10:30:00+08:00"]  # the 10:00 session's reminder never existed
    assert not any("2023-03-16T10:00" in o.ref for o in rows)


async def test_a_deadline_reminder_mentions_only_who_still_owes(
        config: Config, clock: FakeClock, term_db: Database, aiohttp_client: Any) -> None:
    async with term_db.sessions() as s, s.begin():
        people = {p.name: p for p in (await s.scalars(select(Person))).all()}
        tasks = {t.key: t.id for t in (await s.scalars(select(Task))).all()}
        lx001 = await school_by_code(s, "LX001")
        assert lx001 is not None
        await bind_group(s, platform="dingtalk", conversation_id="cid-lx001", school_id=lx001.id,
                         now=LOADED, route_kind="dingtalk_robot", route_url="https://oapi.invalid/x")
        for name, state in (("张明", "accepted"), ("李秀英", "draft"), ("赵建国", "accepted"),
                            ("孙晓梅", "accepted"), ("周海涛", "accepted")):
            s.add(Submission(person_id=people[name].id, task_id=tasks["reflection-march"], text="…",
                             chars=1200 if state == "accepted" else 300, state=state, updated_at=LOADED))
        for n in range(3):  # 王丽华 has all her photos, 刘洋 one of three
            s.add(Photo(person_id=people["王丽华"].id, task_id=tasks["lesson-photos"], sha256=f"{n}" * 64,
                        mime="image/jpeg", size=10, at=LOADED))
        s.add(Photo(person_id=people["刘洋"].id, task_id=tasks["lesson-photos"], sha256="f" * 64,
                    mime="image/jpeg", size=10, at=LOADED))
    clock.now = local(2023, 3, 28, 17, 0)  # three days before the reflection is due
    client = await start_app(aiohttp_client, config, clock)
    await client.app[SENDER].drain()
    rows = {conv: o for o, conv in await outbox(term_db)
            if unprefixed(o.ref) == "reflection-march/3"}
    assert [m["name"] for m in rows["sim-group-LX001"].mentions] == ["王丽华", "李秀英", "刘洋"]
    assert [m["userid"] for m in rows["cid-lx001"].mentions] == ["dt-wanglihua", "dt-lixiuying", "dt-liuyang"]
    assert "还未完成（3 人）：王丽华、李秀英、刘洋" in rows["sim-group-LX001"].text
    assert (rows["sim-group-LX002"].state, rows["sim-group-LX002"].last_error) == ("skipped", "nothing to send")
    assert "sim-group-district" not in rows  # a district group gets no school reminders
    assert rows["cid-lx001"].state == "failed"  # no DingTalk route registered in this test app

    directory = client.app[SCHEDULER].services.directory
    term = await directory.term()
    assert term is not None
    async with term_db.sessions() as s:  # the photo task: three photos each, 王丽华 has hers
        groups = tuple(g for g in await receiving_groups(s) if g.school_id is not None and g.platform == "sim")
        send = DeadlineReminder(local(2023, 4, 29, 17, 0), "lesson-photos", 1)
        drafts = await build_deadline_reminder(SendContext(
            session=s, send=send, plan=term.plan, term=term, groups=groups, directory=directory, now=clock.now))
    assert [[m.name for m in d.mentions] for d in drafts] == [["张明", "李秀英", "刘洋"],
                                                              ["赵建国", "孙晓梅", "周海涛"]]


def test_a_mention_uses_the_groups_platform_identity() -> None:
    person = PersonInfo(1, "张明", "teacher", 1, (("dingtalk", "dt-zhangming"), ("wecom", "wx-zhangming")),
                        "13800000002")
    assert mention_for(person, "dingtalk") == Mention("张明", "dt-zhangming", "13800000002")
    assert mention_for(person, "wecom").userid == "wx-zhangming"
    assert mention_for(person, "sim").userid is None


async def test_a_send_missed_beyond_grace_is_recorded_once_and_never_sent(
        config: Config, clock: FakeClock, term_db: Database, aiohttp_client: Any) -> None:
    clock.now = local(2023, 3, 1, 8, 0) + timedelta(minutes=121)  # the theme was due at 08:00
    client = await start_app(aiohttp_client, config, clock)
    await client.app[SENDER].drain()
    rows = await outbox(term_db)
    assert [(o.kind, o.state, o.last_error) for o, _ in rows] == [("theme", "skipped", "missed while down")] * 2
    assert await bot_lines(term_db, "sim-group-LX001") == []
    await client.app[SCHEDULER].fire_due()
    await client.app[SENDER].drain()
    assert len(await outbox(term_db)) == 2 and await bot_lines(term_db, "sim-group-LX001") == []


async def test_the_district_admin_binds_a_district_group_that_gets_the_district_digest(
        chat: SimChat, seeded: Database, clock: FakeClock, digest_builders: None) -> None:
    refused = await chat.say("王丽华", "绑定 全区", school="DIST")
    assert "只有区管理员" in refused
    usage = await chat.say("钱志强", "绑定", school="DIST")
    assert "绑定 全区" in usage
    ok = await chat.say("钱志强", "@研修助手 绑定 全区", school="DIST")
    assert ok == "本群已设为全区研修工作群。全区进度汇总会发到这里。"
    async with seeded.sessions() as s:
        group = await s.scalar(select(ChatGroup).where(ChatGroup.conversation_id == "sim-group-DIST"))
    assert group is not None and group.school_id is None and group.bound_at is not None

    clock.now = local(2023, 3, 13, 8, 30)  # Monday: the district digest
    app = chat.client.app
    await app[SCHEDULER].fire_due()
    await app[SENDER].drain()
    assert (await bot_lines(seeded, "sim-group-DIST"))[-2:] == [ok, "全区进度 2023-03-13"]
    assert not any(line.startswith("全区进度") for line in await bot_lines(seeded, "sim-group-LX001"))
