"""Structured logs: a whole scenario logged as JSON, one object per line, with
account, event and run ids as fields — and no identity value, secret or link URL."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from adapters.cli.logs import JsonFormatter, configure, formatter, uvicorn_options
from onboarding_fsm import FakeClock, Settings
from onboarding_fsm.bootstrap import build_worker
from onboarding_fsm.errors import WebhookRejected
from tests.conftest import World, make_world

ROOT = Path(__file__).resolve().parents[2]
#: what the holder and the platform type in (the hosted form's passing test data, and a pre-fill)
IDENTITY = ["Jenny", "Rosen", "Zebediah", "Quimby", "222222222", "holder@example.com", "South San Francisco",
            "0000000000", "whsec_onboarding_fsm_simulator"]  # fmt: skip


@pytest.fixture
def captured() -> Iterator[StringIO]:
    """Every ``onboarding_fsm`` line (the engine's, the worker's, the self-check's) as JSON."""
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("onboarding_fsm")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys(item)


def test_a_scenario_logs_json_lines_with_ids_and_no_identity_data(
    captured: StringIO, db_url: str, clock: FakeClock
) -> None:
    world: World = make_world(db_url, clock)
    try:
        links = scenario(world)
    finally:
        world.close()
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]  # every line is one JSON object
    assert len(lines) > 10
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        assert datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0)
        assert not {"first_name", "last_name", "dob", "id_number", "email", "url"} & set(keys(line))
    transitions = [line for line in lines if line["message"].startswith("account acct_")]
    assert transitions and all(line["account"] in line["message"] and line["trigger"] for line in transitions)
    by_webhook = [line for line in transitions if line["source"] == "webhook"]
    assert by_webhook and all(line["event"].startswith("evt_") for line in by_webhook)
    by_timer = [line for line in transitions if line["source"] == "scheduler"]
    assert by_timer and all(line["run"].startswith("sweep_") for line in by_timer)
    assert any(line["logger"] == "onboarding_fsm.worker" and line.get("run") for line in lines)
    duplicate = [line for line in lines if line.get("outcome") == "duplicate"]
    assert duplicate and duplicate[0]["event"].startswith("evt_") and duplicate[0]["account"].startswith("acct_")
    assert any(line.get("outcome") == "rejected" and line["level"] == "warning" for line in lines)
    text = captured.getvalue()
    for value in [*IDENTITY, *links]:
        assert value not in text


def scenario(world: World) -> list[str]:
    """Pre-fill, onboard, a duplicate and a forged delivery, deadlines, reconciliation;
    the Account Link URLs minted on the way."""
    person = {"first_name": "Zebediah", "last_name": "Quimby", "id_number": "222222222",
              "dob": {"day": 1, "month": 1, "year": 1902}}  # fmt: skip
    done = world.create("seller-1", prefill={"individual": person}, business_type="individual")
    link = world.engine.issue_link(done)
    world.sim.visit(link.url).complete()
    world.engine.handle_return(done)
    event = next(e for e in world.sim.events if e["account"] == done)
    world.engine.ingest_webhook(*world.sim.sign(event))  # seen already: duplicate
    with pytest.raises(WebhookRejected):
        world.engine.ingest_webhook(b'{"id": "evt_forged"}', "t=1,v1=00")
    waiting = world.create("seller-2")
    later = world.engine.issue_link(waiting)
    world.clock.advance(timedelta(days=2))  # abandoned by the timer
    worker = build_worker(Settings(database_url="sqlite://"), world.engine)
    worker.sweep()
    worker.reconcile()
    return [link.url, later.url]


def test_formats_and_fields() -> None:
    record = logging.LogRecord("onboarding_fsm", logging.INFO, __file__, 1, "account %s", ("acct_1",), None)
    record.account, record.run, record.color_message, record.event = "acct_1", "sweep_1", "x", None
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "account acct_1" and line["level"] == "info"
    assert (line["account"], line["run"]) == ("acct_1", "sweep_1")
    assert "color_message" not in line and "event" not in line  # uvicorn's copy; None fields left out
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failed))["exception"]
    assert not isinstance(formatter("text"), JsonFormatter)


def test_the_setting_and_the_cli_wiring(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().log_format == "text"
    monkeypatch.setenv("ONBOARDING_FSM_LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    stream = StringIO()
    try:
        configure(logging.INFO, "json", stream)
        logging.getLogger("onboarding_fsm.test").info("hello %s", "there", extra={"account": "acct_1"})
    finally:
        for handler in root.handlers:
            root.removeHandler(handler)
        root.handlers = saved
    assert json.loads(stream.getvalue())["account"] == "acct_1"


def test_uvicorn_lines_go_to_the_json_handler_even_after_its_own_config() -> None:
    """``serve`` on the embedded default starts the simulator's server first, with
    uvicorn's own logging config; the platform's server in JSON mode undoes it."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    uvicorn.Config(app)  # the simulator's server: uvicorn's handlers, not propagating
    assert logging.getLogger("uvicorn.error").handlers or not logging.getLogger("uvicorn").propagate
    try:
        uvicorn.Config(app, **uvicorn_options("json"))
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            assert logger.handlers == [] and logger.propagate, name
    finally:
        logging.config.dictConfig(LOGGING_CONFIG)
    assert uvicorn_options("text") == {}


def test_the_command_line_logs_json_when_configured(tmp_path: Path) -> None:
    """A fresh process (no handler on the root logger yet): every stderr line is one object."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDING_FSM_")}
    env |= {"ONBOARDING_FSM_LOG_FORMAT": "json", "ONBOARDING_FSM_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "-v", "check-deadlines", "--operator", "alice"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert "transition(s) fired" in done.stdout  # the command's own output stays text


def test_serve_tells_its_operator_in_json_too() -> None:
    """With ``log_format = "json"`` the lines ``serve`` prints on stdout are log
    objects as well: a collector merging stdout and stderr reads JSON only."""
    import io
    import json

    from adapters.cli.logs import banner

    out = io.StringIO()
    say = banner("json", out)
    say("onboarding-fsm listening on 0.0.0.0:8000, links and webhooks advertise https://pay.example")
    say("  warning: listening on a public address while advertising plain http")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["level"], first["logger"]) == ("info", "onboarding_fsm.serve")
    assert second["level"] == "warning" and second["message"].startswith("warning:")
    plain = io.StringIO()
    banner("text", plain)("hello")
    assert plain.getvalue() == "hello\n"
