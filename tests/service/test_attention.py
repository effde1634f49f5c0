"""Issue 11, item 7: accounts that need attention, end to end.

Each kind is built for real through the engine and the simulator — an
account verified incrementally with eventually_due left, future
requirements announced by Stripe, an account left in returned_incomplete, a
deadline timer no worker fired — and listed with why; the CLI reads the same
database. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from adapters.cli import main
from onboarding_fsm import FakeClock, InvalidInput, State
from onboarding_fsm.attention import AttentionKind, NeedsAttention
from tests.conftest import World, make_world

FIELD = "individual.id_number"
STUCK_AFTER = timedelta(days=7)  # the default stuck_after_seconds
OVERDUE_AFTER = timedelta(minutes=5)  # the default timer_overdue_after_seconds


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db_url


def listed(world: World, *kinds: str) -> list[tuple[AttentionKind, str, str]]:
    return [(i.kind, i.account_id, i.why) for i in world.engine.attention.stream(kinds or None)]


def left_in_returned_incomplete(world: World, ref: str) -> str:
    """The holder filled in a little and chose "save for later"."""
    acct = world.create(ref)
    session = world.sim.visit(world.engine.issue_link(acct).url)
    session.submit({"business_type": "individual", "individual": {"first_name": "Jenny"}})
    session.save_for_later()
    assert world.engine.handle_return(acct).state is State.RETURNED_INCOMPLETE
    return acct


def test_verified_incrementally_with_eventually_due_left(world: World) -> None:
    acct = world.create("incremental")
    assert world.onboard(acct) == "verified"  # the policy default: incremental, currently_due only
    view = world.engine.get_account(acct)
    assert view.snapshot.requirements.eventually_due == (FIELD,)
    [item] = world.engine.attention.accounts()
    assert item == NeedsAttention(
        kind=AttentionKind.EVENTUALLY_DUE,
        account_id=acct,
        platform_ref="incremental",
        state=State.VERIFIED,
        why="eventually_due=1, verified for 0 s",
        at=view.state_since,
        count=1,
    )
    world.clock.advance(timedelta(days=2))
    assert listed(world) == [(AttentionKind.EVENTUALLY_DUE, acct, "eventually_due=1, verified for 2 days")]
    # a volume threshold makes it currently due: no longer verified, so no longer this kind
    world.sim.trigger_next_requirements(acct, deadline=world.clock.now() + timedelta(days=14))
    assert world.state(acct) == "returned_incomplete"
    assert listed(world, "eventually_due") == []


def test_under_the_upfront_policy_eventually_due_does_not_apply(db_url: str, clock: FakeClock) -> None:
    world = make_world(db_url, clock, collection="upfront")
    try:
        acct = world.create("upfront")
        assert world.onboard(acct, fields="currently_due") == "returned_incomplete"  # eventually_due still owed
        assert AttentionKind.EVENTUALLY_DUE not in world.engine.attention.kinds()
        assert AttentionKind.EVENTUALLY_DUE not in world.engine.attention.summary().counts
        assert listed(world, "eventually_due") == [] and listed(world) == []
    finally:
        world.close()


def test_future_requirements_are_listed_with_their_deadline(world: World) -> None:
    acct = world.create("announced")
    assert world.onboard(acct) == "verified"
    deadline = world.clock.now() + timedelta(days=30)
    world.sim.add_future_requirements(acct, ["individual.verification.document"], deadline)  # the webhook applies it
    [item] = world.engine.attention.accounts("future_requirements")
    assert (item.account_id, item.state, item.at, item.count) == (acct, State.VERIFIED, deadline, 1)
    assert item.why == f"future_requirements=1, deadline {deadline.isoformat()} (in 30 days)"
    # an include link collects them early: nothing announced is owed any more
    session = world.sim.visit(world.engine.issue_link(acct, future_requirements="include").url)
    session.complete()
    assert world.engine.handle_return(acct).state is State.VERIFIED
    assert world.engine.attention.accounts("future_requirements").items == ()


def test_a_detached_account_is_no_longer_listed_for_future_requirements(world: World) -> None:
    """Deauthorized, it keeps its last snapshot (future requirements and all)
    but is disabled for good: nobody can collect them, so it is not listed,
    not then and not after the deadline passed."""
    acct = world.create("leaving", type="standard")
    assert world.onboard(acct) == "verified"
    deadline = world.clock.now() + timedelta(days=30)
    world.sim.add_future_requirements(acct, ["individual.verification.document"], deadline)
    assert [(i.account_id, i.count) for i in world.engine.attention.stream("future_requirements")] == [(acct, 1)]
    world.sim.deauthorize(acct)
    view = world.engine.get_account(acct)
    assert (view.state, view.deauthorized) == (State.DISABLED, True)
    assert view.snapshot.future_requirements is not None  # kept, as every detached account's snapshot is
    assert view.snapshot.future_requirements.currently_due == ("individual.verification.document",)
    assert listed(world, "future_requirements") == []
    assert world.engine.attention.summary().counts[AttentionKind.FUTURE_REQUIREMENTS] == 0
    world.clock.advance(timedelta(days=400))
    world.engine.check_deadlines()  # a worker sweeps whatever timers it still had
    assert listed(world) == []
    assert sum(world.engine.attention.summary().counts.values()) == 0


def test_an_account_left_in_a_waiting_state_becomes_stuck(world: World) -> None:
    acct = left_in_returned_incomplete(world, "saved-for-later")
    world.clock.advance(STUCK_AFTER - timedelta(minutes=1))
    fresh = world.create("just-created")
    assert listed(world, "stuck") == []
    world.clock.advance(timedelta(minutes=2))
    assert listed(world, "stuck") == [(AttentionKind.STUCK, acct, "in returned_incomplete for 7 days")]
    assert world.engine.attention.summary().counts[AttentionKind.STUCK] == 1
    # the holder comes back and finishes: verified waits on nobody
    assert world.onboard(acct) == "verified"
    assert [i for i in listed(world) if i[0] is AttentionKind.STUCK] == []
    world.clock.advance(STUCK_AFTER)
    assert listed(world, "stuck") == [(AttentionKind.STUCK, fresh, "in created for 7 days")]


def overdue_deadline(world: World) -> str:
    """An account with a deadline timer due ``OVERDUE_AFTER`` + 1 min ago that
    no worker fired (its reminders were swept on time); webhooks held."""
    acct = world.create("missed-deadline")
    assert world.onboard(acct) == "verified"
    world.sim.trigger_next_requirements(acct, deadline=world.clock.now() + timedelta(days=14))
    assert world.state(acct) == "returned_incomplete"
    world.sim.delivery.hold = True
    world.clock.advance(timedelta(days=13, hours=12))
    assert world.engine.check_deadlines() == []  # the reminders only
    world.clock.advance(timedelta(hours=12) + OVERDUE_AFTER - timedelta(minutes=1))
    assert listed(world, "timer_overdue") == []  # due, not overdue yet
    world.clock.advance(timedelta(minutes=2))
    return acct


def test_a_deadline_timer_no_worker_fired_is_overdue_until_a_sweep(world: World) -> None:
    acct = overdue_deadline(world)
    assert listed(world) == [
        (AttentionKind.TIMER_OVERDUE, acct, "deadline timer overdue by 6 min"),
        (AttentionKind.STUCK, acct, "in returned_incomplete for 14 days"),  # since the threshold
    ]
    assert world.engine.ops.status().timers.overdue == 1  # the same threshold as status
    [moved] = world.engine.check_deadlines()
    assert moved.to_state is State.PAST_DUE
    assert listed(world) == []  # fired; and past_due only since now


def test_pages_walk_every_kind_in_order_and_bad_input_is_refused(world: World) -> None:
    stuck = sorted(left_in_returned_incomplete(world, f"stuck-{n}") for n in range(3))
    world.clock.advance(STUCK_AFTER + timedelta(hours=1))
    verified = world.create("verified")
    assert world.onboard(verified) == "verified"
    attention = world.engine.attention
    everything = [(i.kind, i.account_id) for i in attention.stream()]
    assert everything == [(AttentionKind.STUCK, a) for a in stuck] + [(AttentionKind.EVENTUALLY_DUE, verified)]
    walked, cursor = [], None
    while True:
        page = attention.accounts(limit=2, cursor=cursor)
        walked.append([(i.kind, i.account_id) for i in page])
        if page.cursor is None:
            break
        cursor = page.cursor
    assert walked == [everything[:2], everything[2:], []]
    summary = attention.summary()
    assert dict(summary.counts) == {
        AttentionKind.TIMER_OVERDUE: 0,
        AttentionKind.STUCK: 3,
        AttentionKind.FUTURE_REQUIREMENTS: 0,
        AttentionKind.EVENTUALLY_DUE: 1,
    }
    assert summary.total == 4 and (summary.stuck_after, summary.overdue_after) == (STUCK_AFTER, OVERDUE_AFTER)
    first = attention.accounts("stuck", limit=1)
    for bad in (
        lambda: attention.accounts("lost"),
        lambda: attention.accounts([]),
        lambda: attention.accounts(limit=0),
        lambda: attention.accounts(limit=10_001),
        lambda: attention.accounts(cursor="not-a-cursor"),
        lambda: attention.accounts("eventually_due", cursor=first.cursor),  # made for other kinds
        lambda: attention.accounts(now=world.clock.now().replace(tzinfo=None)),
    ):
        with pytest.raises(InvalidInput):
            bad()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_the_cli_lists_the_same_accounts_from_the_database(
    world: World, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    acct = overdue_deadline(world)
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", db_url)
    now = world.clock.now().isoformat()
    code, out = run(capsys, "attention", "--json", "--now", now)
    assert code == 1, out
    answer = json.loads(out)
    assert answer["at"] == now and answer["cursor"] is None
    assert answer["counts"] == {"timer_overdue": 1, "stuck": 1, "future_requirements": 0, "eventually_due": 0}
    assert [(a["kind"], a["account_id"], a["state"], a["why"]) for a in answer["accounts"]] == [
        ("timer_overdue", acct, "returned_incomplete", "deadline timer overdue by 6 min"),
        ("stuck", acct, "returned_incomplete", "in returned_incomplete for 14 days"),
    ]
    assert answer["accounts"][0]["platform_ref"] == "missed-deadline"
    code, out = run(capsys, "attention", "--kind", "timer_overdue", "--now", now)
    assert code == 1 and out.splitlines()[0].split()[:3] == ["timer_overdue", acct, "returned_incomplete"]
    assert "1 listed at" in out and "timer_overdue 1, stuck 1" in out
    code, out = run(capsys, "attention", "--kind", "future_requirements", "--now", now)
    assert code == 0 and out.startswith("0 listed at"), out
    code, out = run(capsys, "attention", "--kind", "lost")
    assert code == 2 and "kind must be one of" in out
    code, out = run(capsys, "attention", "--now", "2026-03-01T00:00:00")
    assert code == 2 and "--now needs a time zone" in out
