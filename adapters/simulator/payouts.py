"""Payouts to a connected account's bank account (``POST /v1/payouts`` with
the ``Stripe-Account`` header), and what a failed one does to the account.

What Stripe documents (the OpenAPI ``bank_account.status`` description;
support article "Managing Connect payout failures"): a payout to a bad bank
account ends ``failed`` with a ``failure_code`` and ``failure_message``
(``payout.failed`` on the Connect endpoint); the external account's
``status`` becomes ``errored`` and payouts stop until the bank details are
updated; the Dashboard lists the account as Restricted, owing a bank
account. The simulator renders that as ``external_account`` in
``requirements.currently_due`` (no deadline, no requirement error) and
``payouts_enabled: false`` (``model``, ``render``). Replacing the bank
account clears it.

Simplifications, said plainly: there is no balance (any positive amount is
paid out) and a payout settles at once — the answer already says ``paid``
or ``failed``; ``payout.created`` carries it ``pending``, then
``payout.paid`` or ``payout.failed`` follow. ``arrival_date`` is midnight
UTC two days later. Only ``standard`` payouts to the account's one bank
account exist. A refusal is Stripe's 400 ``invalid_request_error``: code
``payouts_not_allowed`` while the account's payouts are disabled; "You
don't have any external accounts in that currency" (param ``currency``)
without a bank account in the payout's currency.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from onboarding_fsm.errors import StripeRequestFailed

from . import banks, checks, sections
from .errors import invalid, request_id
from .model import SimAccount

PAYOUT_PARAMS = frozenset({"amount", "currency", "description", "destination", "expand", "metadata", "method",
                           "source_type", "statement_descriptor"})  # fmt: skip
_DAY = 86400


class World(Protocol):
    """What a payout needs of the simulated world (``state.SimState``)."""

    payouts: dict[str, SimPayout]

    def now(self) -> int: ...
    def new_id(self, prefix: str, length: int = 16) -> str: ...
    def render(self, acct: SimAccount) -> dict[str, Any]: ...
    def publish(self, acct: SimAccount) -> None: ...
    def emit(
        self, type_: str, obj: dict[str, Any], account_id: str, previous: dict[str, Any] | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    amount: int
    currency: str
    destination: str | None = None
    description: str | None = None
    statement_descriptor: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass
class SimPayout:
    id: str
    account_id: str
    request: PayoutRequest
    destination: str
    created: int
    status: str = "pending"
    failure_code: str | None = None


def render(payout: SimPayout) -> dict[str, Any]:
    """Stripe's ``payout`` object."""
    req = payout.request
    return {
        "id": payout.id,
        "object": "payout",
        "amount": req.amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": (payout.created // _DAY + 2) * _DAY,
        "automatic": False,
        "balance_transaction": None,
        "created": payout.created,
        "currency": req.currency,
        "description": req.description,
        "destination": payout.destination,
        "failure_balance_transaction": None,
        "failure_code": payout.failure_code,
        "failure_message": banks.FAILURE_MESSAGES.get(payout.failure_code or ""),
        "livemode": False,
        "metadata": dict(req.metadata),
        "method": "standard",
        "original_payout": None,
        "reconciliation_status": "not_applicable",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": req.statement_descriptor,
        "status": payout.status,
        "type": "bank_account",
    }


def request(params: Mapping[str, Any]) -> PayoutRequest:
    """Stripe's parameter checks, before anything runs."""
    checks.known(params, PAYOUT_PARAMS)
    for name in ("amount", "currency"):
        if params.get(name) in (None, ""):
            raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
    amount = checks.integer(params["amount"], "amount")
    if amount < 1:
        raise invalid("Invalid positive integer", "amount", "parameter_invalid_integer")
    currency = str(params["currency"]).lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise invalid(f"Invalid currency: {params['currency']}", "currency")
    if params.get("method", "standard") != "standard":
        raise invalid("The simulator sends standard payouts only.", "method")
    if params.get("source_type", "card") != "card":
        raise invalid("The simulator's balances are card balances: source_type must be card.", "source_type")
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise invalid("Invalid object", "metadata")
    return PayoutRequest(
        amount=amount,
        currency=currency,
        destination=_text(params.get("destination")),
        description=_text(params.get("description")),
        statement_descriptor=_text(params.get("statement_descriptor")),
        metadata={str(k): str(v) for k, v in metadata.items() if v not in ("", None)},
    )


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def create(state: World, acct: SimAccount, req: PayoutRequest) -> dict[str, Any]:
    """Pay out to the account's bank account; a test number that fails makes
    the payout ``failed`` and the bank account ``errored`` (events as Stripe
    sends them). Under the world's lock."""
    if not state.render(acct)["payouts_enabled"]:
        raise invalid(
            "Payouts have been disabled on this account: check its requirements to see what it still owes.",
            None,
            "payouts_not_allowed",
        )
    bank = acct.bank
    rendered_bank = sections.bank_account(acct)
    if bank is None or rendered_bank is None or rendered_bank["currency"] != req.currency:
        raise invalid(f"You don't have any external accounts in that currency ({req.currency}).", "currency", None)
    if req.destination is not None and req.destination != bank.id:
        raise invalid(f"No such external account: '{req.destination}'", "destination", "resource_missing")
    payout = SimPayout(state.new_id("po_", 24), acct.id, req, bank.id, state.now())
    state.payouts[payout.id] = payout
    state.emit("payout.created", render(payout), acct.id)
    failure = bank.details.failure
    if failure is None:
        payout.status = "paid"
        state.emit("payout.paid", render(payout), acct.id, {"status": "pending"})
        return render(payout)
    payout.status, payout.failure_code = "failed", failure
    state.emit("payout.failed", render(payout), acct.id, {"status": "pending"})
    bank.status = "errored"
    errored = copy.deepcopy({**rendered_bank, "status": bank.status})
    state.emit("account.external_account.updated", errored, acct.id, {"status": "new"})
    state.publish(acct)  # account.updated: a bank account is owed again, payouts stop
    return render(payout)


def retrieve(state: World, acct: SimAccount, payout_id: str) -> dict[str, Any]:
    payout = state.payouts.get(payout_id)
    if payout is None or payout.account_id != acct.id:
        raise StripeRequestFailed(
            f"No such payout: '{payout_id}'", http_status=404, code="resource_missing", param="id",
            request_id=request_id(),
        )  # fmt: skip
    return render(payout)
