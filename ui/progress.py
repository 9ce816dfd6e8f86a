"""Chunked computations shown with a progress bar and a time estimate.

Each chunk ends with a Streamlit call, which is where a widget change interrupts the work.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import streamlit as st


def collect_with_progress(chunks: Iterable[np.ndarray], total: int, label: str) -> np.ndarray:
    """Concatenate `chunks` (row blocks adding up to `total` rows) while showing progress and time left."""
    bar = st.progress(0.0, text=f"{label}: starting...")
    start, done, parts = time.perf_counter(), 0, []
    for block in chunks:
        parts.append(block)
        done += len(block)
        elapsed = time.perf_counter() - start
        left = elapsed / done * (total - done)
        bar.progress(done / total, text=f"{label}: {done}/{total} points, about {left:.0f} s left")
    bar.empty()
    return np.concatenate(parts)


def estimate_note(seconds: float) -> str:
    """How long something will take, in words."""
    return f"about {seconds:.0f} s" if seconds >= 1 else "under a second"
