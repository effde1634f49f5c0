"""``onboarding-fsm outbox status | dead | redrive | deliver``, run in-process."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from onboarding_fsm import FakeClock
from onboarding_fsm.settings import Settings
from tests.conftest import make_world
from tests.service.test_cli import run

#: what the handler ``recording`` made has received
RECEIVED: list[dict[str, Any]] = []


def recording(settings: Settings) -> Any:
    def handle(payload: Mapping[str, Any]) -> None:
        RECEIVED.append(dict(payload))

    return handle


def refuse(payload: Mapping[str, Any]) -> None:
    raise ConnectionError("consumer unreachable")


@pytest.fixture
def dead_letters(db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two accounts, each with its first message dead-lettered (one attempt allowed) and its second behind it."""
    world = make_world(db_url, clock, outbox_max_attempts=1)
    accounts = [world.create("seller-a"), world.create("seller-b")]
    for acct in accounts:
        world.engine.issue_link(acct)
    assert world.engine.outbox.deliver(refuse).dead == 2
    world.close()
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", db_url)
    return accounts


def test_status_and_the_dead_letters(capsys: pytest.CaptureFixture[str], dead_letters: list[str]) -> None:
    code, out = run(capsys, "outbox", "status")
    assert code == 0
    assert "pending        2" in out and "blocked      2" in out and "dead letters   2" in out
    code, out = run(capsys, "outbox", "dead")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == dead_letters
    assert all(" transition " in line and line.endswith("ConnectionError: consumer unreachable") for line in lines)
    first_id = lines[0].split()[0]
    code, out = run(capsys, "outbox", "dead", "--limit", "1")
    assert code == 0 and out.splitlines()[-1] == f"more: --after {first_id}"
    code, out = run(capsys, "outbox", "dead", "--after", first_id)
    assert code == 0 and dead_letters[1] in out and dead_letters[0] not in out


def test_redrive_and_deliver(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    dead_letters: list[str],
) -> None:
    code, out = run(capsys, "outbox", "dead")
    ids = [line.split()[0] for line in out.splitlines()]
    code, out = run(capsys, "outbox", "redrive", "--id", "999999")
    assert code == 2 and "not dead letters" in out and "[999999]" in out
    with caplog.at_level(logging.WARNING, logger="onboarding_fsm"):
        code, out = run(capsys, "outbox", "redrive", "--id", ids[0], "--operator", "alice")
    assert code == 0 and out.startswith(f"1 dead letter(s) back to pending, attempts reset: {ids[0]}")
    assert f"re-driven by operator:alice: {ids[0]}" in caplog.text

    code, out = run(capsys, "outbox", "deliver")
    assert code == 2 and "no outbox_handler is configured" in out
    monkeypatch.setenv("ONBOARDING_FSM_OUTBOX_HANDLER", f"{__name__}:recording")
    RECEIVED.clear()
    code, out = run(capsys, "outbox", "deliver")
    assert code == 0 and out.startswith("2 delivered, 0 to retry, 0 dead-lettered")
    assert [(m["account"], m["seq"]) for m in RECEIVED] == [(dead_letters[0], 1), (dead_letters[0], 2)]

    code, out = run(capsys, "outbox", "redrive", "--all")
    assert code == 0 and out.startswith(f"1 dead letter(s) back to pending, attempts reset: {ids[1]}")
    assert run(capsys, "outbox", "deliver")[0] == 0
    code, out = run(capsys, "outbox", "status")
    assert "pending        0" in out and "dead letters   0" in out


def test_redrive_needs_ids_or_all(capsys: pytest.CaptureFixture[str], dead_letters: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "outbox", "redrive")
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        run(capsys, "outbox", "redrive", "--id", "1", "--all")
    code, out = run(capsys, "outbox", "dead", "--limit", "0")
    assert code == 2 and "limit must be at least 1" in out
