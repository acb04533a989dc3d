"""Listing shares, schemas and tables (protocol.md §2.1–2.5) in process, against the configuration."""

from __future__ import annotations

from typing import Any

import pytest

from tests.inprocess import SALES_ID, AppClient, error_of

SHARE1_TABLES = ["sales", "plain", "paged", "dv", "cdf", "odd"]


def all_pages(app: AppClient, path: str, page_size: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"maxResults": page_size}
    for _ in range(20):
        response = app.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body.get("items", [])) <= page_size
        items += body.get("items", [])
        if not body.get("nextPageToken"):
            return items
        params = {"maxResults": page_size, "pageToken": body["nextPageToken"]}
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("page_size", [1, 2, 100])
def test_pages_list_every_share_once(app: AppClient, page_size: int) -> None:
    names = [item["name"] for item in all_pages(app, "/shares", page_size)]
    assert sorted(names) == ["empty_share", "share1", "share2"]


@pytest.mark.parametrize("page_size", [1, 4, 100])
def test_pages_list_every_table_once(app: AppClient, page_size: int) -> None:
    items = all_pages(app, "/shares/share1/all-tables", page_size)
    assert sorted(item["name"] for item in items) == sorted(SHARE1_TABLES)
    assert {(item["share"], item["schema"]) for item in items} == {("share1", "default")}
    assert [item["id"] for item in items if item["name"] == "sales"] == [SALES_ID]
    assert all_pages(app, "/shares/share1/schemas/default/tables", page_size) == items


def test_share_and_schemas(app: AppClient) -> None:
    assert app.get("/shares/share2").json()["share"]["name"] == "share2"
    assert [s["name"] for s in app.get("/shares/share2/schemas").json()["items"]] == ["s1"]
    assert app.get("/shares/empty_share/schemas").json().get("items", []) == []
    tables = app.get("/shares/share2/schemas/s1/tables").json()["items"]
    assert [(t["name"], t["share"], t["schema"]) for t in tables] == [("plain", "share2", "s1")]


@pytest.mark.parametrize(
    "path",
    [
        "/shares/nope",
        "/shares/nope/schemas",
        "/shares/share1/schemas/nope/tables",
        "/shares/nope/all-tables",
        "/shares/share1/schemas/default/tables/nope/version",
        "/shares/share1/schemas/default/tables/nope/metadata",
    ],
)
def test_unknown_names_are_404(app: AppClient, path: str) -> None:
    error_of(app.get(path), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize(
    "params",
    [{"maxResults": "abc"}, {"maxResults": -1}, {"pageToken": "not-a-token"}, {"pageToken": "eyJ9.c2ln"}],
)
def test_bad_list_parameters_are_400(app: AppClient, params: dict[str, Any]) -> None:
    error_of(app.get("/shares", params=params), 400, "INVALID_PARAMETER_VALUE")


def test_a_page_token_is_bound_to_its_listing(app: AppClient) -> None:
    token = app.get("/shares/share1/all-tables", params={"maxResults": 1}).json()["nextPageToken"]
    response = app.get("/shares", params={"maxResults": 1, "pageToken": token})
    error_of(response, 400, "INVALID_PARAMETER_VALUE")
