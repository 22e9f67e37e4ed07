"""Shared fixtures: a real SQLite file per test, the SPEC plan and roster, the app over loopback."""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config, config_from_mapping
from kernel.plan import plan_from_text
from kernel.roster import load_roster
from platforms.sim.chat import group_conversation
from storage.db import Database
from storage.queries.groups import bind_group, school_by_code
from storage.queries.roster import apply_roster
from storage.queries.terms import save_plan

DATA = Path(__file__).resolve().parent / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "platforms"
SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"
TZ = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


@dataclass
class FakeClock:
    """The one clock the app reads; tests move it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def set(self, *args: int) -> None:
        self.now = local(*args)

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


async def count_rows(db: Database, model: Any) -> int:
    """How many rows a table holds: what a test asserts "nothing stored" / "stored once" with."""
    from sqlalchemy import func, select

    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(local(2023, 3, 7, 9, 55))  # a Tuesday, 5 minutes before the session


# With YANXIU_TEST_PG_URL (an admin URL such as postgresql+asyncpg://postgres@127.0.0.1:55432/postgres,
# as .ci/run sets it) every test gets a fresh PostgreSQL database cloned from a migrated
# template; without it, a fresh SQLite file.
PG_ADMIN_URL = os.environ.get("YANXIU_TEST_PG_URL")
PG_TEMPLATE = "yanxiu_test_template"


def _pg_url(database: str) -> str:
    assert PG_ADMIN_URL is not None
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


async def _pg_admin() -> Any:
    import asyncpg

    assert PG_ADMIN_URL is not None
    return await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))


_pg_template_ready = False


async def _fresh_pg_database() -> str:
    global _pg_template_ready
    import asyncio
    import uuid

    from storage.db import upgrade_schema

    conn = await _pg_admin()
    try:
        if not _pg_template_ready:
            await conn.execute(f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {PG_TEMPLATE}")
            await asyncio.to_thread(upgrade_schema, _pg_url(PG_TEMPLATE))
            _pg_template_ready = True
        name = f"yanxiu_test_{uuid.uuid4().hex[:12]}"
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {PG_TEMPLATE}")
        return name
    finally:
        await conn.close()


async def _drop_pg_database(name: str) -> None:
    conn = await _pg_admin()
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
async def db_url(tmp_path: Path) -> AsyncIterator[str]:
    if not PG_ADMIN_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'yanxiu.db'}"
        return
    name = await _fresh_pg_database()
    yield _pg_url(name)
    await _drop_pg_database(name)


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    return config_from_mapping({
        "database": {"url": db_url},
        "storage": {"files_dir": str(tmp_path / "files")},
        "server": {"public_base_url": "http://127.0.0.1:8080"},
        "sim": {"enabled": True},  # the tests talk through the simulator, as the demo does
    }, env={})


@pytest.fixture
async def db(config: Config) -> AsyncIterator[Database]:
    database = Database(config.database.url)
    await database.upgrade()
    yield database
    await database.close()


@pytest.fixture
def spec_plan_text() -> str:
    return (DATA / "spec_plan.toml").read_text(encoding="utf-8")


async def seed(db: Database, plan_text: str, now: datetime, roster: Path = DATA / "roster.csv") -> None:
    rows, rejected = load_roster(roster)
    assert not rejected
    async with db.sessions() as s, s.begin():
        await apply_roster(s, rows)
        await save_plan(s, plan_from_text(plan_text), plan_text, now)
        for code in ("LX001", "LX002"):
            school = await school_by_code(s, code)
            assert school is not None
            await bind_group(s, platform="sim", conversation_id=group_conversation(code),
                             school_id=school.id, now=now, route_kind="sim")


@pytest.fixture
async def seeded(db: Database, spec_plan_text: str, clock: FakeClock) -> Database:
    await seed(db, spec_plan_text, clock.now)
    return db


@dataclass
class SimChat:
    """Drives the simulator over real HTTP, as a person at a phone would."""

    client: Any
    ids: dict[str, int] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)

    async def load(self) -> None:
        resp = await self.client.get("/sim/api/people")
        assert resp.status == 200
        self.ids = {p["name"]: p["id"] for p in (await resp.json())["people"]}

    async def send(self, who: str, text: str, *, school: str | None = "LX001",
                   msg_id: str | None = None, image: str | None = None,
                   file: tuple[str, bytes] | None = None) -> dict[str, Any]:
        if not self.ids:
            await self.load()
        pid = self.ids[who]
        conv = group_conversation(school) if school else f"sim-dm-{pid}"
        body: dict[str, Any] = {"person_id": pid, "conversation_id": conv, "text": text,
                                "msg_id": msg_id or f"t-{next(self.counter)}"}
        if image is not None:
            body["image"] = image
        if file is not None:
            body["file"] = {"name": file[0], "data": base64.b64encode(file[1]).decode()}
        resp = await self.client.post("/sim/api/send", json=body)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def say(self, who: str, text: str, **kwargs: Any) -> str:
        return (await self.send(who, text, **kwargs))["reply"]


@pytest.fixture
async def app_client(aiohttp_client: Any, config: Config, clock: FakeClock, seeded: Database) -> Any:
    from bot.app import create_app

    return await aiohttp_client(create_app(config, clock=clock))


@pytest.fixture
async def chat(app_client: Any) -> SimChat:
    return SimChat(app_client)
