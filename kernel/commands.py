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
# a verb said inside a short phrase (我要签到, 进度查询, 【签到】, 签 到, 签到签到) counts only
# when the phrase is this short once spaces, punctuation, brackets and emoji are gone…
SHORT_PHRASE = 12
# …and what surrounds the verb is only these: wanting, asking, politeness, particles. A
# question (吗, 几点, 怎么), a negation (不, 没) or any other word leaves it unknown, so
# "今天的签到时间是几点" or a sentence about 签到 is never taken for one.
_FILLER = re.compile(
    r"(?:我要|我想|我来|我先|已经|帮我|给我|麻烦|现在|马上|立即|开始|一下|查询|查看|查下|看看|看下|"
    r"显示|打开|进入|谢谢|多谢|感谢|老师|好的|您好|你好|我|要|想|来|请|下|查|看|发|已|了|啦|吧|啊|"
    r"呀|哈|哦|噢|喔|嗯|呢|哟|咯|喽|好)*")
_NOISE = re.compile(r"[\W_]+")  # spaces, punctuation, brackets, symbols, emoji, joiners
_LEAD_NOISE = re.compile(r"^[^\w@]+")  # 【, 「, 🙏 before the verb
_ARG_TRIM = " :：,，\n\t】」』》〉)）]"
_GLUED = re.compile(r"^(?:\s*@[^\s@]+)*\s*@([^\s@]+)")  # "@研修助手签到": no space after the name


class Vocabulary:
    """Parses a message against a set of declared verbs."""

    def __init__(self, verbs: list[Verb]) -> None:
        self.verbs = {v.name: v for v in verbs}
        self._aliases = sorted(((a, v.name) for v in verbs for a in v.aliases), key=lambda p: -len(p[0]))
        self._takes_args = {v.name for v in verbs if v.takes_args}
        self._optional = {v.name for v in verbs if v.optional_arg}
        # the aliases a short phrase may carry anywhere: words of two or more characters of
        # verbs that take no text (a reflection's or a leave's text is never hunted through)
        self._phrase_aliases = [(a, v) for a, v in self._aliases
                                if len(a) >= 2 and a not in _EXACT_ONLY and v not in self._takes_args]
        self._glued_aliases = tuple(a for a, _ in self._aliases if len(a) >= 2)
        # short messages (签到, 进度…) repeat a lot: cached per vocabulary
        self._parse_short = lru_cache(maxsize=4096)(self._parse)

    def parse(self, text: str) -> Command:
        """The verb and its argument."""
        return self._parse_short(text) if len(text) <= SHORT_MESSAGE else self._parse(text)

    def _parse(self, text: str) -> Command:
        body = strip_mentions(text)
        found = self._parse_body(body) if body else None
        if found is None and "@" in text.replace("＠", "@"):
            found = self._glued_to_mention(text)
        if found is not None:
            return found
        return Command("unknown", body, body) if body else Command("empty", "", "")

    def _parse_body(self, body: str) -> Command | None:
        """The verb of a message without its mentions, or None when there is none."""
        norm = normalise(body)
        found = self._at_start(body, norm)
        if found is not None:
            return found
        lead = _LEAD_NOISE.match(body)
        if lead is not None and lead.end() < len(body):  # 【请假】明天, 🙏 进度
            inner = body[lead.end():]
            found = self._at_start(inner, normalise(inner))
            if found is not None:
                return Command(found.verb, found.args, body)
        compact = _NOISE.sub("", norm)
        if len(compact) <= SHORT_PHRASE:
            verb = self._in_short_phrase(compact)
            if verb is not None:
                return Command(verb, "", body)
        if any(alias in compact for alias, _ in self._phrase_aliases):
            return None  # the verb is there, spelt right, among other words (不签到): no typo
        matches = {v for a, v in self._aliases
                   if len(a) >= 2 and v not in self._takes_args and _edit_distance_one(compact, a)}
        if len(matches) == 1:
            return Command(matches.pop(), "", body)
        return None

    def _at_start(self, body: str, norm: str) -> Command | None:
        """The verb the message starts with, and the text after it."""
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
                return Command(verb, rest.strip(_ARG_TRIM), body)
            if _TRAILING.match(rest_norm):
                return Command(verb, "", body)
        return None

    def _in_short_phrase(self, compact: str) -> str | None:
        """The one verb a short phrase asks for: its alias once (or twice, 签到签到) and
        nothing else but filler words around it."""
        for alias, verb in self._phrase_aliases:
            at = compact.find(alias)
            if at < 0:
                continue
            rest = compact[:at] + compact[at + len(alias):]
            if rest.count(alias) == 1:  # said twice; three times is not a request
                rest = rest.replace(alias, "", 1)
            if _FILLER.fullmatch(rest):
                return verb
        return None

    def _glued_to_mention(self, text: str) -> Command | None:
        """A verb typed right after a mention, with no space: "@研修助手签到"."""
        glued = _GLUED.match(_SPACES.sub(" ", text.replace("＠", "@")))
        if glued is None:
            return None
        token, rest = glued.group(1), glued.string[glued.end():]
        norm = normalise(token)
        if len(norm) != len(token):
            return None
        for at in range(1, len(token)):
            if any(norm.startswith(alias, at) for alias in self._glued_aliases):
                candidate = strip_mentions(token[at:] + rest)
                found = self._parse_body(candidate) if candidate else None
                if found is not None:
                    return found
        return None
