"""A teacher's reflection is counted like Word/WPS, padding is refused, copies are spotted."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.wordcount import (
    NEAR_DUPLICATE_THRESHOLD,
    count_chars,
    most_similar,
    padding_reason,
    similarity,
    text_signature,
)

SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"


def seed_text(prefix: str) -> str:
    return next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")


def paragraph_chunks(text: str, at_least: int = 300) -> list[str]:
    """Consecutive non-empty lines glued until a chunk has at least `at_least` characters."""
    chunks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip():
            current.append(line)
            if sum(map(len, current)) >= at_least:
                chunks.append("\n".join(current))
                current = []
    return chunks


SEED_CHUNKS = [
    chunk
    for path in sorted(SEEDS.glob("*.txt"))
    for chunk in paragraph_chunks(path.read_text("utf-8"))
]

# An independent counter for the seeds' alphabet: CJK ideographs one each, ASCII words by regex.
_HAN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_ALNUM = "[A-Za-z0-9]"
_WORD = rf"{_ALNUM}+(?:(?:(?<=[0-9])[.,](?=[0-9])|(?<=[A-Za-z])'(?=[A-Za-z])){_ALNUM}+)*"
_COUNTED = re.compile(rf"{_HAN}|{_WORD}")


def regex_count(text: str, count_punctuation: bool = False) -> int:
    found = _COUNTED.findall(text)
    if not count_punctuation:
        return len(found)
    rest = _COUNTED.sub("", text)
    return len(found) + sum(1 for ch in rest if not ch.isspace())


def test_seed_chunks_are_all_used() -> None:
    assert len(SEED_CHUNKS) > 50
    assert all(300 <= len(chunk) <= 1200 for chunk in SEED_CHUNKS)


@pytest.mark.parametrize("count_punctuation", [False, True])
def test_real_paragraphs_count_like_an_independent_counter(count_punctuation: bool) -> None:
    for chunk in SEED_CHUNKS:
        expected = regex_count(chunk, count_punctuation)
        assert count_chars(chunk, count_punctuation) == expected, chunk[:40]


def test_a_hand_counted_seed_sentence() -> None:
    sentence = "同时要做到四个覆盖:覆盖所有学段、所有学科、所有学校、所有教师。"
    assert sentence in seed_text("003")
    # 同时要做到四个覆盖 (9) + 覆盖所有学段 (6) + 所有学科/学校/教师 (3 × 4) = 27; marks : 、 、 、 。 = 5
    assert count_chars(sentence) == 27
    assert count_chars(sentence, count_punctuation=True) == 27 + 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 我 用 PPT 讲 了 3.5 个 课 时 | iPad 教 学 → 9 + 3 = 12
        ("我用PPT讲了3.5个课时 iPad教学", 12),
        # 老 师 们 说 (4) don't (1) worry (1) 2024 (1) 年 共 上 了 (4) 1,200 (1) 节 课 (2) → 14
        ("老师们说“don't worry”，2024年共上了1,200节课！", 14),
        # 第 3 章 (3) 3 (1) 章 (1): "3." ends a number, it is not a decimal
        ("第3章3.章", 5),
        # ＰＰＴ (1) 课 件 (2) ３ (1) 个 (1) → full-width letters and digits run like ASCII
        ("ＰＰＴ课件３个", 5),
        ("café naïve résumé", 3),
        ("cafe\u0301", 1),  # decomposed é stays inside the word
        ("rock’n’roll", 1),
        # ext A 㐀, ext B 𠀀, ext G 𰀀, compatibility 豈 → 4; kana 4; hangul 3; half-width kana 2
        ("\u3400\U00020000\U00030000\uf900", 4),
        ("ひらがな", 4),
        ("한국어", 3),
        ("ｱｲ", 2),
        ("々〇", 2),
        ("", 0),
        (" \n\t\u3000\u00a0\u200b\r\n", 0),
        ("教 学\n反\u3000思", 4),
    ],
)
def test_mixed_text_counts_like_word(text: str, expected: int) -> None:
    assert count_chars(text) == expected


def test_punctuation_counts_only_when_the_plan_says_so() -> None:
    text = "你好，世界！Hello, world. 《教育》……"
    # 你 好 世 界 Hello world 教 育 → 8; ， ！ , . 《 》 … … → 8 more
    assert count_chars(text) == 8
    assert count_chars(text, count_punctuation=True) == 16


def test_emoji_count_like_punctuation_one_per_emoji() -> None:
    assert count_chars("今天很开心😀👍🏻") == 5
    assert count_chars("今天很开心😀👍🏻", count_punctuation=True) == 7
    family, flags, heart_on_fire = "👨\u200d👩\u200d👧", "🇨🇳🇺🇸", "❤️\u200d🔥"
    assert count_chars(family + flags + heart_on_fire) == 0
    assert count_chars(family, True) == 1
    assert count_chars(flags, True) == 2
    assert count_chars(heart_on_fire, True) == 1
    assert count_chars("🏻 \u200d😀", True) == 2  # stray modifier and ZWJ do not crash or merge


# --- padding ----------------------------------------------------------------------------------

GENUINE = SEED_CHUNKS[3]


@pytest.mark.parametrize("count_punctuation", [False, True])
def test_genuine_seed_paragraphs_are_not_padding(count_punctuation: bool) -> None:
    flagged = [(padding_reason(c, count_punctuation), c[:40]) for c in SEED_CHUNKS]
    assert [f for f in flagged if f[0] is not None] == []


def test_a_short_genuine_reflection_with_natural_repeats_is_fine() -> None:
    text = (
        "这次研培让我明白，教师的成长离不开研修。研修不是任务，研修是习惯。"
        "回到课堂，我先改了提问方式：多问为什么，少问是不是。学生说得多了，我说得少了。"
        "下学期我还要继续学，继续试，继续改。加油加油！"
    )
    assert padding_reason(text) is None
    assert padding_reason(text, count_punctuation=True) is None


@pytest.mark.parametrize(
    ("tail", "count_punctuation"),
    [
        ("好" * 10, False),
        ("哈" * 30, True),
        (" ".join("好" * 10), False),  # spaces between do not hide the run
        ("。" * 5, True),  # punctuation runs matter only when punctuation counts
        ("a " * 10, False),
    ],
)
def test_a_long_run_of_one_character_is_padding(tail: str, count_punctuation: bool) -> None:
    assert padding_reason(GENUINE + tail, count_punctuation) == "repeated_char"


def test_runs_that_add_nothing_to_the_count_are_not_padding() -> None:
    assert padding_reason(GENUINE + "。。。。。。\n----------\n") is None
    assert padding_reason(GENUINE + "好好好好好好好好好", count_punctuation=False) is None  # 9 < 10


@pytest.mark.parametrize(
    "tail",
    [
        "我很认真" * 5,
        "我很认真。" * 4,
        "我很认真 我很认真\n我很认真，我很认真",
        "收获很大加油" * 4,
        "ok好" * 5,
    ],
)
def test_a_phrase_repeated_over_and_over_is_padding(tail: str) -> None:
    assert padding_reason(GENUINE + tail) == "repeated_phrase"


def test_a_paragraph_pasted_twice_is_padding() -> None:
    assert padding_reason(GENUINE + "\n" + GENUINE) == "duplicate_paragraph"
    assert padding_reason(GENUINE + GENUINE) == "duplicate_paragraph"  # no line break
    retyped = GENUINE.replace(",", "，")
    assert padding_reason(GENUINE + "\n\n" + retyped, True) == "duplicate_paragraph"


def test_a_long_sentence_pasted_twice_is_padding() -> None:
    sentence = "通过这次培训我深刻认识到教师专业成长必须扎根课堂并在反思中不断改进。"
    text = SEED_CHUNKS[0] + sentence + SEED_CHUNKS[10] + sentence
    assert padding_reason(text) == "duplicate_paragraph"


def test_a_few_phrases_shuffled_again_and_again_have_low_variety() -> None:
    phrases = ["我很认真。", "收获很大。", "学到了很多。", "感谢老师。"]
    text = "".join(itertools.chain.from_iterable(itertools.permutations(phrases)))
    assert padding_reason(text) == "low_variety"
    assert padding_reason(GENUINE + text) == "low_variety"


# --- near duplicates --------------------------------------------------------------------------

ORIGINAL = "\n".join(seed_text("003").splitlines()[:6])  # ~660 characters of genuine prose
INSERTED = "我校全体教师认真参加了这次研培活动，大家都觉得收获很大。"
LIGHTLY_EDITED = (
    ORIGINAL.replace("全面提高", "全面提升")
    .replace("着力构建", "努力构建")
    .replace("激发研培动力", "激发研修的动力")
    .replace(",", "，")
    .replace("。", "！", 2)
    .replace("二、基本原则", "二、基本原则\n" + INSERTED)
)


def test_a_lightly_edited_copy_is_a_near_duplicate() -> None:
    assert 550 <= len(ORIGINAL) <= 700
    score = similarity(text_signature(ORIGINAL), text_signature(LIGHTLY_EDITED))
    assert score >= 0.85 > NEAR_DUPLICATE_THRESHOLD  # measured 0.93


def test_genuine_paragraphs_from_different_seeds_are_not_near_duplicates() -> None:
    firsts = [
        paragraph_chunks(path.read_text("utf-8"), 500)[1] for path in sorted(SEEDS.glob("*.txt"))
    ]
    signatures = [text_signature(text) for text in firsts]
    scores = [similarity(a, b) for a, b in itertools.combinations(signatures, 2)]
    assert max(scores) < 0.2 < NEAR_DUPLICATE_THRESHOLD  # measured ≤ 0.09 over all seed chunk pairs


def test_signatures_are_compact_stable_and_ignore_layout() -> None:
    sig = text_signature("你好，世界！今天学习了。")
    assert len(sig) == 512
    assert sig == text_signature("你好 世界\n今天学习了")
    assert similarity(sig, sig) == 1.0
    assert similarity(text_signature(""), text_signature("，。")) == 0.0
    assert similarity(text_signature("好"), text_signature("好")) == 1.0
    with pytest.raises(ValueError):
        similarity(sig, b"short")


def test_most_similar_finds_the_copied_reflection() -> None:
    others = ((f"teacher{i}", text_signature(chunk)) for i, chunk in enumerate(SEED_CHUNKS[:20]))
    copied = itertools.chain(others, [("copier", text_signature(LIGHTLY_EDITED))])
    found = most_similar(text_signature(ORIGINAL), copied)
    assert found is not None
    assert found[0] == "copier" and found[1] >= NEAR_DUPLICATE_THRESHOLD
    assert most_similar(text_signature(ORIGINAL), []) is None
    assert most_similar(text_signature(""), [(1, text_signature(""))]) == (1, 0.0)


# --- properties -------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), max_size=60)
mixed = st.text(st.sampled_from("教师研培我的 \n,.，。'’3２aＢé😀🏻\u200d🇨\u0301！"), max_size=40)


@given(st.one_of(texts, mixed), st.one_of(texts, mixed), st.booleans())
def test_counting_is_additive_across_a_space(a: str, b: str, count_punctuation: bool) -> None:
    count_a, count_b = count_chars(a, count_punctuation), count_chars(b, count_punctuation)
    assert count_a >= 0 and count_b >= 0
    assert count_chars(a + " " + b, count_punctuation) == count_a + count_b
    assert count_chars(a + b, count_punctuation) <= count_a + count_b  # joining can only merge runs
    assert count_chars(a, True) >= count_chars(a, False)


@given(st.one_of(texts, mixed))
def test_padding_and_signatures_accept_any_text(text: str) -> None:
    reasons = {"repeated_char", "repeated_phrase", "duplicate_paragraph", "low_variety"}
    assert padding_reason(text) in reasons | {None}
    assert 0.0 <= similarity(text_signature(text), text_signature(text + "反思")) <= 1.0
