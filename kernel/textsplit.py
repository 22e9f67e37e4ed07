"""Cutting a long message into parts that fit a platform's byte limit.

Parts end at line ends; only a single line longer than the limit is cut inside, and then
at a character boundary (UTF-8 never loses half a character).
"""

from __future__ import annotations

from collections.abc import Iterator

MIN_PART_BYTES = 16  # a limit smaller than this could not hold one character per part


def _cut_at_characters(line: str, max_bytes: int) -> Iterator[str]:
    """A line longer than `max_bytes`, as pieces that each fit, cut between characters."""
    data = line.encode("utf-8")
    while len(data) > max_bytes:
        cut = max_bytes
        while data[cut] & 0xC0 == 0x80:  # a continuation byte: step back to a character start
            cut -= 1
        yield data[:cut].decode("utf-8")
        data = data[cut:]
    if data:
        yield data.decode("utf-8")


def split_text(text: str, max_bytes: int) -> list[str]:
    """`text` as parts of at most `max_bytes` UTF-8 bytes each, cut at line boundaries."""
    max_bytes = max(max_bytes, MIN_PART_BYTES)
    text = text.strip("\n")
    if len(text.encode("utf-8")) <= max_bytes:
        return [text]
    parts: list[str] = []
    lines: list[str] = []
    size = 0
    for line in text.split("\n"):
        for piece in _cut_at_characters(line, max_bytes) if line else [""]:
            piece_size = len(piece.encode("utf-8"))
            joined = size + piece_size + (1 if lines else 0)
            if lines and joined > max_bytes:
                parts.append("\n".join(lines))
                lines, joined = [], piece_size
            lines.append(piece)
            size = joined
    if lines:
        parts.append("\n".join(lines))
    cleaned = [p.strip("\n") for p in parts]
    return [p for p in cleaned if p.strip()] or [""]
