"""Where a Stripe account snapshot belongs in the machine: a pure function.

The rules are DESIGN §2. Two things make them safe in production: every
Stripe enum is treated as open (an unknown value can never produce
``verified``; it is reported in ``unknown`` for the caller to log), and the
decision is a function of the snapshot and the policy alone, so it can be
tested exhaustively and re-run by an auditor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .policy import Collection, Policy
from .snapshot import AccountSnapshot
from .states import State

#: ``requirements.disabled_reason`` values onboarding alone cannot fix
NON_REMEDIABLE = frozenset(
    {
        "listed",
        "other",
        "platform_paused",
        "under_review",
        "rejected.fraud",
        "rejected.incomplete_verification",
        "rejected.listed",
        "rejected.other",
        "rejected.platform_fraud",
        "rejected.platform_other",
        "rejected.platform_terms_of_service",
        "rejected.terms_of_service",
    }
)
PAST_DUE_REASON = "requirements.past_due"
#: the account is waiting on something the holder or Stripe is already doing
PENDING_REASONS = frozenset({"requirements.pending_verification", "action_required.requested_capabilities"})
KNOWN_DISABLED_REASONS = NON_REMEDIABLE | PENDING_REASONS | {PAST_DUE_REASON}
KNOWN_CAPABILITY_STATUSES = frozenset({"active", "inactive", "pending"})


@dataclass(frozen=True, slots=True)
class Classification:
    state: State
    reason: str
    #: enum values this code does not know, e.g. ``disabled_reason=foo``
    unknown: tuple[str, ...] = ()


def classify(
    snapshot: AccountSnapshot,
    policy: Policy,
    *,
    now: datetime | None = None,
    before: AccountSnapshot | None = None,
) -> Classification:
    """``now`` and ``before`` (the snapshot stored until now) decide whether
    Stripe's ``past_due`` means a missed deadline (rule 2): Stripe lists a
    never-onboarded account's initial fields as past due, with no deadline."""
    req = snapshot.requirements
    disabled_reason = req.disabled_reason
    unknown: list[str] = []
    if disabled_reason is not None and disabled_reason not in KNOWN_DISABLED_REASONS:
        unknown.append(f"disabled_reason={disabled_reason}")

    # 1. disabled for good (or until Stripe lifts it)
    if snapshot.deleted:
        return Classification(State.DISABLED, "deleted", tuple(unknown))
    if disabled_reason is not None and (disabled_reason in NON_REMEDIABLE or disabled_reason.startswith("rejected.")):
        return Classification(State.DISABLED, f"disabled_reason={disabled_reason}", tuple(unknown))

    # 2. a deadline already passed (not merely "never onboarded yet")
    if (req.past_due or disabled_reason == PAST_DUE_REASON) and (
        snapshot.details_submitted or deadline_passed(snapshot, now, before)
    ):
        causes = [f"past_due={len(req.past_due)}"] if req.past_due else []
        if disabled_reason == PAST_DUE_REASON:
            causes.append(f"disabled_reason={disabled_reason}")
        return Classification(State.PAST_DUE, ";".join(causes), tuple(unknown))

    # 3. anything still owed under the policy
    owed: list[str] = []
    if req.currently_due:
        owed.append(f"currently_due={len(req.currently_due)}")
    if policy.collection is Collection.UPFRONT:
        later = set(req.eventually_due) - set(req.currently_due)
        if later:
            owed.append(f"eventually_due={len(later)}")
    if req.errors:
        owed.append(f"errors={len(req.errors)}")
    if req.pending_verification:
        owed.append(f"pending_verification={len(req.pending_verification)}")
    if disabled_reason is not None:
        # pending kinds, and unknown values: conservative, never verified
        owed.append(f"disabled_reason={disabled_reason}")
    if not snapshot.details_submitted:
        owed.append("details_not_submitted")
    required = (
        policy.required_capabilities
        if policy.required_capabilities is not None
        else frozenset(name for name, _ in snapshot.capabilities)
    )
    for name in sorted(required):
        status = snapshot.capability(name)
        if status != "active":
            owed.append(f"capability.{name}={status or 'missing'}")
            if status is not None and status not in KNOWN_CAPABILITY_STATUSES:
                unknown.append(f"capability.{name}={status}")
    if owed:
        return Classification(State.RETURNED_INCOMPLETE, ";".join(owed), tuple(unknown))

    # 4. nothing owed
    return Classification(State.VERIFIED, "requirements_met", tuple(unknown))


def deadline_passed(snapshot: AccountSnapshot, now: datetime | None, before: AccountSnapshot | None) -> bool:
    """A ``current_deadline`` in this snapshot, or one we saw in the previous
    one, is behind ``now`` (any deadline counts when the time is unknown)."""
    deadlines = [snapshot.requirements.current_deadline]
    if before is not None:
        deadlines.append(before.requirements.current_deadline)
    return any(d is not None and (now is None or d <= now) for d in deadlines)


def sync_target(current: State, classified: State, *, detached: bool) -> State:
    """Where a ``sync`` takes an account, given where it is now.

    ``detached`` accounts (deauthorized or deleted) stay disabled forever.
    While no link has been issued, or the holder is still in the flow, a
    classification of "still owes something" is expected and moves nothing.
    """
    if detached:
        return State.DISABLED
    if classified is State.RETURNED_INCOMPLETE and current in (State.CREATED, State.LINK_ISSUED):
        return current
    return classified
