"""`yanxiu serve --workers 2` as real processes on 127.0.0.1: both workers take check-ins
on one port and one database, /metrics adds up both, a worker killed mid-burst is started
again with nothing acknowledged lost and nothing doubled, SIGTERM stops them all, and a
worker that cannot start stops the supervisor. Several workers share PostgreSQL (SQLite is
the one-process default and refuses them), so these run when YANXIU_TEST_PG_URL is set."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.checkin_burst import build_requests, children, free_port, write_plan, write_roster
from bench.loadgen import Request
from bot.cli import main
from bot.config import ConfigError, config_from_mapping
from bot.metrics import LATENCY_BUCKETS, _RequestsAndLatency
from bot.workers import RESTART_AFTER_SECONDS, WORKER_ENV, Worker
from storage.models import Inbound
from tests.conftest import PG_ADMIN_URL, count_rows
from tests.dingtalk_fake import APP_KEY, APP_SECRET, load, robot_message, start_fake
from tests.serve_proc import ROOT, ServeProcess, msg_id_of, post_checkin, seed
from tests.test_crash import stored_checkins, stored_replies, totals

TEACHERS = 600
CONCURRENCY = 32
OK = "签到成功"
CALLBACK = "/dingtalk/callback"
GUARD_S = 60.0  # only a hang guard
needs_pg = pytest.mark.skipif(not PG_ADMIN_URL, reason="several workers share PostgreSQL: "
                                                       "set YANXIU_TEST_PG_URL")


def stream_frame(payload: dict[str, Any], frame_id: str) -> dict[str, Any]:
    frame = copy.deepcopy(load("stream_frames.json")["callback_frame"])
    frame["headers"]["messageId"] = frame_id
    frame["data"] = json.dumps(payload, ensure_ascii=False)
    return frame


def workers_of(supervisor: int) -> dict[int, tuple[int, Worker]]:
    """index → (pid, Worker) for the live children of `supervisor`, read from /proc."""
    found: dict[int, tuple[int, Worker]] = {}
    for pid in children(supervisor):
        try:
            env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(f"{WORKER_ENV}=".encode()):
                worker = Worker.from_env(item.split(b"=", 1)[1].decode())
                found[worker.index] = (pid, worker)
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def until(condition, what: str):  # type: ignore[no-untyped-def]
    """Poll `condition()` until it is truthy; fail after GUARD_S (a hang guard, not a timing test)."""
    deadline = time.monotonic() + GUARD_S
    while not (result := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.1)
    return result


def published(pid: int, worker: Worker) -> int:
    """Acknowledged callbacks in the counts worker process `pid` published (0 before it does)."""
    try:
        snap = json.loads((worker.metrics_dir / f"worker-{worker.index}-{pid}.json").read_text())
    except (OSError, ValueError):
        return 0
    return sum(n for endpoint, status, n in snap["requests"] if endpoint == CALLBACK and status == 200)


def on_disk(worker: Worker) -> int:
    """Acknowledged callbacks in every file of the metrics folder (every worker, live or not)."""
    total = 0
    for path in worker.metrics_dir.glob("worker-*.json"):
        with contextlib.suppress(OSError, ValueError):
            snap = json.loads(path.read_text())
            total += sum(n for e, st, n in snap["requests"] if e == CALLBACK and st == 200)
    return total


async def burst(server: ServeProcess, requests: list[Request], kill: tuple[int, int] | None = None
                ) -> dict[str, tuple[int, str] | None]:
    """Every request on a new connection (so the kernel spreads them over the workers);
    `kill=(after, pid)`: SIGKILL `pid` once `after` answers are in."""
    answers: dict[str, tuple[int, str] | None] = {}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(http: aiohttp.ClientSession, request: Request) -> None:
        async with gate:
            answers[msg_id_of(request)] = answer = await post_checkin(http, server.base, request)
        if kill is not None and answer is not None and len(answers) == kill[0]:
            os.kill(kill[1], signal.SIGKILL)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        await asyncio.wait_for(asyncio.gather(*(one(http, r) for r in requests)), timeout=GUARD_S * 2)
    return answers


async def scraped_callbacks(base: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as resp:
        text = await resp.text()
    found = re.search(r'yanxiu_http_requests_total\{endpoint="/dingtalk/callback",status="200"\} (\S+)', text)
    return int(float(found.group(1))) if found else 0


@needs_pg
async def test_two_workers_share_the_burst_and_lose_nothing_when_one_is_killed(
        tmp_path: Path, db_url: str) -> None:
    write_roster(tmp_path / "roster.csv", TEACHERS)
    write_plan(tmp_path / "plan.toml")
    await seed(db_url, tmp_path / "roster.csv", (tmp_path / "plan.toml").read_text("utf-8"), datetime.now(UTC))
    requests = build_requests(TEACHERS)
    first_half, second_half = requests[:300], requests[300:]
    server = ServeProcess(tmp_path, db_url, workers=2)
    try:
        await server.start()
        assert server.proc is not None
        supervisor = server.proc.pid
        started = time.monotonic()
        workers = await until(lambda: (w := workers_of(supervisor)) and len(w) == 2 and w, "two workers")
        pids = {i: pid for i, (pid, _) in workers.items()}

        # both workers answer, and whichever is scraped counts both
        first = await burst(server, first_half)
        assert all(a is not None and a[0] == 200 and OK in a[1] for a in first.values()), server.log()
        await until(lambda: sum(published(*w) for w in workers.values()) == 300, "both workers' counts")
        assert all(published(*w) > 0 for w in workers.values()), "one worker took every connection"
        scraped = [await scraped_callbacks(server.base) for _ in range(4)]  # either worker answers
        assert scraped == [300] * 4, scraped

        # kill -9 worker 1 mid-burst (once it has run long enough to be started again)
        await asyncio.sleep(max(0.0, started + RESTART_AFTER_SECONDS + 1 - time.monotonic()))
        second = await burst(server, second_half, kill=(60, pids[1]))
        acked = {m: a[1] for m, a in {**first, **second}.items() if a is not None and a[0] == 200}
        unanswered = [r for r in requests if msg_id_of(r) not in acked]
        assert unanswered, "worker 1 answered nothing in flight when it was killed"
        assert all(a is None or a[0] == 200 for a in second.values())
        stored = await stored_checkins(db_url)  # acknowledged means durable
        assert not [m for m in acked if stored.get(m) != 1], "acknowledged but not stored once"

        restarted = await until(lambda: (w := workers_of(supervisor)) and len(w) == 2
                                and w[1][0] != pids[1] and w, "worker 1 again")
        assert restarted[0][0] == pids[0]  # the other worker served on
        by_id = {msg_id_of(r): r for r in requests}
        sample = random.Random(9).sample(sorted(acked), 40)
        again = await burst(server, unanswered + [by_id[m] for m in sample])
        assert all(a is not None and a[0] == 200 for a in again.values()), server.log()
        assert all(OK in again[msg_id_of(r)][1] for r in unanswered)  # type: ignore[index]
        assert all(again[m] == (200, acked[m]) for m in sample)  # the very reply given before
        replies = await stored_replies(db_url)
        assert all(again[m] == (200, replies[m]) for m in again)
        # the killed worker's counts stay in /metrics' sums: they never go down
        assert published(pids[1], workers[1][1]) > 0
        everything = sum(1 for a in [*first.values(), *second.values(), *again.values()]
                         if a is not None and a[0] == 200)
        deadline = time.monotonic() + GUARD_S
        while (scraped_now := await scraped_callbacks(server.base)) != on_disk(workers[0][1]):
            assert time.monotonic() < deadline, "the published counts never settled"
            await asyncio.sleep(0.2)
        assert 300 < scraped_now <= everything

        # SIGTERM stops the supervisor and every worker, cleanly
        server.proc.terminate()
        assert await asyncio.to_thread(server.proc.wait, GUARD_S) == 0, server.log()
        live = {pid for pid, _ in restarted.values()}
        await until(lambda: not any(alive(pid) for pid in live), "the workers to stop")
        assert not restarted[0][1].metrics_dir.exists()
    finally:
        server.stop()
    final = await stored_checkins(db_url)
    assert set(final) == set(by_id) and set(final.values()) == {1}
    assert await totals(db_url) == (TEACHERS, TEACHERS, TEACHERS)
    assert "starting it again" in server.log()


@needs_pg
async def test_in_stream_mode_every_worker_keeps_a_connection_and_answers_on_it(
        tmp_path: Path, db_url: str, aiohttp_server: Any, seeded: Any) -> None:
    """DingTalk gives each Stream push to one of an app's connections: with two workers
    there are two, a message on either is answered, and one pushed again on the other
    connection (a redelivery) is acknowledged without a second record or reply."""
    fake = await start_fake(aiohttp_server)
    port = free_port()
    cfg = tmp_path / "stream.toml"
    cfg.write_text(f"""
[server]
port = {port}
[database]
url = "{db_url}"
[storage]
files_dir = "{tmp_path / 'files'}"
[dingtalk]
enabled = true
mode = "stream"
app_key = "{APP_KEY}"
app_secret = "{APP_SECRET}"
robot_code = "{APP_KEY}"
api_base = "{fake.base}"
oapi_base = "{fake.base}"
""", encoding="utf-8")
    proc = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg), "--workers", "2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = await fake.next_connection(timeout=GUARD_S)
        second = await fake.next_connection(timeout=GUARD_S)
        now = datetime.now(UTC)
        asked = {"FAKE_w0": (first, "dt-zhangming"), "FAKE_w1": (second, "dt-lixiuying")}
        for frame_id, (conn, staff) in asked.items():
            payload = robot_message("private_text.json", base=fake.base, at=now, staff_id=staff,
                                    msg_id=f"msg-{frame_id}")
            await conn.push(stream_frame(payload, frame_id))
            assert (await conn.answer(GUARD_S))["code"] == 200
        again = robot_message("private_text.json", base=fake.base, at=now, staff_id="dt-zhangming",
                              msg_id="msg-FAKE_w0")
        await second.push(stream_frame(again, "FAKE_w0_again"))  # the other worker gets it
        assert (await second.answer(GUARD_S))["code"] == 200
        await until(lambda: len(fake.session_posts) >= 2, "both replies")
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, GUARD_S)
    assert len(fake.session_posts) == 2
    assert all("学时" in body["text"]["content"] for _, body in fake.session_posts)
    assert await count_rows(seeded, Inbound) == 2


@needs_pg
async def test_a_worker_that_cannot_start_stops_the_supervisor(tmp_path: Path, db_url: str) -> None:
    # storage.files_dir is a file: every worker fails while starting (the supervisor never
    # opens it; a busy port, by contrast, the supervisor itself refuses before any worker starts)
    (tmp_path / "files").write_text("not a folder", encoding="utf-8")
    server = ServeProcess(tmp_path, db_url, workers=2)
    try:
        proc = server.spawn()
        code = await asyncio.to_thread(proc.wait, GUARD_S)
        supervisor = proc.pid
    finally:
        server.stop()
    assert code == 1, server.log()
    assert "while starting; stopping" in server.log()
    assert not workers_of(supervisor)


def test_workers_must_be_a_sensible_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=r"server\.workers"):
        config_from_mapping({"server": {"workers": 0}}, env={})
    with pytest.raises(ConfigError, match=r"server\.workers"):
        config_from_mapping({}, env={"YANXIU_SERVER_WORKERS": "65"})
    on_pg = {"url": "postgresql+asyncpg://yanxiu@127.0.0.1/yanxiu"}
    assert config_from_mapping({"server": {"workers": 2}, "database": on_pg}, env={}).server.workers == 2
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite+aiosqlite:///./x.db"\n', encoding="utf-8")
    assert main(["serve", "--config", str(cfg), "--workers", "0"]) == 1
    assert "--workers：必须在 1 到 64 之间" in capsys.readouterr().err


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^server\.workers: 2 个服务进程要共用 PostgreSQL"):
        config_from_mapping({"server": {"workers": 2}}, env={})
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite+aiosqlite:///./x.db"\n', encoding="utf-8")
    assert main(["serve", "--config", str(cfg), "--workers", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("yanxiu: --workers：2 个服务进程要共用 PostgreSQL")
    assert not (tmp_path / "x.db").exists()


def test_a_worker_knows_itself_from_its_environment(tmp_path: Path) -> None:
    worker = Worker(1, 2, tmp_path / "odd:name", 4242)
    assert Worker.from_env(worker.to_env()) == worker


def test_workers_counts_add_up() -> None:
    one, two = _RequestsAndLatency(LATENCY_BUCKETS), _RequestsAndLatency(LATENCY_BUCKETS)
    one.count(CALLBACK, 200)
    one.count(CALLBACK, 200)
    one.observe("checkin", 0.003)
    two.count(CALLBACK, 200)
    two.count(CALLBACK, 401)
    two.observe("checkin", 0.02)
    two.observe("leave", 0.5)
    total = one.merged([json.loads(json.dumps(two.snapshot()))])  # as read back from its file
    assert total.requests == {(CALLBACK, 200): 3, (CALLBACK, 401): 1}
    checkin = total.latency["checkin"]
    assert sum(checkin[:-1]) == 2 and checkin[-1] == pytest.approx(0.023)
    assert sum(total.latency["leave"][:-1]) == 1
    assert one.requests == {(CALLBACK, 200): 2}  # merging leaves a worker's own counts alone
