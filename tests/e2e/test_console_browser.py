"""The console and an activation page in Debian's Chromium (headless, driven by Playwright), against
`lakegate serve` in its own process: the provider's and the recipient's journeys as people do them, finding
controls by their labels and roles, then the official delta-sharing client reading the table with the
downloaded file. A screenshot of each page goes to test-artifacts/console/ (git-ignored) for review.

Chromium comes from Debian (`scripts/install-test-services.sh`), never downloaded by Playwright.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import delta_sharing
import pytest
from deltalake import DeltaTable
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from lakegate.catalog.admins import AdminTokens
from lakegate.catalog.migrate import open_database
from lakegate.config import load_config
from tests.e2e.server import RunningServer, start_server
from tests.tables import build_plain

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str, str]]:
    work = tmp_path_factory.mktemp("console-browser")
    table = build_plain(work / "orders")
    config = {
        "console": {"enabled": True},
        "activationLinks": {"providerName": "Acme Data", "contact": "data@acme.example"},
    }
    running = start_server(work, config)
    db = open_database(load_config(work / "lakegate.yaml"))
    _, admin = AdminTokens(db).create("ops")
    db.close()
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {SHOTS}")
    yield running, admin, table
    running.stop()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _sign_in(page: Page, server: RunningServer, admin: str) -> None:
    page.goto(server.base_url + "/console")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Admin token").fill(admin)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Shares")).to_be_visible()


def test_provider_and_recipient_journeys(browser: Browser, server, tmp_path: Path) -> None:
    running, admin, table = server
    provider = browser.new_context(viewport={"width": 1280, "height": 800})
    page = provider.new_page()
    page.goto(running.base_url + "/console")
    _shot(page, "01-sign-in")
    _sign_in(page, running, admin)

    # A share with a table.
    page.get_by_label("Share name").fill("sales")
    page.get_by_role("button", name="Create share").click()
    expect(page.get_by_role("heading", name="sales")).to_be_visible()
    page.get_by_label("Table name").fill("orders")
    page.get_by_label("Location").fill("orders")  # relative: from the configuration file's folder, as in YAML
    page.get_by_label("Share history").check()
    page.get_by_role("button", name="Add table").click()
    delta = DeltaTable(table)
    expect(page.get_by_role("status")).to_contain_text(f"added: version {delta.version()}")
    expect(page.get_by_role("cell", name="orders", exact=True)).to_be_visible()
    _shot(page, "03-share")

    # A recipient with an activation link.
    page.get_by_role("link", name="Recipients").click()
    page.get_by_label("Recipient name").fill("acme")
    page.get_by_label("sales").check()
    page.get_by_role("button", name="Create recipient").click()
    link = page.get_by_label("Activation link").input_value()
    assert re.fullmatch(re.escape(running.endpoint) + r"/activate/[A-Za-z0-9_-]{43}", link), link
    _shot(page, "05-activation-link-shown-once")

    # The recipient, in a browser of its own: the page, the download, the table read with the file.
    recipient = browser.new_context(accept_downloads=True, viewport={"width": 1000, "height": 760})
    visit = recipient.new_page()
    visit.goto(link)
    expect(visit.get_by_text("Acme Data").first).to_be_visible()
    expect(visit.get_by_role("listitem").filter(has_text="sales")).to_be_visible()
    _shot(visit, "06-activation-page")
    with visit.expect_download() as download_info:
        visit.get_by_role("button", name="Download credential file").click()
    profile = tmp_path / "acme.share"
    download_info.value.save_as(profile)
    frame = delta_sharing.load_as_pandas(f"{profile}#sales.default.orders")
    expected = delta.to_pandas()
    assert sorted(frame["id"].tolist()) == sorted(expected["id"].tolist())
    visit.goto(link)
    expect(visit.get_by_role("alert")).to_contain_text("already used")
    expect(visit.get_by_role("button", name="Download credential file")).to_have_count(0)
    _shot(visit, "07-activation-link-used")
    recipient.close()

    # A recipient federated with its own identity provider: no secret, so its profile is shown for download.
    page.get_by_role("link", name="Recipients").click()
    page.get_by_label("Recipient name").fill("globex")
    page.get_by_label("Authentication").select_option("oidc")
    page.get_by_label("Issuer URL").fill("https://login.globex.example/tenant/v2.0")
    page.get_by_label("Audiences").fill("api://lakegate-globex")
    page.get_by_label("Subject").fill("globex-app")
    page.get_by_label("Scope").fill("api://lakegate-globex/.default")
    page.get_by_role("button", name="Create recipient").click()
    shown = json.loads(page.get_by_label("Profile (JSON)").input_value())
    assert (shown["type"], shown["scope"]) == ("oauth_client_credentials", "api://lakegate-globex/.default")
    _shot(page, "05b-federated-profile")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download profile file").click()
    assert json.loads(Path(download_info.value.path()).read_text()) == shown
    page.get_by_role("link", name="Go to globex").click()
    expect(page.get_by_role("row").filter(has_text="globex-app")).to_contain_text("active")
    page.get_by_label("Issuer URL").fill("http://login.globex.example")  # not https: refused, explained
    page.get_by_label("Audiences").fill("api://lakegate-globex")
    page.get_by_label("Subject").fill("other-app")
    page.get_by_role("button", name="Add policy").click()
    expect(page.get_by_role("alert")).to_contain_text("https")
    _shot(page, "05c-federated-recipient")

    # The provider sees the download and the reads in Activity.
    page.get_by_role("link", name="Activity").click()
    page.get_by_label("Recipient").select_option("acme")
    page.get_by_role("button", name="Apply filters").click()
    rows = page.get_by_role("row")
    expect(rows.filter(has_text="credential-download")).to_have_count(1)
    expect(rows.filter(has_text="query").first).to_be_visible()
    _shot(page, "08-activity")

    # Revoked: the recipient is refused.
    page.get_by_role("link", name="Recipients").click()
    expect(page.get_by_role("row").filter(has_text="acme")).to_contain_text("active")
    _shot(page, "04-recipients")
    page.get_by_role("link", name="acme").click()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    _shot(page, "09-recipient-revoked")
    with pytest.raises(Exception, match=r"401|UNAUTHENTICATED|nauthenticated"):
        delta_sharing.load_as_pandas(f"{profile}#sales.default.orders")
    page.get_by_role("link", name="Shares").click()
    _shot(page, "02-shares")
    provider.close()


def test_names_are_text_and_no_script_runs(browser: Browser, server) -> None:
    running, admin, _ = server
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    _sign_in(page, running, admin)
    page.get_by_label("Share name").fill("escaped")
    page.get_by_label("Display name (optional)").fill("<script>alert(1)</script>")
    page.get_by_role("button", name="Create share").click()
    page.get_by_role("link", name="Shares").click()
    expect(page.get_by_text("<script>alert(1)</script>")).to_be_visible()  # shown as text
    assert dialogs == []
    # The CSP is served and the stylesheet applied (no inline style needed).
    answer = page.goto(running.base_url + "/console/shares")
    assert answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    color = page.locator("header.topbar").evaluate("e => getComputedStyle(e).backgroundColor")
    assert color == "rgb(15, 23, 42)"
    context.close()
