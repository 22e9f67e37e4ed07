"""Teachers send reflections (反思/心得) and continue drafts (续写); padding and copies are handled."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from kernel.wordcount import NEAR_DUPLICATE_THRESHOLD
from storage.models import Inbound, Person, SimMessage, Submission
from tests.conftest import SEEDS, FakeClock, SimChat, seed

# An independent 字数 counter for the seeds' alphabet: each Han character one, each ASCII
# letter/digit run one (3.14 and don't stay one run); punctuation and spaces never.
_HAN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_RUN = r"[A-Za-z0-9]+(?:(?:(?<=[0-9])[.,](?=[0-9])|(?<=[A-Za-z])'(?=[A-Za-z]))[A-Za-z0-9]+)*"
_COUNTED = re.compile(f"{_HAN}|{_RUN}")


def independent_count(text: str) -> int:
    return len(_COUNTED.findall(text))


def seed_lines(prefix: str) -> list[str]:
    text = next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def passage(prefix: str, at_least: int, skip: int = 0) -> str:
    """Consecutive lines of a seed document until the independent count reaches `at_least`."""
    taken: list[str] = []
    for line in seed_lines(prefix)[skip:]:
        taken.append(line)
        if independent_count("\n".join(taken)) >= at_least:
            return "\n".join(taken)
    raise AssertionError(f"seed {prefix} is shorter than {at_least}")


def lightly_edited(text: str) -> str:
    """What a teacher does to a colleague's text: a new opening, synonyms, one sentence dropped."""
    edited = text.replace("研培", "研修").replace("教师", "老师")
    sentences = edited.split("。")
    del sentences[2]
    return "通过这次学习，我有很多体会。\n" + "。".join(sentences)


async def submissions(db: Any) -> dict[str, Submission]:
    async with db.sessions() as s:
        rows = await s.execute(select(Person.name, Submission).join(
            Submission, Submission.person_id == Person.id))
        return {name: sub for name, sub in rows}


async def person_id(db: Any, name: str) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(Person.id).where(Person.name == name)))


async def test_a_short_reflection_becomes_a_draft_and_is_continued(chat: SimChat, seeded) -> None:
    text = passage("003", 1100)
    lines = text.splitlines()
    first, rest = "\n".join(lines[:4]), "\n".join(lines[4:])
    counted = independent_count(first)
    assert counted < 1000

    reply = await chat.say("张明", f"@研修助手 反思 {first}")
    assert "已存为草稿" in reply and f"现在 {counted} 字" in reply
    assert "不少于 1000 字" in reply and f"还差 {1000 - counted} 字" in reply
    assert "续写" in reply and "3月31日 17:00" in reply
    stored = (await submissions(seeded))["张明"]
    assert (stored.state, stored.chars, stored.text) == ("draft", counted, first)
    assert stored.accepted_at is None and stored.flag is None

    reply = await chat.say("张明", f"续写 {rest}")
    total = independent_count(text)
    assert f"已提交：{total} 字" in reply and "不少于 1000 字" in reply
    stored = (await submissions(seeded))["张明"]
    assert (stored.state, stored.chars) == ("accepted", total)
    assert stored.text == f"{first}\n{rest}"  # appended on a new line, paragraphs kept
    assert stored.accepted_at is not None and stored.signature is not None


@pytest.mark.parametrize("prefix,skip", [("000", 8), ("001", 1), ("002", 4), ("004", 2)])
async def test_real_paragraphs_are_counted_like_an_independent_counter(
        chat: SimChat, seeded, prefix: str, skip: int) -> None:
    text = passage(prefix, 1000, skip)
    reply = await chat.say("李秀英", f"心得 {text}")
    expected = independent_count(text)
    assert f"已提交：{expected} 字" in reply
    assert (await submissions(seeded))["李秀英"].chars == expected


async def test_a_teacher_replaces_an_accepted_reflection_before_the_due_time(
        chat: SimChat, seeded, clock: FakeClock) -> None:
    await chat.say("张明", f"反思 {passage('003', 1100)}")
    clock.set(2023, 3, 31, 16, 59)
    second = passage("004", 1100, skip=2)
    reply = await chat.say("张明", f"体会 {second}")
    assert "已提交" in reply and "已替换之前的 1101 字版本" in reply
    stored = (await submissions(seeded))["张明"]
    assert stored.text == second and stored.state == "accepted"


async def test_a_short_text_does_not_replace_an_accepted_reflection(chat: SimChat, seeded) -> None:
    full = passage("003", 1100)
    await chat.say("张明", f"反思 {full}")
    reply = await chat.say("张明", "反思 今天的研修让我收获很多。")
    assert "已经通过" in reply and "没有替换" in reply and "续写" in reply
    stored = (await submissions(seeded))["张明"]
    assert stored.text == full and stored.state == "accepted"


async def test_after_the_due_time_nothing_is_recorded(chat: SimChat, seeded, clock: FakeClock) -> None:
    draft = "今天的研修让我收获很多，我重新思考了新学期第一课的设计。"
    await chat.say("张明", f"反思 {draft}")
    clock.set(2023, 3, 31, 17, 1)
    for text in (f"反思 {passage('003', 1100)}", "续写 后来我又和同组老师讨论了作业设计。"):
        reply = await chat.say("张明", text)
        assert "已于 3月31日 17:00 截止" in reply and "没有保存" in reply
    stored = (await submissions(seeded))["张明"]
    assert stored.text == draft and stored.state == "draft"
    assert "李秀英" not in await submissions(seeded)


PADDED = {
    "repeated_char": lambda good: good + "好" * 40,
    "repeated_phrase": lambda good: good + "我要认真学习。" * 8,
    "duplicate_paragraph": lambda good: good + "\n" + good,
}


@pytest.mark.parametrize("reason", sorted(PADDED))
async def test_padding_is_refused_with_the_reason(chat: SimChat, seeded, reason: str) -> None:
    good = passage("003", 600)
    reply = await chat.say("张明", f"反思 {PADDED[reason](good)}")
    wording = {"repeated_char": "同一个字连续重复", "repeated_phrase": "同一个词或一句话反复出现",
               "duplicate_paragraph": "段落或句子重复出现"}[reason]
    assert "没有保存" in reply and wording in reply
    assert await submissions(seeded) == {}


async def test_a_low_variety_text_is_refused(chat: SimChat, seeded) -> None:
    phrases = ["我很认真。", "收获很大。", "学到了很多。", "感谢老师。", "继续努力。"]
    filler = "".join(itertools.chain.from_iterable(itertools.permutations(phrases)))
    assert independent_count(filler) >= 1000
    reply = await chat.say("张明", f"反思 {filler}")
    assert "没有保存" in reply and "凑字数" in reply
    assert await submissions(seeded) == {}


async def test_pasting_the_same_part_again_keeps_the_draft(chat: SimChat, seeded) -> None:
    part = passage("003", 500)
    await chat.say("张明", f"反思 {part}")
    reply = await chat.say("张明", f"续写 {part}")
    assert "段落或句子重复出现" in reply and "续写 <正文>" in reply
    assert f"草稿（{independent_count(part)} 字）仍然保留" in reply
    stored = (await submissions(seeded))["张明"]
    assert stored.text == part and stored.state == "draft"


async def test_a_near_copy_is_accepted_but_flagged_and_genuine_texts_are_not(
        chat: SimChat, seeded) -> None:
    original = passage("003", 1300)
    copy = lightly_edited(original)
    assert independent_count(copy) >= 1000
    await chat.say("张明", f"反思 {original}")
    copied_reply = await chat.say("李秀英", f"反思 {copy}")
    genuine_reply = await chat.say("刘洋", f"反思 {passage('004', 1100, skip=2)}")
    other_school = await chat.say("孙晓梅", f"反思 {passage('000', 1100, skip=8)}", school="LX002")

    # the teacher's reply does not accuse: it reads like any accepted reflection
    for reply in (copied_reply, genuine_reply, other_school):
        assert "已提交" in reply
        assert not any(word in reply for word in ("相似", "雷同", "抄", "重复"))
    rows = await submissions(seeded)
    flagged = rows["李秀英"]
    assert flagged.state == "accepted" and flagged.flag == "near_duplicate"
    assert flagged.similar_to_person_id == await person_id(seeded, "张明")
    assert flagged.similarity is not None and flagged.similarity >= NEAR_DUPLICATE_THRESHOLD
    for name in ("张明", "刘洋", "孙晓梅"):
        assert rows[name].flag is None and rows[name].similar_to_person_id is None, name


async def test_a_near_copy_of_a_draft_is_flagged_too(chat: SimChat, seeded) -> None:
    draft = passage("003", 950)
    assert independent_count(draft) < 1000
    await chat.say("张明", f"反思 {draft}")  # only a draft so far
    copy = (draft.replace("全面提高", "全面提升").replace("着力构建", "努力构建")
            + "\n我校全体教师认真参加了这次研培活动，大家都觉得收获很大，今后还要把学到的方法用到课堂上。")
    assert "已提交" in await chat.say("李秀英", f"反思 {copy}")
    rows = await submissions(seeded)
    assert rows["张明"].state == "draft" and rows["张明"].flag is None
    assert rows["李秀英"].flag == "near_duplicate"


async def test_the_progress_shows_a_flagged_reflection_as_accepted(chat: SimChat, seeded) -> None:
    original = passage("003", 1300)
    await chat.say("张明", f"反思 {original}")
    await chat.say("李秀英", f"反思 {lightly_edited(original)}")
    progress = await chat.say("李秀英", "进度")
    assert "三月研修心得：已通过" in progress and "near" not in progress
    assert "学时：2/36" in progress  # a flagged reflection still earns its hours


async def test_progress_shows_a_draft_with_its_count(chat: SimChat, seeded) -> None:
    first = passage("003", 300)
    await chat.say("张明", f"反思 {first}")
    progress = await chat.say("张明", "进度")
    counted = independent_count(first)
    assert f"草稿 {counted}/1000 字（还差 {1000 - counted} 字）" in progress
    assert "截止 3月31日 17:00" in progress


async def test_an_empty_reflection_gets_usage_with_the_task(chat: SimChat, seeded) -> None:
    reply = await chat.say("张明", "反思")
    assert "反思 <心得正文>" in reply and "三月研修心得" in reply
    assert "不少于 1000 字" in reply and "3月31日 17:00 截止" in reply
    await chat.say("张明", "反思 今天的研修让我收获很多。")
    reply = await chat.say("张明", "续写")
    assert "续写 <接下来的正文>" in reply and "您的草稿现在 11 字" in reply
    assert len(await submissions(seeded)) == 1


async def test_continuing_without_a_draft_starts_one(chat: SimChat, seeded) -> None:
    reply = await chat.say("张明", "续写 今天的研修让我收获很多。")
    assert "已存为草稿" in reply and "之前还没有草稿" in reply
    assert (await submissions(seeded))["张明"].chars == 11


async def test_traditional_verbs_work(chat: SimChat, seeded) -> None:
    reply = await chat.say("张明", "心得體會：今天的研修讓我收穫很多。")
    assert "已存为草稿" in reply
    reply = await chat.say("张明", "續寫 我會繼續努力。")
    assert "已存为草稿" in reply
    stored = (await submissions(seeded))["张明"]
    assert stored.text == "今天的研修讓我收穫很多。\n我會繼續努力。"  # stored as typed


async def test_a_lead_may_submit_and_an_unknown_sender_may_not(chat: SimChat, app_client, seeded) -> None:
    assert "已存为草稿" in await chat.say("王丽华", "反思 今天的研修让我收获很多。")
    resp = await app_client.post("/sim/api/send", json={
        "person_id": 999, "conversation_id": "sim-group-LX001", "text": "反思 正文", "msg_id": "u1"})
    assert "花名册里还没有您" in (await resp.json())["reply"]
    assert set(await submissions(seeded)) == {"王丽华"}


async def test_a_redelivered_reflection_is_stored_and_answered_once(chat: SimChat, seeded) -> None:
    text = "反思 今天的研修让我收获很多。"
    a = await chat.send("张明", text, msg_id="same-reflection")
    b = await chat.send("张明", "续写 " + text, msg_id="same-reflection")  # a redelivery carries the same body
    assert a["duplicate"] is False and b["duplicate"] is True and a["reply"] == b["reply"]
    assert (await submissions(seeded))["张明"].chars == 11
    async with seeded.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Inbound)) == 1
        assert await s.scalar(select(func.count()).where(SimMessage.from_bot.is_(True))) == 1


# ---------------------------------------------------------------- plans without the defaults


@pytest.fixture
async def plan_chat(aiohttp_client: Any, config, clock: FakeClock, db, spec_plan_text: str):
    """A chat over a variant of the SPEC plan: pass edits as (old, new) text replacements."""

    async def make(*edits: tuple[str, str]) -> SimChat:
        text = spec_plan_text
        for old, new in edits:
            assert old in text
            text = text.replace(old, new)
        await seed(db, text, clock.now)
        return SimChat(await aiohttp_client(create_app(config, clock=clock)))

    return make


async def test_without_a_reflection_task_the_reply_says_so(plan_chat, db) -> None:
    chat = await plan_chat(('kind = "reflection"', 'kind = "photos"'),
                           ("min_chars = 1000", "min_photos = 2"))
    reply = await chat.say("张明", "反思 今天的研修让我收获很多。")
    assert "没有需要提交的研修心得" in reply
    assert await submissions(db) == {}


async def test_punctuation_counts_when_the_plan_says_so(plan_chat, db) -> None:
    chat = await plan_chat(("count_punctuation = false", "count_punctuation = true"))
    reply = await chat.say("张明", "反思 今天的研修，让我收获很多！")
    assert "现在 13 字" in reply  # 11 characters + ， + ！
    assert (await submissions(db))["张明"].chars == 13


def test_the_seed_helpers_are_sound() -> None:
    assert Path(SEEDS).is_dir()
    text = passage("003", 1100)
    assert 1100 <= independent_count(text) < 1300
    assert independent_count("2023年3.14分 don't") == 5  # 2023 年 3.14 分 don't


async def test_before_a_plan_is_loaded_nothing_is_recorded(aiohttp_client: Any, config, clock,
                                                           db) -> None:
    from kernel.roster import load_roster
    from storage.queries.roster import apply_roster
    from tests.conftest import DATA

    rows, _ = load_roster(DATA / "roster.csv")
    async with db.sessions() as s, s.begin():
        await apply_roster(s, rows)
    chat = SimChat(await aiohttp_client(create_app(config, clock=clock)))
    for text in ("反思 今天的研修让我收获很多。", "续写 还有一点", "请假 明天 外出"):
        assert "研修计划还没有导入" in await chat.say("张明", text, school=None)
    assert "研修计划还没有导入" in await chat.say("张明", "", school=None, image="iVBORw0KGgo=")
    assert await submissions(db) == {}
