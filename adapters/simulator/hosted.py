"""The holder's side: what Stripe's hosted onboarding form does.

A link is visited once; the form lists what is due under the link's
collection options; the holder submits values (Stripe's parameter shapes,
nested or dotted), confirms a phone with the test SMS code, and either
finishes (every asked field must be filled) or saves for later. Either way
the holder lands on the link's ``return_url`` — which, as in real life, says
nothing about whether onboarding is complete.

An account created with neither a country nor capabilities (one with a
Stripe-hosted dashboard: Stripe requires capabilities for the others) asks
for ``country`` first: the choice applies to the account at once (the rest
of the form is then the chosen country's) and cannot be changed again. A
submit is checked whole before anything applies, the country included. The
bank account (``external_account``) may be a token, a test account number,
or Stripe's nested bank account hash; a number Stripe would refuse is a
``FormError`` at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import banks, catalog
from .errors import FormError
from .model import flatten
from .state import SimLink, SimState


class HostedSession:
    def __init__(self, state: SimState, link: SimLink) -> None:
        self._state = state
        self._link = link
        self._values: dict[str, str] = {}
        self._sms_confirmed = False
        self._closed = False
        self.account_id = link.account_id
        self.return_url = link.return_url
        self.refresh_url = link.refresh_url

    @property
    def link_type(self) -> str:
        return self._link.params.type.value

    @property
    def due(self) -> tuple[str, ...]:
        """Fields the form asks for, not yet provided in this session."""
        asked = self._state.form_fields(self._link)
        return tuple(f for f in asked if f not in self._values and not self._covered(f))

    @property
    def asked(self) -> tuple[str, ...]:
        return self._state.form_fields(self._link)

    @property
    def country(self) -> str:
        """The account's country now (the platform's until the holder chooses one)."""
        return self._state.country_of(self.account_id)

    def _covered(self, name: str) -> bool:
        if name == banks.FIELD:
            return any(banks.is_bank_field(f) for f in self._values)
        return any(alt in self._values for alt in catalog.ALTERNATIVES.get(name, ()))

    def _open(self) -> None:
        if self._closed:
            raise FormError("this onboarding session has ended")

    def submit(self, data: Mapping[str, Any] | None = None, **fields: Any) -> HostedSession:
        """Enter values, nested like Stripe's parameters or as dotted names;
        a ``country`` first, as the form asks it first. Everything is checked
        before anything applies: a refused submit changes nothing."""
        self._open()
        values = flatten(data or {})
        values.update({k: str(v) for k, v in fields.items()})
        country = values.pop("country", None)
        if country is not None:
            if "country" not in self.asked:
                raise FormError("the form does not ask for ['country']: the account's country is fixed")
            self._state.check_country(self.account_id, country)
        allowed = self._allowed(country)
        unknown = sorted(f for f in values if _asked_as(f) not in allowed)
        if unknown:
            raise FormError(f"the form does not ask for {unknown}")
        new_bank = any(banks.is_bank_field(f) for f in values)
        if new_bank:
            try:
                banks.parse(values)
            except banks.BankRefused as exc:
                raise FormError(str(exc)) from None
        # all checked: apply. Stripe's form re-renders for a chosen country:
        # what was entered for the old one and is no longer asked is dropped
        if country is not None:
            self._state.choose_country(self.account_id, country)
            self._values = {k: v for k, v in self._values.items() if _asked_as(k) in allowed}
        if new_bank:  # a new bank account replaces what was entered for the old one
            self._values = {k: v for k, v in self._values.items() if not banks.is_bank_field(k)}
        self._values.update(values)
        return self

    def _allowed(self, country: str | None = None) -> set[str]:
        """What the form takes now, or once ``country`` is chosen."""
        asked = self._state.form_fields(self._link, country=country)
        allowed = set(asked) | {alt for f in asked for alt in catalog.ALTERNATIVES.get(f, ())}
        return allowed | set(self._state.provided_fields(self.account_id))

    def fill(self, overrides: Mapping[str, Any] | None = None) -> HostedSession:
        """Fill every remaining field with test data that passes at once; an
        open country stays the account's (the platform's) unless ``overrides``
        names another."""
        rest = flatten(overrides or {})
        if "country" in self.due:
            self.submit({"country": rest.pop("country", self.country)})
        self.submit(catalog.valid_test_data(self.due, country=self.country))
        if rest:
            self.submit(rest)
        if any(f in catalog.PHONE_FIELDS for f in self._values):
            self.confirm_sms(catalog.TEST_SMS_CODE)
        return self

    def confirm_sms(self, code: str) -> HostedSession:
        self._open()
        if code != catalog.TEST_SMS_CODE:
            raise FormError("wrong SMS code (test mode accepts 000-000)")
        self._sms_confirmed = True
        return self

    def finish(self) -> str:
        """Submit the form; every asked field must be filled. Returns the return_url."""
        self._open()
        missing = self.due
        if missing:
            raise FormError(f"the form still needs {list(missing)}")
        if not self._sms_confirmed and any(f in catalog.PHONE_FIELDS for f in self._values):
            raise FormError("confirm the phone number with the SMS code first")
        self._closed = True
        self._state.apply_form(self.account_id, self._values, finished=True)
        return self.return_url

    def save_for_later(self) -> str:
        """Leave the flow keeping what was entered (unconfirmed phones dropped)."""
        self._open()
        self._closed = True
        values = dict(self._values)
        if not self._sms_confirmed:
            for name in catalog.PHONE_FIELDS:
                values.pop(name, None)
        self._state.apply_form(self.account_id, values, finished=False)
        return self.return_url

    def complete(self, overrides: Mapping[str, Any] | None = None) -> str:
        """Fill with passing test data (plus ``overrides``) and finish."""
        return self.fill(overrides).finish()


def _asked_as(name: str) -> str:
    """The field the form asks that ``name`` fills (a bank account's parts: ``external_account``)."""
    return banks.FIELD if banks.is_bank_field(name) else name
