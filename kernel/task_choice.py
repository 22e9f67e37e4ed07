"""Which task a piece of evidence is for: the one it names, else the only one open.

A teacher may owe several tasks of a kind at once (a 推门听课 reflection and the monthly 心得,
a 教案 and a 课件). Evidence goes to the task its text or file name names; with no name, to
the only open task; with several open and no name it goes nowhere and the reply lists them —
never silently to the earliest-due one (which once replaced a 987-字 draft of another task).

Who hands a task in (`hands_in`): a teacher task, everyone its scope admits; a school task
(`by = "school"`), a school lead of a school in scope; a subject task (`by = "subject"`), a
school lead with a 学科 (a 教研组长) whose 学科 the scope admits; a 教研组长 or 年级组长 does
not hand in the whole school's materials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from difflib import SequenceMatcher
from pathlib import PurePosixPath

from kernel.attendance import Profile
from kernel.plan import Plan, Scope, TaskSpec

LEAD = "school_lead"
# leads whose charge is part of a school (their 学科, their 年级): not the school's materials
PART_LEADS = frozenset({"教研组长", "年级组长"})


@dataclass(frozen=True, slots=True)
class Hander:
    """Who is handing something in: their role, profile and the roster's title."""

    role: str
    profile: Profile
    title: str | None = None
MIN_NAME_MATCH = 2  # characters a file name must share with a task's name to be said to name it
_SEPARATORS = " \t\r\n:：,，、.。-—《》「」【】“”\"'"


def hands_in(plan: Plan, task: TaskSpec, who: Hander) -> bool:
    """Whether this person hands `task` in (see the module docstring)."""
    scope, profile = plan.task_scope(task), who.profile
    if task.by == "teacher":
        return profile.in_scope(scope)
    if who.role != LEAD:
        return False
    if task.by == "subject":  # the lead's 学段 and 学科 stand for their 教研组's
        return profile.subject is not None and profile.in_scope(scope)
    # a school task: the school's, and the lead's 学段 for a task of some 学段 only
    return who.title not in PART_LEADS and profile.in_scope(Scope(scope.schools, scope.stages, (), scope.townships))


def is_open(task: TaskSpec, now: datetime) -> bool:
    """Takes submissions now: after it opens (a recurring occurrence) and until its deadline."""
    return (task.opens is None or task.opens <= now) and now <= task.due


@dataclass(frozen=True, slots=True)
class Choice:
    """What the evidence goes to, and what the reply needs to say about the choice.

    `how`: "named" (by the text), "file_name", "only" (the one open task), "several" (no
    name, several current: nothing chosen, `open` lists them), "past_due" (nothing open, or
    the named task closed; `task` is the one that closed last), "not_open" (the next one opens
    later; `task` is it), "none" (this person owes no task of the kind).
    """

    how: str
    task: TaskSpec | None = None
    rest: str = ""  # the text after the name
    open: tuple[TaskSpec, ...] = field(default=())  # the current tasks (see `current`)


def names_of(plan: Plan, task: TaskSpec) -> tuple[str, ...]:
    """What a person may call a task: its title, its id, its activity's name and id."""
    names = [task.title, _head(task.title), task.series or task.id]
    activity = plan.activity(task.activity)
    if activity is not None:
        names += [activity.name, activity.id]
    return tuple(n for n in dict.fromkeys(names) if n)


def _head(title: str) -> str:
    """A title's own short name: 材料7 of 「材料7：教师能力素质提升网报（…）」 ("" if none)."""
    head = re.split(r"[：:（(]", title, maxsplit=1)[0].strip()
    return head if 2 <= len(head) < len(title) else ""


def short_name(plan: Plan, task: TaskSpec) -> str:
    """The shortest thing people would call a task (推门听课, 材料7): an id only when the task
    has no other short name."""
    names = names_of(plan, task)
    words = [n for n in names if not n.isascii()]
    return min(words or names, key=len)


def _name_length(text: str, name: str) -> int:
    """How much of `text` is `name` said at its start (0: not named): 《name》 or name followed
    by a separator or the end, so 推门听课 does not name 推门听课记录…."""
    for opening, closing in (("《", "》"), ("「", "」"), ("【", "】"), ("“", "”"), ('"', '"')):
        if text.startswith(opening + name + closing):
            return len(name) + 2
    if text.startswith(name) and (len(text) == len(name) or text[len(name)] in _SEPARATORS):
        return len(name)
    return 0


def _named_at_start(text: str, tasks: tuple[TaskSpec, ...], plan: Plan
                    ) -> tuple[tuple[TaskSpec, ...], str] | None:
    """The tasks `text` names at its start (the longest name wins), and the text after it."""
    stripped = text.lstrip(_SEPARATORS)
    best, found = 0, []
    for task in tasks:
        length = max((_name_length(stripped, n) for n in names_of(plan, task)), default=0)
        if length and length > best:
            best, found = length, [task]
        elif length and length == best:
            found.append(task)
    if not found:
        return None
    return tuple(found), stripped[best:].lstrip(_SEPARATORS)


def _by_file_name(file_name: str, tasks: tuple[TaskSpec, ...], plan: Plan) -> TaskSpec | None:
    """The task whose name shares the longest run of characters with the file's name (at
    least MIN_NAME_MATCH), when exactly one does."""
    stem = PurePosixPath(file_name).stem
    scores: list[tuple[int, TaskSpec]] = []
    for task in tasks:
        best = 0
        for name in names_of(plan, task):
            match = SequenceMatcher(None, stem, name, autojunk=False).find_longest_match()
            best = max(best, match.size)
        scores.append((best, task))
    top = max((s for s, _ in scores), default=0)
    winners = [t for s, t in scores if s == top]
    return winners[0] if top >= MIN_NAME_MATCH and len(winners) == 1 else None


def _earliest_open(tasks: tuple[TaskSpec, ...], now: datetime) -> TaskSpec | None:
    """Of a series' occurrences (or a name's tasks), the open one due first."""
    open_now = sorted((t for t in tasks if is_open(t, now)), key=lambda t: t.due)
    return open_now[0] if open_now else None


def current(tasks: tuple[TaskSpec, ...], now: datetime) -> tuple[TaskSpec, ...]:
    """The open tasks a text without a name could be for: per activity (tasks of no activity
    together, as a first-edition plan's monthly reflections are one sequence), the open one
    due first. Two activities' tasks open at once are both current."""
    first: dict[str | None, TaskSpec] = {}
    for task in sorted((t for t in tasks if is_open(t, now)), key=lambda t: (t.due, t.id)):
        first.setdefault(task.activity, task)
    return tuple(sorted(first.values(), key=lambda t: (t.due, t.id)))


def owed(plan: Plan, kinds: tuple[str, ...], who: Hander) -> tuple[TaskSpec, ...]:
    """The tasks of these kinds this person hands in, by deadline."""
    return tuple(sorted((t for t in plan.tasks if t.kind in kinds and hands_in(plan, t, who)),
                        key=lambda t: (t.due, t.id)))


def choose(plan: Plan, kinds: tuple[str, ...], who: Hander, now: datetime, *,
           text: str = "", file_name: str | None = None) -> Choice:
    """The task this evidence is for (see the module docstring and `Choice`)."""
    mine = owed(plan, kinds, who)
    if not mine:
        return Choice("none")
    open_now = current(mine, now)
    if text.strip():
        named = _named_at_start(text, mine, plan)
        if named is not None:
            tasks, rest = named
            task = _earliest_open(tasks, now)
            if task is None:
                return Choice("past_due", max(tasks, key=lambda t: t.due), rest, open_now)
            return Choice("named", task, rest, open_now)
    if file_name:
        by_name = _by_file_name(file_name, tuple(t for t in mine if is_open(t, now)), plan)
        if by_name is not None:
            return Choice("file_name", by_name, text.strip(), open_now)
    if len(open_now) == 1:
        return Choice("only", open_now[0], text.strip(), open_now)
    if open_now:
        return Choice("several", None, text.strip(), open_now)
    closed = [t for t in mine if t.due < now]
    if closed:
        return Choice("past_due", max(closed, key=lambda t: t.due), text.strip(), ())
    # nothing open yet (a recurring task's next occurrence opens later): the next one
    upcoming = min(mine, key=lambda t: t.due)
    return Choice("not_open", upcoming, text.strip(), ())
