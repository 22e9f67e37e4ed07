"""The per-process directory: what the check-in path's synchronous look-up may answer from
the cache, and when it must hand over to the database (a new roster row, a miss gone
stale, the active term's periodic check)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from kernel.roster import RosterRow
from platforms.sim.chat import group_conversation
from storage import directory as directory_module
from storage.db import Database
from storage.directory import MISS_TTL_SECONDS, TERM_CHECK_SECONDS, Directory
from storage.models import Identity, Person, Term
from storage.queries.directory import directory_version
from storage.queries.groups import bind_group
from storage.queries.roster import apply_roster


class Monotonic:
    """time.monotonic as the directory sees it, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    fake = Monotonic()
    monkeypatch.setattr(directory_module.time, "monotonic", fake)
    return fake


@pytest.fixture
async def directory(seeded: Database, monotonic: Monotonic) -> Directory:
    d = Directory(seeded.sessions, roster_ids=frozenset({"sim"}))  # the simulator: roster ids
    await d.load()
    return d


async def test_a_cached_teacher_in_a_bound_group_is_answered_without_a_query(directory: Directory) -> None:
    found = directory.cached("dingtalk", "dt-zhangming", None)
    assert found is not None
    person, group, term = found
    assert person is not None and person.name == "张明"
    assert group is None and term is not None
    in_group = directory.cached("sim", str(person.id), group_conversation("LX001"))
    assert in_group is not None and in_group[1] is not None
    assert in_group[1].school_id == person.school_id


async def add_person(session: Any, name: str, dingtalk_id: str) -> None:
    """Someone added to the roster by another process, with their DingTalk identity."""
    person = Person(name=name, role="teacher")
    session.add(person)
    await session.flush()
    session.add(Identity(platform="dingtalk", user_id=dingtalk_id, person_id=person.id))


async def test_nothing_is_answered_before_the_first_load(seeded: Database) -> None:
    assert Directory(seeded.sessions).cached("dingtalk", "dt-zhangming", None) is None


async def test_someone_added_after_the_load_is_looked_up_then_cached(
        directory: Directory, seeded: Database) -> None:
    assert directory.cached("dingtalk", "dt-newcomer", None) is None  # not a known miss yet
    async with seeded.sessions() as s, s.begin():
        await add_person(s, "新老师", "dt-newcomer")
    person = await directory.person("dingtalk", "dt-newcomer")
    assert person is not None and person.name == "新老师"
    found = directory.cached("dingtalk", "dt-newcomer", None)
    assert found is not None and found[0] == person


async def test_a_miss_is_answered_until_it_goes_stale(
        directory: Directory, seeded: Database, monotonic: Monotonic) -> None:
    assert await directory.person("dingtalk", "dt-stranger") is None
    assert directory.cached("dingtalk", "dt-stranger", None) == (None, None, directory._term)
    assert await directory.group("dingtalk", "cid-unbound") is None
    assert directory.cached("dingtalk", "dt-zhangming", "cid-unbound") is not None
    async with seeded.sessions() as s, s.begin():
        await add_person(s, "后来者", "dt-stranger")
    monotonic.now += MISS_TTL_SECONDS + 1
    assert directory.cached("dingtalk", "dt-stranger", None) is None
    assert directory.cached("dingtalk", "dt-zhangming", "cid-unbound") is None
    person = await directory.person("dingtalk", "dt-stranger")
    assert person is not None and person.name == "后来者"


async def test_the_term_check_falls_due_and_sees_a_plan_loaded_elsewhere(
        directory: Directory, seeded: Database, monotonic: Monotonic) -> None:
    assert directory.cached("dingtalk", "dt-zhangming", None) is not None
    async with seeded.sessions() as s, s.begin():
        await s.execute(update(Term).values(active=False))
    monotonic.now += TERM_CHECK_SECONDS + 1
    assert directory.cached("dingtalk", "dt-zhangming", None) is None  # the check is due
    assert await directory.term() is None  # another process deactivated the plan
    found = directory.cached("dingtalk", "dt-zhangming", None)
    assert found is not None and found[2] is None


async def test_a_roster_import_elsewhere_reaches_the_cache_at_the_next_check(
        directory: Directory, seeded: Database, monotonic: Monotonic) -> None:
    """Another process (the CLI, another worker) moves 张明 to another school and promotes
    him: the cache answers the old record until the check, then reloads."""
    before = directory.cached("dingtalk", "dt-zhangming", None)
    assert before is not None and before[0] is not None
    other_school = next(s for s in directory.schools() if s.id != before[0].school_id)
    row = RosterRow(line=2, school_code=other_school.code, school_name=other_school.name, name="张明",
                    role="school_lead", dingtalk_userid="dt-zhangming", wecom_userid="wx-zhangming",
                    mobile="13800000002", subject="数学", stage="小学")
    async with seeded.sessions() as s, s.begin():
        result = await apply_roster(s, [row])
    assert result.updated == 1
    assert directory.cached("dingtalk", "dt-zhangming", None) == before  # not checked yet
    monotonic.now += TERM_CHECK_SECONDS + 1
    assert directory.cached("dingtalk", "dt-zhangming", None) is None  # the check is due
    await directory.term()
    after = directory.cached("dingtalk", "dt-zhangming", None)
    assert after is not None and after[0] is not None
    assert (after[0].school_id, after[0].role) == (other_school.id, "school_lead")
    async with seeded.sessions() as s, s.begin():  # the same roster again: nothing to reload
        assert (await apply_roster(s, [row])).unchanged == 1
        version = await directory_version(s)
    async with seeded.sessions() as s:
        assert await directory_version(s) == version


async def test_a_group_rebound_elsewhere_reaches_the_cache_at_the_next_check(
        directory: Directory, seeded: Database, monotonic: Monotonic) -> None:
    conversation = group_conversation("LX001")
    found = directory.cached("dingtalk", "dt-zhangming", None)
    assert found is not None and found[0] is not None
    teacher = found[0]
    bound = directory.cached("sim", str(teacher.id), conversation)
    assert bound is not None and bound[1] is not None
    other_school = next(s for s in directory.schools() if s.id != bound[1].school_id)
    async with seeded.sessions() as s, s.begin():  # 改绑, as another worker would
        await bind_group(s, platform="sim", conversation_id=conversation, school_id=other_school.id,
                         now=datetime.now(UTC))
    monotonic.now += TERM_CHECK_SECONDS + 1
    await directory.term()
    after = directory.cached("sim", str(teacher.id), conversation)
    assert after is not None and after[1] is not None and after[1].school_id == other_school.id
