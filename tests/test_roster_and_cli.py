"""The operator's files and commands: roster import, plan show, group bind, config errors."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from bot.cli import main
from bot.config import ConfigError, config_from_mapping, load_config
from kernel.roster import RosterFileError, load_roster
from storage.db import Database
from storage.models import ChatGroup, Person, School
from tests.conftest import DATA


def write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "y.db"}"\n'
                   f'[storage]\nfiles_dir = "{tmp_path / "files"}"\n', encoding="utf-8")
    return cfg


async def people_count(url: str) -> int:
    db = Database(url)
    try:
        async with db.sessions() as s:
            return await s.scalar(select(func.count()).select_from(Person))
    finally:
        await db.close()


def test_a_roster_with_a_broken_row_imports_the_rest_and_names_the_line(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path)
    code = main(["roster", "import", str(DATA / "roster_broken.csv"), "--config", str(cfg)])
    out = capsys.readouterr().out
    assert code == 1
    assert "新增 3 人，更新 0 人，未变 0 人，退回 2 行" in out
    assert "第 4 行：role“校长助理”不认识" in out  # the file's English header, as it spells it
    assert "第 5 行：mobile“12345”不是 11 位手机号" in out

    code = main(["roster", "import", str(DATA / "roster_broken.csv"), "--config", str(cfg)])
    out = capsys.readouterr().out
    assert "新增 0 人，更新 0 人，未变 3 人，退回 2 行" in out


def test_reimporting_the_same_roster_changes_nothing(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path)
    assert main(["roster", "import", str(DATA / "roster.csv"), "--config", str(cfg)]) == 0
    assert "新增 8 人，更新 0 人，未变 0 人，退回 0 行" in capsys.readouterr().out
    assert main(["roster", "import", str(DATA / "roster.csv"), "--config", str(cfg)]) == 0
    assert "新增 0 人，更新 0 人，未变 8 人，退回 0 行" in capsys.readouterr().out
    import asyncio

    assert asyncio.run(people_count(f"sqlite+aiosqlite:///{tmp_path / 'y.db'}")) == 8


def test_an_xlsx_roster_with_english_headers_and_numeric_cells(tmp_path, capsys) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["school_code", "school_name", "name", "role", "dingtalk_userid", "wecom_userid", "mobile"])
    ws.append(["LX009", "兰西县第九小学", "马老师", "teacher", "dt-ma", None, 13800000099])
    ws.append(["LX009", "兰西县第九小学", "", "teacher", "dt-x", None, None])
    path = tmp_path / "roster.xlsx"
    wb.save(path)
    rows, bad = load_roster(path)
    assert [r.mobile for r in rows] == ["13800000099"]
    assert [(b.line, b.reason) for b in bad] == [(3, "name is empty")]


def test_a_roster_missing_a_column_is_one_clear_error(tmp_path, capsys) -> None:
    path = tmp_path / "r.csv"
    path.write_text("姓名,角色\n张明,教师\n", encoding="utf-8")
    with pytest.raises(RosterFileError, match="school_code"):
        load_roster(path)
    cfg = write_config(tmp_path)
    assert main(["roster", "import", str(path), "--config", str(cfg)]) == 1
    assert f"yanxiu: {path} 缺少这些列：学校代码" in capsys.readouterr().err  # named like its other headers


def test_a_gbk_csv_from_excel_is_read(tmp_path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes((DATA / "roster.csv").read_text(encoding="utf-8").encode("gb18030"))
    rows, bad = load_roster(path)
    assert len(rows) == 8 and not bad and rows[0].name == "王丽华"


def test_plan_show_json_on_the_spec_plan(capsys) -> None:
    assert main(["plan", "show", str(DATA / "spec_plan.toml"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    starts = [s["start"] for s in shown["sessions"]]
    assert "2023-03-07T10:00:00+08:00" in starts
    assert not [s for s in starts if s.startswith(("2023-04-05", "2023-05-02"))]
    kinds = {s["kind"] for s in shown["sends"]}
    assert kinds == {"theme", "session_reminder", "deadline_reminder", "school_digest", "district_digest"}
    ats = [s["at"] for s in shown["sends"]]
    assert ats == sorted(ats)


def test_plan_load_names_the_bad_key(tmp_path, capsys) -> None:
    bad = tmp_path / "plan.toml"
    bad.write_text((DATA / "spec_plan.toml").read_text(encoding="utf-8").replace(
        'timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"'), encoding="utf-8")
    assert main(["plan", "load", str(bad), "--config", str(write_config(tmp_path))]) == 1
    line = bad.read_text(encoding="utf-8").splitlines().index('timezone = "Asia/Beijing"') + 1
    assert capsys.readouterr().err == (f"yanxiu: {bad} 第 {line} 行，[term] 的 timezone："
                                       "不认识的时区 'Asia/Beijing'，例如 \"Asia/Shanghai\"\n")


def test_plan_load_then_show_from_the_database(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path)
    assert main(["plan", "load", str(DATA / "spec_plan.toml"), "--config", str(cfg)]) == 0
    assert "已载入“2023年春季学期校本研修”：37 次研修活动" in capsys.readouterr().out
    assert main(["plan", "show", "--config", str(cfg)]) == 0
    assert "2023-03-07T10:00:00+08:00" in capsys.readouterr().out


def test_group_bind_stores_the_route_and_never_prints_the_secret(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path)
    main(["roster", "import", str(DATA / "roster.csv"), "--config", str(cfg)])
    capsys.readouterr()
    secret = "SECfake0123456789"
    hook = "https://oapi.dingtalk.com/robot/send?access_token=tokfake999"
    assert main(["group", "bind", "--school", "LX001", "--platform", "dingtalk", "--conversation-id",
                 "cidFAKE==", "--webhook", hook, "--secret", secret, "--config", str(cfg)]) == 0
    assert main(["group", "list", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "cidFAKE==" in out and "dingtalk_robot" in out
    assert secret not in out and "tokfake999" not in out
    assert main(["group", "bind", "--school", "NOPE", "--platform", "wecom", "--conversation-id",
                 "c", "--config", str(cfg)]) == 1
    assert "--school：没有代码为 NOPE 的学校" in capsys.readouterr().err

    import asyncio

    async def stored() -> tuple:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'y.db'}")
        async with db.sessions() as s:
            g = await s.scalar(select(ChatGroup))
            n = await s.scalar(select(func.count()).select_from(School))
        await db.close()
        return g.route_kind, g.route_url, g.route_secret, n

    assert asyncio.run(stored()) == ("dingtalk_robot", hook, secret, 2)


def test_config_errors_name_the_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^dingtalk.mode: "):
        config_from_mapping({"dingtalk": {"mode": "socket"}}, env={})
    with pytest.raises(ConfigError, match=r"^server.prot: unknown key"):
        config_from_mapping({"server": {"prot": 1}}, env={})
    with pytest.raises(ConfigError, match=r"^server.port: must be an integer"):
        config_from_mapping({}, env={"YANXIU_SERVER_PORT": "eighty"})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_the_spec_config_example_loads_and_env_overrides_secrets(tmp_path) -> None:
    cfg = Path(__file__).resolve().parents[1] / "config.example.toml"
    config = load_config(cfg, env={"YANXIU_DINGTALK_APP_SECRET": "s3cr3t-value", "YANXIU_SERVER_PORT": "9090"})
    assert config.server.port == 9090
    assert config.dingtalk.app_secret.value == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(config) and "s3cr3t-value" not in str(config.dingtalk)


def test_group_bind_with_a_wecom_webhook_never_prints_its_key(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path)
    main(["roster", "import", str(DATA / "roster.csv"), "--config", str(cfg)])
    key = "fake-wecom-key-3f2a9c1e-0000-4000-8000-00000000abcd"
    hook = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}"
    assert main(["group", "bind", "--school", "LX002", "--platform", "wecom", "--conversation-id",
                 "wrFAKECHATID000000000000000001", "--webhook", hook, "--config", str(cfg)]) == 0
    assert main(["group", "list", "--config", str(cfg)]) == 0
    assert main(["group", "bind", "--school", "NOPE", "--platform", "wecom", "--conversation-id",
                 "wrOTHER", "--webhook", hook, "--config", str(cfg)]) == 1
    shown = capsys.readouterr()
    assert "wecom_webhook" in shown.out and "wrFAKECHATID000000000000000001" in shown.out
    assert key not in shown.out and key not in shown.err

    import asyncio

    async def stored() -> tuple:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'y.db'}")
        async with db.sessions() as s:
            g = await s.scalar(select(ChatGroup).where(ChatGroup.platform == "wecom"))
        await db.close()
        return g.route_kind, g.route_url

    assert asyncio.run(stored()) == ("wecom_webhook", hook)


def _first_year_without_holiday_data() -> int:
    import chinese_calendar  # asked directly, not through kernel.calendar

    year = 2026
    while True:
        try:
            chinese_calendar.is_holiday(date(year, 6, 1))
        except NotImplementedError:
            return year
        year += 1


def test_plan_load_says_once_where_an_uncovered_years_holidays_come_from(tmp_path, capsys) -> None:
    """A spring term in a year chinese-calendar has no data for yet: the operator is told,
    once and in Chinese, that its holidays are estimated with the holidays package (and
    which), how many sessions fall in that year, and that its 调休 days go in the plan."""
    year = _first_year_without_holiday_data()
    cfg = write_config(tmp_path)
    text = (DATA / "spec_plan.toml").read_text(encoding="utf-8").replace("2023-", f"{year}-")
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(text, encoding="utf-8")
    assert main(["plan", "load", str(plan_file), "--config", str(cfg)]) == 0
    captured = capsys.readouterr()
    loaded = int(captured.out.split("：")[1].split(" 次研修活动")[0])
    assert loaded > 0
    [source] = [line for line in captured.err.splitlines() if "holidays" in line]
    assert source.startswith(f"节假日：{year} 年的放假安排 chinese-calendar ")
    assert "还没有收录，改用 holidays " in source and "清明节 4月5日" in source
    assert f"本学期有 {loaded} 次研修活动在 {year} 年" in source  # all of the term
    [makeup] = [line for line in captured.err.splitlines() if "调休" in line]
    assert "term.extra_school_dates" in makeup
    assert "warning" not in captured.err.lower() and "Mon–Fri" not in captured.err  # no English log line
    assert main(["plan", "show", "--json", "--config", str(cfg)]) == 0
    shown = capsys.readouterr()
    assert json.loads(shown.out)["sessions"]  # stdout stays pure JSON
    assert len([line for line in shown.err.splitlines() if "holidays" in line]) == 1


def test_plan_load_names_chinese_calendar_for_the_years_it_knows(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path)
    assert main(["plan", "load", str(DATA / "spec_plan.toml"), "--config", str(cfg)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("节假日：2023 年按 chinese-calendar ") and "holidays" not in err
    assert len(err.splitlines()) == 1


def test_a_roster_name_that_looks_like_a_formula_is_imported_with_a_warning_on_its_line(tmp_path, capsys) -> None:
    path = tmp_path / "r.csv"
    path.write_text("学校代码,学校名称,姓名,角色,钉钉ID\n"
                    "LX001,兰西县第一小学,王丽华,教师,dt-1\n"
                    'LX001,兰西县第一小学,"=HYPERLINK(""http://x"",""点我"")",教师,dt-2\n'
                    "LX002,@兰西县实验中学,@SUM(1+1),教师,dt-3\n", encoding="utf-8")
    cfg = write_config(tmp_path)
    assert main(["roster", "import", str(path), "--config", str(cfg)]) == 0
    shown = capsys.readouterr()
    assert "新增 3 人，更新 0 人，未变 0 人，退回 0 行" in shown.out
    warnings = [line.strip() for line in shown.err.splitlines() if "公式" in line]
    assert warnings == ["第 3 行：姓名以“=”开头，导出时会加 ' 防止被当作公式",
                        "第 4 行：学校名称以“@”开头，导出时会加 ' 防止被当作公式",
                        "第 4 行：姓名以“@”开头，导出时会加 ' 防止被当作公式"]
    import asyncio

    async def names() -> set[str]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'y.db'}")
        try:
            async with db.sessions() as s:
                return set((await s.scalars(select(Person.name))).all())
        finally:
            await db.close()

    assert asyncio.run(names()) == {"王丽华", '=HYPERLINK("http://x","点我")', "@SUM(1+1)"}  # stored as typed
