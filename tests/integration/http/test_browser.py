"""The simulated hosted form in a real browser: headless Chromium (Debian's
package) driven by Playwright, against the platform app and the HTTP
simulator on loopback sockets."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.http.conftest import Stack

CHROMIUM = os.environ.get("ONBOARDING_FSM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE = os.environ.get("ONBOARDING_FSM_REQUIRE_BROWSER") == "1"
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _unavailable(why: str) -> None:
    if REQUIRE:
        pytest.fail(f"{why}; ONBOARDING_FSM_REQUIRE_BROWSER=1 makes this a failure")
    pytest.skip(why)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("browser tests need the playwright package (pip install playwright)")
    if not Path(CHROMIUM).exists():
        _unavailable(f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context()
        yield context.new_page()
        context.close()
        browser.close()


def test_a_person_onboards_in_a_browser(stack: Stack, page: Any, tmp_path: Path) -> None:
    acct = stack.create()
    page.goto(stack.start_url(acct))
    assert "Verify your account" in page.content()  # the simulated hosted form
    assert page.locator("input[name='individual.first_name']").input_value() == "Jenny"
    page.fill("input[name='_sms_code']", "000-000")
    page.click("#finish")
    page.wait_for_url("**/onboarding/done**")
    assert "Onboarding: verified" in page.content()
    page.screenshot(path=str(tmp_path / "done.png"))
    assert stack.state(acct) == "verified"


def test_wrong_sms_code_then_save_for_later(stack: Stack, page: Any) -> None:
    acct = stack.create()
    page.goto(stack.start_url(acct))
    page.fill("input[name='_sms_code']", "123-456")
    page.click("#finish")
    assert "wrong SMS code" in page.content()
    page.fill("input[name='individual.first_name']", "Jenny")
    page.click("#save")
    page.wait_for_url("**/onboarding/done**")
    assert "Onboarding: returned_incomplete" in page.content()
    assert stack.state(acct) == "returned_incomplete"


def test_a_used_link_sends_the_browser_through_refresh(stack: Stack, page: Any) -> None:
    acct = stack.create()
    page.goto(stack.start_url(acct))
    used = page.url
    page.goto(used)  # back/forward, or a second tab: Stripe sends the holder to refresh_url
    assert page.url != used and "/setup/s/" in page.url  # our refresh minted a new link
    page.fill("input[name='_sms_code']", "000-000")
    page.click("#finish")
    page.wait_for_url("**/onboarding/done**")
    assert stack.state(acct) == "verified"
