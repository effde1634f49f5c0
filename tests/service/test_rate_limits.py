"""Issue 12, item 4: ``engine.limits``, the start and refresh budgets per
account and per holder that the HTTP app asks (through the engine only)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.sqlalchemy_store.tables import rate_limits
from onboarding_fsm import FakeClock
from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.limits import Admission, Limit
from tests.conftest import World, make_world

THREE = Limit(3, timedelta(minutes=10))
FIVE = Limit(5, timedelta(minutes=10))


@pytest.fixture
def world(any_db_url: str, clock: FakeClock) -> Iterator[World]:
    w = make_world(any_db_url, clock)
    yield w
    w.close()


def stored(world: World) -> set[str]:
    with world.store.engine.connect() as conn:
        return set(conn.execute(sa.select(rate_limits.c.name)).scalars())


def test_the_account_budget_then_the_holders(world: World) -> None:
    limits = world.engine.limits
    answers = [limits.admit("refresh", "acct_1", "holder:a", per_account=THREE, per_holder=FIVE) for _ in range(4)]
    assert [a.allowed for a in answers] == [True, True, True, False]
    assert answers[-1] == Admission("account", timedelta(seconds=200)), "a slot frees every 600/3 s"
    others = [limits.admit("refresh", f"acct_{n}", "holder:a", per_account=THREE, per_holder=FIVE) for n in (2, 3, 4)]
    assert [a.refused_by for a in others] == [None, None, "holder"], "the refused 4th took none of the holder's 5"
    assert limits.admit("start", "acct_1", "holder:a", per_account=THREE, per_holder=FIVE).allowed, "start apart"
    assert limits.admit("refresh", "acct_9", None, per_account=THREE, per_holder=FIVE).allowed, "no holder known"
    world.clock.advance(timedelta(seconds=120))
    assert limits.admit("refresh", "acct_5", "holder:a", per_account=THREE, per_holder=FIVE).allowed, "one back"


def test_keys_never_carry_the_holder_and_fit_the_column(world: World) -> None:
    long_id = "acct_" + "x" * 64  # the longest id the engine accepts
    world.engine.limits.admit("start", long_id, "jane.doe@example.com", per_account=THREE, per_holder=FIVE)
    world.engine.limits.admit("start", "acct_1", "jane.doe@example.com", per_account=THREE, per_holder=FIVE)
    names = stored(world)
    assert len(names) == 3 and all(len(n) <= 64 for n in names)
    assert "start:acct:acct_1" in names, "an account's budget is readable by an operator"
    assert not any("jane" in n or "example" in n or long_id in n for n in names)


@pytest.mark.parametrize(
    ("action", "account"),
    [("refresh", "not-an-account"), ("refresh", "acct_1/../x"), ("", "acct_1"), ("Refresh:acct", "acct_1")],
)
def test_bad_input_is_refused_and_stores_nothing(world: World, action: str, account: str) -> None:
    with pytest.raises(InvalidInput):
        world.engine.limits.admit(action, account, "holder:a", per_account=THREE, per_holder=FIVE)
    assert stored(world) == set()


def test_a_limit_needs_a_count_and_a_window() -> None:
    for count, window in ((0, timedelta(minutes=1)), (1, timedelta(0))):
        with pytest.raises(InvalidInput):
            Limit(count, window)


def test_prune_forgets_idle_budgets(world: World) -> None:
    world.engine.limits.admit("refresh", "acct_1", "holder:a", per_account=THREE, per_holder=FIVE)
    world.clock.advance(timedelta(days=91))
    report = world.engine.prune()
    assert report.limits_deleted == 2 and stored(world) == set()
