"""Digest charts drawn to PNG bytes: a school's completion and the district's ranking.

Pure: digest figures (kernel/figures.py) in, PNG bytes out; matplotlib's Agg canvas, no
pyplot state. Labels come from templates/charts/. Chinese needs a CJK font: the first of
`CJK_FONT_FILES` found is used (`.ci/run` installs fonts-wqy-microhei).

A lead forwards these pictures, so nothing in them may overlap or be cut: the layout is laid
out in pixels from the measured text (handlers/chart_text.py), a long school or task name
wraps onto two lines or ends in "…", and the picture grows with its rows.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from handlers.chart_text import TextFitter
from kernel.figures import DistrictDigest, Rate, SchoolDigest
from templates.render import render_text

log = logging.getLogger(__name__)

CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
DPI = 100
WIDTH = 720  # pixels: a phone screen's width at twice its CSS pixels, about
SCHOOL_SIZE = (WIDTH, 880)  # the school chart's size for up to SCHOOL_ROWS bars
SCHOOL_ROWS = 6
SCHOOL_ROW_PX = 54  # a bar and its (two-line) name, beyond SCHOOL_ROWS
DISTRICT_WIDTH = WIDTH
DISTRICT_MAX_SCHOOLS = 20  # the ones falling behind; the rest are in the text
HOURS_BINS = 6
GOOD, FAIR, POOR, NONE = "#52c41a", "#faad14", "#f5222d", "#d9d9d9"
GREY, INK = "#595959", "#262626"

# font sizes (points) and the pixels the layout keeps around them
TITLE, SUBTITLE, NAME, TICK, SMALL = 16, 11, 11, 10, 9
EDGE = 16  # kept free of text at every edge of the picture
NAME_SHARE = 0.34  # a bar's name takes at most this share of the width
TICK_GAP = 10  # tick mark plus padding between an axis and its labels
HIST_PX = 220  # the 学时 histogram's plot area


def district_size(schools: int) -> tuple[int, int]:
    """The ranking chart's pixels for `schools` schools (capped at DISTRICT_MAX_SCHOOLS)."""
    shown = max(min(schools, DISTRICT_MAX_SCHOOLS), 1)
    return DISTRICT_WIDTH, 180 + 36 * shown


def school_size(rows: int) -> tuple[int, int]:
    """The school chart's pixels for `rows` bars (check-ins and each task)."""
    return WIDTH, SCHOOL_SIZE[1] + SCHOOL_ROW_PX * max(rows - SCHOOL_ROWS, 0)


@lru_cache(maxsize=1)
def cjk_font_family() -> str | None:
    """Register the first CJK font found and make it matplotlib's sans-serif; its family name."""
    for name in CJK_FONT_FILES:
        if Path(name).is_file():
            font_manager.fontManager.addfont(name)
            family = font_manager.FontProperties(fname=name).get_name()
            matplotlib.rcParams["font.sans-serif"] = [family, "DejaVu Sans"]
            matplotlib.rcParams["font.family"] = "sans-serif"
            matplotlib.rcParams["axes.unicode_minus"] = False
            return family
    log.warning("charts: no CJK font found (install fonts-wqy-microhei); Chinese labels will not show")
    return None


def _label(template: str, part: str, **data: object) -> str:
    return render_text(f"charts/{template}.j2", part=part, **data).strip()


def _colour(ratio: float | None) -> str:
    if ratio is None:
        return NONE
    return GOOD if ratio >= 0.85 else FAIR if ratio >= 0.6 else POOR


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


class _Page:
    """A figure laid out in pixels from the top down: headings, then plot areas."""

    def __init__(self, width: int, height: int) -> None:
        cjk_font_family()
        self.fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
        self.width, self.height = width, height
        self.fit = TextFitter(self.fig)
        self.line = {size: self._line_height(size) for size in (TITLE, SUBTITLE, NAME, TICK, SMALL)}
        self.top: float = height - EDGE  # where the next thing goes (pixels from the bottom)

    def _line_height(self, size: int) -> float:
        return size * DPI / 72 * 1.2  # matplotlib's line spacing

    def heading(self, text: str, size: int, colour: str = INK, lines: int = 2) -> None:
        """A centred heading across the picture, wrapped to the width, at most `lines` lines."""
        fitted = self.fit.fit(text, size, self.width - 2 * EDGE, lines)
        self.fig.text(0.5, self.top / self.height, fitted, ha="center", va="top", fontsize=size,
                      color=colour, parse_math=False)
        self.top -= self.line[size] * (fitted.count("\n") + 1) + 6

    def axes(self, left: float, bottom: float, top: float) -> Axes:
        """A plot area from `left` to the right edge (room kept for the last tick's label)."""
        right = self.width - EDGE - 20
        return self.fig.add_axes((left / self.width, bottom / self.height,
                                  (right - left) / self.width, (top - bottom) / self.height))

    def names(self, texts: list[str], lines: int) -> tuple[list[str], float]:
        """Bar names fitted into the name column, and the column's width in pixels."""
        room = self.width * NAME_SHARE
        fitted = [self.fit.fit(t, NAME, room, lines) for t in texts]
        widest = max((self.fit.width(line, NAME) for t in fitted for line in t.split("\n")), default=0.0)
        return fitted, widest


def _rate_bars(ax: Axes, labels: list[str], rates: list[Rate], values: list[str]) -> None:
    """Horizontal completion bars, first at the top, each with its value at the bar's start."""
    ys = list(range(len(rates)))[::-1]
    widths = [(r.ratio or 0.0) * 100 for r in rates]
    ax.barh(ys, widths, color=[_colour(r.ratio) for r in rates], height=0.6)
    ax.barh(ys, [100 - w for w in widths], left=widths, color="#f0f0f0", height=0.6)
    for y, text in zip(ys, values, strict=True):
        ax.text(2, y, text, va="center", fontsize=NAME, color=INK, parse_math=False)
    ax.set_yticks(ys, labels, fontsize=NAME, parse_math=False)
    ax.set_ylim(-0.5, len(rates) - 0.5)
    ax.set_xlim(0, 100)
    ax.set_xticks([0, 25, 50, 75, 100], ["0", "25%", "50%", "75%", "100%"], fontsize=TICK)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def hours_histogram(digest: SchoolDigest) -> list[tuple[str, int]]:
    """Members per 学时 band: HOURS_BINS equal bands below the requirement, then "已满"."""
    required = digest.hours_required
    earned = [m.progress.hours_earned for m in digest.members]
    if required <= 0:
        return [(_label("school", "hours_full"), len(earned))]
    step = required / HOURS_BINS
    counts = [0] * (HOURS_BINS + 1)
    for h in earned:
        counts[HOURS_BINS if h >= required else min(int(h // step), HOURS_BINS - 1)] += 1
    labels = [_label("school", "hours_bin", low=round(i * step, 1), high=round((i + 1) * step, 1))
              for i in range(HOURS_BINS)]
    return list(zip([*labels, _label("school", "hours_full")], counts, strict=True))


@dataclass(frozen=True, slots=True)
class _Below:
    """Pixels under a plot area: its tick labels, then an axis label line if it has one."""

    ticks: float
    label: float

    def total(self) -> float:
        return TICK_GAP + self.ticks + (self.label + 4 if self.label else 0)


def school_figure(digest: SchoolDigest) -> Figure:
    """One school: check-in, reflection and photo completion per task, and how 学时 are spread."""
    labels = [_label("school", "checkins")] + [_label("school", "task", task=t) for t in digest.tasks]
    rates = [digest.checkins] + [t.done for t in digest.tasks]
    page = _Page(*school_size(len(rates)))
    page.heading(_label("school", "title", d=digest), TITLE)
    page.heading(_label("school", "subtitle", d=digest), SUBTITLE, GREY)
    names, widest = page.names(labels, lines=2)
    left = EDGE + max(widest + TICK_GAP, 48)  # the histogram's 人数 and counts need ~48 px
    # from the bottom up: the histogram, its title, then the bars fill what is left
    hist_below = _Below(page.line[SMALL], 0)
    hist_bottom = EDGE + hist_below.total()
    hist_top = hist_bottom + HIST_PX
    hist_title = page.fit.fit(_label("school", "hours", d=digest), SUBTITLE, page.width - 2 * EDGE, 2)
    title_bottom = hist_top + 10
    title_top = title_bottom + page.line[SUBTITLE] * (hist_title.count("\n") + 1)
    bars_below = _Below(page.line[TICK], page.line[TICK])
    bars_bottom = title_top + 18 + bars_below.total()
    bars = page.axes(left, bars_bottom, page.top - 8)
    _rate_bars(bars, names, rates, [_label("school", "value", rate=r) for r in rates])
    bars.set_xlabel(_label("school", "completion"), fontsize=TICK, labelpad=4)
    page.fig.text(0.5, title_bottom / page.height, hist_title, ha="center", va="bottom",
                  fontsize=SUBTITLE, color=INK, parse_math=False)
    hist = page.axes(left, hist_bottom, hist_top)
    _histogram(hist, digest)
    return page.fig


def _histogram(ax: Axes, digest: SchoolDigest) -> None:
    """Members per 学时 band (red below the requirement, green once it is met)."""
    if not digest.members:
        ax.text(0.5, 0.5, _label("school", "nobody"), ha="center", va="center", fontsize=12,
                transform=ax.transAxes)
        ax.set_axis_off()
        return
    bins = hours_histogram(digest)
    xs = list(range(len(bins)))
    ax.bar(xs, [n for _, n in bins], color=[POOR] * (len(bins) - 1) + [GOOD], width=0.7)
    ax.set_xticks(xs, [name for name, _ in bins], fontsize=SMALL)
    ax.tick_params(axis="y", labelsize=SMALL)
    for x, (_, n) in zip(xs, bins, strict=True):
        if n:
            ax.text(x, n, str(n), ha="center", va="bottom", fontsize=TICK)
    ax.set_ylabel(_label("school", "people"), fontsize=SMALL, labelpad=2)
    ax.set_ylim(0, max(n for _, n in bins) * 1.2 + 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def district_figure(digest: DistrictDigest) -> Figure:
    """The district: each school's overall completion, the ones falling behind at the top."""
    shown = list(digest.schools[:DISTRICT_MAX_SCHOOLS])
    page = _Page(*district_size(len(digest.schools)))
    page.heading(_label("district", "title", d=digest), TITLE)
    page.heading(_label("district", "subtitle", d=digest, shown=len(shown)), SUBTITLE, GREY)
    below = _Below(page.line[TICK], page.line[TICK])
    if not shown:
        ax = page.axes(EDGE, EDGE + below.total(), page.top - 8)
        ax.text(0.5, 0.5, _label("district", "nobody"), ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return page.fig
    names, widest = page.names([s.name for s in shown], lines=1)
    ax = page.axes(EDGE + widest + TICK_GAP, EDGE + below.total(), page.top - 8)
    rates = [Rate(s.overall_pct or 0, 100) if s.overall is not None else Rate(0, 0) for s in shown]
    _rate_bars(ax, names, rates, [_label("district", "value", school=s) for s in shown])
    ax.set_xlabel(_label("district", "axis"), fontsize=TICK, labelpad=4)
    return page.fig


def school_chart(digest: SchoolDigest) -> bytes:
    """The school chart as PNG bytes."""
    return _png(school_figure(digest))


def district_chart(digest: DistrictDigest) -> bytes:
    """The district chart as PNG bytes."""
    return _png(district_figure(digest))
