"""Raw protocol checks against a running server: headers, pagination, error bodies and status codes."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.server import RunningServer

T = "/shares/share1/schemas/default/tables"


def get(server: RunningServer, path: str, **kwargs) -> httpx.Response:
    return httpx.get(server.endpoint + path, headers=kwargs.pop("headers", server.headers()), **kwargs)


def post(server: RunningServer, path: str, body=None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", server.headers())
    if isinstance(body, (bytes, str)):
        return httpx.post(server.endpoint + path, headers=headers, content=body, **kwargs)
    return httpx.post(server.endpoint + path, headers=headers, json={} if body is None else body, **kwargs)


def ndjson(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errorCode", "message"} and body["errorCode"] == code and body["message"]
    return body


# -- authentication ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}],
)
def test_missing_or_wrong_token_is_401(server: RunningServer, headers: dict) -> None:
    assert_error(get(server, "/shares", headers=headers), 401, "UNAUTHENTICATED")
    assert_error(post(server, f"{T}/sales/query", headers=headers), 401, "UNAUTHENTICATED")


# -- discovery and pagination -----------------------------------------------------------------------------------


def test_list_pagination_visits_every_item_once(server: RunningServer) -> None:
    for path, expected in [
        ("/shares", ["share1", "share2", "empty_share"]),
        ("/shares/share1/all-tables", ["sales", "plain", "paged", "dv"]),
        ("/shares/share2/schemas", ["s1", "s2"]),
    ]:
        for size in (1, 2, 3):
            seen, token = [], None
            while True:
                params = {"maxResults": size, **({"pageToken": token} if token else {})}
                body = get(server, path, params=params).json()
                assert len(body.get("items", [])) <= size
                seen += [item["name"] for item in body.get("items", [])]
                token = body.get("nextPageToken")
                if not token:
                    break
            assert seen == expected, (path, size)


def test_list_responses_and_shapes(server: RunningServer) -> None:
    response = get(server, "/shares")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert "nextPageToken" not in response.json()
    assert get(server, "/shares/SHARE1").json() == {"share": {"name": "share1"}}
    tables = get(server, "/shares/share1/schemas/default/tables").json()["items"]
    sales = next(t for t in tables if t["name"] == "sales")
    assert sales == {
        "name": "sales",
        "schema": "default",
        "share": "share1",
        "id": "00000000-0000-0000-0000-000000000001",
        "accessModes": ["url"],
    } or {k: sales[k] for k in ("name", "schema", "share", "id")} == {
        "name": "sales",
        "schema": "default",
        "share": "share1",
        "id": "00000000-0000-0000-0000-000000000001",
    }
    assert get(server, "/shares/empty_share/schemas").json().get("items", []) == []
    zero = get(server, "/shares", params={"maxResults": 0}).json()
    assert zero.get("items", []) == [] and zero.get("nextPageToken")


@pytest.mark.parametrize(
    "params",
    [
        {"maxResults": -1},
        {"maxResults": 501},
        {"maxResults": "abc"},
        {"pageToken": "garbage"},
        {"pageToken": "e30.AAAA"},
    ],
)
def test_bad_list_parameters_are_400(server: RunningServer, params: dict) -> None:
    assert_error(get(server, "/shares", params=params), 400, "INVALID_PARAMETER_VALUE")


def test_page_token_is_bound_to_its_listing(server: RunningServer) -> None:
    token = get(server, "/shares", params={"maxResults": 1}).json()["nextPageToken"]
    assert_error(
        get(server, "/shares/share2/schemas", params={"pageToken": token}), 400, "INVALID_PARAMETER_VALUE"
    )
    edited = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_error(get(server, "/shares", params={"pageToken": edited}), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    "path",
    [
        "/shares/nope",
        "/shares/nope/schemas",
        "/shares/share1/schemas/nope/tables",
        "/shares/nope/all-tables",
        f"{T}/nope/version",
        f"{T}/nope/metadata",
        "/shares/share1/schemas/nope/tables/sales/metadata",
        "/no/such/route",
    ],
)
def test_unknown_names_are_404(server: RunningServer, path: str) -> None:
    assert_error(get(server, path), 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_table_query_is_404(server: RunningServer) -> None:
    assert_error(post(server, f"{T}/nope/query"), 404, "RESOURCE_DOES_NOT_EXIST")


# -- version and metadata ---------------------------------------------------------------------------------------


def test_version_get_and_head(server: RunningServer) -> None:
    response = get(server, f"{T}/SALES/version")
    assert (
        response.status_code == 200
        and response.headers["delta-table-version"] == "3"
        and response.content == b""
    )
    head = httpx.head(server.endpoint + f"{T}/sales", headers=server.headers())
    assert head.status_code == 200 and head.headers["delta-table-version"] == "3"
    assert httpx.head(server.endpoint + f"{T}/nope", headers=server.headers()).status_code == 404
    assert (
        get(server, f"{T}/sales/version", params={"startingTimestamp": "2000-01-01T00:00:00Z"}).headers[
            "delta-table-version"
        ]
        == "0"
    )
    assert_error(
        get(server, f"{T}/sales/version", params={"startingTimestamp": "yesterday"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        get(server, f"{T}/plain/version", params={"startingTimestamp": "2000-01-01T00:00:00Z"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_metadata_parquet_and_delta(server: RunningServer) -> None:
    response = get(server, f"{T}/sales/metadata")
    assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    assert response.headers["delta-table-version"] == "3"
    assert response.headers["delta-sharing-capabilities"] == "responseformat=parquet"
    protocol, metadata = ndjson(response)
    assert protocol == {"protocol": {"minReaderVersion": 1}}
    meta = metadata["metaData"]
    assert meta["format"] == {"provider": "parquet"} and meta["partitionColumns"] == ["region"]
    assert meta["configuration"] == {"enableChangeDataFeed": "true"}
    assert [f["name"] for f in json.loads(meta["schemaString"])["fields"]] == [
        "id",
        "region",
        "amount",
        "day",
        "note",
    ]
    delta = get(
        server,
        f"{T}/sales/metadata",
        headers=server.headers(
            **{"delta-sharing-capabilities": "responseformat=delta;readerfeatures=deletionvectors"}
        ),
    )
    assert delta.headers["delta-sharing-capabilities"] == "responseformat=delta"
    protocol, metadata = ndjson(delta)
    assert protocol["protocol"]["deltaProtocol"]["minReaderVersion"] >= 1
    assert metadata["metaData"]["deltaMetadata"]["configuration"]["delta.enableChangeDataFeed"] == "true"
    assert metadata["metaData"]["deltaMetadata"]["format"]["options"] == {}


def test_dv_table_needs_delta_format_with_the_feature(server: RunningServer) -> None:
    assert_error(get(server, f"{T}/dv/metadata"), 400, "UNSUPPORTED_OPERATION")
    no_feature = {"delta-sharing-capabilities": "responseformat=delta"}
    assert_error(
        post(server, f"{T}/dv/query", headers=server.headers(**no_feature)), 400, "UNSUPPORTED_OPERATION"
    )
    auto = get(
        server,
        f"{T}/dv/metadata",
        headers=server.headers(
            **{"delta-sharing-capabilities": "responseformat=delta,parquet;readerfeatures=deletionvectors"}
        ),
    )
    assert auto.headers["delta-sharing-capabilities"] == "responseformat=delta"


# -- query ------------------------------------------------------------------------------------------------------


def test_query_lines_and_headers(server: RunningServer) -> None:
    response = post(server, f"{T}/paged/query")
    assert response.headers["delta-table-version"] == "6"
    lines = ndjson(response)
    assert list(lines[0]) == ["protocol"] and list(lines[1]) == ["metaData"]
    files = [line["file"] for line in lines[2:]]
    assert len(files) == 7 and all(list(line) == ["file"] for line in lines[2:])
    for f in files:
        assert f["partitionValues"] == {} and isinstance(f["stats"], str) and f["size"] > 0
        assert f["expirationTimestamp"] > 0 and len(f["id"]) == 32
    assert len({f["id"] for f in files}) == 7


def test_no_end_stream_action_unless_asked(server: RunningServer) -> None:
    lines = ndjson(post(server, f"{T}/paged/query", {"limitHint": 1}))
    assert all("endStreamAction" not in line for line in lines)
    asked = post(
        server,
        f"{T}/paged/query",
        headers=server.headers(**{"delta-sharing-capabilities": "includeendstreamaction=true"}),
    )
    assert asked.headers["delta-sharing-capabilities"] == "responseformat=parquet;includeendstreamaction=true"
    last = ndjson(asked)[-1]["endStreamAction"]
    assert last["minUrlExpirationTimestamp"] > 0 and "nextPageToken" not in last


def test_max_files_pages_cover_every_file_once(server: RunningServer) -> None:
    everything = {line["file"]["id"] for line in ndjson(post(server, f"{T}/paged/query"))[2:]}
    for size in (1, 3, 7, 10):
        seen, token = [], None
        while True:
            body = {"maxFiles": size, **({"pageToken": token} if token else {})}
            lines = ndjson(post(server, f"{T}/paged/query", body))
            end = lines[-1]["endStreamAction"]
            seen += [line["file"]["id"] for line in lines[2:-1]]
            token = end.get("nextPageToken")
            if not token:
                break
        assert sorted(seen) == sorted(everything)


def test_refresh_token_gives_same_files(server: RunningServer) -> None:
    first = ndjson(post(server, f"{T}/paged/query", {"includeRefreshToken": True}))
    token = first[-1]["endStreamAction"]["refreshToken"]
    again = ndjson(post(server, f"{T}/paged/query", {"refreshToken": token}))
    assert {line["file"]["id"] for line in first[2:-1]} == {line["file"]["id"] for line in again[2:]} or {
        line["file"]["id"] for line in first[2:-1]
    } == {line["file"]["id"] for line in again[2:-1]}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "MALFORMED_REQUEST"),
        (b"[1,2]", "MALFORMED_REQUEST"),
        ({"predicateHints": "x"}, "MALFORMED_REQUEST"),
        ({"version": -1}, "INVALID_PARAMETER_VALUE"),
        ({"version": "abc"}, "INVALID_PARAMETER_VALUE"),
        ({"limitHint": -5}, "INVALID_PARAMETER_VALUE"),
        ({"maxFiles": 0}, "INVALID_PARAMETER_VALUE"),
        ({"version": 1, "timestamp": "2020-01-01T00:00:00Z"}, "INVALID_PARAMETER_VALUE"),
        ({"version": 99}, "MALFORMED_REQUEST"),
        ({"pageToken": "bogus"}, "INVALID_PARAMETER_VALUE"),
        ({"refreshToken": "bogus"}, "INVALID_PARAMETER_VALUE"),
        ({"version": True}, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_bad_query_bodies_are_4xx(server: RunningServer, body, code: str) -> None:
    assert_error(post(server, f"{T}/sales/query", body), 400, code)


def test_history_params_refused_without_history_sharing(server: RunningServer) -> None:
    body = assert_error(post(server, f"{T}/plain/query", {"version": 0}), 400, "INVALID_PARAMETER_VALUE")
    assert "share1.default.plain" in body["message"]


def test_broken_json_predicate_means_no_filtering(server: RunningServer) -> None:
    all_files = len(ndjson(post(server, f"{T}/sales/query"))) - 2
    for hint in ["{not json", '{"op":"nope"}', '{"op":"equal","children":[]}']:
        assert len(ndjson(post(server, f"{T}/sales/query", {"jsonPredicateHints": hint}))) - 2 == all_files


def test_fileidhash_header(server: RunningServer) -> None:
    response = post(server, f"{T}/paged/query", headers=server.headers(fileidhash="DELTA"))
    assert response.headers["fileidhash"] == "delta"
    assert all(len(line["file"]["id"]) == 64 for line in ndjson(response)[2:])
    assert_error(
        post(server, f"{T}/paged/query", headers=server.headers(fileidhash="sha1")),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# -- signed file URLs of local tables ---------------------------------------------------------------------------


def test_local_file_urls(server: RunningServer) -> None:
    url = ndjson(post(server, f"{T}/plain/query"))[2]["file"]["url"]
    full = httpx.get(url)
    assert full.status_code == 200 and full.content[:4] == b"PAR1"
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(full.content)
    ranged = httpx.get(url, headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"PAR1"
    assert_error(httpx.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=x")), 403, "PERMISSION_DENIED")
    other = url.replace("/plain/", "/paged/", 1)
    assert_error(httpx.get(other), 403, "PERMISSION_DENIED")
    expires = url.split("Expires=")[1].split("&")[0]
    assert_error(httpx.get(url.replace(f"Expires={expires}", "Expires=1")), 403, "PERMISSION_DENIED")
