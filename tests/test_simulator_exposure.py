"""The simulator lets whoever reaches it act as anyone on the roster: only the demo mounts it.

`yanxiu serve` with the example config answers 404 under /sim/; `[sim] enabled = true` is
taken only with a loopback `server.host`, and otherwise `serve` refuses to start, in one
line that names the key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench.checkin_burst import free_port, wait_port
from bot.config import ConfigError, config_from_mapping

ROOT = Path(__file__).resolve().parents[1]


def serve_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    """The example config's secrets and paths, given the documented way: the environment."""
    return {**os.environ,
            "YANXIU_SERVER_PORT": str(port),
            "YANXIU_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'yanxiu.db'}",
            "YANXIU_STORAGE_FILES_DIR": str(tmp_path / "files"),
            "YANXIU_DINGTALK_APP_SECRET": "example-app-secret",
            **extra}


def status_of(method: str, url: str) -> int:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_an_outsider_finds_no_simulator_on_a_server_started_with_the_example_config(
        tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.example.toml").read_text(encoding="utf-8"), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
                            cwd=tmp_path, env=serve_env(tmp_path, port),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, 60)
        base = f"http://127.0.0.1:{port}"
        assert status_of("GET", f"{base}/healthz") == 200  # the server is up and serving
        assert status_of("GET", f"{base}/sim/") == 404
        assert status_of("GET", f"{base}/sim/api/people") == 404
        assert status_of("POST", f"{base}/sim/api/send") in (404, 405)  # no forged 广播
        assert status_of("GET", f"{base}/") == 404  # no redirect into a simulator that is not there
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_refuses_to_start_a_simulator_reachable_from_other_machines(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[server]\nhost = "0.0.0.0"\nport = {port}\n\n[dingtalk]\nenabled = false\n\n'
        '[wecom]\nenabled = false\n\n[sim]\nenabled = true\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
                          cwd=tmp_path, env=serve_env(tmp_path, port), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "sim.enabled" in lines[0] and "0.0.0.0" in lines[0], done.stderr
    assert not (tmp_path / "yanxiu.db").exists()  # refused before anything was created


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_a_developer_may_mount_the_simulator_on_a_loopback_host(host: str) -> None:
    config = config_from_mapping({"server": {"host": host}, "sim": {"enabled": True}}, env={})
    assert config.sim.enabled


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "yanxiu.example.org"])
def test_the_simulator_is_refused_on_any_other_host(host: str) -> None:
    with pytest.raises(ConfigError, match=r"^sim\.enabled: "):
        config_from_mapping({"server": {"host": host}, "sim": {"enabled": True}}, env={})
    # the environment cannot switch it on behind the file's back either
    with pytest.raises(ConfigError, match=r"^sim\.enabled: "):
        config_from_mapping({"server": {"host": host}}, env={"YANXIU_SIM_ENABLED": "true"})


def test_the_simulator_is_off_unless_asked_for() -> None:
    assert not config_from_mapping({}, env={}).sim.enabled
