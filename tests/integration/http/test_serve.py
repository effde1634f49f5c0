"""`onboarding-fsm serve` on the embedded default, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from adapters.http.serving import bind
from tests.integration.http.holder import Holder
from tests.procio import Lines

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    sock = bind()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def test_serve_prints_a_start_url_that_onboards(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    env = {
        **os.environ,
        "ONBOARDING_FSM_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "ONBOARDING_FSM_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--simulator-port", str(sim_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        start = Lines(proc.stdout).wait_for("/start?token=", timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).json() == {"status": "ok"}
        holder = Holder()
        page = holder.onboard(start)
        assert "state=verified" in str(page.url)
        assert "Onboarding: verified" in page.text
        holder.client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
