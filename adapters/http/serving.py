"""Serve an ASGI app with uvicorn on a socket bound before the server starts.

Binding first means the address is known (port 0 picks a free one) and
clients may connect at once — the kernel queues them until uvicorn accepts —
so nothing has to wait for the server to come up. Every server this project
starts (the platform app, the simulator, tests, benchmarks) goes through here.
Access logs are off: start URLs carry the holder's token in their query string.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from typing import Any

import uvicorn
from starlette.types import ASGIApp


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(512)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def _server(app: ASGIApp, log_level: str, options: Mapping[str, Any] | None = None) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, lifespan="off", access_log=False, **dict(options or {}))
    )


def serve_forever(
    app: ASGIApp, sock: socket.socket, *, log_level: str = "warning", options: Mapping[str, Any] | None = None
) -> None:
    """Serve ``app`` on ``sock`` in this thread until SIGINT/SIGTERM;
    ``options`` are more ``uvicorn.Config`` options (``log_config``, say)."""
    _server(app, log_level, options).run(sockets=[sock])


class Served:
    """An app served on ``sock`` from a background thread."""

    def __init__(self, app: ASGIApp, sock: socket.socket, *, log_level: str = "warning") -> None:
        self.sock = sock
        self.url = url_of(sock)
        self.server = _server(app, log_level)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
