"""The pure self-check: Stripe's webhook endpoints against what this deployment expects."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from onboarding_fsm.errors import MalformedPayload
from onboarding_fsm.selfcheck import (
    WANTED,
    Expected,
    Level,
    SelfCheck,
    WebhookEndpoint,
    check,
    key_mode,
    parse_webhook_endpoint,
    same_url,
)

URL = "https://pay.example/webhooks/stripe"
EXPECTED = Expected(webhook_url=URL, livemode=False)
CONNECT = WebhookEndpoint("we_connect", URL, WANTED, "enabled", False, application="ca_platform")


def levels(report: SelfCheck) -> list[tuple[str, str]]:
    return [(f.level.value, f.topic) for f in report.findings]


def text(report: SelfCheck) -> str:
    return "\n".join(f"{f.message} {f.fix or ''}" for f in report.findings)


def test_a_correct_connect_endpoint_passes_without_warnings() -> None:
    report = check([CONNECT], EXPECTED)
    assert report.passed and report.warnings == ()
    assert levels(report) == [("ok", "Connect endpoint"), ("ok", "secrets")]
    assert "we_connect receives account.updated from connected accounts" in text(report)


@pytest.mark.parametrize(
    "url",
    [
        "https://pay.example/webhooks/stripe/",
        "HTTPS://PAY.example:443/webhooks/stripe",
        " https://pay.example/webhooks/stripe",
    ],
)
def test_urls_compare_without_case_default_port_or_trailing_slash(url: str) -> None:
    assert same_url(url, URL)
    assert check([replace(CONNECT, url=url)], EXPECTED).passed


def test_every_event_by_wildcard_passes() -> None:
    report = check([replace(CONNECT, enabled_events=("*",))], EXPECTED)
    assert report.passed and report.warnings == ()


def test_no_endpoint_at_all_is_a_problem_with_the_way_to_create_one() -> None:
    report = check([], EXPECTED)
    assert not report.passed
    assert levels(report)[0] == ("problem", "Connect endpoint")
    assert "no webhook endpoint at all in test mode" in text(report)
    assert "-d connect=true" in text(report) and "Events from: Connected accounts" in text(report)


def test_a_platform_endpoint_alone_is_the_classic_mistake() -> None:
    platform = replace(CONNECT, id="we_platform", application=None, enabled_events=("*",))
    report = check([platform], EXPECTED)
    assert not report.passed
    assert "only platform endpoint(s)" in text(report) and "classic Connect mistake" in text(report)
    assert "cannot be changed" in text(report)


def test_a_connect_endpoint_on_another_host_points_elsewhere() -> None:
    report = check([replace(CONNECT, url="https://old.example/webhooks/stripe")], EXPECTED)
    assert not report.passed
    assert "point elsewhere: we_connect -> https://old.example/webhooks/stripe" in text(report)
    assert "(this host, another path)" not in text(report)


def test_a_connect_endpoint_on_another_path_of_this_host_says_so() -> None:
    report = check([replace(CONNECT, url="https://pay.example/hooks")], EXPECTED)
    assert not report.passed and "(this host, another path)" in text(report)


def test_a_disabled_endpoint_is_a_problem() -> None:
    report = check([replace(CONNECT, status="disabled")], EXPECTED)
    assert not report.passed
    assert "is disabled: Stripe sends it nothing" in text(report) and "disabled=false" in text(report)


def test_a_disabled_second_endpoint_beside_a_working_one_is_a_warning() -> None:
    report = check([CONNECT, replace(CONNECT, id="we_old", status="disabled")], EXPECTED)
    assert report.passed
    assert ("warning", "Connect endpoint") in levels(report)


def test_an_endpoint_without_account_updated_is_a_problem() -> None:
    report = check([replace(CONNECT, enabled_events=("capability.updated",))], EXPECTED)
    assert not report.passed
    assert "not subscribed to account.updated (it has capability.updated)" in text(report)


def test_missing_capability_and_deauthorization_events_are_warnings_that_say_why() -> None:
    report = check([replace(CONNECT, enabled_events=("account.updated",))], EXPECTED)
    assert report.passed
    assert [f.topic for f in report.warnings] == ["events", "events"]
    assert "capability.updated: the engine applies" in text(report)
    assert "account.application.deauthorized: an account with its own Dashboard" in text(report)


def test_endpoints_of_the_other_mode_mean_the_key_and_livemode_disagree() -> None:
    report = check([CONNECT], replace(EXPECTED, livemode=True))
    assert not report.passed
    assert levels(report)[:2] == [("problem", "mode"), ("problem", "Connect endpoint")]
    assert "test mode endpoints (we_connect) but livemode=True" in text(report)


def test_each_endpoint_delivering_here_needs_its_secret() -> None:
    platform = replace(CONNECT, id="we_platform", application=None)
    report = check([CONNECT, platform], EXPECTED)
    assert report.passed and ("warning", "secrets") in levels(report)
    assert "2 enabled endpoints deliver here" in text(report)
    assert check([CONNECT, platform], replace(EXPECTED, secrets=2)).warnings == ()


def test_two_connect_endpoints_here_deliver_every_event_twice() -> None:
    report = check([CONNECT, replace(CONNECT, id="we_two")], replace(EXPECTED, secrets=2))
    assert report.passed and "every event arrives once per endpoint" in text(report)


def test_the_simulators_public_secret_is_a_warning() -> None:
    report = check([CONNECT], replace(EXPECTED, public_secret=True))
    assert report.passed and [f.topic for f in report.warnings] == ["secrets"]


def test_key_mode_findings() -> None:
    assert key_mode(False, None).level is Level.OK
    refused = key_mode(True, "the Stripe key is a test mode key but livemode=True")
    assert refused.level is Level.PROBLEM and refused.fix and "live mode key" in refused.fix


RAW: dict[str, Any] = {
    "id": "we_1",
    "object": "webhook_endpoint",
    "api_version": None,
    "application": "ca_1",
    "created": 1,
    "description": None,
    "enabled_events": ["account.updated"],
    "livemode": False,
    "metadata": {},
    "status": "enabled",
    "url": URL,
}


def test_parse_reads_stripes_shape() -> None:
    endpoint = parse_webhook_endpoint(RAW)
    assert endpoint.connect and endpoint.enabled and endpoint.receives("account.updated")
    assert not parse_webhook_endpoint({**RAW, "application": None}).connect


@pytest.mark.parametrize(
    "bad",
    [
        {"enabled_events": "account.updated"},
        {"enabled_events": [1]},
        {"url": None},
        {"livemode": "false"},
        {"id": ""},
        {"status": None},
        {"application": 7},
    ],
)
def test_parse_refuses_malformed_endpoints(bad: dict[str, Any]) -> None:
    with pytest.raises(MalformedPayload):
        parse_webhook_endpoint({**RAW, **bad})
    with pytest.raises(MalformedPayload):
        parse_webhook_endpoint(["not", "an", "object"])
