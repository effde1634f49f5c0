"""Issue 12, item 5: ``serve`` listens where it is told (``--host``/``--port``,
``bind_host``/``bind_port``) while links and webhooks carry ``public_base_url``,
as behind a proxy that publishes https://pay.example.test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from adapters.cli.serve import bind_warnings, listen_port
from onboarding_fsm import Settings
from tests.integration.http.holder import Holder
from tests.integration.http.test_serve import free_port
from tests.procio import Lines

ROOT = Path(__file__).resolve().parents[3]
PUBLIC = "https://pay.example.test"


def test_serve_listens_on_its_own_address_and_advertises_the_public_url(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    env = {
        **os.environ,
        "ONBOARDING_FSM_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "ONBOARDING_FSM_PUBLIC_BASE_URL": PUBLIC,
    }
    command = ["serve", "--host", "127.0.0.1", "--port", str(port), "--simulator-port", str(sim_port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = Lines(proc.stdout)
        said = lines.wait_for("listening on", timeout=60)
        assert said == f"onboarding-fsm listening on 127.0.0.1:{port}, links and webhooks advertise {PUBLIC}"
        start = lines.wait_for("/start?token=", timeout=60)
        assert start.startswith(f"{PUBLIC}/onboarding/"), "the start URL a holder is sent is the public one"
        here = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{here}/healthz", timeout=30).json() == {"status": "ok"}
        holder = Holder()
        try:
            # the proxy's part: the public URL arrives here
            action, fields, _ = holder.open_form(start.replace(PUBLIC, here))
            back = holder.submit(action, fields)
            assert back.status_code in (302, 303)
            assert back.headers["location"].startswith(f"{PUBLIC}/onboarding/"), "the link's return_url is public"
        finally:
            holder.client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_listening_port_defaults_to_the_public_urls_then_8000() -> None:
    assert listen_port(Settings()) == 8000 and Settings().bind_host == "127.0.0.1"
    assert listen_port(Settings(public_base_url="http://127.0.0.1:8123")) == 8123
    assert listen_port(Settings(public_base_url=PUBLIC)) == 8000, "not 443: the proxy's port is not ours"
    assert listen_port(Settings(public_base_url=PUBLIC, bind_port=9000)) == 9000


@pytest.mark.parametrize(
    ("public", "host", "port", "warned"),
    [
        (PUBLIC, "0.0.0.0", 8000, None),  # behind a proxy: as intended
        ("http://127.0.0.1:8000", "127.0.0.1", 8000, None),  # the embedded default
        ("http://127.0.0.1:8000", "127.0.0.1", 9000, "not port 9000"),  # links lead nowhere
        ("https://localhost", "127.0.0.1", 443, None),
        ("http://pay.example.test", "0.0.0.0", 8000, "in clear"),  # tokens over plain http on a network
    ],
)
def test_serve_warns_about_an_address_that_cannot_work(public: str, host: str, port: int, warned: str | None) -> None:
    found = bind_warnings(Settings(public_base_url=public), host, port)
    assert (found == []) if warned is None else (len(found) == 1 and warned in found[0]), found
