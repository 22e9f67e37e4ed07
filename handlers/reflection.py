"""反思/心得 and 续写: submit, replace or extend the reflection for the current task.

A text under the minimum 字数 is kept as a draft; padding, and characters that make no
words (kernel/language.py), are refused (the previous state stays); a near-copy of
another teacher's text in the same task is accepted but flagged for the school lead,
never mentioned to the teacher.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.verbs import verb
from kernel.language import reads_as_language
from kernel.messages import Reply
from kernel.plan import Plan, TaskSpec
from kernel.task_choice import Choice, choose, is_open, short_name
from kernel.wordcount import (
    NEAR_DUPLICATE_THRESHOLD,
    count_chars,
    most_similar,
    padding_reason,
    text_signature,
)
from storage.queries.submissions import (
    NewSubmission,
    StoredSubmission,
    current_submission,
    other_signatures,
    save_submission,
)

NEAR_DUPLICATE = "near_duplicate"


@verb("reflection", "反思", "心得", "体会", "感想", "心得体会", "研修心得", "教学反思", evidence=True,
      takes_args=True, help="help/reflection.j2", order=20)
async def handle_reflection(ctx: Context, session: AsyncSession) -> Reply:
    return await submit_reflection(ctx, session, append=False)


@verb("append", "续写", "接着写", "追加", evidence=True, takes_args=True)
async def handle_append(ctx: Context, session: AsyncSession) -> Reply:
    return await submit_reflection(ctx, session, append=True)


@verb("rewrite", "重写", "重新写", evidence=True, takes_args=True)
async def handle_rewrite(ctx: Context, session: AsyncSession) -> Reply:
    """反思, but a shorter text may replace a longer draft: the sender said so."""
    return await submit_reflection(ctx, session, append=False, rewrite=True)


def call_name(plan: Plan, task: TaskSpec, owed_now: tuple[TaskSpec, ...]) -> str:
    """What to write after 反思/续写 for this task: nothing when it is the only one current,
    else its shortest name (an activity's 推门听课 rather than the task's whole title)."""
    return short_name(plan, task) if len(owed_now) > 1 else ""


async def _with_draft(ctx: Context, session: AsyncSession, choice: Choice) -> Choice:
    """续写 without a name, several tasks current: the one task the sender has a draft for."""
    assert ctx.person is not None and ctx.term is not None
    drafts = []
    for task in choice.open:
        task_id = ctx.term.task_ids.get(task.id)
        found = await current_submission(session, ctx.person.id, task_id) if task_id else None
        if found is not None and found.state == "draft":
            drafts.append(task)
    return Choice("only", drafts[0], choice.rest, choice.open) if len(drafts) == 1 else choice


async def _near_duplicate(session: AsyncSession, task_id: int, person_id: int,
                          signature: bytes) -> tuple[int, float] | None:
    """The other teacher whose text in this task is nearly the same as this one, if any."""
    best = most_similar(signature, await other_signatures(session, task_id, person_id))
    if best is None or best[1] < NEAR_DUPLICATE_THRESHOLD:
        return None
    return best


async def _not_language(full: str, text: str, append: bool) -> dict[str, bool] | None:
    """None when the text reads as language; else whether the fault lies in the earlier draft.

    Judged in a worker thread: a 20,000-字 paste takes ~0.1 s to segment, and the first
    judgement in a process may still be waiting for the dictionary.
    """
    if await asyncio.to_thread(reads_as_language, full):
        return None
    in_draft = append and full != text and await asyncio.to_thread(reads_as_language, text)
    return {"in_draft": in_draft}


def _combined(previous: StoredSubmission | None, text: str, append: bool) -> str:
    if append and previous is not None:
        return f"{previous.text.rstrip()}\n{text}"
    return text


async def submit_reflection(ctx: Context, session: AsyncSession, *, append: bool,
                            rewrite: bool = False) -> Reply:
    """Evaluate the text (or the draft plus the appended text) and store what it earns."""
    assert ctx.person is not None
    if ctx.term is None:
        return Reply("no_plan")
    plan = ctx.term.plan
    choice = choose(plan, ("reflection",), ctx.hander, ctx.now, text=ctx.command.args)
    if choice.how == "several" and append:
        choice = await _with_draft(ctx, session, choice)
    verb_word = "续写" if append else "重写" if rewrite else "反思"
    if choice.how == "none":
        return Reply("reflection_no_task")
    if choice.how == "several":
        return Reply("reflection_which", {
            "tasks": [(t, call_name(plan, t, choice.open)) for t in choice.open],
            "verb": verb_word, "tz": plan.tz, "has_text": bool(choice.rest)})
    spec = choice.task
    assert spec is not None
    task_id = ctx.term.task_ids.get(spec.id)
    if task_id is None:
        return Reply("reflection_no_task")
    name = call_name(plan, spec, choice.open)
    base = {"task": spec, "minimum": spec.min_chars or 0, "tz": plan.tz, "append": append,
            "name": name}
    text = choice.rest
    previous = await current_submission(session, ctx.person.id, task_id)
    if choice.how == "not_open":
        return Reply("reflection_not_open", base)
    if not text:
        return Reply("reflection_usage", {**base, "previous": previous,
                                          "past_due": not is_open(spec, ctx.now)})
    if choice.how == "past_due":
        return Reply("reflection_past_due", base)

    full = _combined(previous, text, append)
    chars = count_chars(full, plan.count_punctuation)
    minimum = spec.min_chars or 0
    facts = {**base, "chars": chars, "missing": max(minimum - chars, 0), "previous": previous,
             "started": append and previous is None}
    reason = padding_reason(full, plan.count_punctuation)
    if reason is not None:
        return Reply("reflection_padding", {**facts, "reason": reason})
    gibberish = await _not_language(full, text, append)
    if gibberish is not None:
        return Reply("reflection_not_language", {**facts, **gibberish})
    if chars < minimum and previous is not None and previous.state == "accepted" and not append:
        return Reply("reflection_kept_accepted", facts)
    if (chars < minimum and previous is not None and previous.chars > chars and not append
            and not rewrite):
        return Reply("reflection_kept_draft", facts)  # never silently shorter (issue 19)

    signature = text_signature(full)
    state = "accepted" if chars >= minimum else "draft"
    similar = None
    if state == "accepted":
        similar = await _near_duplicate(session, task_id, ctx.person.id, signature)
    await save_submission(session, NewSubmission(
        person_id=ctx.person.id, task_id=task_id, text=full, chars=chars, state=state,
        signature=signature, flag=NEAR_DUPLICATE if similar else None,
        similar_to_person_id=similar[0] if similar else None,
        similarity=similar[1] if similar else None), ctx.now)
    # the teacher's reply is the same whether or not the text was flagged
    return Reply("reflection_accepted" if state == "accepted" else "reflection_draft", facts)
