"""The web pages' security headers, and their scripts and styles served as files.

Every HTML page (the simulator, the dashboard) is sent with a Content-Security-Policy that
allows no inline script or style: a name or text that slipped into the markup still could not
run. So each page's script and CSS live in files under templates/web/, served here by name
from a fixed list, never by a path taken from the request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from templates.render import TEMPLATES_DIR

_COMMON = ("default-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# the dashboard runs no script at all
DASHBOARD_CSP = f"{_COMMON}; script-src 'none'"
# the simulator runs only its own file, and (in Chromium) a string can never become markup
SIM_CSP = f"{_COMMON}; script-src 'self'; require-trusted-types-for 'script'; trusted-types 'none'"

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

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
