"""Admin tokens: distinct from recipients' tokens, hashed, expiring and revocable."""

from __future__ import annotations

import pytest

from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from lakegate.catalog.sql import SqlCatalog
from lakegate.exceptions import NotFoundError, UnauthenticatedError
from tests.catalog.support import Clock, prepared


@pytest.fixture
def admins(db: Database, clock: Clock) -> AdminTokens:
    prepared(db, shares=[{"name": "s"}])
    return AdminTokens(db, clock)


def test_admin_and_recipient_tokens_do_not_mix(db: Database, admins: AdminTokens) -> None:
    described, token = admins.create("ops")
    assert described["status"] == "active" and token not in repr(described)
    assert admins.authenticate(token) == "ops"
    recipient_token = Recipients(db).create("alice", ["s"]).token
    with pytest.raises(UnauthenticatedError):
        admins.authenticate(recipient_token)
    with pytest.raises(UnauthenticatedError):
        SqlCatalog(db).authenticate(token)


def test_expiry_and_revocation(admins: AdminTokens, clock: Clock) -> None:
    _, brief = admins.create("ci", expires_in=10)
    _, ops = admins.create("ops")
    clock.advance(10)
    with pytest.raises(UnauthenticatedError):
        admins.authenticate(brief)
    assert admins.revoke("ops") == {"name": "ops", "tokensRevoked": 1}
    with pytest.raises(UnauthenticatedError):
        admins.authenticate(ops)
    assert [(t["name"], t["status"]) for t in admins.all()] == [("ci", "expired"), ("ops", "revoked")]
    with pytest.raises(NotFoundError):
        admins.revoke("nobody")
    with pytest.raises(UnauthenticatedError):
        admins.authenticate(None)
