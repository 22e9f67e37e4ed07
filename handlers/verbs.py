"""A verb is declared once, on its handler: its aliases, who may use it, whether it writes,
its help line. The router, the role gate and 帮助 are all built from these declarations
(handlers/registry.py gathers them); nothing else lists verbs.

    @verb("checkin", "签到", "打卡", "到", evidence=True, help="help/checkin.j2", order=10)
    async def handle_checkin(ctx: Context, session: AsyncSession) -> Reply: ...

The function the decorator returns is the gated one: called from anywhere, it refuses a
sender below the verb's role, or (for `evidence` verbs) one who is on no school's roster.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context, Handler
from kernel.commands import Verb
from kernel.messages import Reply


@dataclass(frozen=True, slots=True)
class Declared:
    """A verb and its gated handler."""

    verb: Verb
    handler: Handler


DECLARED: list[Declared] = []


def gate(spec: Verb, ctx: Context) -> Reply | None:
    """The refusal this sender gets for this verb, else None."""
    if not ctx.has_role(spec.who):
        return Reply("not_allowed", {"verb": spec.name, "role": ctx.role, "needed": spec.who})
    if spec.evidence and not ctx.is_member:  # a district admin's 签到 would count nowhere
        return Reply("not_a_member", {"verb": spec.name, "role": ctx.role})
    return None


def verb(name: str, *aliases: str, who: str = "teacher", writes: bool = True,
         evidence: bool = False, takes_args: bool = False, optional_arg: bool = False,
         help: str | None = None, order: int = 100) -> Callable[[Handler], Handler]:
    """Declare `name` with its aliases and rules on the handler that answers it."""
    spec = Verb(name, tuple(aliases), who, writes, evidence, takes_args, optional_arg, help, order)

    def declare(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def gated(ctx: Context, session: AsyncSession) -> Reply | None:
            refusal = gate(spec, ctx)
            return refusal if refusal is not None else await handler(ctx, session)

        DECLARED.append(Declared(spec, gated))
        return gated

    return declare
