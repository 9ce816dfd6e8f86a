"""This session's trained models, and training with a live progress display.

Trained models live in `st.session_state` (they are the user's own and not picklable), keyed by
the config's stable key, so returning to a config already trained is instant. Datasets are plain
arrays and go through `st.cache_data`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from models.config import ExperimentConfig
from models.datasets import Dataset, load_dataset
from models.engine import TrainResult, train
from models.keras_datasets import DatasetUnavailable

MAX_RUNS = 16  # trained models kept per session; the oldest is dropped first
_RUNS = "trained_runs"


def runs() -> OrderedDict[str, TrainResult]:
    """The session's trained runs, oldest first."""
    return st.session_state.setdefault(_RUNS, OrderedDict())


def remember(result: TrainResult) -> None:
    store = runs()
    store[result.config.key()] = result
    store.move_to_end(result.config.key())
    while len(store) > MAX_RUNS:
        store.popitem(last=False)


@st.cache_data(show_spinner="Preparing data...", max_entries=32)
def cached_dataset(config: ExperimentConfig) -> Dataset:
    """The dataset for `config`; keyed only by the fields that shape the data."""
    return load_dataset(config)


def dataset_or_error(config: ExperimentConfig) -> Dataset | None:
    """The dataset, or None after an st.error saying why it cannot be had (e.g. offline)."""
    data_only = ExperimentConfig(dataset=config.dataset, n_samples=config.n_samples, noise=config.noise,
                                 train_fraction=config.train_fraction, seed=config.seed,
                                 architecture=config.architecture)
    try:
        return cached_dataset(data_only)
    except DatasetUnavailable as err:
        st.error(str(err))
        return None


def train_live(
    config: ExperimentConfig,
    label: str = "Training",
    on_update: Callable[[TrainResult], None] | None = None,
    updates: int = 20,
) -> TrainResult | None:
    """The run for `config`: from this session's store, or trained now with a progress bar.

    Args:
        config: what to train.
        label: text beside the progress bar.
        on_update: redraws live charts; called about `updates` times during training.
        updates: how many times to call `on_update`.

    Returns:
        The result (also stored), or None when the data could not be loaded.
    """
    key = config.key()
    if key in runs():
        return runs()[key]
    dataset = dataset_or_error(config)
    if dataset is None:
        return None
    bar = st.progress(0.0, text=f"{label}: compiling...")
    every = max(1, config.epochs // updates)

    def report(partial: TrainResult) -> None:
        # Every Streamlit call here is also where a widget change interrupts the run.
        epoch = len(partial.history)
        bar.progress(epoch / config.epochs, text=f"{label}: epoch {epoch}/{config.epochs}, "
                     f"train loss {partial.history.train_loss[-1]:.4f}")
        if on_update is not None and (epoch % every == 0 or epoch == config.epochs):
            on_update(partial)

    result = train(config, dataset, on_epoch=report)
    bar.empty()
    remember(result)
    return result
