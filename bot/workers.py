"""`yanxiu serve --workers N`: N serving processes on one port, and the supervisor above them.

One Python process uses one core; at a check-in burst the event loop is the limit. N
workers each listen on the same port (SO_REUSEPORT: the kernel spreads the connections)
and write to the same PostgreSQL database, as any two instances do (SQLite is the
one-process default: several processes on it are refused, bot/cli.py). Every worker keeps a DingTalk Stream connection; worker 0 alone keeps the
WeCom WebSocket and the background jobs (see bot.app.create_app).

The supervisor migrates the schema once, starts the workers in their own session (so a
Ctrl+C reaches them only through it), passes SIGTERM/SIGINT on as SIGTERM, and starts a
worker again when one dies — unless it died within RESTART_AFTER_SECONDS of starting,
which means it cannot start at all: then it stops the others and exits with that code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

RESTART_AFTER_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 30.0
ORPHAN_CHECK_SECONDS = 1.0
WORKER_ENV = "YANXIU_WORKER"  # "index/count/supervisor pid:metrics folder", set by the supervisor


@dataclass(frozen=True, slots=True)
class Worker:
    index: int
    count: int
    metrics_dir: Path
    supervisor: int  # its pid: a worker whose supervisor is gone stops itself

    def to_env(self) -> str:
        return f"{self.index}/{self.count}/{self.supervisor}:{self.metrics_dir}"

    @classmethod
    def from_env(cls, value: str) -> Worker:
        ids, _, folder = value.partition(":")
        index, count, supervisor = ids.split("/")
        return cls(int(index), int(count), Path(folder), int(supervisor))

    @contextlib.asynccontextmanager
    async def orphan_watch(self) -> AsyncIterator[None]:
        """While inside: stop (as on SIGTERM) once the supervisor has died, even by kill -9,
        instead of serving on as an orphan that holds the port."""

        async def watch() -> None:
            while os.getppid() == self.supervisor:
                await asyncio.sleep(ORPHAN_CHECK_SECONDS)
            log.warning("worker %d: the supervisor is gone; stopping", self.index)
            os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(watch(), name="orphan-watch")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Supervisor:
    def __init__(self, argv: list[str], count: int) -> None:
        self.argv = argv  # the worker's command line, without the environment
        self.count = count
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="yanxiu-metrics-"))
        self.children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}  # index -> (process, started)
        self.stopping = False
        self.stop_deadline = 0.0
        self.exit_code = 0

    def spawn(self, index: int) -> None:
        worker = Worker(index, self.count, self.metrics_dir, os.getpid())
        env = {**os.environ, WORKER_ENV: worker.to_env()}
        proc = subprocess.Popen(self.argv, env=env, start_new_session=True)
        self.children[index] = (proc, time.monotonic())

    def stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        if not self.stopping:
            self.stopping = True
            self.stop_deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            for proc, _ in self.children.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                self.spawn(index)
            while self.children:
                self._reap_one()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for proc, _ in self.children.values():  # only after an error in this loop
                proc.kill()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return self.exit_code

    def _reap_one(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid:
                break
            if self.stopping and time.monotonic() > self.stop_deadline:
                for proc, _ in self.children.values():  # did not stop in time
                    proc.kill()
            time.sleep(0.1)
        index = next((i for i, (p, _) in self.children.items() if p.pid == pid), None)
        if index is None:
            return
        proc, started = self.children.pop(index)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if self.stopping:
            return
        if time.monotonic() - started < RESTART_AFTER_SECONDS:
            print(f"yanxiu: worker {index} exited ({_describe(code)}) while starting; stopping",
                  file=sys.stderr, flush=True)
            self.exit_code = code if code > 0 else 1
            self.stop()
            return
        log.warning("worker %d exited (%s); starting it again", index, _describe(code))
        self.spawn(index)


def _describe(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"


def worker_from_env() -> Worker | None:
    value = os.environ.get(WORKER_ENV)
    return Worker.from_env(value) if value else None
