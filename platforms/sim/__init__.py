"""The local chat simulator: a phone-like group chat under /sim/ for the demo and the tests.
It is a platform like the others — messages in (platform "sim", the sender's roster person id
as their user id), replies back, and a send route that writes into its chat log."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from platforms.base import Platform, Switchboard
from platforms.sim.chat import add_routes, group_conversation
from platforms.sim.route import SimRoute
from platforms.sim.settings import SimConfig

__all__ = ["PLATFORM", "group_conversation"]


def install(app: web.Application, board: Switchboard, settings: Any) -> None:
    add_routes(app, board)
    board.routes.setdefault(SimRoute.kind, SimRoute(board.db, board.clock))


PLATFORM = Platform(name="sim", label="模拟器", settings=SimConfig, install=install,
                    chat_route=SimRoute.kind, roster_ids=True, loopback_only=True)
