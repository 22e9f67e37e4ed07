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

from handlers.context import Context, Handler
from handlers.help import help_reply
from handlers.registry import ROUTES, parse_command
from kernel.links import LinkIssuer
from kernel.messages import Dispatched, IncomingMessage, OutgoingText, Reply
from kernel.outbound import ImageFetcher, Replier, SendRoute
from storage.db import Database
from storage.directory import Directory
from storage.queries.inbound import handle_once
from templates.render import render_reply

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
    max_file_bytes: int = 20 * 1024 * 1024
    links: LinkIssuer | None = None  # set when this app serves the dashboard
    chat_routes: dict[str, str] = field(default_factory=dict)  # platform → route for 绑定 in chat
    # filled by the platform adapters at start-up, keyed by platform / route kind
    fetchers: dict[str, ImageFetcher] = field(default_factory=dict)
    repliers: dict[str, Replier] = field(default_factory=dict)
    routes: dict[str, SendRoute] = field(default_factory=dict)
    # handler latency by verb, for /metrics (None in tools that do not serve)
    observe: Callable[[str, float], None] | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """What answers a message, and whether it runs inside the group-commit writer."""

    handler: Handler
    writes: bool = True


def choose_route(ctx: Context) -> Route:
    """The handler for this message: its verb's (which gates the role itself), or a fixed
    reply (a kind of message we cannot take, someone not on the roster, help)."""
    verb = ctx.command.verb
    if ctx.msg.unsupported:
        return _fixed(Reply("unsupported", {"kind": ctx.msg.unsupported}))
    if ctx.person is None:
        return _fixed(Reply("unknown_sender", {"sender": ctx.msg.sender_name, "is_group": ctx.msg.is_group}))
    declared = ROUTES.get(verb)
    if declared is None:
        return _fixed(help_reply(ctx, unknown=ctx.command.text if verb == "unknown" else None))
    return Route(declared.handler, declared.verb.writes)


def _fixed(reply: Reply) -> Route:
    async def answer(ctx: Context, session: AsyncSession) -> Reply:
        return reply

    return Route(answer, writes=False)


async def dispatch(services: Services, msg: IncomingMessage, *, markdown: bool = False,
                   record: Record | None = None) -> Dispatched:
    command = parse_command(msg.text)
    if msg.images and command.verb in ("unknown", "empty", "help"):
        command = type(command)("photo", command.args, command.text)
    elif msg.files and command.verb in ("unknown", "empty", "help"):
        command = type(command)("file", command.text, command.text)
    directory = services.directory
    found = directory.cached(msg.platform, msg.sender_id, msg.conversation_id if msg.is_group else None)
    if found is None:  # someone not cached yet, or the periodic check for other processes' changes
        term = await directory.term()  # first: it reloads the cache if the directory changed
        person = await directory.person(msg.platform, msg.sender_id)
        group = await directory.group(msg.platform, msg.conversation_id) if msg.is_group else None
    else:
        person, group, term = found
    school = directory.school(group.school_id if group and group.school_id else
                              (person.school_id if person else None))
    # by position, in field order (see kernel/messages.py)
    ctx = Context(msg, command, services.clock(), person, group, school, term, directory,
                  services.files_dir, services.max_photo_bytes, services.links,
                  services.chat_routes.get(msg.platform), services.max_file_bytes)
    route = choose_route(ctx)
    ready: Reply | None = None
    if not route.writes:
        # a read-only verb (进度, 本校进度, 全区进度…) runs outside the single writer, so
        # a district digest never holds up the check-ins queued behind it
        async with services.db.sessions() as read_session:
            ready = await route.handler(ctx, read_session)

    async def unit(session: AsyncSession) -> Dispatched:
        out: OutgoingText | None = None

        async def handle() -> str | None:
            nonlocal out
            reply = ready if not route.writes else await route.handler(ctx, session)
            if reply is not None and msg.spoken:  # a voice message: what was heard, to check
                reply = Reply(reply.template, {**reply.data, "heard": command.args or command.text},
                              reply.mentions)
            # None: nothing to say now (a photo still downloading answers once it is stored)
            out = render_reply(reply, markdown=markdown) if reply is not None else None
            if record is not None:
                await record(session, out)
            return out.text if out is not None else None

        new, text = await handle_once(session, msg.platform, msg.msg_id, ctx.now, handle)
        if not new:
            return Dispatched(OutgoingText(text, markdown) if text else None, duplicate=True)
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
