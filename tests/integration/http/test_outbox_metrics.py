"""The outbox backlog on ``/metrics``, read from the store at scrape time (so
it shows what every deliverer left), served by uvicorn on a real socket."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from adapters.http import create_app
from adapters.http.serving import Served, bind
from onboarding_fsm import FakeClock
from tests.conftest import make_settings, make_world


def test_pending_dead_letters_and_the_oldest_age_on_metrics(db_url: str, clock: FakeClock) -> None:
    settings: dict[str, Any] = {"outbox_max_attempts": 2, "outbox_retry_base_seconds": 5}
    world = make_world(db_url, clock, **settings)
    stuck, fine = world.create("seller-stuck"), world.create("seller-fine")
    world.engine.issue_link(stuck)
    world.engine.issue_link(fine)

    def consumer(payload: Mapping[str, Any]) -> None:
        if payload["account"] == stuck:
            raise ConnectionError("consumer refuses this seller")

    world.engine.outbox.deliver(consumer)  # fine's two delivered; stuck's first fails once
    served = Served(create_app(world.engine, make_settings(db_url, **settings)), bind())
    try:
        text = httpx.get(served.url + "/metrics").text
        assert "onboarding_fsm_outbox_pending 2.0" in text
        assert "onboarding_fsm_outbox_retrying 1.0" in text
        assert "onboarding_fsm_outbox_dead_letters 0.0" in text

        world.clock.advance(timedelta(seconds=5))
        world.engine.outbox.deliver(consumer)  # the second failure: a dead letter
        world.clock.advance(timedelta(seconds=85))
        text = httpx.get(served.url + "/metrics").text
        assert "onboarding_fsm_outbox_dead_letters 1.0" in text
        assert "onboarding_fsm_outbox_pending 1.0" in text and "onboarding_fsm_outbox_blocked 1.0" in text
        assert "onboarding_fsm_outbox_oldest_pending_age_seconds 90.0" in text, "stuck's second, written at the start"

        [letter] = world.engine.outbox.dead()
        world.engine.outbox.redrive([letter.id])
        world.engine.outbox.deliver(lambda payload: None)
        text = httpx.get(served.url + "/metrics").text
        assert "onboarding_fsm_outbox_pending 0.0" in text and "onboarding_fsm_outbox_dead_letters 0.0" in text
        assert "onboarding_fsm_outbox_oldest_pending_age_seconds 0.0" in text
    finally:
        served.stop()
        world.close()
