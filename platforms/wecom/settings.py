"""`[wecom]` in config.toml: the AI bot (智能机器人, groups), the self-built app (1:1 chats)
and where WeCom's APIs live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from kernel.settings import Secret


@dataclass(frozen=True, slots=True)
class WeComConfig:
    MODES: ClassVar[tuple[str, ...]] = ("http", "websocket")
    URL_KEYS: ClassVar[tuple[str, ...]] = ("api_base",)

    enabled: bool = False
    mode: str = "http"  # "http" (callbacks) or "websocket" (AI bot long connection)
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
