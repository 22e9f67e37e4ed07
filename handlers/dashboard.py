"""后台 / dashboard: a signed, expiring link to the read-only web dashboard, only in a 1:1 chat.

A school lead gets a link to their own school, the district admin one to the district view.
In a group the bot only says to ask privately: nothing that opens data is posted there.
The app that serves the dashboard hands its link issuer to every message's context; without
one the reply says the dashboard is not on.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.verbs import verb
from kernel.links import DISTRICT, school_scope
from kernel.messages import Reply
from templates.render import DEFAULT_TZ


@verb("dashboard", "后台", "dashboard", who="school_lead", writes=False, help="help/dashboard.j2",
      order=90)
async def handle_dashboard(ctx: Context, session: AsyncSession) -> Reply:
    """后台: the sender's own dashboard link, in a private chat only."""
    assert ctx.person is not None
    if ctx.msg.is_group:
        return Reply("dashboard_dm_only")
    issuer = ctx.links
    if issuer is None:
        return Reply("dashboard_off")
    school = None
    if ctx.person.role == "district_admin":
        scope = DISTRICT
    else:
        school = ctx.directory.school(ctx.person.school_id)
        if school is None:
            return Reply("lead_no_school")
        scope = school_scope(school.id)
    url, expires_at = issuer.issue(ctx.person.id, scope, ctx.now)
    tz = ctx.term.plan.tz if ctx.term is not None else DEFAULT_TZ
    hours = issuer.lifetime.total_seconds() / 3600
    return Reply("dashboard_link", {"url": url, "expires_at": expires_at, "school": school,
                                    "hours": hours, "tz": tz, "title": "数据后台"})
