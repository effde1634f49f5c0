"""Issue 11, item 4: future requirements collected early, end to end.

Stripe announces requirements that become due later (``future_requirements``);
they never change the state by themselves. An Account Link with
``collection_options[future_requirements]=include`` asks for them now; once
provided they leave ``future_requirements`` and their timers go. On SQLite and
PostgreSQL, against the simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from onboarding_fsm import FutureRequirements, State
from onboarding_fsm.timers import TimerKind
from tests.conftest import World

FIELD = "individual.id_number"


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


def unfired(world: World, account_id: str) -> set[TimerKind]:
    return {timer.kind for timer, fired in world.store.timers(account_id) if fired is None}


def test_an_include_link_collects_future_requirements_and_clears_them(world: World) -> None:
    acct = world.create("early-bird")
    assert world.onboard(acct) == "verified"
    deadline = world.clock.now() + timedelta(days=30)
    world.sim.add_future_requirements(acct, [FIELD], deadline)
    view = world.engine.get_account(acct)
    assert view.state is State.VERIFIED
    assert view.snapshot.future_requirements is not None
    assert view.snapshot.future_requirements.currently_due == (FIELD,)
    assert view.snapshot.future_requirements.current_deadline == deadline
    assert TimerKind.FUTURE_DEADLINE in unfired(world, acct)

    # an ordinary link does not ask for it: it is not due yet
    omitted = world.sim.visit(world.engine.issue_link(acct).url)
    assert FIELD not in omitted.asked
    omitted.save_for_later()
    world.engine.handle_return(acct)

    link = world.engine.issue_link(acct, future_requirements="include")
    assert link.params.future_requirements is FutureRequirements.INCLUDE
    session = world.sim.visit(link.url)
    assert FIELD in session.asked
    session.complete()
    done = world.engine.handle_return(acct)
    assert done.state is State.VERIFIED
    assert done.snapshot.future_requirements is not None
    assert done.snapshot.future_requirements.currently_due == ()
    assert done.snapshot.future_requirements.current_deadline is None
    assert TimerKind.FUTURE_DEADLINE not in unfired(world, acct)
    # the record of the link says it included them, for auditors
    issued = [t for t in world.engine.history(acct) if t.trigger.value == "issue_link"]
    assert issued[-1].reason.endswith("future=include")

    # the date passes: nothing becomes due, nothing moves
    world.clock.advance(timedelta(days=31))
    assert world.engine.check_deadlines() == []
    assert world.engine.sync_account(acct).state is State.VERIFIED


def test_include_survives_a_refresh_and_the_refreshed_link_asks_too(world: World) -> None:
    acct = world.create("early-bird-2")
    assert world.onboard(acct) == "verified"
    world.sim.add_future_requirements(acct, [FIELD], world.clock.now() + timedelta(days=10))
    url = world.engine.issue_link(acct, future_requirements="include").url
    world.sim.visit(url)  # a link-preview bot used it up
    refreshed = world.engine.refresh_link(acct)
    assert refreshed.params.future_requirements is FutureRequirements.INCLUDE
    session = world.sim.visit(refreshed.url)
    assert FIELD in session.asked
    session.complete()
    future = world.engine.handle_return(acct).snapshot.future_requirements
    assert future is not None and future.currently_due == ()


def test_the_settings_default_applies_to_links_that_do_not_say(db_url: str, clock: object) -> None:
    from tests.conftest import make_world

    w = make_world(db_url, clock, future_requirements="include")  # type: ignore[arg-type]
    try:
        acct = w.create("early-bird-3")
        assert w.onboard(acct) == "verified"
        w.sim.add_future_requirements(acct, [FIELD], w.clock.now() + timedelta(days=10))
        session = w.sim.visit(w.engine.issue_link(acct).url)
        assert FIELD in session.asked
    finally:
        w.close()
