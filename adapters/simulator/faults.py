"""Fault injection for the simulator's HTTP server: the bad days, on demand.

The next N matching requests answer an error status (429, 500…), are
slowed, or are executed and then have their connection dropped before the
answer leaves — the case idempotency keys exist for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body


class FaultKind(StrEnum):
    STATUS = "status"  # answer ``status`` instead of executing
    DELAY = "delay"  # wait ``seconds``, then execute
    DROP = "drop"  # execute, then drop the connection before the answer


@dataclass
class Fault:
    kind: FaultKind
    times: int = 1
    status: int = 500
    seconds: float = 0.0
    method: str | None = None
    path_prefix: str = "/v1/"


@dataclass
class FaultPlan:
    """The next matching requests misbehave; thread-safe, consumed in order."""

    faults: list[Fault] = field(default_factory=list)
    seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        kind: FaultKind | str,
        *,
        times: int = 1,
        status: int = 500,
        seconds: float = 0.0,
        method: str | None = None,
        path_prefix: str = "/v1/",
    ) -> None:
        fault = Fault(FaultKind(kind), times, status, seconds, method, path_prefix)
        with self._lock:
            self.faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and path.startswith(fault.path_prefix) and fault.method in (None, method):
                    fault.times -= 1
                    self.seen += 1
                    return fault
            return None


def error_response(
    status: int, message: str, *, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> JSONResponse:
    """Stripe's error JSON."""
    return JSONResponse(error_body(message, kind=kind, code=code, param=param), status_code=status)


class FaultInjector:
    """Raw ASGI middleware: it must be able to drop a connection after the
    request was executed, which a response object cannot express."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self.plan.take(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind is FaultKind.DELAY:
            import anyio

            await anyio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind is FaultKind.STATUS:
            kind = "api_error" if fault.status >= 500 else "invalid_request_error"
            code = "rate_limit" if fault.status == 429 else None
            response = error_response(fault.status, f"injected {fault.status}", kind=kind, code=code)
            await response(scope, receive, send)  # its Request-Id: ``server.RequestIds``
        else:

            async def swallow(message: Message) -> None:
                return None  # the work is done, the answer never leaves

            await self.app(scope, receive, swallow)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100000")]})
            raise ConnectionAbortedError("injected: connection dropped after the request was executed")
