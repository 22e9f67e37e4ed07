"""The outbox sender: each message once, later when throttled, never over a route's limit."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiolimiter import AsyncLimiter
from sqlalchemy import select, update

from bot.lease import Lease
from bot.outbox import Sender
from kernel.outbound import OK, Mention, OutboundMessage, SendOutcome
from kernel.textsplit import split_text
from platforms.sim.route import SimRoute
from storage.db import Database
from storage.models import ChatGroup, Outbox, SimMessage
from storage.queries.outbox import enqueue, enqueue_split
from tests.conftest import FakeClock, local, seed

DATA = Path(__file__).resolve().parent / "data"


@dataclass
class FakeRoute:
    """A send route that records what it was given and answers from a script (then OK)."""

    kind: str = "fake"
    per_minute: int = 100_000
    max_bytes: int = 4000
    script: list[SendOutcome] = field(default_factory=list)
    received: list[OutboundMessage] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def rate_key(self, msg: OutboundMessage) -> str:
        return msg.conversation_id

    async def send(self, msg: OutboundMessage) -> SendOutcome:
        self.received.append(msg)
        self.times.append(asyncio.get_running_loop().time())
        return self.script.pop(0) if self.script else OK


async def group_ids(db: Database, route_kind: str | None = "fake") -> list[int]:
    """The two seeded school groups, switched to `route_kind`."""
    async with db.sessions() as s, s.begin():
        await s.execute(update(ChatGroup).values(route_kind=route_kind))
        return list((await s.scalars(select(ChatGroup.id).order_by(ChatGroup.id))).all())


async def put(db: Database, clock: FakeClock, group_id: int, ref: str, text: str = "你好", **kw: Any) -> None:
    async with db.sessions() as s, s.begin():
        assert await enqueue(s, kind="test", ref=ref, group_id=group_id, text=text, now=clock.now, **kw)


async def rows(db: Database) -> list[Outbox]:
    async with db.sessions() as s:
        return list((await s.scalars(select(Outbox).order_by(Outbox.id))).all())


# ---------------------------------------------------------------- splitting


def test_long_chinese_text_splits_at_line_ends_within_the_byte_limit() -> None:
    lines = [f"第{i}行：张明、李秀英还未提交三月研修心得。" for i in range(40)]
    text = "\n".join(lines)
    parts = split_text(text, 300)
    assert len(parts) > 1
    assert all(len(p.encode()) <= 300 for p in parts)
    assert "\n".join(parts) == text  # cut only between lines: nothing lost, nothing reordered
    assert all(p.split("\n")[0] in lines for p in parts)


def test_a_line_longer_than_the_limit_is_cut_between_characters() -> None:
    line = "研修心得" * 100  # 1200 bytes, no line break
    parts = split_text(line, 100)
    assert "".join(parts) == line
    for part in parts:
        assert len(part.encode()) <= 100
        part.encode().decode("utf-8")  # whole characters only
    assert len(parts[0].encode()) == 99  # 33 three-byte characters: the 34th would not fit


async def test_a_long_message_is_sent_as_parts_in_order_once(seeded: Database, clock: FakeClock) -> None:
    gid = (await group_ids(seeded))[0]
    text = "\n".join(f"{i:02d} 王丽华：本周签到 3/3，心得已通过" for i in range(60))
    mention = Mention("张明", userid="dt-zhangming")
    async with seeded.sessions() as s, s.begin():
        made = await enqueue_split(s, kind="school_digest", ref="T1:2023-03-10", group_id=gid, text=text,
                                   now=clock.now, max_bytes=500, mentions=[mention])
    async with seeded.sessions() as s, s.begin():  # the same occurrence again: nothing new
        again = await enqueue_split(s, kind="school_digest", ref="T1:2023-03-10", group_id=gid,
                                    text=text + "\n多一行", now=clock.now, max_bytes=100)
    assert made > 2 and again == 0
    refs = [r.ref for r in await rows(seeded)]
    assert refs == ["T1:2023-03-10"] + [f"T1:2023-03-10#{n}" for n in range(2, made + 1)]
    route = FakeRoute()
    await Sender(seeded, {"fake": route}, clock).drain()
    assert "\n".join(m.text for m in route.received) == text
    assert all(len(m.text.encode()) <= 500 for m in route.received)
    assert [m.mentions for m in route.received] == [()] * (made - 1) + [(mention,)]
    assert {r.state for r in await rows(seeded)} == {"sent"}


# ---------------------------------------------------------------- outcomes


async def test_a_throttled_route_gets_its_messages_later_each_once(seeded: Database, clock: FakeClock) -> None:
    gid = (await group_ids(seeded))[0]
    for n in range(3):
        await put(seeded, clock, gid, f"m{n}", text=f"第{n}条")
    route = FakeRoute(script=[SendOutcome("retry", 600, "throttled: 130101")])  # DingTalk's penalty
    sender = Sender(seeded, {"fake": route}, clock)
    await sender.drain()
    assert [m.text for m in route.received] == ["第0条"]
    first, *others = await rows(seeded)
    assert first.state == "pending" and first.attempts == 1 and first.last_error == "throttled: 130101"
    assert first.next_attempt_at == clock.now + timedelta(seconds=600)
    assert all(r.state == "pending" and r.attempts == 0 for r in others)  # waited with it, not tried

    clock.advance(minutes=9, seconds=59)
    await sender.drain()
    assert len(route.received) == 1  # still inside the penalty window

    clock.advance(seconds=1)
    await sender.drain()
    await sender.drain()
    assert [m.text for m in route.received] == ["第0条", "第0条", "第1条", "第2条"]
    assert [(r.state, r.attempts) for r in await rows(seeded)] == [("sent", 2), ("sent", 1), ("sent", 1)]


async def test_server_errors_back_off_doubling_from_seconds(seeded: Database, clock: FakeClock) -> None:
    gid = (await group_ids(seeded))[0]
    await put(seeded, clock, gid, "m")
    route = FakeRoute(script=[SendOutcome("retry", None, "http 502"), SendOutcome("retry", None, "http 503")])
    sender = Sender(seeded, {"fake": route}, clock)
    await sender.drain()
    (row,) = await rows(seeded)
    assert row.next_attempt_at == clock.now + timedelta(seconds=5) and row.last_error == "http 502"
    clock.advance(seconds=5)
    await sender.drain()
    (row,) = await rows(seeded)
    assert row.next_attempt_at == clock.now + timedelta(seconds=10) and row.attempts == 2
    clock.advance(seconds=10)
    await sender.drain()
    (row,) = await rows(seeded)
    assert row.state == "sent" and row.attempts == 3 and row.last_error is None
    assert len(route.received) == 3


async def test_a_route_that_raises_is_retried_without_leaking_the_error(seeded: Database, clock: FakeClock) -> None:
    gid = (await group_ids(seeded))[0]
    await put(seeded, clock, gid, "m")

    class Broken(FakeRoute):
        async def send(self, msg: OutboundMessage) -> SendOutcome:
            raise ConnectionError("https://oapi.example/robot/send?access_token=SECRET")

    await Sender(seeded, {"fake": Broken()}, clock).drain()
    (row,) = await rows(seeded)
    assert row.state == "pending" and row.last_error == "error: ConnectionError"


async def test_a_route_that_gives_up_marks_the_row_failed_with_its_reason(seeded: Database, clock: FakeClock) -> None:
    gid = (await group_ids(seeded))[0]
    await put(seeded, clock, gid, "bad-key")
    await put(seeded, clock, gid, "flaky")
    route = FakeRoute(script=[SendOutcome("give_up", None, "invalid robot key (310000)")] +
                      [SendOutcome("retry", None, "http 500")] * 10)
    sender = Sender(seeded, {"fake": route}, clock, max_attempts=3)
    for _ in range(4):
        await sender.drain()
        clock.advance(minutes=5)
    bad, flaky = await rows(seeded)
    assert (bad.state, bad.last_error, bad.attempts) == ("failed", "invalid robot key (310000)", 1)
    assert (flaky.state, flaky.attempts) == ("failed", 3)
    assert flaky.last_error == "gave up after 3 attempts: http 500"


async def test_groups_without_a_usable_route_are_closed_not_retried(seeded: Database, clock: FakeClock) -> None:
    a, b = await group_ids(seeded)
    async with seeded.sessions() as s, s.begin():
        await s.execute(update(ChatGroup).where(ChatGroup.id == a).values(route_kind=None))
        await s.execute(update(ChatGroup).where(ChatGroup.id == b).values(route_kind="wecom_webhook"))
    await put(seeded, clock, a, "reply-only")
    await put(seeded, clock, b, "unregistered")
    await Sender(seeded, {"fake": FakeRoute()}, clock).drain()
    reply_only, unregistered = await rows(seeded)
    assert reply_only.state == "skipped" and reply_only.last_error.startswith("no_route")
    assert unregistered.state == "failed" and unregistered.last_error.startswith("no_route")


async def test_the_sim_route_shows_the_message_with_mentions(seeded: Database, clock: FakeClock) -> None:
    gid = (await group_ids(seeded, "sim"))[0]
    await put(seeded, clock, gid, "nudge", text="请尽快提交心得",
              mentions=[Mention("张明"), Mention("李秀英", userid="dt-lixiuying")])
    await Sender(seeded, {"sim": SimRoute(seeded, clock)}, clock).drain()
    async with seeded.sessions() as s:
        msg = await s.scalar(select(SimMessage))
    assert msg is not None and msg.from_bot and msg.conversation_id == "sim-group-LX001"
    assert msg.text == "请尽快提交心得\n@张明 @李秀英"


# ---------------------------------------------------------------- crashes and several processes


async def test_rows_left_sending_by_a_dead_sender_go_out_once_on_takeover(seeded: Database, clock: FakeClock) -> None:
    gid = (await group_ids(seeded))[0]
    await put(seeded, clock, gid, "m")
    async with seeded.sessions() as s, s.begin():
        await s.execute(update(Outbox).values(state="sending"))  # claimed, then the process died
    dead = Lease(seeded, "outbox", clock, holder="dead-host:1:x")
    assert await dead.hold()
    route = FakeRoute()
    sender = Sender(seeded, {"fake": route}, clock, lease=Lease(seeded, "outbox", clock))
    await sender.drain()
    assert route.received == []  # the dead holder's lease has not run out yet
    clock.advance(seconds=31)
    await sender.drain()
    await sender.drain()
    assert len(route.received) == 1
    assert [r.state for r in await rows(seeded)] == ["sent"]


async def test_two_senders_on_one_database_send_each_row_once(seeded: Database, clock: FakeClock, config) -> None:
    a, b = await group_ids(seeded)
    for n in range(20):
        await put(seeded, clock, a if n % 2 else b, f"m{n}")
    other_db = Database(config.database.url)  # a second process on the same SQLite file
    try:
        route_1, route_2 = FakeRoute(), FakeRoute()
        with_lease = [Sender(seeded, {"fake": route_1}, clock, lease=Lease(seeded, "outbox", clock)),
                      Sender(other_db, {"fake": route_2}, clock, lease=Lease(other_db, "outbox", clock))]
        await asyncio.gather(*(s.drain() for s in with_lease))
        assert sorted(m.outbox_id for m in route_1.received + route_2.received) == list(range(1, 21))
        assert not (route_1.received and route_2.received)  # one lease holder did all the sending

        for n in range(20, 40):  # no lease at all: the conditional claim alone keeps it once
            await put(seeded, clock, a if n % 2 else b, f"m{n}")
        route_3, route_4 = FakeRoute(), FakeRoute()
        await asyncio.gather(Sender(seeded, {"fake": route_3}, clock, batch=3).drain(),
                             Sender(other_db, {"fake": route_4}, clock, batch=3).drain())
        ids = sorted(m.outbox_id for m in route_3.received + route_4.received)
        assert ids == list(range(21, 41))
    finally:
        await other_db.close()
    assert {r.state for r in await rows(seeded)} == {"sent"}


# ---------------------------------------------------------------- the rate limit


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose time jumps to the next timer instead of sleeping (like looptime)."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0
        real_select = self._selector.select  # type: ignore[attr-defined]

        def select(timeout: float | None = None) -> Any:
            events = real_select(0)
            if events or timeout == 0 or timeout is None:
                return events or real_select(timeout)
            events = real_select(min(timeout, 0.002))  # give worker threads (SQLite) a moment
            if not events:
                self.offset += timeout
            return events

        self._selector.select = select  # type: ignore[attr-defined]

    def time(self) -> float:
        return super().time() + self.offset


def test_the_limiter_never_lets_more_than_per_minute_through(tmp_path: Path) -> None:
    clock = FakeClock(local(2023, 3, 7, 9, 0))

    async def scenario() -> tuple[FakeRoute, list[Outbox]]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'rate.db'}")
        await db.upgrade()
        await seed(db, (DATA / "spec_plan.toml").read_text(encoding="utf-8"), clock.now)
        try:
            a, b = await group_ids(db)
            for n in range(15):
                await put(db, clock, a, f"a{n}")
            for n in range(3):
                await put(db, clock, b, f"b{n}")
            route = FakeRoute(per_minute=5)
            await Sender(db, {"fake": route}, clock).drain()
            return route, await rows(db)
        finally:
            await db.close()

    loop = VirtualTimeLoop()
    try:
        route, stored = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert sorted(m.outbox_id for m in route.received) == [r.id for r in stored]  # all, once each
    for conv in ("sim-group-LX001", "sim-group-LX002"):
        times = [t for m, t in zip(route.received, route.times, strict=True) if m.conversation_id == conv]
        busiest = max(sum(1 for u in times if t <= u < t + 60) for t in times)
        assert busiest <= 5, f"{busiest} sends within one minute to {conv}"
    first_group = [t for m, t in zip(route.received, route.times, strict=True)
                   if m.conversation_id == "sim-group-LX001"]
    assert first_group[-1] - first_group[0] >= 14 * 12  # 15 sends spaced a fifth of a minute apart


async def test_a_long_row_enqueued_whole_is_cut_before_it_is_sent(seeded: Database, clock: FakeClock) -> None:
    gid = (await group_ids(seeded))[0]
    text = "\n".join(f"{i:02d} 兰西县第一小学：签到 12/14，心得 3/4 已通过，照片 2/3 张" for i in range(30))
    await put(seeded, clock, gid, "manual:20230310T080000", text=text, mentions=[Mention("刘洋")])
    route = FakeRoute(max_bytes=400)  # e.g. `yanxiu digest --send` used plain enqueue
    sender = Sender(seeded, {"fake": route}, clock)
    await sender.drain()
    await sender.drain()
    assert "\n".join(m.text for m in route.received) == text
    assert all(len(m.text.encode()) + len("@刘洋 ".encode()) <= 400 for m in route.received)
    assert [bool(m.mentions) for m in route.received] == [False] * (len(route.received) - 1) + [True]
    stored = await rows(seeded)
    assert len(stored) == len(route.received) > 1 and {r.state for r in stored} == {"sent"}
    assert [r.ref for r in stored][1:3] == ["manual:20230310T080000#1.2", "manual:20230310T080000#1.3"]


class Gate:
    """A limiter that lets nothing through until opened: a robot busy for the whole test."""

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def acquire(self, amount: float = 1) -> None:
        await self.open.wait()


async def test_a_busy_robot_does_not_hold_up_other_groups(seeded: Database, clock: FakeClock) -> None:
    a, b = await group_ids(seeded)
    async with seeded.sessions() as s, s.begin():
        await s.execute(update(ChatGroup).where(ChatGroup.id == a).values(route_kind="slow"))
    for n in range(30):
        await put(seeded, clock, a, f"a{n}")
    await put(seeded, clock, b, "b")  # queued after all of a's
    slow, fast = FakeRoute(kind="slow", per_minute=5), FakeRoute()
    sender = Sender(seeded, {"slow": slow, "fake": fast}, clock, batch=10,
                    limiter_factory=lambda n: Gate() if n == 5 else AsyncLimiter(1000, 1))
    assert await sender.pump() == 5  # a minute of a's work is queued; the rest waits in the table
    assert await sender.pump() == 1  # a's group is left out now, so b's row is reached
    for _ in range(2000):  # until b's send is recorded (received first, committed just after)
        if fast.received and any(r.group_id == b and r.state == "sent" for r in await rows(seeded)):
            break
        await asyncio.sleep(0.01)
    assert [m.text for m in fast.received] == ["你好"] and slow.received == []
    await sender.stop()  # a's claimed rows go back to the table untried
    assert Counter((r.group_id, r.state, r.attempts) for r in await rows(seeded)) == {
        (a, "pending", 0): 30, (b, "sent", 1): 1}
