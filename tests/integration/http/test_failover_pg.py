"""A PostgreSQL failover, as the webhook endpoint sees it: the driver raises
``AdminShutdown`` / ``CannotConnectNow`` on the webhook's read (the account
load) or on its write (the inbox row), and Stripe is answered 503 so it
retries — never a 500. The errors are real ones: PostgreSQL raises them
(``RAISE ... USING ERRCODE``) from a view the load reads and a trigger on the
inbox insert, so psycopg builds them exactly as it does in a failover.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from adapters.stripe_wire.signing import sign
from onboarding_fsm import FakeClock
from onboarding_fsm.errors import StoreUnavailable
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from tests.integration.http.conftest import Stack, make_stack

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_stack(pg_url: str, clock: FakeClock) -> Iterator[Stack]:
    s = make_stack(pg_url, clock)
    yield s
    s.stop()


def _ddl(stack: Stack, *statements: str) -> None:
    with stack.store.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def _raising(name: str, errcode: str, returns: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS {returns} LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION 'failover drill' USING ERRCODE = '{errcode}'; END $$"
    )


def _delivery(stack: Stack, account: str) -> httpx.Response:
    created = int(stack.clock.now().timestamp())
    event = {"id": f"evt_{account}", "object": "event", "type": "account.updated", "account": account,
             "created": created, "livemode": False, "data": {"object": {"id": account, "object": "account"}}}  # fmt: skip
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign(body, SIMULATOR_WEBHOOK_SECRET, created)}
    return httpx.post(stack.platform.url + "/webhooks/stripe", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize("errcode", ["admin_shutdown", "cannot_connect_now"])
def test_a_failover_on_the_webhooks_read_is_503(pg_stack: Stack, errcode: str) -> None:
    """The account load (a SELECT, cache miss) fails the way a restarting server fails it."""
    _ddl(
        pg_stack,
        "ALTER TABLE ofsm_accounts RENAME TO ofsm_accounts_real",
        _raising("failover_drill", errcode, "SETOF ofsm_accounts_real"),
        "CREATE VIEW ofsm_accounts AS SELECT * FROM failover_drill()",
    )
    with pytest.raises(StoreUnavailable), pg_stack.store.write() as tx:  # the store's own answer
        tx.load("acct_unknown")
    answer = _delivery(pg_stack, "acct_unknown")
    assert answer.status_code == 503, answer.text
    assert answer.json()["kind"] == "StoreUnavailable"
    _ddl(pg_stack, "DROP VIEW ofsm_accounts", "ALTER TABLE ofsm_accounts_real RENAME TO ofsm_accounts")
    again = _delivery(pg_stack, "acct_unknown")  # Stripe's retry, once the database is back
    assert (again.status_code, again.json()["outcome"]) == (200, "ignored")


@pytest.mark.parametrize("errcode", ["admin_shutdown", "cannot_connect_now"])
def test_a_failover_on_the_webhooks_write_is_503(pg_stack: Stack, errcode: str) -> None:
    """The inbox insert (sent with the commit on PostgreSQL) fails mid-failover."""
    _ddl(
        pg_stack,
        _raising("failover_drill", errcode, "trigger"),
        "CREATE TRIGGER failover_drill BEFORE INSERT ON ofsm_webhook_events FOR EACH ROW EXECUTE FUNCTION failover_drill()",
    )
    answer = _delivery(pg_stack, "acct_other")
    assert answer.status_code == 503, answer.text
    assert answer.json()["kind"] == "StoreUnavailable"
    assert list(pg_stack.engine.inbox()) == []
    _ddl(pg_stack, "DROP TRIGGER failover_drill ON ofsm_webhook_events")
    again = _delivery(pg_stack, "acct_other")
    assert (again.status_code, again.json()["outcome"]) == (200, "ignored")


def test_the_driver_raises_the_failover_classes(pg_stack: Stack) -> None:
    """The drill's errors are psycopg's own failover classes, not look-alikes."""
    import psycopg

    _ddl(pg_stack, _raising("failover_drill", "admin_shutdown", "void"))
    with pytest.raises(sa.exc.OperationalError) as caught, pg_stack.store.engine.connect() as conn:
        conn.exec_driver_sql("SELECT failover_drill()")
    assert isinstance(caught.value.orig, psycopg.errors.AdminShutdown)
