"""Two `yanxiu serve` processes on one PostgreSQL, sharing nothing but the database.

Check-ins land on either process — alternately, the same msgId on both at once (a
redelivery may reach the other one), or two messages of one teacher on both at once — and
are counted once. Both processes run the scheduler and the outbox sender; the leases and
the outbox's unique keys make each scheduled send one row and one message. Sends are
observed through the simulator's send route: every message a group gets is a sim_message
row written by whichever process sent it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select

from bench.checkin_burst import build_requests, write_roster
from platforms.sim.chat import group_conversation
from storage.db import Database
from storage.models import Checkin, Inbound, Outbox, SchedulerLease, SimMessage
from storage.queries.groups import bind_group, school_by_code
from tests.conftest import PG_ADMIN_URL
from tests.serve_proc import ServeProcess, msg_id_of, post_checkin, seed, with_msg_id

pytestmark = pytest.mark.skipif(
    not PG_ADMIN_URL, reason="two serve processes need one PostgreSQL: set YANXIU_TEST_PG_URL "
                             "(bash .ci/postgres.sh starts one and prints it)")

TEACHERS = 24  # bench's roster puts teacher i in school S{i:03d}
GROUPS = ("S000", "S001", "S002", "S003")
KINDS = ("theme", "session_reminder", "deadline_reminder")
SENDS_WITHIN_S = 90.0


def noon_zone(now: datetime) -> ZoneInfo:
    """A fixed-offset zone where it is about noon now, so no send of today crosses midnight."""
    offset = 12 - now.astimezone(UTC).hour
    return ZoneInfo("UTC" if offset == 0 else f"Etc/GMT{-offset:+d}")


def plan_due_soon(now: datetime) -> str:
    """Today only: a theme and a due-day reminder a few seconds from now, a session reminder
    a few seconds later, and the session's check-in window open already."""
    tz = noon_zone(now)
    local = now.astimezone(tz)
    remind_at = (local + timedelta(seconds=8)).strftime("%H:%M:%S")
    starts = (local + timedelta(minutes=5, seconds=20)).strftime("%H:%M:%S")
    today = local.date().isoformat()
    return f"""
[term]
name = "two-instances"
start = {today}
end = {today}
timezone = "{tz.key}"
required_hours = 36
extra_school_dates = [{today}]
remind_at = "{remind_at}"

[[theme]]
month = "{today[:7]}"
title = "如何上好新学期第一课"

[[session]]
name = "校本研修集中学习"
weekdays = []
start = "{starts}"
minutes = 40
checkin_opens_before = 30
checkin_closes_after = 20
remind_before = 5

[[task]]
id = "reflection-today"
kind = "reflection"
title = "今日研修心得"
min_chars = 10
due = {today}T23:00:00
remind_before_days = [0]
"""


async def bind_sim_groups(db_url: str, now: datetime) -> None:
    db = Database(db_url)
    try:
        async with db.sessions() as s, s.begin():
            for code in GROUPS:
                school = await school_by_code(s, code)
                assert school is not None
                await bind_group(s, platform="sim", conversation_id=group_conversation(code),
                                 school_id=school.id, now=now, route_kind="sim")
    finally:
        await db.close()


async def scalar(db: Database, stmt: object) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(stmt) or 0)  # type: ignore[call-overload]


async def wait_for_sends(db: Database, expected: int) -> None:
    """Until `expected` outbox rows are sent (or the time is up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SENDS_WITHIN_S
    sent = select(func.count()).select_from(Outbox).where(Outbox.state == "sent")
    while loop.time() < deadline and await scalar(db, sent) < expected:
        await asyncio.sleep(0.5)


async def test_two_processes_count_each_checkin_once_and_fire_each_send_once(
        tmp_path: Path, db_url: str) -> None:
    now = datetime.now(UTC)
    write_roster(tmp_path / "roster.csv", TEACHERS)
    await seed(db_url, tmp_path / "roster.csv", plan_due_soon(now), now)
    await bind_sim_groups(db_url, now)
    a = ServeProcess(tmp_path, db_url, name="a", sim=True)
    b = ServeProcess(tmp_path, db_url, name="b", sim=True)
    db = Database(db_url)
    try:
        await asyncio.gather(a.start(), b.start())
        requests = build_requests(TEACHERS)
        alternate, same_id, twins = requests[:8], requests[8:16], requests[16:]
        jobs = [(server, r) for server, r in zip(itertools.cycle((a, b)), alternate)]
        jobs += [(server, r) for r in same_id for server in (a, b)]  # one msgId, both processes
        jobs += [(a, r) for r in twins] + [(b, with_msg_id(r, "msgTWIN" + msg_id_of(r))) for r in twins]
        async with aiohttp.ClientSession() as http:
            answers = await asyncio.gather(*(post_checkin(http, s.base, r) for s, r in jobs))
        await wait_for_sends(db, len(KINDS) * len(GROUPS))
        await asyncio.sleep(2)  # anything sent twice would show up by now
        async with db.sessions() as s:
            outbox = (await s.execute(select(Outbox.kind, Outbox.ref, Outbox.group_id, Outbox.state))).all()
            sent_to = (await s.execute(select(SimMessage.conversation_id, SimMessage.text)
                                       .where(SimMessage.from_bot.is_(True)))).all()
            holders = dict((await s.execute(select(SchedulerLease.name, SchedulerLease.holder))).all())
        checkins = await scalar(db, select(func.count()).select_from(Checkin))
        people = await scalar(db, select(func.count(func.distinct(Checkin.person_id))))
        inbound = await scalar(db, select(func.count()).select_from(Inbound))
    finally:
        a.stop()
        b.stop()
        await db.close()

    logs = f"\n--- a:\n{a.log()}\n--- b:\n{b.log()}"
    assert all(x is not None and x[0] == 200 for x in answers), f"{answers}{logs}"
    replies = {(s.name, msg_id_of(r)): x[1] for (s, r), x in zip(jobs, answers, strict=True)}  # type: ignore[index]
    for r in same_id:  # the one stored reply, whichever process answered
        assert replies[("a", msg_id_of(r))] == replies[("b", msg_id_of(r))]
        assert "签到成功" in replies[("a", msg_id_of(r))]
    for r in twins:  # two messages of one teacher at once: one check-in, then "已签到"
        pair = [replies[("a", msg_id_of(r))], replies[("b", "msgTWIN" + msg_id_of(r))]]
        assert sum("签到成功" in t for t in pair) == 1 and sum("已签到" in t for t in pair) == 1, pair
    assert (checkins, people) == (TEACHERS, TEACHERS)
    assert inbound == TEACHERS + len(twins)

    # each scheduled send: one outbox row per group, sent, and one message in that group
    assert Counter((k, g) for k, _, g, _ in outbox) == Counter(
        {(k, g): 1 for k in KINDS for g in {g for _, _, g, _ in outbox}}), outbox
    assert len({g for _, _, g, _ in outbox}) == len(GROUPS)
    assert {state for *_, state in outbox} == {"sent"}, f"{outbox}{logs}"
    assert len(sent_to) == len(KINDS) * len(GROUPS), f"{sent_to}{logs}"
    assert max(Counter(sent_to).values()) == 1, "a message was sent twice"
    assert Counter(conv for conv, _ in sent_to) == {group_conversation(c): len(KINDS) for c in GROUPS}
    assert {"scheduler", "outbox"} <= set(holders)
