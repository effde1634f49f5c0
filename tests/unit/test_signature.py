"""The ``Stripe-Signature`` header is read once, strictly: the timestamp the
verifier returns (and the engine checks for age) is the one the HMAC covers.

Issue 9: the SDK checked the HMAC against one ``t`` field while the age check
read another, so a captured week-old delivery passed with a fresh ``t`` put
in front of (or after) the old one.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from adapters.stripe.signature import StripeSignatureVerifier
from adapters.stripe_wire.signing import sign
from onboarding_fsm.errors import SignatureInvalid

SECRET = "whsec_test_current"
OLD_SECRET = "whsec_test_rolled"
BODY = b'{"id": "evt_1", "object": "event"}'
NOW = 1_772_443_800
WEEK_AGO = NOW - 7 * 86_400
ARABIC_INDIC_ONE = "\u0661"


def v1(body: bytes, secret: str, t: int | str) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def verify(header: str | None, body: bytes = BODY, secrets: tuple[str, ...] = (SECRET,)) -> int:
    return StripeSignatureVerifier(secrets).verify(body, header)


def test_a_header_as_stripe_sends_it_yields_its_timestamp() -> None:
    assert verify(sign(BODY, SECRET, NOW)) == NOW
    assert verify(f"t={NOW},v1={v1(BODY, SECRET, NOW)}") == NOW


@pytest.mark.parametrize(
    "template",
    [
        "t ={now},t={old},v1={sig}",  # a second t the SDK skipped (its key is "t "), ours read
        "v1={sig}, t={now},t={old}",
        "t={old},t={now},v1={sig}",
        "t={now},v1={sig},t={old}",
    ],
)
def test_a_fresh_timestamp_beside_the_signed_old_one_is_refused(template: str) -> None:
    """The replay bypass: whatever order, two timestamps are never accepted."""
    header = template.format(now=NOW, old=WEEK_AGO, sig=v1(BODY, SECRET, WEEK_AGO))
    with pytest.raises(SignatureInvalid):
        verify(header)


def test_the_returned_timestamp_is_the_signed_one() -> None:
    """Even where the header is accepted, the age check sees what the HMAC covered."""
    assert verify(f"t={WEEK_AGO},v1={v1(BODY, SECRET, WEEK_AGO)}") == WEEK_AGO


@pytest.mark.parametrize(
    "header",
    [
        f"t={NOW}=1,v1={v1(BODY, SECRET, NOW)}",  # was int("…=1"): a 500
        f"t={NOW},v1=\u00e9{v1(BODY, SECRET, NOW)[1:]}",  # non-ASCII in v1 (no signature needed): a 500
        f"t={NOW},v1=\u00e9",
        f"t={NOW},v1=\udc80",
        f"t={NOW},v1={ARABIC_INDIC_ONE * 64}",  # not hex
        f"t={ARABIC_INDIC_ONE * 10},v1={v1(BODY, SECRET, NOW)}",  # int() would read them as digits
        f"t=+{NOW},v1={v1(BODY, SECRET, NOW)}",
        f"t= {NOW},v1={v1(BODY, SECRET, NOW)}",
        f"t=-{NOW},v1={v1(BODY, SECRET, NOW)}",
        f"t={'9' * 5000},v1={v1(BODY, SECRET, NOW)}",
        f"t={NOW},v1={v1(BODY, SECRET, NOW)},",
        f"t={NOW},,v1={v1(BODY, SECRET, NOW)}",
        f"t={NOW},v1",
        f"t={NOW}",
        f"v1={v1(BODY, SECRET, NOW)}",
        f"t={NOW},v0={v1(BODY, SECRET, NOW)}",  # only v1 counts: no downgrade to v0
        f"T={NOW},v1={v1(BODY, SECRET, NOW)}",
        "",
        "=",
        ",",
        "garbage",
    ],
)
def test_malformed_headers_are_signature_invalid(header: str) -> None:
    with pytest.raises(SignatureInvalid):
        verify(header)


def test_no_header_is_signature_invalid() -> None:
    with pytest.raises(SignatureInvalid):
        verify(None)


def test_any_configured_secret_and_any_v1_may_match() -> None:
    """Secret rotation: Stripe sends one v1 per active secret; v0 is ignored."""
    header = f"t={NOW},v1={v1(BODY, OLD_SECRET, NOW)},v1={v1(BODY, SECRET, NOW)},v0={'0' * 64}"
    assert verify(header, secrets=(SECRET,)) == NOW
    assert verify(header, secrets=(OLD_SECRET,)) == NOW
    assert verify(sign(BODY, OLD_SECRET, NOW), secrets=(SECRET, OLD_SECRET)) == NOW
    with pytest.raises(SignatureInvalid):
        verify(header, secrets=("whsec_other",))


def test_a_body_that_is_not_utf8_is_refused_for_its_signature_first() -> None:
    """Unsigned garbage is refused before anything reads it."""
    with pytest.raises(SignatureInvalid):
        verify(f"t={NOW},v1={'0' * 64}", body=b"\xff\xfe")


def test_a_signed_body_that_is_not_utf8_verifies_and_is_left_to_the_parser() -> None:
    body = b'{"id": "\xff"}'
    assert verify(f"t={NOW},v1={v1(body, SECRET, NOW)}", body=body) == NOW


def test_a_tampered_body_or_timestamp_is_refused() -> None:
    header = sign(BODY, SECRET, NOW)
    with pytest.raises(SignatureInvalid):
        verify(header, body=BODY + b" ")
    with pytest.raises(SignatureInvalid):
        verify(header.replace(f"t={NOW}", f"t={NOW + 1}"))
