"""字数 (Word/WPS convention), padding detection and near-duplicate signatures for reflections."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from itertools import groupby
from typing import TypeVar

import numpy as np
from datasketch import MinHash

K = TypeVar("K")

# Punctuation allowed inside a run: apostrophes between letters (don't), separators between digits (3.14, 1,000).
_WORD_APOSTROPHES = frozenset("'\u2019\uff07")
_NUMBER_SEPARATORS = frozenset(".,\uff0e")
_ZWJ = "\u200d"

# Identical counted units in a row (好好好好好好好好好好); punctuation only counts when the plan says so.
REPEATED_CHAR_RUN = 10
REPEATED_PUNCT_RUN = 5
REPEATED_PHRASE_MIN_REPEATS = 4
REPEATED_PHRASE_MAX_UNIT = 20
REPEATED_PHRASE_MIN_SPAN = 10  # units covered by the repetition
# A sentence or paragraph this long (normalised) must not appear twice, nor any stretch this long.
DUPLICATE_MIN_CHARS = 30
DUPLICATE_WINDOW = 50
VARIETY_WINDOW = 100  # counted units per window for the variety check
MIN_VARIETY = 0.25  # distinct / total units in a window; genuine Chinese stays above ~0.4

NUM_PERM = 128
MINHASH_SEED = 20240901
SHINGLE = 3
NEAR_DUPLICATE_THRESHOLD = 0.5

_SENTENCE_END = re.compile(r"[\n\r。！？!?；;…]+")


def _kind(ch: str) -> str:
    """Classify one character: cjk, word, mark, space, punct or other (never counted)."""
    cat = unicodedata.category(ch)
    if ch.isspace() or cat[0] == "Z":
        return "space"
    if cat in ("Lo", "Lm", "Nl") and unicodedata.east_asian_width(ch) in ("W", "F", "H"):
        return "cjk"  # ideographs (ext A–G, compatibility), kana, hangul, 々, 〇
    if cat[0] == "L" or cat in ("Nd", "Nl"):
        return "word"
    if cat[0] == "M":
        return "mark"
    if cat[0] in "PS" or cat == "No":
        return "punct"
    return "other"  # controls, format chars (ZWJ), private use, unassigned


def _units(text: str, count_punctuation: bool) -> list[tuple[str, str]]:
    """Split text into (kind, unit) pairs, each counting one 字; whitespace and marks are never units."""
    text = unicodedata.normalize("NFC", text)
    kinds = [_kind(ch) for ch in text]
    units: list[tuple[str, str]] = []
    # Where the current letter/digit run starts; the index just past the last symbol unit.
    run_start = symbol_end = -1
    i, n = 0, len(text)
    while i < n:
        ch, kind = text[i], kinds[i]
        if run_start >= 0:
            if kind in ("word", "mark"):
                i += 1
                continue
            if i + 1 < n and kinds[i + 1] == "word":
                prev, nxt = text[i - 1], text[i + 1]
                if (ch in _WORD_APOSTROPHES and prev.isalpha() and nxt.isalpha()) or (
                    ch in _NUMBER_SEPARATORS and prev.isdigit() and nxt.isdigit()
                ):
                    i += 2
                    continue
            units.append(("word", text[run_start:i]))
            run_start = -1
        if kind == "word":
            run_start = i
        elif kind == "cjk":
            units.append(("cjk", ch))
        elif kind == "punct" and count_punctuation:
            if i == symbol_end and _continues_emoji(units[-1][1], ch):
                units[-1] = ("punct", units[-1][1] + ch)
            else:
                units.append(("punct", ch))
            symbol_end = i + 1
        elif i == symbol_end and (kind == "mark" or ch == _ZWJ):
            # A variation selector, keycap or ZWJ inside an emoji.
            units[-1] = ("punct", units[-1][1] + ch)
            symbol_end = i + 1
        i += 1
    if run_start >= 0:
        units.append(("word", text[run_start:]))
    return units


def _continues_emoji(unit: str, ch: str) -> bool:
    """True when ch extends the emoji unit: after a ZWJ, a skin-tone modifier, or a flag's second letter."""
    if unit.endswith(_ZWJ) or "\U0001f3fb" <= ch <= "\U0001f3ff":
        return True
    regional = "\U0001f1e6" <= ch <= "\U0001f1ff"
    return regional and len(unit) == 1 and "\U0001f1e6" <= unit <= "\U0001f1ff"


def count_chars(text: str, count_punctuation: bool = False) -> int:
    """Count 字数 as Word/WPS do: one per CJK/kana/hangul character, one per run of letters or digits.

    Runs may hold diacritics, inner apostrophes (don't) and digit separators (3.14, 1,000).
    Whitespace never counts. Punctuation, symbols and emoji (one per emoji, ZWJ sequences
    and flags included) count one each only when ``count_punctuation`` is true.
    """
    return len(_units(text, count_punctuation))


def _longest_periodic_span(tokens: list[str], period: int) -> int:
    """Length of the longest stretch of tokens that repeats with this period."""
    best = streak = 0
    for i in range(len(tokens) - period):
        streak = streak + 1 if tokens[i] == tokens[i + period] else 0
        best = max(best, streak + period)
    return best


def _normalise(text: str) -> str:
    """Only letters and digits, NFKC-folded and lower-cased: what padding and similarity compare."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def _has_duplicate_passage(text: str) -> bool:
    """True when a paragraph or sentence, or any long stretch, appears twice."""
    for pieces in (text.splitlines(), _SENTENCE_END.split(text)):
        seen: set[str] = set()
        for piece in pieces:
            norm = _normalise(piece)
            if len(norm) >= DUPLICATE_MIN_CHARS:
                if norm in seen:
                    return True
                seen.add(norm)
    flat = _normalise(text)
    first_seen: dict[str, int] = {}
    for i in range(len(flat) - DUPLICATE_WINDOW + 1):
        window = flat[i : i + DUPLICATE_WINDOW]
        start = first_seen.setdefault(window, i)
        if i - start >= DUPLICATE_WINDOW:  # non-overlapping second copy
            return True
    return False


def padding_reason(text: str, count_punctuation: bool = False) -> str | None:
    """Why text looks padded to reach a minimum, or None for genuine text.

    Codes: "repeated_char", "repeated_phrase", "duplicate_paragraph", "low_variety". Repetition is
    judged on the counted units, so what does not count (spaces, punctuation by default) hides nothing.
    """
    units = _units(text, count_punctuation)
    tokens = [unit for _, unit in units]
    for (kind, _), run in groupby(units):
        if sum(1 for _ in run) >= (REPEATED_PUNCT_RUN if kind == "punct" else REPEATED_CHAR_RUN):
            return "repeated_char"
    for period in range(2, REPEATED_PHRASE_MAX_UNIT + 1):
        span = _longest_periodic_span(tokens, period)
        if span >= max(REPEATED_PHRASE_MIN_SPAN, REPEATED_PHRASE_MIN_REPEATS * period):
            return "repeated_phrase"
    if _has_duplicate_passage(text):
        return "duplicate_paragraph"
    words = [unit for kind, unit in units if kind != "punct"]
    for i in range(0, len(words) - VARIETY_WINDOW + 1, VARIETY_WINDOW // 2):
        if len(set(words[i : i + VARIETY_WINDOW])) < MIN_VARIETY * VARIETY_WINDOW:
            return "low_variety"
    return None


def _shingles(text: str) -> set[bytes]:
    """Character 3-grams of the normalised text (the whole text when shorter)."""
    norm = _normalise(text)
    if len(norm) <= SHINGLE:
        return {norm.encode()} if norm else set()
    return {norm[i : i + SHINGLE].encode() for i in range(len(norm) - SHINGLE + 1)}


_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, scheme="affine32").permutations
_EMPTY = np.iinfo(np.uint32).max  # every slot keeps this value when nothing was hashed


def text_signature(text: str) -> bytes:
    """MinHash (128 × uint32, little-endian, 512 bytes) of the text's character 3-grams."""
    sketch = MinHash(NUM_PERM, MINHASH_SEED, scheme="affine32", permutations=_PERMUTATIONS)
    sketch.update_batch(_shingles(text))
    return np.asarray(sketch.hashvalues, dtype="<u4").tobytes()


def _as_array(sig: bytes) -> np.ndarray:
    values = np.frombuffer(sig, dtype="<u4")
    if values.shape != (NUM_PERM,):
        raise ValueError(f"signature must be {NUM_PERM * 4} bytes, got {len(sig)}")
    return values


def similarity(sig_a: bytes, sig_b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures; 0.0 when either text had nothing to compare."""
    a, b = _as_array(sig_a), _as_array(sig_b)
    if (a == _EMPTY).all() or (b == _EMPTY).all():
        return 0.0
    return float(np.mean(a == b))


def most_similar(sig: bytes, others: Iterable[tuple[K, bytes]]) -> tuple[K, float] | None:
    """The other signature closest to sig, with its similarity; None when there are no others."""
    pairs = list(others)
    if not pairs:
        return None
    target = _as_array(sig)
    for _, other in pairs:
        if len(other) != NUM_PERM * 4:
            _as_array(other)  # raises the usual ValueError
    # one buffer for all rows: a district's task holds ~20,000 signatures
    matrix = np.frombuffer(b"".join(other for _, other in pairs), dtype="<u4").reshape(-1, NUM_PERM)
    scores = np.count_nonzero(matrix == target, axis=1) / NUM_PERM
    scores[(matrix == _EMPTY).all(axis=1)] = 0.0
    if (target == _EMPTY).all():
        scores[:] = 0.0
    best = int(np.argmax(scores))
    return pairs[best][0], float(scores[best])
