"""The HTTP layer in process: authentication, routing, error rendering, HEAD answers and signed file URLs."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from tests.inprocess import AppClient, error_of, file_lines, ndjson, served_path

PLAIN = "/shares/share1/schemas/default/tables/plain"


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_recipients_need_the_token(app: AppClient, token: str | None) -> None:
    for path in ("/shares", f"{PLAIN}/version", f"{PLAIN}/metadata"):
        error_of(app.get(path, token=token), 401, "UNAUTHENTICATED")
    refused = app.post(f"{PLAIN}/query", token=token, json={})
    error_of(refused, 401, "UNAUTHENTICATED")
    assert refused.headers["www-authenticate"] == 'Bearer realm="lakegate"'  # RFC 7235 §3.1: a 401 challenges


def test_authentication_comes_before_the_table_lookup(app: AppClient) -> None:
    """An anonymous caller learns nothing about which tables exist."""
    error_of(
        app.get("/shares/share1/schemas/default/tables/nope/version", token=None), 401, "UNAUTHENTICATED"
    )


def test_unknown_endpoint_and_method(app: AppClient) -> None:
    assert "no such endpoint" in error_of(app.get("/nothing/here"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert app.post("/shares").status_code == 405
    assert set(app.post("/shares").json()) == {"errorCode", "message"}


def test_head_errors_have_no_body(app: AppClient) -> None:
    response = app.request("HEAD", "/shares/share1/schemas/default/tables/nope")
    assert response.status_code == 404 and response.content == b""
    response = app.request("HEAD", PLAIN, token=None)
    assert response.status_code == 401 and response.content == b""


def test_health_needs_no_token(app: AppClient) -> None:
    response = app.raw("GET", "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def _signed_url(app: AppClient) -> str:
    (line,) = file_lines(ndjson(app.post(f"{PLAIN}/query", json={})))
    return str(line["url"])


def test_a_signed_url_serves_the_file_without_a_token(app: AppClient, app_tables: dict[str, str]) -> None:
    url = _signed_url(app)
    response = app.raw("GET", url)
    assert response.status_code == 200
    assert response.content == (Path(app_tables["plain"]) / served_path(url)).read_bytes()
    expires = int(parse_qs(urlsplit(url).query)["Expires"][0])
    assert time.time() < expires <= time.time() + 24 * 3600


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_changed_url_is_refused(app: AppClient) -> None:
    url = _signed_url(app)
    expires = parse_qs(urlsplit(url).query)["Expires"][0]
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    changed = [
        _with_query(url, Expires=str(int(expires) + 1)),
        _with_query(url, **{"X-Amz-Signature": signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")}),
        _with_query(url, Expires="soon"),
        url.replace("/plain/", "/paged/"),  # another table's path under the same signature
    ]
    for bad in changed:
        response = app.raw("GET", bad)
        assert response.status_code in (403, 404), bad
        assert set(response.json()) == {"errorCode", "message"}
        assert response.json()["errorCode"] in ("PERMISSION_DENIED", "RESOURCE_DOES_NOT_EXIST")


def test_ndjson_answers_say_so(app: AppClient) -> None:
    response = app.get(f"{PLAIN}/metadata")
    assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    response = app.get("/shares")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
