"""The platform's collection policy: what "nothing owed" means for it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Collection(StrEnum):
    """Up-front collects everything Stripe will ever ask (``eventually_due``);
    incremental collects only what is needed now (``currently_due``)."""

    UPFRONT = "upfront"
    INCREMENTAL = "incremental"

    @property
    def link_fields(self) -> str:
        return "eventually_due" if self is Collection.UPFRONT else "currently_due"


@dataclass(frozen=True, slots=True)
class Policy:
    collection: Collection = Collection.INCREMENTAL
    #: capabilities that must be ``active`` for ``verified``; ``None`` means
    #: every capability the account lists (Stripe lists the requested ones).
    required_capabilities: frozenset[str] | None = None
