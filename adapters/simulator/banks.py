"""External (bank) accounts: what the platform or the holder attaches, and
what a payout to it meets in test mode.

Stripe's test bank numbers decide a payout's outcome (STRIPE_FACTS §5 "Bank
accounts"; docs ``/connect/testing``): in the US, routing number
``110000000`` with ``000123456789`` pays out and ``000111111116``,
``000111111113``, ``000222222227``, ``000333333335``, ``000444444440`` fail
with ``no_account``, ``account_closed``, ``insufficient_funds``,
``debit_not_authorized``, ``invalid_currency``; the UK's sort code ``108800``
and the EU's test IBANs follow the same pattern. Any other number is refused,
as Stripe refuses a live bank number in test mode. A token (``btok_…``,
``tok_…``) stands for the succeeding US test account (last4 ``6789``), in the
account's country and currency, as the simulator always rendered it.

An external account is given as Stripe's parameters give it: a token, or the
nested ``external_account[object]=bank_account`` hash with
``account_number`` and ``country`` (required), ``routing_number``,
``currency``; the
simulator also takes a bare test account number (what a holder types into
the hosted form). The full number is kept nowhere but the details' judgement:
only ``last4`` and a fingerprint are rendered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import catalog

FIELD = "external_account"
US_ROUTING = "110000000"
GB_SORT_CODE = "108800"
#: Stripe's payout failure codes for the test numbers, and their messages (docs ``/api/payouts/failures``)
FAILURE_MESSAGES = {
    "no_account": "The bank account details on file are probably incorrect. No bank account could be located "
    "with those details.",
    "account_closed": "The bank account has been closed.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account. (Stripe requires bank "
    "accounts to be set up for both credit and debit payouts.)",
    "invalid_currency": "The bank was unable to process this payout because of its currency. This is probably "
    "because the bank account cannot accept payments in that currency.",
}
#: account number -> failure code (None: the payout is paid), per country's test numbers
US_NUMBERS: dict[str, str | None] = {
    "000123456789": None,
    "000111111116": "no_account",
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
    "000444444440": "invalid_currency",
}
#: the UK's (sort code 108800)
GB_NUMBERS: dict[str, str | None] = {
    "00012345": None,
    "11111116": "no_account",
    "11111113": "account_closed",
    "22222227": "insufficient_funds",
    "33333335": "debit_not_authorized",
    "44444440": "invalid_currency",
}
#: an EU test IBAN after its country code and check digits (any EU country code, docs ``/connect/testing``)
IBAN_NUMBERS: dict[str, str | None] = {
    f"370400440532013{n:03d}": failure for n, failure in enumerate(US_NUMBERS.values())
}
_IBAN = re.compile(r"([A-Z]{2})\d{2}(\d{18})\Z")
#: the dictionary's keys (the description's ``external_account_payout_bank_account``)
_PARTS = frozenset({"account_holder_name", "account_holder_type", "account_number", "account_type", "country",
                    "currency", "documents", "object", "routing_number"})  # fmt: skip
_LIVE_NUMBER = (
    "You cannot use a live bank account number when making transfers or debits in test mode. Use a test bank "
    "account number such as 000123456789 (routing number 110000000)."
)


class BankRefused(ValueError):
    """The external account Stripe would not accept (the parameter it names)."""

    def __init__(self, message: str, param: str = FIELD, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class BankDetails:
    """A judged external account: what may be rendered, and what a payout meets."""

    #: None: the account's country (and currency) at render time — a token's
    country: str | None
    currency: str | None
    last4: str
    routing_number: str | None
    fingerprint: str
    #: the payout failure code this account produces (None: payouts are paid)
    failure: str | None = None


@dataclass
class SimBank:
    """The external account attached to a simulated account."""

    id: str
    details: BankDetails
    created: int
    #: ``new``; ``errored`` once a payout to it failed (Stripe stops payouts until it is replaced)
    status: str = "new"

    @property
    def errored(self) -> bool:
        return self.status == "errored"


def is_bank_field(name: str) -> bool:
    return name == FIELD or name.startswith(FIELD + ".")


def parse(values: Mapping[str, str]) -> BankDetails | None:
    """The external account the flat ``external_account[...]`` values give
    (None if they give none), or ``BankRefused``."""
    given = {name: value for name, value in values.items() if is_bank_field(name)}
    if not given:
        return None
    whole = given.pop(FIELD, None)
    if whole is not None and given:
        raise BankRefused("Pass external_account as a token or as a bank account hash, not both.")
    if whole is not None:
        whole = whole.strip()
        if whole.startswith(("btok_", "tok_")):
            return BankDetails(None, None, "6789", US_ROUTING, _fingerprint("token", whole))
        return _number(whole, None, None, None, FIELD)
    parts = {name.removeprefix(FIELD + ".").split(".", 1)[0]: value for name, value in given.items()}
    unknown = sorted(set(parts) - _PARTS)
    if unknown:
        name = f"{FIELD}[{unknown[0]}]"
        raise BankRefused(f"Received unknown parameter: {name}", name, "parameter_unknown")
    if parts.get("object", "bank_account") != "bank_account":
        raise BankRefused("The simulator takes bank accounts only: external_account[object]=bank_account.")
    for required in ("account_number", "country"):
        if not parts.get(required, "").strip():
            name = f"{FIELD}[{required}]"
            raise BankRefused(f"Missing required param: {name}.", name, "parameter_missing")
    number = parts["account_number"].strip()
    currency = parts.get("currency", "").strip().lower() or None
    if currency is not None and not re.fullmatch(r"[a-z]{3}", currency):
        raise BankRefused(f"Invalid currency: {currency}", f"{FIELD}[currency]")
    country = parts.get("country", "").strip().upper() or None
    routing = parts.get("routing_number", "").strip() or None
    return _number(number, routing, country, currency, f"{FIELD}[account_number]")


def _number(number: str, routing: str | None, country: str | None, currency: str | None, param: str) -> BankDetails:
    compact = number.replace(" ", "").upper()
    iban = _IBAN.match(compact)
    if compact in US_NUMBERS:
        home, bank_code, failure = "US", US_ROUTING, US_NUMBERS[compact]
    elif compact in GB_NUMBERS:
        home, bank_code, failure = "GB", GB_SORT_CODE, GB_NUMBERS[compact]
    elif iban is not None and iban.group(2) in IBAN_NUMBERS:
        home, bank_code, failure = iban.group(1), None, IBAN_NUMBERS[iban.group(2)]
    else:
        raise BankRefused(_LIVE_NUMBER, param)
    if routing is not None and bank_code is not None and routing.replace("-", "") != bank_code:
        raise BankRefused(
            f"Routing number {routing} does not go with Stripe's test bank account numbers: use {bank_code}.",
            f"{FIELD}[routing_number]",
        )
    if country is not None and country != home:
        raise BankRefused(f"This test bank account number is for {home}, not {country}.", f"{FIELD}[country]")
    return BankDetails(
        country=home,
        currency=currency or ("eur" if iban is not None else catalog.currency(home)),
        last4=compact[-4:],
        routing_number=bank_code,
        fingerprint=_fingerprint(bank_code or home, compact),
        failure=failure,
    )


def _fingerprint(*parts: str) -> str:
    """Stripe's fingerprint names a bank account across accounts (never the number)."""
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:16]


def new_id(account_id: str, n: int) -> str:
    """The ``n``-th external account attached to ``account_id`` (not from the
    world's seeded generator: attaching one leaves account ids as they were)."""
    return "ba_" + hashlib.sha256(f"{account_id}:{n}".encode()).hexdigest()[:24]
