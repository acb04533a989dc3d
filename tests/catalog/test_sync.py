"""The YAML applied to the database: declarative (the YAML wins for what it declares) and idempotent."""

from __future__ import annotations

import copy
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.base import Principal
from lakegate.catalog.db import Database
from lakegate.catalog.models import RecipientToken, Share
from lakegate.catalog.recipients import Recipients
from lakegate.catalog.shares import Shares
from lakegate.catalog.sql import SqlCatalog
from lakegate.catalog.sync import sync_config
from lakegate.exceptions import UnauthenticatedError
from tests.catalog.support import SHARES, config, prepared

ALL = Principal("test")


def _tables(db: Database, share: str) -> list[tuple]:
    return [
        (t.schema, t.name, t.location, t.id, t.history_shared, t.start_version, t.auxiliary_locations)
        for t in SqlCatalog(db).list_tables(ALL, share, None)
    ]


def test_yaml_shares_are_applied(db: Database) -> None:
    prepared(db, shares=SHARES)
    catalog = SqlCatalog(db)
    assert [s.name for s in catalog.list_shares(ALL)] == ["share1", "Share2", "empty_share"]
    share1 = catalog.get_share(ALL, "SHARE1")
    assert (share1.id, share1.display_name, share1.comment, share1.properties) == (
        "11111111-1111-1111-1111-111111111111",
        "Share One",
        "first",
        {"team": "data"},
    )
    assert _tables(db, "share1") == [
        ("default", "sales", "/data/sales", "00000000-0000-0000-0000-000000000001", True, 2, ()),
        ("default", "plain", "s3://bucket/plain", "", False, 0, ("s3://other/plain",)),
    ]
    assert [s.name for s in catalog.list_schemas(ALL, "share2")] == ["s1", "s2"]


def test_a_second_sync_writes_nothing(db: Database) -> None:
    settings = prepared(db, shares=SHARES)
    with db.write() as conn:
        before = conn.execute(sa.select(Share.id, Share.name)).all()
    with db.engine.connect() as conn:
        writes: list[str] = []
        sa.event.listen(
            conn,
            "before_cursor_execute",
            lambda *args: (
                writes.append(args[2])
                if not args[2].lstrip().upper().startswith(("SELECT", "BEGIN"))
                else None
            ),
        )
        with conn.begin():
            sync_config(conn, settings)
    assert writes == []
    with db.read() as conn:
        assert conn.execute(sa.select(Share.id, Share.name)).all() == before


def test_yaml_changes_win_and_keep_grants(db: Database) -> None:
    prepared(db, shares=SHARES)
    Recipients(db).create("alice", ["share2"])
    changed: list[dict[str, Any]] = copy.deepcopy(SHARES)
    share2 = changed[1]
    share2["comment"] = "now with a comment"
    share2["schemas"][0]["tables"][0]["location"] = "/data/t1-moved"
    share2["schemas"][0]["tables"].append({"name": "t3", "location": "/data/t3"})
    del share2["schemas"][1]  # schema s2 and its table go
    prepared(db, shares=changed)
    assert _tables(db, "share2") == [
        ("s1", "t1", "/data/t1-moved", "", False, 0, ()),
        ("s1", "t3", "/data/t3", "", False, 0, ()),
    ]
    assert SqlCatalog(db).get_share(ALL, "share2").comment == "now with a comment"
    assert Recipients(db).get("alice")["shares"] == ["Share2"]


def test_share_dropped_from_yaml_is_deleted_but_api_shares_stay(db: Database) -> None:
    prepared(db, shares=SHARES)
    Shares(db).create("live")
    prepared(db, shares=SHARES[:1])
    assert [s.name for s in SqlCatalog(db).list_shares(ALL)] == ["share1", "live"]


def test_yaml_takes_over_a_share_created_live(db: Database) -> None:
    prepared(db, shares=[])
    Shares(db).create("share1")
    Shares(db).add_table("share1", "x", "live_table", "/data/live")
    prepared(db, shares=SHARES[:1])
    assert [t[1] for t in _tables(db, "share1")] == ["sales", "plain"]
    assert Shares(db).show("share1")["managedBy"] == "config"


def test_bootstrap_token_sees_every_share_even_new_ones(db: Database) -> None:
    prepared(db, shares=SHARES, authorization={"bearerToken": "bootstrap-token-value"})
    Shares(db).create("later")
    principal = SqlCatalog(db).authenticate("bootstrap-token-value")
    assert principal.recipient == "bootstrap"
    assert [s.name for s in SqlCatalog(db).list_shares(principal)] == [
        "share1",
        "Share2",
        "empty_share",
        "later",
    ]


def test_changed_bootstrap_token_replaces_the_old_one(db: Database) -> None:
    prepared(db, authorization={"bearerToken": "first-token-value"})
    prepared(db, authorization={"bearerToken": "second-token-value"})
    catalog = SqlCatalog(db)
    assert catalog.authenticate("second-token-value").recipient == "bootstrap"
    _refused(catalog, "first-token-value")
    prepared(db)  # no bearerToken any more: the bootstrap recipient's token is revoked
    _refused(catalog, "second-token-value")


def test_revoked_bootstrap_token_stays_revoked_after_restart(db: Database) -> None:
    prepared(db, authorization={"bearerToken": "bootstrap-token-value"})
    Recipients(db).revoke("bootstrap")
    prepared(db, authorization={"bearerToken": "bootstrap-token-value"})
    _refused(SqlCatalog(db), "bootstrap-token-value")
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(RecipientToken)).scalar_one() == 1


def test_sync_with_no_shares_on_empty_database(db: Database) -> None:
    prepared(db)
    with db.write() as conn:
        sync_config(conn, config())
    assert SqlCatalog(db).list_shares(ALL) == []


def _refused(catalog: SqlCatalog, token: str) -> None:
    try:
        catalog.authenticate(token)
    except UnauthenticatedError:
        return
    raise AssertionError("token accepted")
