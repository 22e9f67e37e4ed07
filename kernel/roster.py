"""Roster files (CSV or XLSX, English or Chinese headers) → validated rows and rejected lines."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from kernel.spreadsheet import formula_start

HEADERS = {
    "school_code": ("school_code", "学校代码", "学校编码", "学校编号"),
    "school_name": ("school_name", "学校名称", "学校"),
    "name": ("name", "姓名", "教师姓名"),
    "role": ("role", "角色"),
    "dingtalk_userid": ("dingtalk_userid", "钉钉id", "钉钉userid", "钉钉用户id"),
    "wecom_userid": ("wecom_userid", "企业微信id", "企业微信userid", "企微id"),
    "mobile": ("mobile", "手机号", "手机", "手机号码"),
    "subject": ("subject", "学科"),
    "stage": ("stage", "学段"),
    "township": ("township", "乡镇", "所属乡镇", "乡（镇）", "乡镇（街道）"),
}
ROLES = {
    "teacher": "teacher", "教师": "teacher", "老师": "teacher",
    "school_lead": "school_lead", "学校负责人": "school_lead", "负责人": "school_lead",
    "校长": "school_lead", "副校长": "school_lead", "分管副校长": "school_lead", "教学校长": "school_lead",
    "教研组长": "school_lead", "年级组长": "school_lead", "教导主任": "school_lead",
    "township_lead": "township_lead", "中心校负责人": "township_lead", "中心校校长": "township_lead",
    "district_admin": "district_admin", "区管理员": "district_admin", "管理员": "district_admin",
    "县管理员": "district_admin",
}
# the role words kept as a person's title: what a lead is (a 教研组长 sees their subject's teachers)
TITLES = frozenset(word for word in ROLES if not word.isascii() and word not in (
    "教师", "老师", "学校负责人", "负责人", "区管理员", "管理员", "县管理员"))
SUBJECT_LEAD = "教研组长"
MOBILE = re.compile(r"^1\d{10}$")
# the roster file's user-id columns (SPEC §10) and the platform whose identity each one is
IDENTITY_COLUMNS = {"dingtalk": "dingtalk_userid", "wecom": "wecom_userid"}


@dataclass(frozen=True, slots=True)
class RosterRow:
    line: int
    school_code: str | None
    school_name: str | None
    name: str
    role: str
    dingtalk_userid: str | None
    wecom_userid: str | None
    mobile: str | None
    subject: str | None
    stage: str | None
    title: str | None = None  # the roster's role word when it says more than the role: 校长, 教研组长…
    township: str | None = None  # the school's 乡镇

    def identities(self) -> tuple[tuple[str, str], ...]:
        """(platform, user id) for every platform column this row fills."""
        return tuple((platform, user) for platform, column in IDENTITY_COLUMNS.items()
                     if (user := getattr(self, column)))


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row not imported. `reason` is in English; `code` names the problem and `column` the
    canonical key it is about, so the command line can say it in Chinese with the column
    header as the file spells it."""

    line: int
    reason: str
    code: str = ""  # no_name, bad_role, no_school_code, no_school_name, no_identity, bad_mobile, repeated_id
    column: str = ""
    value: str = ""
    other_line: int = 0


@dataclass(frozen=True, slots=True)
class FormulaWarning:
    """A kept row whose `field` starts with `char`: exports will prefix that cell with a quote."""

    line: int
    field: str
    char: str


class RosterFileError(Exception):
    """The file as a whole cannot be read (wrong type, no header, missing columns); `code`
    names which (wrong_type, not_xlsx, not_text, empty, missing_columns), `columns` the
    canonical keys of missing columns."""

    def __init__(self, message: str, code: str = "", columns: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.columns = columns


def _header_key(cell: str) -> str | None:
    norm = re.sub(r"[\s_\-()（）]", "", cell.strip().lower())
    for key, names in HEADERS.items():
        if norm in {re.sub(r"[\s_\-()（）]", "", n.lower()) for n in names}:
            return key
    return None


# how a Chinese header row names each column the file lacks (the first of HEADERS otherwise)
CHINESE_HEADERS = {"school_code": "学校代码", "school_name": "学校名称", "name": "姓名", "role": "角色",
                   "dingtalk_userid": "钉钉ID", "wecom_userid": "企业微信ID", "mobile": "手机号",
                   "subject": "学科", "stage": "学段", "township": "乡镇"}
_CJK = re.compile(r"[\u3400-\u9fff]")


def spelled_headers(header: list[object]) -> dict[str, str]:
    """{canonical key: the column's header as the file spells it}; a column the file lacks is
    named in the header row's language (钉钉ID beside Chinese headers, dingtalk_userid beside
    English ones)."""
    cells = [str(c or "").strip() for c in header]
    chinese = any(_CJK.search(c) for c in cells)
    spelled = {key: (CHINESE_HEADERS[key] if chinese else key) for key in HEADERS}
    for cell in cells:
        key = _header_key(cell)
        if key is not None:
            spelled[key] = cell
    return spelled


def _clean(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # XLSX stores mobiles and codes as numbers
    text = str(value).strip().replace("\u3000", " ").strip()
    return text or None


def read_table(path: Path) -> list[list[object]]:
    """All rows of the first sheet / the CSV, header first."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except OSError:
            raise  # not there, a folder, not allowed: the caller names the file
        except Exception as exc:  # openpyxl raises many types for a broken file
            raise RosterFileError(f"{path}: not a readable XLSX file ({type(exc).__name__})",
                                  "not_xlsx") from None
        ws = wb.worksheets[0]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        wb.close()
        return rows
    if suffix in (".csv", ".txt"):
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):  # Excel on Chinese Windows saves GBK
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise RosterFileError(f"{path}: neither UTF-8 nor GBK text", "not_text")
        return [list(r) for r in csv.reader(io.StringIO(text))]
    raise RosterFileError(f"{path}: roster must be .csv or .xlsx", "wrong_type")


def parse_roster(rows: list[list[object]]) -> tuple[list[RosterRow], list[RejectedRow]]:
    """Validate every row; line numbers count the header as line 1."""
    if not rows:
        raise RosterFileError("the roster is empty", "empty")
    columns = [_header_key(str(c or "")) for c in rows[0]]
    missing = [k for k in ("school_code", "name", "role") if k not in columns]
    if missing:
        raise RosterFileError(f"missing column(s): {', '.join(missing)}", "missing_columns",
                              tuple(missing))
    good: list[RosterRow] = []
    bad: list[RejectedRow] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(rows[1:], start=2):
        cells = {k: _clean(v) for k, v in zip(columns, raw, strict=False) if k}
        if not any(cells.values()):
            continue  # blank line
        problem = _problem(line, cells)
        if problem is None:
            for key in ("dingtalk_userid", "wecom_userid"):
                ident = cells.get(key)
                if ident and f"{key}:{ident}" in seen:
                    other = seen[f"{key}:{ident}"]
                    problem = RejectedRow(line, f"{key} {ident} repeats line {other}", "repeated_id",
                                          key, ident, other)
        if problem:
            bad.append(problem)
            continue
        for key in ("dingtalk_userid", "wecom_userid"):
            if cells.get(key):
                seen[f"{key}:{cells[key]}"] = line
        good.append(RosterRow(
            line=line, school_code=cells.get("school_code"), school_name=cells.get("school_name"),
            name=cells["name"] or "", role=ROLES[(cells.get("role") or "").lower()],
            dingtalk_userid=cells.get("dingtalk_userid"), wecom_userid=cells.get("wecom_userid"),
            mobile=cells.get("mobile"), subject=cells.get("subject"), stage=cells.get("stage"),
            title=_title(cells.get("role")), township=cells.get("township")))
    return good, bad


def _title(word: str | None) -> str | None:
    return word if word in TITLES else None


def _problem(line: int, cells: dict[str, str | None]) -> RejectedRow | None:
    if not cells.get("name"):
        return RejectedRow(line, "name is empty", "no_name", "name")
    role = (cells.get("role") or "").lower()
    if role not in ROLES:
        return RejectedRow(line, f"role {cells.get('role')!r} is not teacher/教师, school_lead/学校负责人 "
                           "(校长, 分管副校长, 教研组长, 年级组长), township_lead/中心校负责人 or "
                           "district_admin/区管理员", "bad_role", "role", cells.get("role") or "")
    if ROLES[role] == "township_lead" and not cells.get("township"):
        return RejectedRow(line, "township is empty (a 中心校负责人 sees the schools of their township)",
                           "no_township", "township")
    if ROLES[role] != "district_admin" and not cells.get("school_code"):
        return RejectedRow(line, "school_code is empty", "no_school_code", "school_code")
    if cells.get("school_code") and not cells.get("school_name"):
        return RejectedRow(line, "school_name is empty", "no_school_name", "school_name")
    if not cells.get("dingtalk_userid") and not cells.get("wecom_userid"):
        return RejectedRow(line, "needs a dingtalk_userid or a wecom_userid", "no_identity")
    mobile = cells.get("mobile")
    if mobile and not MOBILE.match(mobile):
        return RejectedRow(line, f"mobile {mobile!r} is not an 11-digit mainland number", "bad_mobile",
                           "mobile", mobile)
    return None


TEXT_FIELDS = ("school_code", "school_name", "name", "dingtalk_userid", "wecom_userid",
               "mobile", "subject", "stage", "township")


def formula_warnings(rows: list[RosterRow]) -> list[FormulaWarning]:
    """Each text cell of an imported row that a spreadsheet would read as a formula."""
    found: list[FormulaWarning] = []
    for row in rows:
        for field in TEXT_FIELDS:
            value = getattr(row, field)
            char = formula_start(value) if value else None
            if char is not None:
                found.append(FormulaWarning(row.line, field, char))
    return found


def load_roster(path: str | Path) -> tuple[list[RosterRow], list[RejectedRow]]:
    return parse_roster(read_table(Path(path)))
