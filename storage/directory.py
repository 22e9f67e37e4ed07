"""The per-process cache of who is who (people, groups, schools, the active term).

Reads on the hot path (every check-in) come from here; a miss falls back to the database.
A plan loaded, a roster imported or a group (re-)bound by another process (the CLI, another
worker or instance) is noticed within `TERM_CHECK_SECONDS`: the term's stamp and the
directory's change counter are read then, and a new counter reloads everything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kernel.records import GroupInfo, PersonInfo, SchoolInfo, TermInfo
from storage.queries import directory as q

TERM_CHECK_SECONDS = 30.0
MISS_TTL_SECONDS = 10.0


class Directory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 roster_ids: frozenset[str] = frozenset()) -> None:
        """`roster_ids`: the platforms whose user ids are roster person ids (the simulator)."""
        self._sessions = sessions
        self._roster_ids = roster_ids
        self._people: dict[tuple[str, str], PersonInfo] = {}
        self._people_by_id: dict[int, PersonInfo] = {}
        self._groups: dict[tuple[str, str], GroupInfo] = {}
        self._schools: dict[int, SchoolInfo] = {}
        self._misses: dict[tuple[str, str, str], float] = {}
        self._inflight: dict[tuple[str, str, str], asyncio.Future[Any]] = {}
        self._term: TermInfo | None = None
        self._term_checked = 0.0
        self._version = 0
        self._loaded = False

    async def load(self) -> None:
        """(Re)read everything; called at start and after a roster import, plan load or bind."""
        async with self._sessions() as s:
            version = await q.directory_version(s)  # first: a change during the read reloads again
            people = await q.all_people(s)
            groups = await q.all_groups(s)
            schools = await q.all_schools(s)
            term = await q.active_term(s)
        self._people = {}
        for p in people:
            self._index_person(p)
        self._people_by_id = {p.id: p for p in people}
        self._groups = {(g.platform, g.conversation_id): g for g in groups}
        self._schools = {s.id: s for s in schools}
        self._term = term
        self._version = version
        self._term_checked = time.monotonic()
        self._misses.clear()
        self._loaded = True

    def _index_person(self, p: PersonInfo) -> None:
        for platform in self._roster_ids:
            self._people[(platform, str(p.id))] = p
        for key in p.ids:
            self._people[key] = p

    async def _ensure(self) -> None:
        if not self._loaded:
            await self.load()

    def _answerable(self, found: object, key: tuple[str, str, str]) -> bool:
        """True when the cache's answer for `key` stands: an entry, or a recent miss."""
        if found is not None:
            return True
        at = self._misses.get(key)
        return at is not None and time.monotonic() - at < MISS_TTL_SECONDS

    def _term_check_due(self) -> bool:
        return time.monotonic() - self._term_checked > TERM_CHECK_SECONDS

    async def _single_flight(self, key: tuple[str, str, str],
                             fetch: Callable[[], Awaitable[Any]]) -> Any:
        """One database look-up per missing key, however many messages wait for it."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await fetch()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            del self._inflight[key]

    async def _person_from_db(self, platform: str, sender_id: str) -> PersonInfo | None:
        async with self._sessions() as s:
            if platform in self._roster_ids:
                return await q.person_by_id(s, int(sender_id)) if sender_id.isdigit() else None
            return await q.person_by_identity(s, platform, sender_id)

    async def _group_from_db(self, platform: str, conversation_id: str) -> GroupInfo | None:
        async with self._sessions() as s:
            return await q.group_by_conversation(s, platform, conversation_id)

    def cached(self, platform: str, sender_id: str, conversation_id: str | None
               ) -> tuple[PersonInfo | None, GroupInfo | None, TermInfo | None] | None:
        """(person, group, term) for a message when the cache can answer all three without
        a query (every check-in of a burst); None when a look-up or the term check is due.
        `conversation_id` is None for a direct message (no group)."""
        if not self._loaded or self._term_check_due():
            return None
        person = self._people.get((platform, sender_id))
        if not self._answerable(person, ("p", platform, sender_id)):
            return None
        if conversation_id is None:
            return person, None, self._term
        group = self._groups.get((platform, conversation_id))
        if not self._answerable(group, ("g", platform, conversation_id)):
            return None
        return person, group, self._term

    async def person(self, platform: str, sender_id: str) -> PersonInfo | None:
        await self._ensure()
        found = self._people.get((platform, sender_id))
        if self._answerable(found, ("p", platform, sender_id)):
            return found
        found = await self._single_flight(("p", platform, sender_id),
                                          lambda: self._person_from_db(platform, sender_id))
        if found is None:
            self._misses[("p", platform, sender_id)] = time.monotonic()
        else:
            self._index_person(found)
            self._people_by_id[found.id] = found
        return found

    def person_by_id(self, person_id: int) -> PersonInfo | None:
        return self._people_by_id.get(person_id)

    async def group(self, platform: str, conversation_id: str) -> GroupInfo | None:
        await self._ensure()
        found = self._groups.get((platform, conversation_id))
        if self._answerable(found, ("g", platform, conversation_id)):
            return found
        found = await self._single_flight(("g", platform, conversation_id),
                                          lambda: self._group_from_db(platform, conversation_id))
        if found is None:
            self._misses[("g", platform, conversation_id)] = time.monotonic()
        else:
            self._groups[(platform, conversation_id)] = found
        return found

    def school(self, school_id: int | None) -> SchoolInfo | None:
        return self._schools.get(school_id) if school_id is not None else None

    def schools(self) -> list[SchoolInfo]:
        return sorted(self._schools.values(), key=lambda s: s.code)

    def find_school(self, text: str) -> SchoolInfo | None:
        """A school by exact code or name, else by a unique partial name match."""
        text = text.strip()
        for s in self._schools.values():
            if text in (s.code, s.name):
                return s
        partial = [s for s in self._schools.values() if text and text in s.name]
        return partial[0] if len(partial) == 1 else None

    def group_by_id(self, group_id: int) -> GroupInfo | None:
        return next((g for g in self._groups.values() if g.id == group_id), None)

    def groups_of_school(self, school_id: int) -> list[GroupInfo]:
        return [g for g in self._groups.values() if g.school_id == school_id]

    def everyone(self) -> list[PersonInfo]:
        return sorted(self._people_by_id.values(), key=lambda p: p.id)

    def people_of_school(self, school_id: int) -> list[PersonInfo]:
        return sorted((p for p in self._people_by_id.values() if p.school_id == school_id),
                      key=lambda p: p.id)

    async def term(self) -> TermInfo | None:
        await self._ensure()
        if self._term_check_due():
            self._term_checked = time.monotonic()
            async with self._sessions() as s:
                stamp = await q.active_term_stamp(s)
                version = await q.directory_version(s)
            if version != self._version:
                await self._single_flight(("v", "", ""), self.load)
            elif stamp != (self._term.loaded_at if self._term else None):
                async with self._sessions() as s:
                    self._term = await q.active_term(s)
        return self._term
