"""Digest charts drawn to PNG bytes: a school's completion and the district's ranking.

Pure: digest figures (handlers/digest_figures.py) in, PNG bytes out; matplotlib's Agg canvas,
no pyplot state. Labels come from templates/charts/. Chinese needs a CJK font: the first of
`CJK_FONT_FILES` found is used (`.ci/run` installs fonts-wqy-microhei).
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache
from pathlib import Path

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
SCHOOL_SIZE = (720, 880)  # pixels: a phone screen's shape
DISTRICT_WIDTH = 720
DISTRICT_MAX_SCHOOLS = 20  # the ones falling behind; the rest are in the text
HOURS_BINS = 6
GOOD, FAIR, POOR, NONE = "#52c41a", "#faad14", "#f5222d", "#d9d9d9"


def district_size(schools: int) -> tuple[int, int]:
    """The ranking chart's pixels for `schools` schools (capped at DISTRICT_MAX_SCHOOLS)."""
    shown = max(min(schools, DISTRICT_MAX_SCHOOLS), 1)
    return DISTRICT_WIDTH, 180 + 36 * shown


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
    return render_text(f"charts/{template}.j2", part=part, **data)


def _colour(ratio: float | None) -> str:
    if ratio is None:
        return NONE
    return GOOD if ratio >= 0.85 else FAIR if ratio >= 0.6 else POOR


def _figure(width: int, height: int) -> Figure:
    cjk_font_family()
    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _rate_bars(ax: object, labels: list[str], rates: list[Rate], values: list[str]) -> None:
    """Horizontal completion bars, first at the top, each with its value at the bar's end."""
    ys = list(range(len(rates)))[::-1]
    widths = [(r.ratio or 0.0) * 100 for r in rates]
    ax.barh(ys, widths, color=[_colour(r.ratio) for r in rates], height=0.6)  # type: ignore[attr-defined]
    ax.barh(ys, [100 - w for w in widths], left=widths, color="#f0f0f0", height=0.6)  # type: ignore[attr-defined]
    for y, text in zip(ys, values, strict=True):
        ax.text(2, y, text, va="center", fontsize=11, color="#262626")  # type: ignore[attr-defined]
    ax.set_yticks(ys, labels, fontsize=11)  # type: ignore[attr-defined]
    ax.set_xlim(0, 100)  # type: ignore[attr-defined]
    ax.set_xticks([0, 25, 50, 75, 100], ["0", "25%", "50%", "75%", "100%"])  # type: ignore[attr-defined]
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)  # type: ignore[attr-defined]


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


def school_chart(digest: SchoolDigest) -> bytes:
    """One school: check-in, reflection and photo completion per task, and how 学时 are spread."""
    fig = _figure(*SCHOOL_SIZE)
    fig.suptitle(_label("school", "title", d=digest), fontsize=16)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 2])
    top.set_title(_label("school", "subtitle", d=digest), fontsize=11, color="#595959")
    labels = [_label("school", "checkins")]
    rates = [digest.checkins]
    for task in digest.tasks:
        labels.append(_label("school", "task", task=task))
        rates.append(task.done)
    values = [_label("school", "value", rate=r) for r in rates]
    _rate_bars(top, labels, rates, values)
    top.set_xlabel(_label("school", "completion"), fontsize=10)
    bottom.set_title(_label("school", "hours", d=digest), fontsize=11)
    if digest.members:
        bins = hours_histogram(digest)
        xs = list(range(len(bins)))
        colours = [POOR] * (len(bins) - 1) + [GOOD]
        bottom.bar(xs, [n for _, n in bins], color=colours, width=0.7)
        bottom.set_xticks(xs, [name for name, _ in bins], fontsize=9)
        for x, (_, n) in zip(xs, bins, strict=True):
            if n:
                bottom.text(x, n, str(n), ha="center", va="bottom", fontsize=10)
        bottom.set_ylabel(_label("school", "people"), fontsize=10)
        bottom.set_ylim(0, max(n for _, n in bins) * 1.2 + 0.5)
        bottom.yaxis.get_major_locator().set_params(integer=True)
    else:
        bottom.text(0.5, 0.5, _label("school", "nobody"), ha="center", va="center", fontsize=12,
                    transform=bottom.transAxes)
        bottom.set_axis_off()
    for side in ("top", "right"):
        bottom.spines[side].set_visible(False)
    return _png(fig)


def district_chart(digest: DistrictDigest) -> bytes:
    """The district: each school's overall completion, the ones falling behind at the top."""
    shown = list(digest.schools[:DISTRICT_MAX_SCHOOLS])
    fig = _figure(*district_size(len(digest.schools)))
    fig.suptitle(_label("district", "title", d=digest), fontsize=16)
    ax = fig.subplots()
    ax.set_title(_label("district", "subtitle", d=digest, shown=len(shown)), fontsize=11, color="#595959")
    if not shown:
        ax.text(0.5, 0.5, _label("district", "nobody"), ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _png(fig)
    rates = [Rate(s.overall_pct or 0, 100) if s.overall is not None else Rate(0, 0) for s in shown]
    values = [_label("district", "value", school=s) for s in shown]
    names = [s.name if len(s.name) <= 12 else s.name[:11] + "…" for s in shown]
    _rate_bars(ax, names, rates, values)
    ax.set_xlabel(_label("district", "axis"), fontsize=10)
    return _png(fig)
