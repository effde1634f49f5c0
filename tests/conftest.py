"""Shared fixtures: a fake clock, a fresh SQLite file, the simulator, an engine.

Time moves only through ``clock.advance`` — never ``sleep``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.simulator import Simulator
from adapters.sqlalchemy_store.schemas import temporary_schema
from onboarding_fsm import FakeClock, Settings, build_engine
from onboarding_fsm.engine import Engine

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
POSTGRES_ENV = "ONBOARDING_FSM_TEST_POSTGRES_URL"
#: set by .ci/run: a PostgreSQL test that would skip fails instead
REQUIRE_POSTGRES_ENV = "ONBOARDING_FSM_REQUIRE_POSTGRES"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings must come from the test, not from the machine's environment."""
    for key in list(os.environ):
        if key.startswith("ONBOARDING_FSM_") and key not in (POSTGRES_ENV, REQUIRE_POSTGRES_ENV):
            monkeypatch.delenv(key)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'onboarding.sqlite3'}"


def make_settings(db_url: str, **overrides: object) -> Settings:
    return Settings(database_url=db_url, **overrides)  # type: ignore[arg-type]


@dataclass
class World:
    """An engine and the simulator it talks to, sharing one fake clock."""

    engine: Engine
    sim: Simulator
    clock: FakeClock

    def create(self, ref: str = "seller-1", country: str = "US", **kwargs: object) -> str:
        kwargs.setdefault("capabilities", ["card_payments", "transfers"])
        return self.engine.create_account(ref, country, **kwargs).stripe_account_id  # type: ignore[arg-type]

    def onboard(self, account_id: str, overrides: dict[str, str] | None = None, **link: object) -> str:
        """Issue a link, complete the hosted form, come back; return the state."""
        url = self.engine.issue_link(account_id, **link).url  # type: ignore[arg-type]
        self.sim.visit(url).complete(overrides)
        return self.engine.handle_return(account_id).state.value

    def state(self, account_id: str) -> str:
        return self.engine.get_account(account_id).state.value


def make_world(db_url: str, clock: FakeClock, *, sim: Simulator | None = None, **settings: object) -> World:
    sim = sim or Simulator(clock)
    engine = build_engine(make_settings(db_url, **settings), clock=clock, gateway=sim)
    sim.connect(engine.ingest_webhook)
    return World(engine, sim, clock)


@pytest.fixture
def world(db_url: str, clock: FakeClock) -> Iterator[World]:
    w = make_world(db_url, clock)
    yield w
    w.engine.store.close()


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        why = f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{why}; {REQUIRE_POSTGRES_ENV}=1 makes this a failure")
        pytest.skip(why)
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    with temporary_schema(postgres_url(), "ofsm_test_") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database backend the store supports, for contract suites."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'contract.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url
