"""The web dashboard through real HTTP: a lead or the district admin asks for 后台 in a private chat,
opens the link, and sees the digest's numbers; anything else gets a 403 page without data."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select, update

from bot.web.views import weekly_trend
from handlers.digest import district_figures, school_digest_figures
from storage.db import Database
from storage.files import write_photo_file
from storage.models import Person, Photo, Submission
from storage.queries.directory import active_term, all_schools
from tests.conftest import FakeClock, SimChat
from tests.known_records import DIGEST_AT, add_known_records
from tests.wecom_fake import PNG

LINK = re.compile(r"https?://\S+/dashboard/\?t=\S+")
REFLECTION = "今天听了<b>张老师</b>的课 & 很有收获。\n第二段：课堂提问要留白。"


@pytest.fixture
async def known(seeded: Database, clock: FakeClock) -> dict[str, int]:
    people = await add_known_records(seeded)
    clock.now = DIGEST_AT
    return people


async def link_of(chat: SimChat, who: str) -> str:
    """Ask for 后台 in a private chat; the path and query of the link the bot answers with."""
    reply = await chat.say(who, "后台", school=None)
    found = LINK.search(reply)
    assert found is not None, reply
    parts = urlsplit(found.group(0))
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.1:8080"  # server.public_base_url
    return f"{parts.path}?{parts.query}"


def token_of(link: str) -> str:
    """The link's query ("t=…"), as the pages write it into their own links."""
    return urlencode({"t": parse_qs(link.split("?", 1)[1])["t"][0]})


async def page(client: Any, path: str, status: int = 200) -> str:
    resp = await client.get(path, allow_redirects=False)
    text = await resp.text()
    assert resp.status == status, (path, resp.status, text[:300])
    if status == 200:
        assert resp.headers["Cache-Control"] == "no-store"
    return text


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).strip()


def member_rows(html: str) -> dict[int, str]:
    return {int(pid): text_of(row) for pid, row in
            re.findall(r'<tr id="member-(\d+)">(.*?)</tr>', html, flags=re.S)}


async def test_in_a_group_the_bot_says_to_ask_privately_and_posts_no_link(chat: SimChat, known: Any) -> None:
    reply = await chat.say("王丽华", "@研修助手 后台")
    assert "请私聊我发送「后台」" in reply and "/dashboard" not in reply and "t=" not in reply
    assert "只有学校负责人" in await chat.say("张明", "后台", school=None)
    admin = await chat.say("钱志强", "dashboard", school="LX002")
    assert "请私聊" in admin and "/dashboard" not in admin


async def test_a_lead_opens_their_school_and_sees_the_digest_numbers(
        app_client: Any, chat: SimChat, known: dict[str, int], seeded: Database) -> None:
    reply = await chat.say("王丽华", "后台", school=None)
    assert "兰西县第一小学数据后台" in reply and "12 小时内有效" in reply
    link = await link_of(chat, "王丽华")
    landing = await app_client.get(link, allow_redirects=False)
    assert landing.status == 302
    target = urlsplit(landing.headers["Location"])
    assert target.path == "/dashboard/school/LX001" and parse_qs(target.query) == parse_qs(urlsplit(link).query)
    html = await page(app_client, landing.headers["Location"])

    async with seeded.sessions() as s:
        term = await active_term(s)
        school = next(x for x in await all_schools(s) if x.code == "LX001")
        d = await school_digest_figures(s, term, school, DIGEST_AT)
    assert f'id="sum-checkins">{d.checkins.pct}%<' in html and d.checkins.pct == 68
    assert f'id="sum-reflections">{d.reflections.pct}%<' in html
    assert f'id="sum-photos">{d.photos.pct}%<' in html
    assert f'id="sum-overall">{d.overall_pct}%<' in html
    rows = member_rows(html)
    assert set(rows) == {m.member.id for m in d.members}
    for m in d.members:
        row = rows[m.member.id]
        assert row.split()[0] == m.name
        assert f"{m.progress.attended}/{m.checkins_due}" in row
        assert row.split()[-1] == f"{m.progress.hours_earned:g}"
    assert "草稿 500/1000" in rows[known["张明"]] and "迟到 1" in rows[known["张明"]]
    assert "通过·疑似雷同" in rows[known["李秀英"]] and "不足 2/3" in rows[known["李秀英"]]
    assert "未交" in rows[known["刘洋"]]
    text = text_of(html)
    assert "李秀英「三月研修心得」与 王丽华 相似 82%" in text  # flags
    assert "刘洋 3月21日（周二，待）：外出培训" in text  # excused, upcoming
    assert "兰西县实验中学" not in text and "孙晓梅" not in text


async def test_a_lead_gets_403_for_another_school_the_district_or_its_teachers(
        app_client: Any, chat: SimChat, known: dict[str, int], seeded: Database) -> None:
    q = token_of(await link_of(chat, "王丽华"))
    photo_sha = "ab" * 32
    async with seeded.sessions() as s, s.begin():
        task = (await active_term(s)).task_ids["lesson-photos"]
        s.add(Photo(person_id=known["孙晓梅"], task_id=task, sha256=photo_sha, mime="image/png", size=1,
                    at=DIGEST_AT))
    for path in ("/dashboard/school/LX002", "/dashboard/district", f"/dashboard/teacher/{known['孙晓梅']}",
                 f"/dashboard/teacher/{known['钱志强']}", "/dashboard/school/NOPE",
                 f"/dashboard/photo/{photo_sha}"):
        html = await page(app_client, f"{path}?{q}", status=403)
        assert "学校负责人的链接只能查看本校" in html, path
        assert "实验中学" not in html and "孙晓梅" not in html and "%" not in text_of(html)
    await page(app_client, f"/dashboard/teacher/{known['张明']}?{q}")  # their own school's teacher: fine


def forge(token: str, person: int, scope: str, expires: int) -> str:
    """Another payload under the token's own signature: what editing the URL gives."""
    from itsdangerous.encoding import base64_encode

    payload = base64_encode(URLSafeSerializer(b"any").dump_payload([person, scope, expires])).decode()
    return f"{payload}.{token.rsplit('.', 1)[1]}"


async def test_no_link_a_changed_link_or_an_expired_one_gets_403(
        app_client: Any, chat: SimChat, known: Any, clock: FakeClock) -> None:
    link = await link_of(chat, "王丽华")
    q = token_of(link)
    await page(app_client, "/dashboard/school/LX001", status=403)
    await page(app_client, "/dashboard/school/LX001?t=", status=403)
    token = q[2:]
    pid, scope, expires = URLSafeSerializer(b"any").loads_unsafe(token)[1]
    for forged in (forge(token, pid, "school:2", expires), forge(token, pid, "district", expires),
                   forge(token, pid, scope, expires + 86400), token.rsplit(".", 1)[0] + "." + "A" * 43):
        html = await page(app_client, f"/dashboard/school/LX001?t={forged}", status=403)
        assert "链接不完整或无效" in html
    clock.advance(hours=11, minutes=59)
    await page(app_client, f"/dashboard/school/LX001?{q}")
    clock.advance(minutes=2)
    html = await page(app_client, f"/dashboard/school/LX001?{q}", status=403)
    assert "这个链接已过期" in html and "兰西县第一小学" not in html
    fresh = await link_of(chat, "王丽华")  # asking again gives a new one
    await page(app_client, f"{fresh.replace('/dashboard/?', '/dashboard/school/LX001?')}")


async def test_a_lead_who_is_no_longer_a_lead_loses_the_link(
        app_client: Any, chat: SimChat, known: dict[str, int], seeded: Database) -> None:
    q = token_of(await link_of(chat, "王丽华"))
    async with seeded.sessions() as s, s.begin():
        await s.execute(update(Person).where(Person.id == known["王丽华"]).values(role="teacher"))
    assert "已失效" in await page(app_client, f"/dashboard/school/LX001?{q}", status=403)


async def test_the_district_admin_sees_schools_ranked_behind_first_and_weekly_trends(
        app_client: Any, chat: SimChat, known: Any, seeded: Database) -> None:
    link = await link_of(chat, "钱志强")
    landing = await app_client.get(link, allow_redirects=False)
    assert landing.status == 302 and landing.headers["Location"].startswith("/dashboard/district?t=")
    html = await page(app_client, landing.headers["Location"])
    async with seeded.sessions() as s:
        term = await active_term(s)
        d = await district_figures(s, term, DIGEST_AT)
        trend = await weekly_trend(s, term, DIGEST_AT, d.members)
    assert [s.code for s in d.schools] == ["LX002", "LX001"]
    assert html.index('id="school-LX002"') < html.index('id="school-LX001"')
    ranked = {code: text_of(item) for code, item in
              re.findall(r'<li id="school-(\w+)"[^>]*>(.*?)</li>', html, flags=re.S)}
    assert ranked["LX001"].startswith("2 兰西县第一小学 47% 签到 68% · 心得 50% · 照片 25% · 教师 4 人")
    assert ranked["LX002"].startswith("1 兰西县实验中学 2% 签到 6% · 心得 0% · 照片 0%")
    assert f'id="sum-checkins">{d.checkins.pct}%<' in html and f'id="sum-members">{d.members}<' in html
    # the weeks add up to the digest's figures: every check-in once, reflections so far
    assert sum(w.checkins.done for w in trend) == d.checkins.done == 14
    assert sum(w.checkins.total for w in trend) == d.checkins.total == 34
    assert trend[-1].reflections == d.reflections
    weeks = {day: text_of(row) for day, row in re.findall(r'<tr data-week="([\d-]+)">(.*?)</tr>', html, flags=re.S)}
    assert weeks == {
        "2023-02-27": "2月27日–3月5日 1 次 42%（3/7） 0%",
        "2023-03-06": "3月6日–3月12日 2 次 38%（5/13） 28%（+2）",
        "2023-03-13": "3月13日–3月19日 2 次 42%（6/14） 28%",
    }
    school = await page(app_client, f"/dashboard/school/LX002?{token_of(link)}")
    assert "兰西县实验中学 · 研修进度" in school and "← 全区" in school


async def test_the_teacher_page_shows_checkin_times_reflection_text_and_photos(
        app_client: Any, chat: SimChat, config: Any, known: dict[str, int], seeded: Database) -> None:
    from pathlib import Path

    sha = "c0" * 32
    write_photo_file(Path(config.storage.files_dir), sha, "image/png", PNG)
    async with seeded.sessions() as s, s.begin():
        term = await active_term(s)
        await s.execute(update(Submission).where(Submission.person_id == known["李秀英"]).values(text=REFLECTION))
        s.add(Photo(person_id=known["李秀英"], task_id=term.task_ids["lesson-photos"], sha256=sha,
                    mime="image/png", size=len(PNG), at=DIGEST_AT))
    q = token_of(await link_of(chat, "王丽华"))
    html = await page(app_client, f"/dashboard/teacher/{known['李秀英']}?{q}")
    text = text_of(html)
    assert "李秀英 · 研修记录" in text
    assert 'id="sum-checkins">3/4<' in html and 'id="sum-leaves">1<' in html  # 5 held, 1 excused
    for day in ("3月2日 10:00 10:00:00", "3月7日 10:00 10:00:00", "3月14日 10:00 10:00:00"):
        assert day in text
    assert "3月9日 10:00 校本研修集中学习：家中有事" in text
    assert "今天听了&lt;b&gt;张老师&lt;/b&gt;的课 &amp; 很有收获。\n第二段" in html  # escaped, lines kept
    assert "<b>张老师</b>" not in html
    assert "3 张（要求 3 张）" in text  # two known ones and the real one
    src = re.search(rf'<img src="(/dashboard/photo/{sha}\?t=[^"]+)"', html)
    assert src is not None
    resp = await app_client.get(unescape(src.group(1)))
    assert resp.status == 200 and await resp.read() == PNG and resp.content_type == "image/png"
    missing = await app_client.get(f"/dashboard/photo/{'e' * 64}?{q}")  # nobody sent it: not in scope
    assert missing.status == 403
    async with seeded.sessions() as s:
        assert (await s.scalar(select(Photo.sha256).where(Photo.sha256 == sha))) == sha


def test_the_link_reply_reads_well_in_markdown_too() -> None:
    from datetime import UTC, datetime

    from kernel.messages import Reply
    from kernel.records import SchoolInfo
    from templates.render import DEFAULT_TZ, render_reply

    data = {"url": "https://yanxiu.example.org/dashboard/?t=1.school%3A1.1.ab", "hours": 12.0, "tz": DEFAULT_TZ,
            "expires_at": datetime(2023, 3, 18, 4, 0, tzinfo=UTC), "school": SchoolInfo(1, "LX001", "第一_小学"),
            "title": "数据后台"}
    md = render_reply(Reply("dashboard_link", data), markdown=True)
    assert md.text.startswith("[打开第一\\_小学数据后台](https://yanxiu.example.org/dashboard/?t=1.school%3A1.1.ab)")
    assert "到 3月18日 12:00" in md.text and md.title == "数据后台"
    plain = render_reply(Reply("dashboard_link", {**data, "school": None}))
    assert plain.text.splitlines()[:2] == ["全区数据后台（只读）：", data["url"]]


@pytest.mark.parametrize("listed", [500, 0])  # staff ids as a list, or (too many to list) a sub-select
async def test_the_district_trend_leaves_out_what_district_staff_record(
        known: Any, seeded: Database, listed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """District staff are not members: their check-ins, leave and reflections (say, trying the
    bot out) count in no week of the district's trend, as in no digest."""
    from storage.models import Checkin, Leave

    monkeypatch.setattr("storage.queries.dashboard.MAX_LISTED", listed)

    async def figures() -> tuple[Any, Any]:
        async with seeded.sessions() as s:
            term = await active_term(s)
            d = await district_figures(s, term, DIGEST_AT)
            return term, ([(w.checkins, w.reflections, w.reflections_new) for w in
                           await weekly_trend(s, term, DIGEST_AT, d.members)], d.checkins, d.reflections)

    term, before = await figures()
    held = [o.id for o in term.occurrences if o.occurrence.starts_at <= DIGEST_AT]
    async with seeded.sessions() as s, s.begin():
        staff = (await s.scalars(select(Person.id).where(Person.name == "钱志强"))).one()
        s.add(Checkin(person_id=staff, occurrence_id=held[0], at=DIGEST_AT, late=False, platform="sim",
                      msg_id="staff-try"))
        s.add(Leave(person_id=staff, occurrence_id=held[1], reason="试用", at=DIGEST_AT))
        s.add(Submission(person_id=staff, task_id=term.task_ids["reflection-march"], text="试用" * 600,
                         chars=1200, state="accepted", updated_at=DIGEST_AT, accepted_at=DIGEST_AT))
    _, after = await figures()
    assert after == before
    assert sum(rate.done for rate, _, _ in before[0]) == before[1].done == 14  # the staff check-in is not one
