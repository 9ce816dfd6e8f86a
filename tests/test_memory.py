"""Training many models in one process (a long-lived server) must not keep each one's traced graphs.

Before the EpochRunner released what tracing leaves in TensorFlow's global state, every `train()` kept
3 FuncGraphs and ~3.5 MB for good; 100 small trainings grew the process by ~350 MB.
"""

import gc
import os

import pytest
from tensorflow.python.framework.func_graph import FuncGraph

from models.config import ExperimentConfig
from models.engine import train, train_many

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_mb() -> float:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


def _live_func_graphs() -> int:
    gc.collect()
    return sum(isinstance(o, FuncGraph) for o in gc.get_objects())


def _train_small(seed: int) -> None:
    train(ExperimentConfig(dataset="circle", n_samples=100, epochs=2, hidden_layers=(8, 8), seed=seed))


def test_live_func_graphs_do_not_grow_with_trainings():
    for seed in range(3):
        _train_small(seed)
    before = _live_func_graphs()
    for seed in range(3, 13):
        _train_small(seed)
    train_many([ExperimentConfig(dataset="circle", n_samples=100, epochs=2, activation=a) for a in ("relu", "tanh")])
    assert _live_func_graphs() <= before


def test_graphs_are_freed_when_a_progress_callback_interrupts_training():
    class Interrupted(Exception):  # how Streamlit stops a run when a widget changes
        pass

    def interrupt(_result):
        raise Interrupted

    _train_small(0)
    before = _live_func_graphs()
    for seed in range(5):
        config = ExperimentConfig(dataset="circle", n_samples=100, epochs=3, hidden_layers=(8, 8), seed=seed)
        with pytest.raises(Interrupted):
            train(config, on_epoch=interrupt)
    assert _live_func_graphs() <= before


def test_rss_stays_flat_over_100_trainings():
    for seed in range(10):  # warm-up: first traces, allocator pools, lazily loaded TF kernels
        _train_small(seed)
    start = _rss_mb()
    for seed in range(10, 110):
        _train_small(seed)
    growth = _rss_mb() - start
    assert growth < 50, f"RSS grew by {growth:.1f} MB over 100 trainings"
