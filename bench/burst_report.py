"""The check-in burst's servers and figures: per-kind latencies, what is stored, the printout
of each run and the medians over the runs (bench/checkin_burst.py drives them)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.burst_mix import KINDS, Check, Message
from bench.loadgen import Result, median, percentile

P99_FACTOR = 1.5  # a kind's p99 may be at most this times the first check-in's


@dataclass
class KindFigures:
    count: int
    p50_ms: float
    p99_ms: float


@dataclass
class Stored:
    checkins: dict[str, list[str]]  # dingtalk userid -> msg ids of their stored check-ins
    leaves: Counter[str]  # dingtalk userid -> leave rows


@dataclass
class Target:
    """One server of a run: yanxiu or the bare handler, on asyncio's loop or uvloop."""

    name: str
    yanxiu: bool
    uvloop: bool
    db: Path | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    warm: Result | None = None
    parts: list[Result] = field(default_factory=list)
    result: Result | None = None
    cpu_us: float | None = None  # the server's CPU time per measured request
    sys_us: float | None = None  # of which in the kernel (syscalls: sockets, fsync, futex)
    check: Check | None = None
    stored: Stored | None = None
    kinds: dict[str, KindFigures] = field(default_factory=dict)

    @property
    def loop(self) -> str:
        return "uvloop" if self.uvloop else "asyncio"


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU time a process has used so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def kind_figures(messages: Sequence[Message], start: int, result: Result) -> dict[str, KindFigures]:
    """p50/p99 per kind of the burst (messages[start:]); redeliveries also by the kind of
    the message they repeat ("redeliver<progress")."""
    by: dict[str, list[float]] = {}
    for m, (latency, status) in zip(messages[start:], result.by_request, strict=True):
        if not status:
            continue
        by.setdefault(m.kind, []).append(latency)
        if m.kind == "redeliver" and m.original is not None:
            by.setdefault(f"redeliver<{messages[m.original].kind}", []).append(latency)
    return {k: KindFigures(len(v), percentile(v, 0.5) * 1000, percentile(v, 0.99) * 1000)
            for k, v in by.items()}


def stored_records(db: Path) -> Stored:
    con = sqlite3.connect(db)
    try:
        checkins: dict[str, list[str]] = {}
        for user, msg_id in con.execute("SELECT p.dingtalk_userid, c.msg_id FROM checkin c "
                                        "JOIN person p ON p.id = c.person_id"):
            checkins.setdefault(user, []).append(msg_id)
        leaves = Counter(u for (u,) in con.execute(
            "SELECT p.dingtalk_userid FROM leave l JOIN person p ON p.id = l.person_id"))
    finally:
        con.close()
    return Stored(checkins, leaves)


def exactly_once(check: Check, stored: Stored) -> tuple[bool, str]:
    """Every acknowledged check-in stored once, with the msgId acknowledged; nothing stored
    twice; stored but unacknowledged only where an answer was lost; every leave stored."""
    acked = {f"bt-{p:06d}": m for p, m in check.acked_checkins.items()}
    twice = [u for u, ids in stored.checkins.items() if len(ids) > 1]
    missing = [u for u, m in acked.items() if stored.checkins.get(u) != [m]]
    extra = [u for u in stored.checkins if u not in acked]
    leaves_missing = [p for p in check.acked_leaves if stored.leaves[f"bt-{p:06d}"] != 1]
    ok = not twice and not missing and not leaves_missing and (not extra or check.unanswered > 0)
    return ok, (f"acknowledged check-ins {len(acked)}, stored {sum(map(len, stored.checkins.values()))}"
                f" ({'exactly once' if ok else 'MISMATCH'}: twice {len(twice)}, acknowledged but "
                f"not stored as acknowledged {len(missing)}, stored unacknowledged {len(extra)}); "
                f"leave acknowledged {len(check.acked_leaves)}, not stored {len(leaves_missing)}")


def _pair(targets: list[Target], loop: str) -> tuple[Target, Target]:
    served = next(t for t in targets if t.yanxiu and t.loop == loop)
    bare = next(t for t in targets if not t.yanxiu and t.loop == loop)
    return served, bare


def _loops(targets: list[Target]) -> list[str]:
    return [t.loop for t in targets if t.yanxiu]


def ratio(targets: list[Target], loop: str) -> float:
    served, bare = _pair(targets, loop)
    assert served.result is not None and bare.result is not None
    return served.result.rate / bare.result.rate


FAILED: list[str] = []


def print_run(i: int, targets: list[Target]) -> None:
    for loop in _loops(targets):
        served, bare = _pair(targets, loop)
        assert served.result is not None and bare.result is not None
        assert served.check is not None and served.stored is not None
        for t in (served, bare):
            assert t.result is not None
            cpu = (f"; server CPU {t.cpu_us:.0f} µs a request ({t.sys_us:.0f} in the kernel)"
                   if t.cpu_us is not None else "")
            print(f"run {i}: {t.name:14s} {t.result.summary()}{cpu}")
        print(f"run {i}: ratio ({loop}) {ratio(targets, loop):.2f}")
        first = served.kinds.get("first")
        cells = []
        for name, f in sorted(served.kinds.items(), key=lambda kv: _order(kv[0])):
            rel = f" = {f.p99_ms / first.p99_ms:.2f}× first" if first and name != "first" else ""
            cells.append(f"{name} {f.count}: p50 {f.p50_ms:.1f} p99 {f.p99_ms:.1f} ms{rel}")
        print(f"  per kind ({served.name}): " + "; ".join(cells))
        check = served.check
        ok, summary = exactly_once(check, served.stored)
        wrong = dict(check.wrong)
        print(f"  answers: {'as expected' if not wrong else f'NOT AS EXPECTED {wrong}'}"
              f"{f', unanswered {check.unanswered}' if check.unanswered else ''}; {summary}")
        for example in check.examples:
            print(f"    e.g. {example}")
        if not ok or wrong:
            FAILED.append(f"run {i} {served.name}")
    if len(_loops(targets)) == 2:
        print(f"run {i}: uvloop ÷ asyncio: " + ", ".join(
            f"{kind} {_rate(targets, kind, 'uvloop') / _rate(targets, kind, 'asyncio'):.2f}×"
            for kind in ("yanxiu", "bare")))


def _rate(targets: list[Target], kind: str, loop: str) -> float:
    t = next(t for t in targets if t.yanxiu == (kind == "yanxiu") and t.loop == loop)
    assert t.result is not None
    return t.result.rate


def _order(name: str) -> tuple[int, str]:
    base = name.split("<")[0]
    return (KINDS.index(base) if base in KINDS else len(KINDS), name)


def print_medians(runs: list[list[Target]]) -> None:
    """Medians over the runs; a ratio pairs the servers of one run, so the median is taken
    over the runs' ratios, not of two medians."""
    n = len(runs)
    for loop in _loops(runs[0]):
        pairs = [_pair(targets, loop) for targets in runs]
        rates = [s.result.rate for s, _ in pairs if s.result]
        bares = [b.result.rate for _, b in pairs if b.result]
        p99s = [s.result.percentile(0.99) * 1000 for s, _ in pairs if s.result]
        p50s = [s.result.percentile(0.5) * 1000 for s, _ in pairs if s.result]
        ratios = [ratio(targets, loop) for targets in runs]
        print(f"median of {n} ({loop}): yanxiu {median(rates):,.0f}/s, bare {median(bares):,.0f}/s, "
              f"ratio {median(ratios):.2f} (target ≥ 0.75; runs {', '.join(f'{r:.2f}' for r in ratios)}), "
              f"p50 {median(p50s):.1f} ms, p99 {median(p99s):.1f} ms (target ≤ 25)")
        names = sorted({k for s, _ in pairs for k in s.kinds}, key=_order)
        first = median([s.kinds["first"].p99_ms for s, _ in pairs if "first" in s.kinds] or [float("nan")])
        cells = []
        for name in names:
            p50 = median([s.kinds[name].p50_ms for s, _ in pairs if name in s.kinds])
            p99 = median([s.kinds[name].p99_ms for s, _ in pairs if name in s.kinds])
            mark = "" if name == "first" or p99 <= P99_FACTOR * first else " OVER 1.5×"
            cells.append(f"{name} p50 {p50:.1f} p99 {p99:.1f} ms ({p99 / first:.2f}×){mark}")
        print("  per kind: " + "; ".join(cells))
        cpus = [(s.cpu_us, s.sys_us) for s, _ in pairs if s.cpu_us is not None and s.sys_us is not None]
        bare_cpus = [(b.cpu_us, b.sys_us) for _, b in pairs if b.cpu_us is not None and b.sys_us is not None]
        if cpus and bare_cpus:
            print(f"  server CPU a request: yanxiu {median([c for c, _ in cpus]):.0f} µs "
                  f"({median([k for _, k in cpus]):.0f} in the kernel), bare "
                  f"{median([c for c, _ in bare_cpus]):.0f} µs ({median([k for _, k in bare_cpus]):.0f})")
    if len(_loops(runs[0])) == 2:
        for kind in ("yanxiu", "bare"):
            gains = [_rate(t, kind, "uvloop") / _rate(t, kind, "asyncio") for t in runs]
            print(f"  uvloop ÷ asyncio, {kind}: median {median(gains):.2f}× "
                  f"(runs {', '.join(f'{g:.2f}' for g in gains)})")
    if FAILED:
        raise SystemExit(f"answers or stored records not as expected in: {', '.join(FAILED)}")
