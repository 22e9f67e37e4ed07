"""A fortnight of known records for 兰西县第一小学 (LX001), written straight into the tables.

By Friday 2023-03-17 16:00 five sessions were held (Thu 2, Tue 7, Thu 9, Tue 14, Thu 16):
- 王丽华 (lead): all five; reflection accepted (1100 字); no photos.
- 张明: all five, late on the 7th; reflection draft 500/1000; no photos.
- 李秀英: the 2nd, 7th, 14th; leave on the 9th (家中有事); missed the 16th; reflection
  accepted but flagged near-duplicate of 王丽华's (0.82); 2/3 photos.
- 刘洋: none; leave for the coming Tuesday 21st (外出培训); no reflection; 3/3 photos.
- LX002: 孙晓梅 checked in on the 16th; nothing else.
"""

from __future__ import annotations

from sqlalchemy import select

from storage.db import Database
from storage.models import Checkin, Leave, Person, Photo, Submission
from storage.queries.directory import active_term
from tests.conftest import TZ, local

DIGEST_AT = local(2023, 3, 17, 16, 0)


async def add_known_records(db: Database) -> dict[str, int]:
    """Insert the records above; returns person ids by name."""
    async with db.sessions() as s, s.begin():
        term = await active_term(s)
        assert term is not None
        people = {p.name: p.id for p in (await s.scalars(select(Person))).all()}
        occurrence = {i.occurrence.starts_at.astimezone(TZ).strftime("%m%d"): i.id for i in term.occurrences}
        reflection, photos = term.task_ids["reflection-march"], term.task_ids["lesson-photos"]

        def checkin(name: str, day: str, late: bool = False) -> None:
            at = local(2023, 3, int(day[2:]), 10, 5 if late else 0)
            s.add(Checkin(person_id=people[name], occurrence_id=occurrence[day], at=at, late=late,
                          platform="sim", msg_id=f"{name}-{day}"))

        for day in ("0302", "0307", "0309", "0314", "0316"):
            checkin("王丽华", day)
            checkin("张明", day, late=day == "0307")
        for day in ("0302", "0307", "0314"):
            checkin("李秀英", day)
        checkin("孙晓梅", "0316")
        s.add(Leave(person_id=people["李秀英"], occurrence_id=occurrence["0309"], reason="家中有事",
                    at=local(2023, 3, 8, 9)))
        s.add(Leave(person_id=people["刘洋"], occurrence_id=occurrence["0321"], reason="外出培训",
                    at=local(2023, 3, 15, 9)))
        written = local(2023, 3, 10, 20)
        s.add(Submission(person_id=people["王丽华"], task_id=reflection, text="…", chars=1100,
                         state="accepted", updated_at=written, accepted_at=written))
        s.add(Submission(person_id=people["张明"], task_id=reflection, text="…", chars=500,
                         state="draft", updated_at=written))
        s.add(Submission(person_id=people["李秀英"], task_id=reflection, text="…", chars=1200,
                         state="accepted", flag="near_duplicate", similar_to_person_id=people["王丽华"],
                         similarity=0.82, updated_at=written, accepted_at=written))
        for name, count in (("李秀英", 2), ("刘洋", 3)):
            for n in range(count):
                s.add(Photo(person_id=people[name], task_id=photos, sha256=f"{name}-{n}".encode().hex(),
                            mime="image/jpeg", size=1000, at=written))
    return people


