"""The console and activation pages in process (no browser): the session cookie, CSRF, headers, escaping, the
audit trail and the one-time links. The browser journey is tests/e2e/test_console_browser.py."""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakegate.catalog.activations import ActivationLinks
from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.recipients import Recipients
from lakegate.catalog.shares import Shares
from tests.auth.keys import ec_pair
from tests.inprocess import AppClient, start_app
from tests.services.postgres import PostgresService
from tests.tables import build_plain

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LINK = re.compile(r'id="activation-link" class="mono" value="([^"]+)"')


class Browser:
    """An httpx client with a cookie jar, as a browser without JavaScript uses the console."""

    def __init__(self, app: AppClient) -> None:
        self.app = app
        self.http = app.new_http()

    @property
    def cookies(self) -> httpx.Cookies:
        return self.http.cookies

    def go(self, method: str, url: str, **kwargs) -> httpx.Response:
        return self.app.run(self.http.request(method, url, **kwargs))

    def csrf(self, url: str) -> str:
        found = CSRF.search(self.go("GET", url).text)
        assert found, url
        return found.group(1)

    def post_form(self, url: str, form_page: str, **fields: str | list[str]) -> httpx.Response:
        return self.go("POST", url, data={"csrf": self.csrf(form_page), **fields})

    def sign_in(self, token: str) -> httpx.Response:
        return self.post_form("/console/sign-in", "/console/sign-in", token=token)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppClient, Database, str, str]]:
    work = tmp_path_factory.mktemp("console")
    table = build_plain(work / "table")
    client = start_app(
        work,
        {
            "console": {"enabled": True},
            "activationLinks": {"providerName": "Acme Data", "contact": "data@acme.test"},
        },
    )
    db = client.app.state.services.catalog.db
    _, admin = AdminTokens(db).create("ops")
    yield client, db, admin, table
    client.close()


def _signed_in(console) -> Browser:
    client, _, admin, _ = console
    browser = Browser(client)
    assert browser.sign_in(admin).status_code == 303
    return browser


def test_the_console_is_404_when_disabled(tmp_path: Path) -> None:
    client = start_app(tmp_path, {})
    try:
        for path in ("/console", "/console/", "/console/sign-in", "/console/shares", "/console/lakegate.css"):
            assert client.raw("GET", path).status_code == 404, path
        assert client.raw("POST", "/console/sign-in", data={"token": "x"}).status_code == 404
    finally:
        client.close()


def test_sign_in_gives_a_signed_http_only_strict_session_cookie(console) -> None:
    client, _, admin, _ = console
    browser = Browser(client)
    assert browser.go("GET", "/console/shares").headers["location"] == "/console/sign-in"
    answer = browser.sign_in(admin)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/shares"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Max-Age=" in cookie and "Secure" not in cookie  # plain HTTP here; Secure over TLS
    assert admin not in cookie
    page = browser.go("GET", "/console/shares")
    assert page.status_code == 200 and "Signed in as" in page.text and "ops" in page.text
    # A cookie whose signature does not match is no session.
    value = browser.cookies["lakegate_console"]
    forged = Browser(client)
    forged.cookies.set("lakegate_console", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert forged.go("GET", "/console/shares").status_code == 303


def test_a_wrong_admin_token_is_refused(console) -> None:
    client, *_ = console
    browser = Browser(client)
    answer = browser.sign_in("lg_not-a-token")
    assert answer.headers["location"] == "/console/sign-in"
    page = browser.go("GET", "/console/sign-in")
    assert "not valid" in page.text
    assert browser.go("GET", "/console/shares").status_code == 303  # still signed out


def test_a_revoked_admin_token_ends_its_sessions(console) -> None:
    client, db, _, _ = console
    _, token = AdminTokens(db).create("temp")
    browser = Browser(client)
    browser.sign_in(token)
    assert browser.go("GET", "/console/recipients").status_code == 200
    AdminTokens(db).revoke("temp")
    assert browser.go("GET", "/console/recipients").headers["location"] == "/console/sign-in"


def test_forms_without_or_with_a_wrong_csrf_token_are_refused(console) -> None:
    _, db, _, _ = console
    browser = _signed_in(console)
    names = {s["name"] for s in Shares(db).all()}
    for data in ({"name": "csrf_none"}, {"name": "csrf_wrong", "csrf": "forged"}):
        answer = browser.go("POST", "/console/shares", data=data)
        assert answer.status_code == 403 and "did not come from this console" in answer.text
    # Another session's token is not this session's.
    other = _signed_in(console)
    answer = browser.go(
        "POST", "/console/shares", data={"name": "csrf_other", "csrf": other.csrf("/console/shares")}
    )
    assert answer.status_code == 403
    assert {s["name"] for s in Shares(db).all()} == names
    # The sign-in form is protected too.
    assert Browser(console[0]).go("POST", "/console/sign-in", data={"token": console[2]}).status_code == 403


def test_every_page_has_the_security_headers_and_no_inline_script(console) -> None:
    browser = _signed_in(console)
    for path in ("/console/shares", "/console/recipients", "/console/activity", "/console/sign-in"):
        answer = browser.go("GET", path)
        csp = answer.headers["content-security-policy"]
        assert "script-src" not in csp and "'unsafe-inline'" not in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert "<script" not in answer.text.lower() and " style=" not in answer.text
    css = browser.go("GET", "/console/lakegate.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_names_and_texts_are_shown_as_text(console) -> None:
    _, db, _, _ = console
    browser = _signed_in(console)
    script = "<script>alert(1)</script>"
    browser.post_form(
        "/console/shares", "/console/shares", name="<b>x<b>", display_name=script, comment='"><img src=x>'
    )
    assert "<b>x<b>" in {s["name"] for s in Shares(db).all()}
    for path in ("/console/shares", "/console/shares/%3Cb%3Ex%3Cb%3E"):
        text = browser.go("GET", path).text
        assert script not in text and "<b>x<b>" not in text and "<img src=x>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;x&lt;b&gt;" in text


def test_changes_are_made_and_audited_as_the_admin_api_does(console) -> None:
    client, _, _, table = console
    browser = _signed_in(console)
    answer = browser.post_form("/console/shares", "/console/shares", name="audited")
    assert answer.headers["location"] == "/console/shares/audited"
    form = {"schema": "s", "table": "t", "location": table, "history_shared": "on"}
    browser.post_form("/console/shares/audited/tables", "/console/shares/audited", **form)
    page = browser.go("GET", "/console/shares/audited").text
    delta = DeltaTable(table)  # the oracle: what deltalake says of the table
    files = len(delta.file_uris())
    assert f"Table &#39;s.t&#39; added: version {delta.version()}, {files} files" in page
    # Not a Delta table: refused with the reason, nothing added.
    bad = {"schema": "s", "table": "u", "location": str(Path(table).parent)}
    browser.post_form("/console/shares/audited/tables", "/console/shares/audited", **bad)
    page = browser.go("GET", "/console/shares/audited").text
    assert 'class="flash error"' in page and ">u<" not in page
    # The table's settings, changed in the console, then with the admin API.
    browser.post_form(
        "/console/shares/audited/tables/settings", "/console/shares/audited", table="s.t", start_version="1"
    )
    shown = Shares(console[1]).show("audited")["tables"][0]
    assert (shown["historyShared"], shown["startVersion"]) == (False, 1)
    admin = {"Authorization": f"Bearer {console[2]}"}
    patched = client.raw(
        "PATCH", "/admin/shares/audited/schemas/s/tables/t", headers=admin, json={"historyShared": True}
    )
    assert patched.status_code == 200 and patched.json()["tables"][0]["historyShared"] is True
    assert patched.json()["tables"][0]["startVersion"] == 1  # not given: unchanged
    bad = client.raw(
        "PATCH", "/admin/shares/audited/schemas/s/tables/t", headers=admin, json={"startVersion": -1}
    )
    assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_PARAMETER_VALUE"
    events = client.raw("GET", "/admin/audit?limit=20", headers={"Authorization": f"Bearer {console[2]}"})
    changes = [
        (e["operation"], e["table"], e["actor"]) for e in events.json()["items"] if e["mode"] == "admin"
    ]
    assert ("admin:share-create", "audited", "ops") in changes
    assert ("admin:table-add", "audited.s.t", "ops") in changes
    assert [c for c in changes if c[0] == "admin:table-update"] == [
        ("admin:table-update", "audited.s.t", "ops")
    ] * 2


def _create_recipient(browser: Browser, name: str, shares: list[str]) -> str:
    answer = browser.post_form("/console/recipients", "/console/recipients", name=name, share=shares)
    found = LINK.search(answer.text)
    assert answer.status_code == 200 and found, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return found.group(1)


def test_an_activation_link_gives_the_profile_once(console, caplog: pytest.LogCaptureFixture) -> None:
    client, _, _, table = console
    browser = _signed_in(console)
    browser.post_form("/console/shares", "/console/shares", name="linked")
    browser.post_form(
        "/console/shares/linked/tables", "/console/shares/linked", schema="s", table="t", location=table
    )
    caplog.set_level(logging.INFO)
    link = _create_recipient(browser, "partner", ["linked"])
    code = link.rsplit("/", 1)[1]
    assert link == f"http://localhost:8080/delta-sharing/activate/{code}"
    recipient_page = Browser(client)  # the recipient: no console session
    page = recipient_page.go("GET", link)
    assert page.status_code == 200 and "Acme Data" in page.text and "linked" in page.text
    assert "Download credential file" in page.text and "lg_" not in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["x-frame-options"] == "DENY"
    # A post without the page's token uses nothing up.
    assert recipient_page.go("POST", link, data={"csrf": "nope"}).status_code == 403
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    download = recipient_page.go("POST", link, data={"csrf": csrf})
    assert (
        download.status_code == 200 and 'filename="partner.share"' in download.headers["content-disposition"]
    )
    profile = download.json()
    assert profile["shareCredentialsVersion"] == 1 and profile["endpoint"].endswith("/delta-sharing")
    listed = client.get("/shares", token=profile["bearerToken"])
    assert listed.status_code == 200 and [s["name"] for s in listed.json()["items"]] == ["linked"]
    query = client.post("/shares/linked/schemas/s/tables/t/query", token=profile["bearerToken"], json={})
    assert query.status_code == 200
    sizes = pa.table(DeltaTable(table).get_add_actions(flatten=True)).column("size_bytes").to_pylist()
    again = recipient_page.go("POST", link, data={"csrf": csrf})
    assert again.status_code == 410 and "already used" in again.text and "data@acme.test" in again.text
    assert "already used" in recipient_page.go("GET", link).text
    served = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("lakegate"))
    assert "/activate/{code}" in served  # the server's log lines name the route, never the code or token
    assert code not in served and profile["bearerToken"] not in served
    events = client.raw(
        "GET", "/admin/audit?recipient=partner", headers={"Authorization": f"Bearer {console[2]}"}
    )
    outcomes = [(e["operation"], e["outcome"], e["bytes"]) for e in events.json()["items"]]
    assert outcomes == [
        ("credential-download", "ok", None),
        ("query", "ok", sum(sizes)),  # the bytes of the files listed, for the Activity charts
        ("credential-download", "ACTIVATION_LINK_USED", None),
    ]


def test_an_expired_or_withdrawn_link_gives_nothing(console) -> None:
    client, db, _, _ = console
    browser = _signed_in(console)
    link = _create_recipient(browser, "late", [])
    # A link made two hours ago that lived one hour.
    old = ActivationLinks(db, clock=lambda: utcnow() - timedelta(hours=2)).create("late", 3600)
    page = Browser(client).go("GET", f"/delta-sharing/activate/{old}")
    assert page.status_code == 200 and "expired" in page.text and "Download credential file" not in page.text
    assert "Download credential file" not in Browser(client).go("GET", link).text  # replaced by the newer one
    fresh = ActivationLinks(db).create("late", 3600)
    browser.post_form("/console/recipients/late/revoke", "/console/recipients/late")
    page = Browser(client).go("GET", f"/delta-sharing/activate/{fresh}")
    assert "withdrawn" in page.text and "Download credential file" not in page.text
    unknown = Browser(client).go("GET", "/delta-sharing/activate/not-a-code")
    assert unknown.status_code == 404 and "not valid" in unknown.text


def test_sign_out_ends_the_session(console) -> None:
    browser = _signed_in(console)
    answer = browser.post_form("/console/sign-out", "/console/shares")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    assert browser.go("GET", "/console/shares").headers["location"] == "/console/sign-in"


def test_the_session_cookie_is_secure_over_tls(console) -> None:
    client, _, admin, _ = console
    browser = Browser(client)
    browser.http.base_url = httpx.URL("https://lakegate.test")  # the ASGI scope's scheme is https
    answer = browser.sign_in(admin)
    assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]


def test_oauth_and_basic_recipients_get_version_2_profiles_by_link(console) -> None:
    client, _, _, table = console
    browser = _signed_in(console)
    browser.post_form("/console/shares", "/console/shares", name="v2")
    browser.post_form(
        "/console/shares/v2/tables", "/console/shares/v2", schema="s", table="t", location=table
    )
    profiles = {}
    for name, auth in (("app", "oauth"), ("bi", "basic")):
        answer = browser.post_form(
            "/console/recipients", "/console/recipients", name=name, share=["v2"], auth=auth
        )
        link = LINK.search(answer.text).group(1)  # type: ignore[union-attr]
        page = Browser(client).go("GET", link)
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        profiles[auth] = Browser(client).go("POST", link, data={"csrf": csrf}).json()
    oauth, basic = profiles["oauth"], profiles["basic"]
    assert (oauth["shareCredentialsVersion"], oauth["type"], oauth["clientId"]) == (
        2,
        "oauth_client_credentials",
        "app",
    )
    assert oauth["tokenEndpoint"] == oauth["endpoint"] + "/oauth/token"
    grant = {"grant_type": "client_credentials"}
    exchanged = client.post("/oauth/token", token=None, auth=("app", oauth["clientSecret"]), data=grant)
    assert exchanged.status_code == 200, exchanged.text
    listed = client.get("/shares", token=exchanged.json()["access_token"])
    assert [s["name"] for s in listed.json()["items"]] == ["v2"]
    assert (basic["shareCredentialsVersion"], basic["type"], basic["username"]) == (2, "basic", "bi")
    listed = client.raw("GET", "/delta-sharing/shares", auth=("bi", basic["password"]))
    assert listed.status_code == 200 and [s["name"] for s in listed.json()["items"]] == ["v2"]
    # Rotating keeps the recipient's method by default, and the new link hands out a new secret.
    shown = browser.go("GET", "/console/recipients/app").text
    assert '<option value="oauth" selected>' in shown and "client secret" in shown


@pytest.mark.parametrize("grace", ["inf", "-inf", "nan", "1e400", "ten"])
def test_a_grace_period_that_is_no_number_of_hours_is_refused_on_the_page(console, grace: str) -> None:
    browser = _signed_in(console)
    name = f"grace-{grace.replace('-', 'minus')}"
    browser.post_form("/console/recipients", "/console/recipients", name=name)
    url = f"/console/recipients/{name}"
    answer = browser.post_form(f"{url}/rotate", url, auth="token", grace_hours=grace)
    assert answer.status_code == 303 and answer.headers["location"] == url
    page = browser.go("GET", url).text
    assert 'class="flash error"' in page and "Grace period must be a number of hours" in page


PROFILE = re.compile(r'<textarea id="profile-json"[^>]*>([^<]*)</textarea>')


def _shown_profile(answer: httpx.Response) -> dict:
    found = PROFILE.search(answer.text)
    assert answer.status_code == 200 and found, answer.text
    assert LINK.search(answer.text) is None  # no secret, so no activation link
    return json.loads(html.unescape(found.group(1)))


def _download(browser: Browser, answer: httpx.Response, url: str) -> httpx.Response:
    """The profile page's "Download profile file" form, posted with the hidden fields it carries."""
    form = answer.text[answer.text.index(f'action="{url}/profile"') :]
    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form[: form.index("</form>")])
    )
    return browser.go("POST", f"{url}/profile", data={k: html.unescape(v) for k, v in fields.items()})


def _admin_changes(console, recipient: str) -> list[str]:
    """The console's changes of `recipient` in the audit trail, as the admin API shows them."""
    events = console[0].raw(
        "GET", "/admin/audit?limit=500", headers={"Authorization": f"Bearer {console[2]}"}
    )
    return [
        e["operation"]
        for e in events.json()["items"]
        if e["mode"] == "admin" and e["actor"] == "ops" and e["recipient"] == recipient
    ]


def test_an_oidc_recipient_gets_its_policy_and_a_profile_without_secret(console) -> None:
    _, db, _, _ = console
    browser = _signed_in(console)
    form = {
        "name": "fed",
        "auth": "oidc",
        "issuer": "https://login.example.com/tenant/v2.0",
        "audiences": "api://lakegate-fed, api://other",
        "subject": "app-1",
        "subject_claim": "azp",
        "token_endpoint": "https://login.example.com/tenant/oauth2/v2.0/token",
        "scope": "api://lakegate-fed/.default",
    }
    answer = browser.post_form("/console/recipients", "/console/recipients", **form)
    profile = _shown_profile(answer)
    [policy] = Recipients(db).get("fed")["federationPolicies"]
    assert (policy["issuer"], policy["audiences"], policy["subjectClaim"], policy["subject"]) == (
        form["issuer"],
        ["api://lakegate-fed", "api://other"],
        "azp",
        "app-1",
    )
    assert Recipients(db).get("fed")["tokens"] == []
    assert (profile["type"], profile["tokenEndpoint"], profile["scope"]) == (
        "oauth_client_credentials",
        form["token_endpoint"],
        form["scope"],
    )
    downloaded = _download(browser, answer, "/console/recipients/fed")
    assert downloaded.headers["content-disposition"] == 'attachment; filename="fed.share"'
    assert downloaded.json() == profile
    # The recipient's page lists the policy; another is added, then the first removed, each audited.
    page = browser.go("GET", "/console/recipients/fed").text
    assert "login.example.com/tenant/v2.0" in page and f'name="policy" value="{policy["id"]}"' in page
    added = {
        "issuer": "https://idp.example.org",
        "audiences": "api://x",
        "subject": "<script>alert(1)</script>",
    }
    browser.post_form("/console/recipients/fed/policies", "/console/recipients/fed", **added)
    page = browser.go("GET", "/console/recipients/fed").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    browser.post_form(
        "/console/recipients/fed/policies/remove", "/console/recipients/fed", policy=str(policy["id"])
    )
    [left] = Recipients(db).get("fed")["federationPolicies"]
    assert (left["issuer"], left["subject"], left["subjectClaim"]) == (
        "https://idp.example.org",
        "<script>alert(1)</script>",
        "sub",
    )
    changes = _admin_changes(console, "fed")
    assert {"admin:recipient-create", "admin:policy-add", "admin:policy-remove"} <= set(changes)


def test_a_private_key_jwt_recipient_gets_a_profile_naming_its_key(console) -> None:
    _, db, _, _ = console
    browser = _signed_in(console)
    pair = ec_pair()
    form = {"name": "signer", "auth": "private-key-jwt", "public_key": pair.public_pem, "key_id": "k-1"}
    answer = browser.post_form("/console/recipients", "/console/recipients", **form)
    profile = _shown_profile(answer)
    [key] = Recipients(db).get("signer")["publicKeys"]
    assert (key["keyId"], key["algorithm"]) == ("k-1", "ES256")
    assert profile["type"] == "oauth_jwt_bearer_private_key_jwt"
    assert (profile["auth"]["clientId"], profile["auth"]["privateKey"]["keyId"]) == ("signer", "k-1")
    assert profile["auth"]["privateKey"]["algorithm"] == "ES256"
    assert _download(browser, answer, "/console/recipients/signer").json() == profile
    assert "public key &#39;k-1&#39;" in browser.go("GET", "/console/recipients/signer").text
    assert "admin:recipient-create" in _admin_changes(console, "signer")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"auth": "oidc", "issuer": "http://idp.example.com", "audiences": "a", "subject": "s"}, "https"),
        ({"auth": "oidc", "issuer": "https://idp.example.com", "subject": "s"}, "Audiences is required"),
        ({"auth": "private-key-jwt", "public_key": "not a key", "key_id": "k"}, "not a PEM public key"),
        ({"auth": "private-key-jwt", "key_id": "k"}, "Public key (PEM) is required"),
        ({"auth": "token", "issuer": "https://idp.example.com"}, "only with Authentication"),
        ({"auth": "token", "public_key": "x", "key_id": "k"}, "only with Authentication"),
    ],
)
def test_bad_oidc_or_key_input_is_explained_on_the_page(console, form: dict, message: str) -> None:
    _, db, _, _ = console
    browser = _signed_in(console)
    answer = browser.post_form("/console/recipients", "/console/recipients", name="refused", **form)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/recipients"
    page = browser.go("GET", "/console/recipients").text
    flash = page[page.index('class="flash error"') :]
    assert html.escape(message, quote=True) in flash[: flash.index("</")]
    assert "refused" not in {r["name"] for r in Recipients(db).all()}


def test_policy_forms_refuse_bad_input_and_missing_csrf(console) -> None:
    _, db, _, _ = console
    browser = _signed_in(console)
    browser.post_form("/console/recipients", "/console/recipients", name="plain")
    url = "/console/recipients/plain"
    for path, data in (
        ("/policies", {"issuer": "https://idp.example.com", "audiences": "a", "subject": "s"}),
        ("/policies/remove", {"policy": "1"}),
        ("/profile", {"auth": "oidc"}),
    ):
        for csrf in ({}, {"csrf": "forged"}):
            answer = browser.go("POST", url + path, data={**data, **csrf})
            assert answer.status_code == 403 and "did not come from this console" in answer.text
    assert Recipients(db).get("plain")["federationPolicies"] == []
    for data, message in (
        ({"issuer": "ftp://idp.example.com", "audiences": "a", "subject": "s"}, "https"),
        ({"issuer": "https://idp.example.com", "audiences": "a"}, "Subject is required"),
    ):
        assert browser.post_form(url + "/policies", url, **data).status_code == 303
        assert message in browser.go("GET", url).text
    for policy, message in (("x1", "policy number"), ("999", "")):
        answer = browser.post_form(url + "/policies/remove", url, policy=policy)
        assert answer.status_code == 303
        page = browser.go("GET", url).text
        assert 'class="flash error"' in page and message in page
    # A token recipient has no profile to download here (its secret is handed out by activation link).
    assert browser.post_form(url + "/profile", url, auth="oidc").status_code == 400


@pytest.mark.postgres
def test_console_pages_while_the_database_is_down_are_pages(
    postgres: PostgresService, tmp_path: Path
) -> None:
    """A provider's browser gets the console's 503 page saying to try again (it was the protocol's JSON error),
    signed in or signing in, and the console works again once the database is back."""
    client = start_app(
        tmp_path, {"database": postgres.create_database("console_down"), "console": {"enabled": True}}
    )
    try:
        _, admin = AdminTokens(client.app.state.services.catalog.db).create("ops")
        browser, stranger = Browser(client), Browser(client)
        assert browser.sign_in(admin).status_code == 303
        form = stranger.csrf("/console/sign-in")  # the sign-in page needs no database
        postgres.stop()
        try:
            for answer in (
                browser.go("GET", "/console/shares"),
                stranger.go("POST", "/console/sign-in", data={"csrf": form, "token": admin}),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"].startswith("text/html"), answer.text
                assert "try again" in answer.text and "errorCode" not in answer.text
        finally:
            postgres.start_again()
        assert browser.go("GET", "/console/shares").status_code == 200
    finally:
        client.close()
