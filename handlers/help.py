"""帮助: the command list fitted to the caller's role."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from kernel.messages import Reply


def help_reply(ctx: Context, unknown: str | None = None) -> Reply:
    return Reply("help", {"role": ctx.role, "unknown": unknown, "is_group": ctx.msg.is_group,
                          "name": ctx.person.name if ctx.person else ctx.msg.sender_name})


async def handle_help(ctx: Context, session: AsyncSession) -> Reply:
    return help_reply(ctx)
