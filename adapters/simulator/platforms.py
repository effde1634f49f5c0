"""The Connect platforms the simulator knows, and the 403 Stripe answers when
a platform's key asks about an account that is not its own.

At Stripe an account belongs to the platform that created it: another
platform's key gets HTTP 403 ``account_invalid`` for it (and does not see it
in its list), exactly as for an account that never existed or whose access
was revoked (STRIPE_FACTS, recorded shape 2). The simulator keeps several
platforms in one world so that answer — and a platform configured with the
wrong key — can be reproduced.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from onboarding_fsm.errors import StripeAccountInaccessible

from .errors import request_id

#: the default platform's secret key (in process and over HTTP)
TEST_KEY = "sk_test_onboarding_fsm_simulator"
#: a second platform's key, well known so tests can act as "another platform"
OTHER_TEST_KEY = "sk_test_onboarding_fsm_other_platform"
DEFAULT_PLATFORM = "platform"
OTHER_PLATFORM = "other"


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    key: str

    @property
    def application(self) -> dict[str, str]:
        """The platform's Connect application, as ``account.application.*`` events carry it."""
        digest = hashlib.sha256(self.name.encode()).hexdigest()[:24]
        return {"id": f"ca_{digest}", "object": "application", "name": f"onboarding-fsm simulator ({self.name})"}


def key_for(name: str) -> str:
    """The secret key of platform ``name`` (well known for the first two)."""
    known = {DEFAULT_PLATFORM: TEST_KEY, OTHER_PLATFORM: OTHER_TEST_KEY}
    return known.get(name) or f"sk_test_simulator_{hashlib.sha256(name.encode()).hexdigest()[:24]}"


def masked(key: str) -> str:
    """A key as Stripe quotes it in errors: its prefix and last four characters."""
    prefix = key[:8] if key.startswith(("sk_", "rk_")) else ""
    return prefix + "*" * max(len(key) - len(prefix) - 4, 3) + key[-4:]


def inaccessible(platform: Platform, account_id: str) -> StripeAccountInaccessible:
    """Stripe's 403 for an account this key cannot access (someone else's,
    deauthorized, or nonexistent: Stripe does not say which)."""
    return StripeAccountInaccessible(
        f"The provided key '{masked(platform.key)}' does not have access to account '{account_id}' "
        "(or that account does not exist). Application access may have been revoked.",
        http_status=403,
        code="account_invalid",
        request_id=request_id(),
    )
