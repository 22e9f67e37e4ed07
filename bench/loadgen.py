"""A small, fast HTTP/1.1 load generator for 127.0.0.1: keep-alive connections, one request
in flight per connection, every request's latency and status recorded.

Written on raw asyncio streams (not an HTTP client library) so that, on a 2-core machine,
the generator costs less CPU than the server it measures.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def encode(self, host: str) -> bytes:
        head = [f"POST {self.path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(self.body)}"]
        head += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + self.body


@dataclass
class Result:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)  # in request order
    errors: int = 0
    # in request order, one entry per request sent: its latency (0.0 when it got no answer)
    # and status (0 when none), so that a caller can split the figures by kind of request
    by_request: list[tuple[float, int]] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    @classmethod
    def joined(cls, parts: Sequence[Result]) -> Result:
        """Loads run one after another as one: their times added, their requests in order."""
        statuses: dict[int, int] = {}
        for part in parts:
            for status, count in part.statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        return cls(sum(p.seconds for p in parts), [x for p in parts for x in p.latencies], statuses,
                   [b for p in parts for b in p.bodies], sum(p.errors for p in parts),
                   [x for p in parts for x in p.by_request])

    def summary(self) -> str:
        return (f"{len(self.latencies)} requests in {self.seconds:.2f}s = {self.rate:,.0f} req/s; "
                f"p50 {self.percentile(0.5) * 1000:.2f} ms, p99 {self.percentile(0.99) * 1000:.2f} ms; "
                f"statuses {dict(sorted(self.statuses.items()))}, errors {self.errors}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        return status, body
    return status, await reader.readexactly(length) if length else b""


async def run(host: str, port: int, requests: Sequence[Request], concurrency: int = 64,
              keep_bodies: bool = False) -> Result:
    """Send every request once over `concurrency` keep-alive connections; stop when done."""
    payloads = [r.encode(f"{host}:{port}") for r in requests]
    latencies = [0.0] * len(payloads)
    statuses = [0] * len(payloads)
    bodies: list[bytes] = [b""] * len(payloads) if keep_bodies else []
    next_index = 0
    errors = 0

    async def worker() -> None:
        nonlocal next_index, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next_index < len(payloads):
                i = next_index
                next_index += 1
                t0 = time.perf_counter()
                try:
                    writer.write(payloads[i])
                    status, body = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies[i] = time.perf_counter() - t0
                statuses[i] = status
                if keep_bodies:
                    bodies[i] = body
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    counts: dict[int, int] = {}
    for s in statuses:
        if s:
            counts[s] = counts.get(s, 0) + 1
    done = [lat for lat, s in zip(latencies, statuses, strict=True) if s]
    return Result(seconds, done, counts, bodies, errors, list(zip(latencies, statuses, strict=True)))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q < 1) of `values` as Result.percentile takes it; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
