"""帮助: the command list fitted to the caller's role, made of the verbs' own help lines."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.verbs import DECLARED, verb
from kernel.commands import ROLE_RANK
from kernel.messages import Reply
from templates.render import render_text


def help_lines(ctx: Context) -> list[dict[str, object]]:
    """[{role, lines}] for each role up to the caller's, each verb's help line in its order."""
    rank = ROLE_RANK.get(ctx.role, 0)
    sections: list[dict[str, object]] = []
    for role, needed in sorted(ROLE_RANK.items(), key=lambda kv: kv[1]):
        if needed > rank:
            break
        declared = sorted((d.verb for d in DECLARED if d.verb.who == role and d.verb.help),
                          key=lambda v: v.order)
        lines = [render_text(v.help, is_group=ctx.msg.is_group) for v in declared if v.help]
        if lines:
            sections.append({"role": role, "lines": lines})
    return sections


def help_reply(ctx: Context, unknown: str | None = None) -> Reply:
    return Reply("help", {"sections": help_lines(ctx), "unknown": unknown,
                          "name": ctx.person.name if ctx.person else ctx.msg.sender_name})


@verb("help", "帮助", "help", "?", "菜单", writes=False)
async def handle_help(ctx: Context, session: AsyncSession) -> Reply:
    return help_reply(ctx)
