"""What a dashboard link grants: a person, a scope (the district, or one school) and an
expiry. The app signs and checks the tokens (bot/web/links.py); handlers only ask for a link."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

DISTRICT = "district"
SCOPE = re.compile(r"^(district|school:[1-9][0-9]{0,17})$")


def school_scope(school_id: int) -> str:
    return f"school:{school_id}"


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """What a valid token allows: this person, this scope, until then."""

    person_id: int
    scope: str
    expires_at: datetime

    @property
    def school_id(self) -> int | None:
        """The one school a school-scoped link opens; None for the district."""
        return int(self.scope.split(":", 1)[1]) if self.scope.startswith("school:") else None

    def allows_school(self, school_id: int | None) -> bool:
        return self.scope == DISTRICT or (school_id is not None and self.school_id == school_id)


@dataclass(frozen=True, slots=True)
class LinkProblem:
    reason: str  # missing | malformed | bad_signature | expired


class LinkIssuer(Protocol):
    """Makes a signed, expiring dashboard URL (the 后台 verb asks for one)."""

    lifetime: timedelta

    def issue(self, person_id: int, scope: str, now: datetime) -> tuple[str, datetime]: ...
