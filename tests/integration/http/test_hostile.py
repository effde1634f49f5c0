"""Issue 9's reproductions over real sockets: every hostile webhook request is
a 4xx that changes nothing, and a body is never read past the cap.

Each test here failed on the code before the fix: the replay bypass answered
200 (applied), a chunked body was read whole before the size check, a
non-ASCII ``v1`` or ``t=<ts>=1`` was a 500, and validly signed malformed
events were 500s (on PostgreSQL also over-long ids and NUL bytes).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from adapters.stripe_wire.signing import sign
from onboarding_fsm import FakeClock
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from tests.integration.http.conftest import Stack, make_stack

PATH = "/webhooks/stripe"
WEEK = 7 * 86_400


@pytest.fixture
def any_stack(any_db_url: str, clock: FakeClock) -> Iterator[Stack]:
    s = make_stack(any_db_url, clock)
    yield s
    s.stop()


def now(stack: Stack) -> int:
    return int(stack.clock.now().timestamp())


def post(stack: Stack, body: bytes, header: str | bytes | None) -> httpx.Response:
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return httpx.post(stack.platform.url + PATH, content=body, headers=headers, timeout=10)


def recorded(stack: Stack) -> tuple[Any, ...]:
    return tuple(stack.engine.inbox()), tuple(
        stack.engine.history(a.stripe_account_id) for a in stack.engine.accounts()
    )


def update_event(stack: Stack, acct: str, event_id: str = "evt_replayed") -> dict[str, Any]:
    obj = {**stack.sim.account_json(acct), "requirements": {"disabled_reason": "rejected.fraud"}}
    return {"id": event_id, "object": "event", "type": "account.updated", "account": acct,
            "created": now(stack), "livemode": False, "data": {"object": obj}}  # fmt: skip


@pytest.mark.parametrize("template", ["t ={now},t={old},v1={sig}", "v1={sig}, t={now},t={old}"])
def test_a_captured_week_old_delivery_cannot_be_replayed_with_a_fresh_t(stack: Stack, template: str) -> None:
    acct = stack.create()
    stack.clock.advance(10)
    body = json.dumps(update_event(stack, acct)).encode()
    captured = sign(body, SIMULATOR_WEBHOOK_SECRET, now(stack))  # what an attacker recorded a week ago
    sig = captured.split("v1=")[1]
    stack.clock.advance(WEEK)
    before = recorded(stack)
    header = template.format(now=now(stack), old=now(stack) - WEEK, sig=sig)
    answer = post(stack, body, header)
    assert answer.status_code == 400, answer.text
    assert answer.json()["kind"] == "SignatureInvalid"
    assert recorded(stack) == before and stack.state(acct) == "created"


@pytest.mark.parametrize(
    "header",
    [b"t=1772443800,v1=\xe9\xe9", b"t=1772443800,v1=\xff", "t={ts}=1,v1={sig}"],
    ids=["latin1-v1", "ff-v1", "t-with-two-equals"],
)
def test_malformed_signature_headers_are_400(stack: Stack, header: str | bytes) -> None:
    body = b'{"id": "evt_1"}'
    if isinstance(header, str):
        header = header.format(ts=now(stack), sig=sign(body, SIMULATOR_WEBHOOK_SECRET, now(stack)).split("v1=")[1])
    answer = post(stack, body, header)
    assert answer.status_code == 400, answer.text
    assert answer.json()["kind"] == "SignatureInvalid"


def _raw(url: str, head: bytes) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5)
    sock.sendall(head)
    return sock


def _status_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def test_a_chunked_body_over_the_cap_is_413_before_it_ends(stack: Stack) -> None:
    """No Content-Length: the body is streamed and refused at 1 MB, while the
    client is still sending (the old handler waited for the whole body)."""
    sock = _raw(stack.platform.url, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                "Content-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\n\r\n".encode())  # fmt: skip
    piece = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    started = time.monotonic()
    try:
        sock.settimeout(2)
        for _ in range(18):  # 1.1 MB, and the terminating chunk never comes
            sock.sendall(piece)
    except OSError:
        pass  # the server stopped reading: what it should do
    try:
        sock.settimeout(5)
        assert _status_line(sock).startswith(b"HTTP/1.1 413")
    finally:
        sock.close()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3", b" "])
def test_a_bad_content_length_is_4xx_over_the_wire(stack: Stack, length: bytes) -> None:
    sock = _raw(
        stack.platform.url, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n{}" % (PATH.encode(), length)
    )
    try:
        status = _status_line(sock)
    finally:
        sock.close()
    assert status.startswith(b"HTTP/1.1 4"), status


def _asgi(stack: Stack, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    """Call the app directly, as a mounting framework or another server would,
    with headers uvicorn's parser would have refused itself."""
    import asyncio

    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}  # fmt: skip
    app = stack.platform.server.config.app
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1.5", b"", b"\xff"])
def test_a_bad_content_length_is_400_in_the_app(stack: Stack, length: bytes) -> None:
    status, body = _asgi(stack, [(b"content-length", length), (b"stripe-signature", b"t=1,v1=00")], b"{}")
    assert status == 400, body


DEEP = 100_000


def _signed_malformed(stack: Stack, acct: str) -> dict[str, bytes]:
    def ev(**changes: Any) -> bytes:
        event = update_event(stack, acct, "evt_hostile")
        for key, value in changes.items():
            if key.startswith("obj_"):
                event["data"]["object"][key[4:]] = value
            else:
                event[key] = value
        return json.dumps(event).encode()

    return {
        "deep-nesting": b'{"id": "evt_1", "data": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        "created-out-of-range": ev(created=10**20),
        "deadline-out-of-range": ev(obj_requirements={"current_deadline": 10**18}),
        "errors-not-a-list": ev(obj_requirements={"errors": 5}),
        "huge-integer": b'{"id": "evt_1", "created": ' + b"9" * 5000 + b"}",
        "lone-surrogate-type": ev(type="account.\ud800"),
        "lone-surrogate-field": ev(obj_requirements={"currently_due": ["\udfff"]}),
        "nul-in-id": ev(id="evt_\x00"),
        "nul-in-field": ev(obj_requirements={"currently_due": ["a\x00"]}),
        "long-event-id": ev(id="evt_" + "x" * 300),
        "long-type": ev(type="t" * 300),
        "long-account-id": ev(account="acct_" + "x" * 100),
        "long-country": ev(obj_country="USA"),
        "nan": ev(obj_metadata={"n": float("nan")}),
    }


@pytest.mark.parametrize(
    "case",
    ["deep-nesting", "created-out-of-range", "deadline-out-of-range", "errors-not-a-list", "huge-integer",
     "lone-surrogate-type", "lone-surrogate-field", "nul-in-id", "nul-in-field", "long-event-id", "long-type",
     "long-account-id", "long-country", "nan"],
)  # fmt: skip
def test_validly_signed_malformed_events_are_400_on_every_database(any_stack: Stack, case: str) -> None:
    acct = any_stack.create()
    any_stack.clock.advance(10)
    body = _signed_malformed(any_stack, acct)[case]
    before = recorded(any_stack)
    answer = post(any_stack, body, sign(body, SIMULATOR_WEBHOOK_SECRET, now(any_stack)))
    assert answer.status_code == 400, answer.text
    assert answer.json()["kind"] == "MalformedEvent"
    assert recorded(any_stack) == before
