"""The plan's second edition (SPEC §11): the seeds' programmes written as districts write them —
activities of every cadence, either-day meetings, scopes, file tasks, recurring deadlines,
学时 by category, 考评 — and every mistake named by its key."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kernel.plan import PlanError, load_plan, plan_from_text, plan_show_json, session_occurrences

DATA = Path(__file__).resolve().parent / "data"
TZ = ZoneInfo("Asia/Shanghai")

BASE = """\
[term]
name = "2027年春季学期校本研修"
start = 2027-03-01
end = 2027-07-09
timezone = "Asia/Shanghai"

[hours]
required = 12
year_required = 36
categories = { "集中研修" = 8, "自主研修" = 2 }
"""


def plan_with(*blocks: str) -> str:
    return BASE + "\n" + "\n".join(blocks)


WEEKLY_ONE = """
[[activity]]
id = "weekly"
name = "校本研修集中学习"
type = "集中学习"
every = "week"
weekdays = ["tue", "thu"]
attend = "one"
start = "10:00"
minutes = 40
hours = 0.5
category = "集中研修"
"""


def test_the_seed_programmes_load_as_written() -> None:
    spring = load_plan(DATA / "seed_003_spring.toml")
    assert spring.edition == 2 and spring.required_hours == 12 and spring.year_required == 36
    assert dict(spring.categories) == {"集中研修": 8, "自主研修": 2}
    assert spring.assessment is not None and spring.assessment.pass_mark == 80
    kinds = Counter(o.activity for o in session_occurrences(spring))
    assert kinds == {"weekly": 37, "math-group": 18, "chinese-group": 18, "lecture": 1}
    weekly_units = {o.unit for o in session_occurrences(spring) if o.activity == "weekly"}
    assert len(weekly_units) == 20  # twenty weeks, each one attendance whichever day
    materials = [t.id for t in spring.tasks if t.series == "material-7"]
    assert materials == ["material-7@2023-03-31", "material-7@2023-04-28", "material-7@2023-05-26",
                         "material-7@2023-06-30"]  # July's last Friday is after the term
    county = load_plan(DATA / "seed_004_county.toml")
    township = [o for o in session_occurrences(county) if o.activity == "township"]
    assert [o.starts_at.date() for o in township] == [date(2023, 3, 29), date(2023, 4, 26), date(2023, 5, 31),
                                                      date(2023, 6, 28)]  # last Wednesdays


def test_either_day_meetings_share_one_unit_a_week() -> None:
    plan = plan_from_text(plan_with(WEEKLY_ONE))
    first_week = [o for o in session_occurrences(plan) if o.starts_at.date() < date(2027, 3, 6)]
    assert [o.starts_at.date() for o in first_week] == [date(2027, 3, 2), date(2027, 3, 4)]
    assert first_week[0].unit == first_week[1].unit == "weekly@2027-W09"


def test_a_fortnightly_a_monthly_and_a_one_off_activity_meet_when_the_district_says() -> None:
    text = plan_with("""
[[activity]]
id = "politics"
name = "政治学习"
every = "2 weeks"
weekdays = ["mon"]
start = "16:00"

[[activity]]
id = "workshop"
name = "月度工作坊"
every = "month"
weekdays = ["fri"]
nth = "last"
start = "14:00"
minutes = 90

[[activity]]
id = "lecture"
name = "专题讲座：课程思政"
type = "专题讲座"
every = "once"
dates = [2027-04-14]
start = "14:30"
minutes = 90
hours = 2
category = "集中研修"
""")
    by = {}
    for o in session_occurrences(plan_from_text(text)):
        by.setdefault(o.activity, []).append(o.starts_at.date())
    assert by["politics"][:3] == [date(2027, 3, 1), date(2027, 3, 15), date(2027, 3, 29)]
    assert by["workshop"] == [date(2027, 3, 26), date(2027, 4, 30), date(2027, 5, 28), date(2027, 6, 25)]
    assert by["lecture"] == [date(2027, 4, 14)]


def test_a_period_has_no_meetings_and_its_tasks_point_to_it() -> None:
    plan = plan_from_text(plan_with("""
[[activity]]
id = "tuimen"
name = "推门听课"
type = "听课评课"
from = 2027-03-01
to = 2027-04-30

[[task]]
id = "tuimen-reflection"
kind = "reflection"
title = "推门听课活动反思"
activity = "tuimen"
min_chars = 1000
due = 2027-04-30T17:00:00
hours = 1
category = "自主研修"
"""))
    assert session_occurrences(plan) == []
    task = plan.tasks[0]
    assert task.activity == "tuimen" and task.category == "自主研修"
    assert plan.activity("tuimen") is not None and not plan.activity("tuimen").is_meeting  # type: ignore[union-attr]


def test_scopes_separate_meetings_that_share_an_hour() -> None:
    groups = """
[[activity]]
id = "math"
name = "数学教研组集体备课"
every = "2 weeks"
weekdays = ["wed"]
start = "15:40"
for = { subjects = ["数学"] }

[[activity]]
id = "chinese"
name = "语文教研组集体备课"
every = "2 weeks"
weekdays = ["wed"]
start = "15:40"
for = { subjects = [WHO] }
"""
    plan = plan_from_text(plan_with(groups.replace("WHO", '"语文"')))
    math = plan.activity("math")
    assert math is not None and math.scope.admits(school="LX001", stage="小学", subject="数学", township=None)
    assert not math.scope.admits(school="LX001", stage="小学", subject="语文", township=None)
    with pytest.raises(PlanError) as err:  # both for 数学: the same people, the same hour
        plan_from_text(plan_with(groups.replace("WHO", '"数学"')))
    assert err.value.key == "activity[1].start" and "activity[0]" in err.value.problem


def test_a_recurring_deadline_makes_one_task_a_month_and_reminders_stay_on_school_days() -> None:
    plan = plan_from_text(plan_with("""
[[task]]
id = "monthly-record"
kind = "file"
title = "材料7：月度研修记录"
by = "school"
due = "last fri of month 17:00"
remind_before_days = [1, 0]
"""))
    dues = [t.due for t in plan.tasks]
    assert dues == [datetime(2027, m, d, 17, 0, tzinfo=TZ) for m, d in
                    ((3, 26), (4, 30), (5, 28), (6, 25))]
    assert all(t.series == "monthly-record" and t.by == "school" and t.min_files == 1 for t in plan.tasks)
    sends = [s for s in plan_show_json(plan)["sends"] if s["kind"] == "deadline_reminder"]
    days = {datetime.fromisoformat(s["at"]).date() for s in sends}
    assert all(day.weekday() < 5 for day in days)  # none on a weekend


@pytest.mark.parametrize(("key", "block"), [
    ("activity[0].every", 'id = "a"\nname = "A"\nevery = "3 weeks"\nweekdays = ["mon"]\nstart = "10:00"'),
    ("activity[0].weekdays", 'id = "a"\nname = "A"\nevery = "week"\nstart = "10:00"'),
    ("activity[0].dates", 'id = "a"\nname = "A"\nevery = "once"\nstart = "10:00"'),
    ("activity[0].attend", 'id = "a"\nname = "A"\nweekdays = ["mon"]\nattend = "all"\nstart = "10:00"'),
    ("activity[0].nth", 'id = "a"\nname = "A"\nweekdays = ["mon"]\nnth = "last"\nstart = "10:00"'),
    ("activity[0].category", 'id = "a"\nname = "A"\nweekdays = ["mon"]\nstart = "10:00"\ncategory = "集中学习"'),
    ("activity[0].for.subject", 'id = "a"\nname = "A"\nweekdays = ["mon"]\nstart = "10:00"\nfor = { subject = ["数学"] }'),
    ("activity[0].weekdays", 'id = "a"\nname = "A"\nweekdays = ["mon"]\nfrom = 2027-03-01\nto = 2027-04-30'),
    ("activity[0].to", 'id = "a"\nname = "A"\nfrom = 2027-03-01'),
    ("activity[0].id", 'id = "a b"\nname = "A"\nweekdays = ["mon"]\nstart = "10:00"'),
    ("activity[0].dates[0]", 'id = "a"\nname = "A"\nevery = "once"\ndates = [2027-05-01]\nstart = "10:00"'),
])
def test_a_wrong_activity_names_its_key(key: str, block: str) -> None:
    with pytest.raises(PlanError) as err:
        plan_from_text(plan_with("[[activity]]\n" + block))
    assert err.value.key == key, str(err.value)


@pytest.mark.parametrize(("key", "block"), [
    ("task[0].kind", 'id = "t"\nkind = "video"\ntitle = "T"\ndue = 2027-04-30T17:00:00'),
    ("task[0].min_chars", 'id = "t"\nkind = "file"\ntitle = "T"\nmin_chars = 10\ndue = 2027-04-30T17:00:00'),
    ("task[0].accept", 'id = "t"\nkind = "photos"\ntitle = "T"\nmin_photos = 1\naccept = ["pdf"]\ndue = 2027-04-30T17:00:00'),
    ("task[0].accept[0]", 'id = "t"\nkind = "file"\ntitle = "T"\naccept = [".pdf"]\ndue = 2027-04-30T17:00:00'),
    ("task[0].activity", 'id = "t"\nkind = "file"\ntitle = "T"\nactivity = "nope"\ndue = 2027-04-30T17:00:00'),
    ("task[0].by", 'id = "t"\nkind = "file"\ntitle = "T"\nby = "schools"\ndue = 2027-04-30T17:00:00'),
    ("task[0].hours", 'id = "t"\nkind = "file"\ntitle = "T"\nby = "school"\nhours = 1\ndue = 2027-04-30T17:00:00'),
    ("task[0].due", 'id = "t"\nkind = "file"\ntitle = "T"\ndue = "last friday of the month"'),
    ("task[0].from", 'id = "t"\nkind = "file"\ntitle = "T"\nfrom = 2027-03-01\ndue = 2027-04-30T17:00:00'),
    ("task[0].category", 'id = "t"\nkind = "file"\ntitle = "T"\ncategory = "学科类"\ndue = 2027-04-30T17:00:00'),
])
def test_a_wrong_task_names_its_key(key: str, block: str) -> None:
    with pytest.raises(PlanError) as err:
        plan_from_text(plan_with("[[task]]\n" + block))
    assert err.value.key == key, str(err.value)


@pytest.mark.parametrize(("key", "text"), [
    ("hours.year_required", BASE.replace("year_required = 36", "year_required = 10")),
    ("hours.categories", BASE.replace('"自主研修" = 2', '"自主研修" = 20')),
    ("assessment.weights", BASE + '\n[assessment]\npass = 80\nweights = { attendance = 40, tasks = 40 }\n'),
    ("assessment.pass", BASE + '\n[assessment]\npass = 120\nweights = { attendance = 50, tasks = 50 }\n'),
    ("theme[1].schools[0]", BASE + '\n[[theme]]\nmonth = "2027-03"\ntitle = "A"\nschools = ["LX001"]\n'
                                   '\n[[theme]]\nmonth = "2027-03"\ntitle = "B"\nschools = ["LX001"]\n'),
    ("session", BASE + '\n[[session]]\nname = "S"\nweekdays = ["mon"]\nstart = "10:00"\n' + WEEKLY_ONE),
])
def test_the_other_second_edition_mistakes_name_their_keys(key: str, text: str) -> None:
    with pytest.raises(PlanError) as err:
        plan_from_text(text)
    assert err.value.key == key, str(err.value)


def test_a_school_can_have_its_own_theme_beside_the_districts() -> None:
    plan = plan_from_text(BASE + '\n[[theme]]\nmonth = "2027-03"\ntitle = "如何上好新学期第一课"\n'
                                 '\n[[theme]]\nmonth = "2027-03"\ntitle = "低年级识字教学"\nschools = ["LX001"]\n')
    assert [(t.title, t.schools) for t in plan.themes] == [("如何上好新学期第一课", ()),
                                                           ("低年级识字教学", ("LX001",))]


def test_a_first_edition_session_is_a_weekly_meeting_for_everyone() -> None:
    plan = plan_from_text((DATA / "spec_plan.toml").read_text(encoding="utf-8"))
    (meeting,) = plan.meetings
    assert (meeting.every, meeting.attend, meeting.scope.everyone, meeting.start) == ("week", "each", True, time(10))
    assert plan.edition == 1
