"""Reading the day a teacher asks leave for: 下次, 今天, 明天, 3月9日, 3-9, 2023-03-09, 周四, 下周二…

Pure: the caller passes today's date (in the plan's timezone) and gets the day back.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

_WEEKDAY = {ch: i for i, ch in enumerate("一二三四五六日")} | {"天": 6} | \
    {str(n): n - 1 for n in range(1, 8)}
_PATTERNS = [
    ("next", re.compile(r"下一?次|下回|下节")),
    ("offset", re.compile(r"(今天|今日|明天|明日|后天|後天|昨天|昨日|前天)")),
    ("weekday", re.compile(r"(下个?|下個|上个?|上個|本|这|這)?(?:周|週|星期|礼拜|禮拜)([一二三四五六日天1-7])")),
    ("date", re.compile(r"(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号號]?")),
]
_OFFSETS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "後天": 2,
            "昨天": -1, "昨日": -1, "前天": -2}
_SEPARATORS = " \t\n,，:：;；、.。"


@dataclass(frozen=True, slots=True)
class LeaveRequest:
    day: date | None  # None = the next session
    reason: str
    said: str = ""  # the words naming the day, as typed
    error: str | None = None  # "bad_date" when the words name no real day


def _folded(text: str) -> tuple[str, list[int]]:
    """NFKC per character (full-width digits → ASCII) with each folded char's source index."""
    chars: list[str] = []
    source: list[int] = []
    for i, ch in enumerate(text):
        for out in unicodedata.normalize("NFKC", ch):
            chars.append(out)
            source.append(i)
    source.append(len(text))
    return "".join(chars), source


def _weekday_day(today: date, prefix: str | None, weekday: int) -> date:
    if prefix and prefix[0] in "下上":
        weeks = 1 if prefix.startswith("下") else -1
        monday = today - timedelta(days=today.weekday()) + timedelta(days=7 * weeks)
        return monday + timedelta(days=weekday)
    if prefix:  # 本周/这周: this calendar week, even if the day has passed
        return today - timedelta(days=today.weekday()) + timedelta(days=weekday)
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def _calendar_day(today: date, year: str | None, month: str, day: str) -> date | None:
    """The named day; without a year, the one nearest today (12月1日 in March is last December)."""
    years = [int(year)] if year else [today.year, today.year + 1, today.year - 1]
    found = []
    for y in years:
        try:
            found.append(date(y, int(month), int(day)))
        except ValueError:
            continue  # 2月29日 exists only in some years
    return min(found, key=lambda d: abs((d - today).days), default=None)


def parse_leave(text: str, today: date) -> LeaveRequest:
    """Split `请假` arguments into the day (None = next session) and the reason."""
    folded, source = _folded(text.strip())
    original = text.strip()
    for kind, pattern in _PATTERNS:
        match = pattern.match(folded)
        if match is None:
            continue
        said = original[:source[match.end()]]
        reason = original[source[match.end()]:].strip(_SEPARATORS)
        if kind == "next":
            return LeaveRequest(None, reason, said)
        if kind == "offset":
            return LeaveRequest(today + timedelta(days=_OFFSETS[match[1]]), reason, said)
        if kind == "weekday":
            return LeaveRequest(_weekday_day(today, match[1], _WEEKDAY[match[2]]), reason, said)
        day = _calendar_day(today, match[1], match[2], match[3])
        if day is None:
            return LeaveRequest(None, reason, said, error="bad_date")
        return LeaveRequest(day, reason, said)
    return LeaveRequest(None, original.strip(_SEPARATORS))
