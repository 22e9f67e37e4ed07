"""Signed, expiring dashboard links (itsdangerous): the token carries (person id, scope,
expiry, unix seconds), signed with HMAC-SHA256 under a salt of its own.

The key is `server.link_secret`, or when that is empty a random per-install secret kept in
`files_dir/.link_secret` (mode 0600), made on first use. Expiry is checked against the
app's clock (kernel/links.py has what a grant allows).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from itsdangerous import BadData, BadSignature, URLSafeSerializer

from kernel.links import SCOPE, LinkGrant, LinkProblem

SECRET_FILE = ".link_secret"
LINK_HOURS = 12
SALT = "yanxiu-dashboard-link"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{20,100}$")  # payload.signature


class LinkSigner:
    """Signs and checks tokens with one key."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a link key must not be empty")
        self._serializer = URLSafeSerializer(key, salt=SALT,
                                             signer_kwargs={"digest_method": hashlib.sha256})

    def __repr__(self) -> str:
        return "LinkSigner(***)"

    def sign(self, person_id: int, scope: str, expires_at: datetime) -> str:
        if not SCOPE.match(scope):
            raise ValueError(f"not a link scope: {scope!r}")
        return str(self._serializer.dumps([person_id, scope, int(expires_at.timestamp())]))

    def verify(self, token: str | None, now: datetime) -> LinkGrant | LinkProblem:
        """The grant of a well-signed, unexpired token; else why not (signature before expiry)."""
        if not token:
            return LinkProblem("missing")
        if not _TOKEN.match(token):
            return LinkProblem("malformed")
        try:
            data = self._serializer.loads(token)
        except BadSignature:
            return LinkProblem("bad_signature")
        except BadData:
            return LinkProblem("malformed")
        if not (isinstance(data, list) and len(data) == 3 and type(data[0]) is int and data[0] > 0
                and isinstance(data[1], str) and SCOPE.match(data[1]) and type(data[2]) is int):
            return LinkProblem("malformed")  # signed by us, so only an old or foreign format
        person_id, scope, expires = data
        expires_at = datetime.fromtimestamp(expires, UTC)
        if now >= expires_at:
            return LinkProblem("expired")
        return LinkGrant(person_id, scope, expires_at)


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


class DashboardLinks:
    """Makes dashboard URLs under the public base URL (kernel.links.LinkIssuer); the key is
    loaded on first use."""

    def __init__(self, public_base_url: str, configured_secret: str, files_dir: Path,
                 hours: float = LINK_HOURS) -> None:
        self.base = public_base_url.rstrip("/")
        self._configured = configured_secret
        self._files_dir = files_dir
        self.lifetime = timedelta(hours=hours)
        self._signer: LinkSigner | None = None

    def __repr__(self) -> str:
        return f"DashboardLinks({self.base!r})"

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
