"""Settings: environment (``ONBOARDING_FSM_*``), an optional TOML file, defaults.

Precedence is the usual one: explicit arguments, then the environment, then
the file named by ``ONBOARDING_FSM_CONFIG`` (or ``Settings.from_file``), then
the embedded defaults (SQLite file + local simulator). Unsafe combinations
(live mode with http URLs, test keys or the simulator) are refused here, at
start-up, with a ``SettingsError`` rather than at the first webhook.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .account import FutureRequirements
from .audit import AuditKey
from .config import EngineConfig, LinkUrls
from .errors import SettingsError
from .policy import Collection, Policy
from .retention import MIN_RETENTION
from .settings_source import CONFIG_ENV, describe, refuse_unknown_environment

#: the simulator signs with this when nothing else is configured; refused in live mode
SIMULATOR_WEBHOOK_SECRET = "whsec_onboarding_fsm_simulator"
#: the shortest ``session_secret`` accepted: HMAC-SHA256 keys should be at least
#: as long as its 32-byte output (RFC 2104 §3); ``secrets.token_urlsafe(32)``
#: gives 43 characters. A short secret can be guessed offline from one token.
MIN_SESSION_SECRET = 32
#: Stripe's API host: test mode against it is real Stripe, not a local server
STRIPE_API_HOST = "api.stripe.com"
#: the file ``Settings.from_file`` reads, for this construction only (never os.environ)
_FILE: ContextVar[Path | None] = ContextVar("onboarding_fsm_settings_file", default=None)


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONBOARDING_FSM_", extra="forbid", frozen=True)

    # storage
    database_url: str = "sqlite:///onboarding-fsm.sqlite3"
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL"] = "FULL"

    # Stripe
    stripe_backend: Literal["simulator", "stripe"] = "simulator"
    stripe_api_key: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = Field(2, ge=0, le=10)
    stripe_timeout_seconds: float = Field(30.0, gt=0, le=300)
    stripe_call_budget_seconds: float = Field(30.0, gt=0, le=600)  # one Stripe call, retries included
    stripe_rate_limit: float | None = Field(None, gt=0, le=10000)  # unset: 100/s live, 25/s test
    livemode: bool = False

    # webhooks
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr(SIMULATOR_WEBHOOK_SECRET)]
    )
    webhook_tolerance_seconds: int = Field(300, ge=1, le=3600)

    # links
    public_base_url: str = "http://127.0.0.1:8000"
    refresh_path: str = "/onboarding/{account}/refresh"
    return_path: str = "/onboarding/{account}/return"

    # the platform's HTTP side (adapters.http)
    webhook_path: str = "/webhooks/stripe"
    start_path: str = "/onboarding/{account}/start"
    # "edit my profile": an account_update link where Stripe allows one (links.profile)
    profile_path: str = "/onboarding/{account}/profile"
    return_page_url: str | None = None  # where the holder lands after return; default: a built-in page
    auth_hook: str | None = None  # "package.module:factory" -> Authenticator; required in live mode
    session_secret: SecretStr | None = None  # signs the embedded token scheme; random per process if unset
    # the holder's session cookie: as long as a holder may take in Stripe's form
    session_max_age_seconds: int = Field(86400, ge=60, le=7 * 86400)
    start_token_max_age_seconds: int = Field(600, ge=30, le=86400)  # a start URL's token: single-use, short-lived
    refresh_limit: int = Field(10, ge=1)  # links per account per window (start, refresh apart), every worker
    refresh_window_seconds: int = Field(600, ge=1)
    holder_limit: int = Field(30, ge=1)  # links per holder per window across accounts (onboarding_fsm.limits)
    bind_host: str = Field("127.0.0.1", pattern=r"^[^/:\s]+$")  # where `serve` listens: IPv4 or host name
    bind_port: int | None = Field(None, ge=1, le=65535)  # unset: public_base_url's port, or 8000

    # policy
    collection: Collection = Collection.INCREMENTAL
    required_capabilities: Annotated[list[str], NoDecode] | None = None
    future_requirements: FutureRequirements = FutureRequirements.OMIT

    # time
    abandon_after_seconds: int = Field(24 * 3600, ge=60)
    reminder_offsets_seconds: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [7 * 86400, 86400])

    # worker
    sweep_interval_seconds: float = Field(5.0, gt=0, le=3600)
    reconcile_interval_seconds: float = Field(3600.0, gt=0)
    reconcile_stale_after_seconds: int = Field(24 * 3600, ge=60)
    misfire_grace_seconds: int = Field(60, ge=1)
    timer_lease_seconds: int = Field(60, ge=1, le=3600)
    timer_retry_base_seconds: float = Field(30.0, gt=0)
    timer_retry_cap_seconds: float = Field(3600.0, gt=0)
    timer_overdue_after_seconds: int = Field(300, ge=1)  # unfired this long after due: overdue (status, metrics)
    # in created, link_issued, returned_incomplete or past_due this long: needs attention (engine.attention)
    stuck_after_seconds: int = Field(7 * 86400, ge=60)
    reconcile_inaccessible_share: float = Field(0.5, gt=0, le=1)
    reconcile_confirm_after_seconds: int = Field(6 * 3600, ge=60)
    outbox_handler: str | None = Field(None, pattern=r"^[\w.]+:\w+$")  # "package.module:factory": gets the outbox
    outbox_interval_seconds: float = Field(1.0, gt=0, le=3600)
    outbox_max_attempts: int = Field(10, ge=1, le=1000)  # failures before a dead letter
    outbox_retry_base_seconds: float = Field(5.0, gt=0)  # then base * 2^(failures - 1), at most cap
    outbox_retry_cap_seconds: float = Field(3600.0, gt=0)
    outbox_lease_seconds: int = Field(60, ge=1, le=3600)  # a deliverer's hold while the handler runs
    # the worker's own Prometheus endpoint on bind_host (its Stripe calls, transitions); unset: none
    worker_metrics_port: int | None = Field(None, ge=1, le=65535)

    # Stripe's clock against ours
    clock_skew_tolerance_seconds: float = Field(5.0, ge=0, le=300)

    # concurrency
    max_conflict_retries: int = Field(5, ge=0, le=100)

    # retention: published outbox messages and inbox payloads older than this are pruned (never audit records);
    # at least 4 days, Stripe's 3-day retry window and a margin (onboarding_fsm.retention)
    retention_days: int = Field(90, ge=MIN_RETENTION.days, le=36500)

    # audit: keyed hashes (HMAC-SHA256) so database write access alone cannot re-hash a chain
    audit_key: SecretStr | None = None
    # the worker seals new audit records into a checkpoint this often (records younger are chain-only)
    audit_checkpoint_interval_seconds: float = Field(60.0, gt=0, le=86400)
    # the read-only audit page (GET /audit): its own authentication, separate from holders'
    audit_auth_hook: str | None = None  # "package.module:factory" -> AuditorAuth
    audit_token: SecretStr | None = None  # or HTTP Basic with this password; unset in test mode: open
    audit_path: str = "/audit"
    log_format: Literal["text", "json"] = "text"  # json: one object per line with account/event/run fields

    def __init__(self, **values: Any) -> None:
        refuse_unknown_environment(set(type(self).model_fields))
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(describe(exc)) from None

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Settings:
        """Settings with ``path`` (TOML) as the file layer."""
        if not Path(path).is_file():
            raise SettingsError(f"settings file not found: {path}")
        with _reading(Path(path)):
            return cls(**overrides)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _FILE.get() or os.environ.get(CONFIG_ENV)
        if path:
            if not Path(path).is_file():
                raise SettingsError(f"{CONFIG_ENV} names a file that does not exist: {path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # --- validation ---------------------------------------------------------

    @field_validator("webhook_secrets", "required_capabilities", "reminder_offsets_seconds", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("webhook_secrets")
    @classmethod
    def _secrets_present(cls, value: list[SecretStr]) -> list[SecretStr]:
        if not value or any(not s.get_secret_value().strip() for s in value):
            raise ValueError("at least one non-empty webhook secret is required")
        if any(not s.get_secret_value().startswith("whsec_") for s in value):
            # every Stripe signing secret starts so; anything else is another value pasted here (an API key, say)
            raise ValueError("webhook signing secrets start with 'whsec_' (Dashboard, or `stripe listen`)")
        return value

    @field_validator("stripe_api_key", "session_secret", "audit_key", "audit_token")
    @classmethod
    def _no_surrounding_space(cls, value: SecretStr | None) -> SecretStr | None:
        """A copy-paste slip: Stripe refuses a key with a space, and only at the first call."""
        if value is not None and value.get_secret_value() != value.get_secret_value().strip():
            raise ValueError("has leading or trailing whitespace")
        return value

    @field_validator("audit_key", "audit_token")
    @classmethod
    def _long_audit_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SESSION_SECRET:
            raise ValueError(
                f"must be at least {MIN_SESSION_SECRET} characters (python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        return value

    @field_validator("session_secret")
    @classmethod
    def _long_session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SESSION_SECRET:
            raise ValueError(
                f"must be at least {MIN_SESSION_SECRET} characters (it signs start tokens and session cookies; "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @field_validator("reminder_offsets_seconds")
    @classmethod
    def _positive_offsets(cls, value: list[int]) -> list[int]:
        if any(v <= 0 for v in value):
            raise ValueError("reminder offsets must be positive numbers of seconds")
        return sorted(set(value), reverse=True)

    @field_validator("public_base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        if parts.query or parts.fragment or value.endswith(("?", "#")):
            # the link URLs are this + refresh_path/return_path: a query or fragment breaks them
            # (a path is fine: it is where the app is mounted, e.g. https://pay.example/payments)
            raise ValueError(f"must be scheme://host[:port][/mount] without query or fragment, got {value!r}")
        return value.rstrip("/")

    @field_validator("refresh_path", "return_path", "start_path", "profile_path")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if "{account}" not in value or not value.startswith("/"):
            raise ValueError("must start with '/' and contain '{account}'")
        return value

    @field_validator("database_url")
    @classmethod
    def _looks_like_url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"must be a SQLAlchemy URL such as sqlite:///path.db, got {value!r}")
        return value

    @model_validator(mode="after")
    def _safe_combination(self) -> Settings:
        key = self.stripe_api_key.get_secret_value() if self.stripe_api_key else ""
        if self.stripe_backend == "stripe" and not key:
            raise ValueError("stripe_backend='stripe' needs stripe_api_key")
        if self.livemode:
            if self.stripe_backend != "stripe":
                raise ValueError("live mode cannot run on the simulator")
            if not key.startswith(("sk_live_", "rk_live_")):
                raise ValueError("live mode needs a live secret or restricted key (sk_live_/rk_live_)")
            if urlsplit(self.public_base_url).scheme != "https":
                raise ValueError("live mode needs an https public_base_url (Stripe refuses http link URLs)")
            if any(s.get_secret_value() == SIMULATOR_WEBHOOK_SECRET for s in self.webhook_secrets):
                raise ValueError("live mode needs real webhook signing secrets, not the simulator's")
            self._live_transport()
        elif key.startswith(("sk_live_", "rk_live_")):
            raise ValueError("a live key with livemode=false: set livemode=true or use a test key")
        elif self.stripe_backend == "stripe" and self._real_stripe and self._simulator_secret:
            raise ValueError(
                "test mode against Stripe itself with the simulator's webhook secret: that secret is public "
                "(it is in this repository), so anyone could sign events; use your endpoint's whsec_ secret"
            )
        return self

    def _live_transport(self) -> None:
        """Live mode: nothing that carries the live key, a holder or a write goes unprotected."""
        if self.stripe_api_base is not None and urlsplit(self.stripe_api_base).scheme != "https":
            raise ValueError("live mode needs an https stripe_api_base (the live key would travel in cleartext)")
        if self.return_page_url is not None and urlsplit(self.return_page_url).scheme == "http":
            raise ValueError("live mode needs an https return_page_url (holders would leave over cleartext)")
        if self.sqlite_synchronous == "OFF":
            raise ValueError("live mode refuses sqlite_synchronous=OFF (a power loss could lose committed events)")

    @property
    def _real_stripe(self) -> bool:
        return self.stripe_api_base is None or urlsplit(self.stripe_api_base).hostname == STRIPE_API_HOST

    @property
    def _simulator_secret(self) -> bool:
        return any(s.get_secret_value() == SIMULATOR_WEBHOOK_SECRET for s in self.webhook_secrets)

    # --- derived values -----------------------------------------------------

    def engine_config(self) -> EngineConfig:
        """What the engine needs of these settings (and nothing else)."""
        return EngineConfig(
            policy=self.policy,
            livemode=self.livemode,
            webhook_tolerance=timedelta(seconds=self.webhook_tolerance_seconds),
            abandon_after=self.abandon_after,
            reminder_offsets=self.reminder_offsets,
            future_requirements=self.future_requirements,
            links=LinkUrls(
                refresh=self.public_base_url + self.refresh_path,
                return_=self.public_base_url + self.return_path,
            ),
            max_conflict_retries=self.max_conflict_retries,
            stripe_rate_limit=self.stripe_rate_limit,
            timer_lease=timedelta(seconds=self.timer_lease_seconds),
            timer_retry_base=timedelta(seconds=self.timer_retry_base_seconds),
            timer_retry_cap=timedelta(seconds=self.timer_retry_cap_seconds),
            timer_overdue_after=timedelta(seconds=self.timer_overdue_after_seconds),
            stuck_after=timedelta(seconds=self.stuck_after_seconds),
            clock_skew_tolerance=timedelta(seconds=self.clock_skew_tolerance_seconds),
            reconcile_inaccessible_share=self.reconcile_inaccessible_share,
            reconcile_confirm_after=timedelta(seconds=self.reconcile_confirm_after_seconds),
            retention=timedelta(days=self.retention_days),
            audit_key=AuditKey(self.audit_key.get_secret_value().encode()) if self.audit_key else None,
            outbox_lease=timedelta(seconds=self.outbox_lease_seconds),
            outbox_retry_base=timedelta(seconds=self.outbox_retry_base_seconds),
            outbox_retry_cap=timedelta(seconds=self.outbox_retry_cap_seconds),
            outbox_max_attempts=self.outbox_max_attempts,
        )

    @property
    def policy(self) -> Policy:
        required = frozenset(self.required_capabilities) if self.required_capabilities is not None else None
        return Policy(collection=self.collection, required_capabilities=required)

    @property
    def abandon_after(self) -> timedelta:
        return timedelta(seconds=self.abandon_after_seconds)

    @property
    def reminder_offsets(self) -> tuple[timedelta, ...]:
        return tuple(timedelta(seconds=s) for s in self.reminder_offsets_seconds)

    def refresh_url(self, account_id: str) -> str:
        return self.public_base_url + self.refresh_path.format(account=account_id)

    def return_url(self, account_id: str) -> str:
        return self.public_base_url + self.return_path.format(account=account_id)

    def start_url(self, account_id: str) -> str:
        return self.public_base_url + self.start_path.format(account=account_id)

    def profile_url(self, account_id: str) -> str:
        return self.public_base_url + self.profile_path.format(account=account_id)

    def webhook_secret_values(self) -> list[str]:
        return [s.get_secret_value() for s in self.webhook_secrets]


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    token = _FILE.set(path)
    try:
        yield
    finally:
        _FILE.reset(token)
