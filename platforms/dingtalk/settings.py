"""`[dingtalk]` in config.toml: the enterprise internal robot's app and where its APIs live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from kernel.settings import Secret


@dataclass(frozen=True, slots=True)
class DingTalkConfig:
    MODES: ClassVar[tuple[str, ...]] = ("http", "stream")
    URL_KEYS: ClassVar[tuple[str, ...]] = ("api_base", "oapi_base")

    enabled: bool = False
    mode: str = "http"  # "http" (callback) or "stream" (no public IP needed)
    app_key: Secret = field(default_factory=Secret)
    app_secret: Secret = field(default_factory=Secret)
    robot_code: str = ""
    api_base: str = "https://api.dingtalk.com"  # new-style OpenAPI (tokens, files, group send)
    oapi_base: str = "https://oapi.dingtalk.com"  # legacy host: custom robots, sessionWebhook
