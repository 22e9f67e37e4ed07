"""What each dashboard page shows, assembled from the digest figures and a few set-wise queries.

The district and school pages reuse handlers.digest's figures (the same numbers the digests
print); the weekly trend adds per-week check-in and reflection completion; the teacher page
reads one person's evidence (check-in times, reflection text, photos).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.digest import district_figures, school_digest_figures
from kernel.attendance import Profile, has_started
from kernel.figures import NO_RATE, DistrictDigest, Rate, SchoolDigest
from kernel.hours import Progress, TaskStatus, progress_of
from kernel.plan import TaskSpec
from kernel.records import SchoolInfo, TermInfo
from storage.queries.dashboard import (
    Evidence,
    PersonRow,
    PhotoEvidence,
    SubmissionEvidence,
    accepted_by_bucket,
    person_evidence,
    session_counts,
)
from storage.queries.records import person_records

MAX_WEEKS = 30  # a term is ~20 weeks; a longer plan shows its latest weeks


@dataclass(frozen=True, slots=True)
class WeekTrend:
    starts: date  # Monday
    ends: date  # Sunday
    sessions: int  # held that week
    checkins: Rate  # check-ins / members expected (not excused) at that week's sessions
    reflections_new: int  # accepted that week
    reflections: Rate  # accepted so far / members × reflection tasks


@dataclass(frozen=True, slots=True)
class DistrictView:
    digest: DistrictDigest
    trend: list[WeekTrend]


@dataclass(frozen=True, slots=True)
class SchoolView:
    digest: SchoolDigest
    trend: list[WeekTrend]


@dataclass(frozen=True, slots=True)
class TaskEvidence:
    spec: TaskSpec
    status: TaskStatus
    submission: SubmissionEvidence | None
    photos: list[PhotoEvidence]


@dataclass(frozen=True, slots=True)
class TeacherView:
    person: PersonRow
    progress: Progress
    evidence: Evidence
    tasks: list[TaskEvidence]
    tz: ZoneInfo
    now: datetime

    @property
    def upcoming_leaves(self) -> int:
        """Leaves for sessions not started yet (listed with the others, marked 待)."""
        return sum(1 for leave in self.evidence.leaves if leave.starts_at > self.now)


def week_starts(term: TermInfo, now: datetime) -> list[date]:
    """The Mondays of the term's weeks up to the one holding `now` (local dates)."""
    plan = term.plan
    first = plan.start - timedelta(days=plan.start.weekday())
    today = min(now.astimezone(plan.tz).date(), plan.end)
    if today < plan.start:
        return []
    weeks = [first + timedelta(weeks=i) for i in range((today - first).days // 7 + 1)]
    return weeks[-MAX_WEEKS:]


async def weekly_trend(session: AsyncSession, term: TermInfo, now: datetime, members: int,
                       school_id: int | None = None) -> list[WeekTrend]:
    """Per week: check-in completion at its sessions, reflections accepted by its end."""
    tz = term.plan.tz
    mondays = week_starts(term, now)
    if not mondays:
        return []
    bounds = [datetime.combine(m + timedelta(weeks=1), time(0), tz) for m in mondays]
    held = [o for o in term.occurrences if has_started(o, now)]  # the rule 进度 and the digests count by
    counts = await session_counts(session, [o.id for o in held], school_id)
    reflection_ids = [term.task_ids[t.id] for t in term.plan.tasks
                      if t.kind == "reflection" and t.id in term.task_ids]
    accepted = await accepted_by_bucket(session, reflection_ids, bounds, school_id)
    reflections_total = members * len(reflection_ids)
    by_week: dict[date, list[int]] = {}
    for o in held:
        local = o.occurrence.starts_at.astimezone(tz).date()
        by_week.setdefault(local - timedelta(days=local.weekday()), []).append(o.id)
    trend, so_far = [], 0
    for i, monday in enumerate(mondays):
        ids = by_week.get(monday, [])
        rate = sum((Rate(counts.checkins.get(oid, 0), max(members - counts.excused.get(oid, 0), 0))
                    for oid in ids), NO_RATE)
        new = accepted.get(i, 0)
        so_far += new
        trend.append(WeekTrend(monday, monday + timedelta(days=6), len(ids), rate, new,
                               Rate(so_far, reflections_total)))
    return trend


async def district_view(session: AsyncSession, term: TermInfo, now: datetime) -> DistrictView:
    digest = await district_figures(session, term, now)
    return DistrictView(digest, await weekly_trend(session, term, now, digest.members))


async def school_view(session: AsyncSession, term: TermInfo, school: SchoolInfo, now: datetime) -> SchoolView:
    digest = await school_digest_figures(session, term, school, now)
    trend = await weekly_trend(session, term, now, len(digest.members), school.id)
    return SchoolView(digest, trend)


async def teacher_view(session: AsyncSession, term: TermInfo, person: PersonRow, now: datetime) -> TeacherView:
    """One person's progress (as 进度 shows it) and the evidence behind it."""
    task_ids = list(term.task_ids.values())
    records = await person_records(session, person.id, [o.id for o in term.occurrences], task_ids)
    profile = Profile(person.school_code, person.stage, person.subject, person.township)
    progress = progress_of(term, records, now, profile)
    evidence = await person_evidence(session, person.id, term.id, task_ids)
    tasks = []
    for status in progress.tasks:
        spec = term.plan.task(status.key)
        assert spec is not None
        tid = term.task_ids.get(spec.id)
        tasks.append(TaskEvidence(spec, status, evidence.submissions.get(tid) if tid else None,
                                  [p for p in evidence.photos if p.task_id == tid]))
    return TeacherView(person, progress, evidence, tasks, term.plan.tz, now)
