"""Every declared verb and job, gathered: the vocabulary that parses a message, the handler of
each verb, and the job that fills each kind of scheduled send. Importing a handler module
declares its verbs (handlers/verbs.py) and jobs (handlers/jobs.py); this module imports them
all, so a new verb or job in an existing module needs no line here."""

from __future__ import annotations

from handlers import (  # noqa: F401  (imported for their declarations)
    admin,
    announcements,
    broadcast,
    checkin,
    confirm,
    dashboard,
    deadlines,
    digest,
    files,
    help,
    lead,
    leave,
    photos,
    progress,
    reflection,
)
from handlers.jobs import DECLARED_JOBS, Job
from handlers.verbs import DECLARED, Declared
from kernel.commands import Command, Vocabulary

ROUTES: dict[str, Declared] = {d.verb.name: d for d in DECLARED}
VOCABULARY = Vocabulary([d.verb for d in DECLARED])
# each verb and its aliases, as people may type them
VERBS: dict[str, tuple[str, ...]] = {d.verb.name: d.verb.aliases for d in DECLARED if d.verb.aliases}


JOBS: dict[str, Job] = {j.kind: j for j in DECLARED_JOBS}


def parse_command(text: str) -> Command:
    return VOCABULARY.parse(text)
