"""Profile: what each kind of the check-in burst's messages costs `yanxiu serve`, one kind at a
time against one server (the burst's database: roster, plan, bound school groups, and a
warm-up of the whole mix), so that the kinds can be compared within one run.

Phases, in order: first, repeat, redeliver<first, progress, redeliver<progress, closed,
leave (bench/burst_mix.py says what each is), `--k` messages each at `--concurrency`.
  --tool callgrind  the server runs under valgrind's callgrind, instrumented only during
                    each phase: instructions per request (stable on a busy machine) and the
                    top C functions (inclusive) of each phase;
  --tool cprofile   cProfile of the event loop's thread during each phase (SIGUSR1/SIGUSR2,
                    bench/serve_installed.py --profile): the top Python functions by own time
                    and by time inside, per request, and each phase's calls per request;
  --tool pyspy      py-spy samples the server during each phase, only the thread holding the
                    GIL (--gil: where the Python side spends CPU, not threads waiting): the top
                    functions by own samples and by samples inside; the stacks are kept in
                    <out>/<phase>.folded (flamegraph.pl or speedscope draw them).
Rounds (`--rounds`) repeat the phases, new teachers each time; all rounds are reported.

Run: python -m bench.profile_kinds [--tool cprofile] [--k 1000] [--concurrency 16]
        [--rounds 2] [--out /tmp/yanxiu-profile] [--uvloop]
Only 127.0.0.1 is contacted; the server it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.burst_mix import DEFAULT_MIX, MixBuilder, to_requests
from bench.checkin_burst import (
    ROOT,
    SECRET,
    free_port,
    load,
    prepare_yanxiu,
    session_start,
    wait_port,
    write_plan,
    write_roster,
)
from bot.demo import TZ

PHASES = [("first", None), ("repeat", None), ("redeliver", "first"), ("progress", None),
          ("redeliver", "progress"), ("closed", None), ("leave", None)]
WARMUP = 300


def phase_label(kind: str, of: str | None) -> str:
    return f"{kind}<{of}" if of else kind


def server_argv(tool: str, cfg: Path, out: Path, uvloop: bool) -> list[str]:
    serve = [sys.executable, "-m", "bench.serve_installed", "--clock-header",
             *(["--uvloop"] if uvloop else []),
             *(["--profile", str(out / "pstats")] if tool == "cprofile" else []),
             "serve", "--config", str(cfg)]
    if tool != "callgrind":
        return serve
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=no",
            f"--callgrind-out-file={out}/callgrind.out.%p", *serve]


def py_spy() -> str:
    """py-spy from this venv (`pip install py-spy`), else from PATH."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else "py-spy"


class Instrument:
    """Turns the chosen tool on and off around a phase and collects what it saw."""

    def __init__(self, tool: str, pid: int, out: Path) -> None:
        self.tool, self.pid, self.out = tool, pid, out
        self.spy: subprocess.Popen[bytes] | None = None
        self.dumps = 0
        self.rate = 400  # py-spy samples a second

    def start(self, label: str) -> None:
        if self.tool == "callgrind":
            subprocess.run(["callgrind_control", "-z", str(self.pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-i", "on", str(self.pid)], check=True, capture_output=True)
        elif self.tool == "cprofile":
            os.kill(self.pid, signal.SIGUSR1)
            time.sleep(0.05)
        else:
            self.spy = subprocess.Popen(
                [py_spy(), "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
                 "--gil", "--nonblocking", "-o", str(self.out / f"{label}.folded")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached before the load starts

    def stop(self, label: str) -> Path:
        if self.tool == "callgrind":
            subprocess.run(["callgrind_control", "-i", "off", str(self.pid)], check=True, capture_output=True)
            self.dumps += 1
            dump = self.out / f"callgrind.out.{self.pid}.{self.dumps}"
            control = subprocess.run(["callgrind_control", "-d", re.sub(r"\W", "_", label), str(self.pid)],
                                     capture_output=True, text=True)
            deadline = time.monotonic() + 120
            while not dump.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"callgrind wrote no dump: {control.stdout} {control.stderr}")
                time.sleep(0.2)
            time.sleep(1.0)  # written in full
            return dump
        if self.tool == "cprofile":
            self.dumps += 1
            os.kill(self.pid, signal.SIGUSR2)
            done = self.out / "pstats" / f"{self.dumps}.done"
            deadline = time.monotonic() + 30
            while not done.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("the server wrote no profile")
                time.sleep(0.05)
            return self.out / "pstats" / f"{self.dumps}.pstats"
        assert self.spy is not None
        self.spy.send_signal(signal.SIGINT)
        self.spy.wait(timeout=60)
        return self.out / f"{label}.folded"


def report_callgrind(path: Path, k: int, top: int) -> list[str]:
    """Instructions a request; their split by library (own cost) and the top functions."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", str(path)], capture_output=True,
                          text=True, check=True).stdout
    match = re.search(r"^\s*([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", text, re.M)
    total = int(match[1].replace(",", "")) if match else 0
    rows = re.findall(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)$", text, re.M)
    by_object: Counter[str] = Counter()
    functions: list[tuple[int, str]] = []
    for ir, where in rows[1:]:
        count = int(ir.replace(",", ""))
        obj = where.rsplit("[", 1)[-1].rstrip("]") if where.endswith("]") else "?"
        by_object[obj.rsplit("/", 1)[-1]] += count
        functions.append((count, where.split(" [")[0].rsplit("/", 1)[-1]))
    lines = [f"{total / k / 1000:,.0f}k instructions a request"]
    lines.append("  own instructions by library: " + ", ".join(
        f"{name} {n / k / 1000:,.0f}k" for name, n in by_object.most_common(6)))
    lines.append("  top functions (own, k instructions a request):")
    lines += [f"    {n / k / 1000:7,.1f}k  {where[:100]}" for n, where in functions[:top]]
    return lines


def report_cprofile(path: Path, k: int, top: int) -> list[str]:
    st = pstats.Stats(str(path))
    stats: dict = st.stats  # type: ignore[attr-defined]
    calls = sum(v[1] for v in stats.values())
    idle = sum(v[2] for key, v in stats.items() if key[2] == "<method 'poll' of 'select.epoll' objects>")
    total = sum(v[2] for v in stats.values()) - idle
    lines = [f"{total / k * 1e6:,.0f} µs a request on the loop's thread (its epoll wait, "
             f"{idle / k * 1e6:,.0f} µs, left out), {calls / k:,.0f} calls a request"]

    def name(key: tuple[str, int, str]) -> str:
        file, line, fn = key
        short = file.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        return f"{short}:{line}({fn})"

    lines.append("  by own time (µs a request, calls a request):")
    for key, v in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        lines.append(f"    {v[2] / k * 1e6:7.1f} {v[1] / k:7.1f}  {name(key)}")
    lines.append("  by time inside (project code and SQL entry points):")
    ours = [(key, v) for key, v in stats.items()
            if str(ROOT) in key[0] or key[2] in ("execute", "scalar", "scalars", "commit", "render")]
    for key, v in sorted(ours, key=lambda kv: -kv[1][3])[:top]:
        lines.append(f"    {v[3] / k * 1e6:7.1f} {v[1] / k:7.1f}  {name(key)}")
    return lines


PROJECT = {"bot", "handlers", "storage", "templates", "bench"}  # py-spy names their files so
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def _short(frame: str) -> tuple[str, bool]:
    """py-spy's "fn (file:line)" as "fn (file)", and whether it is the project's code."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, False
    fn, file = match[1], match[2]
    ours = file.startswith(str(ROOT)) or file.split("/")[0] in PROJECT
    return f"{fn} ({file.split('site-packages/')[-1].replace(str(ROOT) + '/', '')})", ours


# where a sample's stack says the time went, first match wins (yanxiu's and the bare handler's)
SPLIT = [
    ("writer: Jinja render", ("_write_loop", "render_reply")),
    ("writer: the handler's own statements", ("_write_loop", "unit.<locals>.handle")),
    ("writer: stored-once guard (inbound)", ("_write_loop", "handle_once")),
    ("writer: the batch (Session, BEGIN, commit hand-off)", ("_write_loop",)),
    ("handler: read-only route outside the writer", ("dispatch (bot", "handle_progress")),
    ("handler: verify signature", ("verify_callback",)),
    ("handler: read body", ("read_capped",)),
    ("handler: read body", ("BaseRequest.read",)),
    ("handler: JSON / parse_callback", ("parse_callback",)),
    ("handler: JSON / parse_callback", ("loads",)),
    ("handler: dispatch (command, directory, context, queue)", ("dispatch (bot",)),
    ("handler: the rest (response body)", ("CallbackEndpoint.handle",)),
    ("handler: the rest (response body)", ("callback (bench",)),
    ("aiosqlite's threads", ("_connection_worker_thread",)),
    ("thread pool (the commit)", ("_worker (concurrent",)),
    ("aiohttp + asyncio (HTTP parsing, task steps, response writing)", ("_run_once",)),
]


def split_of(stack: str) -> str:
    for name, needles in SPLIT:
        if all(n in stack for n in needles):
            return name
    return "other threads / no Python frame"


def report_pyspy(path: Path, k: int, top: int, rate: int = 400) -> list[str]:
    own: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    split: Counter[str] = Counter()
    ours: set[str] = set()
    samples = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = []
        for raw in stack.split(";"):
            frame, mine = _short(raw)
            frames.append(frame)
            if mine:
                ours.add(frame)
        samples += n
        own[frames[-1]] += n
        split[split_of(stack)] += n
        for f in set(frames):
            inside[f] += n
    per = 1e6 / rate / k  # µs a request that one sample stands for
    lines = [f"{samples} samples holding the GIL = {samples * per:,.0f} µs a request"]
    lines.append("  where (µs a request):")
    lines += [f"    {n * per:7.1f}  {name}" for name, n in split.most_common()]
    lines.append("  by own samples:")
    lines += [f"    {n / samples * 100:5.1f}%  {f[:110]}" for f, n in own.most_common(top)]
    lines.append("  by samples inside (project code):")
    lines += [f"    {n / samples * 100:5.1f}%  {f[:110]}" for f, n in inside.most_common()
              if f in ours][:top]
    return lines


REPORTS = {"callgrind": report_callgrind, "cprofile": report_cprofile, "pyspy": report_pyspy}


def rate_of(args: argparse.Namespace) -> dict[str, int]:
    return {"rate": args.rate} if args.tool == "pyspy" else {}


def run_phases(args: argparse.Namespace, builder: MixBuilder, port: int,
               instrument: Instrument | None, label_prefix: str, k: int) -> None:
    """Every phase once: `k` messages of one kind; instrumented and reported unless None."""
    now_ms = int(time.time() * 1000)
    for kind, of in PHASES:
        if instrument is not None and args.phases and phase_label(kind, of) not in args.phases:
            continue
        label = f"{label_prefix}{phase_label(kind, of)}"
        builder.shares, builder.redeliver_of = {kind: 1.0}, of
        requests = to_requests(builder.draw(k, f"msg{label}-"), SECRET, now_ms)
        if instrument is None:
            load(port, requests, args.concurrency)
            continue
        instrument.start(label)
        result = load(port, requests, args.concurrency)
        report = REPORTS[args.tool](instrument.stop(label), k, args.top, **rate_of(args))
        print(f"== {label}: {result.rate:,.0f}/s, p99 {result.percentile(0.99) * 1000:.1f} ms, "
              f"statuses {result.statuses}; {report[0]}")
        for line in report[1:]:
            print(line)
        sys.stdout.flush()


def bare_phase(args: argparse.Namespace, builder: MixBuilder) -> None:
    """The bare handler (bench/bare_server.py) under the same tool: the same first check-ins."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare_server", str(port), SECRET, *(["--uvloop"] if args.uvloop else [])]
    if args.tool == "callgrind":
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={args.out}/callgrind.out.%p", *argv]
    server = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=(args.out / "bare.log").open("w"))
    try:
        wait_port(port, server, seconds=300)
        now_ms = int(time.time() * 1000)
        builder.shares, builder.redeliver_of = {"first": 1.0}, None
        load(port, to_requests(builder.draw(WARMUP, "msgBAREWARM"), SECRET, now_ms), args.concurrency)
        requests = to_requests(builder.draw(args.k, "msgBARE"), SECRET, now_ms)
        instrument = Instrument(args.tool, server.pid, args.out)
        instrument.rate = args.rate
        instrument.start("bare")
        result = load(port, requests, args.concurrency)
        report = REPORTS[args.tool](instrument.stop("bare"), args.k, args.top, **rate_of(args))
        print(f"== bare handler: {result.rate:,.0f}/s; {report[0]}")
        for line in report[1:]:
            print(line)
    finally:
        server.terminate()
        server.wait(timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", choices=("callgrind", "cprofile", "pyspy"), default="cprofile")
    ap.add_argument("--k", type=int, default=1000, help="messages in each phase")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--rate", type=int, default=400, help="py-spy samples a second")
    ap.add_argument("--phases", type=lambda v: v.split(","), default=None,
                    help="only these phases, e.g. first,repeat (all are still run once, unmeasured)")
    ap.add_argument("--bare", action="store_true",
                    help="also the bare handler, the same first check-ins (callgrind, pyspy)")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "yanxiu-profile")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    warm_k = max(50, args.k // 4)
    with tempfile.TemporaryDirectory(prefix="yanxiu-profile-") as tmp:
        folder = Path(tmp)
        roster_size = 2 * WARMUP + (args.rounds * args.k + warm_k + args.k) * len(PHASES) + 100
        write_roster(folder / "roster.csv", roster_size)
        write_plan(folder / "plan.toml")
        cfg, _ = prepare_yanxiu(folder / "yanxiu", folder / "roster.csv", folder / "plan.toml")
        port = free_port()
        text = cfg.read_text(encoding="utf-8")
        cfg.write_text("\n".join(f"port = {port}" if line.startswith("port = ") else line
                                 for line in text.splitlines()), encoding="utf-8")
        tomorrow = session_start(datetime.now(UTC).astimezone(TZ)).date() + timedelta(days=1)
        builder = MixBuilder(dict(DEFAULT_MIX), tomorrow)
        builder.roster_size = roster_size
        server = subprocess.Popen(server_argv(args.tool, cfg, args.out, args.uvloop), cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=(args.out / "server.log").open("w"))
        try:
            wait_port(port, server, seconds=300 if args.tool == "callgrind" else 30)
            load(port, to_requests(builder.draw(WARMUP, "msgWARM"), SECRET, int(time.time() * 1000)),
                 args.concurrency)
            builder.gap = warm_k  # a phase refers to earlier phases only
            run_phases(args, builder, port, None, "warm-", warm_k)  # every path run once before
            builder.gap = args.k
            print(f"profile ({args.tool}): {args.k} messages a phase at concurrency {args.concurrency}, "
                  f"{args.rounds} rounds, loop {'uvloop' if args.uvloop else 'asyncio'}; output in {args.out}")
            instrument = Instrument(args.tool, server.pid, args.out)
            instrument.rate = args.rate
            for r in range(args.rounds):
                run_phases(args, builder, port, instrument, f"r{r + 1}-", args.k)
        finally:
            server.terminate()
            server.wait(timeout=120)
    if args.bare and args.tool != "cprofile":
        bare_phase(args, builder)


if __name__ == "__main__":
    main()
