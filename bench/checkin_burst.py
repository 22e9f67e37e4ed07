"""Bench: a district-wide check-in burst against `yanxiu serve` on SQLite, compared with a
bare aiohttp handler that only verifies the signature and parses the JSON (same requests,
same run). Prints req/s, p50/p99, the ratio, and checks every acknowledged check-in is
stored exactly once; then the medians over the runs, and the host speed 5,000/s would take
at the instructions a request measured. Targets (SPEC §9): ≥ 5,000/s, ratio ≥ 0.5,
p99 ≤ 25 ms.

Run: python -m bench.checkin_burst [--n 20000] [--runs 3] [--concurrency 64]
                                  [--workers 2] [--bare-workers 1]
`--workers`: yanxiu's serving processes (`serve --workers N`; 2 on this 2-core machine);
`--bare-workers`: the bare handler's processes on one port (SPEC's baseline: one).
Only 127.0.0.1 is contacted; every server it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.loadgen import Request, Result, median, run
from bot.demo import TZ
from platforms.dingtalk.wire import callback_signature

SECRET = "bench-app-secret"
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "platforms" / "dingtalk" / "group_text.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_roster(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["school_code", "school_name", "name", "role", "dingtalk_userid", "wecom_userid", "mobile"])
        for i in range(n):
            school = i % 100
            w.writerow([f"S{school:03d}", f"第{school}学校", f"教师{i}", "teacher", f"bt-{i:06d}", "", ""])


def write_plan(path: Path) -> None:
    now = datetime.now(UTC).astimezone(TZ)
    today = now.date()
    start = (now.replace(second=0, microsecond=0)).strftime("%H:%M")
    path.write_text(f"""
[term]
name = "bench"
start = {today.replace(day=1).isoformat()}
end = {today.replace(day=28).isoformat() if today.day <= 28 else today.isoformat()}
timezone = "Asia/Shanghai"
required_hours = 36
extra_school_dates = [{today.isoformat()}]

[[session]]
name = "burst"
weekdays = []
start = "{start}"
minutes = 60
checkin_opens_before = 30
checkin_closes_after = 60
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
    subprocess.run([sys.executable, "-m", "bot.cli", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


class Meter:
    """Servers' CPU seconds and (where `perf` can count) instructions, from now until
    `per_request`: figures of the code, not only of how busy the machine's neighbours are,
    which moves wall-clock rates by up to a factor of two. Several processes add up."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.counter = start_instruction_count(pids)
        self.before = sum(cpu_seconds(pid) for pid in pids)

    def per_request(self, requests: int) -> tuple[float, float | None]:
        """(CPU microseconds, instructions) per request since the meter started."""
        cpu = (sum(cpu_seconds(pid) for pid in self.pids) - self.before) / requests * 1e6
        instructions = stop_instruction_count(self.counter)
        return cpu, instructions / requests if instructions is not None else None


def start_instruction_count(pids: list[int]) -> subprocess.Popen[str] | None:
    if shutil.which("perf") is None:
        return None
    counter = subprocess.Popen(["perf", "stat", "-x", ",", "-e", "instructions", "-p",
                                ",".join(map(str, pids))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # attached before the load starts
    return counter if counter.poll() is None else None


def stop_instruction_count(counter: subprocess.Popen[str] | None) -> float | None:
    """Instructions counted since start, or None where perf may not count (no PMU, paranoid)."""
    if counter is None:
        return None
    counter.send_signal(signal.SIGINT)
    _, err = counter.communicate(timeout=30)
    for line in err.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions") and fields[0].isdigit():
            return float(fields[0])
    return None


def _kinsn(value: float | None) -> str:
    return f"{value / 1000:,.0f}k" if value is not None else "n/a (no perf)"


def load(port: int, requests: list[Request], concurrency: int) -> Result:
    try:
        import uvloop

        return uvloop.run(run("127.0.0.1", port, requests, concurrency, keep_bodies=True))
    except ImportError:
        return asyncio.run(run("127.0.0.1", port, requests, concurrency, keep_bodies=True))


def host_speed(instructions: float | None, cpu_us: float) -> float | None:
    """Billions of instructions the host ran per CPU second of the bare server: the same code
    every time, so this says how fast the machine was in that minute (its neighbours vary it)."""
    return instructions / cpu_us / 1000 if instructions is not None and cpu_us > 0 else None


SLICES = 4  # each server's load, in slices taken in turn: y b b y y b b y


def start_servers(cfg: Path, port: int, bare_port: int, workers: int, bare_workers: int
                  ) -> tuple[list[subprocess.Popen[bytes]], list[int], list[int]]:
    """(processes to stop, yanxiu's serving pids, the bare handler's pids), all listening."""
    more = ["--workers", str(workers)] if workers > 1 else []
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg), *more],
                              cwd=ROOT, stdout=subprocess.DEVNULL)
    reuse = ["--reuse-port"] if bare_workers > 1 else []
    bares = [subprocess.Popen([sys.executable, "-m", "bench.bare_server", str(bare_port), SECRET, *reuse],
                              cwd=ROOT, stdout=subprocess.DEVNULL) for _ in range(bare_workers)]
    procs = [server, *bares]
    try:
        wait_port(port, server)
        for bare in bares:
            wait_port(bare_port, bare)
        serving = [server.pid]
        if workers > 1:
            deadline = time.monotonic() + 30
            while len(serving := children(server.pid)) < workers:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the workers did not start")
                time.sleep(0.1)
            time.sleep(1.0)  # every worker listening, not only the first
    except BaseException:
        stop_servers(procs)
        raise
    return procs, serving, [b.pid for b in bares]


def stop_servers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


def one_run(n: int, concurrency: int, workers: int = 1, bare_workers: int = 1
            ) -> tuple[Result, Result, int, int, float | None, float | None]:
    """One run: `n` check-ins against `yanxiu serve` and the same `n` requests against the bare
    handler, both servers up and loaded in turns (ABBA), so that both see the same minutes
    of a host whose speed swings within a minute."""
    with tempfile.TemporaryDirectory(prefix="yanxiu-bench-") as tmp:
        folder = Path(tmp)
        port, bare_port = free_port(), free_port()
        cfg = folder / "config.toml"
        write_config(cfg, db_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}", port=port,
                     files_dir=folder / "files")
        write_roster(folder / "roster.csv", n + 200)
        write_plan(folder / "plan.toml")
        yanxiu("roster", "import", str(folder / "roster.csv"), "--config", str(cfg))
        yanxiu("plan", "load", str(folder / "plan.toml"), "--config", str(cfg))

        procs, serving, bare_pids = start_servers(cfg, port, bare_port, workers, bare_workers)
        try:
            load(port, build_requests(200, offset=n), concurrency)  # warm-up: other teachers
            load(bare_port, build_requests(200, offset=n), concurrency)
            requests = build_requests(n)
            size = -(-n // SLICES)
            slices = [requests[i:i + size] for i in range(0, n, size)]
            served_parts: list[Result] = []
            bare_parts: list[Result] = []
            served_meter, bare_meter = Meter(serving), Meter(bare_pids)
            for k, part in enumerate(slices):
                turns = [(port, served_parts), (bare_port, bare_parts)]
                for target, parts in (turns if k % 2 == 0 else turns[::-1]):
                    parts.append(load(target, part, concurrency))
            served_cpu, served_ins = served_meter.per_request(n)
            bare_cpu, bare_ins = bare_meter.per_request(n)
        finally:
            stop_servers(procs)
        served, baseline = Result.joined(served_parts), Result.joined(bare_parts)
        acked = sum(1 for b in served.bodies if "签到成功" in reply_text(b))
        con = sqlite3.connect(folder / "bench.db")
        stored = con.execute("SELECT COUNT(*), COUNT(DISTINCT person_id) FROM checkin "
                             "WHERE msg_id LIKE 'msgBENCH%' AND msg_id < ?", (f"msgBENCH{n:08d}",)).fetchone()
        con.close()
        if stored[0] != stored[1]:
            raise SystemExit(f"DOUBLE-COUNTED: {stored[0]} rows for {stored[1]} people")
        print(f"  server CPU per request: yanxiu {served_cpu:.0f} µs, bare {bare_cpu:.0f} µs; "
              f"instructions per request: yanxiu {_kinsn(served_ins)}, bare {_kinsn(bare_ins)}")
        speed = host_speed(bare_ins, bare_cpu)
        if speed is not None:
            print(f"  host speed: {speed:.2f} G instructions per CPU second (the bare server's)")
        return served, baseline, acked, stored[0], speed, served_ins


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="yanxiu serve --workers N (default 2)")
    ap.add_argument("--bare-workers", type=int, default=1, help="bare handler processes (default 1)")
    args = ap.parse_args()
    print(f"check-in burst: n={args.n}, concurrency={args.concurrency}, runs={args.runs}, "
          f"cpus={os.cpu_count()}, yanxiu workers={args.workers}, bare processes={args.bare_workers}")
    rates, bases, ratios, p99s, p50s, speeds, costs = [], [], [], [], [], [], []
    for i in range(args.runs):
        served, baseline, acked, stored, speed, cost = one_run(args.n, args.concurrency,
                                                               args.workers, args.bare_workers)
        ratio = served.rate / baseline.rate
        print(f"run {i + 1}: yanxiu  {served.summary()}")
        print(f"run {i + 1}: bare    {baseline.summary()}")
        print(f"run {i + 1}: ratio {ratio:.2f}; acknowledged check-ins {acked}, stored {stored} "
              f"({'exactly once' if acked == stored else 'MISMATCH'})")
        if acked != stored:
            raise SystemExit("acknowledged and stored check-ins differ")
        rates.append(served.rate)
        bases.append(baseline.rate)
        ratios.append(ratio)
        p99s.append(served.percentile(0.99) * 1000)
        p50s.append(served.percentile(0.5) * 1000)
        if speed is not None:
            speeds.append(speed)
        if cost is not None:
            costs.append(cost)
    # a ratio pairs the two servers' loads of one run, taken in turns; the host's speed moves
    # between runs, so the median is taken over the runs' ratios, not of the two medians
    rate, base = median(rates), median(bases)
    print(f"median of {args.runs}: yanxiu {rate:,.0f}/s (target ≥ 5,000), bare {base:,.0f}/s, "
          f"ratio {median(ratios):.2f} (target ≥ 0.5), p50 {median(p50s):.1f} ms, "
          f"p99 {median(p99s):.1f} ms (target ≤ 25)"
          + (f"; host speed {median(speeds):.2f} G instructions/s" if speeds else ""))
    if costs:
        where = "on the server's core" if args.workers == 1 else f"summed over its {args.workers} workers"
        print(f"  5,000/s at yanxiu's {median(costs) / 1000:,.0f}k instructions a request needs "
              f"{5000 * median(costs) / 1e9:.2f} G instructions/s {where}")


if __name__ == "__main__":
    main()
