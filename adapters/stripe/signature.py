"""Webhook signatures, checked the way Stripe documents it.

The header is read by ``stripe_wire.signing.parse_header`` — one strict
parser — and the HMAC is computed over exactly the timestamp it yields, which
is what ``verify`` returns for the engine's age check. The SDK's
``verify_header`` is no longer used: it re-parses the header with its own
rules, and issue 9 showed that two parsers disagreeing on which ``t`` counts
is a replay bypass. Every configured secret is tried against every ``v1``
(secret rotation: Stripe sends one ``v1`` per active secret) in constant
time. The raw body is signed as bytes, so a body that is not UTF-8 is
refused for its signature first and, if signed, left to the event parser.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from adapters.stripe_wire.signing import expected_signature, parse_header
from onboarding_fsm.errors import SignatureInvalid


class StripeSignatureVerifier:
    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise SignatureInvalid("no webhook signing secret configured")
        self._secrets = tuple(secrets)

    def verify(self, payload: bytes, header: str | None) -> int:
        """The timestamp the matching signature covers; ``SignatureInvalid`` otherwise."""
        if not header or not isinstance(header, str):
            raise SignatureInvalid("missing Stripe-Signature header")
        parsed = parse_header(header)
        matched = False
        for secret in self._secrets:
            expected = expected_signature(payload, secret, parsed.timestamp)
            for candidate in parsed.v1:
                matched |= hmac.compare_digest(expected, candidate)  # no early exit: constant time
        if not matched:
            raise SignatureInvalid("no v1 signature matches the payload for any configured secret")
        return parsed.timestamp
