"""Reading a config section: TOML values and YANXIU_<SECTION>_<KEY> environment overrides into
a frozen dataclass, with errors that name the exact key (`dingtalk.mode: …`).

A section class may declare `MODES` (allowed values of its `mode`), `URL_KEYS` (keys that
must be http(s) URLs) and a `check(section)` method for anything else. Secrets are kept in
`Secret` wrappers whose repr never shows the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit


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


def read_section(section: str, cls: type, raw: Any, env: Mapping[str, str]) -> Any:
    """The section's dataclass from its TOML table and the environment; ConfigError names the key."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{section}: must be a table")
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
    modes = getattr(built, "MODES", None)
    if modes and built.mode not in modes:
        allowed = " or ".join(f'"{m}"' for m in modes)
        raise ConfigError(f"{section}.mode: must be {allowed}")
    for key in getattr(built, "URL_KEYS", ()):
        parts = urlsplit(getattr(built, key))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{section}.{key}: must be an http(s) URL")
    check = getattr(built, "check", None)
    if check is not None:
        check(section)
