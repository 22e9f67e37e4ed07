"""`yanxiu export`: per-teacher records and 学时 for 学分认定, as CSV or XLSX (SPEC §10).

The rows come from the same figures as the digests (handlers/digest.py), so an export and
a digest taken at the same moment never disagree.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from kernel.figures import MemberProgress, SchoolDigest
from kernel.plan import Plan
from kernel.spreadsheet import defuse

BASE_COLUMNS = ["school_code", "school_name", "name", "sessions_attended", "sessions_held",
                "reflections_accepted", "photos", "hours_earned", "hours_required"]
# what a task's state is called in the export (a photo task begun but short is a draft)
EXPORT_STATE = {"none": "", "accepted": "accepted", "flagged": "flagged", "draft": "draft",
                "partial": "draft", "missing": "missing"}
SUMMARY_COLUMNS = ["school_code", "school_name", "people", "sessions_held", "checkin_rate",
                   "reflections_done", "photos_done", "hours_avg", "hours_full"]

Progress = Callable[[int, int], None]


def header(plan: Plan) -> list[str]:
    return BASE_COLUMNS + [t.id for t in plan.tasks if t.per_teacher]


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def member_row(school: SchoolDigest, m: MemberProgress) -> list[object]:
    p = m.progress
    reflections = sum(1 for t in p.tasks if t.kind == "reflection" and t.state in ("accepted", "flagged"))
    photos = sum(t.have for t in p.tasks if t.kind == "photos")
    return [school.code, school.name, m.name, p.attended, p.held, reflections, photos,
            _number(p.hours_earned), _number(p.hours_required),
            *(EXPORT_STATE[t.state] for t in p.tasks)]


def rows(schools: Sequence[SchoolDigest]) -> list[list[object]]:
    return [member_row(s, m) for s in schools for m in s.members]


def safe_row(values: Sequence[object]) -> list[object]:
    """Every text cell defused (names, school names, task ids come from people and plans)."""
    return [defuse(v) for v in values]


def write_csv(path: Path, plan: Plan, schools: Sequence[SchoolDigest]) -> int:
    """UTF-8 with a BOM, so Excel on a Chinese Windows opens it without mojibake."""
    data = rows(schools)
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f)
        writer.writerow(safe_row(header(plan)))
        writer.writerows(safe_row(r) for r in data)
    return len(data)


def _sheet_title(school: SchoolDigest, used: set[str]) -> str:
    """Excel sheet names: ≤ 31 characters, none of []:*?/\\, unique."""
    base = "".join(c for c in f"{school.code} {school.name}" if c not in "[]:*?/\\")[:31].strip("'") or "?"
    title, n = base, 2
    while title in used:
        suffix = f"~{n}"
        title, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(title)
    return title


def _append(ws: object, values: Sequence[object]) -> None:
    """One row, text defused and stored as text: openpyxl would make a str starting with
    "=" a formula, so each text cell's type is set to string explicitly."""
    ws.append(safe_row(values))  # type: ignore[attr-defined]
    for cell in ws[ws.max_row]:  # type: ignore[attr-defined,index]
        if isinstance(cell.value, str):
            cell.data_type = "s"


def _format(ws: object, widths: Sequence[int]) -> None:
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws.freeze_panes = "A2"  # type: ignore[attr-defined]
    for cell in ws[1]:  # type: ignore[index]
        cell.font = Font(bold=True)
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width  # type: ignore[attr-defined]


def _width(values: Sequence[object], minimum: int = 8) -> int:
    """A column width that fits its longest value; CJK characters are two columns wide."""
    def cols(v: object) -> int:
        return sum(2 if ord(c) > 0x2E80 else 1 for c in str(v))
    return min(max(minimum, *(cols(v) + 2 for v in values)), 60)


def write_xlsx(path: Path, plan: Plan, schools: Sequence[SchoolDigest],
               progress: Progress | None = None) -> int:
    """A summary sheet, then one sheet per school; header frozen, widths set."""
    from openpyxl import Workbook

    wb = Workbook(write_only=False)
    summary = wb.active
    summary.title = "汇总"
    _append(summary, SUMMARY_COLUMNS)
    for s in schools:
        _append(summary, [s.code, s.name, len(s.members), s.held,
                        None if s.checkins.ratio is None else round(s.checkins.ratio, 3),
                        s.reflections.done, s.photos.done, s.hours_avg, s.hours_full])
    _format(summary, [_width([c, *(r[i] for r in summary.iter_rows(min_row=2, values_only=True))])
                      for i, c in enumerate(SUMMARY_COLUMNS)])
    head = header(plan)
    used = {"汇总"}
    total = 0
    for n, school in enumerate(schools, start=1):
        ws = wb.create_sheet(_sheet_title(school, used))
        _append(ws, head)
        data = [member_row(school, m) for m in school.members]
        for row in data:
            _append(ws, row)
        _format(ws, [_width([c, *(r[i] for r in data)]) for i, c in enumerate(head)])
        total += len(data)
        if progress is not None:
            progress(n, len(schools))
    wb.save(path)
    return total
