"""From a phone-typed message to a command: mentions, full-width forms, 繁体, aliases, typos.

The verbs themselves are declared by their handlers (handlers/verbs.py): a `Verb` says its
aliases and how its text is read, and a `Vocabulary` of them parses a message.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# single characters are only a command when they are the whole message ("到")
_EXACT_ONLY = {"到", "?"}

_MENTION = re.compile(r"^(?:\s*@[^\s@]+\s*)+|(?:\s*@[^\s@]+\s*)+$")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@[^\s@]+)+\s*")
# horizontal spaces of every width (DingTalk puts U+2005 after a mention) become one space;
# line breaks stay, so a reflection keeps its paragraphs
_SPACES = re.compile(r"(?:[^\S\n]|\u200b)+")
_EOL = re.compile(r"\r\n?")
_TRAILING = re.compile(r"^[\s,.!:;~。，！：；、…]*$")


ROLE_RANK = {"teacher": 0, "school_lead": 1, "township_lead": 2, "district_admin": 3}


@dataclass(frozen=True, slots=True)
class Verb:
    """A verb as its handler declares it: how people say it, who may, how it runs, its help."""

    name: str  # "checkin"
    aliases: tuple[str, ...]  # simplified, half-width; the first is the one people see
    who: str = "teacher"  # the least role that may use it
    writes: bool = True  # False: it stores nothing, and runs outside the group-commit writer
    evidence: bool = False  # records or reads the sender's own training: members only
    takes_args: bool = False  # the text after the verb is its argument
    optional_arg: bool = False  # stands alone, or names one thing after it (学校进度 LX001)
    help: str | None = None  # the template of its line in 帮助 (templates/help/…)
    order: int = 100  # where that line stands in 帮助


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # a Verb's name, or "unknown" / "empty"
    args: str  # the rest of the message, original characters (only trimmed)
    text: str  # the whole message after mentions were stripped


@lru_cache(maxsize=1)
def _t2s():  # type: ignore[no-untyped-def]
    import opencc

    return opencc.OpenCC("tw2s")  # t2s plus Taiwan forms (接著寫 → 接着写)


def to_simplified(text: str) -> str:
    return str(_t2s().convert(text))


def strip_mentions(text: str) -> str:
    """Remove @mentions at the start and end (DingTalk leaves a leading space behind)."""
    text = _SPACES.sub(" ", _EOL.sub("\n", text.replace("＠", "@"))).strip()
    previous = None
    while previous != text:
        previous = text
        text = _MENTION.sub("", text).strip()
    return text


def normalise(text: str) -> str:
    """Half-width, simplified, lower-case: only for matching, never stored."""
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


def _edit_distance_one(a: str, b: str) -> bool:
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _prefix_length(body: str, alias: str, aligned: bool) -> int:
    """How many characters of `body` normalise to `alias` (NFKC may change lengths)."""
    if aligned:
        return len(alias)
    for k in range(1, len(body) + 1):
        head = normalise(body[:k])
        if head == alias:
            return k
        if not alias.startswith(head):
            break
    return len(alias)


SHORT_MESSAGE = 64


class Vocabulary:
    """Parses a message against a set of declared verbs."""

    def __init__(self, verbs: list[Verb]) -> None:
        self.verbs = {v.name: v for v in verbs}
        self._aliases = sorted(((a, v.name) for v in verbs for a in v.aliases), key=lambda p: -len(p[0]))
        self._takes_args = {v.name for v in verbs if v.takes_args}
        self._optional = {v.name for v in verbs if v.optional_arg}
        # short messages (签到, 进度…) repeat a lot: cached per vocabulary
        self._parse_short = lru_cache(maxsize=4096)(self._parse)

    def parse(self, text: str) -> Command:
        """The verb and its argument."""
        return self._parse_short(text) if len(text) <= SHORT_MESSAGE else self._parse(text)

    def _parse(self, text: str) -> Command:
        body = strip_mentions(text)
        if not body:
            return Command("empty", "", "")
        norm = normalise(body)
        # NFKC and t2s keep one character per character for the CJK/ASCII we match, so an
        # alias's length in `norm` is usually its length in `body`; measure it when not.
        aligned = len(norm) == len(body)
        for alias, verb in self._aliases:
            if not norm.startswith(alias):
                continue
            rest_norm = _LEADING_MENTIONS.sub("", norm[len(alias):])
            rest = _LEADING_MENTIONS.sub("", body[_prefix_length(body, alias, aligned):])
            if alias in _EXACT_ONLY and rest_norm.strip():
                continue
            if verb in self._takes_args or (verb in self._optional and not _TRAILING.match(rest_norm)):
                return Command(verb, rest.strip(" :：,，\n\t"), body)
            if _TRAILING.match(rest_norm):
                return Command(verb, "", body)
        compact = re.sub(r"[\s,.!:;~。，！：；、…]", "", norm)
        matches = {v for a, v in self._aliases
                   if len(a) >= 2 and v not in self._takes_args and _edit_distance_one(compact, a)}
        if len(matches) == 1:
            return Command(matches.pop(), "", body)
        return Command("unknown", body, body)
