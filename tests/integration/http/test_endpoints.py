"""Bad input on every endpoint gets a clear 4xx and changes nothing;
health and metrics; the authentication hook."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from adapters.http import create_app
from adapters.http.auth import from_settings
from adapters.http.serving import Served, bind
from adapters.simulator.server import TEST_KEY
from adapters.stripe_wire.signing import sign
from onboarding_fsm import Settings, SettingsError, build_engine
from onboarding_fsm.errors import StripeUnavailable
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from tests.integration.http.conftest import Stack
from tests.integration.http.holder import Holder


def everything(stack: Stack) -> tuple[Any, ...]:
    engine = stack.engine
    return (
        [(a, engine.history(a.stripe_account_id)) for a in engine.accounts()],
        engine.inbox(),
        stack.sim.calls["create_account_link"],
    )


@pytest.fixture
def acct(stack: Stack) -> str:
    return stack.create()


def post_webhook(stack: Stack, body: bytes, header: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return httpx.post(stack.platform.url + "/webhooks/stripe", content=body, headers=headers)


def signed(
    stack: Stack, event: dict[str, Any], secret: str = SIMULATOR_WEBHOOK_SECRET, offset: int = 0
) -> tuple[bytes, str]:
    body = json.dumps(event).encode()
    return body, sign(body, secret, int(stack.clock.now().timestamp()) + offset)


def test_webhook_answers(stack: Stack, acct: str) -> None:
    stack.clock.advance(10)  # clearly after our own fetch (clock_skew_tolerance is 5 s)
    event = {"id": "evt_1", "object": "event", "type": "account.updated", "account": acct,
             "created": int(stack.clock.now().timestamp()), "livemode": False,
             "data": {"object": {**stack.sim.account_json(acct), "requirements": {"disabled_reason": "rejected.fraud"}}}}  # fmt: skip
    first = post_webhook(stack, *signed(stack, event))
    assert first.status_code == 200 and first.json()["outcome"] == "applied"
    assert first.json()["transition"] == {"from": "created", "to": "disabled"}
    again = post_webhook(stack, *signed(stack, event))
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")


def test_an_event_ahead_of_its_account_is_503_and_recorded_nowhere(stack: Stack, acct: str, db_url: str) -> None:
    """Stripe delivered it between its answer to our create and our commit."""

    class Timeout:
        def __getattr__(self, name: str) -> Any:
            return getattr(stack.gateway, name)

        def create_account(self, *args: Any, **kwargs: Any) -> Any:
            raise StripeUnavailable("read timed out: Stripe may have created it")

    creating = build_engine(Settings(database_url=db_url), clock=stack.clock, gateway=Timeout())  # type: ignore[arg-type]
    with pytest.raises(StripeUnavailable):  # our create of seller-race is open (its intent is recorded)
        creating.create_account("seller-race", "US", ["transfers"])
    creating.close()
    stack.clock.advance(10)
    racing = {**stack.sim.account_json(acct), "id": "acct_racing", "metadata": {"onboarding_fsm_ref": "seller-race"}}
    event = {"id": "evt_race", "object": "event", "type": "account.updated", "account": "acct_racing",
             "created": int(stack.clock.now().timestamp()), "livemode": False, "data": {"object": racing}}  # fmt: skip
    answer = post_webhook(stack, *signed(stack, event))
    assert (answer.status_code, answer.json()["kind"]) == (503, "EventAheadOfAccount")
    assert "evt_race" not in [e.event_id for e in stack.engine.inbox()]


@pytest.mark.parametrize(
    ("body", "header", "kind"),
    [
        (b"{}", "t=1,v1=00", "SignatureInvalid"),
        (b"{}", None, "SignatureInvalid"),
        (b"not json", "SIGN", "MalformedEvent"),
        (b"", "SIGN", "MalformedEvent"),
        (b'{"id": "evt_x", "object": "event"}', "SIGN", "MalformedEvent"),
        (b'{"id": "evt_x", "type": "x", "created": 1, "data": {"object": {}}}', "OLD", "TimestampOutOfTolerance"),
        (b'{"id": "evt_x", "type": "x", "created": 1, "data": {"object": {}}}', "FUTURE", "TimestampOutOfTolerance"),
        (b'{"id": "evt_x", "type": "x", "created": 1, "data": {"object": {}}}', "WRONG", "SignatureInvalid"),
    ],
)
def test_bad_webhooks_are_400_and_change_nothing(
    stack: Stack, acct: str, body: bytes, header: str | None, kind: str
) -> None:
    now = int(stack.clock.now().timestamp())
    header = {
        "SIGN": sign(body, SIMULATOR_WEBHOOK_SECRET, now),
        "OLD": sign(body, SIMULATOR_WEBHOOK_SECRET, now - 400),
        "FUTURE": sign(body, SIMULATOR_WEBHOOK_SECRET, now + 400),
        "WRONG": sign(body, "whsec_other", now),
    }.get(header or "", header)
    before = everything(stack)
    response = post_webhook(stack, body, header)
    assert response.status_code == 400 and response.json()["kind"] == kind
    assert everything(stack) == before


def test_oversized_webhook_is_413(stack: Stack) -> None:
    response = post_webhook(stack, b"x" * (1 << 20 | 1), "t=1,v1=0")
    assert response.status_code == 413


def test_onboarding_endpoints_refuse_without_authentication(stack: Stack, acct: str, holder: Holder) -> None:
    other = stack.create("other")
    before = everything(stack)
    base = stack.platform.url
    cases = [
        holder.get(f"{base}/onboarding/{acct}/start"),  # no token
        holder.get(f"{base}/onboarding/{acct}/start?token=forged"),
        holder.get(f"{base}/onboarding/{acct}/start?token={stack.auth.token_for(other)}"),  # someone else's
        holder.get(f"{base}/onboarding/{acct}/refresh"),  # no session cookie
        holder.get(f"{base}/onboarding/{acct}/return"),
    ]
    assert [r.status_code for r in cases] == [401] * 5
    head = holder.client.head(stack.start_url(acct))  # link-preview bots
    assert head.status_code == 405
    post = holder.client.post(stack.start_url(acct))
    assert post.status_code == 405
    assert everything(stack) == before


def test_unknown_or_malformed_account(stack: Stack, holder: Holder) -> None:
    assert holder.get(stack.start_url("acct_nobody")).status_code == 404
    assert holder.get(stack.start_url("not-an-account")).status_code == 400


def test_refresh_is_rate_limited(db_url: str, clock: Any, holder: Holder) -> None:
    from tests.integration.http.conftest import make_stack

    stack = make_stack(db_url, clock, refresh_limit=3, refresh_window_seconds=600)
    try:
        acct = stack.create()
        holder.get(stack.start_url(acct))  # sets the session cookie
        codes = [holder.get(f"{stack.platform.url}/onboarding/{acct}/refresh").status_code for _ in range(5)]
        assert codes == [303, 303, 303, 429, 429]
        stack.clock.advance(601)
        assert holder.get(f"{stack.platform.url}/onboarding/{acct}/refresh").status_code == 303
    finally:
        stack.stop()


def test_health_and_metrics(stack: Stack, acct: str, holder: Holder) -> None:
    assert httpx.get(stack.platform.url + "/healthz").json() == {"status": "ok"}
    holder.onboard(stack.start_url(acct))
    stack.settle()
    text = httpx.get(stack.platform.url + "/metrics").text
    assert 'onboarding_fsm_accounts{state="verified"} 1.0' in text
    assert (
        'onboarding_fsm_transitions_total{from_state="created",to_state="link_issued",trigger="issue_link"} 1.0' in text
    )
    assert 'onboarding_fsm_webhooks_total{outcome="applied"}' in text
    assert "onboarding_fsm_webhook_ingestion_seconds_bucket" in text
    assert "onboarding_fsm_timers_retrying 0.0" in text and "onboarding_fsm_timers_due 0.0" in text


def test_simulator_api_bad_input(stack: Stack) -> None:
    api = stack.simulated.url + "/v1"
    auth = {"Authorization": f"Bearer {TEST_KEY}"}
    bad_key = httpx.get(f"{api}/accounts", headers={"Authorization": "Bearer sk_test_nope"})
    assert bad_key.status_code == 401 and bad_key.json()["error"]["type"] == "invalid_request_error"
    unknown = httpx.post(f"{api}/accounts", data={"country": "US", "colour": "blue"}, headers=auth)
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (400, "colour")
    bad_enum = httpx.post(f"{api}/accounts", data={"type": "platinum"}, headers=auth)
    assert (bad_enum.status_code, bad_enum.json()["error"]["param"]) == (400, "type")
    missing = httpx.get(f"{api}/accounts/acct_missing", headers=auth)
    assert (missing.status_code, missing.json()["error"]["code"]) == (403, "account_invalid")
    assert missing.headers["Request-Id"].startswith("req_")
    nowhere = httpx.get(f"{api}/charges", headers=auth)
    assert nowhere.status_code == 404
    created = httpx.post(f"{api}/accounts", data={"country": "US"}, headers={**auth, "Idempotency-Key": "k1"})
    replay = httpx.post(f"{api}/accounts", data={"country": "US"}, headers={**auth, "Idempotency-Key": "k1"})
    assert replay.json()["id"] == created.json()["id"] and replay.headers["Idempotent-Replayed"] == "true"
    clash = httpx.post(f"{api}/accounts", data={"country": "GB"}, headers={**auth, "Idempotency-Key": "k1"})
    assert (clash.status_code, clash.json()["error"]["type"]) == (400, "idempotency_error")
    link = httpx.post(f"{api}/account_links", data={"account": created.json()["id"], "type": "account_onboarding",
                      "refresh_url": "nope", "return_url": "http://x/r"}, headers=auth)  # fmt: skip
    assert (link.status_code, link.json()["error"]["param"]) == (400, "refresh_url")
    httpx.post(f"{api}/accounts", data={"country": "FR"}, headers=auth)
    listed = httpx.get(f"{api}/accounts", params={"limit": "1"}, headers=auth).json()
    assert listed["object"] == "list" and len(listed["data"]) == 1 and listed["has_more"] is True
    assert httpx.get(f"{api}/accounts", params={"limit": "many"}, headers=auth).status_code == 400


def test_live_mode_refuses_the_embedded_token_scheme(db_url: str) -> None:
    live = Settings(
        database_url=db_url,
        livemode=True,
        stripe_backend="stripe",
        stripe_api_key="sk_live_x",
        public_base_url="https://platform.example",
        webhook_secrets=["whsec_live"],
    )
    with pytest.raises(SettingsError, match="authentication hook"):
        from_settings(live)


class HeaderAuth:
    """What a platform plugs in: its own session check."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def authenticate(self, request: Request, account_id: str) -> str | None:
        return "user:7" if request.headers.get("x-user") == "7" else None

    def remember(self, response: Response, account_id: str, holder: str) -> None:
        return None


def test_a_platform_auth_hook_is_loaded_from_settings(stack: Stack, acct: str) -> None:
    settings = stack.settings.model_copy(update={"auth_hook": "tests.integration.http.test_endpoints:HeaderAuth"})
    hook = from_settings(settings)
    assert isinstance(hook, HeaderAuth)
    with pytest.raises(SettingsError, match="cannot be loaded"):
        from_settings(stack.settings.model_copy(update={"auth_hook": "nowhere.module:thing"}))
    served = Served(create_app(stack.engine, stack.settings, authenticator=hook), bind())
    try:
        assert httpx.get(f"{served.url}/onboarding/{acct}/start").status_code == 401
        ok = httpx.get(f"{served.url}/onboarding/{acct}/start", headers={"x-user": "7"})
        assert ok.status_code == 303
        assert stack.engine.history(acct)[-1].actor == "user:7"
    finally:
        served.stop()


def test_create_app_mounts_in_an_existing_app(db_url: str) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    engine = build_engine(Settings(database_url=db_url))
    outer = Starlette(routes=[Mount("/payments", app=create_app(engine))])
    served = Served(outer, bind())
    try:
        assert httpx.get(f"{served.url}/payments/healthz").json() == {"status": "ok"}
    finally:
        served.stop()
