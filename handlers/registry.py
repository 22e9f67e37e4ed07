"""Every declared verb, gathered: the vocabulary that parses a message and the handler of each
verb. Importing a handler module declares its verbs (handlers/verbs.py); this module imports
them all, so a new verb in an existing module needs no line here."""

from __future__ import annotations

from handlers import (  # noqa: F401  (imported for their declarations)
    admin,
    broadcast,
    checkin,
    confirm,
    dashboard,
    help,
    lead,
    leave,
    photos,
    progress,
    reflection,
)
from handlers.verbs import DECLARED, Declared
from kernel.commands import Command, Vocabulary

ROUTES: dict[str, Declared] = {d.verb.name: d for d in DECLARED}
VOCABULARY = Vocabulary([d.verb for d in DECLARED])
# each verb and its aliases, as people may type them
VERBS: dict[str, tuple[str, ...]] = {d.verb.name: d.verb.aliases for d in DECLARED if d.verb.aliases}


def parse_command(text: str) -> Command:
    return VOCABULARY.parse(text)
