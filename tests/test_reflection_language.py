"""Characters that make no words are not a reflection; real Chinese, in any dress, always is.

Random 汉字 (uniform over the CJK Unified Ideographs, or over GB2312's 3,755 level-1 常用字)
are refused with the reason and nothing is stored; every paragraph of the seed programmes
(one of them in Traditional characters) and ordinary teachers' prose with dates, numbers,
English and classical quotes pass.
"""

from __future__ import annotations

import asyncio
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from bench.checkin_burst import write_roster
from kernel.language import MIN_WORD_SHARE, lowest_word_share, reads_as_language
from kernel.wordcount import count_chars
from tests.conftest import SEEDS, SimChat
from tests.serve_proc import ServeProcess, seed
from tests.test_reflection import passage, submissions

# CJK Unified Ideographs, the basic block (U+4E00–U+9FFF)
UNIFIED = [chr(c) for c in range(0x4E00, 0xA000)]
# GB2312 level 1 (rows 16–55): the 3,755 common characters, straight from the codec
COMMON = [ch for hi in range(0xB0, 0xD8) for lo in range(0xA1, 0xFF)
          if len(ch := bytes([hi, lo]).decode("gb2312", errors="ignore")) == 1]
SEED_PATHS = sorted(SEEDS.glob("*.txt"))

# What teachers write: short paragraphs, dates and numbers, English words, full-width marks.
REFLECTION = """3月8日下午，我参加了学校组织的“大单元教学设计”专题研修。主讲的李老师结合自己带的初二数学班，讲了如何把一个单元的目标拆成若干课时，每一课时又怎样设计核心问题。
以前我备课基本是一课一课地备，PPT做得很漂亮，但学生学完一个单元以后，知识点是零散的。听了讲座我才意识到，问题不在课件，而在于我没有从单元整体去思考学生要形成什么能力。
回到办公室，我和同组的两位老师一起把第五单元重新梳理了一遍。我们先确定单元的大概念，再倒推每节课要解决的问题，最后才考虑用什么活动、什么素材。整个过程花了将近3个小时，但大家都觉得很值得。
第二周我在7班试上了第一课时。课前我用问卷星做了一个5道题的小调查，发现有一半以上的学生对“函数”这个词的理解还停留在公式上。于是我把导入环节改成了生活中的例子：手机流量套餐怎么选最划算。学生讨论得很热烈，有几个平时不太发言的孩子也举手了。
当然也有不足。小组合作的时间我估计得不够，最后的练习只完成了一半，作业只好留到课后。课后我看了录像，发现自己在学生回答以后追问得太少，常常是学生说完我就急着给出答案。
上周四听了王老师的一节英语阅读课，她用了一个叫 jigsaw reading 的方法，把一篇文章分成四段，每个小组只读一段，然后再重新组合互相讲解。学生的参与度明显提高，连基础比较弱的同学也能说上几句。我觉得这个方法在语文的群文阅读里也可以借鉴。
英语组的Lucy老师还分享了她的 reading circle：学生四人一组，分别担任 summarizer、word master、connector 和 culture collector，读完一章以后轮流汇报。她说刚开始学生不习惯，两周以后就能自己组织讨论了。
我教初一语文，这学期上《论语》十二章。讲到“学而不思则罔，思而不学则殆”时，我让学生结合自己的学习说一说。有个学生说，他每天刷题很多，却很少想错在哪里，这就是“学而不思”。这句两千多年前的话，用来提醒我们老师自己也一样合适。
学校这学期给每个教室装了新的一体机，我也在学着用希沃白板5做课件。刚开始不熟练，一节课要准备2个多小时，现在熟悉了，半小时左右就能做完。技术只是工具，关键还是要想清楚这节课让学生学会什么。
作为班主任，我还想谈谈家校沟通。这学期我们班建了家长群，每周五我会发一份简短的“本周小结”，说说孩子们在学校做了什么、下周需要准备什么。开始有的家长不太回应，后来慢慢地有家长主动和我交流孩子在家的情况。沟通多了，误会就少了。
这次研修让我体会到，教学设计要站在学生的角度想问题。下一步我打算每周至少写一篇教学反思，把课堂上的得失记下来；同时多去听同组老师的课，向有经验的老师学习。我也准备把这次的单元设计整理成案例，在4月的教研活动上和大家交流。
总的来说，这一个月的研修虽然占用了一些休息时间，但收获是实实在在的。教学是一门需要不断反思的手艺，我会继续努力，争取让每一节课都比上一节好一点。"""

# An English teacher writes in English, with a few Chinese terms: not judged by the dictionary.
ENGLISH = (
    "This term I tried a new way of teaching reading in Grade 8. Instead of explaining every "
    "word first, I asked the students to read the text twice: once for the main idea and once "
    "for the details (主旨大意, 细节理解). Then they worked in groups of four (小组合作) and each "
    "group drew a mind map (思维导图) on the board. Some quiet students spoke more than usual, because the task was clear "
    "and the group gave them time to think. Next month I want to try reading circles "
    "(阅读圈) with the whole class, and I will ask my colleagues to observe one lesson and "
    "give me feedback (听课评课). It was hard work, but it was worth it."
)


def random_han(alphabet: list[str], n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def shuffled(text: str, seed: int) -> str:
    """The Han characters of a real text in random order: the right letters, no words."""
    chars = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    random.Random(seed).shuffle(chars)
    return "".join(chars)


# ---------------------------------------------------------------- what a teacher sees


async def test_a_teacher_who_pastes_random_characters_is_told_it_is_not_a_reflection_and_nothing_is_stored(
        chat: SimChat, seeded: Any) -> None:
    for alphabet, seed_no in ((UNIFIED, 1), (COMMON, 2)):
        gibberish = random_han(alphabet, 19_990, seed_no)  # the simulator takes 20,000 at most
        reply = await chat.say("张明", f"反思 {gibberish}")
        assert "没有保存" in reply and "连不成词语" in reply, reply
        assert "请检查后重新发送「反思 <正文>」" in reply and "已提交" not in reply
    assert await submissions(seeded) == {}


async def test_random_characters_do_not_replace_an_accepted_reflection(chat: SimChat, seeded: Any) -> None:
    real = passage("003", 1100)
    await chat.say("张明", f"反思 {real}")
    before = (await submissions(seeded))["张明"]
    reply = await chat.say("张明", f"反思 {random_han(COMMON, 1500, 3)}")
    assert "没有保存" in reply and "连不成词语" in reply
    assert f"您之前的心得（已通过，{before.chars} 字）仍然保留" in reply
    stored = (await submissions(seeded))["张明"]
    assert (stored.text, stored.state, stored.chars) == (real, "accepted", before.chars)


async def test_random_characters_continued_onto_a_draft_are_refused_and_the_draft_stays(
        chat: SimChat, seeded: Any) -> None:
    draft = passage("003", 500)
    await chat.say("张明", f"反思 {draft}")
    reply = await chat.say("张明", f"续写 {random_han(COMMON, 800, 4)}")
    assert "没有保存" in reply and "这段文字里有很多字连不成词语" in reply
    assert "请检查后重新发送「续写 <正文>」" in reply
    assert f"您之前的草稿（{count_chars(draft)} 字）仍然保留" in reply
    stored = (await submissions(seeded))["张明"]
    assert (stored.text, stored.state) == (draft, "draft")


async def test_a_real_opening_does_not_carry_random_characters_pasted_after_it(
        chat: SimChat, seeded: Any) -> None:
    text = passage("003", 700) + "\n" + random_han(COMMON, 500, 5)
    assert count_chars(text) >= 1000
    reply = await chat.say("张明", f"反思 {text}")
    assert "没有保存" in reply and "连不成词语" in reply
    assert await submissions(seeded) == {}


async def test_short_random_pieces_that_add_up_are_refused_and_the_reply_asks_for_a_rewrite(
        chat: SimChat, seeded: Any) -> None:
    first, second = random_han(COMMON, 15, 6), random_han(COMMON, 15, 7)
    assert "已存为草稿" in await chat.say("张明", f"续写 {first}")  # too short to judge: a draft
    reply = await chat.say("张明", f"续写 {second}")
    assert "之前保存的内容里有很多字连不成词语" in reply
    assert "请发送「反思 <完整正文>」整篇重写" in reply and "草稿（15 字）仍然保留" in reply
    assert (await submissions(seeded))["张明"].text == first


async def test_a_short_draft_of_a_few_characters_is_just_a_draft(chat: SimChat, seeded: Any) -> None:
    few = random_han(COMMON, 12, 8)
    reply = await chat.say("张明", f"反思 {few}")
    assert "已存为草稿" in reply and "现在 12 字" in reply
    assert (await submissions(seeded))["张明"].text == few


async def test_ordinary_reflection_prose_with_numbers_and_english_passes(
        chat: SimChat, seeded: Any) -> None:
    assert count_chars(REFLECTION) >= 1000
    reply = await chat.say("张明", f"反思 {REFLECTION}")
    assert f"已提交：{count_chars(REFLECTION)} 字" in reply, reply
    stored = (await submissions(seeded))["张明"]
    assert (stored.text, stored.state) == (REFLECTION, "accepted")
    for paragraph in REFLECTION.splitlines():
        assert reads_as_language(paragraph), paragraph[:30]


async def test_an_english_paragraph_is_not_refused_by_the_chinese_dictionary(
        chat: SimChat, seeded: Any) -> None:
    assert lowest_word_share(ENGLISH) is not None  # its Chinese terms are enough to be judged
    reply = await chat.say("张明", f"反思 {ENGLISH}")
    assert "已存为草稿" in reply and f"现在 {count_chars(ENGLISH)} 字" in reply, reply
    assert (await submissions(seeded))["张明"].text == ENGLISH


# ---------------------------------------------------------------- the measure itself


def test_every_paragraph_of_the_seed_programmes_passes_the_language_check() -> None:
    judged = 0
    for path in SEED_PATHS:  # 002 is in Traditional characters
        text = path.read_text(encoding="utf-8")
        assert reads_as_language(text), path.name
        for line in filter(None, map(str.strip, text.splitlines())):
            share = lowest_word_share(line)
            judged += share is not None
            assert share is None or share >= MIN_WORD_SHARE, (path.name, share, line[:40])
    assert judged > 200  # most paragraphs are long enough to be judged


def test_random_strings_fail_the_language_check_at_every_judged_length() -> None:
    real = "".join(path.read_text(encoding="utf-8") for path in SEED_PATHS[:2])
    for seed_no in range(5):
        for n in (20, 100, 1000, 5000):
            assert not reads_as_language(random_han(UNIFIED, n, seed_no)), ("unified", n, seed_no)
            assert not reads_as_language(random_han(COMMON, n, seed_no)), ("common", n, seed_no)
        for n in (100, 1000):  # the right characters in the wrong order
            assert not reads_as_language(shuffled(real, seed_no)[:n]), ("shuffled", n, seed_no)


def test_too_few_han_characters_are_not_judged() -> None:
    assert lowest_word_share(random_han(COMMON, 19, 9)) is None
    assert lowest_word_share(re.sub("[\u4e00-\u9fff]", "", ENGLISH)) is None
    assert lowest_word_share(random_han(COMMON, 20, 9)) is not None


@given(st.text(max_size=300))
def test_the_language_check_takes_any_text(text: str) -> None:
    share = lowest_word_share(text)
    assert share is None or 0.0 <= share <= 1.0
    assert reads_as_language(text) in (True, False)


# ---------------------------------------------------------------- once per process, at start


def reflection_plan(today: str, tomorrow: str, after: str) -> str:
    return f"""
[term]
name = "dictionary-load"
start = {today}
end = {after}
timezone = "Asia/Shanghai"
required_hours = 36

[[task]]
id = "reflection-week"
kind = "reflection"
title = "本周研修心得"
min_chars = 300
due = {tomorrow}T23:00:00
"""


async def test_the_server_loads_the_dictionary_once_when_it_starts_not_per_reflection(
        tmp_path: Path, db_url: str) -> None:
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    days = [(today + timedelta(days=d)).isoformat() for d in (0, 1, 2)]
    write_roster(tmp_path / "roster.csv", 2)
    await seed(db_url, tmp_path / "roster.csv", reflection_plan(*days), now)
    server = ServeProcess(tmp_path, db_url, sim=True)
    loaded = "jieba dictionary loaded"
    try:
        await server.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loaded not in server.log() and loop.time() < deadline:  # before any message
            await asyncio.sleep(0.2)
        assert loaded in server.log(), server.log()
        async with aiohttp.ClientSession(base_url=server.base) as http:
            chat = SimChat(http)
            first = await chat.say("教师0", f"反思 {REFLECTION}", school=None)
            second = await chat.say("教师1", f"反思 {random_han(COMMON, 400, 10)}", school=None)
    finally:
        server.stop()
    assert "已提交" in first and "连不成词语" in second
    assert server.log_path.read_text(encoding="utf-8").count(loaded) == 1
