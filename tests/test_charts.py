"""Digest charts: PNGs of the right size that change with the figures, queued once after the digest
where the group's route can show them (WeCom: an image message; DingTalk: markdown by URL)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Config
from handlers.charts import (
    DISTRICT_MAX_SCHOOLS,
    SCHOOL_SIZE,
    cjk_font_family,
    district_chart,
    district_size,
    hours_histogram,
    school_chart,
)
from handlers.digest import all_school_figures, district_figures
from kernel.figures import SchoolDigest
from storage.chart_files import is_chart_name, save_chart
from storage.db import Database
from storage.queries.directory import active_term
from tests.conftest import local
from tests.known_records import DIGEST_AT, add_known_records

LOADED = local(2023, 2, 28, 20, 0)


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()  # a truncated or corrupt file fails here
    assert image.format == "PNG"
    return image


@pytest.fixture
async def known(seeded: Database) -> Database:
    await add_known_records(seeded)
    return seeded


async def school_figures(db: Database) -> dict[str, SchoolDigest]:
    async with db.sessions() as s:
        term = await active_term(s)
        return {d.code: d for d in await all_school_figures(s, term, DIGEST_AT)}


def test_the_cjk_font_is_installed_and_used() -> None:
    assert cjk_font_family() is not None, "install fonts-wqy-microhei (.ci/run does)"


async def test_a_school_chart_is_a_png_of_the_phone_shaped_size(known: Database) -> None:
    figures = await school_figures(known)
    image = decode(school_chart(figures["LX001"]))
    assert image.size == SCHOOL_SIZE
    assert len(image.convert("RGB").getcolors(maxcolors=100_000) or ()) > 20  # drawn, not blank


async def test_different_figures_draw_different_pictures_and_the_same_ones_the_same(known: Database) -> None:
    figures = await school_figures(known)
    lx001, lx002 = figures["LX001"], figures["LX002"]
    first = school_chart(lx001)
    assert school_chart(lx001) == first  # deterministic: the file name (its hash) is stable
    assert school_chart(lx002) != first
    later = dataclasses.replace(lx001, now=local(2023, 3, 18, 9, 0))
    assert school_chart(later) != first  # the date in the subtitle changed


async def test_the_hours_histogram_counts_every_member_once(known: Database) -> None:
    lx001 = (await school_figures(known))["LX001"]
    bins = hours_histogram(lx001)
    assert sum(n for _, n in bins) == len(lx001.members) == 4
    assert bins[0] == ("0–6", 3) and bins[1] == ("6–12", 1) and bins[-1] == ("已满", 0)  # 1, 5, 5, 7


async def test_the_district_chart_grows_with_the_schools_up_to_a_cap(known: Database) -> None:
    async with known.sessions() as s:
        district = await district_figures(s, await active_term(s), DIGEST_AT)
    png = district_chart(district)
    assert decode(png).size == district_size(2)
    assert district_size(DISTRICT_MAX_SCHOOLS + 30) == district_size(DISTRICT_MAX_SCHOOLS)
    assert district_size(3)[1] > district_size(2)[1]
    many = dataclasses.replace(district, schools=district.schools * 15)  # 30 rows: only 20 drawn
    assert decode(district_chart(many)).size == district_size(30)
    fewer = dataclasses.replace(district, schools=district.schools[:1])
    assert district_chart(fewer) != png


def test_charts_are_saved_once_under_their_hash(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    first = save_chart(tmp_path / "files", png)
    assert first.path == (tmp_path / "files" / "charts" / first.name).resolve()
    assert first.sha256 == hashlib.sha256(png).hexdigest() and is_chart_name(first.name)
    assert save_chart(tmp_path / "files", png) == first and first.path.read_bytes() == png
    assert [p.name for p in first.path.parent.iterdir()] == [first.name]
    for bad in ("../x.png", first.sha256.upper() + ".png", first.sha256 + ".jpg", "a" * 63 + ".png", ".png"):
        assert not is_chart_name(bad)


async def test_chart_urls_serve_only_hex_names_from_the_charts_folder(app_client: Any, config: Config) -> None:
    chart = save_chart(Path(config.storage.files_dir), school_png := b"\x89PNG\r\n\x1a\n" + b"p" * 64)
    secret = Path(config.storage.files_dir) / "secret.png"
    secret.write_bytes(b"not for you")
    ok = await app_client.get(f"/charts/{chart.name}")
    assert ok.status == 200 and await ok.read() == school_png
    for bad in ("/charts/..%2Fsecret.png", "/charts/secret.png", f"/charts/{chart.sha256.upper()}.png",
                f"/charts/{'0' * 64}.png", "/charts/%2e%2e/secret.png"):
        resp = await app_client.get(bad)
        assert resp.status == 404, bad
