"""The Stripe-side self-check (``onboarding-fsm doctor``, and the start-up of
``serve`` and ``worker`` on Stripe): is Stripe set up to tell this
deployment what happens to its connected accounts?

The most common reason a Connect platform misses account updates is not its
handler but its webhook configuration: no endpoint that receives events
*from connected accounts* (``connect=true`` when it was created; "Events
from: Connected accounts" in the Dashboard), or one that is disabled, points
at an old host or is not subscribed to ``account.updated``. A platform
endpoint (``connect`` false, the default) receives the platform's own events
only — never a connected account's ``account.updated`` — and is the classic
mistake. ``connect`` cannot be changed after creation.

Stripe's WebhookEndpoint object has no ``connect`` field: a Connect endpoint
is one whose ``application`` (the platform's Connect application) is set
(the object's schema in Stripe's OpenAPI description; stripe-dotnet#1876,
where Stripe confirmed it). ``check`` is pure: from the endpoints the
configured key lists and what this deployment expects, findings — each ok,
a warning or a problem, with how to fix it. Nothing here calls Stripe
(``bootstrap.self_check`` does, through the gateway port).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from . import bounds
from .errors import MalformedPayload
from .events import ACCOUNT_UPDATED, CAPABILITY_UPDATED, DEAUTHORIZED

#: the events the engine uses, as a correct Connect endpoint subscribes them
WANTED = (ACCOUNT_UPDATED, CAPABILITY_UPDATED, DEAUTHORIZED)
#: Stripe's ids are short; a URL may be long (the object's ``maxLength``)
_MAX_ID = 255
_MAX_URL = 5000


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A webhook endpoint as Stripe lists it (``GET /v1/webhook_endpoints``)."""

    id: str
    url: str
    enabled_events: tuple[str, ...]
    #: ``enabled`` or ``disabled`` (Stripe disables an endpoint that keeps failing)
    status: str
    livemode: bool
    #: the platform's Connect application id: set on Connect endpoints only
    application: str | None = None
    description: str | None = None

    @property
    def connect(self) -> bool:
        """It receives events from connected accounts."""
        return self.application is not None

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"

    def receives(self, event_type: str) -> bool:
        """Subscribed to ``event_type``, by name or by ``*`` (all events)."""
        return "*" in self.enabled_events or event_type in self.enabled_events


def parse_webhook_endpoint(raw: Any) -> WebhookEndpoint:
    """A WebhookEndpoint in Stripe's JSON shape, checked like any outside value."""
    if not isinstance(raw, Mapping):
        raise MalformedPayload("webhook_endpoint must be an object")
    events = raw.get("enabled_events")
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise MalformedPayload("webhook_endpoint.enabled_events must be a list of strings")
    url = raw.get("url")
    if not isinstance(url, str) or len(url) > _MAX_URL or not bounds.storable(url):
        raise MalformedPayload("webhook_endpoint.url must be a string")
    livemode = raw.get("livemode")
    if not isinstance(livemode, bool):
        raise MalformedPayload("webhook_endpoint.livemode must be a boolean")
    return WebhookEndpoint(
        id=bounds.identifier(raw.get("id"), "webhook_endpoint.id", _MAX_ID),
        url=url,
        enabled_events=tuple(events),
        status=bounds.identifier(raw.get("status"), "webhook_endpoint.status", bounds.MAX_ENUM),
        livemode=livemode,
        application=None
        if raw.get("application") is None
        else bounds.identifier(raw.get("application"), "webhook_endpoint.application", _MAX_ID),
        description=bounds.short_text(raw.get("description"), "webhook_endpoint.description", _MAX_URL),
    )


@dataclass(frozen=True, slots=True)
class Expected:
    """What this deployment needs of Stripe's webhook configuration."""

    #: where this deployment receives webhooks (``public_base_url + webhook_path``)
    webhook_url: str
    livemode: bool
    #: how many signing secrets are configured: one per endpoint that delivers here
    secrets: int = 1
    #: the simulator's public secret is configured while talking to a Stripe
    #: (settings refuse it against Stripe itself; a stand-in server may use it)
    public_secret: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    #: what was checked, a few words (``Connect endpoint``, ``events``, ``secrets``…)
    topic: str
    message: str
    #: how to fix it (None for an ok finding)
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class SelfCheck:
    findings: tuple[Finding, ...]

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level is Level.PROBLEM)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level is Level.WARNING)

    @property
    def passed(self) -> bool:
        """No problem (warnings allowed)."""
        return not self.problems


def _mode(livemode: bool) -> str:
    return "live" if livemode else "test"


def create_fix(url: str) -> str:
    """How to create the Connect endpoint this deployment needs."""
    events = " ".join(f'-d "enabled_events[]={e}"' for e in WANTED)
    return (
        "create a Connect endpoint: in the Dashboard's Webhooks page, an endpoint with 'Events from: Connected "
        f"accounts', URL {url}, events {', '.join(WANTED)}; or curl https://api.stripe.com/v1/webhook_endpoints "
        f'-u "$STRIPE_API_KEY:" -d connect=true -d url={url} {events}. Add the whsec_ secret it shows to '
        "webhook_secrets"
    )


def key_mode(livemode: bool, refused: str | None) -> Finding:
    """The key's mode as Stripe reported it (``refused``: why it is not ``livemode``'s)."""
    if refused is None:
        return Finding(Level.OK, "key", f"the API key is a {_mode(livemode)} mode key, as livemode={livemode} says")
    return Finding(
        Level.PROBLEM, "key", refused, f"use a {_mode(livemode)} mode key, or set livemode to the key's mode"
    )


def _address(url: str) -> tuple[str, str, str]:
    """(scheme, host:port, path without trailing slash) — how URLs are compared."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    path = parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    return scheme, f"{(parts.hostname or '').lower()}:{port}", path


def same_url(a: str, b: str) -> bool:
    """Equal but for case in scheme and host, a default port, a trailing slash."""
    return _address(a) == _address(b)


def check(endpoints: Sequence[WebhookEndpoint], expected: Expected) -> SelfCheck:
    """Findings about ``endpoints`` (every one the key lists) for ``expected``."""
    findings: list[Finding] = []
    mine = [e for e in endpoints if e.livemode == expected.livemode]
    foreign = [e for e in endpoints if e.livemode != expected.livemode]
    if foreign:  # a key lists its own mode's endpoints: the key and livemode disagree
        findings.append(
            Finding(
                Level.PROBLEM,
                "mode",
                f"{len(foreign)} endpoint(s) listed are {_mode(not expected.livemode)} mode endpoints "
                f"({', '.join(e.id for e in foreign)}) but livemode={expected.livemode}",
                f"use a {_mode(expected.livemode)} mode key, or set livemode to the key's mode",
            )
        )
    connect = [e for e in mine if e.connect]
    here = [e for e in connect if same_url(e.url, expected.webhook_url)]
    if not connect:
        findings.append(_no_connect_endpoint(mine, expected))
    elif not here:
        findings.append(_elsewhere(connect, expected))
    else:
        findings.extend(_endpoints_here(here, expected))
    findings.extend(_secrets(mine, expected))
    return SelfCheck(tuple(findings))


def _no_connect_endpoint(mine: Sequence[WebhookEndpoint], expected: Expected) -> Finding:
    mode = _mode(expected.livemode)
    if not mine:
        return Finding(
            Level.PROBLEM,
            "Connect endpoint",
            f"no webhook endpoint at all in {mode} mode",
            create_fix(expected.webhook_url),
        )
    listed = ", ".join(f"{e.id} ({e.url})" for e in mine)
    return Finding(
        Level.PROBLEM,
        "Connect endpoint",
        f"only platform endpoint(s) in {mode} mode: {listed}. They receive events of the platform's own account, "
        "never a connected account's account.updated: the classic Connect mistake",
        create_fix(expected.webhook_url) + " (an endpoint's 'connect' is set at creation and cannot be changed)",
    )


def _elsewhere(connect: Sequence[WebhookEndpoint], expected: Expected) -> Finding:
    host = _address(expected.webhook_url)[1]
    listed = "; ".join(
        f"{e.id} -> {e.url}" + (" (this host, another path)" if _address(e.url)[1] == host else "") for e in connect
    )
    return Finding(
        Level.PROBLEM,
        "Connect endpoint",
        f"Connect endpoint(s) point elsewhere: {listed}; this deployment receives at {expected.webhook_url}",
        f"change its URL (Dashboard, or POST /v1/webhook_endpoints/{connect[0].id} with url={expected.webhook_url}), "
        "or " + create_fix(expected.webhook_url),
    )


def _endpoints_here(here: Sequence[WebhookEndpoint], expected: Expected) -> list[Finding]:
    usable = [e for e in here if e.enabled and e.receives(ACCOUNT_UPDATED)]
    # with one usable endpoint, a broken second one is only a warning
    level = Level.WARNING if usable else Level.PROBLEM
    findings = [_broken(e, level) for e in here if e not in usable]
    if not usable:
        return findings
    ids = ", ".join(e.id for e in usable)
    findings.insert(
        0,
        Finding(
            Level.OK,
            "Connect endpoint",
            f"{ids} receives account.updated from connected accounts at {expected.webhook_url} "
            f"({_mode(expected.livemode)} mode)",
        ),
    )
    findings.extend(_missing_events(usable))
    if len(usable) > 1:
        findings.append(
            Finding(
                Level.WARNING,
                "Connect endpoint",
                f"{len(usable)} Connect endpoints deliver here ({ids}): every event arrives once per endpoint "
                "(the second is answered 'duplicate'), each signed with its own secret",
                "delete all but one",
            )
        )
    return findings


def _broken(endpoint: WebhookEndpoint, level: Level) -> Finding:
    if not endpoint.enabled:
        return Finding(
            level,
            "Connect endpoint",
            f"{endpoint.id} at {endpoint.url} is {endpoint.status}: Stripe sends it nothing (Stripe disables an "
            "endpoint whose deliveries keep failing)",
            f"enable it (Dashboard, or POST /v1/webhook_endpoints/{endpoint.id} with disabled=false) once this "
            "deployment answers 2xx; reconcile (onboarding-fsm reconcile) heals what was missed meanwhile",
        )
    return Finding(
        level,
        "events",
        f"{endpoint.id} is not subscribed to account.updated (it has {', '.join(endpoint.enabled_events) or 'none'})",
        f"add account.updated to its events (Dashboard, or POST /v1/webhook_endpoints/{endpoint.id} listing "
        "every enabled_events[] wanted: the list is replaced whole)",
    )


_WHY = {
    CAPABILITY_UPDATED: "the engine applies a capability's new status (it decides 'verified') as soon as it "
    "changes; without it the change waits for an account.updated or for reconciliation",
    DEAUTHORIZED: "an account with its own Dashboard that disconnects from the platform sends only this (the "
    "platform loses access, so no account.updated follows); without it the account is disabled only when "
    "reconciliation finds it inaccessible, hours later",
}


def _missing_events(usable: Sequence[WebhookEndpoint]) -> list[Finding]:
    return [
        Finding(
            Level.WARNING,
            "events",
            f"no Connect endpoint here is subscribed to {event}: {why}",
            f"add {event} to the endpoint's events (Dashboard, or POST /v1/webhook_endpoints/{usable[0].id} "
            "listing every enabled_events[] wanted)",
        )
        for event, why in _WHY.items()
        if not any(e.receives(event) for e in usable)
    ]


def _secrets(mine: Sequence[WebhookEndpoint], expected: Expected) -> list[Finding]:
    findings = []
    if expected.public_secret:
        findings.append(
            Finding(
                Level.WARNING,
                "secrets",
                "webhook_secrets holds the simulator's public secret: anyone can sign events with it",
                "fine against the simulator's server only; against Stripe use each endpoint's whsec_ secret",
            )
        )
    delivering = [e for e in mine if e.enabled and same_url(e.url, expected.webhook_url)]
    if len(delivering) > expected.secrets:
        findings.append(
            Finding(
                Level.WARNING,
                "secrets",
                f"{len(delivering)} enabled endpoints deliver here, each signing with its own secret, but "
                f"{expected.secrets} secret(s) are configured: the others' deliveries are refused (400)",
                "add each endpoint's whsec_ secret (Dashboard > the endpoint > Signing secret) to webhook_secrets",
            )
        )
    elif not findings:
        findings.append(
            Finding(
                Level.OK,
                "secrets",
                f"{expected.secrets} webhook signing secret(s) configured; Stripe shows an endpoint's secret only "
                "when it is created, so a mismatch shows only as refused deliveries "
                '(onboarding_fsm_webhooks_total{outcome="rejected"})',
            )
        )
    return findings
