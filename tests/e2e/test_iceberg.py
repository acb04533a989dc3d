"""PyIceberg, the Python Iceberg client, reads shares through lakegate's Iceberg REST catalog (a server process,
tables on local disk): every row equals deltalake's read of the same Delta version, pruning plans fewer files,
older snapshots are older versions, and what a recipient may not do or see stays refused or absent.
Vended credentials on S3 are tests/e2e/integration/test_iceberg_s3.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    NoSuchNamespaceError,
    NoSuchTableError,
    RESTError,
    UnauthorizedError,
)
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField

from tests.e2e.integration.admin_support import lakegate
from tests.e2e.server import RunningServer, start_server
from tests.fixtures.dv_table import DvTable, build_dv_table
from tests.tables import build_column_mapped, build_partitioned, build_plain

SHARE = "lake"


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("iceberg-tables")
    return {
        "sales": build_partitioned(base / "sales"),  # partitioned, change data feed, 4 versions
        "multi": build_plain(base / "multi", batches=5),  # 5 files, ids 0-2, 10-12, … 40-42
        "dv": build_dv_table(base / "dv", storage="u_prefix"),
        "mapped": build_column_mapped(base / "mapped"),
        "secret": build_plain(base / "secret"),
    }


@pytest.fixture(scope="module")
def server(tables: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    dv: DvTable = tables["dv"]
    shared = [
        {"name": "sales", "location": tables["sales"], "historyShared": True},
        {"name": "multi", "location": tables["multi"]},
        {"name": "dv", "location": str(dv.root)},
        {"name": "mapped", "location": tables["mapped"]},
    ]
    config = {
        "shares": [
            {"name": SHARE, "schemas": [{"name": "default", "tables": shared}]},
            {
                "name": "other",
                "schemas": [{"name": "hidden", "tables": [{"name": "secret", "location": tables["secret"]}]}],
            },
        ]
    }
    running = start_server(tmp_path_factory.mktemp("iceberg-server"), config)
    yield running
    running.stop()


def catalog(server: RunningServer, token: str | None = None, warehouse: str = SHARE) -> Catalog:
    return load_catalog(
        "lakegate",
        type="rest",
        uri=f"{server.endpoint}/iceberg",
        warehouse=warehouse,
        token=token or server.token,
    )


@pytest.fixture(scope="module")
def lake(server: RunningServer) -> Catalog:
    return catalog(server)


def delta_rows(root: str, version: int | None = None) -> list[dict[str, Any]]:
    """deltalake's read (DataFusion: it applies column mapping and deletion vectors), sorted by id."""
    table = DeltaTable(root, version=version) if version is not None else DeltaTable(root)
    result = QueryBuilder().register("t", table).execute("SELECT * FROM t").read_all()
    return _sorted(pa.table(result))


def _sorted(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def scanned(scan: Any) -> list[dict[str, Any]]:
    """A PyIceberg scan's rows, sorted by id. Batch by batch: PyIceberg 0.12's `to_arrow()` cannot merge the
    `string` and `string_view` columns of files deltalake wrote by appending and by rewriting (docs/iceberg.md)."""
    return sorted(
        (row for batch in scan.to_arrow_batch_reader() for row in batch.to_pylist()), key=lambda r: r["id"]
    )


def snapshot_of_version(table: Table, version: int) -> int:
    """The snapshot lakegate made of a Delta version, found by the version its summary names."""
    for snapshot in table.snapshots():
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get("lakegate.delta-version") == str(version):
            return snapshot.snapshot_id
    raise AssertionError(f"no snapshot of version {version} in {table.snapshots()}")


def test_namespaces_and_tables_are_the_shares(lake: Catalog) -> None:
    assert lake.list_namespaces() == [("default",)]
    assert sorted(lake.list_tables("default")) == [("default", n) for n in ("dv", "mapped", "multi", "sales")]
    assert lake.namespace_exists("default") and not lake.namespace_exists("hidden")
    assert lake.table_exists("default.sales") and not lake.table_exists("default.secret")


@pytest.mark.parametrize("name", ["sales", "multi", "mapped"])
def test_a_scan_reads_every_row_of_the_delta_version(
    lake: Catalog, tables: dict[str, Any], name: str
) -> None:
    table = lake.load_table(f"default.{name}")
    assert scanned(table.scan()) == delta_rows(tables[name])


def test_deletion_vectors_hide_their_rows(lake: Catalog, tables: dict[str, Any]) -> None:
    dv: DvTable = tables["dv"]
    rows = _sorted(lake.load_table("default.dv").scan().to_arrow())
    assert [row["id"] for row in rows] == dv.expected_ids
    assert rows == delta_rows(str(dv.root))


def test_the_column_mapped_table_has_its_logical_names(lake: Catalog, tables: dict[str, Any]) -> None:
    table = lake.load_table("default.mapped")
    assert [field.name for field in table.schema().fields] == ["id", "region", "amount", "day", "the note"]
    assert _sorted(table.scan(row_filter="id >= 4").to_arrow()) == [
        row for row in delta_rows(tables["mapped"]) if row["id"] >= 4
    ]


def test_a_partition_filter_plans_fewer_files(lake: Catalog, tables: dict[str, Any]) -> None:
    table = lake.load_table("default.sales")
    every = list(table.scan().plan_files())
    emea = list(table.scan(row_filter="region = 'emea'").plan_files())
    assert 0 < len(emea) < len(every)
    expected = [row for row in delta_rows(tables["sales"]) if row["region"] == "emea"]
    assert scanned(table.scan(row_filter="region = 'emea'")) == expected


def test_a_stats_filter_plans_fewer_files(lake: Catalog, tables: dict[str, Any]) -> None:
    table = lake.load_table("default.multi")
    assert len(list(table.scan().plan_files())) == 5
    late = table.scan(row_filter="id >= 40")
    assert len(list(late.plan_files())) == 1  # only the last file's id range reaches 40
    assert _sorted(late.to_arrow()) == [row for row in delta_rows(tables["multi"]) if row["id"] >= 40]


@pytest.mark.parametrize("version", [0, 1, 2])
def test_an_older_snapshot_is_the_older_delta_version(
    lake: Catalog, tables: dict[str, Any], version: int
) -> None:
    table = lake.load_table("default.sales")
    assert table.current_snapshot() is not None
    assert table.current_snapshot().snapshot_id == snapshot_of_version(table, 3)  # type: ignore[union-attr]
    older = scanned(table.scan(snapshot_id=snapshot_of_version(table, version)))
    assert older == delta_rows(tables["sales"], version)


def test_no_token_or_a_wrong_one_is_refused(server: RunningServer) -> None:
    with pytest.raises(UnauthorizedError):
        catalog(server, token="not-a-token")
    with pytest.raises(UnauthorizedError):
        load_catalog("anonymous", type="rest", uri=f"{server.endpoint}/iceberg", warehouse=SHARE)


def test_another_share_is_not_reachable_through_this_warehouse(lake: Catalog, server: RunningServer) -> None:
    with pytest.raises(NoSuchTableError):
        lake.load_table("hidden.secret")
    with pytest.raises(NoSuchTableError):
        lake.load_table("default.secret")
    with pytest.raises(NoSuchNamespaceError):
        lake.load_namespace_properties("hidden")
    with pytest.raises(RESTError):
        catalog(server, warehouse="no_such_share")


def test_writes_are_refused(lake: Catalog, server: RunningServer) -> None:
    import httpx

    schema = Schema(NestedField(1, "id", LongType(), required=False))
    # PyIceberg refuses by itself what /v1/config does not list; a client that does not check gets 403.
    refused = r"does not support endpoint: (POST|DELETE) "
    with pytest.raises(NotImplementedError, match=refused):
        lake.create_table("default.new", schema)
    with pytest.raises(NotImplementedError, match=refused):
        lake.drop_table("default.sales")
    with pytest.raises(NotImplementedError, match=refused):
        lake.create_namespace("new_ns")
    answer = httpx.post(
        f"{server.endpoint}/iceberg/v1/{SHARE}/namespaces/default/tables/sales",
        json={"requirements": [], "updates": []},
        headers=server.headers(),
    )
    assert answer.status_code == 403 and answer.json()["error"]["type"] == "ForbiddenException"
    assert scanned(lake.load_table("default.sales").scan())  # still there, unchanged


def test_load_table_is_audited_like_a_query(lake: Catalog, server: RunningServer) -> None:
    lake.load_table("default.sales")
    with pytest.raises(NoSuchTableError):
        lake.load_table("default.nope")
    events = [json.loads(line)["audit"] for line in server.log().splitlines() if '"audit"' in line]
    loads = [e for e in events if e["operation"] == "iceberg-load-table"]
    assert {"table": f"{SHARE}.default.sales", "version": 3, "outcome": "ok"}.items() <= loads[-2].items()
    assert {"table": f"{SHARE}.default.nope", "status": 404}.items() <= loads[-1].items()


def test_a_client_secret_works_as_iceberg_oauth_credential(server: RunningServer) -> None:
    """PyIceberg given `credential=<client id>:<secret>` asks `{uri}/v1/oauth/tokens` for an access token."""
    profile = server.workdir / "dora.share"
    lakegate(
        server.workdir / "lakegate.yaml",
        "recipients",
        "create",
        "dora",
        "--share",
        SHARE,
        "--auth",
        "oauth",
        "--profile-out",
        str(profile),
    )
    secret = json.loads(profile.read_text())["clientSecret"]
    dora = load_catalog(
        "dora", type="rest", uri=f"{server.endpoint}/iceberg", warehouse=SHARE, credential=f"dora:{secret}"
    )
    assert ("default", "sales") in dora.list_tables("default")
    with pytest.raises(Exception, match="invalid_client"):
        load_catalog(
            "mallory", type="rest", uri=f"{server.endpoint}/iceberg", warehouse=SHARE, credential="dora:wrong"
        )
