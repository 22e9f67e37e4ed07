"""Is a reflection written in Chinese at all? Random 汉字 are refused, whatever their 字数.

The measure: the share of Han characters that fall inside multi-character words of jieba's
dictionary (segmented with HMM=False, so only dictionary words count). Real prose scores
about 0.6–0.95 per stretch (classical quotes ~0.5); random characters, even common ones,
about 0.01, and even the characters of a real paragraph shuffled ~0.15. Text is judged in
stretches of WINDOW Han characters, so a real opening cannot carry pasted noise after it.
Only Han characters are judged: Latin words, digits and punctuation neither help nor hurt,
so an English paragraph is never refused by a Chinese dictionary.

jieba's dictionary takes ~0.7 s and ~85 MB to load: `load_dictionary` does it once per
process; the app calls it at start in a thread (bot/app.py), off the event loop.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from itertools import accumulate
from pathlib import Path
from typing import Any

from kernel.commands import to_simplified

log = logging.getLogger(__name__)

MIN_JUDGED = 20  # Han characters: a shorter text is too short to tell, and is not judged
WINDOW = 100  # Han characters per judged stretch; stretches overlap by half
MIN_WORD_SHARE = 0.4  # below this in any stretch, the text is not language

# Han ideographs: ext A, the unified block, compatibility ideographs, ext B and beyond.
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
_load_lock = threading.Lock()
_loaded: list[Any] = []  # jieba's tokenizer, once loaded


def _tokenizer() -> Any:
    """jieba's default tokenizer with its dictionary loaded: once per process, whichever
    thread asks first (the others wait for it)."""
    if not _loaded:
        with _load_lock:
            if not _loaded:
                import jieba

                logging.getLogger("jieba").setLevel(logging.WARNING)  # its stderr chatter
                jieba.dt.tmp_dir = str(_cache_dir())
                started = time.perf_counter()
                jieba.dt.check_initialized()
                log.info("jieba dictionary loaded in %.2f s", time.perf_counter() - started)
                _loaded.append(jieba.dt)
    return _loaded[0]


def _cache_dir() -> Path:
    """Where jieba keeps its parsed dictionary (~9 MB, rebuilt when missing): the user's
    cache folder, like pip's — not the temp folder, which a demo run must leave as it was."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "yanxiu"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.gettempdir())
    return folder


def load_dictionary() -> None:
    """Load the segmenter's dictionary now (blocking: call it in a thread)."""
    _tokenizer()


def in_words(text: str) -> list[bool]:
    """One flag per Han character of the text: does it sit inside a dictionary word?

    Traditional characters are read as simplified (the dictionary is simplified).
    """
    tokenizer = _tokenizer()
    freq = tokenizer.FREQ
    flags: list[bool] = []
    for token in tokenizer.lcut(to_simplified(text), HMM=False):
        han = len(_HAN.findall(token))
        if han:
            flags.extend([len(token) >= 2 and freq.get(token, 0) > 0] * han)
    return flags


def lowest_word_share(text: str) -> float | None:
    """The lowest share of Han characters in words over the text's stretches.

    None when the text has fewer than MIN_JUDGED Han characters: too short to judge.
    """
    flags = in_words(text)
    n = len(flags)
    if n < MIN_JUDGED:
        return None
    if n <= WINDOW:
        return sum(flags) / n
    sums = [0, *accumulate(flags)]
    starts = [*range(0, n - WINDOW, WINDOW // 2), n - WINDOW]
    return min(sums[i + WINDOW] - sums[i] for i in starts) / WINDOW


def reads_as_language(text: str) -> bool:
    """False when some stretch of the text is mostly characters that make no words."""
    share = lowest_word_share(text)
    return share is None or share >= MIN_WORD_SHARE
