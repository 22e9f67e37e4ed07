"""The local chat simulator: a phone-like group chat under /sim/ for demos and tests.

It is a platform adapter like the others: it turns a typed message into an
IncomingMessage (platform "sim", sender = roster person id) and shows the bot's replies.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.messages import ImageRef, IncomingMessage, OutgoingText
from platforms.base import Switchboard
from storage.queries.sim import add_sim_message, sim_messages_after
from templates.render import render_text
from templates.web_assets import LINK_BASE, SIM_CSP, add_assets, page_headers

BOARD = web.AppKey("sim_board", Switchboard)
MAX_TEXT = 20_000
PAGE_HEADERS = page_headers(SIM_CSP)
ASSETS = ("sim.js", "sim.css")


async def to_simulator(request: web.Request) -> web.Response:
    raise web.HTTPFound("/sim/")


def group_conversation(school_code: str) -> str:
    return f"sim-group-{school_code}"


async def page(request: web.Request) -> web.Response:
    """The page: markup only, its script and style from /sim/static/ (no inline script runs)."""
    return web.Response(text=render_text("web/sim.html"), content_type="text/html",
                        headers=PAGE_HEADERS)


async def people(request: web.Request) -> web.Response:
    """Who one can be (with their role: the page shows that role's chips), the school groups,
    and where the dashboard's links start (the only URLs the page makes links of)."""
    directory = request.app[BOARD].directory
    await directory.term()  # make sure the cache is loaded
    schools = {s.id: s for s in directory.schools()}
    rows = []
    for p in directory.everyone():
        school = schools.get(p.school_id) if p.school_id else None
        rows.append({"id": p.id, "name": p.name, "role": p.role,
                     "school": school.name if school else "区进修学校",
                     "school_code": school.code if school else None})
    convs = [{"id": group_conversation(s.code), "title": f"{s.name}研修群", "group": True,
              "school_code": s.code} for s in schools.values()]
    base = request.app.get(LINK_BASE)
    return web.json_response({"people": rows, "conversations": convs,
                              "links": f"{base}/dashboard/" if base else None})


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


async def send(request: web.Request) -> web.Response:
    services = request.app[BOARD]
    try:
        body: Any = await request.json()
    except ValueError:
        return _bad("body is not JSON")
    if not isinstance(body, dict):
        return _bad("body must be an object")
    person_id, conv = body.get("person_id"), body.get("conversation_id")
    text, image = body.get("text", ""), body.get("image")
    if not isinstance(person_id, int) or not isinstance(conv, str) or not conv:
        return _bad("person_id (int) and conversation_id (str) are required")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return _bad("text must be a string of at most 20000 characters")
    images: tuple[ImageRef, ...] = ()
    if image is not None:
        if not isinstance(image, str):
            return _bad("image must be base64")
        try:
            data = base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError):
            return _bad("image must be base64")
        images = (ImageRef(ref="sim-inline", data=data),)
    files: tuple[ImageRef, ...] = ()
    document = body.get("file")
    if document is not None:
        file_name = document.get("name") if isinstance(document, dict) else None
        raw = document.get("data") if isinstance(document, dict) else None
        if not isinstance(file_name, str) or not file_name or len(file_name) > 120 \
                or not isinstance(raw, str):
            return _bad("file must be {name: str (≤120), data: base64}")
        try:
            files = (ImageRef(ref="sim-inline", data=base64.b64decode(raw, validate=True),
                              name=file_name),)
        except (binascii.Error, ValueError):
            return _bad("file.data must be base64")
    msg_id = body.get("msg_id") or uuid.uuid4().hex
    if not isinstance(msg_id, str) or len(msg_id) > 200:
        return _bad("msg_id must be a short string")
    person = services.directory.person_by_id(person_id)
    name = person.name if person else f"#{person_id}"
    msg = IncomingMessage(platform="sim", msg_id=msg_id, conversation_id=conv,
                          is_group=conv.startswith("sim-group-"), sender_id=str(person_id),
                          sender_name=name, text=text, received_at=services.clock(), images=images,
                          files=files)

    async def record(session: AsyncSession, out: OutgoingText | None) -> None:
        shown = " ".join(part for part in (
            text, "[图片]" if images else "", f"[文件 {files[0].name}]" if files else "") if part)
        await add_sim_message(session, conv, name, shown, msg.received_at, from_bot=False)
        if out is not None:
            await add_sim_message(session, conv, "研修助手", out.text, services.clock(), from_bot=True)

    result = await services.handle(msg, record=record)
    return web.json_response({"reply": result.reply.text if result.reply else None,
                              "duplicate": result.duplicate, "msg_id": msg_id})


async def messages(request: web.Request) -> web.Response:
    conv = request.query.get("conversation_id", "")
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        return _bad("after must be an integer")
    async with request.app[BOARD].db.sessions() as session:
        rows = await sim_messages_after(session, conv, after)
    return web.json_response({"messages": [
        {"id": m.id, "sender": m.sender, "from_bot": m.from_bot, "text": m.text,
         "at": m.at.isoformat()} for m in rows]})


def add_routes(app: web.Application, board: Switchboard) -> None:
    app[BOARD] = board
    app.router.add_get("/sim/", page)
    app.router.add_get("/", to_simulator)
    add_assets(app, "/sim/static/", ASSETS)
    app.router.add_get("/sim/api/people", people)
    app.router.add_post("/sim/api/send", send)
    app.router.add_get("/sim/api/messages", messages)
