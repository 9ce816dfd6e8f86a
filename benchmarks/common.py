"""Timing helpers and the result table shared by every benchmark."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One comparison: our code against a baseline measured in the same run."""

    name: str  # what is compared
    baseline: str  # what the baseline is
    baseline_s: float  # baseline wall time, seconds
    ours_s: float  # our wall time, seconds
    target: float  # the speed-up the project promises (ratio must be at least this)
    note: str = ""  # extra figures (e.g. GFLOP/s)
    budget_ok: bool = True  # absolute targets the row must also meet (a time budget, an accuracy floor)

    @property
    def ratio(self) -> float:
        return self.baseline_s / self.ours_s

    @property
    def ok(self) -> bool:
        return self.ratio >= self.target and self.budget_ok


def best_of(fn: Callable[[], object], repeats: int = 1) -> float:
    """Smallest wall time of `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def print_table(rows: list[Row]) -> None:
    header = f"{'benchmark':46} {'baseline':34} {'base s':>8} {'ours s':>8} {'ratio':>7} {'target':>7}  ok"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.name:46} {r.baseline:34} {r.baseline_s:8.2f} {r.ours_s:8.2f} {r.ratio:6.1f}x {r.target:6.1f}x  "
              f"{'yes' if r.ok else 'NO'}{'  ' + r.note if r.note else ''}")
