"""Charts a lead would forward: drawn with the longest real school and task names in the seeds,
no text leaves the picture or overlaps another text (boxes from matplotlib's own renderer),
and every name is shown whole, wrapped, or cut with "…" — never cut at an edge."""

from __future__ import annotations

from itertools import combinations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from handlers.charts import DISTRICT_MAX_SCHOOLS, district_figure, school_figure
from handlers.digest import all_school_figures, district_figures
from kernel.figures import DistrictDigest, SchoolDigest
from storage.db import Database
from storage.queries.directory import active_term
from tests.known_records import DIGEST_AT, add_known_records
from tests.long_names import (
    LONG_SCHOOL,
    district_with_long_names,
    school_with_long_names,
    task_titles,
)


@pytest.fixture
async def figures(seeded: Database) -> tuple[list[SchoolDigest], DistrictDigest]:
    await add_known_records(seeded)
    async with seeded.sessions() as s:
        term = await active_term(s)
        assert term is not None
        return await all_school_figures(s, term, DIGEST_AT), await district_figures(s, term, DIGEST_AT)


def drawn_texts(fig: Figure) -> list[tuple[str, Bbox]]:
    """Every visible, non-empty text of the drawn figure and its box in pixels."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip()]


def assert_nothing_cut_or_overlapping(fig: Figure) -> list[str]:
    """The figure's texts all lie inside it and apart; returns them."""
    width, height = fig.bbox.width, fig.bbox.height
    texts = drawn_texts(fig)
    for text, box in texts:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, \
            f"{text!r} leaves the {width:.0f}×{height:.0f} picture: {box.extents}"
    for (a, box_a), (b, box_b) in combinations(texts, 2):
        assert not box_a.overlaps(box_b), f"{a!r} {box_a.extents} overlaps {b!r} {box_b.extents}"
    return [text for text, _ in texts]


def shown_as(name: str, texts: list[str]) -> str:
    """The text that shows `name`: whole, wrapped over lines, or its beginning and "…"."""
    for text in texts:
        joined = text.replace("\n", "")
        if name in joined or (joined.endswith("…") and len(joined) > 4
                              and name.startswith(joined[:-1].split("·")[-1])):
            return text
    raise AssertionError(f"{name!r} is not in the chart: {texts}")


async def test_the_school_chart_with_the_seeds_longest_names_has_nothing_cut_or_overlapping(
        figures: tuple[list[SchoolDigest], DistrictDigest]) -> None:
    school = school_with_long_names(figures[0][0])
    texts = assert_nothing_cut_or_overlapping(school_figure(school))
    for _, title in task_titles():
        shown_as(title, texts)
    title = next(t for t in texts if "研修完成情况" in t)
    assert LONG_SCHOOL[:8] in title.replace("\n", "")  # the school's name wraps, it is not cut
    assert "完成率" in texts and any(t.startswith("学时分布") for t in texts)


async def test_the_school_chart_of_the_known_records_has_nothing_cut_or_overlapping(
        figures: tuple[list[SchoolDigest], DistrictDigest]) -> None:
    for school in figures[0]:
        texts = assert_nothing_cut_or_overlapping(school_figure(school))
        assert "照片·推门听课出课照片(三张不同角度)" in [t.replace("\n", "") for t in texts]


async def test_the_district_chart_with_the_seeds_longest_names_has_nothing_cut_or_overlapping(
        figures: tuple[list[SchoolDigest], DistrictDigest]) -> None:
    district = district_with_long_names(figures[1])
    texts = assert_nothing_cut_or_overlapping(district_figure(district))
    for school in district.schools[:DISTRICT_MAX_SCHOOLS]:
        shown = shown_as(school.name, texts)
        assert shown == school.name or shown.endswith("…"), shown
    assert "兰西县实验中学" in texts  # drawn whole, not "西县实验中学"
    assert any(t.endswith("…") and LONG_SCHOOL.startswith(t[:-1]) for t in texts)
    assert any(f"显示最落后的 {DISTRICT_MAX_SCHOOLS} 所" in t.replace("\n", "") for t in texts)


async def test_the_district_chart_of_the_known_records_has_nothing_cut_or_overlapping(
        figures: tuple[list[SchoolDigest], DistrictDigest]) -> None:
    texts = assert_nothing_cut_or_overlapping(district_figure(figures[1]))
    assert {"兰西县实验中学", "兰西县第一小学"} <= set(texts)
