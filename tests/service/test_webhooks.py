"""Webhook ingestion: verification, dedupe, ordering, and nothing stored that must not be."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.stripe_wire.signing import expected_signature, sign
from onboarding_fsm import Outcome, Settings, State, build_engine
from onboarding_fsm.clock import from_unix
from onboarding_fsm.errors import InvalidInput, MalformedEvent, SignatureInvalid, TimestampOutOfTolerance
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from tests.conftest import World, make_world


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db_url


def account_event(
    world: World, account_id: str, *, created: int | None = None, event_id: str = "evt_test_1", **changes: object
) -> dict[str, object]:
    obj = world.sim.account_json(account_id)
    obj.update(changes)
    return {
        "id": event_id,
        "object": "event",
        "type": "account.updated",
        "account": account_id,
        "created": created if created is not None else int(world.clock.now().timestamp()),
        "livemode": False,
        "data": {"object": obj},
    }  # fmt: skip


def deliver(world: World, event: dict[str, object], *, secret: str = SIMULATOR_WEBHOOK_SECRET, at: int | None = None):  # type: ignore[no-untyped-def]
    body = json.dumps(event).encode()
    return world.engine.ingest_webhook(
        body, sign(body, secret, at if at is not None else int(world.clock.now().timestamp()))
    )


def snapshot_of_everything(world: World, account_id: str) -> tuple[object, ...]:
    return (world.engine.get_account(account_id), world.engine.history(account_id), world.engine.inbox())


@pytest.fixture
def acct(world: World) -> str:
    world.sim.delivery.hold = True  # these tests deliver by hand
    account_id = world.create()
    world.engine.issue_link(account_id)
    return account_id


def test_a_signed_event_is_applied(world: World, acct: str) -> None:
    world.clock.advance(10)  # clearly after our own fetch (clock_skew_tolerance is 5 s)
    result = deliver(
        world, account_event(world, acct, details_submitted=True, requirements={"disabled_reason": "rejected.fraud"})
    )
    assert result.outcome is Outcome.APPLIED
    assert result.transition is not None and result.transition.to_state is State.DISABLED
    assert result.transition.source_ref == "evt_test_1"


@pytest.mark.parametrize(
    ("body", "header", "error"),
    [
        (b"{}", "t=1,v1=deadbeef", SignatureInvalid),
        (b"{}", "", SignatureInvalid),
        (b"{}", "garbage", SignatureInvalid),
        (b"{}", "t=1,v0=abc", SignatureInvalid),
    ],
)
def test_forged_signatures_are_rejected(
    world: World, acct: str, body: bytes, header: str, error: type[Exception]
) -> None:
    before = snapshot_of_everything(world, acct)
    with pytest.raises(error):
        world.engine.ingest_webhook(body, header)
    assert snapshot_of_everything(world, acct) == before


def test_tampered_body_is_rejected(world: World, acct: str) -> None:
    event = account_event(world, acct)
    body = json.dumps(event).encode()
    header = sign(body, SIMULATOR_WEBHOOK_SECRET, int(world.clock.now().timestamp()))
    before = snapshot_of_everything(world, acct)
    with pytest.raises(SignatureInvalid):
        world.engine.ingest_webhook(body.replace(b"false", b"true "), header)
    assert snapshot_of_everything(world, acct) == before


def test_wrong_secret_is_rejected(world: World, acct: str) -> None:
    before = snapshot_of_everything(world, acct)
    with pytest.raises(SignatureInvalid):
        deliver(world, account_event(world, acct), secret="whsec_someone_else")
    assert snapshot_of_everything(world, acct) == before


def test_any_of_several_secrets_verifies(db_url: str, clock: object) -> None:
    world = make_world(db_url, clock, webhook_secrets=["whsec_old", "whsec_new"])  # type: ignore[arg-type]
    world.sim.delivery.hold = True
    acct = world.create()
    world.clock.advance(1)  # type: ignore[attr-defined]
    assert deliver(world, account_event(world, acct, event_id="evt_a"), secret="whsec_new").outcome is Outcome.APPLIED
    assert deliver(world, account_event(world, acct, event_id="evt_b"), secret="whsec_old").outcome is Outcome.APPLIED
    with pytest.raises(SignatureInvalid):
        deliver(world, account_event(world, acct, event_id="evt_c"), secret=SIMULATOR_WEBHOOK_SECRET)


@pytest.mark.parametrize("offset", [-301, 301, -100_000, 4000])
def test_stale_and_future_timestamps_are_rejected(world: World, acct: str, offset: int) -> None:
    before = snapshot_of_everything(world, acct)
    with pytest.raises(TimestampOutOfTolerance, match="future" if offset > 0 else "old"):
        deliver(world, account_event(world, acct), at=int(world.clock.now().timestamp()) + offset)
    assert snapshot_of_everything(world, acct) == before


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_timestamps_within_tolerance_are_accepted(world: World, acct: str, offset: int) -> None:
    assert (
        deliver(world, account_event(world, acct), at=int(world.clock.now().timestamp()) + offset).outcome
        is Outcome.APPLIED
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"id": "evt_1"}',
        b'{"id": "evt_1", "type": "account.updated", "created": "yesterday", "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "account.updated", "created": 1, "data": {}}',
        b'{"id": "evt_1", "type": "account.updated", "created": 1, "data": {"object": {"id": "acct_x", "requirements": {"currently_due": 5}}}}',
    ],
)
def test_malformed_bodies_are_rejected_and_change_nothing(world: World, acct: str, body: bytes) -> None:
    before = snapshot_of_everything(world, acct)
    now = int(world.clock.now().timestamp())  # signed as bytes: the SDK's signer needs UTF-8
    header = f"t={now},v1={expected_signature(body, SIMULATOR_WEBHOOK_SECRET, now)}"
    with pytest.raises(MalformedEvent):
        world.engine.ingest_webhook(body, header)
    assert snapshot_of_everything(world, acct) == before


def test_malformed_snapshot_for_a_known_account(world: World, acct: str) -> None:
    event = account_event(world, acct)
    event["data"]["object"]["requirements"] = {"currently_due": "oops"}  # type: ignore[index]
    before = snapshot_of_everything(world, acct)
    with pytest.raises(MalformedEvent):
        deliver(world, event)
    assert snapshot_of_everything(world, acct) == before


def test_raw_body_must_be_bytes(world: World) -> None:
    with pytest.raises(InvalidInput):
        world.engine.ingest_webhook({"id": "evt"}, "t=1,v1=x")  # type: ignore[arg-type]


def test_duplicates_are_answered_but_applied_once(world: World, acct: str) -> None:
    world.clock.advance(1)
    event = account_event(world, acct, requirements={"disabled_reason": "rejected.fraud"})
    first = deliver(world, event)
    history = world.engine.history(acct)
    second = deliver(world, event)
    assert (first.outcome, second.outcome) == (Outcome.APPLIED, Outcome.DUPLICATE)
    assert second.transition is None
    assert world.engine.history(acct) == history
    assert [e.event_id for e in world.engine.inbox()] == ["evt_test_1"]


def test_an_older_snapshot_is_stale(world: World, acct: str) -> None:
    world.clock.advance(10)
    now = int(world.clock.now().timestamp())
    newer = account_event(
        world, acct, created=now, event_id="evt_new", requirements={"disabled_reason": "under_review"}
    )
    older = account_event(world, acct, created=now - 5, event_id="evt_old")
    assert deliver(world, newer).outcome is Outcome.APPLIED
    result = deliver(world, older)
    assert result.outcome is Outcome.STALE and result.transition is None
    assert world.state(acct) == "disabled"


def test_a_tie_with_different_content_is_resolved_by_asking_stripe(world: World, acct: str) -> None:
    world.clock.advance(10)
    now = int(world.clock.now().timestamp())
    assert deliver(world, account_event(world, acct, created=now, event_id="evt_1")).outcome is Outcome.APPLIED
    retrieves = world.sim.calls["retrieve_account"]
    liar = account_event(world, acct, created=now, event_id="evt_2", requirements={"disabled_reason": "rejected.fraud"})
    result = deliver(world, liar)
    assert result.outcome is Outcome.APPLIED and "re-fetched" in (result.detail or "")
    assert world.sim.calls["retrieve_account"] == retrieves + 1
    assert world.state(acct) == "link_issued"  # Stripe's own answer, not the tied payload


def test_a_refetch_is_stamped_with_the_time_stripe_answered(world: World, acct: str) -> None:
    world.clock.advance(10)
    now = int(world.clock.now().timestamp())
    assert deliver(world, account_event(world, acct, created=now, event_id="evt_1")).outcome is Outcome.APPLIED
    liar = account_event(world, acct, created=now, event_id="evt_2", requirements={"disabled_reason": "rejected.fraud"})
    fetch = world.sim.retrieve_account

    def slow_fetch(account_id: str):  # type: ignore[no-untyped-def]
        world.clock.advance(timedelta(seconds=2, milliseconds=500))  # Stripe takes its time
        return fetch(account_id)

    world.sim.retrieve_account = slow_fetch  # type: ignore[method-assign]
    assert deliver(world, liar).outcome is Outcome.APPLIED
    answered = world.clock.now()
    view = world.engine.get_account(acct)
    # our clock stamps the fetch; the watermark stays a Stripe time (the event it answered)
    assert (view.synced_at, view.fetched_at, view.watermark) == (answered, answered, from_unix(now))
    [entry] = [e for e in world.engine.inbox() if e.event_id == "evt_2"]
    assert entry.received_at == answered


def test_a_refetch_that_finds_the_account_gone_records_the_event(world: World, acct: str) -> None:
    world.clock.advance(10)
    now = int(world.clock.now().timestamp())
    assert deliver(world, account_event(world, acct, created=now, event_id="evt_1")).outcome is Outcome.APPLIED
    liar = account_event(world, acct, created=now, event_id="evt_2", requirements={"disabled_reason": "rejected.fraud"})
    deauth = {"id": "evt_d", "object": "event", "type": "account.application.deauthorized", "account": acct,
              "created": now, "data": {"object": {"id": "ca_1", "object": "application"}}}  # fmt: skip
    fetch = world.sim.retrieve_account

    def fetch_while_deauthorized(account_id: str):  # type: ignore[no-untyped-def]
        assert deliver(world, deauth).outcome is Outcome.APPLIED  # arrives while we ask Stripe
        return fetch(account_id)

    world.sim.retrieve_account = fetch_while_deauthorized  # type: ignore[method-assign]
    result = deliver(world, liar)
    assert result.outcome is Outcome.IGNORED and "recorded only" in (result.detail or "")
    assert world.state(acct) == "disabled"
    world.sim.retrieve_account = fetch  # type: ignore[method-assign]
    assert deliver(world, liar).outcome is Outcome.DUPLICATE  # recorded: a redelivery is not applied again


def test_unknown_event_types_and_accounts_are_recorded_not_failed(world: World, acct: str) -> None:
    other = {"id": "evt_p", "object": "event", "type": "payout.failed", "account": acct,
             "created": int(world.clock.now().timestamp()), "data": {"object": {"id": "po_1", "object": "payout"}}}  # fmt: skip
    assert deliver(world, other).outcome is Outcome.IGNORED
    stranger = account_event(world, acct, event_id="evt_s", metadata={})  # not tagged with our reference
    stranger["account"] = "acct_unknown"
    stranger["data"]["object"]["id"] = "acct_unknown"  # type: ignore[index]
    result = deliver(world, stranger)
    assert result.outcome is Outcome.IGNORED and "unknown account" in (result.detail or "")
    assert {e.event_id: e.outcome for e in world.engine.inbox()} == {
        "evt_p": Outcome.IGNORED,
        "evt_s": Outcome.IGNORED,
    }


def test_livemode_events_on_a_test_engine_are_ignored(world: World, acct: str) -> None:
    world.clock.advance(1)
    event = account_event(world, acct, requirements={"disabled_reason": "rejected.fraud"})
    event["livemode"] = True
    assert deliver(world, event).outcome is Outcome.IGNORED
    assert world.state(acct) == "link_issued"


def test_capability_updated(world: World, acct: str) -> None:
    world.clock.advance(10)
    event = {"id": "evt_c", "object": "event", "type": "capability.updated", "account": acct,
             "created": int(world.clock.now().timestamp()),
             "data": {"object": {"id": "card_payments", "object": "capability", "account": acct, "status": "pending"}}}  # fmt: skip
    assert deliver(world, event).outcome is Outcome.APPLIED
    assert world.engine.get_account(acct).snapshot.capability("card_payments") == "pending"


def test_deauthorization_is_final_whatever_arrives_later(world: World, acct: str) -> None:
    world.clock.advance(5)
    now = int(world.clock.now().timestamp())
    deauth = {"id": "evt_d", "object": "event", "type": "account.application.deauthorized", "account": acct,
              "created": now - 3, "data": {"object": {"id": "ca_1", "object": "application"}}}  # fmt: skip
    assert deliver(world, deauth).transition is not None
    late = account_event(world, acct, created=now, event_id="evt_late", details_submitted=True)
    result = deliver(world, late)
    assert result.outcome is Outcome.IGNORED and result.transition is None
    assert world.state(acct) == "disabled"
    again = {**deauth, "id": "evt_d2"}
    assert deliver(world, again).outcome is Outcome.IGNORED


def test_inbox_payload_holds_no_identity_data(world: World, acct: str) -> None:
    world.sim.delivery.hold = False
    session = world.sim.visit(world.engine.refresh_link(acct).url)
    session.complete({"individual.first_name": "Zebediah", "individual.email": "zeb@example.com"})
    payloads = [e.payload for e in world.engine.inbox()]
    stored = json.dumps(payloads)
    assert "Zebediah" not in stored and "zeb@example.com" not in stored
    assert any("individual" in p["data"].get("changed", []) for p in payloads)  # which fields changed is kept


def test_nothing_secret_reaches_the_database_file(db_url: str, clock: object) -> None:
    world = make_world(db_url, clock)  # type: ignore[arg-type]
    acct = world.create(prefill={"individual": {"first_name": "Zebediah", "id_number": "222222222"}})
    link = world.engine.issue_link(acct)
    token = link.url.rsplit("/", 1)[-1]
    world.sim.visit(link.url).complete({"individual.last_name": "Quux", "individual.email": "zeb@example.com"})
    world.engine.handle_return(acct)
    blob = everything_stored(world, db_url)
    assert b"ofsm_webhook_events" in blob or b"evt_" in blob
    for secret in (token, "Zebediah", "Quux", "zeb@example.com", "222222222", SIMULATOR_WEBHOOK_SECRET):
        assert secret.encode() not in blob, secret


def everything_stored(world: World, db_url: str) -> bytes:
    """Every byte the database holds: the SQLite files, or every row of every table."""
    if db_url.startswith("sqlite"):
        world.engine.close()
        path = Path(db_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    tables = ["ofsm_accounts", "ofsm_transitions", "ofsm_webhook_events", "ofsm_outbox", "ofsm_timers"]
    with world.store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = [r[0] for t in tables for r in conn.exec_driver_sql(f"SELECT row_to_json(x)::text FROM {t} x")]
    return "\n".join(rows).encode()


def test_a_failing_sink_is_retried_like_stripe_does(db_url: str, clock: object) -> None:
    world = make_world(db_url, clock)  # type: ignore[arg-type]
    acct = world.create()
    calls = {"n": 0}
    real = world.engine.ingest_webhook

    def flaky(body: bytes, header: str):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("endpoint down")
        return real(body, header)

    world.sim.connect(flaky)
    world.sim.reject(acct)
    assert world.state(acct) == "created"
    world.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    world.sim.deliver()
    assert world.state(acct) == "disabled"


def test_settings_secrets_are_what_verifies(db_url: str, clock: object) -> None:
    engine = build_engine(Settings(database_url=db_url, webhook_secrets=["whsec_only"]), clock=clock)  # type: ignore[arg-type]
    body = b'{"id": "evt_1", "object": "event", "type": "ping", "created": 1, "data": {"object": {}}}'
    with pytest.raises(SignatureInvalid):
        engine.ingest_webhook(body, sign(body, SIMULATOR_WEBHOOK_SECRET, int(clock.now().timestamp())))  # type: ignore[attr-defined]
    assert (
        engine.ingest_webhook(body, sign(body, "whsec_only", int(clock.now().timestamp()))).outcome is Outcome.IGNORED
    )  # type: ignore[attr-defined]
