"""config.toml plus YANXIU_<SECTION>_<KEY> environment overrides → frozen dataclasses.

`[server]`, `[database]` and `[storage]` are the app's; every platform brings its own section
(platforms.PLATFORMS: `[dingtalk]`, `[wecom]`, `[sim]`), read the same way and reached as
`config.dingtalk`, `config.wecom`… Validation errors name the exact key
(`ConfigError("dingtalk.mode: …")`); secrets are kept in `Secret` wrappers whose repr never
shows the value.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kernel.settings import ConfigError, Secret, read_section
from platforms import PLATFORMS
from platforms.base import Platform

__all__ = ["Config", "ConfigError", "Secret", "config_from_mapping", "load_config", "MAX_WORKERS"]

MAX_WORKERS = 64


@dataclass(frozen=True, slots=True)
class ServerConfig:
    URL_KEYS: ClassVar[tuple[str, ...]] = ("public_base_url",)

    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 1024 * 1024
    workers: int = 1  # serving processes on this machine (`serve --workers N`, PostgreSQL only)
    link_secret: Secret = field(default_factory=Secret)  # signs dashboard links

    def check(self, section: str) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"{section}.port: must be between 1 and 65535")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"{section}.workers: must be between 1 and {MAX_WORKERS}")


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///./yanxiu.db"

    def check(self, section: str) -> None:
        if "://" not in self.url:
            raise ConfigError(f"{section}.url: must be a SQLAlchemy URL such as sqlite+aiosqlite:///./yanxiu.db")


@dataclass(frozen=True, slots=True)
class StorageConfig:
    files_dir: str = "./files"
    max_photo_bytes: int = 10 * 1024 * 1024
    max_file_bytes: int = 20 * 1024 * 1024  # a 教案, 课件 or 压缩包 (WeCom caps files at 20 MB)


_APP_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "storage": StorageConfig,
}


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    platforms: Mapping[str, Any] = field(default_factory=dict)  # section name → its settings

    def __getattr__(self, name: str) -> Any:
        """A platform's section by its name: `config.dingtalk`."""
        try:
            return self.__dict__["platforms"][name]
        except KeyError:
            raise AttributeError(name) from None

    def enabled_platforms(self) -> list[tuple[Platform, Any]]:
        """The platforms switched on, each with its settings, in registration order."""
        return [(p, self.platforms[p.name]) for p in PLATFORMS if p.enabled(self.platforms[p.name])]


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
    a platform that trusts whoever reaches it (the simulator) never listens beyond loopback."""
    if config.server.workers > 1 and config.database.url.startswith("sqlite"):
        raise ConfigError(
            f"server.workers: {config.server.workers} 个服务进程要共用 PostgreSQL（database.url = "
            "\"postgresql+asyncpg://…\"）；SQLite 是单进程的内置数据库，请设 workers = 1")
    for platform, _ in config.enabled_platforms():
        if platform.loopback_only and not is_loopback(config.server.host):
            raise ConfigError(
                f"{platform.name}.enabled: {platform.label}可以冒充任何人，只能在 server.host 为本机地址"
                f"（127.0.0.1）时开启；现在 server.host = {config.server.host!r}。"
                f"请删除 [{platform.name}] enabled = true")


def config_from_mapping(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from parsed TOML and the environment; raise ConfigError naming the key."""
    env = os.environ if env is None else env
    sections = {**_APP_SECTIONS, **{p.name: p.settings for p in PLATFORMS}}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section")
    built = {name: read_section(name, cls, data.get(name, {}), env) for name, cls in sections.items()}
    config = Config(**{name: built.pop(name) for name in _APP_SECTIONS}, platforms=built)
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
