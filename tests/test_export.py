"""`yanxiu export`: what the district hands to 学分认定, read back and compared with what is stored."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.cli import main
from kernel.plan import plan_from_text, session_occurrences
from storage.models import Checkin, Person, Photo, Submission
from tests.conftest import DATA, SEEDS, FakeClock, SimChat
from tests.images import png_b64


async def run_cli(args: list[str]) -> int:
    return await asyncio.to_thread(main, args)


def genuine_text() -> str:
    text = (SEEDS / "003_fe026327e41255a9.txt").read_text(encoding="utf-8")
    return "".join(text.split())[:1400]


def config_file(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "export.toml"
    cfg.write_text(f'[database]\nurl = "{db_url}"\n[storage]\nfiles_dir = "{tmp_path / "f"}"\n', encoding="utf-8")
    return cfg


async def make_records(chat: SimChat, clock: FakeClock) -> None:
    await chat.say("张明", "签到")
    await chat.say("李秀英", "签到")
    clock.set(2023, 3, 9, 9, 55)
    await chat.say("张明", "签到")
    assert "已提交" in await chat.say("张明", "反思 " + genuine_text())
    await chat.say("李秀英", "心得 今天学习了新课标，收获很多。")  # a short draft
    for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        await chat.say("张明", "", image=png_b64(*colour), school=None)
    await chat.say("孙晓梅", "", image=png_b64(9, 9, 9), school=None)
    clock.set(2023, 3, 10, 12, 0)


async def test_csv_export_matches_the_stored_records(chat: SimChat, seeded, clock, tmp_path, db_url, capsys,
                                                     spec_plan_text: str) -> None:
    await make_records(chat, clock)
    out = tmp_path / "records.csv"
    assert await run_cli(["export", "--format", "csv", "-o", str(out), "--config", str(config_file(tmp_path, db_url))]) == 0
    assert "已导出 2 所学校的 7 人" in capsys.readouterr().out
    with out.open(encoding="utf-8-sig") as f:
        table = list(csv.reader(f))
    assert table[0] == ["school_code", "school_name", "name", "sessions_attended", "sessions_held",
                        "reflections_accepted", "photos", "hours_earned", "hours_required",
                        "reflection-march", "lesson-photos"]
    by_name = {row[2]: row for row in table[1:]}
    held = str(len(session_occurrences(plan_from_text(spec_plan_text))))  # the term is over by now
    assert "钱志强" not in by_name  # the district admin belongs to no school
    assert by_name["张明"] == ["LX001", "兰西县第一小学", "张明", "2", held, "1", "3", "5", "36",
                             "accepted", "accepted"]  # 2 sessions + 2 reflection + 1 photos
    assert by_name["李秀英"][3:] == ["1", held, "0", "0", "1", "36", "draft", "missing"]
    assert by_name["孙晓梅"][3:] == ["0", held, "0", "1", "0", "36", "missing", "draft"]

    async with seeded.sessions() as s:  # the export agrees with the database, row by row
        checkins = dict((await s.execute(select(Person.name, func.count(Checkin.id)).join(
            Checkin, Checkin.person_id == Person.id).group_by(Person.name))).all())
        photos = dict((await s.execute(select(Person.name, func.count(Photo.id)).join(
            Photo, Photo.person_id == Person.id).group_by(Person.name))).all())
        accepted = dict((await s.execute(select(Person.name, Submission.state).join(
            Submission, Submission.person_id == Person.id))).all())
    for name, row in by_name.items():
        assert int(row[3]) == checkins.get(name, 0)
        assert int(row[6]) == photos.get(name, 0)
        assert row[9] == accepted.get(name, "missing")


async def test_xlsx_export_has_a_summary_and_a_sheet_per_school(chat: SimChat, seeded, clock, tmp_path, db_url, capsys) -> None:
    await make_records(chat, clock)
    out = tmp_path / "records.xlsx"
    cfg = str(config_file(tmp_path, db_url))
    assert await run_cli(["export", "--format", "xlsx", "-o", str(out), "--config", cfg]) == 0
    wb = load_workbook(out)
    assert wb.sheetnames == ["汇总", "LX001 兰西县第一小学", "LX002 兰西县实验中学"]
    first = wb["LX001 兰西县第一小学"]
    assert first.freeze_panes == "A2"
    assert first.column_dimensions["B"].width >= 16  # 兰西县第一小学 fits
    rows = list(first.iter_rows(values_only=True))
    assert rows[0][:3] == ("school_code", "school_name", "name")
    zhang = next(r for r in rows if r[2] == "张明")
    assert zhang[3:] == (2, 37, 1, 3, 5, 36, "accepted", "accepted")
    summary = list(wb["汇总"].iter_rows(values_only=True))
    assert summary[1][:4] == ("LX001", "兰西县第一小学", 4, 37)

    assert await run_cli(["export", "--format", "xlsx", "-o", str(out), "--school", "LX002", "--config", cfg]) == 0
    assert load_workbook(out).sheetnames == ["汇总", "LX002 兰西县实验中学"]
    assert await run_cli(["export", "--format", "csv", "-o", str(out), "--school", "NOPE", "--config", cfg]) == 1
    assert "--school：没有代码为 NOPE 的学校" in capsys.readouterr().err


FORMULA_ROSTER = """school_code,school_name,name,role,dingtalk_userid
LX001,@SUM(1+1),"=HYPERLINK(""http://x"",""点我"")",teacher,dt-link
LX001,@SUM(1+1),-2+3,teacher,dt-minus
LX001,@SUM(1+1),#N/A,teacher,dt-na
+LX002,兰西县实验中学,王丽华,teacher,dt-wang
"""
LINK = '=HYPERLINK("http://x","点我")'
DDE_TASK = "=cmd|' /C calc'!A0"


def formula_district(tmp_path: Path) -> Path:
    """A district whose roster and plan carry text that spreadsheets would run as formulas:
    teachers' and a school's names, a school code and a task id (a column header)."""
    cfg = tmp_path / "formula.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "formula.db"}"\n'
                   f'[storage]\nfiles_dir = "{tmp_path / "f"}"\n', encoding="utf-8")
    roster = tmp_path / "roster.csv"
    roster.write_text(FORMULA_ROSTER, encoding="utf-8")
    plan = tmp_path / "plan.toml"
    plan.write_text((DATA / "spec_plan.toml").read_text(encoding="utf-8").replace(
        'id = "lesson-photos"', f'id = "{DDE_TASK}"'), encoding="utf-8")
    assert main(["roster", "import", str(roster), "--config", str(cfg)]) == 0
    assert main(["plan", "load", str(plan), "--config", str(cfg)]) == 0
    return cfg


def test_names_that_look_like_formulas_are_exported_as_plain_text_in_csv(tmp_path) -> None:
    cfg = formula_district(tmp_path)
    out = tmp_path / "records.csv"
    assert main(["export", "--format", "csv", "-o", str(out), "--config", str(cfg)]) == 0
    with out.open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][-2:] == ["reflection-march", "'" + DDE_TASK]
    by_name = {row[2]: row for row in table[1:]}
    assert set(by_name) == {"'" + LINK, "'-2+3", "#N/A", "王丽华"}
    assert by_name["'" + LINK][:2] == ["LX001", "'@SUM(1+1)"]
    assert by_name["王丽华"][:2] == ["'+LX002", "兰西县实验中学"]
    assert by_name["'-2+3"][3:9] == ["0", "37", "0", "0", "0", "36"]  # numbers stay numbers
    for row in table:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row


def test_names_that_look_like_formulas_are_text_cells_in_xlsx(tmp_path) -> None:
    cfg = formula_district(tmp_path)
    out = tmp_path / "records.xlsx"
    assert main(["export", "--format", "xlsx", "-o", str(out), "--config", str(cfg)]) == 0
    wb = load_workbook(out)
    assert sorted(wb.sheetnames) == sorted(["汇总", "LX001 @SUM(1+1)", "+LX002 兰西县实验中学"])
    for ws in wb.worksheets:  # no formula anywhere, every text a string cell
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s", (ws.title, cell.coordinate, cell.value)
                    assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r"))
    first = wb["LX001 @SUM(1+1)"]
    assert first.cell(1, 11).value == "'" + DDE_TASK
    cells = {r[2].value: r for r in first.iter_rows(min_row=2)}
    assert set(cells) == {"'" + LINK, "'-2+3", "#N/A"}
    link = cells["'" + LINK]
    assert (link[1].value, link[1].data_type) == ("'@SUM(1+1)", "s")
    assert (link[2].value, link[2].data_type) == ("'" + LINK, "s")
    assert cells["#N/A"][2].data_type == "s"  # a name, not Excel's error value
    assert [(c.value, c.data_type) for c in link[3:9]] == [
        (0, "n"), (37, "n"), (0, "n"), (0, "n"), (0, "n"), (36, "n")]
    summary = {r[0].value: r for r in wb["汇总"].iter_rows(min_row=2)}
    assert (summary["LX001"][1].value, summary["LX001"][1].data_type) == ("'@SUM(1+1)", "s")
    assert summary["'+LX002"][2].value == 1
