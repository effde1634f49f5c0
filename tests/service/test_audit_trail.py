"""What an auditor asks, end to end on the simulator (SQLite and PostgreSQL):
queries across accounts and time, state as of an instant, the inbox,
exports that verify without the database, and every tampering attack
reported."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from onboarding_fsm import AccountNotFound, InvalidInput, SettingsError, Source, State, Trigger
from onboarding_fsm.audit import AuditKey, digest
from onboarding_fsm.clock import FakeClock
from onboarding_fsm.events import Outcome
from onboarding_fsm.exportcheck import verify_export
from onboarding_fsm.queries import InboxQuery, TransitionQuery
from tests.conftest import World, make_world

KEY = "k" * 40


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


@dataclass
class Story:
    """Three accounts with known paths and the instants between their moves."""

    verified: str
    past_due: str
    disabled: str
    marks: dict[str, datetime]


def tell(world: World) -> Story:
    marks = {"start": world.clock.now()}
    verified = world.create("seller-ok")
    assert world.onboard(verified) == "verified"
    world.clock.advance(timedelta(days=1))
    marks["day1"] = world.clock.now()
    late = world.create("seller-late")
    assert world.onboard(late) == "verified"
    world.sim.trigger_next_requirements(late, deadline=world.clock.now() + timedelta(days=7))
    world.clock.advance(timedelta(days=2))
    marks["day3"] = world.clock.now()
    world.clock.advance(timedelta(minutes=1))
    rejected = world.create("seller-bad")
    world.sim.reject(rejected)
    world.sim.delivery.hold = True  # the deadline passes without a webhook: the timer asks Stripe
    world.clock.advance(timedelta(days=6))
    marks["before_sweep"] = world.clock.now()
    world.engine.check_deadlines()
    world.sim.delivery.hold = False
    marks["end"] = world.clock.now() + timedelta(seconds=1)
    assert world.state(late) == "past_due" and world.state(rejected) == "disabled"
    return Story(verified, late, rejected, marks)


@pytest.fixture
def story(world: World) -> Story:
    return tell(world)


# ------------------------------------------------------------------ queries


def test_who_entered_past_due_last_week(world: World, story: Story) -> None:
    week = TransitionQuery(to_state=State.PAST_DUE, since=story.marks["end"] - timedelta(days=7))
    found = list(world.engine.audit.stream(week))
    assert [(t.account_id, t.to_state) for t in found] == [(story.past_due, State.PAST_DUE)]
    assert found[0].source is Source.SCHEDULER and found[0].run_id and found[0].run_id.startswith("sweep_")
    before = TransitionQuery(to_state=State.PAST_DUE, until=story.marks["before_sweep"])
    assert list(world.engine.audit.stream(before)) == []


def test_filters_narrow_and_pages_follow_the_cursor(world: World, story: Story) -> None:
    audit = world.engine.audit
    everything = list(audit.stream())
    assert len(everything) == sum(
        len(world.engine.history(a)) for a in (story.verified, story.past_due, story.disabled)
    )
    assert [t.at for t in everything] == sorted(t.at for t in everything)  # time order
    paged, cursor, pages = [], None, 0
    while True:
        page = audit.transitions(limit=2, cursor=cursor)
        paged.extend(page)
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert paged == everything and pages >= len(everything) // 2
    issued = list(audit.stream(TransitionQuery(trigger=Trigger.ISSUE_LINK)))
    assert {t.account_id for t in issued} == {story.verified, story.past_due}
    assert all(t.trigger is Trigger.ISSUE_LINK for t in issued)
    day1 = list(audit.stream(TransitionQuery(since=story.marks["day1"], until=story.marks["day3"])))
    assert day1 and all(story.marks["day1"] <= t.at < story.marks["day3"] for t in day1)
    assert {t.account_id for t in day1} == {story.past_due}
    webhooks = list(audit.stream(TransitionQuery(source=Source.WEBHOOK, actor="stripe")))
    assert webhooks and all(t.source is Source.WEBHOOK for t in webhooks)
    mine = list(audit.stream(TransitionQuery(account_id=story.disabled, from_state=State.CREATED)))
    assert [t.to_state for t in mine] == [State.DISABLED]


def test_bad_queries_are_refused_with_a_typed_error(world: World, story: Story) -> None:
    audit = world.engine.audit
    with pytest.raises(InvalidInput):
        TransitionQuery(since=datetime(2026, 3, 1))  # naive
    with pytest.raises(InvalidInput):
        TransitionQuery(since=story.marks["end"], until=story.marks["start"])
    with pytest.raises(InvalidInput):
        audit.transitions(cursor="not-a-cursor")
    inbox_cursor = world.engine.inbox(limit=1).cursor
    assert inbox_cursor is not None
    with pytest.raises(InvalidInput):
        audit.transitions(cursor=inbox_cursor)  # a cursor of another kind
    with pytest.raises(InvalidInput):
        audit.export(io.StringIO(), format="xml")


def test_state_of_one_account_and_of_all_as_of_an_instant(world: World, story: Story) -> None:
    audit = world.engine.audit
    assert audit.state_at(story.past_due, story.marks["start"]) is None  # not created yet
    at_day3 = audit.state_at(story.past_due, story.marks["day3"])
    assert at_day3 is not None and at_day3.state is State.RETURNED_INCOMPLETE
    at_end = audit.state_at(story.past_due, story.marks["end"])
    assert at_end is not None and at_end.state is State.PAST_DUE
    with pytest.raises(AccountNotFound):
        audit.state_at("acct_nobody", story.marks["end"])
    then = {s.account_id: s.state for s in audit.states_at(story.marks["day3"])}
    assert then == {story.verified: State.VERIFIED, story.past_due: State.RETURNED_INCOMPLETE}
    now = {s.account_id: s.state for s in audit.states_at(story.marks["end"], batch=1)}
    assert now == {story.verified: State.VERIFIED, story.past_due: State.PAST_DUE, story.disabled: State.DISABLED}


def test_the_inbox_filters_by_account_type_and_outcome(world: World, story: Story) -> None:
    first = world.sim.outbox.log[0].event
    again = world.engine.ingest_webhook(*world.sim.outbox.sign(first, int(world.clock.now().timestamp())))
    assert again.outcome is Outcome.DUPLICATE  # Stripe sent it again: answered, not recorded twice
    assert len(world.engine.inbox(InboxQuery(outcome=Outcome.DUPLICATE))) == 0
    assert len(world.engine.inbox(InboxQuery(type=first["type"], account_id=first["account"]), limit=500)) >= 1
    applied = world.engine.inbox(InboxQuery(account_id=story.past_due, outcome=Outcome.APPLIED), limit=500)
    assert applied and all(e.account_id == story.past_due and e.outcome is Outcome.APPLIED for e in applied)
    typed = list(world.engine.inbox(InboxQuery(type="account.updated"), limit=500))
    assert typed and all(e.type == "account.updated" for e in typed)
    assert any(e.transition_seq is not None for e in typed)
    everything = list(world.engine.inbox(limit=500))
    paged: list[Any] = []
    cursor = None
    while True:
        page = world.engine.inbox(limit=3, cursor=cursor)
        paged.extend(page)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert paged == everything
    assert [e.received_at for e in everything] == sorted((e.received_at for e in everything), reverse=True)


# -------------------------------------------------------------- exports


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_whole_export_verifies_without_the_database(world: World, story: Story, fmt: str) -> None:
    assert world.engine.audit.checkpoint()
    world.create("seller-after-the-checkpoint")  # some records unsealed: still verified by their chains
    out = io.StringIO()
    summary = world.engine.audit.export(out, format=fmt)
    assert summary.whole and summary.transitions == len(list(world.engine.audit.stream()))
    report = verify_export(io.StringIO(out.getvalue()))
    assert report.ok, report.problems
    assert (report.transitions, report.accounts, report.partial) == (summary.transitions, 4, False)
    assert report.checkpoints == summary.checkpoints >= 1


def test_a_filtered_export_verifies_as_partial(world: World, story: Story) -> None:
    out = io.StringIO()
    world.engine.audit.export(out, query=TransitionQuery(since=story.marks["day1"]))
    report = verify_export(io.StringIO(out.getvalue()))
    assert report.ok and report.partial and report.transitions > 0


def _export(world: World, fmt: str = "jsonl") -> list[str]:
    world.engine.audit.checkpoint()
    out = io.StringIO()
    world.engine.audit.export(out, format=fmt)
    return out.getvalue().splitlines(keepends=True)


def _edit_reason(lines: list[str]) -> list[str]:
    i = next(n for n, line in enumerate(lines) if '"kind":"transition"' in line)
    row = json.loads(lines[i])
    row["reason"] = "nothing to see here"
    return [*lines[:i], json.dumps(row) + "\n", *lines[i + 1 :]]


FILE_ATTACKS = {
    "edit": _edit_reason,
    "delete a record": lambda lines: [line for n, line in enumerate(lines) if n != 2],
    "reorder": lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],
    "truncate": lambda lines: lines[:-3],
    "delete a checkpoint": lambda lines: [line for line in lines if '"kind":"checkpoint"' not in line],
}


@pytest.mark.parametrize("attack", sorted(FILE_ATTACKS))
def test_a_tampered_export_file_is_reported(world: World, story: Story, attack: str) -> None:
    lines = _export(world)
    assert verify_export(io.StringIO("".join(lines))).ok
    report = verify_export(io.StringIO("".join(FILE_ATTACKS[attack](lines))))
    assert not report.ok, attack


# ------------------------------------------------------- tamper evidence


def attacker(world: World) -> Any:
    """SQL as someone with write access to the database runs it: triggers off."""
    engine = world.store.engine  # type: ignore[attr-defined]

    def run(sql: str, **params: Any) -> list[Any]:
        with engine.begin() as conn:
            pg = conn.dialect.name == "postgresql"
            for table in ("ofsm_transitions", "ofsm_audit_checkpoints"):
                if pg:
                    conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            if not pg:
                for trigger in ("transitions", "checkpoints"):
                    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS ofsm_{trigger}_no_update")
                    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS ofsm_{trigger}_no_delete")
            result = conn.execute(sa.text(sql), params)
            found = list(result) if result.returns_rows else []
            for table in ("ofsm_transitions", "ofsm_audit_checkpoints"):
                if pg:
                    conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            return found

    return run


@pytest.fixture
def raw(world: World) -> Any:
    return attacker(world)


def _rewind(raw: Any, account: str) -> int:
    """Delete the newest record and point the account row at the one before."""
    (seq, prev) = raw(
        "SELECT seq, prev_hash FROM ofsm_transitions WHERE account_id = :a ORDER BY seq DESC LIMIT 1", a=account
    )[0]
    raw("DELETE FROM ofsm_transitions WHERE account_id = :a AND seq = :s", a=account, s=seq)
    raw("UPDATE ofsm_accounts SET audit_seq = :s, audit_head = :h WHERE stripe_account_id = :a", s=seq - 1, h=prev,
        a=account)  # fmt: skip
    return int(seq)


def _problems(world: World) -> set[str]:
    report = world.engine.verify_audit()
    return {p.kind for p in report.problems}


def test_an_untouched_trail_verifies(world: World, story: Story) -> None:
    world.engine.audit.checkpoint()
    report = world.engine.verify_audit()
    assert report.ok, report.problems
    assert report.records > 0 and report.checkpoints >= 1 and report.unsealed == 0


def test_edit_is_reported(world: World, story: Story, raw: Any) -> None:
    raw("UPDATE ofsm_transitions SET reason = 'fine' WHERE account_id = :a AND seq = 2", a=story.past_due)
    assert "chain" in _problems(world)


def test_delete_newest_after_a_checkpoint_is_reported(world: World, story: Story, raw: Any) -> None:
    world.engine.audit.checkpoint()
    _rewind(raw, story.past_due)  # the chain itself now looks whole
    assert _problems(world) >= {"checkpoint"}


def test_delete_newest_before_any_checkpoint_shows_in_the_outbox_cross_check(
    world: World, story: Story, raw: Any
) -> None:
    _rewind(raw, story.past_due)
    assert "outbox" in _problems(world)


def test_rewind_head_is_reported(world: World, story: Story, raw: Any) -> None:
    raw("UPDATE ofsm_accounts SET audit_seq = 1, audit_head = :h WHERE stripe_account_id = :a", h="0" * 64,
        a=story.verified)  # fmt: skip
    assert "chain" in _problems(world)


def test_deleting_a_whole_account_is_reported(world: World, story: Story, raw: Any) -> None:
    world.engine.audit.checkpoint()
    for table in ("ofsm_timers", "ofsm_transitions"):
        raw(f"DELETE FROM {table} WHERE account_id = :a", a=story.disabled)
    raw("DELETE FROM ofsm_outbox WHERE account_id = :a", a=story.disabled)
    raw("DELETE FROM ofsm_accounts WHERE stripe_account_id = :a", a=story.disabled)
    assert "checkpoint" in _problems(world)


def test_reordering_records_is_reported(world: World, story: Story, raw: Any) -> None:
    a = story.verified
    raw("UPDATE ofsm_transitions SET seq = 100 WHERE account_id = :a AND seq = 2", a=a)
    raw("UPDATE ofsm_transitions SET seq = 2 WHERE account_id = :a AND seq = 3", a=a)
    raw("UPDATE ofsm_transitions SET seq = 3 WHERE account_id = :a AND seq = 100", a=a)
    assert "chain" in _problems(world)


def test_deleting_the_newest_checkpoint_is_reported(world: World, story: Story, raw: Any) -> None:
    world.engine.audit.checkpoint()
    raw("DELETE FROM ofsm_audit_checkpoints")
    assert "checkpoint" in _problems(world)  # its records still name it


def test_rolling_back_a_checkpoint_shows_in_its_announcement(world: World, story: Story, raw: Any) -> None:
    """The newest checkpoint deleted and its records un-sealed: the outbox
    published it (until retention prunes it)."""
    assert world.engine.audit.checkpoint()
    raw("DELETE FROM ofsm_audit_checkpoints")
    raw("UPDATE ofsm_transitions SET checkpoint = NULL")
    report = world.engine.verify_audit()
    assert [str(p) for p in report.problems] == [
        "checkpoint checkpoint 1: published in the outbox, but not in the chain as published"
    ]


def test_a_witnessed_head_catches_a_rollback_that_left_no_trace(world: World, story: Story, raw: Any) -> None:
    """The same rollback with the announcement deleted too: only a head kept
    outside the database (``audit verify --expect``) can tell."""
    [cp] = world.engine.audit.checkpoint()
    seq = _rewind(raw, story.past_due)  # would be caught by the checkpoint ...
    raw("DELETE FROM ofsm_audit_checkpoints")
    raw("UPDATE ofsm_transitions SET checkpoint = NULL")
    # ... by the outbox, and by the inbox: all three erased
    raw("DELETE FROM ofsm_outbox WHERE kind = 'audit.checkpoint' OR (account_id = :a AND seq = :s)",
        a=story.past_due, s=seq)  # fmt: skip
    raw("UPDATE ofsm_webhook_events SET transition_seq = NULL WHERE account_id = :a AND transition_seq = :s",
        a=story.past_due, s=seq)  # fmt: skip
    assert world.engine.verify_audit().ok  # the documented limit: nothing inside the database is left to tell
    witnessed = world.engine.verify_audit(witnessed={cp.seq: cp.hash})
    assert [p.kind for p in witnessed.problems] == ["witness"]


def test_an_applied_event_whose_record_is_gone_is_reported(world: World, story: Story, raw: Any) -> None:
    (seq,) = raw(
        "SELECT transition_seq FROM ofsm_webhook_events WHERE account_id = :a AND transition_seq IS NOT NULL "
        "ORDER BY transition_seq DESC LIMIT 1",
        a=story.disabled,
    )[0]
    raw("UPDATE ofsm_transitions SET source_ref = 'evt_other' WHERE account_id = :a AND seq = :s", a=story.disabled,
        s=seq)  # fmt: skip
    assert {"inbox", "chain"} <= _problems(world)


def test_sealing_is_the_one_update_the_database_allows(world: World, story: Story) -> None:
    engine = world.store.engine  # type: ignore[attr-defined]
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE ofsm_transitions SET reason = 'x' WHERE seq = 1"))
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ofsm_transitions WHERE seq = 1"))
    world.engine.audit.checkpoint()
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE ofsm_transitions SET checkpoint = NULL WHERE seq = 1"))


# ------------------------------------------------------------ the key


@pytest.fixture
def keyed(db_url: str, clock: FakeClock) -> Iterator[World]:
    w = make_world(db_url, clock, audit_key=KEY)
    yield w
    w.close()


def test_keyed_records_cannot_be_rehashed_without_the_key(keyed: World, raw_keyed: Any) -> None:
    story = tell(keyed)
    keyed.engine.audit.checkpoint()
    assert keyed.engine.verify_audit().ok
    history = keyed.engine.history(story.past_due)
    assert {t.key_id for t in history} == {AuditKey(KEY.encode()).key_id}
    # rewrite the chain with a changed reason, hashed as plain SHA-256 (no key)
    prev = history[0].prev_hash
    for t in history:
        forged = replace(t, key_id=None, prev_hash=prev, reason="forged" if t.seq == 2 else t.reason)
        forged = replace(forged, hash=digest(forged))
        raw_keyed(
            "UPDATE ofsm_transitions SET key_id = NULL, reason = :r, prev_hash = :p, hash = :h "
            "WHERE account_id = :a AND seq = :s",
            r=forged.reason, p=forged.prev_hash, h=forged.hash, a=t.account_id, s=t.seq,
        )  # fmt: skip
        prev = forged.hash
    raw_keyed("UPDATE ofsm_accounts SET audit_head = :h WHERE stripe_account_id = :a", h=prev, a=story.past_due)
    assert keyed.engine.verify_audit().problems  # the checkpoint no longer matches, the chain is no longer keyed
    raw_keyed("DELETE FROM ofsm_audit_checkpoints")
    raw_keyed("DELETE FROM ofsm_outbox")
    raw_keyed("UPDATE ofsm_transitions SET checkpoint = NULL")
    assert {p.kind for p in keyed.engine.verify_audit().problems} >= {"key"}  # nothing sealed under the key


@pytest.fixture
def raw_keyed(keyed: World) -> Any:
    return attacker(keyed)


def test_a_keyed_export_verifies_only_with_the_key(keyed: World) -> None:
    tell(keyed)
    lines = _export(keyed)
    key = AuditKey(KEY.encode())
    assert verify_export(io.StringIO("".join(lines)), key).ok
    without = verify_export(io.StringIO("".join(lines)))
    assert without.unchecked == without.transitions > 0  # links checked, content not
    wrong = verify_export(io.StringIO("".join(lines)), AuditKey(b"w" * 40))
    assert not wrong.ok


# ----------------------------------------------------------- causes


REQUEST_ID = re.compile(r"^req_[A-Za-z0-9]+$")


def test_every_transition_carries_a_cause(world: World, story: Story) -> None:
    records = list(world.engine.audit.stream())
    # a reference (event, timer, Stripe request), an actor, or both: never neither
    assert records and all(t.source_ref or t.actor or t.request_id for t in records)
    api = [t for t in records if t.trigger in (Trigger.CREATE, Trigger.ISSUE_LINK, Trigger.RETURN)]
    assert api and all(t.request_id and REQUEST_ID.match(t.request_id) for t in api)
    swept = [t for t in records if t.source is Source.SCHEDULER]
    assert swept and all(t.run_id and t.request_id for t in swept)  # the timer asked Stripe


def test_a_manual_sweep_is_recorded_as_its_operator(world: World) -> None:
    acct = world.create()
    world.engine.issue_link(acct)
    world.clock.advance(timedelta(days=2))  # the holder never came back
    report = world.engine.sweep(operator="alice")
    assert report.run_id and report.run_id.startswith("sweep_")
    [t] = report.transitions
    assert (t.trigger, t.source, t.actor, t.run_id) == (
        Trigger.ABANDON,
        Source.OPERATOR,
        "operator:alice",
        report.run_id,
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_filtered_export_with_gaps_checks_every_record(world: World, story: Story, fmt: str) -> None:
    out = io.StringIO()
    summary = world.engine.audit.export(out, format=fmt, query=TransitionQuery(trigger=Trigger.ISSUE_LINK))
    assert summary.transitions >= 2 and not summary.whole
    assert verify_export(io.StringIO(out.getvalue())).ok  # seqs 2 and 4 of a chain: no gap reported
    if fmt == "jsonl":
        lines = out.getvalue().splitlines(keepends=True)
        assert not verify_export(io.StringIO("".join(_edit_reason(lines)))).ok


def test_a_checkpoint_sealed_during_a_verify_or_an_export_is_no_alarm(
    world: World, story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker seals every minute; a long verify or export must not read
    its new checkpoint as tampering."""
    store: Any = world.store
    world.engine.audit.checkpoint()
    world.create("seller-during-verify")
    real_sealed, real_records = store.sealed, store.sealed_records

    def sealed_meanwhile(*args: Any, **kwargs: Any) -> Any:
        world.engine.audit.checkpoint()
        return real_sealed(*args, **kwargs)

    monkeypatch.setattr(store, "sealed", sealed_meanwhile)
    report = world.engine.verify_audit()
    assert report.ok, report.problems
    world.create("seller-during-export")

    def records_meanwhile(*args: Any, **kwargs: Any) -> Any:
        world.engine.audit.checkpoint()
        return real_records(*args, **kwargs)

    monkeypatch.setattr(store, "sealed_records", records_meanwhile)
    out = io.StringIO()
    world.engine.audit.export(out)
    checked = verify_export(io.StringIO(out.getvalue()))
    assert checked.ok and checked.unsealed > 0, checked.problems


def test_a_keyed_chain_refuses_a_plain_checkpoint(keyed: World, db_url: str, clock: FakeClock) -> None:
    tell(keyed)
    keyed.engine.audit.checkpoint()
    plain = make_world(db_url, clock)  # the same database, a process without the key
    try:
        plain.create("seller-unkeyed")
        with pytest.raises(SettingsError):
            plain.engine.audit.checkpoint()
    finally:
        plain.close()
