"""Timing helpers: interleaved rounds, medians, ratios (machines here are noisy)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Figure:
    name: str
    unit: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def line(self) -> str:
        spread = f"min {min(self.samples):,.1f} max {max(self.samples):,.1f}" if len(self.samples) > 1 else ""
        return f"  {self.name:<52} {self.median:>12,.1f} {self.unit:<10} {spread}"


def rate(work: Callable[[], int]) -> float:
    """Run ``work`` (which returns how many items it did) and return items/s."""
    start = time.perf_counter()
    done = work()
    return done / (time.perf_counter() - start)


def per_call_us(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def report(
    title: str, figures: list[Figure], ratio: tuple[Figure, Figure] | None = None, goal: float | None = None
) -> None:
    print(f"\n{title}")
    for f in figures:
        print(f.line())
    if ratio:
        value = ratio[0].median / ratio[1].median
        verdict = "" if goal is None else f"  (goal >= {goal:.2f}: {'met' if value >= goal else 'NOT met'})"
        print(f"  ratio {ratio[0].name} / {ratio[1].name}: {value:.2f}{verdict}")
