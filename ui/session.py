"""This session's trained models, and training with a live progress display.

Trained models live in `st.session_state` (they are the user's own and not picklable), keyed by
the config's stable key, so returning to a config already trained is instant. Every run is also
written to the local run store (ui/stored_runs.py) when it completes, is cancelled or diverges, so
it outlives the session; a config already in the store is opened from disk instead of trained
again. Datasets are plain arrays and go through `st.cache_data`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from models.config import ConfigError, ExperimentConfig
from models.datasets import Dataset, load_dataset
from models.engine import TrainResult, settle_results, train_many
from models.keras_datasets import DatasetUnavailable
from models.run_store import RunUnavailable, StoredRun
from models.run_table import architecture_text
from ui import stored_runs

MAX_RUNS = 32  # trained models kept per session; the oldest is dropped first
_RUNS = "trained_runs"


def runs() -> OrderedDict[str, TrainResult]:
    """The session's trained runs, oldest first."""
    return st.session_state.setdefault(_RUNS, OrderedDict())


def remember(result: TrainResult, store_id: str | None = None, persist: bool = True) -> None:
    """Keep `result` in this session and, unless `persist` is False or it is stored already, in the run
    store (under `store_id` when its training was begun there)."""
    if persist and result.run_id is None:
        stored_runs.finish(store_id, result, run_label(result))
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
                                 architecture=config.architecture, csv_task=config.csv_task, data_id=config.data_id,
                                 loss=config.loss)  # a regression must say "mse" to be valid
    try:
        return cached_dataset(data_only)
    except DatasetUnavailable as err:
        st.error(str(err))
        return None


def _progress_text(label: str, partials: list[TrainResult], epochs: int) -> tuple[float, str]:
    epoch = max(len(p.history) for p in partials)
    parts = []
    for p in partials:
        name = p.config.activation if len(partials) > 1 else "train loss"
        loss = f"{p.history.train_loss[-1]:.4f}" if len(p.history) else "-"
        parts.append(f"{name} {'diverged' if p.status == 'diverged' else loss}")
    return epoch / epochs, f"{label}: epoch {epoch}/{epochs} · " + ", ".join(parts)


def train_together(
    configs: list[ExperimentConfig],
    label: str = "Training",
    on_update: Callable[[list[TrainResult]], None] | None = None,
    updates: int = 20,
) -> list[TrainResult] | None:
    """Results for `configs`: from this session's store, the missing ones trained now side by side.

    Args:
        configs: what to train; they must share data, seed, batch size and epochs.
        label: text beside the progress bar.
        on_update: redraws live charts; called about `updates` times during training.
        updates: how many times to call `on_update`.

    Returns:
        One result per config (also stored), or None when the data could not be loaded.
    """
    missing = [c for c in configs if c.key() not in runs() and not _reopen_stored(c)]
    if missing:
        dataset = dataset_or_error(missing[0])
        if dataset is None:
            return None
        epochs = missing[0].epochs
        bar = st.progress(0.0, text=f"{label}: compiling...")
        every = max(1, epochs // updates)

        latest: list[TrainResult] = []

        def report(partials: list[TrainResult]) -> None:
            # Every Streamlit call here is also where a widget change interrupts the run.
            latest[:] = partials
            fraction, text = _progress_text(label, partials, epochs)
            bar.progress(fraction, text=text)
            epoch = max(len(p.history) for p in partials)
            if on_update is not None and epoch and (epoch % every == 0 or epoch == epochs):
                on_update(partials)

        ids = {c.key(): stored_runs.begin(c, config_label(c)) for c in missing}
        try:
            for result in train_many(missing, dataset, on_epoch=report):
                remember(result, store_id=ids[result.config.key()])
        except BaseException:  # a widget change (Streamlit's rerun) or an error: keep what was trained
            _store_cancelled(latest, ids)
            raise
        bar.empty()
    return [runs()[c.key()] for c in configs]


def _reopen_stored(config: ExperimentConfig) -> bool:
    """Open a completed stored run of `config` into the session instead of training it again."""
    row = stored_runs.reusable(config)
    if row is None:
        return False
    try:
        remember(stored_runs.load(row.run_id), persist=False)
    except RunUnavailable:
        return False  # damaged files: train it again
    return True


def _store_cancelled(partials: list[TrainResult], ids: dict[str, str | None]) -> None:
    """Write runs stopped mid-training as cancelled at their last whole epoch (or drop them before one).

    Runs whose first report never came are dropped too. Never raises: the interruption that brought us
    here must go on.
    """
    reported = {p.config.key() for p in partials}
    try:
        for partial in partials:
            settle_results([partial], "cancelled")
            stored_runs.finish(ids.get(partial.config.key()), partial, run_label(partial))
        for key, run_id in ids.items():
            if key not in reported:
                stored_runs.discard(run_id)
    except Exception as err:  # the store is a convenience here; losing a cancelled run is not an error
        st.session_state["_store_error"] = f"A cancelled run could not be stored: {err}"


def train_live(
    config: ExperimentConfig,
    label: str = "Training",
    on_update: Callable[[TrainResult], None] | None = None,
    updates: int = 20,
) -> TrainResult | None:
    """The run for `config`: from this session's store, or trained now with a progress bar."""
    update = None if on_update is None else (lambda partials: on_update(partials[0]))
    results = train_together([config], label, update, updates)
    return None if results is None else results[0]


def _memo_store() -> OrderedDict:
    return st.session_state.setdefault("_memo", OrderedDict())


def memoised(key: tuple) -> bool:
    """Whether `memo` already holds a result for `key`."""
    return key in _memo_store()


def memo(key: tuple, compute: Callable[[], object]):
    """Session-level cache for results computed from this session's models (not picklable, so
    not st.cache_data); keyed by the model's config key and the view's settings."""
    store = _memo_store()
    if key not in store:
        store[key] = compute()
        while len(store) > 64:
            store.popitem(last=False)
    return store[key]


def config_label(c: ExperimentConfig) -> str:
    """The run's name before it has results: "circle · 2x8 tanh · adam 0.03"."""
    return f"{c.dataset} · {architecture_text(c)} · {c.optimizer} {c.learning_rate:g}"


def run_label(result: TrainResult) -> str:
    """A short readable name: "circle · 2x8 tanh · adam 0.03 · 100% test"."""
    accuracy = f"{result.history.test_acc[-1]:.0%} test" if len(result.history) else result.status
    if len(result.history) and result.config.task == "regression":
        accuracy = f"test MSE {result.history.test_loss[-1]:.3g}"
    return f"{config_label(result.config)} · {accuracy}"


# Fields named, in this order, when two runs would otherwise share a label.
_TELLING_FIELDS = ("batch_size", "epochs", "seed", "n_samples", "noise", "train_fraction", "lr_schedule", "l1",
                   "l2", "dropout", "loss", "optimizer_options", "kernel_size")


def run_labels(results: list[TrainResult]) -> dict[str, str]:
    """Config key -> readable label for `results`, unique: runs that share a short label get the
    settings that tell them apart appended (e.g. "· batch 8" and "· batch 512")."""
    short = {r.config.key(): run_label(r) for r in results}
    labels = {}
    for r in results:
        twins = [t for t in results if short[t.config.key()] == short[r.config.key()]]
        extra = []
        if len(twins) > 1:
            for field in _TELLING_FIELDS:
                values = {repr(getattr(t.config, field)) for t in twins}
                if len(values) > 1:
                    extra.append(f"{field.replace('_', ' ')} {getattr(r.config, field)}")
        labels[r.config.key()] = " · ".join([short[r.config.key()], *extra])
    return labels


def trained_runs() -> list[TrainResult]:
    """This session's runs with at least one finished epoch, newest first."""
    return [r for r in reversed(runs().values()) if len(r.history)]


def select_run(key: str, result: TrainResult) -> None:
    """Make `result` the selection of the model picker `key` on its next draw, and say so in a toast."""
    st.session_state[key] = result.config.key()
    st.toast(f"Trained and selected: {run_label(result)}")


def model_picker(key: str, default: ExperimentConfig, default_note: str, label: str = "Model") -> TrainResult | None:
    """A picker of this session's trained models, newest first, then the stored ones; returns the chosen run.

    A new session starts on the page's own `default` (a first visit must show what the page is about, not
    the newest stored run of another page): opened from the store when it was trained before, else trained
    now with a progress bar; `default_note` says what that model is. A stored run is read from disk only
    when chosen. Returns None only when nothing can be shown (the reason is shown).
    """
    results = trained_runs()
    if not results:  # a new session: the page's own default first (reopened from the store when it is there)
        if stored_runs.reusable(default) is None:
            st.info(f"No model trained yet, so this page trains its own default first: {default_note}. "
                    "Models you train on any page appear in the picker below, newest first.")
        if train_live(default, label="Training the default model") is None:
            return None
        results = trained_runs()
        if not results:  # the default diverged in its first epoch: nothing to show
            st.error("The default model diverged in its first epoch; train a model in the sidebar or another page.")
            return None
    stored = _stored_choices(results)
    labels = run_labels(results)
    labels.update({k: f"{row.name} · stored" for k, row in stored.items()})
    if st.session_state.get(key) not in labels:
        st.session_state.pop(key, None)  # the run it named was forgotten: fall back to the newest
    chosen = st.selectbox(label, list(labels), format_func=labels.get, key=key,
                          help="This session's models first, newest first, then runs stored on this computer "
                               "(the Runs page lists and compares them).")
    if chosen in runs():
        return runs()[chosen]
    return open_stored(stored[chosen])


def _stored_choices(session_results: list[TrainResult]) -> dict[str, StoredRun]:
    """Stored runs that can be opened and are not in the session, by config key (newest of each config); runs
    whose settings this version cannot read (stored by another version) are left out."""
    in_session = {r.config.key() for r in session_results}
    choices: dict[str, StoredRun] = {}
    for row in stored_runs.stored_runs():
        new = row.config_key not in in_session and row.config_key not in choices
        if new and row.openable and can_read_settings(row):
            choices[row.config_key] = row
    return choices


def can_read_settings(row: StoredRun) -> bool:
    """Whether this version can read a stored run's config (one stored by a newer version may have new fields)."""
    try:
        return row.config is not None
    except (ConfigError, TypeError, ValueError):  # as the Runs table reads it (models/run_table.py)
        return False


def open_stored(row: StoredRun) -> TrainResult | None:
    """Read a stored run into this session (with a spinner), or say why it cannot be and return None."""
    try:
        with st.spinner(f"Opening {row.name}..."):
            result = stored_runs.load(row.run_id)
    except RunUnavailable as err:
        st.warning(f"This stored run cannot be opened: {err} Pick another, or delete it on the Runs page.")
        return None
    remember(result, persist=False)
    return result
