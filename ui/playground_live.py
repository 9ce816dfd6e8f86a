"""The Playground's training controls, as in TensorFlow Playground: reset, play / pause, step one epoch.

Each setting's `LiveRun` (models/live_run.py) stays in the session between reruns, so a pause keeps the
weights and the optimiser's state and Step goes on from them. A change of a data or network setting is a
new setting, so a new run from epoch 0, and it starts playing at once: a first visit shows a trained model.
The buttons act through callbacks, which Streamlit runs before the script, so the controls are drawn
already showing the new state (Pause while playing, Play while paused).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from models.config import ExperimentConfig
from models.datasets import Dataset
from models.engine import TrainResult
from models.live_run import LiveRun
from ui import stored_runs
from ui.session import config_label, remember, runs

LIVE_EVERY_S = 1.0  # seconds between live redraws while training: a redraw costs ~0.15 s, 25 epochs
MAX_LIVE_RUNS = 4  # settings whose runs stay resumable in a session; the oldest is closed first
_STORE = "pg_live_runs"
_CURRENT = "pg_live_current"  # the config key of the run the controls act on


@dataclass
class LiveState:
    """One setting's run and what the controls asked of it."""

    run: LiveRun  # the model being trained, epoch by epoch
    playing: bool = True  # train on towards the target epoch on this rerun
    steps_pending: int = 0  # single epochs asked for with Step, not trained yet
    store_id: str | None = None  # its row in the run store, begun when its first epoch starts
    twin_id: str | None = None  # a stored completed run of the same setting: this one is not stored again


def _store() -> OrderedDict[str, LiveState]:
    return st.session_state.setdefault(_STORE, OrderedDict())


def live_state(config: ExperimentConfig, dataset: Dataset) -> LiveState:
    """The session's run for `config`, created (and set playing) the first time this setting is seen."""
    store, key = _store(), config.key()
    if key not in store:
        store[key] = LiveState(LiveRun(config, dataset))
        while len(store) > MAX_LIVE_RUNS:
            old_key, old = store.popitem(last=False)
            _store_unfinished(old_key, old)
            old.run.close()
    store.move_to_end(key)
    st.session_state[_CURRENT] = key
    store[key].run.wait()  # a script interrupted by this rerun may still be finishing an epoch of this run
    return store[key]


def _begin_stored(state: LiveState) -> None:
    """List a new run in the store as running ("interrupted" if the server dies before it ends), unless
    the store already has a completed run of the same setting (a reload retrains it: one copy is enough)."""
    config = state.run.result.config
    if state.store_id is not None or state.twin_id is not None or config.key() in runs():
        return
    twin = stored_runs.reusable(config)
    if twin is not None:
        state.twin_id = twin.run_id
    else:
        state.store_id = stored_runs.begin(config, config_label(config))


def _store_unfinished(key: str, state: LiveState) -> None:
    """A run leaving the session before it reached its epochs is stored as cancelled where it stopped."""
    if state.store_id is not None and key not in runs():
        stored_runs.finish(state.store_id, state.run.detached_result("cancelled"),
                           config_label(state.run.result.config), status="cancelled")


def current_state() -> LiveState | None:
    """The run the controls act on (the one the page showed last), for widget callbacks."""
    return _store().get(st.session_state.get(_CURRENT))


def _play() -> None:
    if (state := current_state()) is not None:
        state.playing = True


def _pause() -> None:
    if (state := current_state()) is not None:
        state.playing = False


def _step() -> None:
    if (state := current_state()) is not None:
        state.playing = False
        state.steps_pending += 1


def _reset() -> None:
    """Back to epoch 0 of the same setting (the same seeded initial weights), paused."""
    store, key = _store(), st.session_state.get(_CURRENT)
    if key in store:
        old = store.pop(key)
        old.run.close()
        store[key] = LiveState(LiveRun(old.run.result.config, old.run.result.dataset), playing=False,
                               store_id=old.store_id if key not in runs() else None)


def controls_ui(slot, state: LiveState, target: int, training: bool = False) -> None:
    """Reset, Play or Pause, Step, and the epoch counter, in one row drawn into `slot`.

    Drawn twice in a run that trains: first as it will be while training (Pause live, so a click stops
    the run at the next epoch; the keys end in "_live"), then, after training, as the run ended.
    """
    run, suffix = state.run, "_live" if training else ""
    playing = training or (state.playing and run.epoch < target)
    with slot.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.button("Reset", icon=":material/replay:", key=f"pg_reset{suffix}", on_click=_reset,
                  help="Back to epoch 0: the same initial weights, untrained.")
        if playing:
            st.button("Pause", icon=":material/pause:", key=f"pg_pause{suffix}", on_click=_pause)
        else:
            st.button("Play", icon=":material/play_arrow:", key=f"pg_play{suffix}", on_click=_play,
                      disabled=run.result.status == "diverged" or run.epoch >= target,
                      help=f"Train on to epoch {target} (the Epochs setting).")
        st.button("Step", icon=":material/skip_next:", key=f"pg_step{suffix}", on_click=_step,
                  disabled=run.result.status == "diverged", help="Train one more epoch.")
        st.markdown(f"**Epoch {run.epoch}** of {target}" + (" · training" if training else ""))


def epochs_to_train(state: LiveState, target: int) -> int:
    """How many epochs this rerun trains: the pending single steps, then on to `target` while playing."""
    if state.run.result.status == "diverged":
        return 0
    return state.steps_pending + (max(0, target - state.run.epoch - state.steps_pending) if state.playing else 0)


def advance(state: LiveState, target: int, on_update: Callable[[TrainResult], None]) -> None:
    """Train what the controls asked for: pending single steps, then on to `target` while playing.

    `on_update` draws a new network's epoch 0 at once (its data and random start), then redraws the live
    charts at most every LIVE_EVERY_S seconds (a redraw of the three charts costs about 0.15 s, as much
    as 25 epochs of the default problem); the page draws the final state itself. Every epoch also updates
    a progress bar, which is where a click on Pause (or any widget) interrupts the run at an epoch boundary.
    """
    run = state.run
    epochs = epochs_to_train(state, target)
    state.steps_pending = 0
    if epochs:
        bar = st.progress(0.0, text="Training: compiling...")
        first, last_drawn = run.epoch, [0.0]
        if run.epoch == 0:  # a new network: show its data and random start at once, as TensorFlow Playground does
            on_update(run.result)
            last_drawn[0] = time.perf_counter()
            _begin_stored(state)  # after the first chart: listing the run in the store writes to disk

        def on_epoch(result: TrainResult) -> None:
            done = run.epoch - first
            loss = f" · train loss {result.history.train_loss[-1]:.4f}" if len(result.history) else ""
            bar.progress(done / epochs, text=f"Training: epoch {run.epoch}{loss}")
            if done < epochs and time.perf_counter() - last_drawn[0] >= LIVE_EVERY_S:
                on_update(result)
                last_drawn[0] = time.perf_counter()

        run.step(epochs, on_epoch=on_epoch)
        bar.empty()
    if run.epoch >= target or run.result.status == "diverged":
        state.playing = False
    finished = run.epoch == target or run.result.status == "diverged"
    if finished and run.result.config.key() not in runs():
        # Other pages list it; later steps and weight edits here leave their copy alone.
        finished_run = run.detached_result("diverged" if run.result.status == "diverged" else "completed")
        finished_run.run_id = state.twin_id  # None unless the store has this setting's run already
        remember(finished_run, store_id=state.store_id)
