"""`yanxiu demo`: a demo district on a fresh SQLite file, with a session open right now."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kernel.roster import RosterRow

TZ = ZoneInfo("Asia/Shanghai")

# The county plan's spring themes (seeds/003), in order; mapped onto the current months.
SEED_THEMES = [
    ("如何上好新学期第一课", None),
    ("让各课堂教学和课程思政有机融入", "说课及课件制作"),
    ("合理进行单元知识点归纳总结", "作业设计和试题命制"),
    ("利用所学知识解决生活实践问题", None),
    ("学教结合归纳总结自学方法", None),
]

SCHOOLS = [
    ("LX001", "兰西县第一小学"),
    ("LX002", "兰西县实验中学"),
    ("LX003", "兰西县城关幼儿园"),
]

PEOPLE = [
    # school index, name, role, subject, stage
    (0, "王丽华", "school_lead", "语文", "小学"),
    (0, "张明", "teacher", "数学", "小学"),
    (0, "李秀英", "teacher", "语文", "小学"),
    (0, "刘洋", "teacher", "英语", "小学"),
    (0, "陈静", "teacher", "科学", "小学"),
    (1, "赵建国", "school_lead", "物理", "初中"),
    (1, "孙晓梅", "teacher", "化学", "初中"),
    (1, "周海涛", "teacher", "数学", "初中"),
    (1, "吴芳", "teacher", "道德与法治", "初中"),
    (2, "郑雪", "school_lead", "学前教育", "学前"),
    (2, "冯婷婷", "teacher", "学前教育", "学前"),
    (2, "何丹", "teacher", "学前教育", "学前"),
    (None, "钱志强", "district_admin", None, None),
]


def demo_roster() -> list[RosterRow]:
    rows = []
    for n, (school, name, role, subject, stage) in enumerate(PEOPLE, start=1):
        code, school_name = SCHOOLS[school] if school is not None else (None, None)
        rows.append(RosterRow(
            line=n + 1, school_code=code, school_name=school_name, name=name, role=role,
            dingtalk_userid=f"demo-dt-{n:03d}", wecom_userid=f"demo-wx-{n:03d}",
            mobile=f"1380000{n:04d}", subject=subject, stage=stage))
    return rows


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, 1)


def demo_plan_toml(now: datetime) -> str:
    """A term plan on the current months: seed themes, Tue/Thu sessions, one session open now."""
    local = now.astimezone(TZ)
    today = local.date()
    start = today.replace(day=1)
    last_month = _add_months(start, len(SEED_THEMES) - 1)
    end = last_month.replace(day=calendar.monthrange(last_month.year, last_month.month)[1])
    # starts in five minutes, so check-in (10 minutes before start) is already open
    open_at = (local + timedelta(minutes=5)).replace(second=0, microsecond=0)
    if open_at.date() != today:
        open_at = local.replace(hour=23, minute=59, second=0, microsecond=0)
    # the weekly session meets on the demo day too (it is an extra school day): keep it clear
    # of the session open now, which a plan may not overlap
    weekly = "10:00" if not time(9, 0) < open_at.time() < time(10, 40) else "14:00"
    month_end = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    next_month_end = _add_months(start, 1)
    next_month_end = next_month_end.replace(
        day=calendar.monthrange(next_month_end.year, next_month_end.month)[1])
    lines = [
        "[term]",
        f'name = "{today.year}年校本研修（演示）"',
        f"start = {start.isoformat()}",
        f"end = {end.isoformat()}",
        'timezone = "Asia/Shanghai"',
        "required_hours = 12",
        "count_punctuation = false",
        f"extra_school_dates = [{today.isoformat()}]",
        'remind_at = "08:00"',
        "missed_grace_minutes = 120",
        "",
    ]
    for i, (title, form) in enumerate(SEED_THEMES):
        month = _add_months(start, i)
        lines += ["[[theme]]", f'month = "{month:%Y-%m}"', f'title = "{title}"']
        if form:
            lines.append(f'form = "{form}"')
        lines.append("")
    lines += [
        "[[session]]",
        'name = "校本研修集中学习"',
        'weekdays = ["tue", "thu"]',
        f'start = "{weekly}"',
        "minutes = 40",
        "checkin_opens_before = 10",
        "checkin_closes_after = 20",
        "hours = 1",
        "remind_before = 30",
        "",
        "[[session]]",
        'name = "演示研修（现在可签到）"',
        "weekdays = []",
        f'start = "{open_at:%H:%M}"',
        "minutes = 60",
        "checkin_opens_before = 10",
        "checkin_closes_after = 90",
        "hours = 1",
        "",
        "[[task]]",
        'id = "reflection-1"',
        'kind = "reflection"',
        f'title = "{SEED_THEMES[0][0]}·研修心得"',
        "min_chars = 1000",
        f"due = {month_end.isoformat()}T17:00:00",
        "hours = 2",
        "remind_before_days = [3, 1, 0]",
        "",
        "[[task]]",
        'id = "lesson-photos"',
        'kind = "photos"',
        'title = "推门听课照片(三张不同角度)"',
        "min_photos = 3",
        f"due = {next_month_end.isoformat()}T17:00:00",
        "hours = 1",
        "remind_before_days = [1]",
        "",
        "[digest]",
        'school = "fri 16:00"',
        'district = "mon 08:30"',
        "",
    ]
    return "\n".join(lines)
