"""The Iceberg REST catalog's routes in process: configuration, namespaces, table listings, the error model,
authentication, grants and the refusal of every write. Reading tables with PyIceberg is
tests/e2e/integration/test_iceberg_pyiceberg.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lakegate.catalog.recipients import Recipients
from tests.inprocess import AppClient, start_app
from tests.tables import build_plain

BASE = "/iceberg/v1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    """share1: schemas a (tables t1, t2, t3) and b (t1); share2: schema c (t1); odd#share%41: schema d (t1);
    alice may read share2 only."""
    work = tmp_path_factory.mktemp("iceberg-routes")
    location = build_plain(work / "t")

    def tables(*names: str) -> list[dict[str, str]]:
        return [{"name": n, "location": location} for n in names]

    config = {
        "shares": [
            {
                "name": "share1",
                "schemas": [
                    {"name": "a", "tables": tables("t1", "t2", "t3")},
                    {"name": "b", "tables": tables("t1")},
                ],
            },
            {"name": "share2", "schemas": [{"name": "c", "tables": tables("t1")}]},
            {"name": "odd#share%41", "schemas": [{"name": "d", "tables": tables("t1")}]},
        ]
    }
    client = start_app(work, config)
    yield client
    client.close()


@pytest.fixture(scope="module")
def alice(served: AppClient) -> str:
    return Recipients(served.app.state.services.catalog.db).create("alice", ["share2"]).token


def iceberg_error(response: httpx.Response, status: int, kind: str) -> str:
    """The message of an error in the Iceberg REST error model, after checking its shape, status and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}, body
    assert (body["error"]["code"], body["error"]["type"]) == (status, kind), body
    return str(body["error"]["message"])


def test_config_names_the_share_as_prefix_and_lists_only_read_endpoints(served: AppClient) -> None:
    answer = served.get(f"{BASE}/config?warehouse=share1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["overrides"]["prefix"] == "share1"
    assert "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}" in body["endpoints"]
    assert not [e for e in body["endpoints"] if e.split()[0] in ("POST", "DELETE")]
    assert "warehouse" in iceberg_error(served.get(f"{BASE}/config"), 400, "BadRequestException")
    iceberg_error(served.get(f"{BASE}/config?warehouse=nope"), 404, "NotFoundException")


def test_the_prefix_is_one_path_segment_whatever_the_share_is_named(served: AppClient) -> None:
    """Clients paste the prefix into their paths unchanged: a share name with '#' or '%' comes percent-encoded."""
    prefix = served.get(f"{BASE}/config", params={"warehouse": "odd#share%41"}).json()["overrides"]["prefix"]
    assert "#" not in prefix and "%41" not in prefix
    answer = served.get(f"{BASE}/{prefix}/namespaces")
    assert answer.status_code == 200, answer.text
    assert answer.json()["namespaces"] == [["d"]]
    assert served.get(f"{BASE}/{prefix}/namespaces/d/tables/t1").json()["metadata"]["format-version"] == 2


def test_namespaces_are_the_shares_schemas(served: AppClient) -> None:
    listed = served.get(f"{BASE}/share1/namespaces")
    assert listed.status_code == 200 and listed.json() == {"namespaces": [["a"], ["b"]]}
    assert served.get(f"{BASE}/share1/namespaces?parent=a").json() == {"namespaces": []}
    loaded = served.get(f"{BASE}/share1/namespaces/b")
    assert loaded.json() == {"namespace": ["b"], "properties": {}}
    assert served.request("HEAD", f"{BASE}/share1/namespaces/b").status_code == 204
    assert served.request("HEAD", f"{BASE}/share1/namespaces/c").status_code == 404
    iceberg_error(served.get(f"{BASE}/share1/namespaces/c"), 404, "NoSuchNamespaceException")
    iceberg_error(served.get(f"{BASE}/share1/namespaces/a%1Fx"), 404, "NoSuchNamespaceException")
    iceberg_error(served.get(f"{BASE}/share1/namespaces?parent=zz"), 404, "NoSuchNamespaceException")


def test_tables_are_listed_and_found_per_namespace(served: AppClient) -> None:
    listed = served.get(f"{BASE}/share1/namespaces/a/tables").json()
    assert listed == {"identifiers": [{"namespace": ["a"], "name": n} for n in ("t1", "t2", "t3")]}
    assert served.request("HEAD", f"{BASE}/share1/namespaces/a/tables/t2").status_code == 204
    assert served.request("HEAD", f"{BASE}/share1/namespaces/b/tables/t2").status_code == 404
    iceberg_error(served.get(f"{BASE}/share1/namespaces/b/tables/t2"), 404, "NoSuchTableException")
    iceberg_error(served.get(f"{BASE}/share1/namespaces/zz/tables/t1"), 404, "NoSuchNamespaceException")
    iceberg_error(served.get(f"{BASE}/share1/namespaces/zz/tables"), 404, "NoSuchNamespaceException")


def test_pages_follow_next_page_token_when_the_client_pages(served: AppClient) -> None:
    names, token = [], ""
    for _ in range(5):
        page = served.get(f"{BASE}/share1/namespaces/a/tables", params={"pageToken": token, "pageSize": 2})
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["identifiers"]) <= 2
        names += [i["name"] for i in body["identifiers"]]
        token = body.get("next-page-token")
        if not token:
            break
    assert names == ["t1", "t2", "t3"]
    first = served.get(f"{BASE}/share1/namespaces", params={"pageSize": 1}).json()
    assert first["namespaces"] == [["a"]] and first["next-page-token"]
    iceberg_error(served.get(f"{BASE}/share1/namespaces?pageSize=0"), 400, "BadRequestException")
    iceberg_error(served.get(f"{BASE}/share1/namespaces?pageToken=forged"), 400, "BadRequestException")


def test_tokens_are_required_and_checked(served: AppClient) -> None:
    for token in (None, "wrong"):
        for method, path in (("GET", "/config?warehouse=share1"), ("GET", "/share1/namespaces")):
            iceberg_error(served.request(method, BASE + path, token=token), 401, "NotAuthorizedException")
        # A stranger's write is refused as unauthenticated, before the catalog says it is read-only.
        refused = served.post(f"{BASE}/share1/namespaces/a/tables/t1", token=token, json={})
        iceberg_error(refused, 401, "NotAuthorizedException")


def test_an_ungranted_share_is_as_absent_as_a_missing_one(served: AppClient, alice: str) -> None:
    assert served.get(f"{BASE}/share2/namespaces", token=alice).json() == {"namespaces": [["c"]]}
    for share in ("share1", "nope"):
        missing = [
            served.get(f"{BASE}/config?warehouse={share}", token=alice),
            served.get(f"{BASE}/{share}/namespaces", token=alice),
            served.get(f"{BASE}/{share}/namespaces/a/tables", token=alice),
        ]
        assert [r.status_code for r in missing] == [404, 404, 404]
        table = served.get(f"{BASE}/{share}/namespaces/a/tables/t1", token=alice)
        iceberg_error(table, 404, "NotFoundException")  # no such warehouse
    ungranted = served.get(f"{BASE}/share1/namespaces/a/tables/t1", token=alice).json()
    nonexistent = served.get(f"{BASE}/nope/namespaces/a/tables/t1", token=alice).json()
    assert ungranted["error"]["message"].replace("share1", "nope") == nonexistent["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/share1/namespaces"),
        ("DELETE", "/share1/namespaces/a"),
        ("POST", "/share1/namespaces/a/properties"),
        ("POST", "/share1/namespaces/a/register"),
        ("POST", "/share1/namespaces/a/tables"),
        ("POST", "/share1/namespaces/a/tables/t1"),
        ("DELETE", "/share1/namespaces/a/tables/t1"),
        ("POST", "/share1/tables/rename"),
        ("POST", "/share1/transactions/commit"),
    ],
)
def test_every_write_is_refused_as_read_only(served: AppClient, method: str, path: str) -> None:
    message = iceberg_error(served.request(method, BASE + path, json={}), 403, "ForbiddenException")
    assert "read-only" in message


def test_unknown_routes_answer_in_the_iceberg_error_model(served: AppClient, tmp_path: Path) -> None:
    iceberg_error(served.get(f"{BASE}/share1/views"), 404, "NotFoundException")
    iceberg_error(served.request("PUT", f"{BASE}/share1/namespaces"), 405, "BadRequestException")
    # A name that decodes to '/' or ends in one is no route (not a redirect to the list it would strip to).
    for path in ("namespaces/default/tables/%2F", "namespaces/default/tables/", "namespaces/%2F"):
        iceberg_error(served.get(f"{BASE}/share1/{path}"), 404, "NotFoundException")


def test_load_table_of_a_local_table_needs_no_credentials(served: AppClient) -> None:
    delegation = {"X-Iceberg-Access-Delegation": "vended-credentials"}
    answer = served.get(f"{BASE}/share1/namespaces/a/tables/t1", headers=delegation)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"metadata-location", "metadata", "config"} and body["config"] == {}
    assert body["metadata"]["format-version"] == 2 and body["metadata-location"].startswith("file:///")
    assert answer.headers["cache-control"] == "no-store"
    credentials = served.get(f"{BASE}/share1/namespaces/a/tables/t1/credentials")
    assert credentials.json() == {"storage-credentials": []}


def test_basic_credentials_are_accepted_as_on_the_sharing_routes(served: AppClient) -> None:
    password = Recipients(served.app.state.services.catalog.db).create("erin", ["share2"], auth="basic").token
    auth = httpx.BasicAuth("erin", password)
    answer = served.get(f"{BASE}/share2/namespaces", token=None, auth=auth)
    assert answer.status_code == 200 and answer.json() == {"namespaces": [["c"]]}
    wrong = served.get(f"{BASE}/share2/namespaces", token=None, auth=httpx.BasicAuth("erin", "nope"))
    iceberg_error(wrong, 401, "NotAuthorizedException")
