"""`[sim]` in config.toml: the local chat simulator (/sim/)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Anyone who reaches the simulator can act as anyone on the roster, so only `yanxiu demo`
    mounts it; `serve` only with this set and a loopback host (platforms.base.Platform)."""

    enabled: bool = False
