"""An engine and the simulator it talks to, for tests, demos and platforms'
own test suites (built by ``onboarding_fsm.bootstrap.build_sandbox``).

The engine, the simulator and the fake clock they share; time moves only
through ``clock.advance``. A few helpers cover the steps every scenario
repeats: create an account, send the holder through the hosted form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onboarding_fsm.clock import FakeClock
from onboarding_fsm.engine import Engine
from onboarding_fsm.ports import Store

from .simulator import Simulator


@dataclass
class Sandbox:
    engine: Engine
    sim: Simulator
    clock: FakeClock
    #: the store the engine writes to (tests may wrap or inspect it)
    store: Store

    def create(self, ref: str = "seller-1", country: str = "US", **kwargs: Any) -> str:
        """A new account (card payments and transfers unless told otherwise); its id."""
        kwargs.setdefault("capabilities", ["card_payments", "transfers"])
        return self.engine.create_account(ref, country, **kwargs).stripe_account_id

    def onboard(self, account_id: str, overrides: dict[str, str] | None = None, **link: Any) -> str:
        """Issue a link, complete the hosted form with passing test data
        (plus ``overrides``), come back; the state the return lands in."""
        url = self.engine.issue_link(account_id, **link).url
        self.sim.visit(url).complete(overrides)
        return self.engine.handle_return(account_id).state.value

    def state(self, account_id: str) -> str:
        return self.engine.get_account(account_id).state.value

    def close(self) -> None:
        self.engine.close()
