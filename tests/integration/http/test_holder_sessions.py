"""Holders' start links and sessions on the embedded token scheme (issue 9,
items 7 and 8): a start token works once and briefly, starts are rate-limited
like refreshes, a session outlives a slow holder, one per account, Secure
behind https."""

from __future__ import annotations

from datetime import timedelta

import httpx
from freezegun import freeze_time
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.auth import COOKIE, SignedTokenAuth, cookie_name, from_settings
from onboarding_fsm import Settings
from tests.conftest import START
from tests.integration.http.conftest import Stack
from tests.integration.http.holder import Holder


def test_a_start_token_works_once(stack: Stack, holder: Holder) -> None:
    acct = stack.create()
    url = stack.start_url(acct)
    assert holder.get(url).status_code == 303
    stranger = httpx.Client(follow_redirects=False)  # the same URL, forwarded or replayed elsewhere
    try:
        assert stranger.get(url).status_code == 401
    finally:
        stranger.close()
    assert sum(a.trigger.value == "issue_link" for a in stack.engine.history(acct)) == 1


def test_starts_are_rate_limited_like_refreshes(db_url: str, clock: object, holder: Holder) -> None:
    from tests.integration.http.conftest import make_stack

    stack = make_stack(db_url, clock, refresh_limit=3, refresh_window_seconds=600)  # type: ignore[arg-type]
    try:
        acct = stack.create()
        base = f"{stack.settings.start_url(acct)}"
        codes = [holder.get(stack.start_url(acct)).status_code]  # the token, then the session cookie
        codes += [holder.get(base).status_code for _ in range(40)]
        assert codes[:3] == [303, 303, 303] and set(codes[3:]) == {429}
        assert sum(t.trigger.value == "issue_link" for t in stack.engine.history(acct)) == 3
    finally:
        stack.stop()


def test_a_second_account_in_the_same_browser_keeps_the_first_session(stack: Stack, holder: Holder) -> None:
    first, second = stack.create("seller-a"), stack.create("seller-b")
    assert holder.get(stack.start_url(first)).status_code == 303
    assert holder.get(stack.start_url(second)).status_code == 303
    back = holder.get(f"{stack.platform.url}/onboarding/{first}/return")
    assert back.status_code == 303  # not 401: the first account's cookie survived


def test_the_session_is_the_holder_who_started(stack: Stack, holder: Holder) -> None:
    acct = stack.create()
    start = f"{stack.settings.start_url(acct)}?token={stack.auth.token_for(acct, 'alice@example')}"
    assert holder.get(start).status_code == 303
    base = f"{stack.platform.url}/onboarding/{acct}"
    assert holder.get(f"{base}/refresh").status_code == 303  # the session cookie only, from here on
    assert holder.get(f"{base}/return").status_code == 303
    history = stack.engine.history(acct)
    assert [t.trigger.value for t in history] == ["create", "issue_link", "refresh", "return"]
    assert [t.actor for t in history[1:]] == ["holder:alice@example"] * 3


def test_a_session_cookie_names_exactly_the_holder_it_remembers() -> None:
    auth = from_settings(Settings(session_secret="s" * 40))
    assert isinstance(auth, SignedTokenAuth)
    for holder in ("holder:alice@example", "holder:holder", "holder:holder:x"):
        assert auth.authenticate(request_with(session_cookie(auth, "acct_1", holder)), "acct_1") == holder


def request_with(cookies: dict[str, str], query: str = "") -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": query.encode(),
             "headers": [(b"cookie", header.encode())] if header else []}  # fmt: skip
    return Request(scope)


def session_cookie(auth: SignedTokenAuth, account_id: str, holder: str = "holder:holder") -> dict[str, str]:
    response = Response()
    auth.remember(response, account_id, holder)
    raw = response.headers["set-cookie"]
    name, _, rest = raw.partition("=")
    return {name: rest.split(";", 1)[0]}


def test_a_session_outlives_a_slow_holder_but_a_start_token_does_not() -> None:
    auth = from_settings(Settings(session_secret="s" * 40))
    assert isinstance(auth, SignedTokenAuth)
    with freeze_time(START) as frozen:
        token = auth.token_for("acct_1")
        cookies = session_cookie(auth, "acct_1")
        frozen.tick(timedelta(minutes=45))  # filling Stripe's form takes a while
        assert auth.authenticate(request_with(cookies), "acct_1") == "holder:holder"
        assert auth.authenticate(request_with({}, f"token={token}"), "acct_1") is None  # short-lived
        frozen.tick(timedelta(days=2))
        assert auth.authenticate(request_with(cookies), "acct_1") is None


def test_the_cookie_is_per_account_http_only_and_secure_behind_https() -> None:
    plain = from_settings(Settings(session_secret="s" * 40))
    secure = from_settings(
        Settings(session_secret="s" * 40, public_base_url="https://pay.example.com"),
    )
    assert isinstance(plain, SignedTokenAuth) and isinstance(secure, SignedTokenAuth)
    for auth, wanted in ((plain, False), (secure, True)):
        response = Response()
        auth.remember(response, "acct_1", "holder:holder")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}_acct_1=") and "HttpOnly" in cookie
        assert ("Secure" in cookie) is wanted
    assert cookie_name("acct_1") != cookie_name("acct_2")
    assert cookie_name("acct_1; Path=/") is None  # no header injection through the path


def test_a_hook_written_for_the_old_remember_still_works() -> None:
    """0.3's ``remember(response, account_id)``: adapted, not broken by the holder argument."""
    from starlette.responses import Response

    from adapters.http.auth import compatible

    class OldHook:
        def __init__(self) -> None:
            self.remembered: list[str] = []

        def authenticate(self, request: object, account_id: str) -> str | None:
            return "user:1"

        def remember(self, response: Response, account_id: str) -> None:
            self.remembered.append(account_id)

    old = OldHook()
    hook = compatible(old)
    hook.remember(Response(), "acct_1", "user:1")
    assert old.remembered == ["acct_1"] and hook.authenticate(None, "acct_1") == "user:1"  # type: ignore[arg-type]
