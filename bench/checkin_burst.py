"""Bench: a session's first minutes against one `yanxiu serve` on SQLite — first check-ins,
repeat 签到, platform redeliveries, 进度, 签到 before the window opens, 请假 (bench/burst_mix.py)
— compared with a bare aiohttp handler that only verifies the signature and parses the JSON
(the same requests, the same run, loaded in turns: ABBA slices). Prints each run's req/s,
p50/p99 overall and per kind, the ratio to the bare handler, and checks every answer (a repeat
shows the first time, a redelivery the stored reply) and that every acknowledged check-in is
stored exactly once; then the medians over the runs. Targets (SPEC §9): ratio ≥ 0.75, p99 ≤ 25
ms at concurrency 64; each kind's p99 within 1.5× the first check-in's.

The servers run as the README installs them (`pip install -e ".[test]"`: no uvloop) unless
`--loop uvloop`; `--loop both` runs four servers in the same turns — yanxiu and the bare
handler, each on asyncio's loop and on uvloop — to tell what uvloop is worth.

Run: python -m bench.checkin_burst [--n 20000] [--runs 3] [--concurrency 64] [--loop asyncio]
        [--first 0.3 --repeat 0.35 --redeliver 0.15 --progress 0.1 --closed 0.05 --leave 0.05]
Only 127.0.0.1 is contacted; every server it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.burst_mix import (
    DEFAULT_MIX,
    KINDS,
    SCHOOLS,
    MixBuilder,
    check_answers,
    conversation,
    to_requests,
)
from bench.burst_report import (
    Target,
    cpu_seconds,
    kind_figures,
    print_medians,
    print_run,
    stored_records,
)
from bench.loadgen import Request, Result, run
from bot.demo import TZ
from platforms.dingtalk.wire import callback_signature

SECRET = "bench-app-secret"
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "platforms" / "dingtalk" / "group_text.json"
WARMUP = 1000  # messages before the measured burst: every kind's path and template warm
SLICES = 4  # each server's load, in slices taken in turn: A B B A A B B A (or A B C D D C B A)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_roster(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["school_code", "school_name", "name", "role", "dingtalk_userid", "wecom_userid", "mobile"])
        for i in range(n):
            school = i % SCHOOLS
            w.writerow([f"S{school:03d}", f"第{school}学校", f"教师{i}", "teacher", f"bt-{i:06d}", "", ""])


def session_start(now: datetime) -> datetime:
    """The burst's session starts in 5 minutes: its check-in window opened 5 minutes ago."""
    return (now + timedelta(minutes=5)).replace(second=0, microsecond=0)


def write_plan(path: Path) -> None:
    """A term of sessions every Tuesday and Thursday, one of them today (an extra school
    date) whose check-in window is open now and stays open for 25 minutes, another tomorrow
    (请假 明天); a reflection and a photo task (进度 lists them)."""
    start = session_start(datetime.now(UTC).astimezone(TZ))
    day = start.date()
    tomorrow = day + timedelta(days=1)
    end = max(tomorrow, min(day + timedelta(days=30), day.replace(month=12, day=31)))
    path.write_text(f"""
[term]
name = "bench"
start = {(day - timedelta(days=90)).isoformat()}
end = {end.isoformat()}
timezone = "Asia/Shanghai"
required_hours = 36
extra_school_dates = [{day.isoformat()}, {tomorrow.isoformat()}]

[[session]]
name = "burst"
weekdays = ["tue", "thu"]
start = "{start.strftime("%H:%M")}"
minutes = 40
checkin_opens_before = 10
checkin_closes_after = 20
hours = 1

[[task]]
id = "reflection"
kind = "reflection"
title = "本月研修心得"
min_chars = 1000
due = {end.isoformat()}T17:00:00
hours = 2

[[task]]
id = "photos"
kind = "photos"
title = "听课照片"
min_photos = 3
due = {end.isoformat()}T17:00:00
hours = 1
""", encoding="utf-8")


def write_config(path: Path, *, db_url: str, port: int, files_dir: Path, sim: bool = False) -> None:
    """`yanxiu serve` on 127.0.0.1 taking DingTalk HTTP callbacks signed with SECRET; its
    DingTalk API bases point at a closed local port; the simulator (and its route) optional.
    Also used by the crash and two-instance tests (tests/serve_proc.py)."""
    path.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
public_base_url = "http://127.0.0.1:{port}"
[database]
url = "{db_url}"
[storage]
files_dir = "{files_dir}"
[dingtalk]
enabled = true
mode = "http"
app_secret = "{SECRET}"
api_base = "http://127.0.0.1:9"
oapi_base = "http://127.0.0.1:9"
[sim]
enabled = {"true" if sim else "false"}
""", encoding="utf-8")


def build_requests(n: int, offset: int = 0) -> list[Request]:
    """`n` first check-ins of teachers offset… (the crash and workers tests' burst)."""
    base = json.loads(FIXTURE.read_text(encoding="utf-8"))
    ts = str(int(time.time() * 1000))
    headers = (("Content-Type", "application/json"), ("timestamp", ts),
               ("sign", callback_signature(ts, SECRET)))
    out = []
    for i in range(offset, offset + n):
        body = dict(base, msgId=f"msgBENCH{i:08d}==", senderStaffId=f"bt-{i:06d}",
                    text={"content": " 签到"})
        out.append(Request("/dingtalk/callback", headers, json.dumps(body, ensure_ascii=False).encode()))
    return out


def reply_text(body: bytes) -> str:
    try:
        reply = json.loads(body)
    except ValueError:
        return ""
    inner = reply.get(reply.get("msgtype", ""), {}) if isinstance(reply, dict) else {}
    return str(inner.get("content") or inner.get("text") or "") if isinstance(inner, dict) else ""


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def yanxiu(*args: str) -> None:
    """A `yanxiu` command; its output only when it fails."""
    done = subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"yanxiu {' '.join(args[:2])} failed:\n{done.stdout}{done.stderr}")


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc): `serve --workers N`'s workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def bind_school_groups(db_url: str) -> None:
    """Each school's group bound to it, reply-only (no proactive route: nothing is sent)."""
    from storage.db import Database
    from storage.queries.groups import bind_group, school_by_code

    async def bind() -> None:
        db = Database(db_url)
        try:
            async with db.sessions() as s, s.begin():
                for k in range(SCHOOLS):
                    school = await school_by_code(s, f"S{k:03d}")
                    assert school is not None
                    await bind_group(s, platform="dingtalk", conversation_id=conversation(k),
                                     school_id=school.id, now=datetime.now(UTC), title=f"第{k}学校研修群")
        finally:
            await db.close()

    asyncio.run(bind())


def prepare_yanxiu(folder: Path, roster: Path, plan: Path) -> tuple[Path, Path]:
    """A database with the roster, the plan and the bound groups; (config, database file)."""
    folder.mkdir(parents=True)
    db = folder / "bench.db"
    cfg = folder / "config.toml"
    write_config(cfg, db_url=f"sqlite+aiosqlite:///{db}", port=free_port(), files_dir=folder / "files")
    yanxiu("roster", "import", str(roster), "--config", str(cfg))
    yanxiu("plan", "load", str(plan), "--config", str(cfg))
    bind_school_groups(f"sqlite+aiosqlite:///{db}")
    return cfg, db


def start_target(target: Target, cfg: Path | None) -> None:
    """Start the target's server on a free port and wait until it listens."""
    target.port = free_port()
    if cfg is not None:  # yanxiu: the config's port is this run's
        text = cfg.read_text(encoding="utf-8")
        cfg.write_text("\n".join(f"port = {target.port}" if line.startswith("port = ") else line
                                 for line in text.splitlines()), encoding="utf-8")
        argv = [sys.executable, "-m", "bench.serve_installed", "--clock-header",
                *(["--uvloop"] if target.uvloop else []), "serve", "--config", str(cfg)]
    else:
        argv = [sys.executable, "-m", "bench.bare_server", str(target.port), SECRET,
                *(["--uvloop"] if target.uvloop else [])]
    target.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    wait_port(target.port, target.proc)


def stop_targets(targets: list[Target]) -> None:
    for t in targets:
        if t.proc is not None and t.proc.poll() is None:
            t.proc.terminate()
    for t in targets:
        if t.proc is not None:
            t.proc.wait(timeout=30)


def load(port: int, requests: list[Request], concurrency: int) -> Result:
    """The load generator on uvloop when it is there (it is not measured: only cheaper)."""
    try:
        import uvloop

        return uvloop.run(run("127.0.0.1", port, requests, concurrency, keep_bodies=True))
    except ImportError:
        return asyncio.run(run("127.0.0.1", port, requests, concurrency, keep_bodies=True))


def one_run(args: argparse.Namespace, shares: dict[str, float], loops: list[bool]) -> list[Target]:
    """One run: the same warm-up and burst against every target, in turns (ABBA slices), so
    that all see the same minutes of a host whose speed swings within a minute."""
    with tempfile.TemporaryDirectory(prefix="yanxiu-bench-") as tmp:
        folder = Path(tmp)
        roster_size = args.n + WARMUP + 100
        write_roster(folder / "roster.csv", roster_size)
        write_plan(folder / "plan.toml")
        tomorrow = session_start(datetime.now(UTC).astimezone(TZ)).date() + timedelta(days=1)
        builder = MixBuilder(shares, tomorrow)
        builder.roster_size = roster_size
        warm = builder.draw(WARMUP, "msgWARM")
        burst = builder.draw(args.n, "msgBENCH")
        now_ms = int(time.time() * 1000)
        warm_requests, requests = to_requests(warm, SECRET, now_ms), to_requests(burst, SECRET, now_ms)

        targets: list[Target] = []
        configs: dict[str, Path] = {}
        for uv in loops:
            loop = "uvloop" if uv else "asyncio"
            cfg, db = prepare_yanxiu(folder / f"yanxiu-{loop}", folder / "roster.csv", folder / "plan.toml")
            targets.append(Target(f"yanxiu/{loop}", True, uv, db=db))
            configs[targets[-1].name] = cfg
            targets.append(Target(f"bare/{loop}", False, uv))
        try:
            for t in targets:
                start_target(t, configs.get(t.name))
            for t in targets:
                t.warm = load(t.port, warm_requests, args.concurrency)
            cpu = {t.name: cpu_seconds(t.proc.pid) for t in targets if t.proc is not None}
            size = -(-args.n // SLICES)
            for k in range(0, args.n, size):
                for t in (targets if (k // size) % 2 == 0 else targets[::-1]):
                    t.parts.append(load(t.port, requests[k:k + size], args.concurrency))
            for t in targets:
                if t.proc is not None:
                    user, system = cpu_seconds(t.proc.pid)
                    t.cpu_us = (user + system - sum(cpu[t.name])) / args.n * 1e6
                    t.sys_us = (system - cpu[t.name][1]) / args.n * 1e6
        finally:
            stop_targets(targets)
        for t in targets:
            t.result = Result.joined(t.parts)
            if t.yanxiu:
                assert t.db is not None and t.warm is not None
                bodies = t.warm.bodies + t.result.bodies
                by_request = t.warm.by_request + t.result.by_request
                texts = [reply_text(b) if status == 200 else None
                         for b, (_, status) in zip(bodies, by_request, strict=True)]
                t.check = check_answers(builder.messages, texts)
                t.stored = stored_records(t.db)
                t.kinds = kind_figures(builder.messages, WARMUP, t.result)
        return targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="requests in each run's burst")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="asyncio",
                    help="the servers' event loop (default asyncio: the README's install)")
    ap.add_argument("--workers", type=int, default=1,
                    help="yanxiu serve processes: 1 (SQLite is one process; several need PostgreSQL)")
    for kind in KINDS:
        ap.add_argument(f"--{kind}", type=float, default=DEFAULT_MIX[kind],
                        help=f"share of {kind} (default {DEFAULT_MIX[kind]})")
    args = ap.parse_args()
    if args.workers != 1:
        ap.error("--workers: the SQLite target is one `yanxiu serve` process (serve refuses more)")
    shares = {k: getattr(args, k) for k in KINDS}
    if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
        ap.error("the shares must be ≥ 0 and not all 0")
    loops = {"asyncio": [False], "uvloop": [True], "both": [False, True]}[args.loop]
    print(f"check-in burst: n={args.n} (+{WARMUP} warm-up), concurrency={args.concurrency}, "
          f"runs={args.runs}, cpus={os.cpu_count()}, loop={args.loop}, one yanxiu process; mix "
          + ", ".join(f"{k} {v:g}" for k, v in shares.items()))
    runs: list[list[Target]] = []
    for i in range(args.runs):
        targets = one_run(args, shares, loops)
        print_run(i + 1, targets)
        runs.append(targets)
    print_medians(runs)


if __name__ == "__main__":
    main()
