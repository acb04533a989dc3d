"""Shares and tables created live, and the protection of shares the YAML declares."""

from __future__ import annotations

import pytest

from lakegate.catalog.base import Principal
from lakegate.catalog.db import Database
from lakegate.catalog.recipients import Recipients
from lakegate.catalog.shares import Shares, split_table_name
from lakegate.catalog.sql import SqlCatalog
from lakegate.exceptions import AlreadyExistsError, ConflictError, InvalidParameterError, NotFoundError
from tests.catalog.support import SHARES, prepared


@pytest.fixture
def shares(db: Database) -> Shares:
    prepared(db, shares=SHARES)
    return Shares(db)


def test_create_add_tables_and_read_them_as_a_recipient(db: Database, shares: Shares) -> None:
    created = shares.create("live", display_name="Live", comment="made live", properties={"k": "v"})
    assert created["managedBy"] == "api" and len(created["id"]) == 36
    shares.add_table("live", "sch", "t1", "s3://bucket/t1", history_shared=True, start_version=3)
    shown = shares.add_table("live", "sch", "t2", "file:///data/t2", auxiliary_locations=["s3://aux/t2"])
    assert [t["name"] for t in shown["tables"]] == ["live.sch.t1", "live.sch.t2"]
    token = Recipients(db).create("alice", ["live"]).token
    catalog = SqlCatalog(db)
    principal = catalog.authenticate(token)
    share = catalog.get_share(principal, "live")
    assert (share.display_name, share.comment, share.properties) == ("Live", "made live", {"k": "v"})
    table = catalog.get_table(principal, "live", "sch", "t1")
    assert (table.location, table.history_shared, table.start_version, table.share_id) == (
        "s3://bucket/t1",
        True,
        3,
        created["id"],
    )
    assert catalog.get_table(principal, "live", "sch", "t2").auxiliary_locations == ("s3://aux/t2",)


def test_new_shares_list_after_the_yaml_ones(shares: Shares) -> None:
    shares.create("b_live")
    shares.create("a_live")
    assert [s["name"] for s in shares.all()] == ["share1", "Share2", "empty_share", "b_live", "a_live"]
    assert [s.name for s in SqlCatalog(shares.db).list_shares(Principal("t"))][-2:] == ["b_live", "a_live"]


def test_remove_table_and_delete_share(db: Database, shares: Shares) -> None:
    shares.create("live")
    Recipients(db).create("alice", ["live"])
    shares.add_table("live", "sch", "t1", "/data/t1")
    assert shares.remove_table("live", "SCH", "T1")["schemas"] == []
    with pytest.raises(NotFoundError):
        shares.remove_table("live", "sch", "t1")
    assert shares.delete("live")["name"] == "live"
    assert Recipients(db).get("alice")["shares"] == []
    with pytest.raises(NotFoundError):
        shares.show("live")


def test_yaml_shares_cannot_be_changed_here(shares: Shares) -> None:
    with pytest.raises(ConflictError, match="configuration file"):
        shares.delete("share1")
    with pytest.raises(ConflictError):
        shares.add_table("share1", "default", "extra", "/data/extra")
    with pytest.raises(ConflictError):
        shares.remove_table("share1", "default", "sales")


def test_validation(shares: Shares) -> None:
    with pytest.raises(AlreadyExistsError):
        shares.create("SHARE1")
    shares.create("live")
    shares.add_table("live", "s", "t", "/data/t")
    with pytest.raises(AlreadyExistsError):
        shares.add_table("live", "S", "T", "/data/t")
    for bad in ("a b", "a/b", "", "x" * 256, "tab\tname"):
        with pytest.raises(InvalidParameterError):
            shares.create(bad)
    with pytest.raises(InvalidParameterError):
        shares.add_table("live", "s.x", "t", "/data/t")
    with pytest.raises(InvalidParameterError):
        shares.add_table("live", "s", "t2", "ftp://nowhere/t")
    with pytest.raises(InvalidParameterError):
        shares.add_table("live", "s", "t2", "/data/t2", start_version=2**63)
    with pytest.raises(InvalidParameterError):
        shares.create("many", properties={str(i): "v" for i in range(51)})
    with pytest.raises(NotFoundError):
        shares.add_table("nosuch", "s", "t", "/data/t")


def test_split_table_name() -> None:
    assert split_table_name("share.schema.table") == ("share", "schema", "table")
    assert split_table_name("my.share.schema.table") == ("my.share", "schema", "table")
    with pytest.raises(InvalidParameterError):
        split_table_name("schema.table")
