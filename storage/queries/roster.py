"""Applying a parsed roster: idempotent upserts of schools, people and their identities.

A row is matched to a person by any of its (platform, user id)s; a row whose ids belong to
two different people is rejected. A person has one id per platform: a row that brings
another one for a platform replaces it; a platform the row leaves empty keeps its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.roster import IDENTITY_COLUMNS, RejectedRow, RosterRow
from storage.models import Identity, Person, School
from storage.queries.directory import directory_changed

PERSON_FIELDS = ("name", "role", "mobile", "subject", "stage", "title")


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


async def apply_roster(session: AsyncSession, rows: list[RosterRow]) -> ImportResult:
    """Insert new people, update changed ones, leave identical ones alone."""
    result = ImportResult()
    renamed = False
    schools = {s.code: s for s in (await session.scalars(select(School))).all()}
    people = {p.id: p for p in (await session.scalars(select(Person))).all()}
    identities = (await session.scalars(select(Identity))).all()
    owner = {(i.platform, i.user_id): i.person_id for i in identities}
    held = {(i.person_id, i.platform): i for i in identities}  # each person's id per platform
    for row in rows:
        school_id = None
        if row.school_code:
            school = schools.get(row.school_code)
            if school is None:
                school = School(code=row.school_code, name=row.school_name or row.school_code,
                                township=row.township)
                session.add(school)
                await session.flush()
                schools[row.school_code] = school
            elif row.school_name and school.name != row.school_name:
                school.name = row.school_name
                renamed = True
            if row.township and school.township != row.township:
                school.township = row.township
                renamed = True
            school_id = school.id
        ids = row.identities()
        matched = {owner[key] for key in ids if key in owner}
        if len(matched) > 1:
            columns = " and ".join(IDENTITY_COLUMNS[platform] for platform, _ in ids)
            result.rejected.append(RejectedRow(row.line, f"{columns} belong to two different people"))
            continue
        person = people[matched.pop()] if matched else None
        wanted = {f: getattr(row, f) for f in PERSON_FIELDS} | {"school_id": school_id}
        new_ids = [key for key in ids if key not in owner]
        if person is None:
            person = Person(**wanted)
            session.add(person)
            result.added += 1
        elif any(getattr(person, k) != v for k, v in wanted.items()) or new_ids:
            for k, v in wanted.items():
                setattr(person, k, v)
            result.updated += 1
        else:
            result.unchanged += 1
            continue
        await session.flush()
        people[person.id] = person
        for platform, user_id in new_ids:
            replaced = held.pop((person.id, platform), None)
            if replaced is not None:
                owner.pop((platform, replaced.user_id), None)
                await session.delete(replaced)
                await session.flush()
            identity = Identity(platform=platform, user_id=user_id, person_id=person.id)
            session.add(identity)
            owner[(platform, user_id)] = person.id
            held[(person.id, platform)] = identity
        await session.flush()
    if result.added or result.updated or renamed:
        await directory_changed(session)
    return result
