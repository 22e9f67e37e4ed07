"""The simulator's send route: proactive messages appear in the simulator's chat log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from kernel.outbound import OK, OutboundMessage, SendOutcome
from storage.db import Database
from storage.queries.sim import add_sim_message

BOT_NAME = "研修助手"


def render_mentions(msg: OutboundMessage) -> str:
    """The message as the simulator shows it: text, then "@name" for everyone mentioned."""
    if not msg.mentions:
        return msg.text
    return f"{msg.text}\n{' '.join(f'@{m.name}' for m in msg.mentions)}"


class SimRoute:
    """route_kind "sim": limited like a real robot (20 a minute per group)."""

    kind = "sim"
    per_minute = 20
    max_bytes = 4000

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db, self.clock = db, clock

    def rate_key(self, msg: OutboundMessage) -> str:
        return msg.conversation_id

    async def send(self, msg: OutboundMessage) -> SendOutcome:
        text = render_mentions(msg)
        await self.db.write(lambda s: add_sim_message(s, msg.conversation_id, BOT_NAME, text,
                                                      self.clock(), from_bot=True))
        return OK
