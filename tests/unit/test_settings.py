"""Settings from arguments, environment and TOML; unsafe combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from onboarding_fsm.errors import SettingsError
from onboarding_fsm.policy import Collection
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_default() -> None:
    s = Settings()
    assert s.database_url.startswith("sqlite:///")
    assert s.stripe_backend == "simulator"
    assert s.webhook_secret_values() == [SIMULATOR_WEBHOOK_SECRET]
    assert s.refresh_url("acct_1") == "http://127.0.0.1:8000/onboarding/acct_1/refresh"


def test_environment_with_prefix_and_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONBOARDING_FSM_WEBHOOK_SECRETS", "whsec_a, whsec_b")
    monkeypatch.setenv("ONBOARDING_FSM_COLLECTION", "upfront")
    monkeypatch.setenv("ONBOARDING_FSM_REQUIRED_CAPABILITIES", "transfers")
    s = Settings()
    assert s.webhook_secret_values() == ["whsec_a", "whsec_b"]
    assert s.policy.collection is Collection.UPFRONT
    assert s.policy.required_capabilities == frozenset({"transfers"})


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(stripe_backend="stripe", stripe_api_key="sk_test_abc123", webhook_secrets=["whsec_topsecret"])
    assert "abc123" not in repr(s) and "topsecret" not in repr(s)


def test_toml_file_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.toml"
    path.write_text('collection = "upfront"\nabandon_after_seconds = 600\n', encoding="utf-8")
    monkeypatch.setenv("ONBOARDING_FSM_ABANDON_AFTER_SECONDS", "900")
    s = Settings.from_file(path)
    assert s.collection is Collection.UPFRONT
    assert s.abandon_after_seconds == 900  # environment beats the file
    assert Settings.from_file(path, abandon_after_seconds=1200).abandon_after_seconds == 1200


@pytest.mark.parametrize("name", ["example.toml", "default.toml"])
def test_shipped_config_files_load(name: str) -> None:
    Settings.from_file(ROOT / "config" / name)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"webhook_tolerance_seconds": 0}, "webhook_tolerance_seconds"),
        ({"public_base_url": "ftp://x"}, "public_base_url"),
        ({"refresh_path": "/no-placeholder"}, "refresh_path"),
        ({"database_url": "onboarding.db"}, "database_url"),
        ({"collection": "sometimes"}, "collection"),
        ({"webhook_secrets": [" "]}, "webhook_secrets"),
        ({"unknown_setting": 1}, "unknown_setting"),
        ({"stripe_backend": "stripe"}, "needs stripe_api_key"),
        ({"livemode": True}, "simulator"),
        ({"livemode": True, "stripe_backend": "stripe", "stripe_api_key": "sk_test_x",
          "public_base_url": "https://p.example", "webhook_secrets": ["whsec_real"]}, "live secret"),
        ({"livemode": True, "stripe_backend": "stripe", "stripe_api_key": "sk_live_x",
          "public_base_url": "http://p.example", "webhook_secrets": ["whsec_real"]}, "https"),
        ({"livemode": True, "stripe_backend": "stripe", "stripe_api_key": "sk_live_x",
          "public_base_url": "https://p.example"}, "real webhook signing secrets"),
        ({"stripe_backend": "stripe", "stripe_api_key": "sk_live_x"}, "livemode=false"),
    ],
)  # fmt: skip
def test_bad_settings_raise_settings_error(values: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings(**values)  # type: ignore[arg-type]


def test_live_mode_with_everything_right() -> None:
    s = Settings(
        livemode=True,
        stripe_backend="stripe",
        stripe_api_key="rk_live_x",
        public_base_url="https://platform.example",
        webhook_secrets=["whsec_live"],
    )
    assert s.return_url("acct_1").startswith("https://")


def test_missing_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="not found"):
        Settings.from_file(tmp_path / "nope.toml")
    monkeypatch.setenv("ONBOARDING_FSM_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(SettingsError, match="does not exist"):
        Settings()


def test_the_default_file_spells_out_every_setting_with_its_built_in_value() -> None:
    import re
    import tomllib

    text = (ROOT / "config" / "default.toml").read_text("utf-8")
    written = tomllib.loads(text)
    commented = set(re.findall(r"^# ([a-z_]+) = ", text, flags=re.MULTILINE))
    fields = Settings.model_fields
    assert set(written) | commented == set(fields), "every setting appears, set or commented"
    for name, value in written.items():
        default = fields[name].get_default(call_default_factory=True)
        if name == "webhook_secrets":
            default = [s.get_secret_value() for s in default]
        assert value == default, name
    for name in commented - set(written):
        assert fields[name].get_default(call_default_factory=True) is None, f"{name} is commented but has a default"


def test_reading_a_file_leaves_the_environment_alone(tmp_path: Path) -> None:
    import os

    path = tmp_path / "s.toml"
    path.write_text('collection = "upfront"\n', encoding="utf-8")
    before = dict(os.environ)
    assert Settings.from_file(path).collection is Collection.UPFRONT
    assert dict(os.environ) == before
    assert Settings().collection is Collection.INCREMENTAL  # the file was for that construction only


def test_the_engine_config_is_derived_from_the_settings() -> None:
    from datetime import timedelta

    s = Settings(
        collection="upfront",
        required_capabilities=["transfers"],
        abandon_after_seconds=600,
        reminder_offsets_seconds=[60, 3600],
        webhook_tolerance_seconds=120,
        public_base_url="https://p.example",
        max_conflict_retries=7,
    )
    config = s.engine_config()
    assert config.policy == s.policy
    assert (config.abandon_after, config.reminder_offsets) == (
        timedelta(minutes=10),
        (timedelta(hours=1), timedelta(minutes=1)),
    )
    assert config.webhook_tolerance == timedelta(seconds=120) and config.max_conflict_retries == 7
    assert (
        config.links.refresh_url("acct_1") == s.refresh_url("acct_1") == "https://p.example/onboarding/acct_1/refresh"
    )
    assert config.links.return_url("acct_1") == s.return_url("acct_1")
