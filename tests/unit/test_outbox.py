"""The outbox's pure decisions: backoff, dead letters, what an error leaves
behind, and what a re-drive may name."""

from __future__ import annotations

from datetime import timedelta

import pytest

from onboarding_fsm.config import EngineConfig, backoff
from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.outbox import MAX_ERROR, OutboxMessage, error_text, failed, redrive_ids
from tests.conftest import START

CONFIG = EngineConfig(
    outbox_retry_base=timedelta(seconds=5), outbox_retry_cap=timedelta(seconds=60), outbox_max_attempts=4
)


def message(attempts: int = 0) -> OutboxMessage:
    payload = {"type": "onboarding.transition", "account": "acct_1", "platform_ref": "seller-1", "seq": 2}
    return OutboxMessage(7, "acct_1", "transition", payload, START, attempts, START + timedelta(seconds=60))


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    waits = [CONFIG.outbox_retry_after(n) for n in range(1, 6)]
    assert waits == [timedelta(seconds=s) for s in (5, 10, 20, 40, 60)]
    assert backoff(timedelta(seconds=1), timedelta(days=1), 10_000) == timedelta(days=1), "no overflow"
    assert EngineConfig().timer_retry_after(2) == timedelta(seconds=120), "the timers' backoff is the same rule"


@pytest.mark.parametrize(("attempts", "retry_in"), [(0, 5), (1, 10), (2, 20)])
def test_a_failure_backs_off(attempts: int, retry_in: int) -> None:
    failure = failed(message(attempts), TimeoutError("consumer slow"), START, CONFIG)
    assert failure.attempts == attempts + 1
    assert (failure.retry_at, failure.dead_at) == (START + timedelta(seconds=retry_in), None)
    assert failure.last_error == "TimeoutError: consumer slow"


def test_the_last_allowed_failure_makes_a_dead_letter() -> None:
    failure = failed(message(3), ValueError("refused"), START, CONFIG)
    assert (failure.attempts, failure.retry_at, failure.dead_at) == (4, None, START)
    assert failed(message(0), ValueError("x"), START, EngineConfig(outbox_max_attempts=1)).dead_at == START


def test_the_error_kept_is_the_type_and_a_short_single_line_message() -> None:
    assert error_text(KeyError("seq")) == "KeyError: 'seq'"
    assert error_text(RuntimeError()) == "RuntimeError"
    long = error_text(RuntimeError("line one\n  line two\x00 " + "x" * 1000))
    assert long.startswith("RuntimeError: line one line two x") and "\n" not in long and "\x00" not in long
    assert len(long) == MAX_ERROR and long.endswith("…")
    assert error_text(ValueError("\ud800")) == "ValueError: ?", "a lone surrogate cannot be stored"


def test_a_redrive_names_ids_or_all() -> None:
    assert redrive_ids([3, 1, 3], every=False) == [1, 3]
    assert redrive_ids(None, every=True) is None
    for ids, every in (([], False), (None, False), ([1], True)):
        with pytest.raises(InvalidInput, match="not both and not neither"):
            redrive_ids(ids, every)
    for bad in ([0], [-1], [True]):
        with pytest.raises(InvalidInput, match="positive integers"):
            redrive_ids(bad, every=False)


def test_the_error_kept_never_holds_a_urls_credentials_or_query() -> None:
    """HTTP clients quote the URL in their errors; a consumer's token in it must
    not reach ``last_error`` (the database) or the log."""
    from onboarding_fsm.outbox import error_text

    class HTTPError(Exception):
        pass

    text = error_text(HTTPError("403 Forbidden for url: https://bob:pw@hooks.example/in?token=s3cret#x"))
    assert text == "HTTPError: 403 Forbidden for url: https://…@hooks.example/in?…"
    assert "s3cret" not in text and "pw" not in text


def test_a_redrive_of_ids_that_are_not_integers_is_a_typed_refusal() -> None:
    import pytest

    from onboarding_fsm.errors import InvalidInput
    from onboarding_fsm.outbox import redrive_ids

    for bad in (["a", 1], [True], [1.5]):
        with pytest.raises(InvalidInput):
            redrive_ids(bad, False)  # type: ignore[arg-type]
