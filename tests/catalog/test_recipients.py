"""Managing recipients: tokens made random and stored hashed, rotation with grace, revocation, grants."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from lakegate.catalog.bearer_tokens import token_hash
from lakegate.catalog.db import Database
from lakegate.catalog.models import Base
from lakegate.catalog.recipients import Recipients
from lakegate.catalog.sql import SqlCatalog
from lakegate.exceptions import (
    AlreadyExistsError,
    ConflictError,
    InvalidParameterError,
    NotFoundError,
    UnauthenticatedError,
)
from tests.catalog.support import SHARES, Clock, prepared


@pytest.fixture
def recipients(db: Database, clock: Clock) -> Recipients:
    prepared(db, shares=SHARES, authorization={"bearerToken": "bootstrap-token-value"})
    return Recipients(db, clock)


def _works(db: Database, clock: Clock, token: str) -> bool:
    try:
        SqlCatalog(db, clock=clock).authenticate(token)
        return True
    except UnauthenticatedError:
        return False


def _all_text(db: Database) -> str:
    """Every value of every table, as text: where a token in clear would show."""
    with db.read() as conn:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in conn.execute(sa.select(table))
        )


def test_tokens_are_random_256_bit_and_stored_only_as_hashes(db: Database, recipients: Recipients) -> None:
    tokens = [recipients.create(f"r{i}", ["share1"]).token for i in range(5)]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert re.fullmatch(
            r"lg_[A-Za-z0-9_-]{43}", token
        )  # 43 base64url chars = 258 bits, 256 of them random
    stored = _all_text(db)
    assert not any(token in stored or token[3:] in stored for token in tokens)
    assert all(token_hash(token) in stored for token in tokens)


def test_profile_has_expiration_only_when_the_token_expires(recipients: Recipients, clock: Clock) -> None:
    forever = recipients.create("forever", ["share1"]).profile("https://x/delta-sharing")
    assert forever == {
        "shareCredentialsVersion": 1,
        "endpoint": "https://x/delta-sharing",
        "bearerToken": forever["bearerToken"],
    }
    brief = recipients.create("brief", ["share1"], expires_in=90).profile("https://x/delta-sharing")
    assert brief["expirationTime"] == "2026-07-01T12:01:30.000Z"


def test_rotation_keeps_the_old_token_for_the_grace_period(
    db: Database, recipients: Recipients, clock: Clock
) -> None:
    old = recipients.create("alice", ["share1"]).token
    rotated = recipients.rotate("alice", grace=30)
    assert rotated.recipient["previousTokensValidUntil"] == "2026-07-01T12:00:30.000Z"
    assert _works(db, clock, old) and _works(db, clock, rotated.token)
    clock.advance(29)
    assert _works(db, clock, old)
    clock.advance(1)
    assert not _works(db, clock, old) and _works(db, clock, rotated.token)


def test_rotation_without_grace_stops_the_old_token_at_once(
    db: Database, recipients: Recipients, clock: Clock
) -> None:
    old = recipients.create("alice", ["share1"]).token
    new = recipients.rotate("alice", expires_in=10).token
    assert not _works(db, clock, old) and _works(db, clock, new)
    clock.advance(10)
    assert not _works(db, clock, new)


def test_grace_never_extends_an_earlier_expiry(db: Database, recipients: Recipients, clock: Clock) -> None:
    old = recipients.create("alice", ["share1"], expires_in=5).token
    recipients.rotate("alice", grace=3600)
    clock.advance(5)
    assert not _works(db, clock, old)


def test_revoke_stops_every_token_and_rotate_restores_access(
    db: Database, recipients: Recipients, clock: Clock
) -> None:
    first = recipients.create("alice", ["share1"]).token
    second = recipients.rotate("alice", grace=60).token
    assert recipients.revoke("alice")["tokensRevoked"] == 2
    assert not _works(db, clock, first) and not _works(db, clock, second)
    assert recipients.get("alice")["status"] == "inactive"
    third = recipients.rotate("alice").token
    assert _works(db, clock, third)
    assert recipients.get("alice")["shares"] == ["share1"]


def test_listing_shows_status_and_never_a_token(recipients: Recipients, clock: Clock) -> None:
    token = recipients.create("alice", ["share1", "share2"], expires_in=60, comment="partner").token
    clock.advance(61)
    listed = {r["name"]: r for r in recipients.all()}
    assert set(listed) == {"alice", "bootstrap"}
    assert listed["alice"]["status"] == "inactive"
    assert listed["alice"]["tokens"][0]["status"] == "expired"
    assert listed["alice"]["shares"] == ["share1", "Share2"] and listed["alice"]["comment"] == "partner"
    assert listed["bootstrap"]["allShares"] is True
    assert token not in repr(listed) and token_hash(token) not in repr(listed)


def test_errors(recipients: Recipients) -> None:
    recipients.create("alice", ["share1"])
    with pytest.raises(AlreadyExistsError):
        recipients.create("ALICE")
    with pytest.raises(NotFoundError, match="share 'nosuch' not found"):
        recipients.create("bob", ["nosuch"])
    with pytest.raises(ConflictError):
        recipients.create("bootstrap")
    with pytest.raises(ConflictError):
        recipients.grant("bootstrap", "share1")
    with pytest.raises(InvalidParameterError):
        recipients.create("has space")
    for seconds in (-1, 10**20):
        with pytest.raises(InvalidParameterError):
            recipients.create("carol", expires_in=seconds)
        with pytest.raises(InvalidParameterError):
            recipients.rotate("alice", grace=seconds)
    with pytest.raises(NotFoundError, match="recipient 'nobody' not found"):
        recipients.rotate("nobody")
    with pytest.raises(NotFoundError):
        recipients.grant("alice", "nosuch")
    assert [r["name"] for r in recipients.all()] == ["alice", "bootstrap"]


def test_grant_is_idempotent(recipients: Recipients) -> None:
    recipients.create("alice")
    recipients.grant("alice", "share1")
    assert recipients.grant("alice", "SHARE1")["shares"] == ["share1"]
    assert recipients.ungrant("alice", "share1")["shares"] == []
    assert recipients.ungrant("alice", "share1")["shares"] == []
