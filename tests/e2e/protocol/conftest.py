from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.server import RunningServer, start_server
from tests.fixtures.dv_table import DvTable, build_dv_table
from tests.tables import build_partitioned, build_plain


@pytest.fixture(scope="session")
def local_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("tables")
    return {
        "sales": build_partitioned(base / "sales"),
        "plain": build_plain(base / "plain"),
        "paged": build_plain(base / "paged", batches=7),
        "file_uri": "file://" + build_plain(base / "file uri"),
    }


@pytest.fixture(scope="session")
def dv_table(tmp_path_factory: pytest.TempPathFactory) -> DvTable:
    return build_dv_table(tmp_path_factory.mktemp("dv") / "dv", storage="u_prefix")


def shares_config(tables: dict[str, str], dv: DvTable) -> list[dict]:
    return [
        {
            "name": "share1",
            "schemas": [
                {
                    "name": "default",
                    "tables": [
                        {
                            "name": "sales",
                            "location": tables["sales"],
                            "historyShared": True,
                            "id": "00000000-0000-0000-0000-000000000001",
                        },
                        {"name": "plain", "location": tables["plain"]},
                        {"name": "paged", "location": tables["paged"]},
                        {"name": "dv", "location": str(dv.root)},
                    ],
                }
            ],
        },
        {
            "name": "share2",
            "schemas": [
                {"name": "s1", "tables": [{"name": "file_uri", "location": tables["file_uri"]}]},
                {"name": "s2", "tables": [{"name": "plain2", "location": tables["plain"]}]},
            ],
        },
        {"name": "empty_share", "schemas": []},
    ]


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, local_tables: dict[str, str], dv_table: DvTable
) -> Iterator[RunningServer]:
    # The default server: one worker process per core, sharing snapshots (so the official client's tests run
    # across workers: consecutive requests, pages and async polls land on either).
    running = start_server(
        tmp_path_factory.mktemp("server"), {"shares": shares_config(local_tables, dv_table)}, workers=None
    )
    yield running
    running.stop()
