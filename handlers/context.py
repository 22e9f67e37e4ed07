"""What a handler knows about the message it answers, resolved once before it runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from kernel.attendance import NOBODY, Profile, profile_of
from kernel.commands import ROLE_RANK, Command
from kernel.links import LinkIssuer
from kernel.messages import IncomingMessage, Reply
from kernel.records import MEMBER_ROLES, GroupInfo, PersonInfo, SchoolInfo, TermInfo
from kernel.task_choice import Hander
from storage.directory import Directory


@dataclass(slots=True)  # not frozen: built once per message (see kernel/messages.py)
class Context:
    msg: IncomingMessage
    command: Command
    now: datetime
    person: PersonInfo | None
    group: GroupInfo | None
    school: SchoolInfo | None  # the bound group's school, else the sender's own
    term: TermInfo | None
    directory: Directory
    files_dir: Path
    max_photo_bytes: int = 10 * 1024 * 1024
    links: LinkIssuer | None = None  # the dashboard's, when this app serves it
    chat_route: str | None = None  # the send route a group of this platform gets when bound in chat
    max_file_bytes: int = 20 * 1024 * 1024
    # work to do once the transaction has committed (e.g. refresh the directory cache)
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def role(self) -> str:
        return self.person.role if self.person else "unknown"

    @property
    def profile(self) -> Profile:
        """What the sender's scopes look at: their own school, 学段, 学科 and 乡镇."""
        if self.person is None:
            return NOBODY
        return profile_of(self.person, self.directory.school(self.person.school_id))

    @property
    def hander(self) -> Hander:
        """The sender as kernel.task_choice sees who hands a task in."""
        return Hander(self.role, self.profile, self.person.title if self.person else None)

    @property
    def is_member(self) -> bool:
        """On a school's roster as a teacher or lead: their check-ins and tasks count."""
        return (self.person is not None and self.person.role in MEMBER_ROLES
                and self.person.school_id is not None)

    def has_role(self, needed: str) -> bool:
        return self.person is not None and ROLE_RANK[self.person.role] >= ROLE_RANK[needed]


# a handler's Reply, or None when there is nothing to say yet (the answer comes later)
Handler = Callable[[Context, AsyncSession], Awaitable[Reply | None]]
