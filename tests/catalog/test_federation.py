"""OIDC federation policies in the catalog: managing them, and the recipient a federated JWT authenticates as,
against a real OpenID provider on loopback (tests/services/oidc.py)."""

from __future__ import annotations

import time

import pytest

from lakegate.auth.oidc import IssuerKeys
from lakegate.catalog.base import Principal
from lakegate.catalog.db import Database
from lakegate.catalog.federation import FederatedAuthenticator
from lakegate.catalog.recipients import PolicyRequest, Recipients, active_token_count
from lakegate.catalog.sql import SqlCatalog
from lakegate.exceptions import (
    AlreadyExistsError,
    ConflictError,
    InvalidParameterError,
    NotFoundError,
    UnauthenticatedError,
)
from tests.catalog.support import SHARES, Clock, prepared
from tests.services.oidc import OpenIdProvider

AUD = "api://lakegate"


@pytest.fixture
def recipients(db: Database, clock: Clock) -> Recipients:
    prepared(db, shares=SHARES)
    return Recipients(db, clock)


@pytest.fixture
def catalog(db: Database) -> SqlCatalog:
    return SqlCatalog(db, federation=FederatedAuthenticator(db, IssuerKeys()))


def test_a_policy_authenticates_its_recipient_with_its_grants(
    recipients: Recipients, catalog: SqlCatalog, oidc_provider: OpenIdProvider
) -> None:
    recipients.create("acme", ["share1"])
    shown = recipients.add_policy("acme", oidc_provider.issuer, [AUD, "api://other"], "app-1")
    assert [
        (p["issuer"], p["audiences"], p["subjectClaim"], p["subject"], p["status"])
        for p in shown["federationPolicies"]
    ] == [(oidc_provider.issuer, [AUD, "api://other"], "sub", "app-1", "active")]
    token = oidc_provider.mint("app-1", AUD)
    assert catalog.authenticate(token) == Principal("acme", frozenset({"share1"}))
    # a grant change is seen on the next request
    recipients.grant("acme", "share2")
    assert catalog.authenticate(token) == Principal("acme", frozenset({"share1", "share2"}))


def test_subject_claim_other_than_sub(
    recipients: Recipients, catalog: SqlCatalog, oidc_provider: OpenIdProvider
) -> None:
    recipients.create("acme", ["share1"])
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "object-42", subject_claim="oid")
    assert catalog.authenticate(oidc_provider.mint("whatever", AUD, oid="object-42")).recipient == "acme"
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(oidc_provider.mint("object-42", AUD))  # sub is not the claim the policy reads


@pytest.mark.parametrize(
    ("subject", "audience", "issuer"),
    [
        ("app-2", AUD, None),  # wrong subject
        ("app-1", "api://someone-else", None),  # wrong audience
        ("app-1", AUD, "https://login.example.com/tenant"),  # wrong issuer (no fetch for it)
    ],
)
def test_tokens_no_policy_takes_are_refused(
    recipients: Recipients,
    catalog: SqlCatalog,
    oidc_provider: OpenIdProvider,
    subject: str,
    audience: str,
    issuer: str | None,
) -> None:
    recipients.create("acme", ["share1"])
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")
    token = oidc_provider.mint(subject, audience, iss=issuer or oidc_provider.issuer)
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(token)


def test_unknown_issuer_triggers_no_fetch(
    recipients: Recipients, db: Database, oidc_provider: OpenIdProvider
) -> None:
    recipients.create("acme", ["share1"])
    federation = FederatedAuthenticator(db, IssuerKeys())
    assert federation.authenticate(oidc_provider.mint("app-1", AUD)) is None  # no policy names this issuer
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")
    assert federation.authenticate(oidc_provider.mint("app-2", AUD)) is None  # nor this subject
    assert oidc_provider.discovery_hits == oidc_provider.jwks_hits == 0
    assert federation.authenticate(oidc_provider.mint("app-1", AUD)) == Principal(
        "acme", frozenset({"share1"})
    )
    assert oidc_provider.jwks_hits == 1


def test_removing_the_policy_or_deleting_the_recipient_takes_effect_at_once(
    recipients: Recipients, catalog: SqlCatalog, oidc_provider: OpenIdProvider
) -> None:
    recipients.create("acme", ["share1"])
    policy = recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")["federationPolicies"][0]
    token = oidc_provider.mint("app-1", AUD)
    assert catalog.authenticate(token).recipient == "acme"
    assert recipients.remove_policy("acme", policy["id"])["federationPolicies"] == []
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(token)
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")
    assert catalog.authenticate(token).recipient == "acme"
    recipients.delete("acme")
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(token)


def test_policy_values_are_checked(recipients: Recipients, oidc_provider: OpenIdProvider) -> None:
    recipients.create("acme", ["share1"])
    with pytest.raises(InvalidParameterError, match="https"):
        recipients.add_policy("acme", "http://idp.example.com", [AUD], "app-1")  # http, not on this machine
    with pytest.raises(InvalidParameterError, match="https"):
        recipients.add_policy("acme", "file:///etc/passwd", [AUD], "app-1")
    with pytest.raises(InvalidParameterError, match="audiences"):
        recipients.add_policy("acme", oidc_provider.issuer, [], "app-1")
    with pytest.raises(InvalidParameterError, match="subject"):
        recipients.add_policy("acme", oidc_provider.issuer, [AUD], " ")
    with pytest.raises(NotFoundError):
        recipients.add_policy("nobody", oidc_provider.issuer, [AUD], "app-1")
    with pytest.raises(NotFoundError):
        recipients.remove_policy("acme", 12345)


def test_one_token_never_authenticates_two_recipients(
    recipients: Recipients, oidc_provider: OpenIdProvider
) -> None:
    recipients.create("acme", ["share1"])
    recipients.create("globex", ["share2"])
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")
    with pytest.raises(AlreadyExistsError):
        recipients.add_policy("acme", oidc_provider.issuer, [AUD, "api://x"], "app-1")
    with pytest.raises(ConflictError, match="two recipients"):
        recipients.add_policy("globex", oidc_provider.issuer, ["api://x", AUD], "app-1")
    # another audience is another token: allowed
    recipients.add_policy("globex", oidc_provider.issuer, ["api://globex"], "app-1")


def test_revoking_the_recipient_revokes_its_policies(
    recipients: Recipients, catalog: SqlCatalog, oidc_provider: OpenIdProvider
) -> None:
    recipients.create("acme", ["share1"])
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")
    token = oidc_provider.mint("app-1", AUD)
    assert catalog.authenticate(token).recipient == "acme"
    revoked = recipients.revoke("acme")
    assert [p["status"] for p in revoked["federationPolicies"]] == ["revoked"]
    assert revoked["status"] == "inactive"
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(token)
    # a new policy brings it back, as rotate does for tokens
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")
    assert catalog.authenticate(token).recipient == "acme"


def test_a_verified_token_is_remembered_for_a_moment_but_never_past_its_exp(
    recipients: Recipients, db: Database, oidc_provider: OpenIdProvider
) -> None:
    recipients.create("acme", ["share1"])
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")
    catalog = SqlCatalog(
        db, federation=FederatedAuthenticator(db, IssuerKeys(), skew_seconds=0), cache_seconds=60
    )
    expires = int(time.time()) + 2
    token = oidc_provider.mint("app-1", AUD, exp=expires)
    principal = Principal("acme", frozenset({"share1"}))
    assert catalog.remembered(token) is None  # not verified yet
    assert catalog.authenticate(token) == principal
    assert catalog.remembered(token) == principal  # the event loop may answer from memory
    time.sleep(max(0.0, expires - time.time()) + 0.1)
    assert catalog.remembered(token) is None
    with pytest.raises(UnauthenticatedError, match="expired"):
        catalog.authenticate(token)
    # A change made through this database ends the memory at once.
    fresh = oidc_provider.mint("app-1", AUD)
    assert catalog.authenticate(fresh) == principal
    recipients.revoke("acme")
    assert catalog.remembered(fresh) is None
    with pytest.raises(UnauthenticatedError):
        catalog.authenticate(fresh)


def test_an_oidc_recipient_is_created_with_its_policy_and_no_secret(
    recipients: Recipients, catalog: SqlCatalog, oidc_provider: OpenIdProvider
) -> None:
    policy = PolicyRequest(oidc_provider.issuer, (AUD,), "app-1", "azp", oidc_provider.token_endpoint)
    issued = recipients.create("acme", ["share1"], auth="oidc", policy=policy)
    assert issued.token == ""
    assert (issued.recipient["tokens"], issued.recipient["status"]) == ([], "active")
    [shown] = issued.recipient["federationPolicies"]
    assert (shown["issuer"], shown["audiences"], shown["subjectClaim"], shown["subject"]) == (
        oidc_provider.issuer,
        [AUD],
        "azp",
        "app-1",
    )
    profile = issued.profile("https://share.example.com/delta-sharing")
    assert (profile["shareCredentialsVersion"], profile["type"], profile["tokenEndpoint"]) == (
        2,
        "oauth_client_credentials",
        oidc_provider.token_endpoint,
    )
    assert profile["endpoint"] == "https://share.example.com/delta-sharing"
    assert "bearerToken" not in profile and "scope" not in profile  # no scope given: none written
    token = oidc_provider.mint("someone", AUD, azp="app-1")
    assert catalog.authenticate(token) == Principal("acme", frozenset({"share1"}))
    with pytest.raises(InvalidParameterError, match="no lakegate credential"):
        recipients.rotate("acme", auth="oidc")
    with pytest.raises(InvalidParameterError, match="federation policy"):
        recipients.create("globex", auth="oidc")
    with pytest.raises(InvalidParameterError, match="expire"):
        recipients.create("globex", auth="oidc", policy=policy, expires_in=60)


def test_a_policy_counts_as_a_way_in(recipients: Recipients, db: Database) -> None:
    # A server whose only recipient is federated is not "closed to everyone" (the start-up warning).
    recipients.create("acme", ["share1"])
    recipients.revoke("acme")
    assert active_token_count(db) == 0
    recipients.add_policy("acme", "https://login.example.com/tenant/v2.0", [AUD], "app-1")
    assert active_token_count(db) == 1


def test_claims_no_row_can_hold_are_no_match_not_an_error(
    recipients: Recipients, catalog: SqlCatalog, oidc_provider: OpenIdProvider
) -> None:
    # PostgreSQL refuses to compare text holding a NUL: such an issuer or subject simply matches nothing.
    recipients.create("acme", ["share1"])
    recipients.add_policy("acme", oidc_provider.issuer, [AUD], "app-1")
    issuer = oidc_provider.issuer
    for subject, iss in (("app-1", issuer + "\x00"), ("app-1\x00", issuer), ("app-1", "x" * 5000)):
        with pytest.raises(UnauthenticatedError):
            catalog.authenticate(oidc_provider.mint(subject, AUD, iss=iss))
    assert oidc_provider.jwks_hits == 0
