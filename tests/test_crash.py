"""kill -9 during a check-in burst: what was acknowledged is stored, once; nothing is doubled.

A real `yanxiu serve` subprocess takes signed DingTalk check-in callbacks from many teachers
at once; once a share of them is acknowledged it is killed with SIGKILL. Before restarting,
every acknowledged check-in must already be in the database. After the restart the
"platform" redelivers what was never answered plus a sample of what was: every teacher ends
up checked in exactly once, and a redelivery gets the very reply the first delivery got.
Runs on SQLite, and on PostgreSQL when YANXIU_TEST_PG_URL is set.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from bench.checkin_burst import build_requests, write_plan, write_roster
from bench.loadgen import Request
from storage.db import Database
from storage.models import Checkin, Identity, Inbound
from tests.serve_proc import ServeProcess, msg_id_of, post_checkin, seed

TEACHERS = 600
CONCURRENCY = 32
KILL_AFTER_ACKS = 150
REDELIVER_ACKED = 60
OK = "签到成功"


async def burst(server: ServeProcess, requests: list[Request], *, kill_after: int | None = None
                ) -> dict[str, tuple[int, str] | None]:
    """Send every request at CONCURRENCY; SIGKILL the server the moment `kill_after` are answered."""
    answers: dict[str, tuple[int, str] | None] = {}
    acked = 0
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(http: aiohttp.ClientSession, request: Request) -> None:
        nonlocal acked
        async with gate:
            answer = await post_checkin(http, server.base, request)
        answers[msg_id_of(request)] = answer
        if answer is not None and answer[0] == 200:
            acked += 1
            if kill_after is not None and acked == kill_after:
                server.kill()

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.wait_for(asyncio.gather(*(one(http, r) for r in requests)), timeout=120)
    return answers


async def stored_checkins(db_url: str) -> dict[str, int]:
    """msg_id → rows in checkin, for the burst's messages."""
    db = Database(db_url)
    try:
        async with db.sessions() as s:
            rows = await s.execute(select(Checkin.msg_id, func.count()).where(Checkin.msg_id.like("msgBENCH%"))
                                   .group_by(Checkin.msg_id))
            return {msg_id: n for msg_id, n in rows.all()}
    finally:
        await db.close()


async def stored_replies(db_url: str) -> dict[str, str | None]:
    """msg_id → the reply stored with the inbound row, for the burst's messages."""
    db = Database(db_url)
    try:
        async with db.sessions() as s:
            rows = await s.execute(select(Inbound.msg_id, Inbound.reply_text)
                                   .where(Inbound.msg_id.like("msgBENCH%")))
            return {msg_id: text for msg_id, text in rows.all()}
    finally:
        await db.close()


async def totals(db_url: str) -> tuple[int, int, int]:
    """(check-in rows, distinct people checked in, inbound rows) for the burst's messages."""
    db = Database(db_url)
    try:
        async with db.sessions() as s:
            rows = await s.scalar(select(func.count()).select_from(Checkin).where(Checkin.msg_id.like("msgBENCH%")))
            people = await s.scalar(select(func.count(func.distinct(Checkin.person_id)))
                                    .join(Identity, Identity.person_id == Checkin.person_id)
                                    .where(Identity.platform == "dingtalk", Identity.user_id.like("bt-%")))
            inbound = await s.scalar(select(func.count()).select_from(Inbound)
                                     .where(Inbound.msg_id.like("msgBENCH%")))
            return rows, people, inbound
    finally:
        await db.close()


async def test_kill_9_mid_burst_loses_nothing_acknowledged_and_doubles_nothing(
        tmp_path: Path, db_url: str) -> None:
    write_roster(tmp_path / "roster.csv", TEACHERS)
    write_plan(tmp_path / "plan.toml")  # a session whose check-in window is open now
    await seed(db_url, tmp_path / "roster.csv", (tmp_path / "plan.toml").read_text("utf-8"), datetime.now(UTC))
    requests = build_requests(TEACHERS)
    server = ServeProcess(tmp_path, db_url)
    try:
        await server.start()
        first = await burst(server, requests, kill_after=KILL_AFTER_ACKS)
        server.stop()

        acked = {m: a[1] for m, a in first.items() if a is not None and a[0] == 200}
        unanswered = [r for r in requests if msg_id_of(r) not in acked]
        assert len(acked) >= KILL_AFTER_ACKS
        assert unanswered, "the burst finished before the kill: nothing was interrupted"
        assert all(OK in text for text in acked.values())
        assert all(a is None or a[0] == 200 for a in first.values()), "a non-200 answer before the kill"

        # acknowledged means durable: every acknowledged check-in is there before any restart
        stored = await stored_checkins(db_url)
        assert not [m for m in acked if stored.get(m) != 1], "acknowledged but not stored once"
        committed_unacked = len(stored) - len(acked)  # done, but the answer was lost in the kill

        await server.start()
        sample = random.Random(8).sample(sorted(acked), min(REDELIVER_ACKED, len(acked)))
        by_id = {msg_id_of(r): r for r in requests}
        again = await burst(server, unanswered + [by_id[m] for m in sample])
    finally:
        server.stop()

    assert all(a is not None and a[0] == 200 for a in again.values()), \
        f"a redelivery failed after the restart; server log:\n{server.log()}"
    assert all(OK in again[msg_id_of(r)][1] for r in unanswered)  # type: ignore[index]
    for m in sample:  # a redelivery gets the very reply the first delivery got
        assert again[m] == (200, acked[m])
    replies = await stored_replies(db_url)  # the answer given is the answer remembered
    assert all(again[m] == (200, replies[m]) for m in again)
    final = await stored_checkins(db_url)
    assert set(final) == set(by_id) and set(final.values()) == {1}
    assert await totals(db_url) == (TEACHERS, TEACHERS, TEACHERS)
    print(f"acknowledged before the kill {len(acked)}, committed but unanswered {committed_unacked}, "
          f"redelivered {len(again)}")
