"""The ``Stripe-Signature`` header: ``t=<unix time>,v1=<hex HMAC-SHA256 of "{t}.{body}">``.

Signing is what Stripe (and so the simulator) does; reading the signed
timestamp is what a verifier needs after the SDK has checked the HMAC.
``stripe`` is imported on first use (it takes ~0.2 s to import).
"""

from __future__ import annotations

from onboarding_fsm.errors import SignatureInvalid


def sign(payload: bytes | str, secret: str, timestamp: int) -> str:
    """A ``Stripe-Signature`` header, as Stripe would send it."""
    import stripe

    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    header: str = stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)
    return header


def signed_timestamp(header: str) -> int:
    """The ``t`` field of a header whose signature was already verified."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return int(value)
    raise SignatureInvalid("Stripe-Signature header has no timestamp")
