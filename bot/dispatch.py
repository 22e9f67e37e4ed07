"""One inbound message, end to end: guard → context → router → handler → commit → reply.

The inbound row, the handler's writes and the rendered reply are committed together
(group commit); only then does the adapter acknowledge the platform.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.directory import Directory
from bot.messages import IncomingMessage, OutgoingText, Reply
from bot.outbound import ImageFetcher, Replier, SendRoute
from bot.render import render_reply
from bot.router import parse_command
from handlers.context import Context
from handlers.help import help_reply
from handlers.registry import ROUTES
from storage.db import Database
from storage.queries.inbound import claim_inbound, remember_reply, stored_reply

log = logging.getLogger(__name__)

Record = Callable[[AsyncSession, OutgoingText | None], Awaitable[None]]


@dataclass
class Services:
    """What the message path needs, owned by the app."""

    db: Database
    directory: Directory
    clock: Callable[[], datetime]
    files_dir: Path
    max_photo_bytes: int = 10 * 1024 * 1024
    # filled by the platform adapters at start-up, keyed by platform / route kind
    fetchers: dict[str, ImageFetcher] = field(default_factory=dict)
    repliers: dict[str, Replier] = field(default_factory=dict)
    routes: dict[str, SendRoute] = field(default_factory=dict)
    # handler latency by verb, for /metrics (None in tools that do not serve)
    observe: Callable[[str, float], None] | None = None


@dataclass(frozen=True, slots=True)
class Dispatched:
    reply: OutgoingText | None
    duplicate: bool


def choose_reply_fn(ctx: Context) -> Callable[[Context, AsyncSession], Awaitable[Reply]]:
    verb = ctx.command.verb

    async def fixed(reply: Reply) -> Reply:
        return reply

    if ctx.msg.unsupported:
        return lambda c, s: fixed(Reply("unsupported", {"kind": ctx.msg.unsupported}))
    if ctx.person is None:
        return lambda c, s: fixed(Reply("unknown_sender", {"sender": ctx.msg.sender_name,
                                                           "is_group": ctx.msg.is_group}))
    route = ROUTES.get(verb)
    if route is None:
        unknown = ctx.command.text if verb == "unknown" else None
        return lambda c, s: fixed(help_reply(ctx, unknown=unknown))
    if not ctx.has_role(route.role):
        return lambda c, s: fixed(Reply("not_allowed", {"verb": verb, "role": ctx.role,
                                                        "needed": route.role}))
    return route.handler


async def dispatch(services: Services, msg: IncomingMessage, *, markdown: bool = False,
                   record: Record | None = None) -> Dispatched:
    command = parse_command(msg.text)
    if msg.images and command.verb in ("unknown", "empty", "help"):
        command = type(command)("photo", command.args, command.text)
    directory = services.directory
    person = await directory.person(msg.platform, msg.sender_id)
    group = await directory.group(msg.platform, msg.conversation_id) if msg.is_group else None
    school = directory.school(group.school_id if group and group.school_id else
                              (person.school_id if person else None))
    ctx = Context(msg=msg, command=command, now=services.clock(), person=person, group=group,
                  school=school, term=await directory.term(), directory=directory,
                  files_dir=services.files_dir, max_photo_bytes=services.max_photo_bytes)
    handler = choose_reply_fn(ctx)

    async def unit(session: AsyncSession) -> Dispatched:
        if not await claim_inbound(session, msg.platform, msg.msg_id, ctx.now):
            text = await stored_reply(session, msg.platform, msg.msg_id)
            return Dispatched(OutgoingText(text, markdown) if text else None, duplicate=True)
        reply = await handler(ctx, session)
        out = render_reply(reply, markdown=markdown)
        await remember_reply(session, msg.platform, msg.msg_id, out.text)
        if record is not None:
            await record(session, out)
        return Dispatched(out, duplicate=False)

    started = time.perf_counter()
    result = await services.db.write(unit)
    if services.observe is not None:
        services.observe(command.verb, time.perf_counter() - started)
    if not result.duplicate:
        for hook in ctx.after_commit:
            try:
                await hook()
            except Exception:  # a cache refresh must not turn a stored message into an error
                log.exception("after-commit hook failed")
    return result
