"""The engine's Python API: idempotency, refusals that change nothing, views."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from adapters.simulator import Simulator
from adapters.stripe import StripeSignatureVerifier
from onboarding_fsm import AccountNotFound, InvalidInput, LinkNotAllowed, State, TriggerNotAllowed, build_engine
from onboarding_fsm.bootstrap import build_store
from onboarding_fsm.engine import Engine
from onboarding_fsm.errors import ConcurrencyConflict, InsecureUrl, StoreUnavailable
from tests.conftest import START, World, make_settings, make_world


def test_create_is_idempotent_per_platform_ref(world: World) -> None:
    first = world.engine.create_account("seller-9", "US", ["transfers"])
    again = world.engine.create_account("seller-9", "US", ["transfers"])
    assert again == first
    assert world.sim.calls["create_account"] == 1
    assert len(world.engine.history(first.stripe_account_id)) == 1


def test_a_crash_after_stripe_answered_does_not_make_a_second_account(db_url: str, clock: Any) -> None:
    """Stripe created the account but our commit never happened: the retry's
    idempotency key (derived from the platform ref) gets the same account."""
    sim = Simulator(clock)

    class CrashingStore:
        """The database goes away between Stripe's answer and the account's insert."""

        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        @contextmanager
        def write(self) -> Any:
            with self._inner.write() as tx:
                yield CrashingTx(tx)

    class CrashingTx:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def insert(self, *args: Any) -> bool:
            raise StoreUnavailable("database went away mid-request")

    settings = make_settings(db_url)
    store = build_store(settings)
    store.migrate()
    engine = build_engine(settings, clock=clock, gateway=sim, store=store)
    crashing = build_engine(settings, clock=clock, gateway=sim, store=CrashingStore(store))
    with pytest.raises(StoreUnavailable):
        crashing.create_account("seller-1", "US", ["transfers"])
    acct = engine.create_account("seller-1", "US", ["transfers"])
    assert sim.calls["create_account"] == 2
    assert len(sim.list_accounts().accounts) == 1
    assert acct.stripe_account_id == sim.list_accounts().accounts[0].id


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", "US"), {}),
        (("has space", "US"), {}),
        (("x" * 201, "US"), {}),
        (("seller", "usa"), {}),
        (("seller", "US", "card_payments"), {}),
        (("seller", "US", ["Card Payments"]), {}),
        (("seller", "US"), {"type": "custom", "controller": {"requirement_collection": "application"}}),
        (("seller", "US"), {"type": "gold"}),
        (("seller", "US"), {"business_type": "sole_trader"}),
        (("seller", "US", [], ["not", "a", "mapping"]), {}),
        (("seller", "US", [], {"metadata": {"x": 1}}), {}),
    ],
)
def test_bad_create_input_is_a_typed_error_and_calls_nobody(
    world: World, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput):
        world.engine.create_account(*args, **kwargs)
    assert world.sim.calls["create_account"] == 0
    assert world.engine.accounts() == []


@pytest.mark.parametrize("account_id", ["", "acct", "cus_123", "acct_../../etc", None])
def test_malformed_account_ids(world: World, account_id: Any) -> None:
    with pytest.raises(InvalidInput):
        world.engine.get_account(account_id)


def test_unknown_account(world: World) -> None:
    for call in (world.engine.get_account, world.engine.history, world.engine.issue_link, world.engine.handle_return):
        with pytest.raises(AccountNotFound):
            call("acct_nobodyhere")


@pytest.mark.parametrize(
    "kwargs", [{"type": "account_mutation"}, {"fields": "all_of_them"}, {"future_requirements": "maybe"}]
)
def test_bad_link_parameters(world: World, kwargs: dict[str, str]) -> None:
    acct = world.create()
    with pytest.raises(InvalidInput):
        world.engine.issue_link(acct, **kwargs)  # type: ignore[arg-type]
    assert world.state(acct) == "created"


def test_refresh_without_a_link_is_refused(world: World) -> None:
    acct = world.create()
    with pytest.raises(LinkNotAllowed):
        world.engine.refresh_link(acct)


def test_a_trigger_not_allowed_changes_nothing(world: World) -> None:
    acct = world.create()
    world.sim.reject(acct)
    before = (world.engine.get_account(acct), world.engine.history(acct))
    links = world.sim.calls["create_account_link"]
    for call in (world.engine.issue_link, world.engine.refresh_link):
        with pytest.raises((TriggerNotAllowed, LinkNotAllowed)):
            call(acct)
    assert (world.engine.get_account(acct), world.engine.history(acct)) == before
    assert world.sim.calls["create_account_link"] == links


def test_live_mode_refuses_http_return_urls_even_if_settings_were_bypassed(world: World) -> None:
    acct = world.create()
    live = Engine(
        config=replace(world.engine.config, livemode=True),  # Settings would refuse this combination
        store=world.store,
        gateway=world.sim,
        verifier=StripeSignatureVerifier(["whsec_x"]),
        clock=world.clock,
    )
    with pytest.raises(InsecureUrl):
        live.issue_link(acct)
    assert world.sim.calls["create_account_link"] == 0
    assert world.state(acct) == "created"


def test_link_url_is_returned_but_not_kept(world: World) -> None:
    acct = world.create()
    link = world.engine.issue_link(acct)
    assert link.url.startswith("https://")
    assert link.url not in repr(link)
    view = world.engine.get_account(acct)
    assert view.link == link.params and view.link_expires_at == link.expires_at
    assert link.url not in repr(view)


def test_return_after_the_webhook_already_moved_the_account(world: World) -> None:
    acct = world.create()
    world.sim.visit(world.engine.issue_link(acct).url).complete()
    assert world.state(acct) == "verified"  # the webhook won the race
    history = world.engine.history(acct)
    assert world.engine.handle_return(acct).state is State.VERIFIED
    assert world.engine.history(acct) == history  # nothing new worth recording


def test_reminders_go_to_the_outbox_and_change_no_state(db_url: str, clock: Any) -> None:
    world = make_world(db_url, clock, reminder_offsets_seconds=[86400])
    acct = world.create()
    world.onboard(acct)
    deadline = world.clock.now() + timedelta(days=10)
    world.sim.trigger_next_requirements(acct, deadline=deadline)
    world.sim.delivery.hold = True
    world.clock.advance(timedelta(days=9))
    assert world.engine.check_deadlines() == []
    assert world.state(acct) == "returned_incomplete"
    messages: list[dict[str, Any]] = []
    world.engine.dispatch_outbox(messages.append, limit=1000)
    reminders = [m for m in messages if m["type"] == "onboarding.deadline_approaching"]
    assert len(reminders) == 1
    assert reminders[0]["deadlines"]["requirements"]["deadline"] == deadline.isoformat()
    assert world.engine.dispatch_outbox(messages.append) == 0  # at-least-once, then marked sent


def test_outbox_has_one_message_per_transition(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    messages: list[dict[str, Any]] = []
    world.engine.dispatch_outbox(messages.append)
    history = world.engine.history(acct)
    assert [(m["seq"], m["to"]) for m in messages if m["type"] == "onboarding.transition"] == [
        (t.seq, t.to_state.value) for t in history
    ]
    assert all(m["platform_ref"] == "seller-1" for m in messages)


def test_check_deadlines_at_an_explicit_time(world: World) -> None:
    acct = world.create()
    world.engine.issue_link(acct)
    with pytest.raises(InvalidInput):
        world.engine.check_deadlines(START.replace(tzinfo=None))
    fired = world.engine.check_deadlines(START + timedelta(days=2))
    assert [t.to_state for t in fired] == [State.RETURNED_INCOMPLETE]


def test_optimistic_conflicts_are_retried_and_counted(world: World) -> None:
    acct = world.create()
    store = world.store
    real_write = store.write
    state = {"raced": False}

    def racing_write() -> Any:
        ctx = real_write()
        if not state["raced"]:
            state["raced"] = True

            class Racer:
                def __enter__(self) -> Any:
                    tx = ctx.__enter__()
                    real_save = tx.save

                    def save(account: Any, *, expected_version: int, **kw: Any) -> None:
                        real_save(account, expected_version=expected_version - 1, **kw)  # someone else won

                    tx.save = save
                    return tx

                def __exit__(self, *exc: Any) -> Any:
                    return ctx.__exit__(*exc)

            return Racer()
        return ctx

    store.write = racing_write  # type: ignore[method-assign]
    world.engine.issue_link(acct)
    assert world.engine.stats.conflicts_retried == 1
    assert world.state(acct) == "link_issued"
    assert [t.seq for t in world.engine.history(acct)] == [1, 2]


def test_conflicts_give_up_after_the_bound(db_url: str, clock: Any) -> None:
    world = make_world(db_url, clock, max_conflict_retries=2)
    acct = world.create()
    settings = make_settings(db_url, max_conflict_retries=2)

    class AlwaysLosing:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def write(self) -> Any:
            raise ConcurrencyConflict("lost again")

    losing = build_engine(settings, clock=clock, gateway=world.sim, store=AlwaysLosing(world.store))
    with pytest.raises(ConcurrencyConflict):
        losing.issue_link(acct)
    assert (losing.stats.conflicts_retried, losing.stats.conflicts_exhausted) == (2, 1)


def test_accounts_view_filters_by_state(world: World) -> None:
    a, b = world.create("a"), world.create("b")
    world.onboard(a)
    assert [x.stripe_account_id for x in world.engine.accounts(state="verified")] == [a]
    assert [x.stripe_account_id for x in world.engine.accounts(state=State.CREATED)] == [b]
    with pytest.raises(InvalidInput):
        world.engine.accounts(state="happy")


def test_audit_verify_finds_tampering(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    assert world.engine.verify_audit().ok
    with world.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("DROP TRIGGER ofsm_transitions_no_update")
        conn.exec_driver_sql("UPDATE ofsm_transitions SET reason = 'all fine' WHERE seq = 2")
    report = world.engine.verify_audit()
    assert not report.ok and [(p.kind, p.where) for p in report.problems][:1] == [("chain", acct)]
    assert "at seq 2" in report.problems[0].detail


@pytest.fixture
def shared_db(any_db_url: str) -> str:
    return any_db_url


def test_a_refusal_made_on_another_processs_outdated_view_is_retried(shared_db: str, clock: Any) -> None:
    """Two processes on one database. This one created the account (and keeps
    it in its cache as ``created``); the other one issued a link. A refresh
    here must see the link, not refuse on what it remembers."""
    here = make_world(shared_db, clock)
    acct = here.create()
    there = build_engine(make_settings(shared_db), clock=clock, gateway=here.sim)
    there.issue_link(acct)
    links = here.sim.calls["create_account_link"]
    here.engine.refresh_link(acct)
    assert [t.trigger.value for t in here.engine.history(acct)] == ["create", "issue_link", "refresh"]
    assert here.sim.calls["create_account_link"] == links + 1
    assert here.engine.stats.conflicts_retried == 1
    there.close()
    here.close()
