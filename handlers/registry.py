"""Verb → handler, with the least role allowed to use it (SPEC §2–§3)."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.admin import handle_bind
from handlers.broadcast import handle_broadcast
from handlers.checkin import handle_checkin
from handlers.confirm import handle_cancel, handle_confirm
from handlers.context import Handler
from handlers.dashboard import handle_dashboard
from handlers.help import handle_help
from handlers.lead import handle_district_progress, handle_nudge, handle_school_progress
from handlers.leave import handle_leave
from handlers.photos import handle_photo
from handlers.progress import handle_progress
from handlers.reflection import handle_append, handle_reflection


@dataclass(frozen=True, slots=True)
class Route:
    role: str
    handler: Handler
    read_only: bool = False  # runs outside the group-commit writer (it stores nothing)
    evidence: bool = False  # records or reads the sender's own training: members only


ROUTES: dict[str, Route] = {
    "help": Route("teacher", handle_help, read_only=True),
    "checkin": Route("teacher", handle_checkin, evidence=True),
    "progress": Route("teacher", handle_progress, read_only=True, evidence=True),
    "reflection": Route("teacher", handle_reflection, evidence=True),
    "append": Route("teacher", handle_append, evidence=True),
    "photo": Route("teacher", handle_photo, evidence=True),
    "leave": Route("teacher", handle_leave, evidence=True),
    "bind": Route("school_lead", handle_bind),
    "school_progress": Route("school_lead", handle_school_progress, read_only=True),
    "nudge": Route("school_lead", handle_nudge),
    "district_progress": Route("district_admin", handle_district_progress, read_only=True),
    "broadcast": Route("district_admin", handle_broadcast),
    "dashboard": Route("school_lead", handle_dashboard, read_only=True),
    "confirm": Route("teacher", handle_confirm),
    "cancel": Route("teacher", handle_cancel),
}
