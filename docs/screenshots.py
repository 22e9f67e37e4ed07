"""Make the pictures in docs/: the demo district with two weeks of records, served on 127.0.0.1,
photographed by headless Chromium at a phone's 390×844 CSS pixels, and the two digest charts
drawn with the longest real school and task names in the seeds.

    python docs/screenshots.py        # needs chromium + chromium-driver (see .ci/run), and
                                      # fonts-noto-color-emoji for the replies' ✅ and ⬜

- simulator.png, simulator_evening.png: a teacher's day in the simulator, driven through the page
  itself (the chips, the text box, the 图片 button): 签到, 进度, a reflection draft, a photo;
- district.png, school.png (its teachers × tasks grid scrolled sideways), teacher.png: the
  dashboard as the district admin and the school's lead open it from their 后台 links;
- chart_school.png, chart_district.png: the charts a digest sends, with the seeds' long names.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.config import config_from_mapping  # noqa: E402
from bot.demo import SCHOOLS, demo_roster  # noqa: E402
from bot.web.links import DashboardLinks  # noqa: E402
from handlers.charts import district_chart, school_chart  # noqa: E402
from handlers.digest import all_school_figures  # noqa: E402
from kernel.figures import district_digest  # noqa: E402
from kernel.links import DISTRICT, school_scope  # noqa: E402
from kernel.plan import plan_from_text  # noqa: E402
from platforms.sim.chat import group_conversation  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.files import write_photo_file  # noqa: E402
from storage.models import Checkin, Leave, Person, Photo, Submission  # noqa: E402
from storage.queries.directory import active_term  # noqa: E402
from storage.queries.groups import bind_group, school_by_code  # noqa: E402
from storage.queries.roster import apply_roster  # noqa: E402
from storage.queries.terms import save_plan  # noqa: E402
from tests.browser import PHONE, headless_chromium  # noqa: E402
from tests.conftest import DATA, local  # noqa: E402
from tests.long_names import district_with_long_names, school_with_long_names  # noqa: E402

LOADED = local(2023, 2, 28, 20, 0)
NOW = local(2023, 3, 16, 9, 57)  # Thursday: the 10:00 session's check-in window is open
TURNOUT = {"LX001": 0.92, "LX002": 0.7, "LX003": 0.45}  # how keen each demo school is
TEACHER, LEAD, ADMIN = "张明", "王丽华", "钱志强"  # whose day it is; who opens the dashboard
MAX_BYTES = 300 * 1024
DOCS = ROOT / "docs"
DRAFT = ("今天听了李老师的数学课《分数的初步认识》。她先让学生动手折纸，把一张纸平均分成两份，"
         "再引出二分之一的写法和读法，学生们兴趣很高。课堂上她注意给学生留出思考的时间，"
         "提问之后会等一等，让更多的学生举手发言。我在自己的课堂上也要多给学生留白。")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def classroom_photo(seed: int) -> bytes:
    """A small JPEG standing in for a phone photo of a lesson: a board, a desk, some heads."""
    rng = random.Random(seed)
    image = Image.new("RGB", (480, 360), (rng.randint(200, 235), rng.randint(205, 230), rng.randint(190, 220)))
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 40, 420, 170), fill=(34, 85, 60))  # the blackboard
    for line in range(3):
        y = 70 + 30 * line
        draw.line((90, y, 90 + rng.randint(150, 300), y), fill=(230, 230, 220), width=4)
    draw.rectangle((0, 250, 480, 360), fill=(150, 110, 70))  # desks
    for x in range(30, 480, 70):
        draw.ellipse((x, 200 + rng.randint(0, 20), x + 44, 244 + rng.randint(0, 20)), fill=(40, 30, 30))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


async def seed(db: Database, files_dir: Path) -> None:
    """The demo roster on the SPEC's spring plan, and two weeks of plausible records (photos
    as real files, so the teacher page shows them). The teacher whose day it is starts with
    no reflection and no photo."""
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
            keen = TURNOUT[codes[p.school_id or 0]]  # every one has a school (filtered above)
            for o in held:
                if rng.random() < keen:
                    late = rng.random() < 0.1
                    at = o.occurrence.starts_at + timedelta(minutes=rng.randint(5, 15) if late else -rng.randint(0, 8))
                    s.add(Checkin(person_id=p.id, occurrence_id=o.id, at=at, late=late, platform="sim",
                                  msg_id=f"seed-{p.id}-{o.id}"))
                elif rng.random() < 0.3:
                    s.add(Leave(person_id=p.id, occurrence_id=o.id, reason="外出培训", at=LOADED))
            if p.name == TEACHER:
                continue
            written = local(2023, 3, rng.randint(3, 15), 20, 0)
            if rng.random() < keen - 0.15:
                s.add(Submission(person_id=p.id, task_id=reflection, text="（研修心得正文）", chars=1000 + rng.randint(0, 400),
                                 state="accepted", updated_at=written, accepted_at=written))
            elif rng.random() < 0.5:
                s.add(Submission(person_id=p.id, task_id=reflection, text="（草稿）", chars=rng.randint(200, 900),
                                 state="draft", updated_at=written))
            for n in range(rng.choice([0, 1, 3, 3]) if rng.random() < keen else 0):
                data = classroom_photo(p.id * 10 + n)
                sha = hashlib.sha256(data).hexdigest()
                await asyncio.to_thread(write_photo_file, files_dir, sha, "image/jpeg", data)
                s.add(Photo(person_id=p.id, task_id=photos, sha256=sha, mime="image/jpeg", size=len(data),
                            at=written))


def shrink(png: bytes) -> bytes:
    """Keep the picture under MAX_BYTES: a 256-colour palette is plenty for a UI."""
    if len(png) <= MAX_BYTES:
        return png
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256).save(out, format="PNG", optimize=True)
    return out.getvalue()


class Phone:
    """Headless Chromium at 390×844, driven from a worker thread while the app serves."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def wait(self, script: str, *args: Any) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, 30).until(lambda d: d.execute_script(script, *args))

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def open(self, url: str, ready: str) -> None:
        self.driver.get(url)
        self.wait("return document.querySelector(arguments[0])", ready)
        time.sleep(0.5)  # fonts settle

    def _viewport(self, height: int) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE[0], "height": height, "deviceScaleFactor": 1, "mobile": True})

    def shot(self, full_page: bool = False) -> bytes:
        """The viewport, or the whole page (at most 2400 px tall) at the phone's width."""
        self.js("document.activeElement && document.activeElement.blur()")  # no focus ring
        height = PHONE[1]
        if full_page:
            height = min(int(self.js("return document.documentElement.scrollHeight")), 2400)
        self._viewport(height)
        time.sleep(0.3)
        png = self.driver.get_screenshot_as_png()
        self._viewport(PHONE[1])  # back to the phone's screen (clearing it would widen the page)
        return shrink(png)

    # the simulator, as a person uses it
    def bot_replies(self) -> int:
        return int(self.js("return document.querySelectorAll('#log .msg.bot').length"))

    def then_reply(self, act: Callable[[], None]) -> None:
        """Do something on the page and wait for the bot's answer to show."""
        before = self.bot_replies()
        act()
        self.wait("return document.querySelectorAll('#log .msg.bot').length > arguments[0]", before)
        time.sleep(0.3)

    def chip(self, text: str) -> None:
        self.js("[...document.querySelectorAll('#chips button')].find(b => b.textContent === arguments[0])"
                ".click()", text)

    def type_and_send(self, text: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.ID, "text").send_keys(text)
        self.driver.find_element(By.ID, "send").click()

    def photo(self, caption: str, path: Path) -> None:
        """A picture sent with a caption: in a group the bot gets only what @s it."""
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.ID, "text").send_keys(caption)
        self.driver.find_element(By.ID, "file").send_keys(str(path))


def teacher_day(phone: Phone, base: str, teacher_id: int, clock: list[datetime], photo: Path) -> list[bytes]:
    """The teacher checks in before the session, asks 进度 once it has started, and in the
    evening sends a reflection draft and a photo of the lesson: two pictures of the chat."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    phone.open(f"{base}/sim/", "#who option")
    Select(phone.driver.find_element(By.ID, "who")).select_by_value(str(teacher_id))
    phone.wait("return document.getElementById('conv').value === 'sim-group-LX001'")
    phone.then_reply(lambda: phone.chip("签到"))
    clock[0] = NOW + timedelta(minutes=8)  # the session has started
    phone.then_reply(lambda: phone.chip("进度"))
    morning = phone.shot()
    clock[0] = NOW.replace(hour=20, minute=30)
    phone.then_reply(lambda: phone.type_and_send(f"反思 {DRAFT}"))
    clock[0] += timedelta(minutes=3)
    phone.then_reply(lambda: phone.photo("听课照片", photo))
    phone.js("const log = document.getElementById('log'); log.scrollTop = log.scrollHeight")
    return [morning, phone.shot()]


def dashboard(phone: Phone, district_url: str, school_url: str, teacher_id: int) -> list[bytes]:
    """The district page whole, the school's grid scrolled to its last columns, a teacher's page."""
    phone.open(district_url, "#trend")
    district = phone.shot(full_page=True)
    phone.open(school_url, "#grid table")
    phone.js("document.getElementById('grid').scrollIntoView()")
    phone.js("const box = document.querySelector('#grid .scroll'); box.scrollLeft = box.scrollWidth")
    time.sleep(0.3)
    school = phone.shot()
    phone.js("document.querySelector(arguments[0]).click()", f"#member-{teacher_id} td:first-child a")
    phone.wait("return document.querySelector('#task-lesson-photos img')")
    time.sleep(0.5)
    return [district, school, phone.shot(full_page=True)]


async def charts(db: Database, now: datetime) -> list[bytes]:
    """The school and district charts with the seeds' longest school and task names."""
    async with db.sessions() as s:
        term = await active_term(s)
        assert term is not None
        schools = await all_school_figures(s, term, now)
    district = district_digest(term, schools, now)
    return [school_chart(school_with_long_names(schools[0])), district_chart(district_with_long_names(district))]


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="yanxiu-shots-"))
    files = folder / "files"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = config_from_mapping({
        "server": {"host": "127.0.0.1", "port": port, "public_base_url": base},
        "database": {"url": f"sqlite+aiosqlite:///{folder / 'shots.db'}"},
        "storage": {"files_dir": str(files)},
        "sim": {"enabled": True},  # the simulator's page is one of the pictures
    }, env={})
    db = Database(config.database.url)
    await db.upgrade()
    await seed(db, files)
    async with db.sessions() as s:
        ids = {p.name: (p.id, p.school_id) for p in (await s.scalars(select(Person))).all()}
    photo = folder / "lesson.jpg"
    photo.write_bytes(classroom_photo(2023))

    clock: list[datetime] = [NOW]
    runner = web.AppRunner(create_app(config, clock=lambda: clock[0]), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    phone = Phone(await asyncio.to_thread(headless_chromium, folder / "chromium-profile"))
    try:
        sim = await asyncio.to_thread(teacher_day, phone, base, ids[TEACHER][0], clock, photo)
        issuer = DashboardLinks(base, "", files)
        district_url, _ = issuer.issue(ids[ADMIN][0], DISTRICT, clock[0])
        school_url, _ = issuer.issue(ids[LEAD][0], school_scope(ids[LEAD][1] or 0), clock[0])
        pages = await asyncio.to_thread(dashboard, phone, district_url, school_url, ids[TEACHER][0])
        drawn = await charts(db, clock[0])
    finally:
        await asyncio.to_thread(phone.driver.quit)
        await runner.cleanup()
        await db.close()
    names = ("simulator.png", "simulator_evening.png", "district.png", "school.png", "teacher.png",
             "chart_school.png", "chart_district.png")
    for name, png in zip(names, [*sim, *pages, *drawn], strict=True):
        (DOCS / name).write_bytes(png)
        print(f"docs/{name}: {len(png) // 1024} KB, {Image.open(io.BytesIO(png)).size}")


if __name__ == "__main__":
    asyncio.run(main())
