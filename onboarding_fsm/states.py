"""The vocabulary of the machine: states, triggers and the sources that cause them.

Kept apart from the machine itself so that value types, the store and the
adapters can name a state without pulling in `transitions`.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    CREATED = "created"
    LINK_ISSUED = "link_issued"
    RETURNED_INCOMPLETE = "returned_incomplete"
    VERIFIED = "verified"
    PAST_DUE = "past_due"
    DISABLED = "disabled"


class Trigger(StrEnum):
    """What moved an account.

    ``CREATE`` is not an edge of the machine: it names the birth record every
    account's audit chain starts with, so the chain covers the account's
    whole life.
    """

    CREATE = "create"
    ISSUE_LINK = "issue_link"
    REFRESH = "refresh"
    RETURN = "return"
    SYNC = "sync"
    DEADLINE = "deadline"
    ABANDON = "abandon"
    DEAUTHORIZE = "deauthorize"
    #: a detached account Stripe shows this platform again (access granted anew)
    RESTORE = "restore"
    #: the platform changed the account at Stripe (pre-fill, new capabilities);
    #: recorded even when the state stays, then where Stripe's answer classifies
    UPDATE = "update"


class Source(StrEnum):
    """Where the cause of a transition came from, for auditors."""

    API = "api"
    WEBHOOK = "webhook"
    RETURN = "return"
    REFRESH = "refresh"
    SCHEDULER = "scheduler"
    RECONCILE = "reconcile"
    OPERATOR = "operator"
