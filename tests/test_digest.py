"""School and district digests over known records: the text line by line, the ranking, the queries."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

import bot.cli.common
from bot.cli import main
from handlers.digest import (
    build_all_digests,
    build_district_digest,
    build_school_digest,
    build_school_digests,
    school_digest_figures,
)
from kernel.hours import progress_of
from storage.db import Database
from storage.models import ChatGroup, Leave, Outbox, Person
from storage.queries.directory import active_term, all_schools
from storage.queries.records import person_records
from tests.conftest import DATA, local, seed
from tests.known_records import DIGEST_AT, add_known_records

SCHOOL_LX001 = """\
兰西县第一小学 · 研修进度
2023年春季学期校本研修 · 截至 3月17日 16:00
教师 4 人 · 总完成度 47%

【签到】已开展 5 次
应签 19 人次，实签 13（68%）
迟到 1 次 · 请假 1 次
缺勤：刘洋 5 次、李秀英 1 次

【心得】三月研修心得 · 截止 3月31日 17:00
通过 2/4（50%）
草稿：张明 500/1000 字
未交：刘洋

【照片】推门听课出课照片(三张不同角度) · 截止 4月30日 17:00
达标 1/4（25%）
不足：李秀英 2/3 张
未交：王丽华、张明

【疑似雷同】已通过，请核实
李秀英「三月研修心得」与 王丽华 相似 82%

【请假】
李秀英 3月9日（周四）：家中有事
刘洋 3月21日（周二，待）：外出培训

【学时】要求 36，平均 4.5，已满 0 人
未满：刘洋 1、张明 5、李秀英 5、王丽华 7"""

DISTRICT = """\
全区研修进度
2023年春季学期校本研修 · 截至 3月17日 16:00
学校 2 所 · 教师 7 人 · 总完成度 28%

【排名】按总完成度，落后的在前
1. 兰西县实验中学 2%｜签到 6% 心得 0% 照片 0%｜人均学时 0.3
2. 兰西县第一小学 47%｜签到 68% 心得 50% 照片 25%｜人均学时 4.5｜雷同 1

【合计】签到 14/34（41%） · 心得 2/7（28%） · 照片 1/7（14%） · 人均学时 2.7"""


@pytest.fixture
async def known(seeded: Database) -> Database:
    await add_known_records(seeded)
    return seeded


async def lx001_digest(db: Database, *, markdown: bool = False) -> str:
    async with db.sessions() as s:
        term = await active_term(s)
        school = (await all_schools(s))[0]
        return await build_school_digest(s, term, school, DIGEST_AT, markdown=markdown)


def assert_lines(actual: str, expected: str) -> None:
    got, want = actual.splitlines(), expected.splitlines()
    for n, (a, b) in enumerate(zip(got, want, strict=False), start=1):
        assert a == b, f"line {n}: {a!r} != {b!r}"
    assert len(got) == len(want), f"{len(got)} lines, expected {len(want)}:\n{actual}"


async def test_a_school_digest_with_known_records_line_by_line(known: Database) -> None:
    assert_lines(await lx001_digest(known), SCHOOL_LX001)


async def test_the_markdown_dialect_lists_and_escapes_what_people_typed(known: Database) -> None:
    async with known.sessions() as s, s.begin():
        await s.execute(update(Leave).where(Leave.reason == "外出培训").values(reason="*外出* 培训_A"))
    lines = (await lx001_digest(known, markdown=True)).splitlines()
    assert lines[0] == "#### 兰西县第一小学 · 研修进度"
    assert lines[1] == "- 2023年春季学期校本研修 · 截至 3月17日 16:00"
    assert "**签到** 已开展 5 次" in lines
    assert "- 缺勤：刘洋 5 次、李秀英 1 次" in lines
    assert "- 刘洋 3月21日（周二，待）：\\*外出\\* 培训\\_A" in lines


async def test_every_school_at_once_equals_each_school_alone(known: Database) -> None:
    async with known.sessions() as s:
        term = await active_term(s)
        together = await build_school_digests(s, term, DIGEST_AT)
        alone = {school.code: await build_school_digest(s, term, school, DIGEST_AT)
                 for school in await all_schools(s)}
    assert together == alone
    assert_lines(together["LX001"], SCHOOL_LX001)


async def test_hours_and_states_match_what_each_teacher_sees_in_progress(known: Database) -> None:
    async with known.sessions() as s:
        term = await active_term(s)
        for school in await all_schools(s):
            digest = await school_digest_figures(s, term, school, DIGEST_AT)
            for member in digest.members:
                records = await person_records(s, member.member.id, [i.id for i in term.occurrences],
                                               list(term.task_ids.values()))
                assert member.progress == progress_of(term, records, DIGEST_AT), member.name


async def test_the_district_digest_ranks_the_school_falling_behind_first(known: Database) -> None:
    async with known.sessions() as s:
        text = await build_district_digest(s, await active_term(s), DIGEST_AT)
    assert_lines(text, DISTRICT)


async def test_a_school_with_nobody_yet_ranks_after_those_with_figures(known: Database) -> None:
    from storage.models import School

    async with known.sessions() as s, s.begin():
        s.add(School(code="LX000", name="兰西县新建小学"))
    async with known.sessions() as s:
        term = await active_term(s)
        lines = (await build_district_digest(s, term, DIGEST_AT)).splitlines()
        empty = await build_school_digests(s, term, DIGEST_AT)
    ranked = [line.split(" ")[1] for line in lines if re.match(r"\d+\. ", line)]
    assert ranked == ["兰西县实验中学", "兰西县第一小学", "兰西县新建小学"]
    assert "教师 0 人 · 总完成度 —" in empty["LX000"] and "本校花名册里还没有教师。" in empty["LX000"]


async def test_the_digest_queries_do_not_grow_with_schools_or_teachers(known: Database) -> None:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    async def run() -> int:
        statements.clear()
        async with known.sessions() as s:
            term = await active_term(s)
            statements.clear()
            await build_all_digests(s, term, DIGEST_AT)
        return len(statements)

    event.listen(known.engine.sync_engine, "before_cursor_execute", count)
    try:
        before = await run()
        async with known.sessions() as s, s.begin():
            from storage.models import School

            for n in range(20):
                school = School(code=f"X{n:03d}", name=f"测试学校{n}")
                s.add(school)
                await s.flush()
                s.add_all(Person(school_id=school.id, name=f"教师{n}-{k}", role="teacher") for k in range(5))
        after = await run()
    finally:
        event.remove(known.engine.sync_engine, "before_cursor_execute", count)
    assert before == after <= 9  # one pass: a handful of set-wise queries


async def test_a_school_without_records_is_all_missing(seeded: Database) -> None:
    async with seeded.sessions() as s:
        text = await build_school_digest(s, await active_term(s), (await all_schools(s))[1],
                                         local(2023, 3, 1, 9, 0))
    lines = text.splitlines()
    assert lines[2] == "教师 3 人 · 总完成度 0%"
    assert "【签到】还没有开展过研修活动" in lines
    assert "未交：赵建国、孙晓梅、周海涛" in lines


# --- the command line ---------------------------------------------------------------------

def write_config(tmp_path: Path) -> tuple[Path, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{url}"\n[storage]\nfiles_dir = "{tmp_path / "files"}"\n',
                   encoding="utf-8")
    return cfg, url


async def prepare(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
        await seed(db, (DATA / "spec_plan.toml").read_text(encoding="utf-8"), local(2023, 3, 1, 8))
        await add_known_records(db)
    finally:
        await db.close()


async def outbox_rows(url: str) -> list[tuple[str, str, int, str]]:
    db = Database(url)
    try:
        async with db.sessions() as s:
            rows = await s.execute(select(Outbox.kind, Outbox.ref, Outbox.group_id, Outbox.text))
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]
    finally:
        await db.close()


def test_yanxiu_digest_prints_the_school_and_district_digests(tmp_path, capsys, monkeypatch) -> None:
    cfg, url = write_config(tmp_path)
    asyncio.run(prepare(url))
    monkeypatch.setattr(bot.cli.common, "now", lambda: DIGEST_AT)
    assert main(["digest", "--school", "LX001", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out == SCHOOL_LX001 + "\n"
    assert main(["digest", "--district", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out == DISTRICT + "\n"
    assert asyncio.run(outbox_rows(url)) == []  # printing queues nothing


def test_yanxiu_digest_send_queues_it_once_for_the_schools_groups(tmp_path, capsys, monkeypatch) -> None:
    cfg, url = write_config(tmp_path)
    asyncio.run(prepare(url))
    monkeypatch.setattr(bot.cli.common, "now", lambda: DIGEST_AT)
    assert main(["digest", "--school", "LX001", "--send", "--config", str(cfg)]) == 0
    captured = capsys.readouterr()
    assert captured.out == SCHOOL_LX001 + "\n" and "已排队发往 1 个群" in captured.err
    rows = asyncio.run(outbox_rows(url))
    assert rows == [("school_digest", "manual:20230317T080000", 1, SCHOOL_LX001)]  # 16:00 +08 in UTC
    # the district has no group of its own yet: printed, nothing queued, a clear error
    assert main(["digest", "--district", "--send", "--config", str(cfg)]) == 1
    captured = capsys.readouterr()
    assert captured.out == DISTRICT + "\n" and "没有能接收这份汇总的已绑定群" in captured.err
    assert len(asyncio.run(outbox_rows(url))) == 1
    asyncio.run(add_district_group(url))
    assert main(["digest", "--district", "--send", "--config", str(cfg)]) == 0
    district_rows = [r for r in asyncio.run(outbox_rows(url)) if r[0] == "district_digest"]
    assert len(district_rows) == 1 and district_rows[0][3] == DISTRICT


async def add_district_group(url: str) -> None:
    db = Database(url)
    try:
        async with db.sessions() as s, s.begin():
            s.add(ChatGroup(platform="sim", conversation_id="sim-group-district", school_id=None,
                            route_kind="sim", bound_at=DIGEST_AT))
    finally:
        await db.close()


def test_yanxiu_digest_names_a_wrong_school_code(tmp_path, capsys) -> None:
    cfg, url = write_config(tmp_path)
    asyncio.run(prepare(url))
    assert main(["digest", "--school", "NOPE", "--config", str(cfg)]) == 1
    assert capsys.readouterr().err.startswith("yanxiu: --school：没有这个代码的学校")


async def test_long_lists_are_cut_to_the_ten_most_relevant(known: Database) -> None:
    async with known.sessions() as s, s.begin():
        school_id = await s.scalar(select(Person.school_id).where(Person.name == "孙晓梅"))
        s.add_all(Person(school_id=school_id, name=f"新教师{n:02d}", role="teacher") for n in range(12))
    async with known.sessions() as s:
        text = (await build_school_digests(s, await active_term(s), DIGEST_AT))["LX002"]
    absent = next(line for line in text.splitlines() if line.startswith("缺勤："))
    assert absent.count("次") == 10 and absent.endswith(" 等 15 人")
    assert absent.startswith("缺勤：赵建国 5 次、周海涛 5 次、新教师00 5 次")  # most absences first, then roster order
    short = next(line for line in text.splitlines() if line.startswith("未满："))
    assert short.count("、") == 9 and short.endswith(" 等 15 人")


def test_done_means_what_progress_means() -> None:
    from kernel.figures import _DONE
    from kernel.hours import TaskStatus, task_done

    for state in ("accepted", "flagged", "draft", "missing", "partial"):
        status = TaskStatus("t", "reflection", "t", DIGEST_AT, state, 0, 0, 1.0)
        assert (state in _DONE) == task_done(status), state
