"""Who may start, refresh or return from an onboarding.

Stripe's guide: authenticate the holder before redirecting to an Account
Link, and remember that link-preview bots fetch URLs too. The app asks a
pluggable ``Authenticator``; platforms plug in their own session check
(``auth_hook = "package.module:factory"`` in settings). The embedded default,
``SignedTokenAuth``, accepts a signed token on the start URL and then a
signed, HttpOnly cookie bound to the account for the refresh and return URLs
Stripe sends the holder to. Live mode refuses to run on it.

* A start token is **single-use and short-lived**: it names the account's
  last link issuance (``link_marker``) and expires after
  ``start_token_max_age_seconds``. Starting issues a link, so the same token
  no longer matches — in every web worker, with nothing stored.
* The session cookie lives as long as a holder may take in Stripe's form
  (``session_max_age_seconds``), one cookie per account (a second account in
  the same browser does not evict the first), ``Secure`` when the platform is
  served over https.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from onboarding_fsm.engine import Engine
from onboarding_fsm.errors import AccountNotFound, InvalidInput, SettingsError
from onboarding_fsm.links import UNCHECKED, Unchecked
from onboarding_fsm.settings import Settings

log = logging.getLogger("onboarding_fsm.http")
COOKIE = "onboarding_fsm_session"
#: how this scheme's holders are recorded: ``holder:<name from the start token>``
HOLDER_PREFIX = "holder:"
_COOKIE_SAFE = re.compile(r"[A-Za-z0-9_]{1,64}")
#: the account's last link issuance as text ("-" for none, "" for no such account)
LinkMarker = Callable[[str], str]


def link_marker_of(engine: Engine) -> LinkMarker:
    """The account's last link issuance, read from the engine: what a start
    token names, so that starting (which issues a link) uses it up."""

    def marker(account_id: str) -> str:
        try:
            account = engine.get_account(account_id)
        except (AccountNotFound, InvalidInput):  # an outage propagates: a 503, not a "sign in" page
            return ""
        return account.link_issued_at.isoformat() if account.link_issued_at else "-"

    return marker


def cookie_name(account_id: str) -> str | None:
    """One cookie per account; None for an id no cookie name can carry."""
    return f"{COOKIE}_{account_id}" if _COOKIE_SAFE.fullmatch(account_id) else None


class Authenticator(Protocol):
    def authenticate(self, request: Request, account_id: str) -> str | None:
        """The holder's identity (recorded as the audit actor), or None to refuse."""
        ...

    def remember(self, response: Response, account_id: str, holder: str) -> None:
        """Called after a successful start with the identity ``authenticate``
        returned for it (e.g. to set a session cookie that authenticates the
        same holder on the refresh and return URLs)."""
        ...


class SignedTokenAuth:
    def __init__(
        self,
        secret: str,
        *,
        max_age: int = 86400,
        token_max_age: int = 600,
        secure_cookie: bool = False,
        link_marker: LinkMarker | None = None,
    ) -> None:
        self._tokens = URLSafeTimedSerializer(secret, salt="onboarding-fsm start")
        self._cookies = URLSafeTimedSerializer(secret, salt="onboarding-fsm session")
        #: the session cookie's lifetime
        self.max_age = max_age
        self.token_max_age = token_max_age
        self.secure_cookie = secure_cookie
        self._marker = link_marker

    def token_for(self, account_id: str, holder: str = "holder") -> str:
        """A start-URL token for ``account_id`` (send it to the signed-in holder):
        good for one start, before any other link is issued, for a few minutes."""
        data = {"account": account_id, "holder": holder}
        if self._marker is not None:
            data["link"] = self._marker(account_id)
        return self._tokens.dumps(data)

    @staticmethod
    def _holder(data: object, account_id: str) -> str | None:
        if not isinstance(data, dict) or data.get("account") != account_id:
            return None
        holder = data.get("holder")
        return f"{HOLDER_PREFIX}{holder}" if isinstance(holder, str) else None

    def _token(self, value: str | None, account_id: str) -> str | None:
        if not value:
            return None
        try:
            data = self._tokens.loads(value, max_age=self.token_max_age)
        except BadSignature:  # includes expiry
            return None
        holder = self._holder(data, account_id)
        if holder is not None and self._marker is not None and data.get("link") != self._marker(account_id):
            return None  # a link was issued since: this token was used (or outlived by another)
        return holder

    def _cookie(self, value: str | None, account_id: str) -> str | None:
        if not value:
            return None
        try:
            data = self._cookies.loads(value, max_age=self.max_age)
        except BadSignature:
            return None
        return self._holder(data, account_id)

    def started_from(self, request: Request, account_id: str) -> datetime | Unchecked | None:
        """The link issuance the request's start token names (its single use is
        then enforced where the link is recorded); UNCHECKED without a valid token."""
        if self._marker is None or self._token(request.query_params.get("token"), account_id) is None:
            return UNCHECKED
        marker = self._marker(account_id)
        return datetime.fromisoformat(marker) if marker not in ("-", "") else None

    def authenticate(self, request: Request, account_id: str) -> str | None:
        name = cookie_name(account_id)
        return self._token(request.query_params.get("token"), account_id) or (
            self._cookie(request.cookies.get(name), account_id) if name else None
        )

    def remember(self, response: Response, account_id: str, holder: str) -> None:
        """A session cookie for ``holder`` (as ``authenticate`` named them:
        ``holder:<name>``); it carries the bare name, so the cookie
        authenticates exactly the same ``holder:<name>``."""
        name = cookie_name(account_id)
        if name is None:
            return
        response.set_cookie(
            name,
            self._cookies.dumps({"account": account_id, "holder": holder.removeprefix(HOLDER_PREFIX)}),
            max_age=self.max_age,
            httponly=True,
            secure=self.secure_cookie,
            samesite="lax",  # Stripe's redirect back is a top-level GET: lax cookies travel
        )


class _RememberWithoutHolder:
    """A hook written before ``remember`` was told the holder (0.3): called
    the old way, so a deployed hook keeps working after the upgrade."""

    def __init__(self, hook: Any) -> None:
        self._hook = hook

    def authenticate(self, request: Request, account_id: str) -> str | None:
        found: str | None = self._hook.authenticate(request, account_id)
        return found

    def remember(self, response: Response, account_id: str, holder: str) -> None:
        self._hook.remember(response, account_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hook, name)


def compatible(hook: Any) -> Authenticator:
    """``hook`` as today's ``Authenticator``, adapting an old two-argument ``remember``."""
    try:
        parameters = inspect.signature(hook.remember).parameters
    except (TypeError, ValueError):
        return hook  # type: ignore[no-any-return]
    if len(parameters) == 2 and not any(p.kind is p.VAR_POSITIONAL for p in parameters.values()):
        log.warning("auth hook %s: remember(response, account_id) is deprecated; add a holder argument", hook)
        return _RememberWithoutHolder(hook)
    return hook  # type: ignore[no-any-return]


def from_settings(settings: Settings, link_marker: LinkMarker | None = None) -> Authenticator:
    """The configured hook; the token scheme only outside live mode (its start
    tokens single-use when ``link_marker`` is given, as ``create_app`` does)."""
    if settings.auth_hook:
        module_name, _, attr = settings.auth_hook.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise SettingsError(f"auth_hook {settings.auth_hook!r} cannot be loaded: {exc}") from None
        hook: Authenticator = factory(settings)
        return hook
    if settings.livemode:
        raise SettingsError("live mode needs a real authentication hook (auth_hook = 'package.module:factory')")
    secret = settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_urlsafe(32)
    return SignedTokenAuth(
        secret,
        max_age=settings.session_max_age_seconds,
        token_max_age=settings.start_token_max_age_seconds,
        secure_cookie=settings.public_base_url.lower().startswith("https://"),
        link_marker=link_marker,
    )
