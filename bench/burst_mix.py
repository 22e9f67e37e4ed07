"""The traffic of a session's first minutes, for bench/checkin_burst.py: which message each
request is, the signed DingTalk callbacks that carry them, and the checks on the answers.

Kinds (their shares are arguments):
  first      a teacher's first 签到 of the session (a new check-in is stored);
  repeat     签到 again, new msgId, from a teacher who checked in earlier (a phone retries,
             someone taps twice): answered 已签到 with the first time, nothing stored;
  redeliver  the platform delivering an earlier message again, same msgId and body (it did
             not see the answer in time): answered with the stored reply, nothing re-run;
  progress   进度;
  closed     签到 before the check-in window opens: the session reminder reaches the group
             before the window opens and some teachers tap at once. Sessions are
             district-wide, so at one instant either every school's window is open or none
             is; these requests are those taps, answered as at 20 minutes before now
             (signed then, and the server's clock shifted for that request only: see
             bench/serve_installed.py --clock-header);
  leave      请假 with a day and a reason (今天 / 明天 / M月D日 / 下次), from teachers who have
             not checked in: a leave row is stored.
A repeat or redelivery refers to a message at least GAP requests earlier (or in the warm-up),
so that its original has been answered; a redelivery repeats any earlier kind, in the mix's
shares. Every message comes from the sender's own school group (bound, reply-only).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bench.loadgen import Request
from platforms.dingtalk.wire import callback_signature

KINDS = ("first", "repeat", "redeliver", "progress", "closed", "leave")
DEFAULT_MIX = {"first": 0.30, "repeat": 0.35, "redeliver": 0.15, "progress": 0.10,
               "closed": 0.05, "leave": 0.05}
GAP = 256  # a repeat's or redelivery's original is at least this many requests earlier
CLOSED_SHIFT_SECONDS = -20 * 60  # the early taps: 20 minutes before now
SHIFT_HEADER = "X-Bench-Clock-Shift"  # read by bench/serve_installed.py --clock-header
SCHOOLS = 100
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "platforms" / "dingtalk" / "group_text.json"
_TIME = re.compile(r"(\d{2}:\d{2}:\d{2})")


@dataclass(frozen=True, slots=True)
class Message:
    kind: str
    person: int  # roster index of the sender (bt-NNNNNN)
    msg_id: str
    text: str
    shift: int = 0  # seconds the server's clock is moved for this request
    original: int | None = None  # position of the message repeated (repeat, redeliver)


def conversation(person: int) -> str:
    return f"cidBENCHschool{person % SCHOOLS:03d}=="


def leave_text(k: int, tomorrow: date) -> str:
    days = ["今天", "明天", f"{tomorrow.month}月{tomorrow.day}日", "下次"]
    reasons = ["家里有事", "孩子发烧，去医院", "外出参加区里的培训", "身体不适"]
    return f"请假 {days[k % 4]} {reasons[k // 4 % 4]}"


class MixBuilder:
    """Draws the sequence of messages: warm-up first, then the burst, positions shared, so
    that a burst's repeat may refer to a warm-up check-in."""

    def __init__(self, shares: dict[str, float], tomorrow: date, seed: int = 20261204) -> None:
        self.shares = shares
        self.tomorrow = tomorrow
        self.rng = random.Random(seed)
        self.messages: list[Message] = []
        self.next_person = 0  # fresh teachers for first check-ins and leave
        self.positions: dict[str, list[int]] = {k: [] for k in KINDS}  # where each kind is
        self.roster_size = 0  # set by the caller before drawing (progress/closed senders)
        self.gap = GAP  # bench/profile_kinds.py: its phases refer only to earlier phases
        self.redeliver_of: str | None = None  # only redeliver this kind (else any, as drawn)

    def _kinds(self, n: int) -> list[str]:
        total = sum(self.shares.values())
        counts = {k: int(round(n * self.shares.get(k, 0.0) / total)) for k in KINDS}
        counts["first"] += n - sum(counts.values())
        kinds = [k for k in KINDS for _ in range(counts[k])]
        self.rng.shuffle(kinds)
        return kinds

    def _fresh(self) -> int:
        self.next_person += 1
        return self.next_person - 1

    def draw(self, n: int, prefix: str) -> list[Message]:
        start = len(self.messages)
        for k, kind in enumerate(self._kinds(n)):
            pos = len(self.messages)
            msg_id = f"{prefix}{pos:08d}=="
            message = self._one(kind, pos, msg_id, k)
            self.messages.append(message)
            self.positions[message.kind].append(pos)
        return self.messages[start:]

    def _earlier(self, pool: Sequence[int], pos: int) -> int | None:
        """A uniformly drawn position of `pool` at least `gap` before `pos` (pool is sorted)."""
        limit = pos - self.gap
        count = next((i for i in range(len(pool) - 1, -1, -1) if pool[i] <= limit), -1) + 1
        return pool[self.rng.randrange(count)] if count else None

    def _redelivered(self, pos: int) -> int | None:
        """The position of the message a redelivery at `pos` repeats: any earlier one (its
        kind as the mix drew it), or one of `redeliver_of`."""
        if self.redeliver_of is not None:
            return self._earlier(self.positions[self.redeliver_of], pos)
        if pos - self.gap <= 0:
            return None
        original = self.rng.randrange(pos - self.gap)
        while self.messages[original].kind == "redeliver":
            original = self.messages[original].original or 0
        return original

    def _one(self, kind: str, pos: int, msg_id: str, k: int) -> Message:
        if kind == "repeat":
            first = self._earlier(self.positions["first"], pos)
            if first is not None:
                return Message("repeat", self.messages[first].person, msg_id, " 签到", 0, first)
            kind = "first"
        if kind == "redeliver":
            original = self._redelivered(pos)
            if original is not None:
                o = self.messages[original]
                return Message("redeliver", o.person, o.msg_id, o.text, o.shift, original)
            kind = "first"
        if kind == "first":
            return Message("first", self._fresh(), msg_id, " 签到")
        if kind == "leave":
            return Message("leave", self._fresh(), msg_id, leave_text(k, self.tomorrow))
        person = self.rng.randrange(self.roster_size)
        if kind == "progress":
            return Message("progress", person, msg_id, " 进度")
        return Message("closed", person, msg_id, " 签到", CLOSED_SHIFT_SECONDS)


def signed_headers(secret: str, now_ms: int, shift: int) -> tuple[tuple[str, str], ...]:
    ts = str(now_ms + shift * 1000)
    headers = (("Content-Type", "application/json"), ("timestamp", ts),
               ("sign", callback_signature(ts, secret)))
    return headers + ((SHIFT_HEADER, str(shift)),) if shift else headers


def to_requests(messages: Sequence[Message], secret: str, now_ms: int) -> list[Request]:
    """Each message as the DingTalk callback its school group's robot would receive."""
    base = json.loads(FIXTURE.read_text(encoding="utf-8"))
    headers = {shift: signed_headers(secret, now_ms, shift) for shift in {m.shift for m in messages}}
    out = []
    for m in messages:
        body = dict(base, msgId=m.msg_id, senderStaffId=f"bt-{m.person:06d}", senderNick=f"教师{m.person}",
                    conversationId=conversation(m.person), conversationTitle=f"第{m.person % SCHOOLS}学校研修群",
                    text={"content": m.text})
        out.append(Request("/dingtalk/callback", headers[m.shift],
                           json.dumps(body, ensure_ascii=False).encode()))
    return out


# ------------------------------------------------------------------- what the answers say


def answer_kind(text: str) -> str:
    """Which reply a text is (by the templates' fixed words)."""
    if "签到成功" in text:
        return "checkin_ok"
    if "已签到" in text:
        return "checkin_dup"
    if "不在签到时间内" in text:
        return "checkin_closed"
    if "请假已记录" in text or "已经请过假" in text:
        return "leave_ok"
    if "学时：" in text:
        return "progress"
    return "other"


EXPECTED = {"first": "checkin_ok", "repeat": "checkin_dup", "progress": "progress",
            "closed": "checkin_closed", "leave": "leave_ok"}


@dataclass
class Check:
    """The answers against what each message should have got."""

    wrong: Counter[str]  # kind -> answers not as expected
    unanswered: int
    acked_checkins: dict[int, str]  # person -> msgId of the check-in acknowledged to them
    acked_leaves: set[int]
    examples: list[str]


def check_answers(messages: Sequence[Message], texts: Sequence[str | None]) -> Check:
    """`texts[i]` is the reply to `messages[i]` (None: no answer). A repeat must show its
    first check-in's time, a redelivery the original's very reply."""
    wrong: Counter[str] = Counter()
    acked: dict[int, str] = {}
    leaves: set[int] = set()
    examples: list[str] = []
    unanswered = 0
    for i, (m, text) in enumerate(zip(messages, texts, strict=True)):
        if text is None:
            unanswered += 1
            continue
        got = answer_kind(text)
        if m.kind == "redeliver":
            assert m.original is not None
            ok = text == texts[m.original] or texts[m.original] is None
        elif m.kind == "repeat":
            assert m.original is not None
            first = texts[m.original] or ""
            ok = got == "checkin_dup" and _clock_of(text) == _clock_of(first.rsplit("签到时间", 1)[-1])
        else:
            ok = got == EXPECTED[m.kind]
        if not ok:
            wrong[m.kind] += 1
            if len(examples) < 5:
                examples.append(f"#{i} {m.kind} {m.text!r}: {text[:80]!r}")
        if got == "checkin_ok":
            acked.setdefault(m.person, m.msg_id)
        elif got == "leave_ok":
            leaves.add(m.person)
    return Check(wrong, unanswered, acked, leaves, examples)


def _clock_of(text: str) -> str | None:
    match = _TIME.search(text)
    return match[1] if match else None
