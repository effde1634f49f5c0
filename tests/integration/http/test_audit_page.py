"""The read-only audit page: in headless Chromium (screenshots taken), and
over plain HTTP — its own authentication, live mode, bad filters, escaping,
no script anywhere."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from adapters.http import audit_page, create_app
from adapters.http.audit_auth import BasicTokenAuth, auditor_from_settings, basic_credentials
from adapters.http.serving import Served, bind
from adapters.simulator import Simulator
from onboarding_fsm import FakeClock, Settings, SettingsError, State
from onboarding_fsm.bootstrap import build_engine
from onboarding_fsm.engine import Engine
from tests.integration.http.conftest import Stack, make_stack
from tests.integration.http.holder import Holder
from tests.integration.http.test_browser import CHROMIUM, FLAGS, REQUIRE

TOKEN = "audit-token-0123456789-abcdefghijklmnop"
HOSTILE = "<script>alert(1)</script>"
AUDITOR = ("alice", TOKEN)


class HeaderAuditor:
    """What a platform plugs in: its own single sign-on says who the auditor is."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def authenticate(self, request: Request) -> str | None:
        user = request.headers.get("x-sso-user")
        return f"sso:{user}" if user else None


class HolderAuth:
    """Holders' hook for the live-mode app (never asked here)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    def authenticate(self, request: Request, account_id: str) -> str | None:
        return None

    def remember(self, response: Any, account_id: str, holder: str) -> None:
        return None


@pytest.fixture
def audited(db_url: str, clock: FakeClock) -> Iterator[Stack]:
    """The stack with the audit page behind the built-in token."""
    s = make_stack(db_url, clock, audit_token=TOKEN)
    yield s
    s.stop()


def scenario(stack: Stack, holder: Holder) -> dict[str, str]:
    """verified; returned_incomplete then disabled (Stripe rejects it); created; link_issued by a hostile actor."""
    verified = stack.create("seller-verified")
    holder.onboard(stack.start_url(verified))
    rejected = stack.create("seller-rejected")
    action, fields, _ = holder.open_form(stack.start_url(rejected))
    partial = {k: ("" if not k.startswith("_") and k != "business_type" else v) for k, v in fields.items()}
    holder.follow(holder.submit(action, partial, finish=False))
    stack.settle()
    assert stack.state(rejected) == "returned_incomplete"
    stack.clock.advance(10)
    stack.sim.reject(rejected)
    stack.settle()
    created = stack.create('<b>ref</b>"')
    hostile = stack.create("seller-hostile")
    stack.engine.issue_link(hostile, actor=HOSTILE)
    states = {a: stack.state(a) for a in (verified, rejected, created, hostile)}
    assert list(states.values()) == ["verified", "disabled", "created", "link_issued"]
    return {"verified": verified, "rejected": rejected, "created": created, "hostile": hostile}


def get(stack: Stack, path: str, auth: tuple[str, str] | None = AUDITOR, **kwargs: Any) -> httpx.Response:
    return httpx.get(stack.platform.url + path, auth=auth, timeout=30, **kwargs)


# ------------------------------------------------------------------ browser


@pytest.fixture
def auditor_page(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium signed in as an auditor (HTTP Basic); skipped like
    test_browser.py when Chromium or Playwright is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("browser tests need the playwright package (pip install playwright)")
    if not Path(CHROMIUM).exists():
        unavailable(f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(
            http_credentials={"username": AUDITOR[0], "password": AUDITOR[1]}, viewport={"width": 1300, "height": 900}
        )
        page = context.new_page()
        errors: list[str] = []  # a CSP violation or a failed load shows here

        def console(message: Any) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", console)
        yield page, errors
        context.close()
        browser.close()


def unavailable(why: str) -> None:
    if REQUIRE:
        pytest.fail(f"{why}; ONBOARDING_FSM_REQUIRE_BROWSER=1 makes this a failure")
    pytest.skip(why)


def shot(page: Any, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    assert path.exists() and path.stat().st_size > 0
    return path


def test_an_auditor_reads_the_trail_in_a_browser(
    audited: Stack, holder: Holder, auditor_page: Any, tmp_path: Path
) -> None:
    (page, errors), engine = auditor_page, audited.engine
    accounts = scenario(audited, holder)
    page.goto(audited.platform.url + "/audit")
    counts = {
        row.get_attribute("data-state"): int(row.locator("td").nth(1).inner_text())
        for row in page.locator("table.counts tr[data-state]").all()
    }
    assert counts == {s.value: n for s, n in engine.count_by_state().items()}
    assert "Signed in as auditor:alice" in page.inner_text("header")
    shots = [shot(page, tmp_path / "index.png")]

    page.select_option("select[name='state']", "disabled")
    page.click("form.filters button")
    page.wait_for_url(re.compile(r".*/audit\?state=disabled.*"))
    listed = [row.get_attribute("data-account") for row in page.locator("table.accounts tbody tr").all()]
    assert listed == [accounts["rejected"]]
    shots.append(shot(page, tmp_path / "filtered.png"))

    page.click(f"a.account:has-text('{accounts['rejected']}')")
    page.wait_for_url(f"**/audit/accounts/{accounts['rejected']}")
    history = engine.history(accounts["rejected"])
    rows = [
        (int(r.get_attribute("data-seq")), r.get_attribute("data-from"), r.get_attribute("data-to"),
         r.get_attribute("data-trigger"))
        for r in page.locator("table.timeline tr.transition").all()
    ]  # fmt: skip
    assert rows == [
        (t.seq, t.from_state.value if t.from_state else "", t.to_state.value, t.trigger.value) for t in history
    ]
    assert [t.to_state for t in history] == [
        State.CREATED, State.LINK_ISSUED, State.RETURNED_INCOMPLETE, State.DISABLED
    ]  # fmt: skip
    visited = {g.get_attribute("data-state") for g in page.locator("svg.machine g.state.visited").all()}
    assert visited == {t.to_state.value for t in history} | {t.from_state.value for t in history if t.from_state}
    assert visited == {"created", "link_issued", "returned_incomplete", "disabled"}
    taken = {p.get_attribute("data-edge") for p in page.locator("svg.machine path.edge.taken").all()}
    assert taken == {f"{t.from_state.value}->{t.to_state.value}" for t in history if t.from_state}
    assert page.locator("svg.machine g.state[data-visited='false']").count() == 2
    assert page.locator("svg.machine g.state.current").get_attribute("data-state") == "disabled"
    assert page.locator("[data-chain]").get_attribute("data-chain") == "ok"
    assert "States visited: created, link_issued, returned_incomplete, disabled." in page.inner_text(".legend")
    shots.append(shot(page, tmp_path / "account.png"))

    page.click("nav >> text=Transitions")
    page.select_option("select[name='to_state']", "verified")
    page.click("form.filters button")
    page.wait_for_url(re.compile(r".*/audit/transitions\?.*to_state=verified.*"))
    found = {r.get_attribute("data-account") for r in page.locator("table.timeline tr.transition").all()}
    assert found == {accounts["verified"]}
    shots.append(shot(page, tmp_path / "transitions.png"))

    page.click("nav >> text=Verify the whole trail")
    page.wait_for_url("**/audit/verify")
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "ok"
    assert page.inner_text("[data-verdict]").startswith("OK")
    shots.append(shot(page, tmp_path / "verify.png"))

    assert page.locator("script").count() == 0
    assert errors == []  # nothing the policy blocked, nothing missing
    assert all(p.stat().st_size > 1000 for p in shots)


# --------------------------------------------------------------- plain HTTP


def test_the_token_guards_every_page(audited: Stack) -> None:
    acct = audited.create()
    paths = ["/audit", f"/audit/accounts/{acct}", "/audit/transitions", "/audit/verify"]
    for path in paths:
        for auth in (None, ("alice", "wrong-" + TOKEN), ("alice", TOKEN[:-1])):
            refused = get(audited, path, auth=auth)
            assert refused.status_code == 401, (path, auth)
            assert refused.headers["www-authenticate"].startswith('Basic realm="onboarding-fsm audit"')
            assert acct not in refused.text
        ok = get(audited, path)
        assert ok.status_code == 200, path
        assert "Signed in as <strong>auditor:alice</strong>" in ok.text
        assert ok.headers["cache-control"] == "no-store"
        assert ok.headers["x-frame-options"] == "DENY"
        csp = ok.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "style-src 'unsafe-inline'" in csp
    # the holders' scheme is another: an auditor's credentials start no onboarding
    assert get(audited, f"/onboarding/{acct}/start").status_code == 401


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_are_parsed_strictly() -> None:
    assert basic_credentials(basic("bob", "a:b")) == ("bob", "a:b")
    assert basic_credentials("basic  " + basic("bob", "x")[6:] + " ") == ("bob", "x")
    for header in (None, "", "Bearer x", "Basic", "Basic !!!", "Basic " + "bm9jb2xvbg==", "Basic //79"):
        assert basic_credentials(header) is None, header


def test_a_platform_hook_names_the_auditor(audited: Stack) -> None:
    hooked = audited.settings.model_copy(
        update={"audit_auth_hook": "tests.integration.http.test_audit_page:HeaderAuditor"}
    )
    assert isinstance(auditor_from_settings(hooked), HeaderAuditor)  # the hook wins over the token
    served = Served(create_app(audited.engine, hooked, authenticator=audited.auth), bind())
    try:
        assert httpx.get(served.url + "/audit", auth=AUDITOR).status_code == 401
        ok = httpx.get(served.url + "/audit", headers={"x-sso-user": "carol"})
        assert ok.status_code == 200 and "Signed in as <strong>sso:carol</strong>" in ok.text
    finally:
        served.stop()
    with pytest.raises(SettingsError, match="cannot be loaded"):
        auditor_from_settings(hooked.model_copy(update={"audit_auth_hook": "nowhere.module:thing"}))


def test_test_mode_without_configuration_is_open_at_the_configured_path(db_url: str, clock: FakeClock) -> None:
    stack = make_stack(db_url, clock, audit_path="/ops/audit/")
    try:
        acct = stack.create()
        assert get(stack, "/audit", auth=None).status_code == 404
        index = get(stack, "/ops/audit", auth=None)
        assert index.status_code == 200 and "auditor:anonymous" in index.text
        assert f'href="/ops/audit/accounts/{acct}"' in index.text
        assert get(stack, f"/ops/audit/accounts/{acct}", auth=None).status_code == 200
    finally:
        stack.stop()


def live_settings(db_url: str, **extra: Any) -> Settings:
    return Settings(
        database_url=db_url,
        livemode=True,
        stripe_backend="stripe",
        stripe_api_key="sk_live_x",
        public_base_url="https://platform.example",
        webhook_secrets=["whsec_live"],
        **extra,
    )


def live_app(settings: Settings, clock: FakeClock) -> tuple[Engine, Served]:
    engine = build_engine(settings, clock=clock, gateway=Simulator(clock))  # Stripe is never called here
    return engine, Served(create_app(engine, settings, authenticator=HolderAuth()), bind())


def test_live_mode_serves_the_page_only_when_configured(
    db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapters.http.audit"):
        engine, served = live_app(live_settings(db_url), clock)
    try:
        for path in ("/audit", "/audit/verify", "/audit/transitions"):
            assert httpx.get(served.url + path, auth=AUDITOR).status_code == 404
        assert "audit page (/audit) is not served" in caplog.text
    finally:
        served.stop()
        engine.close()
    engine, served = live_app(live_settings(db_url, audit_token=TOKEN), clock)
    try:
        assert httpx.get(served.url + "/audit").status_code == 401
        assert httpx.get(served.url + "/audit", auth=AUDITOR).status_code == 200
    finally:
        served.stop()
        engine.close()


def test_bad_filters_are_400_pages_never_500(audited: Stack) -> None:
    acct = audited.create()
    bad = {
        "/audit?state=bogus": "state must be one of",
        "/audit?after=x' OR 1=1": "not a Stripe account id",
        "/audit/transitions?since=yesterday": "since must be an ISO 8601 time",
        "/audit/transitions?until=2026-13-01": "until must be an ISO 8601 time",
        "/audit/transitions?since=2026-03-03&until=2026-03-02": "until must not be before since",
        "/audit/transitions?to_state=nope": "to_state must be one of",
        "/audit/transitions?from_state=nope": "from_state must be one of",
        "/audit/transitions?trigger=explode": "trigger must be one of",
        "/audit/transitions?source=%00": "source must be one of",
        "/audit/transitions?account=someone": "not a Stripe account id",
        "/audit/transitions?cursor=garbage": "cursor",
        "/audit/transitions?cursor=" + "x" * 600: "cursor is too long",
        "/audit/accounts/not-an-account": "not a Stripe account id",
    }
    for path, why in bad.items():
        response = get(audited, path)
        assert response.status_code == 400, path
        assert why in response.text.replace("&#x27;", "'"), (path, response.text)
        assert "<script" not in response.text.lower()
    missing = get(audited, "/audit/accounts/acct_Nobody123")
    assert missing.status_code == 404 and "no onboarding account" in missing.text
    fine = get(audited, "/audit/transitions?since=2026-03-02T09:30&until=2026-03-03T00:00:00%2B01:00&trigger=create")
    assert fine.status_code == 200 and acct in fine.text


def test_pages_follow_their_keyset_cursors(audited: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_page, "PAGE", 2)
    made = sorted(audited.create(f"seller-{i}") for i in range(5))
    for first, marker in (("/audit", "table.accounts"), ("/audit/transitions?trigger=create", "transitions")):
        seen: list[str] = []
        path: str | None = first
        while path is not None:
            response = get(audited, path)
            assert response.status_code == 200, path
            seen += [part.split('"', 1)[0] for part in response.text.split('<tr class="transition" data-account="')[1:]]
            seen += [part.split('"', 1)[0] for part in response.text.split('<tr data-account="')[1:]]
            nxt = response.text.split('rel="next"')[0].rsplit('href="', 1) if 'rel="next"' in response.text else None
            path = nxt[1].split('"', 1)[0].replace("&amp;", "&") if nxt else None
        assert seen == made, marker


def test_outside_text_is_escaped_and_no_page_has_a_script(audited: Stack, holder: Holder) -> None:
    accounts = scenario(audited, holder)
    page = get(audited, f"/audit/accounts/{accounts['hostile']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    index = get(audited, "/audit").text
    assert "&lt;b&gt;ref&lt;/b&gt;&quot;" in index and "<b>ref</b>" not in index
    reflected = get(audited, "/audit/transitions", params={"actor": HOSTILE}).text
    assert f'value="{HOSTILE}"' not in reflected and "&lt;script&gt;" in reflected
    found = get(audited, "/audit/transitions", params={"actor": HOSTILE}).text
    assert f'data-account="{accounts["hostile"]}"' in found
    pages = [
        "/audit", "/audit?state=disabled", "/audit?ref=" + accounts["created"], "/audit/transitions",
        "/audit/transitions?to_state=<script>", "/audit/verify", "/audit/accounts/acct_Nobody123",
        *(f"/audit/accounts/{a}" for a in accounts.values()),
    ]  # fmt: skip
    for path in pages:
        for auth in (AUDITOR, None):
            text = get(audited, path, auth=auth).text.lower()
            assert "<script" not in text and "javascript:" not in text and " on" + "load=" not in text, path


def test_the_verify_page_reports_problems(db_url: str, clock: FakeClock) -> None:
    stack = make_stack(db_url, clock, audit_key="k" * 40)  # keyed, but nothing sealed under the key yet
    try:
        acct = stack.create()
        report = get(stack, "/audit/verify", auth=None)
        assert report.status_code == 200 and 'data-verdict="problems"' in report.text and "NOT OK" in report.text
        assert "nothing is sealed under the key" in report.text
        assert 'data-chain="ok"' in get(stack, f"/audit/accounts/{acct}", auth=None).text  # the chain itself holds
        stack.engine.audit.checkpoint()
        assert 'data-verdict="ok"' in get(stack, "/audit/verify", auth=None).text
    finally:
        stack.stop()


def test_the_token_auth_needs_the_whole_token() -> None:
    auth = BasicTokenAuth(TOKEN)

    def asking(header: str) -> Request:
        return Request({"type": "http", "headers": [(b"authorization", header.encode())]})

    assert auth.authenticate(asking(basic("dana", TOKEN))) == "auditor:dana"
    assert auth.authenticate(asking(basic("", TOKEN))) is None  # a name is needed: it is who read the trail
    assert auth.authenticate(asking(basic("dana", TOKEN + "x"))) is None
    assert auth.authenticate(asking(basic("da na", TOKEN))) is None
