"""The read-only web dashboard (/dashboard/…) and the chart images (/charts/<sha>.png).

Every dashboard request carries a signed, expiring link token (`?t=`, bot/web/links.py). A
district link opens everything; a school link opens that school and its teachers only.
No token, a bad signature, an expired link, a person no longer allowed, or another
school's page → 403 with a short explanation and no data. Pages are Jinja2 templates
(templates/web/dashboard_*.html), plain HTML and CSS for a phone screen, sent with a
Content-Security-Policy that runs no script and no inline style (the CSS is a file).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.config import Config
from bot.dispatch import Services
from bot.web.links import DashboardLinks
from bot.web.views import district_view, school_view, teacher_view
from kernel.links import DISTRICT, LinkGrant, LinkProblem, school_scope
from kernel.records import SchoolInfo, TermInfo
from storage.chart_files import charts_dir, is_chart_name
from storage.files import photo_path
from storage.queries.dashboard import person_row, photo_owners, school_info_by_code
from templates.render import render_text
from templates.web_assets import (
    DASHBOARD_CSP,
    LINK_BASE,
    add_assets,
    add_favicon,
    not_found_page,
    page_headers,
)

SERVICES = web.AppKey("dashboard_services", Services)
ISSUER = web.AppKey("dashboard_issuer", DashboardLinks)
_SHA = re.compile(r"^[0-9a-f]{64}$")
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           **page_headers(DASHBOARD_CSP)}


def _page(template: str, status: int = 200, **data: object) -> web.Response:
    return web.Response(text=render_text(f"web/{template}.html", **data), status=status,
                        content_type="text/html", headers=HEADERS)


def denied(reason: str) -> web.HTTPForbidden:
    """403 with a page that says why, and nothing else."""
    return web.HTTPForbidden(text=render_text("web/dashboard_denied.html", reason=reason),
                             content_type="text/html", headers=HEADERS)


def _now(request: web.Request) -> datetime:
    return request.app[SERVICES].clock()


async def authorize(request: web.Request) -> tuple[LinkGrant, str]:
    """The request's grant and its query string for links onward; raises a 403 page otherwise."""
    token = request.query.get("t")
    grant = request.app[ISSUER].signer.verify(token, _now(request))
    if isinstance(grant, LinkProblem):
        raise denied(grant.reason)
    async with request.app[SERVICES].db.sessions() as session:
        person = await person_row(session, grant.person_id)
    still_allowed = person is not None and (
        person.role == "district_admin"
        or (grant.scope != DISTRICT and person.role == "school_lead"
            and grant.scope == school_scope(person.school_id or 0)))
    if not still_allowed:
        raise denied("revoked")
    return grant, urlencode({"t": token})


async def _term(request: web.Request) -> TermInfo | None:
    return await request.app[SERVICES].directory.term()


def _no_plan(q: str) -> web.Response:
    return _page("dashboard_no_plan", q=q)


async def landing(request: web.Request) -> web.Response:
    """/dashboard/?t=…: on to the page the link is for."""
    grant, q = await authorize(request)
    if grant.school_id is None:
        raise web.HTTPFound(f"/dashboard/district?{q}", headers=HEADERS)
    school = request.app[SERVICES].directory.school(grant.school_id)
    if school is None:
        raise denied("revoked")
    raise web.HTTPFound(f"/dashboard/school/{quote(school.code, safe='')}?{q}", headers=HEADERS)


async def district_page(request: web.Request) -> web.Response:
    grant, q = await authorize(request)
    if grant.scope != DISTRICT:
        raise denied("scope")
    term = await _term(request)
    if term is None:
        return _no_plan(q)
    async with request.app[SERVICES].db.sessions() as session:
        view = await district_view(session, term, _now(request))
    return _page("dashboard_district", v=view, d=view.digest, q=q)


async def school_page(request: web.Request) -> web.Response:
    grant, q = await authorize(request)
    async with request.app[SERVICES].db.sessions() as session:
        found = await school_info_by_code(session, request.match_info["code"])
        school = SchoolInfo(*found) if found else None
        if school is None or not grant.allows_school(school.id):
            raise denied("scope")  # an unknown code looks like any other school: nothing leaks
        term = await _term(request)
        if term is None:
            return _no_plan(q)
        view = await school_view(session, term, school, _now(request))
    return _page("dashboard_school", v=view, d=view.digest, q=q, district=grant.scope == DISTRICT)


async def teacher_page(request: web.Request) -> web.Response:
    grant, q = await authorize(request)
    async with request.app[SERVICES].db.sessions() as session:
        person = await person_row(session, int(request.match_info["person_id"]))
        if person is None or person.school_id is None or not grant.allows_school(person.school_id):
            raise denied("scope")
        school = request.app[SERVICES].directory.school(person.school_id)
        term = await _term(request)
        if term is None:
            return _no_plan(q)
        view = await teacher_view(session, term, person, _now(request))
    return _page("dashboard_teacher", v=view, q=q, school=school, district=grant.scope == DISTRICT)


async def photo(request: web.Request) -> web.StreamResponse:
    """A teacher's photo by hash, only to a link whose scope holds someone who sent it."""
    grant, _ = await authorize(request)
    sha = request.match_info["sha"]
    if not _SHA.match(sha):
        raise web.HTTPNotFound()
    async with request.app[SERVICES].db.sessions() as session:
        owners = await photo_owners(session, sha)
    allowed = [mime for school_id, mime in owners if grant.allows_school(school_id)]
    if not allowed:
        raise denied("scope")
    path = photo_path(request.app[SERVICES].files_dir, sha, allowed[0])
    if not await asyncio.to_thread(path.is_file):
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": allowed[0]})


def chart_view(files_dir: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    folder = charts_dir(files_dir)

    async def chart(request: web.Request) -> web.StreamResponse:
        """A digest chart: only `<sha256>.png` names, only from files_dir/charts/."""
        name = request.match_info["name"]
        if not is_chart_name(name):
            raise web.HTTPNotFound()
        path = folder / name
        if not await asyncio.to_thread(path.is_file):
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "image/png",
                                               "Cache-Control": "public, max-age=31536000, immutable",
                                               "X-Content-Type-Options": "nosniff"})

    return chart


def install(app: web.Application, config: Config, services: Services) -> DashboardLinks:
    """Routes for the dashboard and the charts; the chat verb 后台 issues links for this app."""
    issuer = DashboardLinks(config.server.public_base_url, config.server.link_secret.value,
                            services.files_dir)
    app[SERVICES] = services
    app[ISSUER] = issuer
    app[LINK_BASE] = issuer.base
    services.links = issuer
    app.router.add_get("/dashboard/", landing)
    app.router.add_get("/dashboard/district", district_page)
    app.router.add_get("/dashboard/school/{code}", school_page)
    app.router.add_get(r"/dashboard/teacher/{person_id:\d{1,18}}", teacher_page)
    app.router.add_get("/dashboard/photo/{sha}", photo)
    add_assets(app, "/dashboard/static/", ("dashboard.css",))
    add_favicon(app)
    app.middlewares.append(not_found_page)  # the dashboard's and the simulator's wrong addresses
    app.router.add_get("/charts/{name}", chart_view(services.files_dir))
    return issuer
