"""The term plan: an operator writes the SPEC §10 TOML and sees what will be sent when."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kernel.calendar import SchoolCalendar
from kernel.plan import (
    SEND_KINDS,
    PlanError,
    current_task,
    load_plan,
    next_occurrence_after,
    open_occurrence_at,
    plan_from_text,
    plan_show_json,
    scheduled_sends,
    session_occurrences,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")

# SPEC.md §10 "Term plan", verbatim.
SPEC_PLAN = """\
[term]
name = "2023年春季学期校本研修"
start = 2023-03-01
end = 2023-07-14
timezone = "Asia/Shanghai"
required_hours = 36
count_punctuation = false
non_school_dates = []            # extra days without sessions, besides public holidays
extra_school_dates = []          # weekend make-up workdays that do hold sessions
remind_at = "08:00"              # time of the due-day deadline reminder
missed_grace_minutes = 120       # a send missed while down is still sent within this

[[theme]]
month = "2023-03"
title = "如何上好新学期第一课"

[[theme]]
month = "2023-04"
title = "让课堂教学和课程思政有机融入"
form = "说课及课件制作"

[[session]]
name = "校本研修集中学习"
weekdays = ["tue", "thu"]
start = "10:00"                  # 上午第三节
minutes = 40
checkin_opens_before = 10        # minutes before start
checkin_closes_after = 20        # minutes after start
hours = 1
remind_before = 30               # minutes

[[task]]
id = "reflection-march"
kind = "reflection"
title = "三月研修心得"
min_chars = 1000
due = 2023-03-31T17:00:00
hours = 2
remind_before_days = [3, 1, 0]

[[task]]
id = "lesson-photos"
kind = "photos"
title = "推门听课出课照片(三张不同角度)"
min_photos = 3
due = 2023-04-30T17:00:00
hours = 1

[digest]
school = "fri 16:00"
district = "mon 08:30"
"""


def at(text: str) -> datetime:
    """A Shanghai wall-clock time, e.g. at("2023-03-07 10:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def edited(*changes: tuple[str, str]) -> str:
    """The SPEC plan with each (old, new) replaced once; old must be there."""
    text = SPEC_PLAN
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def session_days(text: str) -> set[date]:
    return {o.starts_at.date() for o in session_occurrences(plan_from_text(text))}


def sends_of(text: str, kind: str) -> dict[str, datetime]:
    return {s.ref: s.at for s in scheduled_sends(plan_from_text(text)) if s.kind == kind}


# ------------------------------------------------------------------ loading the example


def test_the_spec_example_loads_with_its_values() -> None:
    plan = plan_from_text(SPEC_PLAN)
    assert plan.name == "2023年春季学期校本研修"
    assert (plan.start, plan.end, plan.tz) == (date(2023, 3, 1), date(2023, 7, 14), SHANGHAI)
    assert plan.required_hours == 36 and plan.count_punctuation is False
    assert plan.remind_at == time(8) and plan.missed_grace_minutes == 120
    assert [t.month for t in plan.themes] == ["2023-03", "2023-04"]
    assert plan.themes[1].form == "说课及课件制作" and plan.themes[0].form is None
    (session,) = plan.sessions
    assert session.weekdays == (1, 3) and session.start == time(10) and session.remind_before == 30
    reflection, photos = plan.tasks
    assert reflection.due == at("2023-03-31 17:00") and reflection.min_chars == 1000
    assert reflection.remind_before_days == (3, 1, 0)
    assert photos.min_photos == 3 and photos.min_chars is None and photos.remind_before_days == ()
    assert plan.school_digest is not None and plan.school_digest.weekday == 4
    assert plan.district_digest is not None and plan.district_digest.at == time(8, 30)
    assert plan.task("lesson-photos") is photos and plan.task("nope") is None


def test_defaults_fill_what_a_minimal_plan_leaves_out() -> None:
    plan = plan_from_text(
        '[term]\nname = "春季"\nstart = 2023-03-01\nend = 2023-03-31\n'
        '[[session]]\nname = "集中学习"\nweekdays = ["周二"]\nstart = "10:00"\n'
    )
    assert plan.timezone == "Asia/Shanghai" and plan.remind_at == time(8)
    assert plan.missed_grace_minutes == 120 and plan.count_punctuation is False
    assert plan.school_digest is None and plan.tasks == () and plan.themes == ()
    s = plan.sessions[0]
    assert (s.minutes, s.checkin_opens_before, s.checkin_closes_after, s.hours) == (40, 10, 20, 1)
    assert s.remind_before is None and s.weekdays == (1,)
    assert scheduled_sends(plan) == []


def test_load_plan_reads_a_utf8_file_with_a_bom(tmp_path) -> None:
    path = tmp_path / "plan.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SPEC_PLAN.encode())
    assert load_plan(path) == plan_from_text(SPEC_PLAN)


def test_a_toml_syntax_error_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "plan.toml"
    broken = SPEC_PLAN.replace('name = "校本研修集中学习"', "name = 校本研修集中学习")
    line = broken.splitlines().index("name = 校本研修集中学习") + 1
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(PlanError) as err:
        load_plan(path)
    assert err.value.key == "<file>"
    assert "plan.toml" in err.value.problem and f"line {line}," in err.value.problem


def test_a_missing_file_is_a_plan_error(tmp_path) -> None:
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(tmp_path / "absent.toml")


def test_local_times_are_in_the_term_zone_and_offsets_are_converted() -> None:
    plan = plan_from_text(edited(("due = 2023-03-31T17:00:00", "due = 2023-03-31T09:00:00Z")))
    assert plan.tasks[0].due == at("2023-03-31 17:00")
    assert plan.tasks[0].due.tzinfo == SHANGHAI
    tokyo = plan_from_text(edited(('timezone = "Asia/Shanghai"', 'timezone = "Asia/Tokyo"')))
    assert tokyo.tasks[0].due.utcoffset() == timedelta(hours=9)


# ------------------------------------------------------------------ sessions and the calendar


def test_sessions_are_listed_on_tuesdays_and_thursdays() -> None:
    shown = plan_show_json(plan_from_text(SPEC_PLAN))
    assert {
        "name": "校本研修集中学习",
        "start": "2023-03-07T10:00:00+08:00",
        "end": "2023-03-07T10:40:00+08:00",
    } in shown["sessions"]
    days = session_days(SPEC_PLAN)
    assert all(d.weekday() in (1, 3) for d in days)
    assert min(days) == date(2023, 3, 2) and max(days) == date(2023, 7, 13)


def test_no_session_on_public_holidays() -> None:
    days = session_days(edited(('weekdays = ["tue", "thu"]', 'weekdays = ["tue", "wed", "thu"]')))
    assert date(2023, 4, 5) not in days  # 清明节, a Wednesday
    assert date(2023, 4, 12) in days
    assert date(2023, 6, 22) not in days  # 端午节, a Thursday


def test_labour_day_week_skips_tuesday_and_keeps_thursday() -> None:
    days = session_days(SPEC_PLAN)
    assert date(2023, 5, 2) not in days  # 劳动节 (4/29–5/3)
    assert date(2023, 5, 4) in days
    assert date(2023, 4, 27) in days


def test_makeup_workdays_hold_no_session_unless_listed() -> None:
    makeup = [date(2023, 4, 23), date(2023, 5, 6)]  # 调休上班: a Sunday and a Saturday
    assert not set(makeup) & session_days(SPEC_PLAN)
    listed = edited(("extra_school_dates = []", "extra_school_dates = [2023-04-23, 2023-05-06]"))
    assert set(makeup) <= session_days(listed)
    (sunday,) = [
        o for o in session_occurrences(plan_from_text(listed)) if o.starts_at.date() == makeup[0]
    ]
    assert sunday.starts_at == at("2023-04-23 10:00")


def test_non_school_dates_remove_sessions() -> None:
    text = edited(
        (
            "non_school_dates = []",
            "non_school_dates = [2023-03-07, { from = 2023-06-26, to = 2023-07-14 }]",
        )
    )
    days = session_days(text)
    assert date(2023, 3, 7) not in days and date(2023, 3, 9) in days
    assert max(days) == date(2023, 6, 20)
    assert "2023-07-14" not in sends_of(text, "school_digest")


def test_checkin_window_and_occurrence_lookup() -> None:
    occurrences = session_occurrences(plan_from_text(SPEC_PLAN))
    assert occurrences == sorted(occurrences, key=lambda o: o.starts_at)
    tuesday = open_occurrence_at(occurrences, at("2023-03-07 09:50"))
    assert tuesday is not None and tuesday.starts_at == at("2023-03-07 10:00")
    assert (tuesday.opens_at, tuesday.closes_at) == (at("2023-03-07 09:50"), at("2023-03-07 10:20"))
    assert tuesday.ends_at == at("2023-03-07 10:40") and tuesday.hours == 1
    assert open_occurrence_at(occurrences, at("2023-03-07 09:49")) is None
    assert open_occurrence_at(occurrences, at("2023-03-07 10:20")) is None
    after = next_occurrence_after(occurrences, at("2023-03-07 10:20"))
    assert after is not None and after.starts_at == at("2023-03-09 10:00")
    assert next_occurrence_after(occurrences, at("2023-07-13 10:00")) is None


def test_current_task_is_the_next_one_due_then_the_last() -> None:
    plan = plan_from_text(SPEC_PLAN)
    assert current_task(plan, "reflection", at("2023-03-02 09:00")).id == "reflection-march"
    assert current_task(plan, "reflection", at("2023-05-01 09:00")).id == "reflection-march"
    assert current_task(plan, "photos", at("2023-04-30 17:00")).id == "lesson-photos"
    assert (
        current_task(
            plan_from_text(SPEC_PLAN.split("[[task]]")[0]), "photos", at("2023-04-01 09:00")
        )
        is None
    )


# ------------------------------------------------------------------ what is sent when


def test_theme_goes_out_on_the_first_school_day_of_its_month() -> None:
    themes = sends_of(SPEC_PLAN, "theme")
    assert themes == {"2023-03": at("2023-03-01 08:00"), "2023-04": at("2023-04-03 08:00")}


def test_session_reminder_goes_out_before_each_session() -> None:
    reminders = sends_of(SPEC_PLAN, "session_reminder")
    assert reminders["校本研修集中学习@2023-03-07T10:00:00+08:00"] == at("2023-03-07 09:30")
    assert len(reminders) == len(session_occurrences(plan_from_text(SPEC_PLAN)))


def test_deadline_reminders_at_three_one_and_zero_days() -> None:
    reminders = sends_of(SPEC_PLAN, "deadline_reminder")
    assert reminders == {
        "reflection-march/3": at("2023-03-28 17:00"),
        "reflection-march/1": at("2023-03-30 17:00"),
        "reflection-march/0": at("2023-03-31 08:00"),
    }


def test_a_deadline_reminder_on_a_weekend_moves_to_the_school_day_before() -> None:
    text = edited(
        ("due = 2023-04-30T17:00:00", "due = 2023-04-04T17:00:00"),
        ("min_photos = 3", "min_photos = 3\nremind_before_days = [4, 2, 1]"),
    )
    reminders = {ref: when for ref, when in sends_of(text, "deadline_reminder").items()
                 if ref.startswith("lesson-photos/")}
    # 4 days before is Fri 3/31; 2 days before is Sun 4/2 → back to Fri 3/31 17:00, the same
    # moment as the 4-day one, so sent once; 1 day before is Mon 4/3.
    assert reminders == {"lesson-photos/4": at("2023-03-31 17:00"), "lesson-photos/1": at("2023-04-03 17:00")}
    dropped = sends_of(
        edited(
            ("remind_before_days = [3, 1, 0]", "remind_before_days = [0]"),
            ('remind_at = "08:00"', 'remind_at = "18:00"'),
        ),
        "deadline_reminder",
    )
    assert dropped == {}  # the morning-of reminder would come after the due time


def test_a_reminder_before_a_holiday_deadline_is_kept_on_the_school_day_before() -> None:
    """Seed 003: the teacher materials are due Sunday 2023-04-30, in the 劳动节 break."""
    text = edited(("min_photos = 3", "min_photos = 3\nremind_before_days = [3, 1, 0]"))
    reminders = {ref: when for ref, when in sends_of(text, "deadline_reminder").items()
                 if ref.startswith("lesson-photos/")}
    assert reminders == {"lesson-photos/3": at("2023-04-27 17:00"),  # Thu
                         "lesson-photos/1": at("2023-04-28 17:00"),  # Sat 4/29 (holiday) → Fri
                         "lesson-photos/0": at("2023-04-28 08:00")}  # Sun 4/30 (holiday) → Fri 08:00


def test_school_digest_on_a_holiday_friday_moves_to_the_next_school_day() -> None:
    digests = sends_of(SPEC_PLAN, "school_digest")
    assert "2023-06-23" not in digests  # 端午节 Friday
    assert digests["2023-06-26"] == at("2023-06-26 16:00")
    assert digests["2023-06-30"] == at("2023-06-30 16:00")
    district = sends_of(SPEC_PLAN, "district_digest")
    assert "2023-05-01" not in district and district["2023-05-04"] == at("2023-05-04 08:30")


def test_two_digests_moved_onto_the_same_day_are_sent_once() -> None:
    autumn = edited(
        ("start = 2023-03-01", "start = 2023-09-01"),
        ("end = 2023-07-14", "end = 2023-10-31"),
        ('month = "2023-03"', 'month = "2023-10"'),
        ('month = "2023-04"', 'month = "2023-09"'),
        ("due = 2023-03-31T17:00:00", "due = 2023-09-28T17:00:00"),
        ("due = 2023-04-30T17:00:00", "due = 2023-10-20T17:00:00"),
    )
    digests = sends_of(autumn, "school_digest")
    # Fri 9/29 (中秋) and Fri 10/6 (国庆) both move past the 调休 weekend to Mon 10/9.
    assert "2023-09-29" not in digests and "2023-10-06" not in digests
    assert [ref for ref in digests if "2023-09-28" < ref < "2023-10-13"] == ["2023-10-09"]
    assert sends_of(autumn, "theme")["2023-10"] == at("2023-10-09 08:00")


def test_plan_show_json_shape_and_order() -> None:
    shown = plan_show_json(plan_from_text(SPEC_PLAN))
    assert set(shown) == {"sessions", "sends"}
    assert json.loads(json.dumps(shown, ensure_ascii=False)) == shown
    assert all(set(s) == {"name", "start", "end"} for s in shown["sessions"])
    assert all(set(s) == {"at", "kind", "ref"} for s in shown["sends"])
    starts = [datetime.fromisoformat(s["start"]) for s in shown["sessions"]]
    moments = [datetime.fromisoformat(s["at"]) for s in shown["sends"]]
    assert all(m.utcoffset() == timedelta(hours=8) for m in starts + moments)
    assert starts == sorted(starts) and moments == sorted(moments)
    assert {s["kind"] for s in shown["sends"]} == set(SEND_KINDS)
    term = (at("2023-03-01 00:00"), at("2023-07-15 00:00"))
    assert all(term[0] <= m < term[1] for m in moments)
    assert shown["sends"][0] == {
        "at": "2023-03-01T08:00:00+08:00",
        "kind": "theme",
        "ref": "2023-03",
    }


# ------------------------------------------------------------------ validation names the key


BROKEN = [
    ("terms", [("[term]", "[terms]")]),
    ("term.start", [("start = 2023-03-01\n", "")]),
    ("term.start", [("start = 2023-03-01", 'start = "2023-03-01"')]),
    ("term.end", [("end = 2023-07-14", "end = 2023-02-14")]),
    ("term.timezone", [('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"')]),
    ("term.remind_at", [('remind_at = "08:00"', 'remind_at = "8点"')]),
    ("term.remind_at", [('remind_at = "08:00"', 'remind_at = "24:00"')]),
    ("term.required_hours", [("required_hours = 36", "required_hours = -1")]),
    ("term.count_punctuation", [("count_punctuation = false", 'count_punctuation = "no"')]),
    (
        "term.non_school_dates[1]",
        [("non_school_dates = []", 'non_school_dates = [2023-04-03, "2023-04-04"]')],
    ),
    ("term.non_school_dates", [("non_school_dates = []", "non_school_dates = [2023-08-01]")]),
    (
        "term.extra_school_dates",
        [
            ("non_school_dates = []", "non_school_dates = [2023-04-23]"),
            ("extra_school_dates = []", "extra_school_dates = [2023-04-23]"),
        ],
    ),
    ("term.holidays", [("remind_at =", "holidays = []\nremind_at =")]),
    ("theme[0].month", [('month = "2023-03"', 'month = "2023-3"')]),
    ("theme[1].month", [('month = "2023-04"', 'month = "2023-09"')]),
    ("theme[1].month", [('month = "2023-04"', 'month = "2023-03"')]),
    ("theme[0].title", [('title = "如何上好新学期第一课"\n', "")]),
    ("sesion", [("[[session]]", "[[sesion]]")]),
    ("session[0].weekdays[1]", [('["tue", "thu"]', '["tue", "thurs day"]')]),
    ("session[0].weekdays", [('["tue", "thu"]', '"tue"')]),
    ("session[0].start", [('start = "10:00"', 'start = "10.00"')]),
    ("session[0].minutes", [("minutes = 40", "minutes = -40")]),
    ("session[0].hours", [("hours = 1\nremind", 'hours = "1"\nremind')]),
    ("session[0].remind_before", [("remind_before = 30", "remind_before = 0.5")]),
    ("session[0].name", [('name = "校本研修集中学习"\n', "")]),
    ("task[1].id", [('id = "lesson-photos"', 'id = "reflection-march"')]),
    ("task[0].kind", [('kind = "reflection"', 'kind = "video"')]),
    ("task[0].min_chars", [("min_chars = 1000\n", "")]),
    ("task[0].min_chars", [("min_chars = 1000", "min_chars = 0")]),
    ("task[1].min_photos", [("min_photos = 3\n", "")]),
    ("task[1].min_chars", [("min_photos = 3", "min_photos = 3\nmin_chars = 10")]),
    ("task[0].min_char", [("min_chars = 1000", "min_char = 1000")]),
    ("task[0].due", [("due = 2023-03-31T17:00:00", 'due = "2023-03-31 17:00"')]),
    ("task[0].due", [("due = 2023-03-31T17:00:00", "due = 2023-03-31")]),
    ("task[0].due", [("due = 2023-03-31T17:00:00", "due = 2024-03-31T17:00:00")]),
    ("task[0].remind_before_days[1]", [("[3, 1, 0]", "[3, -1, 0]")]),
    ("task[0].hours", [("hours = 2", "hours = -2")]),
    ("digest.school", [('school = "fri 16:00"', 'school = "friday at four"')]),
    ("digest.school", [('school = "fri 16:00"', 'school = "fry 16:00"')]),
    ("digest.district", [('district = "mon 08:30"', 'district = "mon 8:75"')]),
    ("digest.weekly", [('district = "mon 08:30"', 'weekly = "mon 08:30"')]),
]


@pytest.mark.parametrize(
    ("key", "changes"), BROKEN, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BROKEN)]
)
def test_a_broken_plan_names_the_key(key: str, changes: list[tuple[str, str]]) -> None:
    with pytest.raises(PlanError) as err:
        plan_from_text(edited(*changes))
    assert str(err.value).startswith(f"{key}: "), str(err.value)
    assert err.value.key == key


def test_a_plan_without_a_term_table_says_so() -> None:
    with pytest.raises(PlanError, match=r"^term: missing"):
        plan_from_text('[[theme]]\nmonth = "2023-03"\ntitle = "第一课"\n')


def test_a_theme_written_as_a_single_table_asks_for_double_brackets() -> None:
    term = '[term]\nname = "春季"\nstart = 2023-03-01\nend = 2023-03-31\n'
    with pytest.raises(
        PlanError, match=r"^theme: expected an array of tables written \[\[theme\]\]"
    ):
        plan_from_text(term + '[theme]\nmonth = "2023-03"\ntitle = "第一课"\n')


def test_a_misspelt_table_suggests_the_right_name() -> None:
    with pytest.raises(PlanError, match="did you mean 'session'"):
        plan_from_text(edited(("[[session]]", "[[sesion]]")))


def test_chinese_weekday_names_are_accepted() -> None:
    plan = plan_from_text(
        edited(
            ('["tue", "thu"]', '["周二", "星期四"]'),
            ('school = "fri 16:00"', 'school = "周五 16:00"'),
        )
    )
    assert plan.sessions[0].weekdays == (1, 3) and plan.school_digest.weekday == 4


# ------------------------------------------------------------------ the calendar on its own


def test_calendar_knows_holidays_and_makeup_workdays() -> None:
    calendar = SchoolCalendar()
    assert calendar.is_public_holiday(date(2023, 5, 1)) and calendar.is_public_holiday(
        date(2023, 10, 1)
    )
    assert not calendar.is_public_holiday(date(2023, 3, 4))  # an ordinary Saturday
    assert calendar.is_makeup_workday(date(2023, 4, 23)) and not calendar.is_makeup_workday(
        date(2023, 4, 24)
    )
    assert not calendar.is_school_day(date(2023, 4, 23))
    assert SchoolCalendar(extra_school_dates=[date(2023, 4, 23)]).is_school_day(date(2023, 4, 23))
    assert not SchoolCalendar(non_school_dates=[date(2023, 4, 24)]).is_school_day(date(2023, 4, 24))
    assert calendar.next_school_day_on_or_after(date(2023, 4, 29)) == date(2023, 5, 4)
    assert calendar.first_school_day_of_month(2023, 10) == date(2023, 10, 9)
    assert calendar.first_school_day_of_month(2023, 3) == date(2023, 3, 1)
    summer = SchoolCalendar(
        non_school_dates=[date(2023, 8, 1) + timedelta(days=n) for n in range(31)]
    )
    assert summer.first_school_day_of_month(2023, 8) is None


def first_year_without_official_data() -> int:
    import chinese_calendar  # asked directly, not through kernel.calendar

    year = 2026
    while True:
        try:
            chinese_calendar.is_holiday(date(year, 6, 1))
        except NotImplementedError:
            return year
        year += 1


def test_a_year_chinese_calendar_lacks_takes_its_holidays_from_the_holidays_package() -> None:
    calendar = SchoolCalendar()
    assert not calendar.is_school_day(date(2035, 10, 1))  # a Monday, 国庆节
    assert not calendar.is_school_day(date(2035, 10, 2)) and calendar.is_public_holiday(date(2035, 10, 2))
    assert not calendar.is_school_day(date(2035, 10, 6))  # a Saturday
    assert not calendar.is_makeup_workday(date(2035, 10, 7))  # no 调休 is known for 2035
    assert calendar.is_school_day(date(2035, 9, 3))  # an ordinary Monday
    # the statutory 10月1日–3日 only: a longer 国庆 break is an arrangement not made yet
    assert calendar.first_school_day_of_month(2035, 10) == date(2035, 10, 4)


def test_a_2027_spring_plan_holds_no_session_over_the_spring_festival() -> None:
    """春节 2027: 除夕 is Feb 5; the break runs to 正月初七, Feb 12. A plan meeting every
    weekday meets around it, and not on 清明 or the 劳动节 days either."""
    text = edited(
        ('["tue", "thu"]', '["mon", "tue", "wed", "thu", "fri"]'),
        ("start = 2023-03-01", "start = 2027-02-01"),
        ("end = 2023-07-14", "end = 2027-07-09"),
        ('month = "2023-03"', 'month = "2027-03"'),
        ('month = "2023-04"', 'month = "2027-04"'),
        ("due = 2023-03-31T17:00:00", "due = 2027-03-31T17:00:00"),
        ("due = 2023-04-30T17:00:00", "due = 2027-04-30T17:00:00"),
    )
    days = session_days(text)
    assert not [d for d in days if date(2027, 2, 5) <= d <= date(2027, 2, 12)]
    assert {date(2027, 2, 4), date(2027, 2, 15)} <= days  # the days either side hold sessions
    assert date(2027, 4, 5) not in days  # 清明节, a Monday
    assert not {date(2027, 5, 3), date(2027, 5, 4)} & days  # 劳动节 moved off the weekend
    assert date(2027, 6, 9) not in days  # 端午节, a Wednesday


def test_the_spring_festival_estimate_matches_every_arrangement_published_since_2025() -> None:
    """The estimate for a year without an arrangement (除夕 to 正月初七 off) is what the
    State Council gave in every year chinese-calendar has under the same rules."""
    import chinese_calendar

    from kernel.calendar import estimated_rest_days

    years = range(2025, first_year_without_official_data())
    assert len(years) >= 2
    for year in years:
        rest = estimated_rest_days(year)
        [eve] = [d for d, name in rest.items() if name == "农历除夕"]
        break_ = [eve + timedelta(days=n) for n in range(8)]
        assert all(d in rest for d in break_), year
        assert all(chinese_calendar.is_holiday(d) for d in break_), year


def test_holiday_sources_name_the_package_and_the_holidays_of_an_estimated_year() -> None:
    from kernel.calendar import ESTIMATED, OFFICIAL, holiday_sources

    year = first_year_without_official_data()
    official, estimated = holiday_sources(date(year - 1, 9, 1), date(year, 7, 10))
    assert (official.year, official.source, official.spans) == (year - 1, OFFICIAL, ())
    assert (estimated.year, estimated.source) == (year, ESTIMATED)
    names = [s.name for s in estimated.spans]
    assert names[:3] == ["元旦", "春节", "清明节"] and "国庆节" not in names  # October is after the term
    spring = estimated.spans[1]
    assert (spring.last - spring.first).days == 7  # 除夕 to 正月初七


def test_utc_plan_times_stay_aware() -> None:
    plan = plan_from_text(edited(('timezone = "Asia/Shanghai"', 'timezone = "UTC"')))
    first = session_occurrences(plan)[0]
    assert first.starts_at == datetime(2023, 3, 2, 10, tzinfo=UTC)


def test_a_term_longer_than_a_school_year_is_refused() -> None:
    text = (Path(__file__).resolve().parent / "data" / "spec_plan.toml").read_text(encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        plan_from_text(text.replace("end = 2023-07-14", "end = 9999-12-31", 1))
    assert caught.value.key == "term.end" and "at most 400 days" in caught.value.problem


SECOND_SESSION = '''
[[session]]
name = "教研组活动"
weekdays = ["thu"]
start = "{start}"
minutes = 60
'''


def test_a_plan_whose_sessions_overlap_is_refused_naming_both() -> None:
    text = edited(("[[task]]", SECOND_SESSION.format(start="10:30") + "\n[[task]]"))
    with pytest.raises(PlanError) as err:
        plan_from_text(text)
    assert err.value.key == "session[1].start"
    assert "session[0]" in err.value.problem and "'校本研修集中学习'" in err.value.problem
    assert "'教研组活动'" in err.value.problem and "2023-03-02 10:30" in err.value.problem
    # back to back is fine: the first ends at 10:40
    assert len(plan_from_text(edited(("[[task]]", SECOND_SESSION.format(start="10:40") + "\n[[task]]"))).sessions) == 2
