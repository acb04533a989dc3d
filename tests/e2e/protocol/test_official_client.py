"""The official delta-sharing client against a running lakegate, on local tables: what it lists and reads must
equal what deltalake reads from the same tables."""

from __future__ import annotations

import delta_sharing
import pandas as pd
import pytest
import requests

from tests.e2e.server import RunningServer
from tests.fixtures.dv_table import DvTable
from tests.tables import read_expected


def _rows(frame: pd.DataFrame) -> list[dict]:
    records = frame.to_dict("records")
    out = []
    for r in records:
        out.append(
            {k: (None if (v is None or (isinstance(v, float) and pd.isna(v))) else v) for k, v in r.items()}
        )
    return sorted(out, key=lambda r: r["id"])


def _normalize(rows: list[dict]) -> list[dict]:
    # pandas gives dates as datetime.date or Timestamp depending on the reader path; compare as ISO strings.
    return [{k: (v.isoformat()[:10] if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]


def test_lists_every_share_schema_and_table(server: RunningServer) -> None:
    client = delta_sharing.SharingClient(server.profile())
    assert [s.name for s in client.list_shares()] == ["share1", "share2", "empty_share"]
    share2 = next(s for s in client.list_shares() if s.name == "share2")
    assert [s.name for s in client.list_schemas(share2)] == ["s1", "s2"]
    tables = {(t.share, t.schema, t.name) for t in client.list_all_tables()}
    assert tables == {
        ("share1", "default", "sales"),
        ("share1", "default", "plain"),
        ("share1", "default", "paged"),
        ("share1", "default", "dv"),
        ("share2", "s1", "file_uri"),
        ("share2", "s2", "plain2"),
    }


@pytest.mark.parametrize("table", ["sales", "plain", "paged"])
@pytest.mark.parametrize("use_delta_format", [False, True])
def test_load_as_pandas_equals_deltalake(
    server: RunningServer, local_tables: dict[str, str], table: str, use_delta_format: bool
) -> None:
    frame = delta_sharing.load_as_pandas(
        f"{server.profile()}#share1.default.{table}", use_delta_format=use_delta_format
    )
    assert _normalize(_rows(frame)) == _normalize(read_expected(local_tables[table]))


@pytest.mark.parametrize("use_delta_format", [False, True])
def test_file_uri_location(
    server: RunningServer, local_tables: dict[str, str], use_delta_format: bool
) -> None:
    frame = delta_sharing.load_as_pandas(
        f"{server.profile()}#share2.s1.file_uri", use_delta_format=use_delta_format
    )
    assert _normalize(_rows(frame)) == _normalize(read_expected(local_tables["file_uri"][len("file://") :]))


def test_auto_format_reads_partitioned_table(server: RunningServer, local_tables: dict[str, str]) -> None:
    frame = delta_sharing.load_as_pandas(f"{server.profile()}#share1.default.sales")
    assert _normalize(_rows(frame)) == _normalize(read_expected(local_tables["sales"]))


def test_deletion_vectors_read_in_delta_format(server: RunningServer, dv_table: DvTable) -> None:
    frame = delta_sharing.load_as_pandas(f"{server.profile()}#share1.default.dv", use_delta_format=True)
    assert sorted(frame["id"].tolist()) == dv_table.expected_ids


def test_deletion_vectors_refused_in_parquet_format(server: RunningServer) -> None:
    with pytest.raises(requests.HTTPError, match=r"400 Client Error(.|\n)*UNSUPPORTED_OPERATION"):
        delta_sharing.load_as_pandas(f"{server.profile()}#share1.default.dv", use_delta_format=False)


def test_limit_and_json_predicate_through_client(server: RunningServer, local_tables: dict[str, str]) -> None:
    url = f"{server.profile()}#share1.default.sales"
    hint = (
        '{"op":"equal","children":[{"op":"column","name":"region","valueType":"string"},'
        '{"op":"literal","value":"emea","valueType":"string"}]}'
    )
    frame = delta_sharing.load_as_pandas(url, jsonPredicateHints=hint, use_delta_format=False)
    # The server prunes files; the rows it returns must include every emea row.
    expected_emea = [r["id"] for r in read_expected(local_tables["sales"]) if r["region"] == "emea"]
    assert set(expected_emea) <= set(frame["id"].tolist())
    assert set(frame["region"]) == {"emea"}
    assert len(delta_sharing.load_as_pandas(url, limit=2)) == 2


def test_time_travel_by_version(server: RunningServer, local_tables: dict[str, str]) -> None:
    for version in (0, 1, 2):
        for fmt in (False, True):
            frame = delta_sharing.load_as_pandas(
                f"{server.profile()}#share1.default.sales", version=version, use_delta_format=fmt
            )
            assert _normalize(_rows(frame)) == _normalize(read_expected(local_tables["sales"], version))
