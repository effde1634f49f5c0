"""Shared fixtures: a fake clock, a fresh database, and one sandbox (the
engine, the simulator and the clock they share, from ``build_sandbox``).

Time moves only through ``clock.advance`` — never ``sleep``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.http.serving import Served, bind, url_of
from adapters.simulator import Simulator
from adapters.simulator.sandbox import Sandbox
from adapters.simulator.server import SimulatorServer
from adapters.sqlalchemy_store import SqlStore
from adapters.sqlalchemy_store.schemas import temporary_schema
from onboarding_fsm import FakeClock, Settings
from onboarding_fsm.bootstrap import build_sandbox

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
def db_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    return _copy_of(migrated_sqlite, tmp_path / "onboarding.sqlite3")


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file brought to head by the real migrations, once per run:
    a test's database starts as a copy of it, which saves every test the
    ~0.1 s of replaying each revision (``test_migrations`` still replays
    them, on fresh databases of its own)."""
    path = tmp_path_factory.mktemp("template") / "head.sqlite3"
    store = SqlStore.from_url(f"sqlite:///{path}")
    store.migrate()
    store.close()
    return path


def _copy_of(template: Path, path: Path) -> str:
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def make_settings(db_url: str, **overrides: object) -> Settings:
    return Settings(database_url=db_url, **overrides)  # type: ignore[arg-type]


#: what every service test drives: ``world.engine``, ``world.sim``, ``world.clock``, ``world.store``
World = Sandbox

#: a Custom-like account's controller: the platform collects requirements, no Stripe-hosted dashboard
PLATFORM_COLLECTED = {
    "requirement_collection": "application",
    "stripe_dashboard": {"type": "none"},
    "fees": {"payer": "application"},
    "losses": {"payments": "application"},
}


def make_world(
    db_url: str, clock: FakeClock, *, simulator: dict[str, Any] | None = None, **settings: object
) -> Sandbox:
    """A sandbox on ``db_url``; ``simulator`` are ``Simulator`` options, the rest settings."""
    return build_sandbox(make_settings(db_url, **settings), clock=clock, **(simulator or {}))


@pytest.fixture
def served(clock: FakeClock) -> Iterator[tuple[Simulator, str]]:
    """The simulator on a real socket (Stripe's API and its hosted pages), and its URL."""
    sock = bind()
    sim = Simulator(clock, hosted_base_url=url_of(sock))
    running = Served(SimulatorServer(sim).app, sock)
    try:
        yield sim, running.url
    finally:
        running.stop()


@pytest.fixture
def world(db_url: str, clock: FakeClock) -> Iterator[Sandbox]:
    w = make_world(db_url, clock)
    yield w
    w.close()


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
        return _copy_of(request.getfixturevalue("migrated_sqlite"), tmp_path / "contract.sqlite3")
    url: str = request.getfixturevalue("pg_url")
    return url
