"""The baseline for the check-in burst: a bare aiohttp handler that only verifies the
DingTalk signature and parses the JSON body — no database, no business logic.

Run: python -m bench.bare_server PORT SECRET [--reuse-port] [--uvloop]
(--reuse-port: one of several such processes on one port, like `serve --workers N`;
--uvloop: on uvloop's loop, as `serve` runs when the `fast` extra is installed — without it,
asyncio's own loop, as the README's install gives `serve`.)
"""

from __future__ import annotations

import json
import sys
import time

from aiohttp import web

from platforms.dingtalk.wire import verify_callback


def make_app(secret: str) -> web.Application:
    async def callback(request: web.Request) -> web.Response:
        reason = verify_callback(request.headers.get("timestamp"), request.headers.get("sign"),
                                 secret, int(time.time() * 1000))
        if reason is not None:
            return web.json_response({"error": reason}, status=401)
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "malformed"}, status=400)
        text = payload.get("text", {}).get("content", "") if isinstance(payload, dict) else ""
        return web.json_response({"msgtype": "text", "text": {"content": f"ok {len(text)}"}})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/dingtalk/callback", callback)
    return app


def main() -> None:
    port, secret = int(sys.argv[1]), sys.argv[2]
    if "--uvloop" in sys.argv[3:]:
        import uvloop

        uvloop.install()
    web.run_app(make_app(secret), host="127.0.0.1", port=port, print=None, access_log=None,
                reuse_port="--reuse-port" in sys.argv[3:])


if __name__ == "__main__":
    main()
