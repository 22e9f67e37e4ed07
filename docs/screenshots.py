"""Make docs/district.png and docs/simulator.png: the demo district with two weeks of records,
served on 127.0.0.1, photographed by headless Chromium at a phone's size.

    python docs/screenshots.py        # needs chromium + chromium-driver (see .ci/run)
"""

from __future__ import annotations

import asyncio
import io
import random
import socket
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, web  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.config import config_from_mapping  # noqa: E402
from bot.demo import SCHOOLS, demo_roster  # noqa: E402
from bot.web.links import DashboardLinks  # noqa: E402
from kernel.links import DISTRICT  # noqa: E402
from kernel.plan import plan_from_text  # noqa: E402
from platforms.sim.chat import group_conversation  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Checkin, Leave, Person, Photo, Submission  # noqa: E402
from storage.queries.directory import active_term  # noqa: E402
from storage.queries.groups import bind_group, school_by_code  # noqa: E402
from storage.queries.roster import apply_roster  # noqa: E402
from storage.queries.terms import save_plan  # noqa: E402
from tests.browser import PHONE, headless_chromium  # noqa: E402
from tests.conftest import DATA, local  # noqa: E402

LOADED = local(2023, 2, 28, 20, 0)
NOW = local(2023, 3, 16, 9, 58)  # Thursday, the session's check-in window is open
TURNOUT = {"LX001": 0.92, "LX002": 0.7, "LX003": 0.45}  # how keen each demo school is
MAX_BYTES = 300 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(db: Database) -> None:
    """The demo roster on the SPEC's spring plan, and two weeks of plausible records."""
    plan_text = (DATA / "spec_plan.toml").read_text(encoding="utf-8")
    rng = random.Random(7)
    async with db.sessions() as s, s.begin():
        await apply_roster(s, demo_roster())
        await save_plan(s, plan_from_text(plan_text), plan_text, LOADED)
        codes = {}
        for code, name in SCHOOLS:
            school = await school_by_code(s, code)
            assert school is not None
            codes[school.id] = code
            await bind_group(s, platform="sim", conversation_id=group_conversation(code), school_id=school.id,
                             now=LOADED, title=f"{name}研修群", route_kind="sim")
        term = await active_term(s)
        assert term is not None
        people = [p for p in (await s.scalars(select(Person))).all() if p.school_id is not None]
        reflection, photos = term.task_ids["reflection-march"], term.task_ids["lesson-photos"]
        held = [o for o in term.occurrences if o.occurrence.starts_at < NOW - timedelta(hours=1)]
        for p in people:
            keen = TURNOUT[codes[p.school_id]]
            for o in held:
                if rng.random() < keen:
                    late = rng.random() < 0.1
                    at = o.occurrence.starts_at + timedelta(minutes=rng.randint(5, 15) if late else -rng.randint(0, 8))
                    s.add(Checkin(person_id=p.id, occurrence_id=o.id, at=at, late=late, platform="sim",
                                  msg_id=f"seed-{p.id}-{o.id}"))
                elif rng.random() < 0.3:
                    s.add(Leave(person_id=p.id, occurrence_id=o.id, reason="外出培训", at=LOADED))
            written = local(2023, 3, rng.randint(3, 15), 20, 0)
            if rng.random() < keen - 0.15:
                s.add(Submission(person_id=p.id, task_id=reflection, text="（研修心得正文）", chars=1000 + rng.randint(0, 400),
                                 state="accepted", updated_at=written, accepted_at=written))
            elif rng.random() < 0.5:
                s.add(Submission(person_id=p.id, task_id=reflection, text="（草稿）", chars=rng.randint(200, 900),
                                 state="draft", updated_at=written))
            for n in range(rng.choice([0, 1, 3, 3]) if rng.random() < keen else 0):
                s.add(Photo(person_id=p.id, task_id=photos, sha256=f"{p.id:04x}{n:02x}".ljust(64, "0"),
                            mime="image/jpeg", size=1000, at=written))


async def chat(base: str, ids: dict[str, int]) -> None:
    """A few messages in 兰西县第一小学's group, through the simulator's own API."""
    lines = [("张明", "@研修助手 签到"), ("李秀英", "簽到"), ("刘洋", "@研修助手 进度"),
             ("陈静", "请假 下次 区里外出教研")]
    async with ClientSession() as http:
        for n, (who, text) in enumerate(lines):
            resp = await http.post(f"{base}/sim/api/send", json={
                "person_id": ids[who], "conversation_id": group_conversation("LX001"), "text": text,
                "msg_id": f"shot-{n}"})
            assert resp.status == 200, await resp.text()


def shrink(png: bytes) -> bytes:
    """Keep the picture under MAX_BYTES: a 256-colour palette is plenty for a UI."""
    if len(png) <= MAX_BYTES:
        return png
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256).save(out, format="PNG", optimize=True)
    return out.getvalue()


def photograph(driver: Any, url: str, ready_css: str, full_page: bool, min_count: int = 1) -> bytes:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ready_css)) >= min_count)
    time.sleep(0.5)  # fonts and the last poll settle
    height = PHONE[1]
    if full_page:
        height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 2400)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": PHONE[0], "height": height, "deviceScaleFactor": 1, "mobile": True})
    time.sleep(0.3)
    return shrink(driver.get_screenshot_as_png())


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="yanxiu-shots-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = config_from_mapping({
        "server": {"host": "127.0.0.1", "port": port, "public_base_url": base},
        "database": {"url": f"sqlite+aiosqlite:///{folder / 'shots.db'}"},
        "storage": {"files_dir": str(folder / "files")},
        "sim": {"enabled": True},  # the simulator's page is one of the pictures
    }, env={})
    db = Database(config.database.url)
    await db.upgrade()
    await seed(db)
    async with db.sessions() as s:
        ids = {p.name: p.id for p in (await s.scalars(select(Person))).all()}
    await db.close()

    clock: list[datetime] = [NOW]
    runner = web.AppRunner(create_app(config, clock=lambda: clock[0]), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    driver = await asyncio.to_thread(headless_chromium, folder / "chromium-profile")
    try:
        await chat(base, ids)
        clock[0] = NOW + timedelta(minutes=5)
        issuer = DashboardLinks(base, "", folder / "files")
        link, _ = issuer.issue(ids["钱志强"], DISTRICT, clock[0])
        district = await asyncio.to_thread(photograph, driver, link, "#trend", True)
        await asyncio.to_thread(driver.execute_cdp_cmd, "Emulation.clearDeviceMetricsOverride", {})
        simulator = await asyncio.to_thread(photograph, driver, f"{base}/sim/", ".bubble", False, 8)
    finally:
        await asyncio.to_thread(driver.quit)
        await runner.cleanup()
    for name, png in (("district.png", district), ("simulator.png", simulator)):
        (ROOT / "docs" / name).write_bytes(png)
        print(f"docs/{name}: {len(png) // 1024} KB, {Image.open(io.BytesIO(png)).size}")


if __name__ == "__main__":
    asyncio.run(main())
