"""The Stream tab in a real browser (Playwright + Debian's Chromium) against a real
`authtrail up` (broker, chDB, pipeline, connectors): each of the five platforms set up
through the page against the local receivers and moto, a test event sent from the form,
events arriving, badges healthy; broken credentials show "Auth failed" and the destination
catches up once fixed. Screenshots of the Stream tab and a setup form are kept in
tests/artifacts/."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.aws import ACCESS_KEY, REGION, SECRET_KEY, Aws
from tests.integration.conftest import Authtrail, shared_broker_env
from tests.integration.streaming import wait_until
from tests.integration.test_page import ARTIFACTS, CHROMIUM, browser  # noqa: F401
from tests.platform_fakes import CoralogixReceiver, DatadogReceiver, SplunkReceiver, SumoReceiver
from tests.platform_fakes.webhook import WebhookReceiver
from tests.samples import WEBHOOK_SECRET

DD_KEY = "0123456789abcdef0123456789abcdef"
HEC = "12345678-1234-1234-1234-123456789012"
SUMO = "pageSumoCode123"
CX = "cxtp_0123456789abcdefABCDEF"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium missing: `make test` installs it"
)


def _raw_events(count: int, marker: str) -> list[bytes]:
    now = int(time.time() * 1000)
    return [
        orjson.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "event_key": "login.failed" if i % 2 else "login.completed",
                "occurred_at": now - i,
                "account": {"id": "acc_page"},
                "actor": {"id": "usr_1", "email": "ada@example.com"},
                "ip": "81.2.69.10",
                "reason": marker,
            }
        )
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def receivers(aws: Aws) -> Iterator[dict[str, Any]]:
    with (
        DatadogReceiver(DD_KEY) as datadog,
        SplunkReceiver(HEC) as splunk,
        SumoReceiver(SUMO) as sumo,
        CoralogixReceiver(CX) as coralogix,
    ):
        queue = aws.queue(f"page-{uuid.uuid4().hex[:6]}")
        bus = f"page-{uuid.uuid4().hex[:6]}"
        aws.bus(bus, queue)
        yield {
            "datadog": datadog,
            "splunk": splunk,
            "sumologic": sumo,
            "coralogix": coralogix,
            "aws": aws,
            "queue": queue,
            "bus": bus,
        }


@pytest.fixture(scope="module")
def running(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authtrail]:
    data_dir = tmp_path_factory.mktemp("stream-page") / "var"
    env = shared_broker_env(
        data_dir,
        kafka_bootstrap,
        "sp",
        AUTHTRAIL_CONNECTOR_LINGER_SECONDS="0.2",
        AUTHTRAIL_CONNECTOR_AUTH_RECHECK_SECONDS="1",
    )
    with Authtrail(data_dir, env) as instance:
        instance.start()
        yield instance
        assert instance.stop() == 0


@pytest.fixture(scope="module")
def page(browser: Browser, running: Authtrail) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"{running.api}/login#token={running.token}")
    expect(tab.locator("#app")).to_be_visible()
    tab.goto(f"{running.api}/stream")
    expect(tab.locator("#platforms .platform")).to_have_count(7)
    yield tab
    context.close()
    assert not errors, errors


def settings_for(platform: str, r: dict[str, Any]) -> dict[str, str]:
    return {
        "datadog": {"api_key": DD_KEY, "endpoint": r["datadog"].url},
        "splunk": {"url": "https://splunk:8088", "token": HEC, "endpoint": r["splunk"].url},
        "sumologic": {
            "url": f"https://collectors.example/receiver/v1/http/{SUMO}",
            "endpoint": r["sumologic"].url,
        },
        "coralogix": {"api_key": CX, "endpoint": r["coralogix"].url},
        "eventbridge": {
            "region": REGION,
            "event_bus": r["bus"],
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "endpoint": r["aws"].url,
        },
    }[platform]


def row(page: Page, name: str) -> Any:
    return page.locator("#destinations-body tr").filter(
        has=page.locator("strong").get_by_text(name, exact=True)
    )


def test_set_up_every_platform_and_stream(
    page: Page, running: Authtrail, receivers: dict[str, Any]
) -> None:
    platforms = ["datadog", "eventbridge", "splunk", "sumologic", "coralogix"]
    for platform in platforms:
        page.locator(f".platform[data-platform={platform}] button").click()
        expect(page.locator("#setup")).to_be_visible()
        page.fill("#setting-name", f"Page {platform}")
        for key, value in settings_for(platform, receivers).items():
            page.fill(f"#setting-{key}", value)
        if platform == "datadog":
            # Inline validation: a bad key is named next to its field, nothing saved.
            page.fill("#setting-api_key", "short")
            page.click("#save-destination")
            expect(page.locator('[data-setting="api_key"] .field-error')).not_to_be_empty()
            page.fill("#setting-api_key", DD_KEY)
            ARTIFACTS.mkdir(exist_ok=True)
            page.locator("#setup").screenshot(path=str(ARTIFACTS / "stream-setup-form.png"))
        page.click("#send-test")
        expect(page.locator("#test-reply")).to_contain_text("Delivered", timeout=20_000)
        page.click("#save-destination")
        expect(page.locator("#setup")).to_be_hidden()
        expect(row(page, f"Page {platform}")).to_be_visible()

    # A second destination on the same platform: only failures go to this one.
    page.locator(".platform[data-platform=datadog] button").click()
    page.fill("#setting-name", "Page datadog failures")
    for key, value in settings_for("datadog", receivers).items():
        page.fill(f"#setting-{key}", value)
    page.check("input[name=filter-outcome][value=failure]")
    page.click("#save-destination")
    expect(row(page, "Page datadog failures")).to_be_visible()

    assert "40 accepted" in running.produce(_raw_events(40, "page-stream")).stdout
    counts: dict[str, Callable[[], int]] = {
        name: (
            lambda r=receivers[name]: sum(
                1 for e in r.store.events() if "page-stream" in orjson.dumps(e).decode()
            )
        )
        for name in ("datadog", "splunk", "sumologic", "coralogix")
    }
    expected = {"datadog": 60, "splunk": 40, "sumologic": 40, "coralogix": 40}  # 40 + 20 failures
    for name, count in counts.items():
        assert wait_until(lambda c=count, n=name: c() >= expected[n], timeout=90), (name, count())
    delivered = receivers["aws"].receive(receivers["queue"], 41, timeout=60)  # + the test event
    assert sum(1 for d in delivered if d["detail"].get("reason") == "page-stream") == 40
    for platform in [*platforms, "datadog failures"]:
        expect(row(page, f"Page {platform}").locator(".state")).to_have_text(
            "Healthy", timeout=30_000
        )
    page.screenshot(path=str(ARTIFACTS / "stream-tab.png"), full_page=True)


def test_auth_failure_shows_and_recovers(
    page: Page, running: Authtrail, receivers: dict[str, Any]
) -> None:
    datadog: DatadogReceiver = receivers["datadog"]
    datadog.faults.set_credentials_valid(False)
    running.produce(_raw_events(10, "page-auth"))
    badge = row(page, "Page datadog").locator(".state")
    expect(badge).to_have_text("Auth failed", timeout=60_000)
    expect(row(page, "Page splunk").locator(".state")).to_have_text("Healthy")
    datadog.faults.set_credentials_valid(True)
    expect(badge).to_have_text("Healthy", timeout=60_000)
    assert wait_until(
        lambda: (
            sum(1 for e in datadog.store.events() if "page-auth" in orjson.dumps(e).decode()) >= 10
        ),
        timeout=60,
    )


def test_replay_from_the_page(page: Page, receivers: dict[str, Any]) -> None:
    splunk: SplunkReceiver = receivers["splunk"]
    before = len(splunk.store.events())
    row(page, "Page splunk").locator("button", has_text="Replay").click()
    expect(page.locator("#replay")).to_be_visible()  # from an hour ago, by default
    page.locator("#replay-form button[type=submit]").click()
    expect(page.locator("#replay-reply")).to_contain_text("delivered again", timeout=60_000)
    assert wait_until(lambda: len(splunk.store.events()) >= before + 50, timeout=90)
    page.click("#replay-close")
    expect(row(page, "Page splunk").locator(".state")).to_have_text("Healthy", timeout=30_000)


def test_pause_dead_letters_and_delete(page: Page, receivers: dict[str, Any]) -> None:
    target = row(page, "Page coralogix")
    target.locator("button", has_text="Pause").click()
    expect(target.locator(".state")).to_have_text("Paused")
    target.locator("button", has_text="Resume").click()
    expect(target.locator(".state")).not_to_have_text("Paused", timeout=10_000)
    target.locator("button", has_text="Dead letters").click()
    expect(page.locator("#letters")).to_be_visible()
    expect(page.locator("#letters-empty")).to_be_visible()
    page.click("#letters-close")
    page.once("dialog", lambda dialog: dialog.accept())
    target.locator("button", has_text="Delete").click()
    expect(row(page, "Page coralogix")).to_have_count(0)


def test_moving_a_destination_asks_for_its_secret_again(
    page: Page, receivers: dict[str, Any]
) -> None:
    with DatadogReceiver(DD_KEY) as elsewhere:
        row(page, "Page datadog failures").locator("button", has_text="Edit").click()
        expect(page.locator("#setup")).to_be_visible()
        note = page.locator('[data-setting="api_key"] .secret-again')
        expect(note).to_be_hidden()
        page.fill("#setting-endpoint", elsewhere.url)
        expect(note).to_contain_text("Endpoint changed: enter it again")
        page.click("#send-test")  # tests the form's settings, which lack the key
        error = page.locator('[data-setting="api_key"] .field-error')
        expect(error).not_to_be_empty()
        page.click("#save-destination")
        expect(error).to_contain_text("must be given again")
        assert elsewhere.store.events() == []  # the saved key went nowhere
        page.fill("#setting-api_key", DD_KEY)
        page.click("#send-test")
        expect(page.locator("#test-reply")).to_contain_text("Delivered", timeout=20_000)
        page.click("#save-destination")
        expect(page.locator("#setup")).to_be_hidden()
        # Back where it was, for the tests after this one.
        row(page, "Page datadog failures").locator("button", has_text="Edit").click()
        page.fill("#setting-endpoint", receivers["datadog"].url)
        page.fill("#setting-api_key", DD_KEY)
        page.click("#save-destination")
        expect(page.locator("#setup")).to_be_hidden()


def test_a_webhook_with_pii_rules_set_up_from_the_page(page: Page, running: Authtrail) -> None:
    # The receiver learns the secret from the page, as a person would copy it over.
    with WebhookReceiver([WEBHOOK_SECRET]) as hook:
        page.locator(".platform[data-platform=webhook] button").click()
        expect(page.locator("#setup")).to_be_visible()
        page.fill("#setting-name", "Page webhook")
        page.fill("#setting-url", hook.endpoint)
        page.fill("#setting-headers", "X-Team: iam")
        page.select_option('[id="transform-actor.email"]', "hash")
        page.select_option("#transform-ip", "mask")
        page.fill("#transform-attributes", "attributes.device=drop")
        page.click("#save-destination")
        expect(page.locator("#setup")).to_be_hidden()
        notice = page.locator("#secret-notice")
        expect(notice).to_be_visible()
        secret = page.locator("#secret-notice-value").inner_text()
        assert secret.startswith("whsec_")
        hook.use_secrets([secret])
        page.click("#secret-notice-done")
        expect(notice).to_be_hidden()
        expect(row(page, "Page webhook")).to_be_visible()

        running.produce(_raw_events(20, "page-webhook"))
        mine = lambda: [e for e in hook.store.events() if e.get("reason") == "page-webhook"]  # noqa: E731
        assert wait_until(lambda: len(mine()) >= 20, timeout=90)
        body = orjson.dumps(mine())
        assert b"ada@example.com" not in body and b"81.2.69.10" not in body
        assert {e["ip"] for e in mine()} == {"81.2.0.0/16"}
        assert {len(e["actor_email"]) for e in mine()} == {64}
        assert all("raw" not in e for e in mine())

        # Rotating from the page: the new secret is shown once, the old one still signs.
        page.once("dialog", lambda dialog: dialog.accept())
        row(page, "Page webhook").locator("button", has_text="Rotate secret").click()
        expect(notice).to_be_visible()
        fresh = page.locator("#secret-notice-value").inner_text()
        assert fresh.startswith("whsec_") and fresh != secret
        page.click("#secret-notice-done")
        hook.use_secrets([fresh])
        running.produce(_raw_events(5, "page-webhook"))
        assert wait_until(lambda: len(mine()) >= 25, timeout=90)
        expect(row(page, "Page webhook").locator(".state")).to_have_text("Healthy", timeout=30_000)


def test_an_s3_archive_with_a_pii_rule_set_up_from_the_page(
    page: Page, running: Authtrail, receivers: dict[str, Any]
) -> None:
    aws: Aws = receivers["aws"]
    bucket = f"page-{uuid.uuid4().hex[:8]}"
    aws.bucket(bucket)
    page.locator(".platform[data-platform=s3] button").click()
    expect(page.locator("#setup")).to_be_visible()
    page.fill("#setting-name", "Page archive")
    for key, value in {
        "region": REGION,
        "bucket": bucket,
        "prefix": "audit",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "endpoint": aws.url,
        "max_seconds": "1",
    }.items():
        page.fill(f"#setting-{key}", value)
    page.select_option("#setting-sse", "AES256")
    page.select_option('[id="transform-actor.email"]', "hash")
    page.select_option("#transform-ip", "drop")
    page.click("#send-test")
    expect(page.locator("#test-reply")).to_contain_text("Delivered", timeout=20_000)
    page.click("#save-destination")
    expect(page.locator("#setup")).to_be_hidden()
    expect(row(page, "Page archive")).to_be_visible()

    running.produce(_raw_events(20, "page-archive"))

    def archived() -> list[tuple[str, dict[str, Any]]]:
        return [
            (key, orjson.loads(line))
            for key, body in aws.objects(bucket).items()
            for line in body.splitlines()
        ]

    mine = lambda: [(k, e) for k, e in archived() if e.get("reason") == "page-archive"]  # noqa: E731
    assert wait_until(lambda: len(mine()) >= 20, timeout=90)
    assert len({e["event_id"] for _, e in mine()}) == len(mine()) == 20
    for key, event in mine():
        assert key.startswith(f"audit/account=acc_page/date={event['occurred_at'][:10]}/")
        assert "ip" not in event and len(event["actor_email"]) == 64
    assert all(b"ada@example.com" not in body for body in aws.objects(bucket).values())
    expect(row(page, "Page archive").locator(".state")).to_have_text("Healthy", timeout=30_000)


def test_notification_channel_from_the_page(page: Page) -> None:
    with WebhookReceiver([WEBHOOK_SECRET]) as hook:
        expect(page.locator("#notifications")).to_be_visible()
        page.fill("#channel-name", "ops page")
        page.fill("#channel-url", hook.endpoint)
        page.click("#channel-add")
        notice = page.locator("#secret-notice")
        expect(notice).to_be_visible()
        secret = page.locator("#secret-notice-value").inner_text()
        assert secret.startswith("whsec_")
        page.click("#secret-notice-done")
        channel = page.locator("#channels-body tr").filter(has_text="ops page")
        channel.locator("button", has_text="Send test").click()
        expect(page.locator("#channel-reply")).to_contain_text("not delivered")  # 401
        hook.use_secrets([secret])
        channel.locator("button", has_text="Send test").click()
        expect(page.locator("#channel-reply")).to_contain_text("ops page: delivered")
        assert hook.store.events()[-1]["type"] == "authtrail.test"
        page.once("dialog", lambda dialog: dialog.accept())
        channel.locator("button", has_text="Remove").click()
        expect(channel).to_have_count(0)


def test_a_destination_failing_too_long_shows_suspended_and_resumes(
    page: Page, running: Authtrail
) -> None:
    with DatadogReceiver(DD_KEY) as failing:
        failing.faults.fail_next(10**6, 503)
        page.locator(".platform[data-platform=datadog] button").click()
        page.fill("#setting-name", "Page suspended")
        page.fill("#setting-api_key", DD_KEY)
        page.fill("#setting-endpoint", failing.url)
        page.click("#save-destination")
        expect(page.locator("#setup")).to_be_hidden()
        target = row(page, "Page suspended")
        expect(target).to_be_visible()
        # The page sets no suspension delay: the API does (5 s, the shortest).
        destination_id = target.get_attribute("data-id")
        changed = httpx.patch(
            f"{running.api}/api/v1/destinations/{destination_id}",
            json={"suspend_after": 5},
            headers=running.headers,
            timeout=30,
        )
        assert changed.status_code == 200 and changed.json()["suspend_after"] == 5
        running.produce(_raw_events(5, "page-suspend"))
        expect(target.locator(".state")).to_have_text("Suspended", timeout=90_000)
        failing.faults.clear()
        target.locator("button", has_text="Resume").click()
        expect(target.locator(".state")).to_have_text("Healthy", timeout=90_000)
        assert wait_until(
            lambda: (
                sum(1 for e in failing.store.events() if "page-suspend" in orjson.dumps(e).decode())
                >= 5
            ),
            timeout=60,
        )
