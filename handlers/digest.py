"""School and district digests: read the term's records set-wise, assemble, render (templates/digest/).

`build_school_digest` / `build_district_digest` answer one digest; `build_school_digests`
answers every school's at once from the same handful of queries (what a scheduled run wants).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.jobs import Draft, JobContext, job
from kernel.attendance import Units
from kernel.figures import DistrictDigest, SchoolDigest, district_digest, school_digests
from kernel.records import SchoolInfo, SchoolRow, TermInfo
from storage.db import Database
from storage.queries.digest import digest_recipients, digest_records, school_by_code
from storage.queries.directory import active_term
from storage.queries.outbox import enqueue
from templates.render import render_text


async def school_digest_figures(session: AsyncSession, term: TermInfo, school: SchoolInfo,
                                now: datetime) -> SchoolDigest:
    """One school's figures (queries narrowed to that school)."""
    rec = await digest_records(session, term_id=term.id, task_ids=list(term.task_ids.values()),
                               labels=Units(term.plan, term.occurrences, now).labels(), school_id=school.id)
    rec.schools = [SchoolRow(school.id, school.code, school.name, school.township)]  # the school asked about
    return school_digests(term, rec, now)[0]


async def all_school_figures(session: AsyncSession, term: TermInfo, now: datetime) -> list[SchoolDigest]:
    """Every school's figures, from one pass over the district's records."""
    rec = await digest_records(session, term_id=term.id, task_ids=list(term.task_ids.values()),
                               labels=Units(term.plan, term.occurrences, now).labels())
    return school_digests(term, rec, now)


async def district_figures(session: AsyncSession, term: TermInfo, now: datetime) -> DistrictDigest:
    return district_digest(term, await all_school_figures(session, term, now), now)


def render_school_digest(digest: SchoolDigest, *, markdown: bool = False) -> str:
    return render_text("digest/school.j2", d=digest, markdown=markdown)


def render_district_digest(digest: DistrictDigest, *, markdown: bool = False) -> str:
    return render_text("digest/district.j2", d=digest, markdown=markdown)


async def build_school_digest(session: AsyncSession, term: TermInfo, school: SchoolInfo, now: datetime,
                              *, markdown: bool = False) -> str:
    """The school digest as text (one merged message)."""
    return render_school_digest(await school_digest_figures(session, term, school, now), markdown=markdown)


async def build_district_digest(session: AsyncSession, term: TermInfo, now: datetime,
                                *, markdown: bool = False) -> str:
    """The district digest as text: schools ranked, the ones falling behind first, with a total line."""
    return render_district_digest(await district_figures(session, term, now), markdown=markdown)


async def build_school_digests(session: AsyncSession, term: TermInfo, now: datetime,
                               *, markdown: bool = False) -> dict[str, str]:
    """Every school's digest, keyed by school code, from one pass over the district's records."""
    return {d.code: render_school_digest(d, markdown=markdown)
            for d in await all_school_figures(session, term, now)}


async def build_all_digests(session: AsyncSession, term: TermInfo, now: datetime,
                            *, markdown: bool = False) -> tuple[dict[str, str], str]:
    """Every school digest (by code) and the district digest, from one pass over the records."""
    schools = await all_school_figures(session, term, now)
    texts = {d.code: render_school_digest(d, markdown=markdown) for d in schools}
    return texts, render_district_digest(district_digest(term, schools, now), markdown=markdown)


@dataclass(frozen=True, slots=True)
class OnDemand:
    """A digest asked for from the command line: its text and how many groups it was queued for."""

    text: str = ""
    queued: int = 0
    problem: str | None = None  # no_plan | unknown_school | no_groups


def manual_ref(now: datetime) -> str:
    return f"manual:{now.astimezone(UTC):%Y%m%dT%H%M%S}"


async def digest_on_demand(db: Database, *, school_code: str | None, now: datetime,
                           send: bool = False) -> OnDemand:
    """`yanxiu digest`: the school (or district, when no code) digest now; with `send`, queue it."""
    async with db.sessions() as session:
        term = await active_term(session)
        if term is None:
            return OnDemand(problem="no_plan")
        school = await school_by_code(session, school_code) if school_code is not None else None
        if school_code is not None and school is None:
            return OnDemand(problem="unknown_school")
        if school is not None:
            text = await build_school_digest(session, term, SchoolInfo(school.id, school.code, school.name, school.township), now)
        else:
            text = await build_district_digest(session, term, now)
        groups = [gid for gid, route in await digest_recipients(session, school.id if school else None)
                  if route]
    if not send:
        return OnDemand(text)
    if not groups:
        return OnDemand(text, problem="no_groups")
    kind = "school_digest" if school is not None else "district_digest"

    async def queue(session: AsyncSession) -> int:
        created = 0
        for gid in groups:
            created += await enqueue(session, kind=kind, ref=manual_ref(now), group_id=gid, text=text,
                                     now=now, title=render_text("sched/title.j2", kind=kind))
        return created

    return OnDemand(text, await db.write(queue))


# ---------------------------------------------------------------- the scheduled digests


@job("school_digest")
async def send_school_digests(ctx: JobContext) -> list[Draft]:
    """Each school group's digest (all schools from one pass over the records)."""
    texts = await build_school_digests(ctx.session, ctx.term, ctx.now)
    title = render_text("sched/title.j2", kind="school_digest")
    drafts = []
    for group in ctx.groups:
        school = ctx.directory.school(group.school_id)
        if school is not None and school.code in texts:
            drafts.append(Draft(group.id, texts[school.code], title=title))
    return drafts


@job("district_digest", district=True)
async def send_district_digest(ctx: JobContext) -> list[Draft]:
    """The district digest to the district's groups."""
    text = await build_district_digest(ctx.session, ctx.term, ctx.now)
    title = render_text("sched/title.j2", kind="district_digest")
    return [Draft(g.id, text, title=title) for g in ctx.groups]
