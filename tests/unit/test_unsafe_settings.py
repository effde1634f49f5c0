"""Issue 9, item 9: unsafe settings are refused at start-up with a ``SettingsError``
that says why — never accepted to fail (or leak) later."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from onboarding_fsm.errors import SettingsError
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET, Settings

ROOT = Path(__file__).resolve().parents[2]
LIVE: dict[str, object] = {
    "livemode": True,
    "stripe_backend": "stripe",
    "stripe_api_key": "sk_live_x",
    "public_base_url": "https://platform.example",
    "webhook_secrets": ["whsec_live"],
}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**LIVE, "stripe_api_base": "http://stripe-proxy.internal"}, "https stripe_api_base"),
        ({**LIVE, "return_page_url": "http://platform.example/done"}, "https return_page_url"),
        ({**LIVE, "sqlite_synchronous": "OFF"}, "sqlite_synchronous=OFF"),
        ({"stripe_backend": "stripe", "stripe_api_key": "sk_test_x"}, "simulator's webhook secret"),
        ({"stripe_backend": "stripe", "stripe_api_key": "sk_test_x", "stripe_api_base": "https://api.stripe.com"},
         "simulator's webhook secret"),
        ({"webhook_secrets": ["sk_test_pasted_here"]}, "whsec_"),
        ({**LIVE, "webhook_secrets": ["live_secret"]}, "whsec_"),
        ({"session_secret": "s"}, "at least 32 characters"),
        ({"session_secret": "x" * 31}, "at least 32 characters"),
        ({"public_base_url": "https://platform.example?a=1"}, "scheme://host"),
        ({"public_base_url": "https://platform.example/#top"}, "scheme://host"),
        ({"stripe_backend": "stripe", "stripe_api_key": " sk_test_x", "webhook_secrets": ["whsec_a"]}, "whitespace"),
        ({**LIVE, "stripe_api_key": "sk_live_x\n"}, "whitespace"),
    ],
)  # fmt: skip
def test_unsafe_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as caught:
        Settings(**values)
    assert "sk_live_x" not in str(caught.value) and "sk_test_x" not in str(caught.value), "no secret in the message"


def test_the_safe_neighbours_are_accepted() -> None:
    """What the rules must not refuse: a local Stripe-compatible server over
    http in test mode, live mode all-https, a long session secret."""
    Settings(stripe_backend="stripe", stripe_api_key="sk_test_x", stripe_api_base="http://127.0.0.1:12111")
    Settings(stripe_backend="stripe", stripe_api_key="sk_test_x", webhook_secrets=["whsec_from_stripe_listen"])
    Settings(
        **LIVE,
        stripe_api_base="https://api.stripe.com",
        return_page_url="https://platform.example/done",
        session_secret="x" * 32,
        sqlite_synchronous="NORMAL",
    )
    assert Settings(public_base_url="https://platform.example/").public_base_url == "https://platform.example"
    # the app mounted under a prefix (README: app.mount("/payments", create_app(...)))
    mounted = Settings(public_base_url="https://platform.example/payments/")
    assert mounted.refresh_url("acct_1") == "https://platform.example/payments/onboarding/acct_1/refresh"
    assert Settings().webhook_secret_values() == [SIMULATOR_WEBHOOK_SECRET]


def test_a_misspelt_environment_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONBOARDING_FSM_WEBHOOK_SECRET", "whsec_meant_for_webhook_secrets")
    with pytest.raises(
        SettingsError, match=r"ONBOARDING_FSM_WEBHOOK_SECRET \(did you mean ONBOARDING_FSM_WEBHOOK_SECRETS\?\)"
    ):
        Settings()
    monkeypatch.delenv("ONBOARDING_FSM_WEBHOOK_SECRET")
    monkeypatch.setenv("onboarding_fsm_databse_url", "sqlite:///x.db")  # names are case-insensitive
    with pytest.raises(SettingsError, match="onboarding_fsm_databse_url"):
        Settings()


def test_variables_of_a_shared_environment_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubernetes injects these for a Service named onboarding-fsm: not typos of a setting."""
    for name in ("ONBOARDING_FSM_SERVICE_HOST", "ONBOARDING_FSM_PORT", "ONBOARDING_FSM_PORT_8000_TCP_ADDR"):
        monkeypatch.setenv(name, "10.0.0.7")
    assert Settings().database_url


def test_every_onboarding_fsm_name_the_repository_uses_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test suite's and CI's own variables are not settings, and must not be refused."""
    names = set()
    for path in [ROOT / ".ci" / "run", ROOT / "dev.py", *ROOT.glob("tests/**/*.py"), *ROOT.glob("adapters/**/*.py")]:
        names |= set(re.findall(r"ONBOARDING_FSM_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8")))
    names -= {"ONBOARDING_FSM_WEBHOOK_SECRET", "ONBOARDING_FSM_CONFIG"}  # this file's misspelling; a file path
    assert {"ONBOARDING_FSM_TEST_POSTGRES_URL", "ONBOARDING_FSM_REQUIRE_BROWSER"} <= names
    for name in sorted(names):
        monkeypatch.setenv(name, "1")  # only the name is under test: "1" may be an invalid value
        refused = _refusal()
        assert "unknown environment" not in refused, refused
        monkeypatch.delenv(name)


def _refusal() -> str:
    try:
        Settings()
    except SettingsError as exc:
        return str(exc)
    return ""
