"""One Stripe call's budget: retries only while their wait still fits."""

from __future__ import annotations

import pytest

from adapters.stripe.budget import RetryBudget


def test_one_sdk_call_gets_half_the_budget_shared_by_its_attempts() -> None:
    budget = RetryBudget(total=30.0)
    assert budget.attempt_timeout(30.0, sdk_retries=2) == pytest.approx(5.0)
    assert budget.attempt_timeout(2.0, sdk_retries=2) == 2.0  # a shorter configured timeout wins


@pytest.mark.parametrize(
    ("attempt", "elapsed", "expected"),
    [
        (0, 0.0, 0.5),
        (3, 5.0, 4.0),
        (4, 0.0, None),  # no retry left
        (2, 8.5, None),  # the retry could not end within the budget
        (0, 10.0, None),
    ],
)
def test_a_retry_starts_only_if_its_wait_fits(attempt: int, elapsed: float, expected: float | None) -> None:
    assert RetryBudget(total=20.0).delay(attempt, elapsed) == expected


@pytest.mark.parametrize("first_call", [0.05, 1.0, 9.99, 10.0])
def test_a_failing_stripe_is_given_up_within_the_budget(first_call: float) -> None:
    """Whatever each SDK call takes (at most its half of the budget), the
    retries end within the budget: before, 15 attempts x 30 s = 7.5 min."""
    budget = RetryBudget(total=20.0)
    worst_call = budget.attempt_timeout(30.0, sdk_retries=2) * 3  # the SDK's 3 attempts, each timing out
    elapsed, attempt = min(first_call, worst_call), 0
    while (wait := budget.delay(attempt, elapsed)) is not None:
        elapsed += wait + worst_call
        attempt += 1
    assert elapsed <= budget.total
