"""Applying a parsed roster: idempotent upserts of schools and people."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.roster import RejectedRow, RosterRow
from storage.models import Person, School
from storage.queries.directory import directory_changed

PERSON_FIELDS = ("name", "role", "dingtalk_userid", "wecom_userid", "mobile", "subject", "stage")


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
    people = (await session.scalars(select(Person))).all()
    by_ding = {p.dingtalk_userid: p for p in people if p.dingtalk_userid}
    by_wecom = {p.wecom_userid: p for p in people if p.wecom_userid}
    for row in rows:
        school_id = None
        if row.school_code:
            school = schools.get(row.school_code)
            if school is None:
                school = School(code=row.school_code, name=row.school_name or row.school_code)
                session.add(school)
                await session.flush()
                schools[row.school_code] = school
            elif row.school_name and school.name != row.school_name:
                school.name = row.school_name
                renamed = True
            school_id = school.id
        a = by_ding.get(row.dingtalk_userid) if row.dingtalk_userid else None
        b = by_wecom.get(row.wecom_userid) if row.wecom_userid else None
        if a is not None and b is not None and a is not b:
            result.rejected.append(RejectedRow(
                row.line, "dingtalk_userid and wecom_userid belong to two different people"))
            continue
        person = a or b
        wanted = {f: getattr(row, f) for f in PERSON_FIELDS} | {"school_id": school_id}
        if person is None:
            person = Person(**wanted)
            session.add(person)
            result.added += 1
        elif any(getattr(person, k) != v for k, v in wanted.items()):
            for k, v in wanted.items():
                setattr(person, k, v)
            result.updated += 1
        else:
            result.unchanged += 1
            continue
        await session.flush()
        if person.dingtalk_userid:
            by_ding[person.dingtalk_userid] = person
        if person.wecom_userid:
            by_wecom[person.wecom_userid] = person
    if result.added or result.updated or renamed:
        await directory_changed(session)
    return result
