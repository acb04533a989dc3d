"""What recipients see: authentication on every request, grants, and ungranted answered as nonexistent."""

from __future__ import annotations

import pytest

from lakegate.catalog.base import Principal
from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from lakegate.catalog.sql import SqlCatalog
from lakegate.exceptions import LakegateError, NotFoundError, UnauthenticatedError
from tests.catalog.support import SHARES, Clock, prepared


@pytest.fixture
def catalog(db: Database, clock: Clock) -> SqlCatalog:
    prepared(db, shares=SHARES)
    return SqlCatalog(db, clock=clock)


def _error(call) -> LakegateError:
    with pytest.raises(LakegateError) as info:
        call()
    return info.value


def test_token_authenticates_its_recipient_with_its_grants(db: Database, catalog: SqlCatalog) -> None:
    token = Recipients(db).create("alice", ["share2", "EMPTY_SHARE"]).token
    principal = catalog.authenticate(token)
    assert principal == Principal("alice", frozenset({"share2", "empty_share"}))
    assert [s.name for s in catalog.list_shares(principal)] == ["Share2", "empty_share"]


def test_recipient_without_grants_sees_nothing(db: Database, catalog: SqlCatalog) -> None:
    principal = catalog.authenticate(Recipients(db).create("nobody").token)
    assert principal.shares == frozenset()
    assert catalog.list_shares(principal) == []


@pytest.mark.parametrize("token", [None, "", "lg_wrong", "x" * 5000])
def test_missing_or_wrong_token_is_unauthenticated(catalog: SqlCatalog, token: str | None) -> None:
    error = _error(lambda: catalog.authenticate(token))
    assert isinstance(error, UnauthenticatedError) and error.status == 401


def test_no_anonymous_access_unless_configured(db: Database, catalog: SqlCatalog) -> None:
    assert isinstance(_error(lambda: catalog.authenticate(None)), UnauthenticatedError)
    assert SqlCatalog(db, allow_anonymous=True).authenticate(None) == Principal("anonymous")
    # The official client always sends its profile's token: with anonymous access on, any token reads.
    assert SqlCatalog(db, allow_anonymous=True).authenticate("lg_whatever") == Principal("anonymous")


def test_expiry_takes_effect_on_time(db: Database, catalog: SqlCatalog, clock: Clock) -> None:
    token = Recipients(db, clock).create("alice", ["share1"], expires_in=60).token
    clock.advance(59.9)
    assert catalog.authenticate(token).recipient == "alice"
    clock.advance(0.1)
    assert isinstance(_error(lambda: catalog.authenticate(token)), UnauthenticatedError)


def test_grant_changes_apply_to_the_next_request(db: Database, catalog: SqlCatalog) -> None:
    recipients = Recipients(db)
    token = recipients.create("alice", ["share1"]).token
    recipients.grant("alice", "share2")
    assert catalog.authenticate(token).shares == frozenset({"share1", "share2"})
    recipients.ungrant("alice", "share1")
    principal = catalog.authenticate(token)
    assert principal.shares == frozenset({"share2"})
    assert isinstance(
        _error(lambda: catalog.get_table(principal, "share1", "default", "sales")), NotFoundError
    )


CASES = {
    "get_share": lambda c, p, share: c.get_share(p, share),
    "list_schemas": lambda c, p, share: c.list_schemas(p, share),
    "list_tables": lambda c, p, share: c.list_tables(p, share, "default"),
    "list_all_tables": lambda c, p, share: c.list_tables(p, share, None),
    "get_table": lambda c, p, share: c.get_table(p, share, "default", "sales"),
}


@pytest.mark.parametrize("case", CASES)
def test_ungranted_share_is_answered_as_a_nonexistent_one(
    db: Database, catalog: SqlCatalog, case: str
) -> None:
    principal = catalog.authenticate(Recipients(db).create("alice", ["share2"]).token)
    ungranted = _error(lambda: CASES[case](catalog, principal, "share1"))
    missing = _error(lambda: CASES[case](catalog, principal, "nosuch"))
    assert type(ungranted) is type(missing) is NotFoundError
    assert ungranted.message == missing.message.replace("nosuch", "share1")


def test_missing_schema_and_table_in_a_granted_share(catalog: SqlCatalog) -> None:
    principal = Principal("test", frozenset({"share2"}))
    assert (
        _error(lambda: catalog.list_tables(principal, "share2", "nope")).message
        == "schema 'nope' not found in share 'share2'"
    )
    assert isinstance(_error(lambda: catalog.get_table(principal, "share2", "s1", "nope")), NotFoundError)
    assert isinstance(_error(lambda: catalog.get_table(principal, "share2", "s2", "t1")), NotFoundError)


def test_names_are_case_insensitive(catalog: SqlCatalog) -> None:
    principal = Principal("test", frozenset({"share1"}))
    table = catalog.get_table(principal, "SHARE1", "Default", "SALES")
    assert (table.share, table.schema, table.name, table.history_shared, table.start_version) == (
        "share1",
        "default",
        "sales",
        True,
        2,
    )
    assert table.share_id == "11111111-1111-1111-1111-111111111111"


def test_signed_file_urls_look_up_tables_without_a_principal(catalog: SqlCatalog) -> None:
    assert catalog.get_table(None, "share2", "s2", "t2").location == "/data/t2"


def test_empty_share_and_all_tables_order(catalog: SqlCatalog) -> None:
    principal = Principal("test")
    assert catalog.list_schemas(principal, "empty_share") == []
    assert catalog.list_tables(principal, "empty_share", None) == []
    assert [(t.schema, t.name) for t in catalog.list_tables(principal, "share2", None)] == [
        ("s1", "t1"),
        ("s2", "t2"),
    ]


def test_names_with_nul_are_not_found_not_errors(db: Database, catalog: SqlCatalog) -> None:
    """PostgreSQL refuses NUL in text: such names must still answer 404, never 500."""
    principal = Principal("test")
    assert isinstance(_error(lambda: catalog.get_share(principal, "share1\x00")), NotFoundError)
    assert isinstance(_error(lambda: catalog.list_tables(principal, "share1", "default\x00")), NotFoundError)
    assert isinstance(
        _error(lambda: catalog.get_table(principal, "share1", "de\x00fault", "sales")), NotFoundError
    )
    assert isinstance(
        _error(lambda: catalog.get_table(None, "share1", "default", "sales\x00")), NotFoundError
    )
    assert isinstance(_error(lambda: Recipients(db).create("x", ["share1\x00"])), NotFoundError)
