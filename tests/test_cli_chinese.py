"""A Chinese district admin at the command line: every help text, message and error of
`yanxiu` is in Chinese, names the file, the line and the key or column as the file spells
it; `--lang en` / YANXIU_LANG=en switch to English for scripts."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

from bot.cli import build_parser, main
from bot.cli import errors as cli_errors
from bot.cli.say import use
from tests.conftest import DATA

ENGLISH_ARGPARSE = ("usage:", "options:", "positional arguments", "show this help", "error:",
                    "the following arguments", "invalid choice", "unrecognized arguments")
SPEC_PLAN = (DATA / "spec_plan.toml").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def chinese(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("YANXIU_LANG", raising=False)
    yield
    use("zh")


def write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "y.db"}"\n', encoding="utf-8")
    return cfg


def every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += every_parser(sub)
    return found


# ------------------------------------------------------------------------------- help


def test_every_command_and_option_has_chinese_help() -> None:
    use("zh")
    parsers = every_parser(build_parser())
    assert len(parsers) > 10
    for parser in parsers:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help and re.search(r"[\u4e00-\u9fff]", choice.help), choice.dest
                continue
            assert action.help and re.search(r"[\u4e00-\u9fff]", action.help), (parser.prog, action.dest)
        shown = parser.format_help()
        assert shown.startswith("用法：") and not any(word in shown for word in ENGLISH_ARGPARSE), shown


@pytest.mark.parametrize("argv", [["--help"], ["plan", "load", "--help"], ["group", "bind", "-h"]])
def test_help_at_the_prompt_is_chinese(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("用法：yanxiu") and "显示这段帮助并退出" in out
    assert not any(word in out for word in ENGLISH_ARGPARSE)


@pytest.mark.parametrize(("argv", "said"), [
    (["plan", "load"], "yanxiu plan load：错误：缺少必填的参数：文件"),
    (["export", "--format", "pdf", "-o", "x"], "yanxiu export：错误：参数 --format：'pdf' 不在可选范围内"),
    (["nosuch"], "yanxiu：错误：参数 命令：'nosuch' 不在可选范围内"),
    (["serve", "--workers", "x"], "yanxiu serve：错误：参数 --workers：'x' 不是整数"),
    (["demo", "--port", "0"], "yanxiu demo：错误：参数 --port：端口必须是 1 到 65535 之间的整数"),
    (["digest", "--school", "A", "--district"], "yanxiu digest：错误：参数 --district：不能和 --school 一起用"),
    (["db", "upgrade", "--bogus"], "yanxiu：错误：不认识的参数：--bogus"),
])
def test_a_mistyped_command_is_told_in_chinese(argv: list[str], said: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.startswith("用法：")
    assert said in err and not any(word in err for word in ENGLISH_ARGPARSE), err


# ------------------------------------------------------------------------------- roster


@pytest.mark.parametrize(("header", "row", "said"), [
    ("学校代码,学校名称,姓名,角色,钉钉ID,企业微信ID", "LX001,一小,张明,教师,,",
     "第 3 行：钉钉ID 和 企业微信ID 至少填一个"),
    ("学校代码,学校名称,姓名,角色,钉钉ID", "LX001,一小,张明,教师,",  # no 企业微信 column at all
     "第 3 行：钉钉ID 和 企业微信ID 至少填一个"),
    ("学校编码,学校,教师姓名,角色,钉钉userid,企微ID", "LX001,一小,张明,教师,,",
     "第 3 行：钉钉userid 和 企微ID 至少填一个"),
    ("school_code,school_name,name,role,dingtalk_userid,wecom_userid", "LX001,一小,张明,teacher,,",
     "第 3 行：dingtalk_userid 和 wecom_userid 至少填一个"),
    ("学校代码,学校名称,姓名,角色,钉钉ID", "LX001,一小,,教师,dt-9", "第 3 行：姓名没有填"),
    ("学校代码,学校名称,姓名,角色,钉钉ID", "LX001,一小,张三,校工,dt-9", "第 3 行：角色“校工”不认识"),
    ("学校代码,学校名称,姓名,角色,钉钉ID,手机号", "LX001,一小,张三,教师,dt-9,123",
     "第 3 行：手机号“123”不是 11 位手机号"),
    ("学校代码,学校名称,姓名,角色,钉钉ID", ",,张三,教师,dt-9", "第 3 行：学校代码没有填（只有区管理员可以不填）"),
    ("学校代码,学校名称,姓名,角色,钉钉ID", "LX001,一小,张三,教师,dt-1", "第 3 行：钉钉ID dt-1 和第 2 行重复"),
])
def test_a_rejected_row_is_named_with_the_files_own_headers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str, row: str, said: str) -> None:
    path = tmp_path / "花名册.csv"
    first = "LX001,一小,王丽,教师" + ",dt-1" + "," * (header.count(",") - 4)
    path.write_text(f"{header}\n{first}\n{row}\n", encoding="utf-8")
    assert main(["roster", "import", str(path), "--config", str(write_config(tmp_path))]) == 1
    out = capsys.readouterr().out
    assert "新增 1 人，更新 0 人，未变 0 人，退回 1 行" in out
    assert [line for line in out.splitlines() if line.startswith(f"  {said}")], out
    assert "needs a" not in out and "dingtalk_userid or" not in out


def test_a_person_whose_two_ids_belong_to_two_people_is_named_by_the_files_headers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    path = tmp_path / "r.csv"
    path.write_text("学校代码,学校名称,姓名,角色,钉钉ID,企业微信ID\nLX001,一小,王丽,教师,dt-1,\n"
                    "LX001,一小,张明,教师,,wx-2\n", encoding="utf-8")
    assert main(["roster", "import", str(path), "--config", str(cfg)]) == 0
    path.write_text("学校代码,学校名称,姓名,角色,钉钉ID,企业微信ID\nLX001,一小,王丽,教师,dt-1,wx-2\n",
                    encoding="utf-8")
    capsys.readouterr()
    assert main(["roster", "import", str(path), "--config", str(cfg)]) == 1
    assert "  第 2 行：钉钉ID 和 企业微信ID 分别属于花名册里已有的两个人" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "said"), [
    ("没有这个文件.xlsx", "yanxiu: 找不到文件 {path}"),
    ("没有这个文件.csv", "yanxiu: 找不到文件 {path}"),
    ("folder.csv", "yanxiu: {path} 是一个文件夹，不是文件"),
    ("名单.pdf", "yanxiu: {path}：花名册必须是 .csv 或 .xlsx 文件"),
    ("broken.xlsx", "yanxiu: {path} 不是能打开的 XLSX 文件"),
    ("empty.csv", "yanxiu: {path} 是空的"),
])
def test_a_roster_file_that_cannot_be_read_is_one_chinese_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, said: str) -> None:
    path = tmp_path / name
    if name == "folder.csv":
        path.mkdir()
    elif name in ("名单.pdf", "broken.xlsx", "empty.csv"):
        path.write_bytes(b"" if name == "empty.csv" else b"not a spreadsheet")
    assert main(["roster", "import", str(path), "--config", str(write_config(tmp_path))]) == 1
    err = capsys.readouterr().err
    assert err == said.format(path=path) + "\n"
    assert "Errno" not in err


# ------------------------------------------------------------------------------- plan

# (what to change in the spec plan, the line the error must point at, what it must say)
PLAN_MISTAKES = [
    (('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"'), 'timezone =',
     "[term] 的 timezone：不认识的时区 'Asia/Beijing'"),
    (("start = 2023-03-01", 'start = "2023-03-01"'), "start = ", "[term] 的 start：应该是日期，例如 2023-03-01（不加引号）"),
    (("end = 2023-07-14", "end = 2023-02-14"), "end = ", "[term] 的 end：2023-02-14 早于学期开始 2023-03-01"),
    (("end = 2023-07-14", "end = 2025-07-14"), "end = ", "一个学期最多 400 天"),
    (('remind_at = "08:00"', 'remind_at = "25:00"'), "remind_at", "'25:00' 不是一天中的时间"),
    (('remind_at = "08:00"', "remind_at = 8"), "remind_at", "应该是时间，例如 \"10:00\"，现在是 8"),
    (("non_school_dates = []", "non_school_dates = [2023-09-01]"), "non_school_dates",
     "2023-09-01 不在学期 2023-03-01 – 2023-07-14 之内"),
    (("extra_school_dates = []", "extra_school_dates = [{ from = 2023-05-02, to = 2023-05-01 }]"),
     "extra_school_dates", "2023-05-01 早于 from = 2023-05-02"),
    (("non_school_dates = []  ", "non_school_dates = [2023-04-23]  "), None, None),  # fine on its own
    (("non_school_dates = []            # extra days without sessions, besides public holidays\n"
      "extra_school_dates = []", "non_school_dates = [2023-04-24]\nextra_school_dates = [2023-04-24]"),
     "extra_school_dates", "2023-04-24 也写在了 term.non_school_dates 里"),
    (('school = "fri 16:00"', 'school = "fri 16:00"\nfoo = 1'), "foo = 1", "不认识这个键；可用的有：school, district"),
    (("due = 2023-03-31T17:00:00", "due = 0001-01-01T00:00:00+08:00"), "due = 0001", "超出了日历范围"),
    (("[[task]]", '[[session]]\nname = "校本研修集中学习"\nweekdays = ["mon"]\nstart = "15:00"\n\n[[task]]'),
     'name = "校本研修集中学习"\nweekdays = ["mon"]', "'校本研修集中学习' 已被另一个活动使用"),
    (("count_punctuation = false", 'count_punctuation = "no"'), "count_punctuation", "应该是true 或 false"),
    (("required_hours = 36", "required_hours = -1"), "required_hours", "必须是 0 或更大，现在是 -1"),
    (('month = "2023-04"', 'month = "2023-03"'), 'month = "2023-03"\ntitle = "让课堂', "2023-03 已经有主题了"),
    (('month = "2023-04"', 'month = "2023-13"'), None, "应该是月份，例如 \"2023-03\""),
    (('month = "2023-04"', 'month = "2023-09"'), None, "2023-09 不在学期"),
    (('title = "如何上好新学期第一课"', 'title = "  "'), "title", "[[theme]] 的 title：不能为空"),
    (('weekdays = ["tue", "thu"]', 'weekdays = ["tue", "thurs"]'), "weekdays", "不认识的星期 'thurs'"),
    (('weekdays = ["tue", "thu"]', 'weekdays = "tue"'), "weekdays", "应该是星期的列表"),
    (("minutes = 40", "minutes = 0"), "minutes = 0", "必须大于 0，现在是 0"),
    (("[[session]]", "[[sesion]]"), "[[sesion]]", "sesion：不认识这个键，是不是 session？"),
    (("hours = 1\nremind_before", "hourz = 1\nremind_before"), "hourz", "不认识这个键，是不是 hours？"),
    (('id = "lesson-photos"', 'id = "reflection-march"'), 'id = "reflection-march"\nkind = "photos"',
     "第 2 个 [[task]] 的 id：'reflection-march' 已被另一项任务使用"),
    (('kind = "photos"', 'kind = "video"'), 'kind = "video"', "不认识的任务类型 'video'"),
    (("min_chars = 1000", "min_photos = 3"), "min_photos = 3\ndue = 2023-03-31", "心得任务不用这一项（请用 min_chars）"),
    (("min_photos = 3\n", ""), '[[task]]\nid = "lesson-photos"', "第 2 个 [[task]] 的 min_photos：缺少（照片任务必填）"),
    (("due = 2023-04-30T17:00:00", "due = 2023-09-30T17:00:00"), "due = 2023-09-30", "2023-09-30 不在学期"),
    (("due = 2023-03-31T17:00:00", 'due = "2023-03-31"'), 'due = "2023-03-31"', "'2023-03-31' 不是截止时间"),
    (("due = 2023-03-31T17:00:00", "due = 2023-03-31"), "due = 2023-03-31", "现在是日期 2023-03-31"),
    (('school = "fri 16:00"', 'school = "friday"'), "school =", "[digest] 的 school：应该是星期和时间"),
    (('name = "2023年春季学期校本研修"\n', ""), "[term]", "[term] 的 name：缺少（必填）"),
    (('name = "校本研修集中学习"', 'name = '), 'name = \n', "TOML 写法有误（Invalid value）"),
    (("[[task]]", '[[session]]\nname = "教研组活动"\nweekdays = ["thu"]\nstart = "10:30"\n\n[[task]]'),
     'start = "10:30"', "'教研组活动' 和第 1 个 [[session]]（'校本研修集中学习'，10:00–10:40）在 2023-03-02 10:30 时间重叠"),
]


@pytest.mark.parametrize(("change", "at", "said"), PLAN_MISTAKES)
def test_a_plan_mistake_names_the_file_the_line_and_the_key_in_chinese(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], at: str | None,
        said: str | None) -> None:
    old, new = change
    assert old in SPEC_PLAN, old
    text = SPEC_PLAN.replace(old, new, 1)
    path = tmp_path / "计划.toml"
    path.write_text(text, encoding="utf-8")
    code = main(["plan", "load", str(path), "--config", str(write_config(tmp_path))])
    err = capsys.readouterr().err
    if said is None:
        assert code == 0
        return
    [line] = err.splitlines()
    assert code == 1 and line.startswith(f"yanxiu: {path}"), line
    assert said in line, line
    if at is not None:  # the line where the file writes it
        assert f" 第 {text[:text.index(at)].count(chr(10)) + 1} 行" in line, line
    english = re.compile(r"\b(expected|unknown|missing|must|outside|overlaps|is before|got)\b")
    assert not english.search(line.split("：", 1)[1]), line


def test_every_plan_problem_pattern_is_met_by_a_real_plan_mistake() -> None:
    """Each English phrasing matched at the command line's edge is one the plan reader really
    raises (so the table and the reader cannot drift apart unnoticed)."""
    from kernel.plan import PlanError, plan_from_text

    problems = []
    for (old, new), _, _said in PLAN_MISTAKES:
        try:
            plan_from_text(SPEC_PLAN.replace(old, new, 1))
        except PlanError as exc:
            problems.append(exc.problem)
    for pattern, name in cli_errors._PLAN_PROBLEMS:
        assert any(pattern.fullmatch(p) for p in problems), name
    assert any(cli_errors._EXPECTED.fullmatch(p) for p in problems)


@pytest.mark.parametrize(("name", "content", "said"), [
    ("没有.toml", None, "yanxiu: 找不到文件 {path}"),
    ("gbk.toml", "[term]\nname = '春季'\n".encode("gbk"), "yanxiu: {path} 不是 UTF-8 编码的文本"),
])
def test_a_plan_file_that_cannot_be_read_is_one_chinese_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None,
        said: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["plan", "load", str(path), "--config", str(write_config(tmp_path))]) == 1
    err = capsys.readouterr().err
    assert err.startswith(said.format(path=path)) and "Errno" not in err


# ------------------------------------------------------------------------------- config


@pytest.mark.parametrize(("config", "said"), [
    ('[server]\nprot = 8080\n', "{path} 第 2 行，server.prot：不认识的配置项"),
    ('[server]\nport = 99999\n', "{path} 第 2 行，server.port：必须在 1 到 65535 之间"),
    ('[dingtalk]\nmode = "socket"\n', '{path} 第 2 行，dingtalk.mode：只能是 "http" 或 "stream"'),
    ('[serer]\nport = 1\n', "{path} 第 1 行，serer：不认识的配置节"),
    ('[database]\nurl = sqlite\n', "{path} 第 2 行第 7 列：TOML 写法有误"),
])
def test_a_config_mistake_names_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  config: str, said: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    assert main(["db", "upgrade", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("yanxiu: " + said.format(path=path)), err


def test_a_config_value_from_the_environment_is_named_by_its_variable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YANXIU_SERVER_PORT", "eighty")
    assert main(["db", "upgrade", "--config", str(write_config(tmp_path))]) == 1
    assert capsys.readouterr().err == "yanxiu: 环境变量 YANXIU_SERVER_PORT（server.port）：必须是整数\n"


def test_a_missing_config_file_is_one_chinese_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothere.toml"
    assert main(["db", "upgrade", "--config", str(missing)]) == 1
    assert capsys.readouterr().err == f"yanxiu: 找不到配置文件 {missing}（可以复制 config.example.toml 再修改）\n"


# ------------------------------------------------------------------------------- English for scripts


@pytest.mark.parametrize("how", ["flag_before", "flag_after", "environment"])
def test_english_for_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    cfg = write_config(tmp_path)
    command = ["roster", "import", str(DATA / "roster.csv"), "--config", str(cfg)]
    if how == "environment":
        monkeypatch.setenv("YANXIU_LANG", "en")
    argv = {"flag_before": ["--lang", "en", *command], "flag_after": [*command, "--lang=en"]}.get(how, command)
    assert main(argv) == 0
    assert "added 8, updated 0, unchanged 0, rejected 0" in capsys.readouterr().out
    bad = tmp_path / "plan.toml"
    bad.write_text(SPEC_PLAN.replace('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"'), "utf-8")
    lang = [] if how == "environment" else ["--lang", "en"]
    assert main([*lang, "plan", "load", str(bad), "--config", str(cfg)]) == 1
    assert capsys.readouterr().err.startswith(f"yanxiu: {bad}: term.timezone: unknown timezone")


def test_the_two_languages_say_the_same_things() -> None:
    """Every sentence in English exists in Chinese with the same arguments, and the other way
    round but for the e_* translations of lower layers' errors (shown as they are in English)."""
    from bot.cli.say import _table

    def macros(lang: str) -> dict[str, tuple[str, ...]]:
        module: Any = _table(lang)
        return {name: tuple(value.arguments) for name, value in vars(module).items()
                if hasattr(value, "arguments") and not name.startswith("_")}

    zh, en = macros("zh"), macros("en")
    assert en == {name: args for name, args in zh.items() if not name.startswith("e_")}
    assert set(_table("zh").help) == set(_table("en").help)
    assert set(_table("zh").metavar) == set(_table("en").metavar)


def test_an_export_onto_a_folder_is_one_chinese_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    assert main(["plan", "load", str(DATA / "spec_plan.toml"), "--config", str(cfg)]) == 0
    folder = tmp_path / "学时.csv"
    folder.mkdir()
    capsys.readouterr()
    assert main(["export", "--format", "csv", "-o", str(folder), "--config", str(cfg)]) == 1
    assert capsys.readouterr().err == f"yanxiu: {folder} 是一个文件夹，不是文件\n"
