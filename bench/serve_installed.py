"""`yanxiu serve` as the README installs it, for the benches: `pip install -e ".[test]"` has
no uvloop (it is only in the `fast` extra), so unless `--uvloop` is given this process makes
`import uvloop` fail and `serve` runs on asyncio's own loop, whatever this venv holds.

`--clock-header`: the server's clock, for one request, is shifted by the seconds in that
request's `X-Bench-Clock-Shift` header (the rest of the process — scheduler, outbox — keeps
the real clock). The check-in burst uses it to send, within the same burst, the 签到 a
teacher taps before the session's check-in window opens (see bench/burst_mix.py). Nothing
else of the server is changed.

`--profile DIR`: SIGUSR1 starts a cProfile of the event loop's thread, SIGUSR2 stops it and
writes DIR/<n>.pstats (bench/profile_kinds.py drives it, one kind of message at a time).

Run: python -m bench.serve_installed [--uvloop] [--clock-header] [--profile DIR] serve --config …
"""

from __future__ import annotations

import argparse
import contextvars
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

SHIFT_HEADER = "X-Bench-Clock-Shift"
_shift: contextvars.ContextVar[timedelta | None] = contextvars.ContextVar("bench_shift", default=None)


def shifted_clock() -> datetime:
    """The real time, moved by the current request's shift (if any)."""
    shift = _shift.get()
    now = datetime.now(UTC)
    return now if shift is None else now + shift


def install_clock_header() -> None:
    """Give `create_app` the shifted clock, and let the DingTalk callback set the shift per
    request (before it reads the clock to verify the signature)."""
    import bot.app
    from platforms.dingtalk import CallbackEndpoint

    original_create = bot.app.create_app
    original_handle = CallbackEndpoint.handle

    def create_app(config: Any, **kw: Any) -> Any:
        kw.setdefault("clock", shifted_clock)
        return original_create(config, **kw)

    async def handle(self: CallbackEndpoint, request: Any) -> Any:
        value = request.headers.get(SHIFT_HEADER)
        _shift.set(timedelta(seconds=float(value)) if value else None)
        return await original_handle(self, request)

    bot.app.create_app = create_app  # type: ignore[assignment]
    CallbackEndpoint.handle = handle  # type: ignore[method-assign]


def install_profiler(folder: Path) -> None:
    """SIGUSR1: a new profile starts; SIGUSR2: it stops and is written to folder/<n>.pstats."""
    import cProfile

    folder.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"profile": None, "n": 0}

    def start(_sig: int, _frame: FrameType | None) -> None:
        state["profile"] = cProfile.Profile()
        state["profile"].enable()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profile = state["profile"]
        if profile is None:
            return
        profile.disable()
        state["n"] += 1
        profile.dump_stats(str(folder / f"{state['n']}.pstats"))
        (folder / f"{state['n']}.done").touch()
        state["profile"] = None

    handlers: dict[int, Callable[[int, FrameType | None], None]] = {
        signal.SIGUSR1: start, signal.SIGUSR2: stop}
    for sig, fn in handlers.items():
        signal.signal(sig, fn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uvloop", action="store_true", help="let serve use uvloop (the `fast` extra)")
    ap.add_argument("--clock-header", action="store_true", help=f"honour {SHIFT_HEADER}")
    ap.add_argument("--profile", type=Path, help="cProfile on SIGUSR1/SIGUSR2 into this folder")
    args, rest = ap.parse_known_args()
    if not args.uvloop:
        sys.modules["uvloop"] = None  # type: ignore[assignment]  # `import uvloop` → ImportError
    if args.clock_header:
        install_clock_header()
    if args.profile is not None:
        install_profiler(args.profile)
    from bot.cli import main as yanxiu

    sys.exit(yanxiu(rest))


if __name__ == "__main__":
    main()
