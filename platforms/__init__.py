"""The chat platforms, one package each behind `platforms.base.Platform`: DingTalk, WeCom and
the local simulator. A new platform is a package here and one line in `PLATFORMS`."""

from __future__ import annotations

from platforms import dingtalk, sim, wecom
from platforms.base import Platform

PLATFORMS: tuple[Platform, ...] = (dingtalk.PLATFORM, wecom.PLATFORM, sim.PLATFORM)
