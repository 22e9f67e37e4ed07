"""Bench: a burst of 500 group messages through the real outbox, drained by the real Sender to
a fake DingTalk custom-robot server on 127.0.0.1 that checks 加签 and records arrival times.

Queued through storage.queries.outbox.enqueue in group-committed `Database.write` units
(500 concurrent producers), then once more as one transaction (creates nothing: an
occurrence exists once). Drained by bot.outbox.Sender through the real CustomRobotRoute, on
a compressed clock: the Sender's limiter is `spaced_limiter(per_minute, period_s=60/compress)`,
so a platform minute lasts 60/compress seconds and the fake answers 130101 (throttled) to a
robot sent more than 20 messages in any such window — as DingTalk would. Verified: none
lost, none twice, never more than the route's limit in any window, per robot. The baseline
for queueing is the same 500 rows by raw sqlite3 executemany; for draining, the least time
the limit allows.

Run: python -m bench.outbound [--messages 500] [--robots 10] [--compress 30]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import sqlite3
import tempfile
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from bot.lease import Lease
from bot.outbox import LIMIT_MARGIN, Sender, spaced_limiter
from platforms.dingtalk.api import DingTalkApi
from platforms.dingtalk.send import CustomRobotRoute
from platforms.dingtalk.settings import DingTalkConfig
from storage.db import Database
from storage.models import Outbox, School
from storage.queries.groups import bind_group
from storage.queries.outbox import enqueue

KIND = "broadcast"
REF = "bench-outbound"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeRobots:
    """/robot/send for many custom robots: checks token and 加签, records, throttles like DingTalk."""

    secrets: dict[str, str]  # access_token → 加签 secret
    window_s: float  # one platform minute, compressed
    per_minute: int
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    received: Counter[str] = field(default_factory=Counter)  # msgUuid → deliveries accepted
    throttled: int = 0
    refused: int = 0
    _recent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def _signed(self, token: str, query: dict[str, str]) -> bool:
        secret = self.secrets.get(token)
        if secret is None:
            return False
        mac = hmac.new(secret.encode(), f"{query.get('timestamp')}\n{secret}".encode(), hashlib.sha256)
        return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), query.get("sign", ""))

    async def send(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        query = dict(request.query)
        body = await request.json()
        token = query.get("access_token", "")
        if not self._signed(token, query):
            self.refused += 1
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        recent = self._recent[token]
        while recent and arrived - recent[0] >= self.window_s:
            recent.popleft()
        if len(recent) >= self.per_minute:
            self.throttled += 1
            return web.json_response({"errcode": 130101, "errmsg": "send too fast"})
        recent.append(arrived)
        self.arrivals[token].append(arrived)
        self.received[str(body.get("msgUuid"))] += 1
        return web.json_response({"errcode": 0, "errmsg": "ok"})


def max_in_window(times: list[float], window_s: float) -> int:
    """The most arrivals inside any half-open window of `window_s` seconds."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


async def seed_groups(db: Database, base: str, robots: int) -> tuple[list[int], dict[str, str]]:
    """One school and one group per robot, bound with its webhook and 加签 secret."""
    secrets = {f"TOKEN{i:04d}": f"SEC{i:04d}{'0' * 56}" for i in range(robots)}
    now = utc_now()
    async with db.sessions() as s, s.begin():
        ids = []
        for i, (token, secret) in enumerate(secrets.items()):
            school = School(code=f"S{i:04d}", name=f"第{i + 1}学校")
            s.add(school)
            await s.flush()
            group = await bind_group(s, platform="dingtalk", conversation_id=f"cidBENCH{i:04d}",
                                     school_id=school.id, now=now, route_kind=CustomRobotRoute.kind,
                                     route_url=f"{base}/robot/send?access_token={token}", route_secret=secret)
            ids.append(group.id)
    return ids, secrets


async def queue(db: Database, groups: list[int], messages: int) -> tuple[float, int, float, int]:
    """(seconds, rows created) for concurrent producers, then again for one transaction."""
    now = utc_now()

    def unit(k: int):  # type: ignore[no-untyped-def]
        return lambda s: enqueue(s, kind=KIND, ref=f"{REF}/{k:04d}", group_id=groups[k % len(groups)],
                                 text=f"研修通知 #{k:04d}：本周四上午第三节校本研修，请准时签到。", now=now)

    started = time.perf_counter()
    created = sum(await asyncio.gather(*(db.write(unit(k)) for k in range(messages))))
    concurrent_s = time.perf_counter() - started

    async def all_at_once(s):  # type: ignore[no-untyped-def]
        return sum([await unit(k)(s) for k in range(messages)])

    started = time.perf_counter()
    again = await db.write(all_at_once)
    return concurrent_s, created, time.perf_counter() - started, again


def baseline_insert(folder: Path, messages: int) -> float:
    """The same rows by raw sqlite3 executemany in one transaction (a copy of the schema)."""
    con = sqlite3.connect(folder / "bench.db")
    try:
        con.execute("CREATE TEMP TABLE outbox_copy AS SELECT * FROM outbox WHERE 0")
        rows = [(KIND, f"copy/{k}", 1, "x" * 60, 0, "", "[]", "pending", 0, "2024-01-01 00:00:00.000000",
                 "2024-01-01 00:00:00.000000") for k in range(messages)]
        started = time.perf_counter()
        con.executemany("INSERT INTO outbox_copy (kind, ref, group_id, text, markdown, title, mentions, state, "
                        "attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.commit()
        return time.perf_counter() - started
    finally:
        con.close()


async def run(messages: int, robots: int, compress: float) -> None:
    window_s = 60.0 / compress
    with tempfile.TemporaryDirectory(prefix="yanxiu-outbound-") as tmp:
        folder = Path(tmp)
        route_limit = CustomRobotRoute.per_minute
        db = Database(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
        await db.upgrade()
        await db.start()
        fake = FakeRobots({}, window_s, route_limit)
        app = web.Application()
        app.router.add_post("/robot/send", fake.send)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        try:
            groups, fake.secrets = await seed_groups(db, base, robots)
            concurrent_s, created, once_s, again = await queue(db, groups, messages)
            base_s = baseline_insert(folder, messages)
            print(f"queued {created} messages for {robots} robots in {concurrent_s:.3f} s by {messages} concurrent "
                  f"producers (target < 1 s); the same {messages} again in one transaction {once_s:.3f} s, "
                  f"created {again}; raw sqlite3 executemany baseline {base_s:.3f} s", flush=True)

            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
                api = DingTalkApi(http, DingTalkConfig(enabled=True, oapi_base=base), utc_now)
                route = CustomRobotRoute(api, base, utc_now)
                sender = Sender(db, {route.kind: route}, utc_now, lease=Lease(db, "outbox", utc_now),
                                limiter_factory=lambda n: spaced_limiter(n, window_s))
                started = time.perf_counter()
                await sender.drain()
                drain_s = time.perf_counter() - started
                await sender.stop()
            async with db.sessions() as s:
                states = dict((await s.execute(select(Outbox.state, func.count()).group_by(Outbox.state))).all())
                ids = set((await s.scalars(select(Outbox.id))).all())
        finally:
            await runner.cleanup()
            await db.close()

    per_robot = messages / robots
    least = (per_robot - 1) * window_s * LIMIT_MARGIN / route_limit
    delivered = {f"yanxiu-outbox-{i}" for i in ids}
    lost = len(delivered - set(fake.received))
    twice = sum(1 for n in fake.received.values() if n > 1)
    busiest = max(max_in_window(times, window_s) for times in fake.arrivals.values())
    print(f"drained in {drain_s:.2f} s with a minute compressed to {window_s:.2f} s "
          f"(= {drain_s * compress / 60:.1f} platform minutes; the limit allows no less than {least:.2f} s "
          f"= {least * compress / 60:.1f} minutes); outbox states {states}")
    print(f"delivered {sum(fake.received.values())}, lost {lost}, sent twice {twice}, throttled by the fake "
          f"{fake.throttled}, refused (bad 加签) {fake.refused}; busiest robot: {busiest} messages in one "
          f"platform minute (limit {route_limit})")
    problems = [name for name, bad in (("lost", lost), ("sent twice", twice), ("throttled", fake.throttled),
                                       ("over the limit", busiest > route_limit), ("refused", fake.refused),
                                       ("not all sent", states != {"sent": messages})) if bad]
    print("OK: none lost, none twice, within the limit" if not problems else f"FAILED: {', '.join(problems)}")
    if problems:
        raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--robots", type=int, default=10)
    ap.add_argument("--compress", type=float, default=30.0, help="platform minutes per real minute")
    args = ap.parse_args()
    asyncio.run(run(args.messages, args.robots, args.compress))


if __name__ == "__main__":
    main()
