"""config.toml plus YANXIU_<SECTION>_<KEY> environment overrides → frozen dataclasses.

Validation errors name the exact key (`ConfigError("dingtalk.mode: …")`); secrets are
kept in `Secret` wrappers whose repr never shows the value.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MAX_WORKERS = 64


class ConfigError(Exception):
    """A configuration problem, phrased as `<section.key>: <problem>`."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A credential. Printing it, logging it or putting it in an f-string shows `***`."""

    value: str = ""

    def __repr__(self) -> str:
        return "Secret('***')" if self.value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 1024 * 1024
    workers: int = 1  # serving processes on this machine (`serve --workers N`)
    link_secret: Secret = field(default_factory=Secret)  # signs dashboard links


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///./yanxiu.db"


@dataclass(frozen=True, slots=True)
class StorageConfig:
    files_dir: str = "./files"
    max_photo_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DingTalkConfig:
    enabled: bool = False
    mode: str = "http"
    app_key: Secret = field(default_factory=Secret)
    app_secret: Secret = field(default_factory=Secret)
    robot_code: str = ""
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"


@dataclass(frozen=True, slots=True)
class WeComConfig:
    enabled: bool = False
    mode: str = "http"
    bot_id: str = ""
    bot_token: Secret = field(default_factory=Secret)
    bot_encoding_aes_key: Secret = field(default_factory=Secret)
    bot_secret: Secret = field(default_factory=Secret)
    corp_id: str = ""
    corp_secret: Secret = field(default_factory=Secret)
    agent_id: int = 0
    token: Secret = field(default_factory=Secret)
    encoding_aes_key: Secret = field(default_factory=Secret)
    api_base: str = "https://qyapi.weixin.qq.com"
    ws_url: str = "wss://openws.work.weixin.qq.com"


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The local chat simulator (/sim/): anyone who reaches it can act as anyone on the
    roster, so only `yanxiu demo` mounts it; `serve` only with this set and a loopback host."""

    enabled: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    dingtalk: DingTalkConfig = field(default_factory=DingTalkConfig)
    wecom: WeComConfig = field(default_factory=WeComConfig)
    sim: SimConfig = field(default_factory=SimConfig)


_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "storage": StorageConfig,
    "dingtalk": DingTalkConfig,
    "wecom": WeComConfig,
    "sim": SimConfig,
}

_MODES = {"dingtalk": ("http", "stream"), "wecom": ("http", "websocket")}
_URL_KEYS = {
    ("server", "public_base_url"),
    ("dingtalk", "api_base"),
    ("dingtalk", "oapi_base"),
    ("wecom", "api_base"),
}


def _coerce(section: str, key: str, kind: Any, value: Any) -> Any:
    name = f"{section}.{key}"
    if kind in ("Secret", Secret):
        if not isinstance(value, str):
            raise ConfigError(f"{name}: must be a string")
        return Secret(value)
    if kind in ("bool", bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{name}: must be true or false")
    if kind in ("int", int):
        if isinstance(value, bool):
            raise ConfigError(f"{name}: must be an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: must be an integer") from None
    if not isinstance(value, str):
        raise ConfigError(f"{name}: must be a string")
    return value


def _section(section: str, cls: type, raw: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown key")
    values: dict[str, Any] = {}
    for name, f in known.items():
        env_value = env.get(f"YANXIU_{section.upper()}_{name.upper()}")
        if env_value is not None:
            values[name] = _coerce(section, name, f.type, env_value)
        elif name in raw:
            values[name] = _coerce(section, name, f.type, raw[name])
    built = cls(**values)
    _check(section, built)
    return built


def _check(section: str, built: Any) -> None:
    if section in _MODES and built.mode not in _MODES[section]:
        allowed = " or ".join(f'"{m}"' for m in _MODES[section])
        raise ConfigError(f"{section}.mode: must be {allowed}")
    for sec, key in _URL_KEYS:
        if sec == section:
            parts = urlsplit(getattr(built, key))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"{section}.{key}: must be an http(s) URL")
    if section == "server" and not 0 < built.port < 65536:
        raise ConfigError("server.port: must be between 1 and 65535")
    if section == "server" and not 1 <= built.workers <= MAX_WORKERS:
        raise ConfigError(f"server.workers: must be between 1 and {MAX_WORKERS}")
    if section == "database" and "://" not in built.url:
        raise ConfigError("database.url: must be a SQLAlchemy URL such as sqlite+aiosqlite:///./yanxiu.db")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_loopback(host: str) -> bool:
    """Only this machine can reach a server listening on `host`."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_across(config: Config) -> None:
    """Rules between sections: several serving processes share PostgreSQL, not a SQLite file;
    the simulator lets anyone act as anyone, so never beyond loopback."""
    if config.server.workers > 1 and config.database.url.startswith("sqlite"):
        raise ConfigError(
            f"server.workers: {config.server.workers} 个服务进程要共用 PostgreSQL（database.url = "
            "\"postgresql+asyncpg://…\"）；SQLite 是单进程的内置数据库，请设 workers = 1")
    if config.sim.enabled and not is_loopback(config.server.host):
        raise ConfigError(
            f"sim.enabled: 模拟器可以冒充任何人，只能在 server.host 为本机地址（127.0.0.1）时开启；"
            f"现在 server.host = {config.server.host!r}。请删除 [sim] enabled = true")


def config_from_mapping(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from parsed TOML and the environment; raise ConfigError naming the key."""
    env = os.environ if env is None else env
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section")
    built = {}
    for section, cls in _SECTIONS.items():
        raw = data.get(section, {})
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{section}: must be a table")
        built[section] = _section(section, cls, raw, env)
    config = Config(**built)
    _check_across(config)
    return config


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read config.toml; a missing file or bad TOML is a ConfigError with the path."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (copy config.example.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return config_from_mapping(data, env)
