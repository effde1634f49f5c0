"""The SDK adapter: error translation, bounded backoff, the start-up mode check."""

from __future__ import annotations

import pytest
import stripe

from adapters.stripe import StripeSdkGateway, translate
from onboarding_fsm import SettingsError
from onboarding_fsm.account import NewAccount
from onboarding_fsm.errors import (
    StripeAuthenticationFailed,
    StripeIdempotencyConflict,
    StripeRateLimited,
    StripeRequestFailed,
    StripeUnavailable,
)
from tests.integration.http.conftest import Stack


@pytest.mark.parametrize(
    ("error", "expected", "retryable"),
    [
        (stripe.RateLimitError("slow down", http_status=429), StripeRateLimited, True),
        (stripe.APIConnectionError("reset by peer"), StripeUnavailable, True),
        (stripe.APIError("boom", http_status=500), StripeUnavailable, True),
        (stripe.APIError("conflict", http_status=409), StripeUnavailable, True),
        (stripe.IdempotencyError("reused", http_status=400), StripeIdempotencyConflict, False),
        (stripe.AuthenticationError("bad key", http_status=401), StripeAuthenticationFailed, False),
        (stripe.PermissionError("no access", http_status=403), StripeAuthenticationFailed, False),
        (stripe.InvalidRequestError("no such account", "account", http_status=404), StripeRequestFailed, False),
        (ValueError("not from stripe"), StripeUnavailable, True),
    ],
)
def test_every_sdk_error_lands_in_the_engine_tree(error: Exception, expected: type, retryable: bool) -> None:
    translated = translate(error)
    assert type(translated) is expected
    assert translated.retryable is retryable


def test_request_id_code_and_param_are_kept(stack: Stack) -> None:
    with pytest.raises(StripeRequestFailed) as info:
        stack.gateway.create_account(NewAccount("seller-x", "ZZ", ("transfers",)), idempotency_key="k")
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert (info.value.http_status, info.value.code, info.value.param) == (400, "parameter_invalid", "country")


def test_rate_limits_back_off_within_a_bound(stack: Stack) -> None:
    waits: list[float] = []
    gateway = StripeSdkGateway(
        "sk_test_onboarding_fsm_simulator", api_base=stack.simulated.url, rate_limit_retries=3, sleep=waits.append
    )
    stack.server.faults.add("status", status=429, times=10, method="GET")
    with pytest.raises(StripeRateLimited):
        gateway.list_accounts()
    assert len(waits) == 3  # then gives up: the caller sees a retryable error
    assert all(0 < w <= 8 for w in waits)


def test_a_wrong_key_is_a_permanent_401(stack: Stack) -> None:
    gateway = StripeSdkGateway("sk_test_wrong", api_base=stack.simulated.url, sleep=lambda s: None)
    with pytest.raises(StripeAuthenticationFailed) as info:
        gateway.list_accounts()
    assert info.value.http_status == 401


def test_mode_check_at_start_up(stack: Stack) -> None:
    stack.gateway.check_mode(livemode=False)
    with pytest.raises(SettingsError, match="test mode key"):
        stack.gateway.check_mode(livemode=True)


def test_switching_to_stripe_is_settings_only(stack: Stack, db_url: str) -> None:
    """The same engine talks to any Stripe-compatible server through the SDK."""
    from onboarding_fsm import Settings, build_engine

    settings = Settings(
        database_url=db_url,
        stripe_backend="stripe",
        stripe_api_key="sk_test_onboarding_fsm_simulator",
        stripe_api_base=stack.simulated.url,
    )
    engine = build_engine(settings, clock=stack.clock)
    account = engine.create_account("by-settings", "US", ["transfers"])
    assert stack.sim.retrieve_account(account.stripe_account_id).platform_ref == "by-settings"
    assert engine.issue_link(account.stripe_account_id).url.startswith(stack.simulated.url)


def test_updates_and_new_capabilities_through_the_sdk(stack: Stack) -> None:
    """Issue 11 over Stripe's wire: the SDK adapter sends the update, the
    engine records it with the Request-Id; Stripe's own lock refusal (the
    gateway called directly, past the engine's check) lands in the error tree."""
    engine = stack.engine
    acct = engine.create_account("sdk-update", "US", ["transfers"]).stripe_account_id
    updated = engine.update_account(acct, {"business_profile": {"mcc": "5734"}}, actor="ops")
    record = engine.history(acct)[-1]
    assert (record.trigger.value, record.actor) == ("update", "ops")
    assert record.request_id and record.request_id.startswith("req_")
    assert "business_profile.mcc" not in updated.snapshot.requirements.currently_due
    grown = engine.request_capabilities(acct, ["card_payments"])
    assert grown.requested_capabilities == ("transfers", "card_payments")
    assert grown.snapshot.capability("card_payments") == "inactive"

    express = engine.create_account("sdk-locked", "US", ["transfers"], type="express").stripe_account_id
    engine.issue_link(express)
    with pytest.raises(StripeRequestFailed) as refused:  # past the engine's own check: Stripe refuses too
        stack.gateway.update_account(express, {"individual": {"first_name": "Jenny"}})
    assert refused.value.http_status == 400


def test_an_account_without_country_through_the_sdk(stack: Stack) -> None:
    account = stack.engine.create_account("sdk-no-country", type="express")
    assert account.snapshot.country == "US"  # Stripe's default: the platform's country
