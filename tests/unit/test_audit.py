"""The hash chain detects edits, deletions and reordering."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from onboarding_fsm.audit import GENESIS, Cause, FieldChange, Transition, requirement_delta, seal, verify_chain
from onboarding_fsm.snapshot import RequirementError, Requirements
from onboarding_fsm.states import Source, State, Trigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int = 4) -> list[Transition]:
    records: list[Transition] = []
    prev, state = GENESIS, None
    for i in range(1, n + 1):
        to = State.LINK_ISSUED if i % 2 else State.RETURNED_INCOMPLETE
        record = seal(
            account_id="acct_1",
            seq=i,
            prev_hash=prev,
            from_state=state,
            to_state=to,
            trigger=Trigger.ISSUE_LINK if i % 2 else Trigger.ABANDON,
            cause=Cause(Source.API, f"ref-{i}", "tester", T0),
            reason=f"r{i}",
            delta=(FieldChange("currently_due", ("a",), ()),),
            at=T0 + timedelta(seconds=i),
        )
        records.append(record)
        prev, state = record.hash, to
    return records


def test_an_untouched_chain_verifies() -> None:
    records = chain()
    report = verify_chain("acct_1", records, records[-1].hash)
    assert report.ok and report.records == 4


def test_an_edited_record_is_found() -> None:
    records = chain()
    records[1] = replace(records[1], reason="nothing to see")
    report = verify_chain("acct_1", records)
    assert (report.ok, report.broken_at) == (False, 2)


def test_a_deleted_record_is_found() -> None:
    records = chain()
    del records[2]
    assert verify_chain("acct_1", records).broken_at == 4


def test_a_truncated_chain_is_found_by_the_account_head() -> None:
    records = chain()
    assert not verify_chain("acct_1", records[:-1], records[-1].hash).ok


def test_a_rehashed_forgery_breaks_the_link_to_the_next_record() -> None:
    records = chain()
    forged = replace(records[1], reason="forged")
    records[1] = replace(forged, hash=seal(**{
        "account_id": forged.account_id, "seq": forged.seq, "prev_hash": forged.prev_hash,
        "from_state": forged.from_state, "to_state": forged.to_state, "trigger": forged.trigger,
        "cause": Cause(forged.source, forged.source_ref, forged.actor, forged.stripe_time),
        "reason": forged.reason, "delta": forged.delta, "at": forged.at,
    }).hash)  # fmt: skip
    report = verify_chain("acct_1", records)
    assert (report.ok, report.broken_at) == (False, 3)


def test_requirement_delta_per_list() -> None:
    old = Requirements(currently_due=("a", "b"), errors=(RequirementError("x", "a"),))
    new = Requirements(currently_due=("b", "c"), past_due=("b",))
    delta = {c.list_name: (c.added, c.removed) for c in requirement_delta(old, new)}
    assert delta == {"currently_due": (("c",), ("a",)), "past_due": (("b",), ()), "errors": ((), ("a:x",))}
    assert requirement_delta(new, new) == ()
