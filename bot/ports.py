"""Whether the server could listen on a host and port right now, asked before it starts.

`yanxiu demo` and `yanxiu serve` ask first, so a busy port is one clear line instead of a
banner followed by aiohttp's traceback (and a demo folder left behind).
"""

from __future__ import annotations

import errno
import socket

# the errors a bind gives for a reason the operator can fix (busy, privileged, no such address)
BIND_ERRNOS = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})


def bind_error(host: str | None, port: int) -> OSError | None:
    """The OSError binding host:port would raise now, or None when it is free.

    Binds the way asyncio's create_server does (SO_REUSEADDR; IPv6 sockets v6-only), so a
    port in TIME_WAIT counts as free and one another program listens on does not. A host
    that does not resolve is an EADDRNOTAVAIL."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return OSError(errno.EADDRNOTAVAIL, f"cannot resolve {host!r}")
    for family, kind, proto, _, address in infos:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:  # a family this machine lacks: asyncio skips it too
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
        except OSError as exc:
            return exc
        finally:
            sock.close()
    return None
