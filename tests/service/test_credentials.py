"""Temporary table credentials (protocol.md §2.11) in process: a local table has none to vend."""

from __future__ import annotations

from tests.inprocess import AppClient, error_of


def test_local_tables_vend_no_credentials(app: AppClient) -> None:
    response = app.post("/shares/share1/schemas/default/tables/plain/temporary-table-credentials", json={})
    error_of(response, 400, "UNSUPPORTED_OPERATION")


def test_unknown_table_is_404_before_anything_else(app: AppClient) -> None:
    response = app.post("/shares/share1/schemas/default/tables/nope/temporary-table-credentials", json={})
    error_of(response, 404, "RESOURCE_DOES_NOT_EXIST")
