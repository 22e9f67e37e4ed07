"""Property and fuzz tests: hostile or odd input never crashes the parsers people feed.

The command parser (every alias in every dress maps to its verb), roster grids (every row
imported or rejected with its line) and term plans (a Plan, or a PlanError naming a real
key). The word counter is fuzzed in test_wordcount.py; the platforms' verification paths
over HTTP in test_fuzz_http.py.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import opencc
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from handlers.registry import VERBS, parse_command
from kernel.plan import Plan, PlanError, parse_plan, plan_from_text
from kernel.roster import HEADERS, ROLES, RosterFileError, parse_roster
from tests.conftest import DATA

FAST = settings(max_examples=150, deadline=None)

# ---------------------------------------------------------------- the command parser

KNOWN_VERBS = set(VERBS) | {"unknown", "empty"}
TAKES_ARGS = {"reflection", "append", "leave", "bind", "broadcast"}
ALIASES = [(verb, alias) for verb, aliases in VERBS.items() for alias in aliases]
# Traditional forms as phones type them: OpenCC's generic, Taiwan and Hong Kong variants
# (character variants only; s2twp would also swap whole words, e.g. 绑定 → 繫結).
TRADITIONAL = {name: opencc.OpenCC(name) for name in ("s2t", "s2tw", "s2hk")}
# Known gap, kept visible by test_taiwan_variant_of_append below instead of hidden here.
TRADITIONAL_GAPS = {("s2tw", "接着写")}

mention_names = st.text(st.characters(categories=["L", "N"], exclude_characters="@＠"),
                        min_size=1, max_size=8)
separators = st.sampled_from([" ", "\u2005", "\u3000", "  ", "\u00a0", "\t"])
trailing = st.sampled_from(["", "。", "！", "!", " ", "~", "…", "，"])
# an argument starts with a word (the parser trims leading ":" "," from what follows the verb)
arguments = st.builds(str.__add__, st.sampled_from("今天本次我aZ7"), st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"], exclude_characters="@＠"), max_size=30))


def full_width(text: str) -> str:
    """ASCII letters, digits and punctuation as the full-width forms a Chinese IME types."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@FAST
@given(st.text(max_size=80))
def test_any_message_parses_to_a_verb_without_raising(text: str) -> None:
    command = parse_command(text)
    assert command.verb in KNOWN_VERBS
    assert isinstance(command.args, str) and isinstance(command.text, str)


@FAST
@given(st.lists(st.sampled_from(["@", "＠", " ", "\u2005", "\u200b", "\n", "签到", "进度", "a", "。"]),
                max_size=25).map("".join))
def test_mention_and_space_soup_parses_without_raising(text: str) -> None:
    assert parse_command(text).verb in KNOWN_VERBS


@settings(max_examples=250, deadline=None)
@given(st.sampled_from(ALIASES), st.sampled_from(["plain", "full_width", "upper", *TRADITIONAL]),
       st.lists(mention_names, max_size=2), st.lists(mention_names, max_size=2), separators,
       trailing, arguments)
def test_every_alias_in_every_dress_maps_to_its_verb(
        verb_alias: tuple[str, str], dress: str, before: list[str], after: list[str],
        sep: str, tail: str, args: str) -> None:
    verb, alias = verb_alias
    assume((dress, alias) not in TRADITIONAL_GAPS)
    word = {"plain": alias, "full_width": full_width(alias), "upper": alias.upper()}.get(dress)
    if word is None:
        word = TRADITIONAL[dress].convert(alias)
    if len(alias) == 1:
        tail = ""  # "到" and "?" are commands only on their own ("?。" is answered with help anyway)
    body = f"{word} {args}" if verb in TAKES_ARGS else word + tail
    text = "".join(f"@{m}{sep}" for m in before) + body + "".join(f"{sep}@{m}" for m in after)
    command = parse_command(text)
    assert command.verb == verb, (text, command)
    if verb in TAKES_ARGS:
        assert command.args, (text, command)  # the argument survives the mentions


def test_taiwan_variant_of_append() -> None:
    assert parse_command("接著寫 第二段").verb == "append"


# ---------------------------------------------------------------- roster parsing

HEADER_NAMES = {key: names for key, names in HEADERS.items()}
cell = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["", " ", "\u3000", "教师", "teacher", "学校负责人",
                                                      "district_admin", "管理员", "老板"]),
    st.sampled_from(["S001", "S002", "第一小学", "张三", "dt-1", "dt-2", "wc-1", "13800138000", "1380013"]),
    st.integers(min_value=-10**12, max_value=10**12), st.floats(allow_nan=True), st.booleans(),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)))


# per column: mostly what schools type (good, blank, a wrong role, a short mobile), some junk
PLAUSIBLE = {
    "school_code": st.sampled_from(["S001", "S002", "LX001", "", None]),
    "school_name": st.sampled_from(["第一小学", "实验中学", "", None]),
    "name": st.sampled_from(["张三", "李四", "王 五", "\u3000", None]),
    "role": st.sampled_from([*ROLES, "Teacher", " 教师 ", "老板", "", None]),
    "dingtalk_userid": st.sampled_from(["dt-1", "dt-2", "dt-3", "", None]),
    "wecom_userid": st.sampled_from(["wc-1", "wc-2", "", None]),
    "mobile": st.sampled_from(["13800138000", 13800138001.0, "1380013", "", None]),
    "subject": st.sampled_from(["语文", "数学", None]),
    "stage": st.sampled_from(["小学", "初中", None]),
    "township": st.sampled_from(["榆林镇", "", None]),
}


MOSTLY = st.sampled_from([True] * 9 + [False])


@st.composite
def roster_grids(draw: st.DrawFn) -> list[list[object]]:
    required = ["school_code", "school_name", "name", "role", "dingtalk_userid"]
    keys = [k for k in required if draw(MOSTLY)]  # now and then a required column is missing
    keys += draw(st.lists(st.sampled_from([k for k in HEADER_NAMES if k not in required]), unique=True))
    keys = list(draw(st.permutations(keys)))
    header: list[object] = [draw(st.sampled_from(HEADER_NAMES[k])) for k in keys]
    if not draw(MOSTLY):  # a column the importer does not know
        at = draw(st.integers(0, len(header)))
        header.insert(at, draw(st.one_of(st.none(), st.text(max_size=6))))
        keys.insert(at, "")
    rows = []
    for _ in range(draw(st.integers(0, 20))):
        row = [draw(PLAUSIBLE[k]) if k and draw(MOSTLY) else draw(cell) for k in keys]
        rows.append(row if draw(MOSTLY) else row[:draw(st.integers(0, len(row) + 1))])
    return [header, *rows]


def _has_content(value: object) -> bool:
    return value is not None and bool(str(value).strip().replace("\u3000", " ").strip())


@settings(max_examples=300, deadline=None)
@given(roster_grids())
def test_every_roster_row_is_either_imported_or_rejected_with_its_line(rows: list[list[object]]) -> None:
    try:
        good, bad = parse_roster(rows)
    except RosterFileError as exc:  # the file as a whole: a missing required column
        assert "missing column" in str(exc)
        return
    lines = [r.line for r in good] + [r.line for r in bad]
    assert len(lines) == len(set(lines)), "a row reported twice"
    assert all(2 <= line <= len(rows) for line in lines), lines
    header = [str(c or "") for c in rows[0]]
    known = [i for i, c in enumerate(header) if _known_header(c)]
    for line, raw in enumerate(rows[1:], start=2):
        if any(_has_content(raw[i]) for i in known if i < len(raw)):
            assert line in lines, f"line {line} neither imported nor rejected"
    for r in bad:
        assert r.reason and isinstance(r.reason, str)
    for r in good:
        assert r.name and r.role in set(ROLES.values())
        assert r.dingtalk_userid or r.wecom_userid
    for key in ("dingtalk_userid", "wecom_userid"):
        ids = [getattr(r, key) for r in good if getattr(r, key)]
        assert len(ids) == len(set(ids)), f"{key} imported twice"


def _known_header(cell_text: str) -> bool:
    norm = re.sub(r"[\s_\-()（）]", "", cell_text.strip().lower())
    return any(norm == re.sub(r"[\s_\-()（）]", "", n.lower()) for names in HEADERS.values() for n in names)


def test_an_empty_roster_is_a_file_error() -> None:
    with pytest.raises(RosterFileError):
        parse_roster([])


# ---------------------------------------------------------------- plan parsing

SPEC_PLAN = tomllib.loads((DATA / "spec_plan.toml").read_text(encoding="utf-8"))
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _paths(node: Any, prefix: str = "") -> list[str]:
    """Every key path in a loaded plan, written the way PlanError names keys."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, f"{prefix}[{i}]")
    return found


PLAN_PATHS = _paths(SPEC_PLAN)


def _resolve(data: Any, key: str) -> tuple[bool, bool]:
    """(parent exists, leaf exists) for a PlanError key such as "task[1].remind_before_days[0]"."""
    tokens = [name if name else int(index) for name, index in _TOKEN.findall(key)]
    node = data
    for depth, token in enumerate(tokens):
        if isinstance(token, int):
            ok = isinstance(node, list) and token < len(node)
        else:
            ok = isinstance(node, dict) and token in node
        if not ok:
            return depth == len(tokens) - 1, False
        node = node[token]
    return True, True


zones = st.sampled_from([None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-12))])
scalar_values = st.one_of(
    st.text(max_size=20), st.sampled_from(["", " ", "fri 16:00", "周五 16：00", "10:00", "25:00", "tue",
                                           "reflection", "photos", "2023-03", "2023-13", "Asia/Shanghai",
                                           "Mars/Olympus", "mon"]),
    st.integers(min_value=-10**6, max_value=10**6), st.floats(), st.booleans(),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
    st.sampled_from([date.min, date.max]),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31), timezones=zones),
    st.sampled_from([datetime.min, datetime.max]),  # aware ones: see test_edge_date_times below
    st.times())
plan_values = st.recursive(
    scalar_values,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["from", "to", "name", "x", "id", "month", "title"]), inner, max_size=3),
    max_leaves=6)
mutations = st.lists(st.tuples(st.sampled_from(PLAN_PATHS), st.sampled_from(["set", "delete", "extra"]),
                               plan_values), min_size=1, max_size=3)


def _mutate(data: Any, path: str, action: str, value: Any) -> None:
    tokens = [name if name else int(index) for name, index in _TOKEN.findall(path)]
    parent = data
    for token in tokens[:-1]:
        try:
            parent = parent[token]
        except (KeyError, IndexError, TypeError):
            return  # an earlier mutation removed or replaced this branch
    leaf = tokens[-1]
    try:
        if action == "delete":
            del parent[leaf]
        elif action == "extra" and isinstance(parent, dict):
            parent[f"{leaf}_extra"] = value
        else:
            parent[leaf] = value
    except (KeyError, IndexError, TypeError):
        return


@settings(max_examples=400, deadline=None)
@given(mutations)
def test_a_mutated_plan_is_a_plan_or_an_error_naming_a_real_key(changes: list[tuple[str, str, Any]]) -> None:
    data = copy.deepcopy(SPEC_PLAN)
    for path, action, value in changes:
        _mutate(data, path, action, value)
    try:
        plan = parse_plan(data)
    except PlanError as exc:
        event("PlanError")
        assert exc.key and exc.problem, exc
        parent, leaf = _resolve(data, exc.key)
        assert parent, f"{exc.key!r} does not name a place in the plan"
        assert leaf or "missing" in exc.problem, f"{exc.key!r} is not in the plan: {exc}"
        return
    assert isinstance(plan, Plan)


toml_literals = st.one_of(
    st.integers(min_value=-10**9, max_value=10**9).map(str), st.sampled_from(
        ['""', '"fri 16:00"', "true", "[]", "[1, 2]", '["tue", "xyz"]', "2023-02-30", "0001-01-01",
         "9999-12-31", "0001-01-01T00:00:00", "2023-03-31T17:00:00+08:00", "nan", "inf",
         "-1.5", "{ from = 2023-04-01, to = 2023-03-01 }", "[{ from = 2023-03-01, to = 2023-03-05 }]",
         '"12:60"', "12:30:00", '"\\u0000"', "{}", "[[1]]", "=", '"""']),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12).map(json.dumps))


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0), toml_literals), min_size=1, max_size=3))
def test_a_plan_file_with_edited_values_loads_or_names_the_key(edits: list[tuple[int, str]]) -> None:
    lines = (DATA / "spec_plan.toml").read_text(encoding="utf-8").splitlines()
    assignments = [i for i, line in enumerate(lines) if re.match(r"^\w+\s*=", line)]
    for pick, literal in edits:
        i = assignments[pick % len(assignments)]
        lines[i] = lines[i].split("=", 1)[0] + "= " + literal
    text = "\n".join(lines)
    try:
        plan = plan_from_text(text)
    except PlanError as exc:
        if exc.key != "<file>":
            parent, leaf = _resolve(tomllib.loads(text), exc.key)
            assert parent and (leaf or "missing" in exc.problem), exc
        return
    assert isinstance(plan, Plan)


@pytest.mark.parametrize("due", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-12:00"])
def test_edge_date_times_are_a_plan_error(due: str) -> None:
    text = (DATA / "spec_plan.toml").read_text(encoding="utf-8").replace(
        "due = 2023-03-31T17:00:00", f"due = {due}", 1)
    with pytest.raises(PlanError) as caught:
        plan_from_text(text)
    assert caught.value.key == "task[0].due"


# ---------------------------------------------------------------- hot-path SQL text


@FAST
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)),
                                               timezone(timedelta(hours=-5, minutes=-30))])))
def test_the_driver_level_time_text_is_what_the_orm_stores(value: datetime) -> None:
    """The check-in path writes times with the sqlite3 driver; the text must be exactly what
    SQLAlchemy writes for a UTCDateTime column, or ORM reads and range queries would differ."""
    from sqlalchemy.dialects import sqlite

    from storage.inline import sqlite_time
    from storage.models import UTCDateTime

    column = UTCDateTime()
    dialect = sqlite.dialect()
    naive_utc = column.process_bind_param(value, dialect)
    orm_text = column.impl_instance.dialect_impl(dialect).bind_processor(dialect)(naive_utc)
    assert sqlite_time(value) == orm_text
    assert sqlite_time(value) == orm_text  # the second look (same object) is remembered
