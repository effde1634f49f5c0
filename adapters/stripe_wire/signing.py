"""The ``Stripe-Signature`` header: ``t=<unix time>,v1=<hex HMAC-SHA256 of "{t}.{body}">``.

Signing is what Stripe (and so the simulator) does. Reading is done here, by
one strict parser, so the timestamp the age check sees is by construction
the one the HMAC covers: issue 9 found the SDK checking the signature
against one ``t`` field while we read the age from another (``t =<now>,
t=<old>,v1=…`` let a week-old delivery through). Anything but Stripe's
exact shape — a second ``t``, spaces, an empty field, a non-ASCII or non-hex
signature, a ``t`` that is not plain ASCII digits — is ``SignatureInvalid``.
``stripe`` is imported on first use (it takes ~0.2 s to import).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from onboarding_fsm.errors import SignatureInvalid

#: a field's key: ``t`` or a scheme name (``v1``, ``v0``…), nothing around it
_KEY = re.compile(r"[a-z][a-z0-9]{0,15}\Z")
#: unix seconds; 12 digits reach the year 33658, far beyond any tolerance
_TIMESTAMP = re.compile(r"[0-9]{1,12}\Z")
#: a v1 signature is a hex SHA-256 digest
_V1 = re.compile(r"[0-9a-f]{64}\Z")
#: more fields than secret rotation can explain (Stripe sends one v1 per active secret)
MAX_FIELDS = 16


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    timestamp: int
    v1: tuple[str, ...]


def sign(payload: bytes | str, secret: str, timestamp: int) -> str:
    """A ``Stripe-Signature`` header, as Stripe would send it."""
    import stripe

    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    header: str = stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)
    return header


def parse_header(header: str) -> SignatureHeader:
    """The one timestamp and the ``v1`` signatures of a header in Stripe's
    exact format; ``v0`` and other schemes are skipped (accepting only ``v1``
    prevents a downgrade), duplicates of ``t`` and any malformed field refused."""
    if not header.isascii():
        raise SignatureInvalid("Stripe-Signature header is not ASCII")
    fields = header.split(",")
    if len(fields) > MAX_FIELDS:
        raise SignatureInvalid("Stripe-Signature header has too many fields")
    timestamps: list[str] = []
    v1: list[str] = []
    for field in fields:
        key, sep, value = field.partition("=")
        if not sep or not _KEY.match(key):
            raise SignatureInvalid("Stripe-Signature header has a malformed field")
        if key == "t":
            if not _TIMESTAMP.match(value):
                raise SignatureInvalid("Stripe-Signature timestamp is not a unix time")
            timestamps.append(value)
        elif key == "v1":
            if not _V1.match(value):
                raise SignatureInvalid("Stripe-Signature v1 is not a hex SHA-256 signature")
            v1.append(value)
    if len(timestamps) != 1:
        raise SignatureInvalid(f"Stripe-Signature header needs exactly one timestamp, has {len(timestamps)}")
    if not v1:
        raise SignatureInvalid("Stripe-Signature header has no v1 signature")
    return SignatureHeader(int(timestamps[0]), tuple(v1))


def expected_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's v1: hex HMAC-SHA256 of ``"{t}.{raw body}"`` keyed by the endpoint secret."""
    return hmac.new(secret.encode("utf-8"), b"%d." % timestamp + payload, hashlib.sha256).hexdigest()
