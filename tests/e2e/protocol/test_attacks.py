"""Attacks on a running server that once answered 500s, leaked files or grew without bound (issue 8, item 4)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml

from lakegate.cloud.local import PURPOSE, file_url_payload
from lakegate.keys import KeyRing
from tests.e2e.protocol.test_raw_protocol import T, assert_error, get, ndjson, post
from tests.e2e.server import RunningServer


def _signed_url(
    server: RunningServer, table: str, relative: str, expires: int | None = None, *, dots: str = "."
) -> str:
    """A file URL signed with the server's own key, as the server would sign it for a file in its log."""
    key = yaml.safe_load((server.workdir / "lakegate.yaml").read_text())["tokenSigningKey"]
    expires = expires or int(time.time()) + 600
    table_path = f"share1/default/{table}"
    signature = KeyRing(key.encode()).sign(PURPOSE, file_url_payload(table_path, relative, expires))
    path = quote(relative).replace(".", dots)
    return f"{server.endpoint}/files/{table_path}/{path}?Expires={expires}&X-Amz-Signature={signature}"


def test_a_symlink_out_of_the_table_root_is_not_served(
    server: RunningServer, local_tables: dict[str, str], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("tokenSigningKey: do-not-leak\n")
    root = Path(local_tables["plain"])
    (root / "leak.parquet").symlink_to(secret)
    inside = next(p.name for p in root.iterdir() if p.suffix == ".parquet" and not p.is_symlink())
    (root / "alias.parquet").symlink_to(root / inside)
    try:
        leaked = httpx.get(_signed_url(server, "plain", "leak.parquet"))
        assert_error(leaked, 404, "RESOURCE_DOES_NOT_EXIST")
        assert b"do-not-leak" not in leaked.content
        # A link that stays inside the root is an ordinary file of the table.
        assert httpx.get(_signed_url(server, "plain", "alias.parquet")).content[:4] == b"PAR1"
    finally:
        (root / "leak.parquet").unlink()
        (root / "alias.parquet").unlink()


@pytest.mark.parametrize("expires", ["\u00b2", "1" * 5000, "-1", " 1", "99999999999999999999"])
def test_odd_expires_values_are_refused_not_500(server: RunningServer, expires: str) -> None:
    url = ndjson(post(server, f"{T}/plain/query"))[2]["file"]["url"]
    good = url.split("Expires=")[1].split("&")[0]
    assert_error(
        httpx.get(url.replace(f"Expires={good}", f"Expires={quote(expires)}")), 403, "PERMISSION_DENIED"
    )


def test_non_ascii_signatures_and_tokens_are_refused_not_500(server: RunningServer) -> None:
    url = ndjson(post(server, f"{T}/plain/query"))[2]["file"]["url"]
    signature = url.split("X-Amz-Signature=")[1]
    assert_error(httpx.get(url.replace(signature, quote("\u00e9" * 43))), 403, "PERMISSION_DENIED")
    for token in ("\u00e9.\u00e9", "abc.\u00e9\u00e9", "\u2603"):
        assert_error(post(server, f"{T}/paged/query", {"pageToken": token}), 400, "INVALID_PARAMETER_VALUE")
        assert_error(
            post(server, f"{T}/paged/query", {"refreshToken": token}), 400, "INVALID_PARAMETER_VALUE"
        )
        assert_error(get(server, "/shares", params={"pageToken": token}), 400, "INVALID_PARAMETER_VALUE")
        response = get(server, f"{T}/sales/changes", params={"startingVersion": "0", "pageToken": token})
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def _file(server: RunningServer) -> tuple[str, bytes]:
    url = ndjson(post(server, f"{T}/plain/query"))[2]["file"]["url"]
    return url, httpx.get(url).content


@pytest.mark.parametrize(
    "header", ["items=0-3", "bytes", "bytes=abc", "bytes=5-3", "bytes=0-3,x", "bytes=\u00b2-3"]
)
def test_a_range_the_server_cannot_use_is_ignored(server: RunningServer, header: str) -> None:
    url, whole = _file(server)
    # Raw UTF-8 bytes on purpose: httpx would refuse a non-ASCII str header.
    response = httpx.get(url, headers={"Range": header.encode("utf-8")})  # type: ignore[arg-type]
    assert response.status_code == 200 and response.content == whole


def test_an_unsatisfiable_range_is_416_json(server: RunningServer) -> None:
    url, whole = _file(server)
    for header in (f"bytes={len(whole)}-", f"bytes={len(whole) + 10}-{len(whole) + 20}", "bytes=-0"):
        response = httpx.get(url, headers={"Range": header})
        assert_error(response, 416, "RANGE_NOT_SATISFIABLE")
        assert response.headers["content-range"] == f"bytes */{len(whole)}"


def test_the_satisfiable_ranges_of_a_set_are_served(server: RunningServer) -> None:
    url, whole = _file(server)
    response = httpx.get(url, headers={"Range": f"bytes=0-3,{len(whole) + 5}-"})
    assert response.status_code == 206 and response.content == whole[:4]
    suffix = httpx.get(url, headers={"Range": "bytes=-4"})
    assert suffix.status_code == 206 and suffix.content == whole[-4:]


def test_metric_labels_stay_route_templates(server: RunningServer) -> None:
    marker = os.urandom(6).hex()
    for path in (
        f"/delta-sharing/{marker}",
        f"/delta-sharing/shares/s/{marker}",
        f"/{marker}",
        f"/metrics/{marker}",
    ):
        httpx.get(server.base_url + path, headers=server.headers())
    httpx.request(
        "PROPFIND", server.base_url + "/healthz"
    )  # a method the HTTP parser knows, lakegate does not
    exposition = httpx.get(server.base_url + "/metrics").text
    assert marker not in exposition and "PROPFIND" not in exposition
    assert 'route="unmatched"' in exposition and 'method="OTHER"' in exposition
    assert 'route="/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/query"' in exposition


def test_pathological_hints_and_timestamps_answer_at_once(server: RunningServer) -> None:
    """Inputs that made backtracking regular expressions run for minutes under the GIL (freezing /healthz)."""
    start = time.perf_counter()
    hint = "region = " + "1" * 20_000 + "x"
    answer = post(server, f"{T}/sales/query", {"predicateHints": [hint]})
    assert answer.status_code == 200  # an unusable hint is skipped: every file
    for params in (
        {"startingTimestamp": "2022-04-29T" + "1" * 20_000 + " 02"},
        {"startingTimestamp": "T" * 20_000},
    ):
        assert_error(get(server, f"{T}/sales/changes", params=params), 400, "INVALID_PARAMETER_VALUE")
    body = {"timestamp": "2022-04-29T" + "1" * 20_000 + " 02"}
    assert_error(post(server, f"{T}/sales/query", body), 400, "INVALID_PARAMETER_VALUE")
    assert httpx.get(server.base_url + "/healthz").status_code == 200
    assert time.perf_counter() - start < 10  # a guard against a freeze, not a speed target


def test_date_only_timestamps_are_invalid(server: RunningServer) -> None:
    error = assert_error(
        get(server, f"{T}/sales/changes", params={"startingTimestamp": "2022-04-29"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert error["message"].startswith("Invalid startingTimestamp")
    error = assert_error(
        post(server, f"{T}/sales/query", {"timestamp": "2021-01-01"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert error["message"].startswith("Invalid timestamp")
    response = httpx.head(
        server.endpoint + f"{T}/sales", params={"startingTimestamp": "2021-01-01"}, headers=server.headers()
    )
    assert response.status_code == 400


def test_predicate_work_is_bounded(server: RunningServer) -> None:
    too_many = post(server, f"{T}/sales/query", {"predicateHints": ["region = 'amer'"] * 1001})
    assert "at most 1000" in assert_error(too_many, 400, "INVALID_PARAMETER_VALUE")["message"]
    leaf = {
        "op": "equal",
        "children": [
            {"op": "column", "name": "region", "valueType": "string"},
            {"op": "literal", "value": "amer", "valueType": "string"},
        ],
    }
    tree: dict = leaf
    for _ in range(100):
        tree = {"op": "not", "children": [tree]}
    deep = post(server, f"{T}/sales/query", {"jsonPredicateHints": json.dumps(tree)})
    assert "nested more than 100 levels" in assert_error(deep, 400, "INVALID_PARAMETER_VALUE")["message"]
    wide = {"op": "or", "children": [leaf] * 400}
    assert_error(
        post(server, f"{T}/sales/query", {"jsonPredicateHints": json.dumps(wide)}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


@pytest.mark.parametrize("relative", ["../plain/x.parquet", "a/../../secret", "..", "x\x01.parquet"])
def test_a_signed_path_out_of_the_root_is_404_not_500(server: RunningServer, relative: str) -> None:
    """Even signed with the server's own key, a path with '..' or a control character names no file."""
    url = _signed_url(server, "plain", relative, dots="%2E")  # clients would remove a plain '..' themselves
    assert_error(httpx.get(url), 404, "RESOURCE_DOES_NOT_EXIST")
