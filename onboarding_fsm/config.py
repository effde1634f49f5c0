"""What the engine itself needs to decide, and nothing else.

``Settings`` holds the whole application's configuration (HTTP, auth, the
worker, storage); the engine sees only this frozen value, derived from it by
``Settings.engine_config()``. Keeping the two apart means a decision can be
table-tested with a hand-built config, and an adapter cannot reach the HTTP
or worker settings through the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from .account import FutureRequirements
from .errors import InvalidInput
from .policy import Policy

ACCOUNT_PLACEHOLDER = "{account}"


@dataclass(frozen=True, slots=True)
class LinkUrls:
    """Where Stripe sends the holder back: ``{account}`` is replaced by the account id."""

    refresh: str = "http://127.0.0.1:8000/onboarding/{account}/refresh"
    return_: str = "http://127.0.0.1:8000/onboarding/{account}/return"

    def __post_init__(self) -> None:
        for url in (self.refresh, self.return_):
            if ACCOUNT_PLACEHOLDER not in url:
                raise InvalidInput(f"link URL template needs {ACCOUNT_PLACEHOLDER}: {url!r}")

    def refresh_url(self, account_id: str) -> str:
        return self.refresh.replace(ACCOUNT_PLACEHOLDER, account_id)

    def return_url(self, account_id: str) -> str:
        return self.return_.replace(ACCOUNT_PLACEHOLDER, account_id)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    policy: Policy = field(default_factory=Policy)
    #: the mode of the Stripe key: events of the other mode are recorded, never applied
    livemode: bool = False
    #: how far a signature's timestamp may be from our clock, either way
    webhook_tolerance: timedelta = timedelta(seconds=300)
    #: a holder who has not come back by then has left the flow
    abandon_after: timedelta = timedelta(hours=24)
    #: reminders before each deadline, longest first
    reminder_offsets: tuple[timedelta, ...] = (timedelta(days=7), timedelta(days=1))
    #: ``collection_options[future_requirements]`` when a caller does not say
    future_requirements: FutureRequirements = FutureRequirements.OMIT
    links: LinkUrls = field(default_factory=LinkUrls)
    #: attempts after an optimistic-version conflict before giving up
    max_conflict_retries: int = 5
