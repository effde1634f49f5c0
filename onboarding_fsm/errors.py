"""One exception tree for everything the engine raises.

Callers decide what to do by branch, never by message: a ``RetryableError``
may succeed if the same call is made again later (Stripe overloaded, a
concurrent writer won a race); a ``PermanentError`` will fail the same way
until the input changes. Stripe's own exceptions are translated into this
tree at the adapter, so no caller ever imports ``stripe`` to catch an error.
"""

from __future__ import annotations

from typing import ClassVar


class OnboardingError(Exception):
    """Root of the tree; ``retryable`` tells a caller whether to try again."""

    retryable: ClassVar[bool] = False


class PermanentError(OnboardingError):
    retryable = False


class RetryableError(OnboardingError):
    retryable = True


# --- bad input -------------------------------------------------------------


class InvalidInput(PermanentError, ValueError):
    """An argument the engine refuses; nothing was changed."""


class SettingsError(InvalidInput):
    """Settings that cannot run safely (e.g. live mode with an http URL)."""


class InsecureUrl(InvalidInput):
    """Live mode needs HTTPS refresh and return URLs (Stripe refuses others)."""


class MalformedPayload(InvalidInput):
    """A Stripe object that does not have the shape the API documents."""


# --- domain refusals -------------------------------------------------------


class AccountNotFound(PermanentError, LookupError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no onboarding account {account_id!r}")
        self.account_id = account_id


class EventNotFound(PermanentError, LookupError):
    """No webhook event with this id in the inbox (``inbox reprocess --id``)."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"no recorded webhook event {event_id!r}")
        self.event_id = event_id


class TriggerNotAllowed(PermanentError):
    """The trigger has no edge from the account's current state."""

    def __init__(self, account_id: str, state: str, trigger: str, target: str | None = None) -> None:
        where = f" to {target}" if target else ""
        super().__init__(f"trigger {trigger!r} is not allowed from state {state!r}{where} (account {account_id})")
        self.account_id = account_id
        self.state = state
        self.trigger = trigger
        self.target = target


class LinkNotAllowed(PermanentError):
    """An Account Link Stripe would refuse, or one we have no parameters for."""


class ProfileNotEditable(LinkNotAllowed):
    """No "edit my profile" link for this account; ``where`` says why, for a
    page in the holder's words: ``disabled``, ``dashboard`` (Stripe-hosted
    dashboard) or ``embedded`` (Stripe collects, no dashboard)."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


class UpdateNotAllowed(PermanentError):
    """An account update the engine refuses before Stripe is asked; nothing changed."""


class IdentityLocked(UpdateNotAllowed):
    """Stripe collects this account's requirements and a link was issued:
    identity fields are the holder's now (send them through a link)."""

    def __init__(self, account_id: str, fields: tuple[str, ...]) -> None:
        super().__init__(
            f"account {account_id}: {', '.join(fields)} can no longer be set by the platform: Stripe locks "
            "identity information once the first Account Link was created for an account where Stripe "
            "collects requirements; the holder updates it through an onboarding link"
        )
        self.account_id = account_id
        self.fields = fields


# --- webhooks ----------------------------------------------------------------


class WebhookRejected(PermanentError):
    """The request is not an event we can trust or read; answer 400."""


class SignatureInvalid(WebhookRejected):
    pass


class TimestampOutOfTolerance(WebhookRejected):
    pass


class MalformedEvent(WebhookRejected, MalformedPayload):
    pass


class EventAheadOfAccount(RetryableError):
    """An event for an account of ours whose create has not committed yet
    (it raced Stripe's answer to our create). Recorded nowhere and answered
    "retry" (503), so Stripe delivers it again once the account exists."""


# --- Stripe, translated at the adapter --------------------------------------


class StripeFailure(OnboardingError):
    """Common attributes of every Stripe error, kept for support tickets."""

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        http_status: int | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.http_status = http_status
        self.code = code
        self.param = param


class StripeRequestFailed(StripeFailure, PermanentError):
    """Stripe refused the request (invalid parameters, missing account)."""


class StripeIdempotencyConflict(StripeRequestFailed):
    """The same idempotency key was used with different parameters."""


class StripeAuthenticationFailed(StripeRequestFailed):
    """Bad key, or a key without access to the account (e.g. deauthorized)."""


class StripeAccountInaccessible(StripeAuthenticationFailed):
    """403 ``account_invalid``: this key cannot see the account. Stripe says
    the same for an account that left the platform, one that never existed,
    and every account when the key belongs to another platform, so one such
    answer is not proof that the account is gone."""


class StripeUnavailable(StripeFailure, RetryableError):
    """Network failure or a 5xx: the same request may succeed later."""


class StripeRateLimited(StripeUnavailable):
    """429: back off and try again."""


# --- persistence -------------------------------------------------------------


class ConcurrencyConflict(RetryableError):
    """Another writer changed the account since it was read (optimistic version)."""


class StoreUnavailable(RetryableError):
    """The database is locked or unreachable."""


class DuplicateEvent(PermanentError):
    """The inbox already holds this event id: the delivery was seen before.

    Raised by the store's ``record_event`` (at the latest when the transaction
    commits) and answered by the engine as a ``duplicate`` outcome, never
    passed to callers."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event {event_id!r} was already recorded")
        self.event_id = event_id
