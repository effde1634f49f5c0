"""Webhook signatures checked with the Stripe SDK's ``WebhookSignature``.

Only the HMAC check is delegated: ``construct_event`` would also build typed
objects (~1.5 ms per event) and its tolerance reads the wall clock and lets
future timestamps through, so the engine checks time against its own clock.
``stripe`` is imported on first use (it takes ~0.2 s to import).
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.stripe_wire.signing import signed_timestamp
from onboarding_fsm.errors import MalformedEvent, SignatureInvalid


class StripeSignatureVerifier:
    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise SignatureInvalid("no webhook signing secret configured")
        self._secrets = tuple(secrets)

    def verify(self, payload: bytes, header: str | None) -> int:
        import stripe

        if not header or not isinstance(header, str):
            raise SignatureInvalid("missing Stripe-Signature header")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEvent("body is not UTF-8") from None
        last: Exception | None = None
        for secret in self._secrets:
            try:
                stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
            except stripe.SignatureVerificationError as exc:
                last = exc
                continue
            return signed_timestamp(header)
        raise SignatureInvalid(f"signature verification failed: {last}")
