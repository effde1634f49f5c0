"""One Stripe call's budget: retries only while their wait still fits."""

from __future__ import annotations

import pytest

from adapters.stripe.budget import RetryBudget


def test_attempts_share_the_budget_with_the_sdks_own_retries() -> None:
    budget = RetryBudget(total=20.0)
    assert budget.attempt_timeout(30.0, sdk_retries=2) == pytest.approx(20.0 / 3)
    assert budget.attempt_timeout(2.0, sdk_retries=2) == 2.0  # a shorter configured timeout wins


@pytest.mark.parametrize(
    ("attempt", "elapsed", "expected"),
    [
        (0, 0.0, 0.5),
        (3, 5.0, 4.0),
        (4, 0.0, None),  # no retry left
        (2, 18.5, None),  # the wait would overrun the budget
        (0, 20.0, None),
    ],
)
def test_a_retry_starts_only_if_its_wait_fits(attempt: int, elapsed: float, expected: float | None) -> None:
    assert RetryBudget(total=20.0).delay(attempt, elapsed) == expected


def test_a_black_holed_stripe_gives_up_near_the_budget() -> None:
    """Each attempt times out after its share; the retries stop inside the budget."""
    budget = RetryBudget(total=20.0)
    per_attempt = budget.attempt_timeout(30.0, sdk_retries=2) * 3  # the SDK's 3 attempts, each timing out
    elapsed, attempt = per_attempt, 0
    while (wait := budget.delay(attempt, elapsed)) is not None:
        elapsed += wait + per_attempt
        attempt += 1
    assert elapsed <= 2 * budget.total  # before: 15 attempts x 30 s = 7.5 min
