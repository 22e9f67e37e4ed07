"""`yanxiu serve` as a real subprocess on 127.0.0.1, for the crash and two-instance tests.

A `ServeProcess` writes its config, starts `python -m bot.cli serve`, waits for the port and
is always killed on exit. `post_checkin` sends one signed DingTalk callback the way DingTalk
does and answers (status, reply text), or None when the server never answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import aiohttp

from bench.checkin_burst import free_port, reply_text, wait_port, write_config
from bench.loadgen import Request
from kernel.plan import plan_from_text
from kernel.roster import load_roster
from storage.db import Database
from storage.queries.roster import apply_roster
from storage.queries.terms import save_plan

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


async def seed(db_url: str, roster: Path, plan_text: str, now: datetime) -> None:
    """Import the roster and load the plan through the same code as the CLI."""
    rows, rejected = load_roster(roster)
    assert not rejected, rejected
    db = Database(db_url)
    try:
        await db.upgrade()
        async with db.sessions() as s, s.begin():
            await apply_roster(s, rows)
            await save_plan(s, plan_from_text(plan_text), plan_text, now)
    finally:
        await db.close()


@dataclass
class ServeProcess:
    """One `yanxiu serve`; `start()` again after a kill restarts it on the same port."""

    folder: Path
    db_url: str
    name: str = "serve"
    sim: bool = False
    workers: int = 1  # > 1: the process is the supervisor of `serve --workers N`
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    def spawn(self) -> subprocess.Popen[bytes]:
        """Write the config and start the process (returns at once)."""
        cfg = self.folder / f"{self.name}.toml"
        write_config(cfg, db_url=self.db_url, port=self.port, files_dir=self.folder / "files",
                           sim=self.sim)
        self._log = self.log_path.open("ab")
        env = {**os.environ, "YANXIU_LOG_LEVEL": "INFO"}
        workers = ["--workers", str(self.workers)] if self.workers > 1 else []
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg), *workers],
                                     cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        return self.proc

    async def start(self) -> None:
        """Spawn, then wait until the port answers."""
        proc = self.spawn()
        try:
            await asyncio.to_thread(wait_port, self.port, proc, START_TIMEOUT_S)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.name}: {exc}; log:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill (if running) and reap the process; safe to call twice. A supervisor gets
        SIGTERM first, so that it stops its workers."""
        if self.proc is not None:
            if self.workers > 1 and self.proc.poll() is None:
                self.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=30)
            self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""


async def post_checkin(http: aiohttp.ClientSession, base: str, request: Request,
                       timeout_s: float = 20.0) -> tuple[int, str] | None:
    """POST one prepared callback; (status, reply text) or None when it was never answered."""
    try:
        async with http.post(base + request.path, data=request.body, headers=dict(request.headers),
                             timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return resp.status, reply_text(await resp.read())
    except (aiohttp.ClientError, TimeoutError, ConnectionError):
        return None


def msg_id_of(request: Request) -> str:
    return str(json.loads(request.body)["msgId"])


def with_msg_id(request: Request, msg_id: str, **changes: Any) -> Request:
    """The same signed callback carrying another msgId (and any other field changes)."""
    body = {**json.loads(request.body), "msgId": msg_id, **changes}
    return Request(request.path, request.headers, json.dumps(body, ensure_ascii=False).encode())
