"""The attack matrix against a running server: who may call what, what a file URL or a token lets one reach,
and what bad bodies get. Every refusal must be a clean `{"errorCode","message"}` answer: no traceback, no
server path, no secret."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest

from lakegate.cloud.local import PURPOSE, file_url_payload
from lakegate.keys import KeyRing
from tests.e2e.security.conftest import Target
from tests.e2e.security.fuzzer import Answer, FuzzRequest, Sender, judge, ndjson
from tests.e2e.server import RunningServer, start_server

T = "/shares/{share}/schemas/{schema}/tables/{table}"
SALES = {"share": "share1", "schema": "default", "table": "sales"}
PROTOCOL_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/shares", None),
    ("GET", "/shares/{share}", None),
    ("GET", "/shares/{share}/schemas", None),
    ("GET", "/shares/{share}/schemas/{schema}/tables", None),
    ("GET", "/shares/{share}/all-tables", None),
    ("HEAD", T, None),
    ("GET", T + "/version", None),
    ("GET", T + "/metadata", None),
    ("POST", T + "/query", {}),
    ("POST", T + "/query", {"maxFiles": 1, "includeRefreshToken": True}),
    ("GET", T + "/changes?startingVersion=0", None),
    ("POST", T + "/queries/{query_id}", {}),
    ("POST", T + "/temporary-table-credentials", {}),
]
ADMIN_ROUTES = [
    ("GET", "/recipients", None),
    ("POST", "/recipients", {"name": "mallory", "shares": ["share1"]}),
    ("GET", "/recipients/alice", None),
    ("POST", "/recipients/alice/rotate", {"graceSeconds": 0}),
    ("POST", "/recipients/alice/revoke", None),
    ("PUT", "/recipients/bob/grants/share1", None),
    ("DELETE", "/recipients/alice/grants/share1", None),
    ("GET", "/shares", None),
    ("POST", "/shares", {"name": "mallory"}),
    ("GET", "/shares/share1", None),
    ("DELETE", "/shares/share1", None),
    ("POST", "/shares/share1/tables", {"schema": "default", "name": "etc", "location": "/etc"}),
    ("DELETE", "/shares/share1/schemas/default/tables/sales", None),
    ("GET", "/audit", None),
]
UNAUTHENTICATED = {
    "errorCode": "UNAUTHENTICATED",
    "message": "missing, invalid, expired or revoked bearer token",
}


def _ids(routes: list[tuple[str, str, Any]]) -> list[str]:
    return [f"{m} {p}{' ' + json.dumps(b) if b else ''}" for m, p, b in routes]


def as_answer(response: httpx.Response) -> Answer:
    return Answer(response.status_code, dict(response.headers), response.content, 0.0)


def assert_clean(target: Target, method: str, path: str, answer: Answer, caller: str = "") -> None:
    """No 5xx, errors as `{"errorCode","message"}`, no traceback, secret or server path."""
    request = FuzzRequest(0, method, path, (), None, caller)
    problems = judge(request, answer, target.secrets(), target.server_paths())
    assert not problems, (problems, answer.status, answer.body[:300])


def assert_refused(target: Target, response: httpx.Response, status: int, code: str | None = None) -> dict:
    answer = as_answer(response)
    assert_clean(target, response.request.method, response.request.url.raw_path.decode(), answer)
    assert response.status_code == status, response.text
    if response.request.method == "HEAD":
        assert response.content == b""
        return {}
    body = dict(response.json())
    if code is not None:
        assert body["errorCode"] == code, body
    return body


def call(target: Target, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": headers, "timeout": 30}
    if body is not None:
        kwargs["content" if isinstance(body, bytes) else "json"] = body
    return httpx.request(method, target.endpoint + path, **kwargs)


@pytest.fixture(scope="module")
def async_query(target: Target) -> tuple[str, str]:
    """An async query of alice's on share2.other.plain2 (a table bob may read too): its table path and id."""
    path = T.format(share="share2", schema="other", table="plain2")
    response = call(
        target,
        "POST",
        path + "/query",
        {"idempotency_key": "attack-matrix"},
        {**target.auth("alice"), "delta-sharing-capabilities": "asyncquery=true"},
    )
    assert response.status_code == 200, response.text
    (status,) = [line["queryStatus"] for line in ndjson(response.content) if "queryStatus" in line]
    return path, str(status["queryId"])


# -- who may call what ------------------------------------------------------------------------------------------


def bad_credentials(target: Target) -> dict[str, dict[str, str]]:
    """Every way to hold no valid recipient token: none, made up, revoked, expired, an admin token."""
    return {
        "none": {},
        "wrong": {"Authorization": "Bearer lg_" + "A" * 43},
        "wrong scheme": {"Authorization": f"Basic {target.tokens['alice']}"},
        "revoked": target.auth("revoked"),
        "expired": target.auth("expired"),
        "admin": target.auth("admin"),
    }


@pytest.mark.parametrize(("method", "path", "body"), PROTOCOL_ROUTES, ids=_ids(PROTOCOL_ROUTES))
def test_protocol_routes_refuse_every_bad_credential_alike(
    target: Target, async_query: tuple[str, str], method: str, path: str, body: Any
) -> None:
    url = path.format(**SALES, query_id=async_query[1])
    answers = set()
    for caller, headers in bad_credentials(target).items():
        response = call(target, method, url, body, headers)
        assert_refused(target, response, 401, "UNAUTHENTICATED")
        answers.add((response.status_code, response.content))
        assert method == "HEAD" or response.json() == UNAUTHENTICATED, caller
    assert len(answers) == 1  # nothing tells a revoked or expired token from a made-up one
    # The same request with a valid token is not refused: the 401 above was the credential.
    assert call(target, method, url, body, target.auth("alice")).status_code != 401


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=_ids(ADMIN_ROUTES))
def test_admin_routes_refuse_recipients_and_strangers(
    target: Target, method: str, path: str, body: Any
) -> None:
    callers = {
        **bad_credentials(target),
        "recipient": target.auth("alice"),
        "bootstrap": target.auth("bootstrap"),
    }
    del callers["admin"]
    answers: dict[bool, set[bytes]] = {True: set(), False: set()}
    for headers in callers.values():
        response = httpx.request(method, f"{target.server.base_url}/admin{path}", json=body, headers=headers)
        assert_refused(target, response, 401, "UNAUTHENTICATED")
        answers["Bearer " in headers.get("Authorization", "")].add(response.content)
    # A recipient's (or the configuration's) token is refused exactly as a made-up one.
    assert len(answers[True]) == 1
    # Nothing was changed by the refused calls: alice still reads share1, bob still does not.
    assert call(target, "GET", "/shares/share1", None, target.auth("alice")).status_code == 200
    assert call(target, "GET", "/shares/share1", None, target.auth("bob")).status_code == 404


def test_admin_routes_stay_closed_on_an_anonymous_server(target: Target, tmp_path: Path) -> None:
    """`allowAnonymous` opens the protocol routes to any caller, never the admin API."""
    table = {"name": "plain", "location": target.tables["plain"]}
    shares = [{"name": "share1", "schemas": [{"name": "default", "tables": [table]}]}]
    server = start_server(tmp_path, {"shares": shares, "authorization": {"allowAnonymous": True}}, token=None)
    try:
        assert httpx.get(server.endpoint + "/shares", timeout=30).status_code == 200
        for method, path, body in ADMIN_ROUTES:
            for headers in ({}, {"Authorization": "Bearer anything"}):
                response = httpx.request(method, f"{server.base_url}/admin{path}", json=body, headers=headers)
                assert_refused(target, response, 401, "UNAUTHENTICATED")
    finally:
        server.stop()


def test_operational_routes_tell_strangers_nothing(target: Target) -> None:
    """/healthz, /readyz, /metrics and the OpenAPI document are open (probes, scrapers and tools hold no
    token): no name of a share, table or recipient, no path, no secret in them."""
    call(target, "GET", T.format(**SALES) + "/metadata", None, target.auth("alice"))  # something to count
    openapi = urlsplit(target.endpoint).path + "/openapi.json"
    for path in ("/healthz", "/readyz", "/metrics", openapi):
        response = httpx.get(target.server.base_url + path, timeout=30)
        assert response.status_code == 200
        assert_clean(target, "GET", path, as_answer(response))
        names = ("share1", "share2", "sales", "paged", "plain2", "alice", "bob")
        assert not [name for name in names if name in response.text]


ROUTES_WITH_A_SHARE = [r for r in PROTOCOL_ROUTES if "{share}" in r[1]]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES_WITH_A_SHARE, ids=_ids(ROUTES_WITH_A_SHARE))
def test_an_ungranted_share_is_byte_identical_to_a_missing_one(
    target: Target, async_query: tuple[str, str], method: str, path: str, body: Any
) -> None:
    """bob holds share2 only: share1 must look exactly like a share that does not exist."""

    def answer(share: str) -> tuple[int, str | None, bytes]:
        url = path.format(**{**SALES, "share": share}, query_id=async_query[1])
        response = call(target, method, url, body, target.auth("bob"))
        assert_refused(target, response, 404)
        return response.status_code, response.headers.get("content-type"), response.content

    ungranted, missing = answer("share1"), answer("nosuch")
    assert ungranted == (missing[0], missing[1], missing[2].replace(b"nosuch", b"share1"))


# Names that a lax comparison (SQL LIKE, Unicode case folding, trimming) would take for share1, default, sales.
LOOKALIKES = ["shar%", "share_", "%", "_hare1", "\u017fhare1", "\uff53hare1", "share1\u200b", "share1 ", " share1",
              "share1\t", "sh\u0430re1", "share1\u0301", "share1.", "share1*"]  # fmt: skip


@pytest.mark.parametrize("which", ["target", "pg_target"])
def test_names_that_only_look_like_a_granted_one_are_missing(
    request: pytest.FixtureRequest, which: str
) -> None:
    """On SQLite and PostgreSQL: wildcards, Unicode lookalikes and padding never reach a share, schema or
    table, and an ungranted share in another case is as missing as any other name."""
    target: Target = request.getfixturevalue(which)
    for name in LOOKALIKES:
        paths = [
            f"/shares/{quote(name, safe='')}/all-tables",
            T.format(share=quote(name, safe=""), schema="default", table="sales") + "/version",
            T.format(share="share1", schema=quote(name.replace("share1", "default"), safe=""), table="sales")
            + "/version",
            T.format(share="share1", schema="default", table=quote(name.replace("share1", "sales"), safe=""))
            + "/version",
        ]
        for path in paths:
            assert_refused(
                target, call(target, "GET", path, None, target.auth("alice")), 404, "RESOURCE_DOES_NOT_EXIST"
            )
    for name in ("SHARE1", "Share1"):
        ungranted = call(target, "GET", f"/shares/{name}/all-tables", None, target.auth("bob"))
        missing = call(target, "GET", "/shares/NOSUCH/all-tables", None, target.auth("bob"))
        assert_refused(target, ungranted, 404)
        assert ungranted.content == missing.content.replace(b"NOSUCH", name.encode())
    assert call(target, "GET", "/shares/SHARE1/all-tables", None, target.auth("alice")).status_code == 200


NUL_BODIES = [
    ("/recipients", {"name": "nul-comment", "comment": "a\u0000b"}),
    ("/recipients", {"name": "nul-share", "shares": ["share\u0000"]}),
    ("/shares", {"name": "nul-display", "displayName": "\u0000"}),
    ("/shares", {"name": "nul-comment", "comment": "a\u0000b"}),
    ("/shares", {"name": "nul-key", "properties": {"k\u0000": "v"}}),
    ("/shares", {"name": "nul-value", "properties": {"k": "v\u0000"}}),
    ("/shares", {"name": "nul\u0000"}),
    ("/shares/share1/tables", {"schema": "s\u0000", "name": "t", "location": "/tmp/t"}),
    ("/shares/share1/tables", {"schema": "s", "name": "t", "location": "/tmp/t\u0000"}),
]


@pytest.mark.parametrize("which", ["target", "pg_target"])
def test_nul_characters_are_refused_not_500(request: pytest.FixtureRequest, which: str) -> None:
    """PostgreSQL refuses NUL in text: every way one reaches the database is a 4xx on both databases."""
    target: Target = request.getfixturevalue(which)
    for path, body in NUL_BODIES:
        response = httpx.post(
            f"{target.server.base_url}/admin{path}", json=body, headers=target.auth("admin")
        )
        assert_refused(target, response, 400, "INVALID_PARAMETER_VALUE")
    for query_id in ("a%00b", "%00"):
        response = call(target, "POST", T.format(**SALES) + f"/queries/{query_id}", {}, target.auth("alice"))
        assert_refused(target, response, 404, "RESOURCE_DOES_NOT_EXIST")
    for path in (
        "/shares/a%00b",
        "/shares/share1/schemas/%00/tables",
        T.format(**{**SALES, "table": "%00"}) + "/version",
    ):
        assert_refused(target, call(target, "GET", path, None, target.auth("alice")), 404)
    audit = httpx.get(f"{target.server.base_url}/admin/audit?recipient=a%00b", headers=target.auth("admin"))
    assert (audit.status_code, audit.json()) == (200, {"items": []})


def test_a_query_id_is_only_its_owners(target: Target, async_query: tuple[str, str]) -> None:
    table, query_id = async_query

    def poll(caller: str, query: str, where: str = table) -> httpx.Response:
        return call(target, "POST", f"{where}/queries/{query}", {}, target.auth(caller))

    assert poll("alice", query_id).status_code == 200
    # Another recipient of the same table, and the owner on another table, get what a made-up id gets.
    missing = assert_refused(target, poll("bob", "a" * len(query_id)), 404, "RESOURCE_DOES_NOT_EXIST")
    stolen = assert_refused(target, poll("bob", query_id), 404, "RESOURCE_DOES_NOT_EXIST")
    assert stolen["message"] == missing["message"].replace("a" * len(query_id), query_id)
    moved = poll("alice", query_id, T.format(share="share1", schema="default", table="plain"))
    assert_refused(target, moved, 404, "RESOURCE_DOES_NOT_EXIST")


# -- file URLs: signatures and traversal ------------------------------------------------------------------------


def file_urls(
    target: Target, table: str = "plain", caller: str = "alice", share: str = "share1"
) -> list[str]:
    path = T.format(share=share, schema="default", table=table) + "/query"
    response = call(target, "POST", path, {}, target.auth(caller))
    return [line["file"]["url"] for line in ndjson(response.content) if "file" in line]


def forge(target: Target, table_path: str, relative: str, expires: int) -> str:
    """A signature made with the server's own key: what a leaked or mis-issued signature would be."""
    return KeyRing(target.signing_key.encode()).sign(PURPOSE, file_url_payload(table_path, relative, expires))


def raw_get(
    target: Target, path: str, method: str = "GET", headers: tuple[tuple[str, bytes], ...] = ()
) -> Answer:
    """GET a path byte for byte (httpx would resolve `..` and re-encode escapes before sending)."""
    parts = urlsplit(target.server.base_url)
    sender = Sender(parts.hostname or "", parts.port or 80, 30)
    answer = sender.send(FuzzRequest(0, method, path, headers, None, "none"))
    assert_clean(target, method, path, answer)
    return answer


def test_a_file_url_serves_its_file(target: Target) -> None:
    for url in file_urls(target):
        parts = urlsplit(url)
        relative = unquote(parts.path.split("/files/share1/default/plain/", 1)[1])
        answer = raw_get(target, f"{parts.path}?{parts.query}")
        assert answer.status == 200
        with open(os.path.join(target.tables["plain"], relative), "rb") as data:
            assert answer.body == data.read()


def test_edited_expired_and_cross_table_file_urls_are_refused(target: Target) -> None:
    url = urlsplit(file_urls(target)[0])
    other = urlsplit(file_urls(target, "sales")[0])
    query = dict(p.split("=", 1) for p in url.query.split("&"))
    expires, signature = query["Expires"], query["X-Amz-Signature"]
    others = dict(p.split("=", 1) for p in other.query.split("&"))["X-Amz-Signature"]
    edited = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    path = url.path
    relative = unquote(path.split("/files/share1/default/plain/", 1)[1])
    past = int(time.time()) - 60
    expired = forge(target, "share1/default/plain", relative, past)
    cases = {
        "signature edited": f"{path}?Expires={expires}&X-Amz-Signature={edited}",
        "signature of another file": f"{path}?Expires={expires}&X-Amz-Signature={others}",
        "expiry edited": f"{path}?Expires={int(expires) + 1}&X-Amz-Signature={signature}",
        "no signature": f"{path}?Expires={expires}",
        "no expiry": f"{path}?X-Amz-Signature={signature}",
        "expired": f"{path}?Expires={past}&X-Amz-Signature={expired}",
        # The same signature on another table, even one with the same directory (share2.other.plain2).
        "other table": f"{path.replace('/share1/default/plain/', '/share1/default/paged/')}?{url.query}",
        "same files, other share": f"{path.replace('/share1/default/plain/', '/share2/other/plain2/')}?{url.query}",
        "other file, this signature": f"{path.rsplit('/', 1)[0]}/{other.path.rsplit('/', 1)[1]}?{url.query}",
    }
    for name, target_path in cases.items():
        for method in ("GET", "HEAD"):
            answer = raw_get(target, target_path, method)
            assert answer.status == 403, (name, answer.status, answer.body)
            if method == "GET":
                assert json.loads(answer.body)["errorCode"] == "PERMISSION_DENIED", name


def traversals(target: Target) -> dict[str, str]:
    """Relative paths (as sent, percent-encoded or not) that lead out of the plain table's root."""
    config = target.server.workdir / "lakegate.yaml"
    up_to_config = os.path.relpath(config, target.tables["plain"])
    sales_file = next(p for p in sorted(os.listdir(target.tables["sales"])) if not p.startswith("_"))
    return {
        "dot-dot": up_to_config,
        "encoded dot-dot": up_to_config.replace("..", "%2e%2e"),
        "encoded slashes": up_to_config.replace("/", "%2f"),
        "upper-case escapes": up_to_config.replace("..", "%2E%2E").replace("/", "%2F"),
        "double encoded": up_to_config.replace("..", "%252e%252e").replace("/", "%252f"),
        "backslashes": up_to_config.replace("/", "%5c"),
        "sibling table": f"../sales/{sales_file}",
        "absolute": quote(str(config)),
        "absolute, encoded": quote(str(config), safe=""),
        "log": "_delta_log/../" + up_to_config,
        "nul": "part%00.parquet",
    }


def test_traversal_never_leaves_the_table_root(target: Target) -> None:
    """Even with a valid signature for the path as the server decodes it, no file outside the root is served."""
    expires = int(time.time()) + 600
    for case, sent in traversals(target).items():
        base = f"{urlsplit(target.endpoint).path}/files/share1/default/plain/"
        decoded = unquote(sent)  # what the server's router hands to the handler
        for path in (base + sent, base.replace("/plain/", "/%2e%2e/") + sent):
            signature = forge(target, "share1/default/plain", decoded, expires)
            answer = raw_get(target, f"{path}?Expires={expires}&X-Amz-Signature={signature}")
            assert answer.status in (400, 403, 404), (case, path, answer.status, answer.body[:200])
            assert target.signing_key.encode() not in answer.body and not answer.body.startswith(b"PAR1"), (
                case
            )


def test_symlinks_out_of_the_root_are_not_served(target: Target) -> None:
    """A data file that is a symlink to a file outside the root, and a directory symlink to the server's own
    directory: 404 like a missing file, with nothing of the target in the answer."""
    urls = [urlsplit(u) for u in file_urls(target, "escape", share="links")]
    escape = Path(target.tables["plain"]).parent / "escape"  # built beside the other tables
    statuses = {}
    for url in urls:
        name = unquote(url.path.rsplit("/", 1)[1])
        statuses[(escape / name).is_symlink()] = raw_get(target, f"{url.path}?{url.query}").status
    assert statuses == {True: 404, False: 200}
    expires = int(time.time()) + 600
    base = f"{urlsplit(target.endpoint).path}/files/links/default/escape/"
    for relative in ("up/lakegate.yaml", "up/lakegate.db", "up"):
        signature = forge(target, "links/default/escape", relative, expires)
        answer = raw_get(target, f"{base}{relative}?Expires={expires}&X-Amz-Signature={signature}")
        assert answer.status == 404, (relative, answer.body[:200])
        assert json.loads(answer.body)["errorCode"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_root_reached_through_a_symlink_is_served(target: Target) -> None:
    """The table root itself may be a symlink (a mounted volume): its files are below its real path."""
    urls = file_urls(target, "via_link", share="links")
    assert urls
    for url in map(urlsplit, urls):
        answer = raw_get(target, f"{url.path}?{url.query}")
        assert answer.status == 200 and answer.body.startswith(b"PAR1")


# -- page, refresh and async tokens -----------------------------------------------------------------------------


def _query(
    target: Target,
    table: str,
    body: dict,
    caller: str = "alice",
    share: str = "share1",
    schema: str = "default",
) -> httpx.Response:
    return call(
        target,
        "POST",
        T.format(share=share, schema=schema, table=table) + "/query",
        body,
        target.auth(caller),
    )


def _end_stream(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    (end,) = [line["endStreamAction"] for line in ndjson(response.content) if "endStreamAction" in line]
    return dict(end)


def _file_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [line["file"]["id"] for line in ndjson(response.content) if "file" in line]


def _edited(token: str, **changes: Any) -> str:
    """The token with its payload edited and its signature kept."""
    body, _, signature = token.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    edited = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{edited}.{signature}"


def _forged(token: str) -> str:
    """The token's payload signed with a key that is not the server's."""
    body = token.partition(".")[0]
    return f"{body}.{KeyRing(b'not the server key at all').sign('query-page', body.encode())}"


def test_page_and_refresh_tokens_hold_only_where_they_were_issued(target: Target) -> None:
    first = _end_stream(_query(target, "paged", {"maxFiles": 1, "includeRefreshToken": True}))
    page, refresh = first["nextPageToken"], first["refreshToken"]
    # Reuse is allowed (a client retries a page), and gives the same page.
    again = [_file_ids(_query(target, "paged", {"maxFiles": 1, "pageToken": page})) for _ in range(2)]
    assert again[0] == again[1] and len(again[0]) == 1
    refreshed = _query(target, "paged", {"refreshToken": refresh})
    assert refreshed.status_code == 200
    refusals = [
        _query(target, "plain", {"maxFiles": 1, "pageToken": page}),  # another table
        _query(target, "plain2", {"maxFiles": 1, "pageToken": page}, "bob", "share2", "other"),  # recipient
        _query(target, "paged", {"maxFiles": 1, "pageToken": _edited(page, i=0)}),
        _query(target, "paged", {"maxFiles": 1, "pageToken": _forged(page)}),
        _query(target, "paged", {"maxFiles": 1, "pageToken": page, "predicateHints": ["id > 1"]}),
        _query(target, "paged", {"maxFiles": 1, "pageToken": refresh}),  # one kind of token as another
        _query(target, "paged", {"refreshToken": page}),
        _query(target, "plain", {"refreshToken": refresh}),
        _query(target, "paged", {"refreshToken": _edited(refresh, v=0)}),
        _query(target, "paged", {"refreshToken": _forged(refresh)}),
        _query(target, "paged", {"refreshToken": _edited(refresh, e=1)}),
        call(target, "GET", "/shares?pageToken=" + quote(page), None, target.auth("alice")),
        call(
            target,
            "GET",
            T.format(**SALES) + "/changes?startingVersion=0&pageToken=" + quote(page),
            None,
            target.auth("alice"),
        ),
    ]
    for response in refusals:
        assert_refused(target, response, 400, "INVALID_PARAMETER_VALUE")
    # On a share the caller may not read, the token changes nothing: the table is missing.
    assert_refused(target, _query(target, "paged", {"maxFiles": 1, "pageToken": page}, "bob"), 404)


def test_async_page_tokens_hold_only_for_their_query(target: Target) -> None:
    def submit(table: str, key: str) -> str:
        response = call(
            target,
            "POST",
            T.format(share="share1", schema="default", table=table) + "/query",
            {"idempotency_key": key, "maxFiles": 1},
            {**target.auth("alice"), "delta-sharing-capabilities": "asyncquery=true"},
        )
        (status,) = [line["queryStatus"] for line in ndjson(response.content) if "queryStatus" in line]
        return str(status["queryId"])

    def poll(table: str, query_id: str, body: dict) -> httpx.Response:
        path = T.format(share="share1", schema="default", table=table) + f"/queries/{query_id}"
        for _ in range(100):  # until the background work is done
            response = call(target, "POST", path, body, target.auth("alice"))
            if b"queryStatus" not in response.content:
                return response
            time.sleep(0.1)
        raise AssertionError(f"async query {query_id} did not finish")

    paged, other = submit("paged", "async-tokens-1"), submit("plain", "async-tokens-2")
    token = _end_stream(poll("paged", paged, {"maxFiles": 1}))["nextPageToken"]
    assert len(_file_ids(poll("paged", paged, {"maxFiles": 1, "pageToken": token}))) == 1
    for response in (
        poll("plain", other, {"maxFiles": 1, "pageToken": token}),  # another query
        poll("paged", paged, {"maxFiles": 1, "pageToken": _edited(token, i=0)}),
        poll("paged", paged, {"maxFiles": 1, "pageToken": _forged(token)}),
        _query(target, "paged", {"maxFiles": 1, "pageToken": token}),  # as a /query page token
    ):
        assert_refused(target, response, 400, "INVALID_PARAMETER_VALUE")


def test_list_and_change_tokens_hold_only_where_they_were_issued(target: Target) -> None:
    listing = call(target, "GET", "/shares?maxResults=1", None, target.auth("alice")).json()["nextPageToken"]
    changes = call(
        target, "GET", T.format(**SALES) + "/changes?startingVersion=0&maxFiles=1", None, target.auth("alice")
    )
    change_token = _end_stream(changes)["nextPageToken"]
    plain = T.format(share="share1", schema="default", table="plain")
    refusals = [
        call(target, "GET", "/shares/share1/schemas?pageToken=" + quote(listing), None, target.auth("alice")),
        call(target, "GET", "/shares?pageToken=" + quote(_edited(listing, i=0)), None, target.auth("alice")),
        call(target, "GET", "/shares?pageToken=" + quote(_forged(listing)), None, target.auth("alice")),
        _query(target, "paged", {"maxFiles": 1, "pageToken": listing}),
        call(
            target,
            "GET",
            plain + "/changes?startingVersion=0&maxFiles=1&pageToken=" + quote(change_token),
            None,
            target.auth("alice"),
        ),
        call(
            target,
            "GET",
            T.format(**SALES) + "/changes?startingVersion=1&maxFiles=1&pageToken=" + quote(change_token),
            None,
            target.auth("alice"),
        ),
        call(target, "GET", "/shares?pageToken=" + quote(change_token), None, target.auth("alice")),
    ]
    for response in refusals:
        assert_refused(target, response, 400, "INVALID_PARAMETER_VALUE")


# -- bodies and numbers -----------------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    column, literal = (
        '{"op":"column","name":"id","valueType":"int"}',
        '{"op":"literal","value":"1","valueType":"int"}',
    )
    node = f'{{"op":"equal","children":[{column},{literal}]}}'
    return '{"op":"not","children":[' * depth + node + "]}" * depth


@pytest.mark.parametrize(("depth", "status"), [(10, 200), (98, 200), (99, 400), (1000, 400), (10_000, 400)])
def test_json_predicates_deeper_than_the_bound_are_400(target: Target, depth: int, status: int) -> None:
    """`not` nested `depth` times over `equal(column, literal)`: depth + 2 levels, at most 100 allowed."""
    for hints in (_nested(depth), json.loads(_nested(min(depth, 200)))):  # the protocol's string, and JSON
        response = _query(target, "sales", {"jsonPredicateHints": hints})
        if status == 200:
            assert response.status_code == 200, response.text
        else:
            body = assert_refused(target, response, 400, "INVALID_PARAMETER_VALUE")
            assert "deep" in body["message"] or "depth" in body["message"], body


FREEZERS = {
    "digits in a SQL hint": {"predicateHints": ["id = " + "1" * 20_000 + "x"]},
    "a float in a SQL hint": {"predicateHints": ["amount > 1." + "1" * 20_000 + "e"]},
    "quotes in a SQL hint": {"predicateHints": ["region = '" + "''" * 10_000]},
    "many SQL hints": {"predicateHints": ["id = 1"] * 5000},
    "a timestamp": {"timestamp": "2026-01-01T" + "1" * 20_000 + " 1"},
    "T and spaces in a timestamp": {"timestamp": "T" * 20_000 + " 00"},
    "wide JSON hints": {"jsonPredicateHints": {"op": "and", "children": [json.loads(_nested(0))] * 5000}},
}


@pytest.mark.parametrize("body", list(FREEZERS.values()), ids=list(FREEZERS))
def test_hostile_inputs_are_answered_without_freezing_the_server(target: Target, body: dict) -> None:
    """Inputs that made backtracking regexes or unbounded predicate work hold the GIL for seconds to minutes:
    each is answered, and the server still answers /healthz right after (timeouts far above a normal answer)."""
    response = call(target, "POST", T.format(**SALES) + "/query", body, target.auth("alice"))
    if response.status_code != 200:
        assert_refused(target, response, 400)
    assert httpx.get(f"{target.server.base_url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("value", ["2026-01-01T" + "1" * 20_000 + " 1", "T" * 20_000 + " 00"])
def test_hostile_timestamp_parameters_are_400(target: Target, value: str) -> None:
    routes = [
        (T + "/version", "startingTimestamp"),
        (T + "/changes", "startingTimestamp"),
        (T + "/metadata", "timestamp"),
    ]
    for path, query in routes:
        response = call(
            target, "GET", path.format(**SALES) + f"?{query}={quote(value)}", None, target.auth("alice")
        )
        assert_refused(target, response, 400, "INVALID_PARAMETER_VALUE")
    assert httpx.get(f"{target.server.base_url}/healthz", timeout=5).status_code == 200


BAD_BODIES = [
    b"\xff\xfe\xfd",
    b'{"predicateHints": ["id = \xff"]}',
    b'{"limitHint": 1, "version": 1',
    b"[]",
    b'"maxFiles"',
    b"null",
    b"{" * 10_000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"version": ' + b"9" * 5000 + b"}",
    b'{"maxFiles": NaN}',
    b'{"maxFiles": Infinity}',
    '{"timestamp": "2026-01-01T00:00:00Z"}'.encode("utf-16"),
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=[repr(b[:24]) for b in BAD_BODIES])
def test_broken_bodies_are_400(target: Target, body: bytes) -> None:
    assert_refused(target, _query_raw(target, body), 400, "MALFORMED_REQUEST")


def _query_raw(target: Target, body: bytes) -> httpx.Response:
    return call(target, "POST", T.format(**SALES) + "/query", body, target.auth("alice"))


WRONG_FIELDS: list[tuple[str, Any]] = [
    ("predicateHints", "id = 1"),
    ("predicateHints", [1, 2]),
    ("predicateHints", {"id": 1}),
    ("limitHint", "many"),
    ("limitHint", -1),
    ("limitHint", 1.5),
    ("limitHint", 10**30),
    ("limitHint", [1]),
    ("version", -1),
    ("version", "latest"),
    ("version", 2**63),
    ("version", -(2**63)),
    ("version", 1e308),
    ("version", True),
    ("timestamp", 1700000000000),
    ("timestamp", "yesterday"),
    ("startingVersion", -5),
    ("startingVersion", 10**30),
    ("startingVersion", {}),
    ("endingVersion", -1),
    ("maxFiles", 0),
    ("maxFiles", -1),
    ("maxFiles", 2**31),
    ("maxFiles", "1e3"),
    ("includeRefreshToken", "maybe"),
    ("includeRefreshToken", 2),
    ("includeHistoricalProtocol", []),
    ("includeHistoricalProtocol", 0),
    ("includeRefreshToken", ""),
    ("pageToken", 5),
    ("refreshToken", ["a"]),
    ("idempotency_key", 7),
]


@pytest.mark.parametrize(("field", "value"), WRONG_FIELDS, ids=[f"{f}={v!r}"[:40] for f, v in WRONG_FIELDS])
def test_wrong_types_and_numbers_are_400(target: Target, field: str, value: Any) -> None:
    body = {field: value}
    if field == "endingVersion":
        body["startingVersion"] = 0
    assert_refused(target, _query(target, "sales", body), 400)


BAD_PARAMETERS = [
    ("/shares", "maxResults=-1"),
    ("/shares", "maxResults=99999999999999999999999"),
    ("/shares", "maxResults=ten"),
    ("/shares/share1/all-tables", "maxResults=%C2%B2"),
    (T + "/metadata", "version=-1"),
    (T + "/metadata", "version=1e3"),
    (T + "/metadata", "version=1&timestamp=2026-01-01T00:00:00Z"),
    (T + "/metadata", "timestamp=not-a-time"),
    (T + "/version", "startingTimestamp=not-a-time"),
    (T + "/changes", ""),
    (T + "/changes", "startingVersion=-1"),
    (T + "/changes", "startingVersion=0&endingVersion=-1"),
    (T + "/changes", "startingVersion=" + "9" * 400),
    (T + "/changes", "startingVersion=0&maxFiles=0"),
    (T + "/changes", "startingVersion=0&includeHistoricalMetadata=perhaps"),
    (T + "/changes", "startingVersion=0&startingTimestamp=2026-01-01T00:00:00Z"),
]


@pytest.mark.parametrize(
    ("path", "query"), BAD_PARAMETERS, ids=[f"{p.split('/')[-1]}?{q}"[:50] for p, q in BAD_PARAMETERS]
)
def test_bad_query_parameters_are_400(target: Target, path: str, query: str) -> None:
    response = call(target, "GET", path.format(**SALES) + "?" + query, None, target.auth("alice"))
    assert_refused(target, response, 400)


# -- bodies too large, on every route that reads one -------------------------------------------------------------

BODY_ROUTES = sorted(
    {(m, p.format(**SALES, query_id="some-query"), "alice") for m, p, _ in PROTOCOL_ROUTES if m == "POST"}
) + [(m, "/admin" + p, "admin") for m, p, _ in ADMIN_ROUTES if m in ("POST", "PUT")]


def _declared_body(target: Target, method: str, path: str, length: int, headers: dict[str, str]) -> Answer:
    """Send the head of a request declaring a `length`-byte body, and none of the body: the answer must not
    wait for it."""
    full = target.endpoint + path if not path.startswith("/admin") else target.server.base_url + path
    parts = urlsplit(full)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.putrequest(method, parts.path)
        for name, value in {
            **headers,
            "Content-Type": "application/json",
            "Content-Length": str(length),
        }.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        answer = Answer(response.status, dict(response.getheaders()), response.read(), 0.0)
    finally:
        conn.close()
    assert_clean(target, method, path, answer)
    return answer


@pytest.mark.parametrize(
    ("method", "path", "caller"), BODY_ROUTES, ids=[f"{m} {p}" for m, p, _ in BODY_ROUTES]
)
def test_large_bodies_are_refused_before_they_are_read(
    target: Target, method: str, path: str, caller: str
) -> None:
    stranger = _declared_body(target, method, path, 200 * 1024 * 1024, {})
    assert stranger.status == 401, stranger.body
    declared = _declared_body(target, method, path, 8 * 1024 * 1024, target.auth(caller))
    assert declared.status == 413, declared.body
    assert json.loads(declared.body)["errorCode"] == "MALFORMED_REQUEST"


# -- text logs ---------------------------------------------------------------------------------------------------

FORGED = "2026-01-01 00:00:00,000 INFO lakegate.audit: forged"
LINE_START = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@pytest.fixture(scope="module")
def text_server(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second server on the same tables with `logFormat: text`, the format people read at a terminal."""
    shares = [
        {
            "name": "share1",
            "schemas": [
                {"name": "default", "tables": [{"name": "plain", "location": target.tables["plain"]}]}
            ],
        }
    ]
    server = start_server(tmp_path_factory.mktemp("text-log"), {"shares": shares, "logFormat": "text"})
    yield server
    server.stop()


def test_text_logs_cannot_be_forged(text_server: RunningServer) -> None:
    """Line and paragraph breaks, carriage returns and escape sequences in paths, parameters and headers:
    every line of the log is still one event, starting with its time and level."""
    breaks = ["%0A", "%0D", "%0D%0A", "%E2%80%A8", "%E2%80%A9", "%C2%85", "%0B", "%0C", "%1B%5B2K%0D"]
    table = "/shares/share1/schemas/default/tables/plain"
    for brk in breaks:
        forged = brk + quote(FORGED)
        for method, path in (
            ("GET", f"/shares/x{forged}"),
            ("GET", f"{table}{forged}/version"),
            ("POST", f"{table}/query{forged}"),
            ("GET", f"{table}/changes?startingTimestamp=x{forged}"),
            ("POST", f"/files/share1/default/plain/x{forged}"),
        ):
            for headers in (text_server.headers(), {}):
                httpx.request(method, text_server.endpoint + path, headers=headers, json={}, timeout=30)
        httpx.get(f"{text_server.base_url}/admin/audit?recipient=x{forged}", timeout=30)
    httpx.post(
        text_server.endpoint + table + "/query",
        json={"timestamp": f"x\n{FORGED}", "predicateHints": [f"id = 1\r\n{FORGED}"]},
        headers={**text_server.headers(), "User-Agent": "\x1b[2K" + FORGED},
        timeout=30,
    )
    lines = text_server.daemon.log_path.read_text(errors="replace").splitlines()
    assert any("forged" in line for line in lines)  # the requests were logged
    broken = [line for line in lines if not LINE_START.match(line) and not line.startswith("    ")]
    assert not broken, broken[:5]
    assert not [line for line in lines if line.startswith(FORGED)]


# -- afterwards ------------------------------------------------------------------------------------------------


def test_no_log_line_holds_a_token_or_the_key(target: Target) -> None:
    """Runs last in this module: every request above (and the fuzzer's, when run together) is in the log."""
    log = target.log()
    assert "UNAUTHENTICATED" in log or "401" in log  # the refusals above were logged
    leaked = [line[:200] for line in log.splitlines() if any(s in line for s in target.secrets())]
    assert not leaked, leaked[:5]
