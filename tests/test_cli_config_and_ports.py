"""The operator's command line: --config wherever it is typed, the default database named,
and `demo`/`serve` on a port another program holds: one line, exit 1, nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.db import Database
from storage.models import Person, Term
from tests.conftest import DATA

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 120


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def write_config(path: Path, db: Path, port: int | None = None, url: str | None = None) -> Path:
    server = f'[server]\nhost = "127.0.0.1"\nport = {port}\n' if port else ""
    path.write_text(f'{server}[database]\nurl = "{url or sqlite_url(db)}"\n'
                    f'[storage]\nfiles_dir = "{path.parent / "files"}"\n', encoding="utf-8")
    return path


async def _counts(db_file: Path) -> tuple[int, int]:
    db = Database(sqlite_url(db_file))
    try:
        async with db.sessions() as s:
            people = await s.scalar(select(func.count()).select_from(Person))
            terms = await s.scalar(select(func.count()).select_from(Term))
            return int(people or 0), int(terms or 0)
    finally:
        await db.close()


def stored(db_file: Path) -> tuple[int, int] | None:
    """(people, terms) in a SQLite file, or None when the file was never created."""
    return asyncio.run(_counts(db_file)) if db_file.exists() else None


@pytest.fixture
def two_databases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """A working folder whose ./config.toml points at here.db, and other.toml at other.db."""
    monkeypatch.chdir(tmp_path)
    here, other = tmp_path / "here.db", tmp_path / "other.db"
    write_config(tmp_path / "config.toml", here)
    return here, other, write_config(tmp_path / "other.toml", other)


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_plan_and_roster_land_in_the_database_of_the_config_given(two_databases, where, capsys) -> None:
    here, other, cfg = two_databases

    def run(*command: str) -> int:
        given = ["--config", str(cfg)]
        return main([*given, *command] if where == "before" else [*command, *given])

    assert run("plan", "load", str(DATA / "spec_plan.toml")) == 0
    assert run("roster", "import", str(DATA / "roster.csv")) == 0
    assert "新增 8 人" in capsys.readouterr().out
    assert stored(other) == (8, 1)
    assert stored(here) is None  # ./config.toml's database was never touched


def test_without_config_the_commands_use_the_folders_config_toml(two_databases, capsys) -> None:
    here, other, _ = two_databases
    assert main(["roster", "import", str(DATA / "roster.csv")]) == 0
    assert stored(here) == (8, 0)
    assert stored(other) is None
    assert "默认数据库" not in capsys.readouterr().err


def test_db_upgrade_without_a_config_file_says_which_database_it_creates(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("YANXIU_DATABASE_URL", raising=False)
    assert main(["db", "upgrade"]) == 0
    [line] = capsys.readouterr().err.splitlines()
    assert "没有 ./config.toml" in line
    assert f"sqlite+aiosqlite:///./yanxiu.db（文件 {tmp_path.resolve() / 'yanxiu.db'}）" in line
    assert (tmp_path / "yanxiu.db").exists()


def test_db_upgrade_without_a_config_file_masks_the_password_of_the_database_it_names(
        tmp_path, monkeypatch, capsys) -> None:
    """The database URL may come from the environment with a password in it: it is named,
    the password is not. (The server on a closed port refuses, so nothing is created.)"""
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("YANXIU_DATABASE_URL", f"postgresql+asyncpg://yanxiu:s3cret-pw@127.0.0.1:{closed}/yanxiu")
    with contextlib.suppress(OSError):  # the refusal itself is not what this test is about
        main(["db", "upgrade"])
    first = capsys.readouterr().err.splitlines()[0]
    assert first == f"yanxiu: 没有 ./config.toml，使用默认数据库 postgresql+asyncpg://yanxiu:***@127.0.0.1:{closed}/yanxiu"


# --- a port another program holds ---------------------------------------------------------

@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on for the whole test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def yanxiu(args: list[str], tmpdir: Path, cwd: Path, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m bot.cli ARGS` (or a `-c` script) with its temp folders under `tmpdir`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmpdir)}
    env.pop("YANXIU_WORKER", None)
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "bot.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def assert_one_line_about(result: subprocess.CompletedProcess[str], port: int, hint: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""  # no "open http://…" banner for a server that never listened
    assert result.stderr == f"yanxiu: 端口 {port} 已被占用，{hint}\n"


def test_demo_on_a_busy_port_says_so_in_one_line_and_leaves_no_temp_folder(tmp_path, held_port) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    result = yanxiu(["demo", "--port", str(held_port)], tmpdir, tmp_path)
    assert_one_line_about(result, held_port, "请用 --port 换一个端口")
    assert list(tmpdir.iterdir()) == []


def test_demo_on_a_busy_port_keeps_the_data_dir_it_was_given(tmp_path, held_port) -> None:
    tmpdir, data = tmp_path / "tmp", tmp_path / "mine"
    tmpdir.mkdir()
    data.mkdir()
    (data / "yanxiu-demo.db").write_text("last week's demo", encoding="utf-8")
    result = yanxiu(["demo", "--port", str(held_port), "--data-dir", str(data)], tmpdir, tmp_path)
    assert_one_line_about(result, held_port, "请用 --port 换一个端口")
    assert (data / "yanxiu-demo.db").read_text(encoding="utf-8") == "last week's demo"
    assert list(tmpdir.iterdir()) == []


# The port is taken between the check and the bind: run_app's OSError is the same one line.
TAKEN_AFTER_CHECK = """
import sys
import bot.ports
bot.ports.bind_error = lambda host, port: None  # the check saw the port free
from bot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_demo_whose_port_is_taken_after_the_check_removes_its_temp_folder(tmp_path, held_port) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    result = yanxiu(["demo", "--port", str(held_port)], tmpdir, tmp_path, code=TAKEN_AFTER_CHECK)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == f"yanxiu: 端口 {held_port} 已被占用，请用 --port 换一个端口"
    assert "Traceback" not in result.stderr
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path, held_port, workers) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    # several workers share PostgreSQL; the port is refused before any database is reached
    url = "postgresql+asyncpg://yanxiu@127.0.0.1:9/yanxiu" if workers > 1 else None
    cfg = write_config(tmp_path / "serve.toml", tmp_path / "serve.db", held_port, url)
    result = yanxiu(["serve", "--config", str(cfg), "--workers", str(workers)], tmpdir, tmp_path)
    assert_one_line_about(result, held_port, f"请在 {cfg} 的 [server] 里换一个 port，或先停掉占用它的程序")
    assert list(tmpdir.iterdir()) == []
    assert not (tmp_path / "serve.db").exists()  # nothing was migrated for a server that cannot start


def test_serve_whose_port_is_taken_after_the_check_says_so_in_one_line(tmp_path, held_port) -> None:
    cfg = write_config(tmp_path / "serve.toml", tmp_path / "serve.db", held_port)
    result = yanxiu(["serve", "--config", str(cfg)], tmp_path, tmp_path, code=TAKEN_AFTER_CHECK)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"yanxiu: 端口 {held_port} 已被占用，请在 {cfg} 的 [server] 里换一个 port，或先停掉占用它的程序")
    assert "Traceback" not in result.stderr
