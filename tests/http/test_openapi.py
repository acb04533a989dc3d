"""The served OpenAPI document against the live route table, both ways, and against the OpenAPI 3.1 schema."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import pytest
from openapi_spec_validator import validate
from starlette.routing import BaseRoute, Mount, Route

from tests.inprocess import AppClient, error_of, start_app
from tests.tables import build_plain

_workdirs: dict[int, object] = {}  # the served app's work folder (its database, its table)
_CONVERTER = re.compile(r"\{(\w+):\w+\}")  # {path:path} -> {path}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    work = tmp_path_factory.mktemp("openapi")
    table = {"name": "t", "location": build_plain(work / "t")}
    config = {"shares": [{"name": "quarterly_figures", "schemas": [{"name": "d", "tables": [table]}]}]}
    client = start_app(work, config)
    _workdirs[id(client)] = work
    yield client
    client.close()


def _live(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _live(route.routes, prefix + route.path)
        elif isinstance(route, Route) and route.include_in_schema:
            # HTML pages (recipients' activation pages, the console) are for browsers, not API clients: they
            # are marked include_in_schema=False and are not in the JSON API's description.
            yield _CONVERTER.sub(r"{\1}", prefix + route.path), set(route.methods or ())


def test_the_document_is_public_and_valid_openapi_3_1(served: AppClient) -> None:
    response = served.get("/openapi.json", token=None)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_live_route_is_documented_and_every_documented_operation_is_live(served: AppClient) -> None:
    paths = served.get("/openapi.json", token=None).json()["paths"]
    live: dict[str, set[str]] = {}
    for path, methods in _live(served.app.routes):  # one path may have several routes (GET and POST)
        live.setdefault(path, set()).update(methods)
    assert set(live) == set(paths), set(live) ^ set(paths)
    assert "/delta-sharing/activate/{code}" not in paths  # an HTML route, excluded above on purpose
    for path, methods in live.items():
        documented = {m.upper() for m in paths[path] if m != "parameters"}
        # Starlette answers HEAD wherever it answers GET; HEAD is documented where it means something.
        implicit = {"HEAD"} if "GET" in methods and "HEAD" not in documented else set()
        assert documented == methods - implicit, (path, documented, methods)


def test_the_documented_error_shape_is_what_errors_look_like(served: AppClient) -> None:
    document = served.get("/openapi.json", token=None).json()
    error = document["components"]["schemas"]["Error"]
    message = error_of(served.get("/shares/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert message and set(error["required"]) == set(error["properties"]) == {"errorCode", "message"}


def test_admin_request_bodies_are_the_ones_the_api_parses(served: AppClient) -> None:
    paths = served.get("/openapi.json", token=None).json()["paths"]
    body = paths["/admin/recipients"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"name", "shares", "expiresInSeconds", "comment"} <= set(body["properties"])
    assert body["required"] == ["name"]
    table = paths["/admin/shares/{share}/tables"]["post"]["requestBody"]["content"]["application/json"]
    assert {"schema", "name", "location", "historyShared"} <= set(table["schema"]["properties"])


def test_the_document_describes_no_data(served: AppClient) -> None:
    text = served.get("/openapi.json", token=None).text
    assert served.token is not None and served.token not in text
    assert "quarterly_figures" not in text and str(_workdirs[id(served)]) not in text
