"""The term plan: the operator's TOML read and checked (reading), its specs (model), what
happens when (schedule), recurring deadlines (recurring) and the proactive messages it
implies (sends)."""

from __future__ import annotations

from kernel.plan.model import (
    TASK_KINDS,
    ActivitySpec,
    Assessment,
    Occurrence,
    Plan,
    PlanError,
    Scope,
    TaskSpec,
    ThemeSpec,
    Weekly,
)
from kernel.plan.reading import MAX_TERM_DAYS, load_plan, parse_plan, plan_from_text
from kernel.plan.schedule import (
    current_task,
    next_occurrence_after,
    open_occurrence_at,
    session_occurrences,
    sessions_without_holiday_data,
)
from kernel.plan.sends import SEND_KINDS, Send, plan_show_json, scheduled_sends

__all__ = [
    "MAX_TERM_DAYS", "SEND_KINDS", "TASK_KINDS", "ActivitySpec", "Assessment", "Occurrence", "Plan",
    "PlanError", "Scope", "Send", "TaskSpec", "ThemeSpec", "Weekly", "current_task", "load_plan",
    "next_occurrence_after", "open_occurrence_at", "parse_plan", "plan_from_text",
    "plan_show_json", "scheduled_sends", "session_occurrences", "sessions_without_holiday_data",
]
