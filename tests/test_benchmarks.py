"""The benchmark harness itself (issue 15): rows pass or miss as their targets say, `main` exits 1 on a miss,
the FLOP count behind the surfaces' share of peak matches a hand count, and the Feature Hierarchy row's
budget falls back to a share of the peak only where the measured peak cannot meet the 10 s."""

import keras
import pytest

from benchmarks import __main__ as bench_main
from benchmarks.bench_landscape import FH_BUDGET_S, PEAK_SHARE_TARGET, fh_budget, forward_flops
from benchmarks.common import Row


def test_row_misses_on_ratio_or_budget():
    assert Row("a", "b", 2.0, 1.0, 1.5).ok
    assert not Row("a", "b", 2.0, 1.0, 2.5).ok  # ratio 2.0 under target 2.5
    assert not Row("a", "b", 2.0, 1.0, 1.5, budget_ok=False).ok


def test_main_exits_one_on_a_miss_and_zero_otherwise(monkeypatch, capsys):
    monkeypatch.setattr(bench_main, "device_line", lambda: "device: test")
    monkeypatch.setattr(bench_main, "SUITES", {"good": lambda: [Row("fast", "slow", 2.0, 1.0, 1.5)],
                                               "bad": lambda: [Row("slow", "fast", 1.0, 2.0, 1.5)]})
    assert bench_main.main(["good"]) == 0
    assert bench_main.main([]) == 1
    out = capsys.readouterr().out
    assert out.startswith("device: test") and "NO" in out


def test_forward_flops_match_a_hand_count():
    """Reference: 2 x kh x kw x C_in x C_out x H_out x W_out per conv, 2 x in x out per dense."""
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(16, 3, padding="valid")(h)  # 4x4 -> 2x2
    h = keras.layers.Flatten()(h)
    model = keras.Model(inputs, keras.layers.Dense(10)(h))
    expected = 2 * 9 * 1 * 8 * 8 * 8 + 2 * 9 * 8 * 16 * 2 * 2 + 2 * 64 * 10
    assert forward_flops(model) == expected


def test_feature_hierarchy_budget_is_ten_seconds_where_the_peak_allows():
    flops = 26.8e12
    fast_peak = flops / FH_BUDGET_S / PEAK_SHARE_TARGET / 1e9 * 1.01  # just fast enough (a GPU, say)
    assert fh_budget(flops, fast_peak)[0] == FH_BUDGET_S
    budget, why = fh_budget(flops, 400.0)  # this project's 2-core CPU
    assert budget == pytest.approx(flops / (PEAK_SHARE_TARGET * 400e9))
    assert budget > FH_BUDGET_S and "of the peak instead" in why
