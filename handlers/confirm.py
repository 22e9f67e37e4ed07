"""确认 / 取消: carry out or drop the sender's request that waits for confirmation (广播, 改绑)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.admin import rebind
from handlers.broadcast import send_broadcast
from handlers.context import Context
from handlers.pending import CONFIRM_MINUTES
from handlers.verbs import verb
from kernel.messages import Reply
from storage.queries.pending import take_pending

CONFIRMABLE = ("broadcast", "rebind")


@verb("confirm", "确认", "确定", "确认发送")
async def handle_confirm(ctx: Context, session: AsyncSession) -> Reply:
    assert ctx.person is not None
    pending = await take_pending(session, ctx.person.id)
    if pending is None or pending.kind not in CONFIRMABLE:  # 「文件 <名称>」 is not a request
        return Reply("confirm_nothing")
    if pending.expires_at <= ctx.now:
        return Reply("confirm_expired", {"kind": pending.kind, "minutes": CONFIRM_MINUTES})
    if pending.kind == "broadcast":
        return await send_broadcast(ctx, session, pending.payload)
    return await rebind(ctx, session, pending.payload)


@verb("cancel", "取消", "不发了")
async def handle_cancel(ctx: Context, session: AsyncSession) -> Reply:
    assert ctx.person is not None
    pending = await take_pending(session, ctx.person.id)
    if pending is None or pending.kind not in CONFIRMABLE:
        return Reply("cancel_nothing")
    return Reply("cancel_ok", {"kind": pending.kind})
