"""The web pages' security headers, their scripts, styles and icon served as files, and the
page a wrong address gets.

Every HTML page (the simulator, the dashboard, the 404) is sent with a Content-Security-Policy
that allows no inline script or style: a name or text that slipped into the markup still could
not run. So each page's script and CSS live in files under templates/web/, served here by name
from a fixed list, never by a path taken from the request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from templates.render import TEMPLATES_DIR, render_text

_COMMON = ("default-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# the dashboard runs no script at all
DASHBOARD_CSP = f"{_COMMON}; script-src 'none'"
# the simulator runs only its own file, and (in Chromium) a string can never become markup
SIM_CSP = f"{_COMMON}; script-src 'self'; require-trusted-types-for 'script'; trusted-types 'none'"

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml"}
FAVICON = "favicon.svg"
# where the dashboard's links start (server.public_base_url): the simulator makes a link of a
# reply's URL only when it starts there, never of an address someone typed that a reply quotes
LINK_BASE = web.AppKey("dashboard_link_base", str)
# a wrong address under these gets the Chinese 404 page (a browser's Accept: text/html does too)
PAGE_PREFIXES = ("/dashboard/", "/sim/", "/charts/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_headers(csp: str) -> dict[str, str]:
    """Headers for an HTML page under `csp`: no sniffing, no framing."""
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY"}


def asset_view(name: str) -> Handler:
    """A handler for templates/web/<name> (a .js or .css file), read once when installed.

    The browser revalidates each time (no-cache) and gets a 304 while the ETag matches.
    """
    path: Path = TEMPLATES_DIR / "web" / name
    body = path.read_bytes()
    etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
    headers = {"Content-Type": _TYPES[path.suffix], "Cache-Control": "no-cache", "ETag": etag,
               "X-Content-Type-Options": "nosniff"}

    async def asset(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Cache-Control")})
        return web.Response(body=body, headers=headers)

    return asset


def add_assets(app: web.Application, prefix: str, names: tuple[str, ...]) -> None:
    """Serve each of `names` at <prefix><name>, e.g. /sim/static/sim.js."""
    for name in names:
        app.router.add_get(f"{prefix}{name}", asset_view(name))


def add_favicon(app: web.Application) -> None:
    """The icon the pages link (/favicon.svg), also where browsers look by default."""
    view = asset_view(FAVICON)
    app.router.add_get("/favicon.svg", view)
    app.router.add_get("/favicon.ico", view)


def _wants_page(request: web.Request) -> bool:
    """A person's browser asked, not a platform's server: a page path, or HTML accepted."""
    if request.method not in ("GET", "HEAD"):
        return False
    return request.path.startswith(PAGE_PREFIXES) or "text/html" in request.headers.get("Accept", "")


def _has_simulator(app: web.Application) -> bool:
    return any(resource.canonical == "/sim/" for resource in app.router.resources())


@web.middleware
async def not_found_page(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A 404 that a person would see becomes a short page in Chinese (no data, no script)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if not _wants_page(request):
            raise
        page = render_text("web/not_found.html", dashboard=request.path.startswith("/dashboard/"),
                           sim=_has_simulator(request.app))
        return web.Response(text=page, status=404, content_type="text/html",
                            headers={**page_headers(DASHBOARD_CSP), "Cache-Control": "no-store"})
