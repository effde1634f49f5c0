"""Issue 12, item 1: the outbox delivered to the platform's handler at least
once, in order per account, with retries, backoff and dead letters; a dead
letter holds its account's later messages (only them) until it is re-driven."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.outbox import DeliveryReport, OutboxBacklog
from tests.conftest import World, make_world


class Consumer:
    """The platform's handler: refuses while ``down`` (or for ``refused`` accounts), keeps what it accepts."""

    def __init__(self, failures: int = 0, refused: tuple[str, ...] = ()) -> None:
        self.failures = failures
        self.refused = set(refused)
        self.calls: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []

    def __call__(self, payload: Mapping[str, Any]) -> None:
        self.calls.append(dict(payload))
        if payload.get("account") in self.refused:
            raise ValueError(f"no such seller for {payload['account']}")
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("consumer unreachable")
        self.accepted.append(dict(payload))

    def seqs(self, account: str) -> list[int]:
        return [m["seq"] for m in self.accepted if m.get("account") == account and m["type"] == "onboarding.transition"]


@pytest.fixture
def box(db_url: str, clock: Any) -> Any:
    w = make_world(db_url, clock, outbox_retry_base_seconds=5, outbox_max_attempts=3)
    yield w
    w.close()


def test_a_consumer_that_fails_twice_then_recovers_gets_everything_once_in_order(box: World) -> None:
    acct = box.create()
    box.engine.issue_link(acct)
    consumer = Consumer(failures=2)
    outbox = box.engine.outbox

    assert outbox.deliver(consumer) == DeliveryReport(retried=1)
    assert [m["seq"] for m in consumer.calls] == [1], "the second message waits behind the first"
    assert outbox.deliver(consumer) == DeliveryReport(), "backing off: nothing is due"
    box.clock.advance(timedelta(seconds=4))
    assert outbox.deliver(consumer).handed == 0
    box.clock.advance(timedelta(seconds=1))  # base: 5 s after the first failure
    assert outbox.deliver(consumer) == DeliveryReport(retried=1)
    box.clock.advance(timedelta(seconds=9))
    assert outbox.deliver(consumer).handed == 0, "twice as long after the second"
    assert outbox.backlog().retrying == 1
    box.clock.advance(timedelta(seconds=1))
    assert outbox.deliver(consumer) == DeliveryReport(delivered=2)

    assert consumer.seqs(acct) == [1, 2]
    assert [m["seq"] for m in consumer.calls] == [1, 1, 1, 2]
    assert outbox.deliver(consumer).handed == 0, "delivered once: marked published"
    assert outbox.backlog() == OutboxBacklog(at=box.clock.now())


def test_a_dead_letter_holds_its_account_only_until_it_is_re_driven(
    box: World, caplog: pytest.LogCaptureFixture
) -> None:
    stuck, other = box.create("seller-stuck"), box.create("seller-other")
    box.engine.issue_link(stuck)
    box.engine.issue_link(other)
    consumer = Consumer(refused=(stuck,))
    outbox = box.engine.outbox

    with caplog.at_level(logging.WARNING, logger="onboarding_fsm"):
        assert outbox.deliver(consumer) == DeliveryReport(delivered=2, retried=1)
        box.clock.advance(timedelta(seconds=5))
        assert outbox.deliver(consumer) == DeliveryReport(retried=1)
        box.clock.advance(timedelta(seconds=10))
        assert outbox.deliver(consumer) == DeliveryReport(dead=1)
    assert "dead after 3 attempt(s)" in caplog.text and "seller-stuck" not in caplog.text, "no payload in the log"
    box.clock.advance(timedelta(days=1))
    assert outbox.deliver(consumer).handed == 0, "dead: no deliverer touches it, and its account waits"
    assert consumer.seqs(other) == [1, 2] and consumer.seqs(stuck) == []
    backlog = outbox.backlog()
    assert (backlog.pending, backlog.blocked, backlog.dead) == (1, 1, 1)
    [letter] = outbox.dead()
    assert (letter.account_id, letter.kind, letter.attempts) == (stuck, "transition", 3)
    assert letter.last_error == f"ValueError: no such seller for {stuck}"

    consumer.refused.clear()  # the consumer is fixed
    with caplog.at_level(logging.WARNING, logger="onboarding_fsm"):
        assert outbox.redrive([letter.id], operator="operator:alice") == [letter.id]
    assert f"1 dead letter(s) re-driven by operator:alice: {letter.id}" in caplog.text
    assert outbox.deliver(consumer) == DeliveryReport(delivered=2)
    assert consumer.seqs(stuck) == [1, 2], "in order: the re-driven one first"
    assert outbox.dead() == [] and outbox.backlog().pending == 0


def test_a_redrive_that_names_no_dead_letter_changes_nothing(box: World) -> None:
    acct = box.create()
    outbox = box.engine.outbox
    outbox.deliver(Consumer(refused=(acct,)), limit=1)
    box.clock.advance(timedelta(seconds=5))
    outbox.deliver(Consumer(refused=(acct,)), limit=1)
    box.clock.advance(timedelta(seconds=10))
    outbox.deliver(Consumer(refused=(acct,)), limit=1)
    [letter] = outbox.dead()
    for ids, every in (([letter.id, letter.id + 1], False), (None, False), ([letter.id], True), ([-1], False)):
        with pytest.raises(InvalidInput):
            outbox.redrive(ids, every=every)
    assert outbox.dead() == [letter]
    assert outbox.redrive(every=True) == [letter.id]
    assert outbox.redrive(every=True) == []
    with pytest.raises(InvalidInput):
        outbox.deliver(Consumer(), limit=0)
    with pytest.raises(InvalidInput):
        outbox.dead(limit=0)


def test_accounts_do_not_wait_for_each_other(box: World) -> None:
    slow, quick = box.create("seller-slow"), box.create("seller-quick")
    consumer = Consumer(refused=(slow,))
    box.engine.outbox.deliver(consumer)
    box.engine.issue_link(quick)
    box.engine.issue_link(slow)
    box.engine.outbox.deliver(consumer)
    assert consumer.seqs(quick) == [1, 2] and consumer.seqs(slow) == []
    assert [m["seq"] for m in consumer.calls if m["account"] == slow] == [1], "backing off, its second behind it"


def test_dispatch_outbox_delegates_and_no_longer_raises(box: World) -> None:
    """The pre-issue-12 call: now ``engine.outbox.deliver``. A handler that
    raises is retried with backoff instead of the exception propagating."""
    acct = box.create()
    box.engine.issue_link(acct)
    consumer = Consumer(failures=1)
    assert box.engine.dispatch_outbox(consumer) == 0
    box.clock.advance(timedelta(seconds=5))
    assert box.engine.dispatch_outbox(consumer, limit=1) == 1
    assert box.engine.dispatch_outbox(consumer) == 1
    assert consumer.seqs(acct) == [1, 2]


def test_checkpoint_announcements_are_delivered_in_their_own_line(box: World) -> None:
    acct = box.create()
    box.engine.audit.checkpoint()
    box.engine.issue_link(acct)
    box.engine.audit.checkpoint()
    consumer = Consumer()
    assert box.engine.outbox.deliver(consumer).delivered == 4
    heads = [m["seq"] for m in consumer.accepted if m["type"] == "audit.checkpoint"]
    assert heads == [1, 2]


def test_a_message_whose_lease_ran_out_in_the_batch_is_left_to_the_next_claim(
    box: World, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = box.create("seller-1"), box.create("seller-2")
    seen: list[str] = []

    def slow(payload: Mapping[str, Any]) -> None:
        seen.append(payload["account"])
        if len(seen) == 1:
            box.clock.advance(box.engine.config.outbox_lease)  # outlives the batch's lease

    with caplog.at_level(logging.WARNING, logger="onboarding_fsm"):
        assert box.engine.outbox.deliver(slow) == DeliveryReport(delivered=2)
    assert seen == [first, second], "claimed again with a fresh lease, then handed over once"
    assert "lease ran out before its turn" in caplog.text
