"""The outbox's values and its pure decisions, for ``delivery`` (the use
case) and the ``Store`` port: a message held by a deliverer, what a failing
handler leaves on it, dead letters, and the backlog operators watch."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .config import EngineConfig
from .errors import InvalidInput

#: what the platform's handler is: called with a message's payload; returning is the acknowledgement
Handler = Callable[[Mapping[str, Any]], object]
#: ``last_error`` keeps the exception's type and at most this much of its message
MAX_ERROR = 300


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message a deliverer holds: its lease runs until ``leased_until``."""

    id: int
    #: ``""`` for messages about no one account (audit checkpoint heads)
    account_id: str
    kind: str
    payload: Mapping[str, Any]
    created_at: datetime
    #: the handler's failures so far
    attempts: int
    leased_until: datetime


@dataclass(frozen=True, slots=True)
class Failure:
    """What a raising handler leaves on its message: pure, decided by ``failed``."""

    attempts: int
    last_error: str
    #: when to try again; None: dead-lettered at ``dead_at``
    retry_at: datetime | None
    dead_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message whose attempts ran out (no payload: listing one shows none)."""

    id: int
    account_id: str
    kind: str
    created_at: datetime
    attempts: int
    dead_at: datetime
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def handed(self) -> int:
        """Handler calls made."""
        return self.delivered + self.retried + self.dead

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(self.delivered + other.delivered, self.retried + other.retried, self.dead + other.dead)


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """The outbox as of ``at`` (``status``, metrics). ``pending`` excludes dead letters."""

    at: datetime
    pending: int = 0
    #: what a deliverer would take now: the oldest of its account, not leased, not backing off
    due: int = 0
    leased: int = 0
    #: pending after at least one failure
    retrying: int = 0
    #: pending behind a dead letter of their account
    blocked: int = 0
    dead: int = 0
    oldest_pending_at: datetime | None = None

    @property
    def oldest_pending_age(self) -> timedelta | None:
        return self.at - self.oldest_pending_at if self.oldest_pending_at is not None else None


#: a URL's user info and query: HTTP clients quote the URL in their errors
#: ("… for url: https://hooks.example/x?token=…"), and a consumer's token there
#: must not reach the database or the log
_URL_SECRETS = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^/\s@]*@)?(?P<rest>[^\s?#]*)(?P<query>[?#]\S*)?")


def _redacted_url(match: re.Match[str]) -> str:
    user = "…@" if match.group("user") else ""
    query = "?…" if match.group("query") else ""
    return match.group("scheme") + user + match.group("rest") + query


def error_text(exc: BaseException) -> str:
    """``Type: message``, on one line and short: enough to tell a timeout from
    a refusal. The payload is never added; outbox payloads carry no identity
    data, so a handler quoting one leaks none. NUL and lone surrogates go (a
    PostgreSQL text column takes neither)."""
    message = _URL_SECRETS.sub(_redacted_url, " ".join(str(exc).split()).replace("\x00", ""))
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if len(text) > MAX_ERROR:
        text = text[: MAX_ERROR - 1] + "…"
    return text.encode("utf-8", "replace").decode("utf-8")


def failed(message: OutboxMessage, exc: BaseException, now: datetime, config: EngineConfig) -> Failure:
    """Back off, or dead-letter at ``outbox_max_attempts`` failures."""
    attempts = message.attempts + 1
    if attempts >= config.outbox_max_attempts:
        return Failure(attempts, error_text(exc), None, now)
    return Failure(attempts, error_text(exc), now + config.outbox_retry_after(attempts), None)


def redrive_ids(ids: Iterable[int] | None, every: bool) -> list[int] | None:
    """The ids to re-drive (None: every dead letter); refuses a request that names neither or both."""
    given = list(ids or ())
    if any(not isinstance(i, int) or isinstance(i, bool) for i in given):
        raise InvalidInput(f"outbox message ids are positive integers, got {given!r:.80}")
    wanted = sorted(set(given))
    if every == bool(wanted):
        raise InvalidInput("re-drive names dead letters by id, or all of them, not both and not neither")
    if any(not isinstance(i, int) or isinstance(i, bool) or i < 1 for i in wanted):
        raise InvalidInput(f"outbox message ids are positive integers, got {wanted}")
    return None if every else wanted
