"""Client secrets, registered keys, used assertion ids and access tokens on both databases (SQLite and
PostgreSQL): what the token endpoint and SqlCatalog.authenticate rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lakegate.auth.access_tokens import AccessGrant, AccessTokens
from lakegate.catalog.base import BasicCredentials, Principal
from lakegate.catalog.client_credentials import ClientCredentials
from lakegate.catalog.db import Database
from lakegate.catalog.recipients import PublicKeyRequest, Recipients
from lakegate.catalog.sql import SqlCatalog
from lakegate.exceptions import UnauthenticatedError
from lakegate.keys import KeyRing
from tests.auth.keys import ec_pair
from tests.catalog.support import SHARES, prepared


def test_secrets_keys_access_tokens_and_replays(db: Database) -> None:
    prepared(db, shares=SHARES)
    recipients, clients = Recipients(db), ClientCredentials(db)
    tokens = AccessTokens(KeyRing.random(), "https://lakegate.example/delta-sharing", 3600)
    catalog = SqlCatalog(db, access_tokens=tokens)
    secret = recipients.create("Alice", ["share2"], auth="oauth").token
    client = clients.by_secret("alice", secret)  # client ids are names: case-insensitive
    assert client is not None and client.name == "Alice"
    assert clients.by_secret("alice", secret + "x") is None and clients.by_secret("bob", secret) is None
    assert clients.by_secret("alice\x00", secret) is None  # PostgreSQL cannot compare a NUL: no match
    token = tokens.mint(
        "Alice", AccessGrant(client.recipient_id, "secret", client.credential_id, client.credential_created)
    )
    assert catalog.authenticate(token) == Principal("Alice", frozenset({"share2"}))

    pair = ec_pair()
    recipients.rotate("Alice", auth="private-key-jwt", public_key=PublicKeyRequest(pair.public_pem, "k1"))
    key = clients.key("ALICE", "k1")
    assert key is not None and key.algorithm == "ES256" and "BEGIN PUBLIC KEY" in key.pem
    assert clients.key("alice", "k2") is None

    later = datetime.now(UTC) + timedelta(minutes=2)
    assert clients.use_assertion("alice", "jti-1", later) is True
    assert clients.use_assertion("ALICE", "jti-1", later) is False  # a replay, whatever the case of the id
    assert clients.use_assertion("bob", "jti-1", later) is True  # another client's jti space

    basic = recipients.create("carol", ["share2"], auth="basic").token
    assert catalog.authenticate(BasicCredentials("CAROL", basic)).recipient == "carol"
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(BasicCredentials("alice", basic))

    recipients.revoke("Alice")
    assert clients.by_secret("alice", secret) is None and clients.key("alice", "k1") is None
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(token)
