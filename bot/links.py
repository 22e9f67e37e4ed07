"""Signed, expiring dashboard links: HMAC-SHA256 over (person id, scope, expiry).

A token reads `<person id>.<scope>.<expiry, unix seconds>.<hex signature>`, the scope being
`district` or `school:<id>`. The key is `server.link_secret`, or when that is empty a random
per-install secret kept in `files_dir/.link_secret` (mode 0600), made on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

DISTRICT = "district"
SECRET_FILE = ".link_secret"
LINK_HOURS = 12
_SCOPE = re.compile(r"^(district|school:[1-9][0-9]{0,17})$")
_SIG = re.compile(r"^[0-9a-f]{64}$")
_NUMBER = re.compile(r"^[1-9][0-9]{0,17}$")


def school_scope(school_id: int) -> str:
    return f"school:{school_id}"


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """What a valid token allows: this person, this scope, until then."""

    person_id: int
    scope: str
    expires_at: datetime

    @property
    def school_id(self) -> int | None:
        """The one school a school-scoped link opens; None for the district."""
        return int(self.scope.split(":", 1)[1]) if self.scope.startswith("school:") else None

    def allows_school(self, school_id: int | None) -> bool:
        return self.scope == DISTRICT or (school_id is not None and self.school_id == school_id)


@dataclass(frozen=True, slots=True)
class LinkProblem:
    reason: str  # missing | malformed | bad_signature | expired


def _message(person_id: int, scope: str, expires: int) -> bytes:
    return f"yanxiu-dashboard|{person_id}|{scope}|{expires}".encode()


class LinkSigner:
    """Signs and checks tokens with one key."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a link key must not be empty")
        self._key = key

    def __repr__(self) -> str:
        return "LinkSigner(***)"

    def _signature(self, person_id: int, scope: str, expires: int) -> str:
        return hmac.new(self._key, _message(person_id, scope, expires), hashlib.sha256).hexdigest()

    def sign(self, person_id: int, scope: str, expires_at: datetime) -> str:
        if not _SCOPE.match(scope):
            raise ValueError(f"not a link scope: {scope!r}")
        expires = int(expires_at.timestamp())
        return f"{person_id}.{scope}.{expires}.{self._signature(person_id, scope, expires)}"

    def verify(self, token: str | None, now: datetime) -> LinkGrant | LinkProblem:
        """The grant of a well-signed, unexpired token; else why not (signature before expiry)."""
        if not token:
            return LinkProblem("missing")
        parts = token.split(".")
        if len(parts) != 4:
            return LinkProblem("malformed")
        pid, scope, expires, sig = parts
        if not (_NUMBER.match(pid) and _SCOPE.match(scope) and _NUMBER.match(expires) and _SIG.match(sig)):
            return LinkProblem("malformed")
        if not hmac.compare_digest(sig, self._signature(int(pid), scope, int(expires))):
            return LinkProblem("bad_signature")
        expires_at = datetime.fromtimestamp(int(expires), UTC)
        if now >= expires_at:
            return LinkProblem("expired")
        return LinkGrant(int(pid), scope, expires_at)


def install_secret(files_dir: Path) -> bytes:
    """The per-install key in files_dir/.link_secret: read it, or create it once (0600)."""
    path = files_dir / SECRET_FILE
    if not path.exists():
        files_dir.mkdir(parents=True, exist_ok=True)
        temp = files_dir / f".link_secret.{uuid.uuid4().hex}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temp, path)  # atomic create-if-absent: a racing process keeps its own
            except FileExistsError:
                pass
        finally:
            temp.unlink(missing_ok=True)
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it to make a new one")
    return key.encode()


class LinkIssuer:
    """Makes dashboard URLs under the public base URL; the key is loaded on first use."""

    def __init__(self, public_base_url: str, configured_secret: str, files_dir: Path,
                 hours: float = LINK_HOURS) -> None:
        self.base = public_base_url.rstrip("/")
        self._configured = configured_secret
        self._files_dir = files_dir
        self.lifetime = timedelta(hours=hours)
        self._signer: LinkSigner | None = None

    def __repr__(self) -> str:
        return f"LinkIssuer({self.base!r})"

    @property
    def signer(self) -> LinkSigner:
        if self._signer is None:
            key = self._configured.encode() if self._configured else install_secret(self._files_dir)
            self._signer = LinkSigner(key)
        return self._signer

    def issue(self, person_id: int, scope: str, now: datetime) -> tuple[str, datetime]:
        """A link to the dashboard for this person and scope, and when it expires."""
        expires_at = datetime.fromtimestamp(int((now + self.lifetime).timestamp()), UTC)
        token = self.signer.sign(person_id, scope, expires_at)
        return f"{self.base}/dashboard/?{urlencode({'t': token})}", expires_at
