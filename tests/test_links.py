"""Dashboard links: signed over (person, scope, expiry); any change, or time running out, refuses them."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import URLSafeSerializer

from bot.web.links import SECRET_FILE, DashboardLinks, LinkSigner, install_secret
from kernel.links import DISTRICT, LinkGrant, LinkProblem, school_scope
from tests.conftest import local

NOW = local(2023, 3, 17, 16, 0)
LATER = NOW + timedelta(hours=12)


def test_a_signed_link_opens_its_scope_until_it_expires() -> None:
    signer = LinkSigner(b"k" * 32)
    token = signer.sign(2, school_scope(1), LATER)
    grant = signer.verify(token, NOW)
    assert grant == LinkGrant(2, "school:1", LATER)
    assert isinstance(grant, LinkGrant) and grant.school_id == 1
    assert grant.allows_school(1) and not grant.allows_school(2) and not grant.allows_school(None)
    assert signer.verify(token, LATER - timedelta(seconds=1)) == grant
    assert signer.verify(token, LATER) == LinkProblem("expired")
    assert signer.verify(token, LATER + timedelta(days=3)) == LinkProblem("expired")
    district = signer.verify(signer.sign(8, DISTRICT, LATER), NOW)
    assert isinstance(district, LinkGrant) and district.allows_school(1) and district.allows_school(99)


def forged(token: str, person: int, scope: str, expires: int) -> str:
    """Another payload under the token's own signature: what a user editing the URL gets."""
    payload = URLSafeSerializer(b"any").dump_payload([person, scope, expires])
    from itsdangerous.encoding import base64_encode

    return f"{base64_encode(payload).decode()}.{token.rsplit('.', 1)[1]}"


@pytest.mark.parametrize("change", ["person", "scope", "to_district", "expiry", "signature"])
def test_changing_any_part_breaks_the_signature(change: str) -> None:
    signer = LinkSigner(b"k" * 32)
    token = signer.sign(2, "school:1", LATER)
    expires = int(LATER.timestamp())
    if change == "person":
        bad = forged(token, 3, "school:1", expires)
    elif change == "scope":
        bad = forged(token, 2, "school:2", expires)
    elif change == "to_district":
        bad = forged(token, 2, "district", expires)
    elif change == "expiry":
        bad = forged(token, 2, "school:1", expires + 86400)
    else:
        sig = token.rsplit(".", 1)[1]
        bad = token[:-len(sig)] + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert bad != token
    assert signer.verify(bad, NOW) == LinkProblem("bad_signature")


def test_another_key_or_a_broken_token_is_refused() -> None:
    token = LinkSigner(b"a" * 32).sign(2, DISTRICT, LATER)
    assert LinkSigner(b"b" * 32).verify(token, NOW) == LinkProblem("bad_signature")
    signer = LinkSigner(b"a" * 32)
    for bad in ("", None):
        assert signer.verify(bad, NOW) == LinkProblem("missing")
    for bad in ("x", token + ".x", "a.b", token.replace(".", "!"), token + " "):
        assert signer.verify(bad, NOW) == LinkProblem("malformed"), bad
    for bad in (token[:-1], token.upper(), token.lower()):
        assert signer.verify(bad, NOW) == LinkProblem("bad_signature"), bad
    with pytest.raises(ValueError):
        signer.sign(2, "school:1;district", LATER)


def test_an_install_without_a_configured_secret_makes_one_file_only_its_owner_reads(tmp_path: Path) -> None:
    files = tmp_path / "files"
    first = install_secret(files)
    path = files / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64 and install_secret(files) == first  # kept, not remade
    assert [p.name for p in files.iterdir()] == [SECRET_FILE]  # no temp file left behind
    issuer = DashboardLinks("https://yanxiu.example.org/", "", files)
    url, expires_at = issuer.issue(2, "school:1", NOW)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "yanxiu.example.org", "/dashboard/")
    token = parse_qs(parts.query)["t"][0]
    assert LinkSigner(first).verify(token, NOW) == LinkGrant(2, "school:1", expires_at)
    assert timedelta(hours=11, minutes=59) < expires_at - NOW <= timedelta(hours=12)


def test_a_configured_secret_is_used_and_no_file_is_made(tmp_path: Path) -> None:
    issuer = DashboardLinks("http://127.0.0.1:8080", "configured-secret", tmp_path / "files")
    url, _ = issuer.issue(8, DISTRICT, NOW)
    token = parse_qs(urlsplit(url).query)["t"][0]
    assert isinstance(LinkSigner(b"configured-secret").verify(token, NOW), LinkGrant)
    assert not (tmp_path / "files").exists()
    assert "configured-secret" not in repr(issuer) + repr(issuer.signer)
