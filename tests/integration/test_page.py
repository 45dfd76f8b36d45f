"""The Logs page in a real browser: Playwright driving Debian's Chromium against a real
`authtrail up` (real broker, real chDB). A screenshot of the Logs tab is kept in
tests/artifacts/."""

from __future__ import annotations

import csv
import http.server
import io
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests import leaks
from tests.integration.conftest import Authtrail, free_port, run_cli, shared_broker_env

CHROMIUM = Path("/usr/bin/chromium")
# A customer's admin portal that may embed the viewer, and one that may not (other origins).
ALLOWED_PORTAL = free_port()
OTHER_PORTAL = free_port()
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium missing: `make test` installs it"
)


def _events() -> list[bytes]:
    now = time.time()
    events = []
    for i in range(80):
        body: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=i + 1)),
            "event_key": (
                "login.completed",
                "login.failed",
                "oidc.flow.started",
                "sso.tenant.completed",
            )[i % 4],
            "occurred_at": int((now - 30 - i * 20) * 1000),
            "ip": f"81.2.69.{i + 1}",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
        }
        if i % 5:
            body["account"] = {"id": f"acc_{i % 3}", "name": f"Tenant {i % 3}"}
        if i % 7 == 0:
            pass  # anonymous
        elif i % 7 == 1:
            body["actor"] = {"id": "agent-7", "type": "agent"}
        else:
            body["actor"] = {"id": f"usr_{i % 4}", "email": f"user{i % 4}@example.com"}
        if i < 3:
            body["trace_id"] = TRACE
        events.append(orjson.dumps(body))
    return events


@pytest.fixture(scope="module")
def running(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authtrail]:
    data_dir = tmp_path_factory.mktemp("page") / "var"
    env = shared_broker_env(data_dir, kafka_bootstrap, "p")
    env["AUTHTRAIL_EMBED_ALLOWED_ORIGINS"] = f"http://127.0.0.1:{ALLOWED_PORTAL}"
    with Authtrail(data_dir, env) as instance:
        instance.start()
        assert "80 accepted" in instance.produce(_events()).stdout
        instance.wait_for_rows(80)
        yield instance
        assert instance.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser, running: Authtrail) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, accept_downloads=True, timezone_id="Europe/Berlin"
    )
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"{running.api}/login#token={running.token}")
    expect(tab.locator("#rows tr").first).to_be_visible()
    assert "#token" not in tab.url  # the token left the address bar
    yield tab
    context.close()
    assert not errors, errors


def rows(page: Page) -> Any:
    return page.locator("#rows tr")


def wait_url(page: Page, fragment: str) -> None:
    """Waits until the URL holds ``fragment`` and the table shows that URL's rows."""
    page.wait_for_function("f => window.location.search.includes(f)", arg=fragment)
    loaded(page)


def loaded(page: Page) -> None:
    page.wait_for_function(
        "() => { const t = document.getElementById('logs');"
        " return t.dataset.query === window.location.search"
        " && t.getAttribute('aria-busy') === 'false'; }"
    )


def test_logs_tab_renders_and_scrolls(page: Page) -> None:
    expect(page.locator("#app h1")).to_have_text("Manage your logs and your streaming")
    expect(page.locator("#tab-logs")).to_have_class("tab active")
    expect(rows(page)).to_have_count(50)
    first = rows(page).first
    expect(first.locator("td").nth(1)).to_contain_text("Today")
    assert "Z" in (first.locator("td").nth(1).get_attribute("title") or "")  # exact on hover
    expect(page.locator("#timeline-svg rect").first).to_be_attached()
    anonymous = page.locator("#rows tr", has_text="anonymous").first
    expect(anonymous).to_be_visible()
    expect(page.locator("#rows tr td:nth-child(3)", has_text="—").first).to_be_visible()
    expect(page.locator(".badge", has_text="AI agent").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "logs-tab.png"), full_page=True)
    page.locator("#more").scroll_into_view_if_needed()
    expect(rows(page)).to_have_count(80)
    expect(page.locator("#load-more")).to_be_hidden()


def test_each_filter_and_clear(page: Page) -> None:
    page.fill("#f-q", TRACE)
    wait_url(page, f"q={TRACE}")
    expect(rows(page)).to_have_count(3)
    page.fill("#f-q", "")
    page.wait_for_function("() => !window.location.search.includes('q=')")
    loaded(page)
    expect(rows(page)).to_have_count(50)

    page.select_option("#f-account", "acc_1")
    wait_url(page, "account=acc_1")
    expect(page.locator("#rows tr td:nth-child(3)").first).to_have_text("Tenant 1")
    cells = page.locator("#rows tr td:nth-child(3)").all_inner_texts()
    assert cells and set(cells) == {"Tenant 1"}

    page.select_option("#f-user", "anonymous")
    wait_url(page, "user=anonymous")
    expect(page.locator("#rows tr td:nth-child(4)").first).to_have_text("anonymous")
    assert set(page.locator("#rows tr td:nth-child(4)").all_inner_texts()) == {"anonymous"}

    page.select_option("#f-range", "1h")
    wait_url(page, "range=1h")
    page.select_option("#f-type", "login.completed")
    wait_url(page, "type=login.completed")
    page.select_option("#f-outcome", "success")
    wait_url(page, "outcome=success")
    for outcome in page.locator("#rows tr").evaluate_all("rs => rs.map(r => r.dataset.outcome)"):
        assert outcome == "success"

    page.click("#clear-filters")
    page.wait_for_function("() => window.location.search === ''")
    loaded(page)
    expect(rows(page)).to_have_count(50)
    for control in ("#f-account", "#f-user", "#f-range", "#f-type", "#f-outcome"):
        expect(page.locator(control)).to_have_value("")


def test_the_search_box_takes_the_query_language(page: Page) -> None:
    page.click("#q-help summary")
    expect(page.locator("#q-help")).to_contain_text("type:oidc.*")
    bodies = [orjson.loads(raw) for raw in _events()]
    expected = [
        b
        for b in bodies
        if b["event_key"].startswith("login.") and b.get("account", {}).get("id") != "acc_1"
    ]
    page.fill("#f-q", "type:login.* -account:acc_1 ip:81.2.69.0/24")
    wait_url(page, "q=type")
    expect(rows(page)).to_have_count(len(expected))
    assert "Tenant 1" not in page.locator("#rows tr td:nth-child(3)").all_inner_texts()

    page.fill("#f-q", "(login.failed OR ip:81.2.69.300")
    expect(page.locator("#error")).to_contain_text("q: at position 20: expected an IP address")
    page.fill("#f-q", "")
    page.wait_for_function("() => !window.location.search.includes('q=')")
    loaded(page)
    expect(page.locator("#error")).to_be_hidden()
    expect(rows(page)).to_have_count(50)


def test_a_saved_view_restores_its_filters_and_sort(page: Page) -> None:
    page.fill("#f-q", "type:login.*")
    wait_url(page, "q=type")
    page.select_option("#f-account", "acc_2")
    wait_url(page, "account=acc_2")
    page.click("button.sort[data-sort='log']")
    wait_url(page, "sort=log")
    saved_url = page.url
    saved_rows = page.locator("#rows tr").evaluate_all("rs => rs.map(r => r.textContent)")
    page.click("#save-view summary")
    page.fill("#view-name", "Logins of tenant 2")
    page.check("#view-shared")
    page.click("#view-save")
    expect(page.locator("#f-view option", has_text="Logins of tenant 2 (shared)")).to_have_count(1)

    page.goto(saved_url.split("?")[0])  # a fresh page: no filter, the default sort
    loaded(page)
    page.select_option("#f-view", label="Logins of tenant 2 (shared)")
    wait_url(page, "account=acc_2")
    defaults = {"order=desc", "sort=time"}  # the same view with or without them

    def state(url: str) -> set[str]:
        return set(url.split("?")[1].split("&")) - defaults

    assert state(page.url) == state(saved_url)
    expect(page.locator("#f-q")).to_have_value("type:login.*")
    restored = page.locator("#rows tr").evaluate_all("rs => rs.map(r => r.textContent)")
    assert restored == saved_rows
    page.click("#view-delete")
    expect(page.locator("#f-view option", has_text="Logins of tenant 2")).to_have_count(0)
    page.goto(saved_url.split("?")[0])
    loaded(page)


def test_outcome_filter_and_custom_range(page: Page) -> None:
    page.select_option("#f-outcome", "failure")
    wait_url(page, "outcome=failure")
    expect(rows(page)).to_have_count(20)
    texts = page.locator("#rows tr td:first-child").all_inner_texts()
    assert set(texts) == {"Login failed"}
    assert page.locator("#rows svg.icon.failure").count() == 20
    page.select_option("#f-range", "custom")
    expect(page.locator("#custom-range")).to_be_visible()
    page.fill("#f-from", "2020-01-01T00:00:00")
    page.locator("#f-from").dispatch_event("change")
    wait_url(page, "from=2019-12-31T23")  # Berlin midnight, sent as UTC
    expect(rows(page)).to_have_count(20)


def test_filters_live_in_the_url(page: Page, running: Authtrail) -> None:
    page.goto(f"{running.api}/?outcome=failure&account=acc_2")
    loaded(page)
    expect(page.locator("#f-outcome")).to_have_value("failure")
    expect(page.locator("#f-account")).to_have_value("acc_2")
    expect(rows(page).first).to_be_visible()
    assert set(page.locator("#rows tr td:nth-child(3)").all_inner_texts()) == {"Tenant 2"}


def test_sort_by_both_columns(page: Page) -> None:
    page.click("#sort-log")
    wait_url(page, "sort=log")
    expect(page.locator("#sort-log")).to_have_attribute("aria-sort", "descending")
    expect(rows(page).first.locator("td").first).to_have_text("Tenant SSO completed")
    page.click("#sort-log")
    wait_url(page, "order=asc")
    expect(rows(page).first.locator("td").first).to_have_text("Login completed")
    page.click("#sort-time")
    wait_url(page, "sort=time")
    expect(page.locator("#sort-time")).to_have_attribute("aria-sort", "descending")
    page.click("#sort-time")
    wait_url(page, "order=asc")
    expect(rows(page).first.locator("td").nth(4)).to_have_text("81.2.69.80")  # the oldest


def test_details_and_filter_links(page: Page) -> None:
    page.locator("#rows tr", has_text="81.2.69.1").first.click()
    details = page.locator("#details")
    expect(details).to_be_visible()
    expect(details.locator("dd.mono")).to_contain_text(TRACE)
    expect(details).to_contain_text("Firefox 132")
    expect(details).to_contain_text("GB")
    expect(page.locator("#copy-trace")).to_be_visible()
    page.get_by_role("button", name="Logs of this trace").click()
    wait_url(page, f"q={TRACE}")
    expect(details).to_be_hidden()
    expect(rows(page)).to_have_count(3)


def test_export_matches_the_filter(page: Page) -> None:
    page.select_option("#f-outcome", "failure")
    wait_url(page, "outcome=failure")
    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    assert download.suggested_filename.startswith("authtrail-logs-")
    assert download.suggested_filename.endswith(".csv")
    content = Path(download.path()).read_text()
    exported = list(csv.DictReader(io.StringIO(content)))
    assert len(exported) == 20 and {r["outcome"] for r in exported} == {"failure"}
    with page.expect_download() as info:
        page.click("#export-ndjson")
    lines = Path(info.value.path()).read_text().splitlines()
    assert len(lines) == 20


def test_live_mode_shows_new_events(page: Page, running: Authtrail) -> None:
    page.check("#live")
    expect(page.locator("#live-status")).to_have_text("up to date")
    marker = f"81.2.69.{200}"
    fresh = orjson.dumps(
        {
            "event_key": "user.locked",
            "occurred_at": int(time.time() * 1000),
            "ip": marker,
            "actor": {"email": "locked@example.com"},
        }
    )
    assert "1 accepted" in running.produce([fresh]).stdout
    new_row = rows(page).first
    expect(new_row).to_contain_text("User locked", timeout=20_000)
    expect(new_row).to_contain_text(marker)
    expect(page.locator("#live-status")).to_contain_text("new")


def test_without_a_session_the_page_asks_for_a_token(browser: Browser, running: Authtrail) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(running.api + "/")
    expect(tab.locator("#login")).to_be_visible()
    tab.fill("#login-token", "at_aaaaaaaaaaaa_" + "x" * 43)
    tab.click("#login-form button")
    expect(tab.locator("#login-error")).to_contain_text("invalid")
    viewer = run_cli(running.env, "token", "create", "--role", "viewer").stdout.strip()
    tab.fill("#login-token", viewer)
    tab.click("#login-form button")
    expect(tab.locator("#rows tr").first).to_be_visible()
    cookies = context.cookies()
    session = next(c for c in cookies if c["name"] == "authtrail_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    tab.click("#sign-out")
    expect(tab.locator("#login")).to_be_visible()
    context.close()


def test_an_account_scoped_token_sees_no_stream_tab(browser: Browser, running: Authtrail) -> None:
    scoped = run_cli(
        running.env, "token", "create", "--role", "viewer", "--account", "acc_1"
    ).stdout.strip()
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(f"{running.api}/login#token={scoped}")
    expect(tab.locator("#who-name")).to_contain_text("acc_1")
    expect(tab.locator("#tab-stream")).to_be_hidden()
    # Even at /stream the page shows the Logs: the Stream side spans every account.
    tab.goto(f"{running.api}/stream")
    expect(tab.locator("#logs-tab")).to_be_visible()
    expect(tab.locator("#stream-tab")).to_be_hidden()
    context.close()


class _Portal(http.server.BaseHTTPRequestHandler):
    """A page of another origin with the viewer in an iframe."""

    frame_src = ""

    def do_GET(self) -> None:
        body = (
            "<!doctype html><title>Portal</title><h1>Customer portal</h1>"
            f'<iframe id="viewer" src="{self.frame_src}" width="1300" height="800"></iframe>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def _portal(port: int, frame_src: str) -> http.server.ThreadingHTTPServer:
    handler = type("Portal", (_Portal,), {"frame_src": frame_src})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_embedded_viewer_shows_one_account_to_allowed_origins_only(
    browser: Browser, running: Authtrail
) -> None:
    made = httpx.post(
        f"{running.api}/api/v1/viewer-tokens",
        json={"account": "acc_1", "ttl": 600},
        headers={"Authorization": f"Bearer {running.token}"},
    )
    assert made.status_code == 201, made.text
    leaks.register(made.json()["token"])
    src = running.api + made.json()["embed_path"]
    headers = httpx.get(f"{running.api}/embed").headers
    assert (
        f"frame-ancestors http://127.0.0.1:{ALLOWED_PORTAL}" in headers["content-security-policy"]
    )
    assert "x-frame-options" not in headers
    expected = [
        b for b in map(orjson.loads, _events()) if b.get("account", {}).get("id") == "acc_1"
    ]
    allowed, other = _portal(ALLOWED_PORTAL, src), _portal(OTHER_PORTAL, src)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        tab = context.new_page()
        tab.goto(f"http://127.0.0.1:{ALLOWED_PORTAL}/")
        viewer = tab.frame_locator("#viewer")
        expect(viewer.locator("#app h1")).to_have_text("Tenant 1")
        expect(viewer.locator("#rows tr")).to_have_count(len(expected))
        accounts = viewer.locator("#rows tr td:nth-child(3)").all_inner_texts()
        assert set(accounts) == {"Tenant 1"}
        for hidden in ("#tab-stream", "#f-account", "#export-csv", "#save-view", "#sign-out"):
            expect(viewer.locator(hidden)).to_be_hidden()
        frame = tab.frame(url=lambda url: url.startswith(running.api))
        assert frame is not None and "token" not in frame.url  # it left the address bar
        # Searching stays inside the account.
        viewer.locator("#f-q").fill("account:acc_2")
        expect(viewer.locator("#rows tr")).to_have_count(0)

        refused = context.new_page()
        blocked: list[str] = []
        refused.on("console", lambda m: blocked.append(m.text))
        refused.goto(f"http://127.0.0.1:{OTHER_PORTAL}/")
        refused.wait_for_function(
            "() => document.getElementById('viewer') !== null", timeout=10_000
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("frame-ancestors" in m for m in blocked):
            refused.wait_for_timeout(200)
        assert any("frame-ancestors" in m for m in blocked), blocked
        assert refused.frame_locator("#viewer").locator("#app").count() == 0
    finally:
        context.close()
        allowed.shutdown()
        other.shutdown()


def test_privacy_tab_sets_retention_and_erases_a_person_leaving_nothing_on_the_page(
    page: Page, running: Authtrail
) -> None:
    # Last in the module: it adds (and erases) events the other tests do not count.
    person = {"id": "usr_privacy", "email": "priv.person@example.net"}
    ip, agent = "192.0.2.231", "PrivBrowser/3.3 (priv-device)"
    lines = [
        orjson.dumps(
            {
                "event_key": "login.completed",
                "occurred_at": int(time.time() * 1000) - i * 1000,
                "account": {"id": "acc_priv", "name": "Privacy Co"},
                "actor": person,
                "ip": ip,
                "user_agent": agent,
            }
        )
        for i in range(3)
    ]
    assert "3 accepted" in running.produce(lines).stdout
    running.wait_for_rows(83)

    page.locator("#tab-privacy").click()
    expect(page.locator("#privacy-tab")).to_be_visible()
    page.wait_for_function("() => window.location.pathname === '/privacy'")
    page.fill("#retention-account", "acc_unused")
    page.fill("#retention-days", "400")
    page.click("#retention-set")
    expect(page.locator("#retention-body tr[data-account='acc_unused']")).to_contain_text("400")

    page.on("dialog", lambda dialog: dialog.accept())
    page.fill("#erasure-user", person["email"])
    page.click("#erasure-run")
    expect(page.locator("#erasures-body tr")).to_have_count(1)
    expect(page.locator("#erasures-body tr")).to_contain_text("Applied")
    expect(page.locator("#erasures-body tr")).to_contain_text("3")
    assert page.input_value("#erasure-user") == ""

    page.goto(f"{running.api}/?account=acc_priv")
    expect(rows(page)).to_have_count(3)
    rows(page).first.click()
    expect(page.locator("#details")).to_be_visible()
    text = page.locator("body").inner_text()
    for clear in (person["id"], person["email"], ip, agent):
        assert clear not in text, clear
    for clear in (person["email"], ip, "PrivBrowser"):
        page.goto(f"{running.api}/?q={clear}")
        expect(page.locator("#empty")).to_be_visible()
