"""Fitting a chart's words into the room they have: measured, wrapped, shortened with "…".

A school's or task's name is whatever the roster or plan says, so its length is unknown: it is
measured with the figure's own renderer (the font the chart draws with) and wrapped onto at
most `lines` lines of `width` pixels, the last one cut with an ellipsis if it still does not fit.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

ELLIPSIS = "…"
# a line may end after one of these, or before one of the others, rather than mid-phrase
BREAK_AFTER = frozenset("、，,。；;：:·）)」』”》/-–— ")
BREAK_BEFORE = frozenset("（(「『“《 ")


class TextFitter:
    """Measures text in the font a figure draws with, and fits it into a box."""

    def __init__(self, fig: Figure) -> None:
        self._renderer = FigureCanvasAgg(fig).get_renderer()
        self._fonts: dict[float, FontProperties] = {}

    def width(self, text: str, size: float) -> float:
        """Pixels `text` (one line) takes at font `size` points."""
        font = self._fonts.get(size)
        if font is None:
            font = self._fonts[size] = FontProperties(size=size)
        w, _, _ = self._renderer.get_text_width_height_descent(text, font, ismath=False)
        return float(w)

    def _fitting(self, text: str, size: float, width: float, tail: str = "") -> int:
        """How many leading characters of `text` (followed by `tail`) fit in `width` pixels."""
        low, high = 0, len(text)
        while low < high:  # the widest prefix that fits: widths grow with length
            mid = (low + high + 1) // 2
            if self.width(text[:mid] + tail, size) <= width:
                low = mid
            else:
                high = mid - 1
        return low

    def fit(self, text: str, size: float, width: float, lines: int = 1) -> str:
        """`text` on at most `lines` lines of `width` pixels, "\\n" between them, cut with "…"."""
        text = " ".join(text.split())
        out: list[str] = []
        while text:
            if self.width(text, size) <= width:
                out.append(text)
                break
            if len(out) == lines - 1:
                keep = self._fitting(text, size, width, ELLIPSIS)
                out.append(text[:keep].rstrip("".join(BREAK_BEFORE)) + ELLIPSIS)
                break
            keep = max(self._fitting(text, size, width), 1)
            keep = _break_point(text, keep)
            out.append(text[:keep].rstrip())
            text = text[keep:].lstrip()
        return "\n".join(out)


def _break_point(text: str, keep: int) -> int:
    """Where to end a line that may hold `keep` characters: at a separator in its second half
    if there is one, else at `keep` (Chinese breaks anywhere); not inside a Latin word."""
    for i in range(keep, max(keep // 2, 1) - 1, -1):
        if text[i - 1] in BREAK_AFTER or (i < len(text) and text[i] in BREAK_BEFORE):
            return i
    if keep < len(text) and text[keep - 1].isascii() and text[keep].isascii() \
            and text[keep - 1].isalnum() and text[keep].isalnum():
        start = keep
        while start > 1 and text[start - 1].isascii() and text[start - 1].isalnum():
            start -= 1
        return start if start > keep // 2 else keep
    return keep
