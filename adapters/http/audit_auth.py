"""Who may read the audit page: its own authentication, apart from holders'.

Rules, in order (``auditor_from_settings``):

* ``audit_auth_hook = "package.module:factory"``: ``factory(settings)``
  returns an ``AuditorAuth``; its ``authenticate(request)`` names the auditor
  (shown on the page and logged with every view) or returns None to refuse;
* else ``audit_token``: HTTP Basic, any user name, the token as password
  (compared in constant time); the auditor is ``auditor:<user name>``;
* else, in test mode only, the page is open: everyone is ``auditor:anonymous``;
* in live mode with neither, there is no auditor and the page is not mounted
  (a warning is logged): a deployment that never wants the page need not
  configure it, and one that does cannot expose it by forgetting to.

A refusal is a 401 with ``WWW-Authenticate: Basic realm="onboarding-fsm audit"``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib
import logging
import re
from typing import Protocol

from starlette.requests import Request

from onboarding_fsm.errors import SettingsError
from onboarding_fsm.settings import Settings

log = logging.getLogger("adapters.http.audit")
REALM = "onboarding-fsm audit"
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'
AUDITOR_PREFIX = "auditor:"
ANONYMOUS = AUDITOR_PREFIX + "anonymous"
#: an auditor's name from Basic auth: printable ASCII, no ':' (it ends the name), at most 64 characters
_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]{1,64}")


class AuditorAuth(Protocol):
    def authenticate(self, request: Request) -> str | None:
        """The auditor's identity, or None to refuse (answered 401)."""
        ...


class OpenAuth:
    """Test mode with nothing configured: everyone may read, as ``auditor:anonymous``."""

    def authenticate(self, request: Request) -> str | None:
        return ANONYMOUS


class BasicTokenAuth:
    """HTTP Basic: any user name, the configured token as the password."""

    def __init__(self, token: str) -> None:
        if not token:
            raise SettingsError("audit_token must not be empty")
        self._token = token.encode("utf-8")

    def authenticate(self, request: Request) -> str | None:
        credentials = basic_credentials(request.headers.get("authorization"))
        if credentials is None:
            return None
        user, password = credentials
        # compare first, whatever the name: the time taken says nothing about either
        if not hmac.compare_digest(password.encode("utf-8"), self._token) or not _NAME.fullmatch(user):
            return None
        return AUDITOR_PREFIX + user


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic …`` header, or None."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def load_hook(spec: str, settings: Settings) -> AuditorAuth:
    """``factory(settings)`` for ``spec`` = ``"package.module:factory"``."""
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SettingsError(f"audit_auth_hook {spec!r} cannot be loaded: {exc}") from None
    hook: AuditorAuth = factory(settings)
    if not callable(getattr(hook, "authenticate", None)):
        raise SettingsError(f"audit_auth_hook {spec!r} made an object without authenticate(request)")
    return hook


def auditor_from_settings(settings: Settings) -> AuditorAuth | None:
    """The configured auditor authentication; None: do not mount the page."""
    if settings.audit_auth_hook:
        return load_hook(settings.audit_auth_hook, settings)
    if settings.audit_token is not None:
        return BasicTokenAuth(settings.audit_token.get_secret_value())
    if not settings.livemode:
        return OpenAuth()
    log.warning(
        "the audit page (%s) is not served: live mode needs audit_auth_hook or audit_token to serve it",
        settings.audit_path,
    )
    return None
