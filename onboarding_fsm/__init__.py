"""onboarding-fsm: Stripe-hosted onboarding of Connect accounts as persisted state machines.

The public API (DESIGN §5)::

    from onboarding_fsm import build_engine, Settings, State
    engine = build_engine()
"""

from .account import Account, FutureRequirements, Link, LinkFields, LinkParams, LinkType
from .audit import ChainReport, Transition
from .bootstrap import build_engine
from .classify import Classification, classify
from .clock import FakeClock, SystemClock
from .config import EngineConfig, LinkUrls
from .engine import Engine
from .errors import (
    AccountNotFound,
    ConcurrencyConflict,
    IdentityLocked,
    InvalidInput,
    LinkNotAllowed,
    OnboardingError,
    PermanentError,
    RetryableError,
    SettingsError,
    TriggerNotAllowed,
    UpdateNotAllowed,
    WebhookRejected,
)
from .events import Outcome, WebhookResult
from .policy import Collection, Policy
from .settings import Settings
from .snapshot import AccountSnapshot, Requirements
from .states import Source, State, Trigger

__all__ = [
    "Account",
    "AccountNotFound",
    "AccountSnapshot",
    "ChainReport",
    "Classification",
    "Collection",
    "ConcurrencyConflict",
    "Engine",
    "EngineConfig",
    "FakeClock",
    "FutureRequirements",
    "IdentityLocked",
    "InvalidInput",
    "Link",
    "LinkFields",
    "LinkNotAllowed",
    "LinkParams",
    "LinkType",
    "LinkUrls",
    "OnboardingError",
    "Outcome",
    "PermanentError",
    "Policy",
    "Requirements",
    "RetryableError",
    "Settings",
    "SettingsError",
    "Source",
    "State",
    "SystemClock",
    "Transition",
    "Trigger",
    "TriggerNotAllowed",
    "UpdateNotAllowed",
    "WebhookRejected",
    "WebhookResult",
    "build_engine",
    "classify",
]
