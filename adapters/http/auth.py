"""Who may start, refresh or return from an onboarding.

Stripe's guide: authenticate the holder before redirecting to an Account
Link, and remember that link-preview bots fetch URLs too. The app asks a
pluggable ``Authenticator``; platforms plug in their own session check
(``auth_hook = "package.module:factory"`` in settings). The embedded default,
``SignedTokenAuth``, accepts a short-lived signed token on the start URL and
then a signed, HttpOnly, short-lived cookie bound to the account for the
refresh and return URLs Stripe sends the holder to. Live mode refuses to run
on it.
"""

from __future__ import annotations

import importlib
import secrets
from typing import Protocol

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from onboarding_fsm.errors import SettingsError
from onboarding_fsm.settings import Settings

COOKIE = "onboarding_fsm_session"


class Authenticator(Protocol):
    def authenticate(self, request: Request, account_id: str) -> str | None:
        """The holder's identity (recorded as the audit actor), or None to refuse."""
        ...

    def remember(self, response: Response, account_id: str) -> None:
        """Called after a successful start (e.g. to set a session cookie)."""
        ...


class SignedTokenAuth:
    def __init__(self, secret: str, *, max_age: int = 900, secure_cookie: bool = False) -> None:
        self._tokens = URLSafeTimedSerializer(secret, salt="onboarding-fsm start")
        self._cookies = URLSafeTimedSerializer(secret, salt="onboarding-fsm session")
        self.max_age = max_age
        self.secure_cookie = secure_cookie

    def token_for(self, account_id: str, holder: str = "holder") -> str:
        """A start-URL token for ``account_id`` (send it to the signed-in holder)."""
        return self._tokens.dumps({"account": account_id, "holder": holder})

    def _check(self, serializer: URLSafeTimedSerializer, value: str | None, account_id: str) -> str | None:
        if not value:
            return None
        try:
            data = serializer.loads(value, max_age=self.max_age)
        except BadSignature:  # includes expiry
            return None
        if not isinstance(data, dict) or data.get("account") != account_id:
            return None
        holder = data.get("holder")
        return f"holder:{holder}" if isinstance(holder, str) else None

    def authenticate(self, request: Request, account_id: str) -> str | None:
        return self._check(self._tokens, request.query_params.get("token"), account_id) or self._check(
            self._cookies, request.cookies.get(COOKIE), account_id
        )

    def remember(self, response: Response, account_id: str) -> None:
        response.set_cookie(
            COOKIE,
            self._cookies.dumps({"account": account_id, "holder": "holder"}),
            max_age=self.max_age,
            httponly=True,
            secure=self.secure_cookie,
            samesite="lax",  # Stripe's redirect back is a top-level GET: lax cookies travel
        )


def from_settings(settings: Settings) -> Authenticator:
    """The configured hook; the token scheme only outside live mode."""
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
    return SignedTokenAuth(secret, max_age=settings.session_max_age_seconds)
