"""From a phone-typed message to a command: mentions, full-width forms, 繁体, aliases, typos."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# verb -> aliases (simplified, half-width); the first alias is the one shown in help
VERBS: dict[str, tuple[str, ...]] = {
    "checkin": ("签到", "打卡", "到"),
    "reflection": ("反思", "心得", "体会", "感想", "心得体会", "研修心得", "教学反思"),
    "append": ("续写", "接着写", "追加"),
    "leave": ("请假",),
    "progress": ("进度", "我的进度", "我的学时", "学时"),
    "help": ("帮助", "help", "?", "菜单"),
    "bind": ("绑定",),
    "school_progress": ("本校进度", "学校进度"),
    "nudge": ("催交", "提醒"),
    "district_progress": ("全区进度", "区进度"),
    "broadcast": ("广播", "通知"),
    "dashboard": ("后台", "dashboard"),
    "confirm": ("确认", "确定", "确认发送"),
    "cancel": ("取消", "不发了"),
}
# verbs whose text after the verb is an argument; the others must stand alone
TAKES_ARGS = {"reflection", "append", "leave", "bind", "broadcast"}
# verbs that also stand alone but may name one thing after them (学校进度 LX001)
OPTIONAL_ARGS = {"school_progress"}
# single characters are only a command when they are the whole message ("到")
_EXACT_ONLY = {"到", "?"}

_MENTION = re.compile(r"^(?:\s*@[^\s@]+\s*)+|(?:\s*@[^\s@]+\s*)+$")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@[^\s@]+)+\s*")
# horizontal spaces of every width (DingTalk puts U+2005 after a mention) become one space;
# line breaks stay, so a reflection keeps its paragraphs
_SPACES = re.compile(r"(?:[^\S\n]|\u200b)+")
_EOL = re.compile(r"\r\n?")
_TRAILING = re.compile(r"^[\s,.!:;~。，！：；、…]*$")


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # one of VERBS, or "unknown" / "empty"
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


_ALIASES = sorted(((a, v) for v, names in VERBS.items() for a in names), key=lambda p: -len(p[0]))


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


def parse_command(text: str) -> Command:
    """The verb and its argument; short messages (签到, 进度…) repeat a lot and are cached."""
    return _parse_short(text) if len(text) <= SHORT_MESSAGE else _parse(text)


SHORT_MESSAGE = 64


@lru_cache(maxsize=4096)
def _parse_short(text: str) -> Command:
    return _parse(text)


def _parse(text: str) -> Command:
    body = strip_mentions(text)
    if not body:
        return Command("empty", "", "")
    norm = normalise(body)
    # NFKC and t2s keep one character per character for the CJK/ASCII we match, so an
    # alias's length in `norm` is usually its length in `body`; measure it when not.
    aligned = len(norm) == len(body)
    for alias, verb in _ALIASES:
        if not norm.startswith(alias):
            continue
        rest_norm = _LEADING_MENTIONS.sub("", norm[len(alias):])
        rest = _LEADING_MENTIONS.sub("", body[_prefix_length(body, alias, aligned):])
        if alias in _EXACT_ONLY and rest_norm.strip():
            continue
        if verb in TAKES_ARGS or (verb in OPTIONAL_ARGS and not _TRAILING.match(rest_norm)):
            return Command(verb, rest.strip(" :：,，\n\t"), body)
        if _TRAILING.match(rest_norm):
            return Command(verb, "", body)
    compact = re.sub(r"[\s,.!:;~。，！：；、…]", "", norm)
    matches = {v for a, v in _ALIASES if len(a) >= 2 and v not in TAKES_ARGS and _edit_distance_one(compact, a)}
    if len(matches) == 1:
        return Command(matches.pop(), "", body)
    return Command("unknown", body, body)
