"""Route labels for metrics: names become placeholders, so label values stay few."""

from __future__ import annotations

import pytest

from lakegate.http.observability import route_label


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/delta-sharing/shares", "/delta-sharing/shares"),
        ("/delta-sharing/shares/s", "/delta-sharing/shares/{share}"),
        ("/delta-sharing/shares/s/all-tables", "/delta-sharing/shares/{share}/all-tables"),
        (
            "/delta-sharing/shares/s/schemas/d/tables/t/query",
            "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/query",
        ),
        ("/delta-sharing/shares/schemas/schemas", "/delta-sharing/shares/{share}/schemas"),
        (
            "/delta-sharing/shares/s/schemas/d/tables/files/queries/q1",
            "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/queries/{queryId}",
        ),
        ("/delta-sharing/files/s/d/t/part-0.parquet", "/delta-sharing/files/{path}"),
        ("/admin/recipients/alice/grants/s", "/admin/recipients/{recipient}/grants/{share}"),
        ("/metrics", "/metrics"),
        ("/delta-sharing/iceberg/v1/config", "/delta-sharing/iceberg/v1/config"),
        ("/delta-sharing/iceberg/v1/sales/namespaces", "/delta-sharing/iceberg/v1/{prefix}/namespaces"),
        (
            "/delta-sharing/iceberg/v1/sales/namespaces/d/tables/t/credentials",
            "/delta-sharing/iceberg/v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials",
        ),
        # The route template labels the same way (names after `tables` are placeholders): still one label.
        (
            "/delta-sharing/iceberg/v1/sales/tables/rename",
            "/delta-sharing/iceberg/v1/{prefix}/tables/{table}",
        ),
    ],
)
def test_route_label(path: str, label: str) -> None:
    assert route_label(path) == label
