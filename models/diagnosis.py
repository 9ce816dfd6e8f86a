"""Did a model learn? A plain check against chance, so pages never caption an untrained network as if it had."""

from __future__ import annotations

import numpy as np

# Test accuracy within this many points of chance counts as "did not learn" (issue: warn, don't narrate).
NEAR_CHANCE_MARGIN = 0.10


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always guessing the most common class of `labels` (0.25 on 4 balanced classes)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("chance_accuracy needs at least one label; got an empty array.")
    return float(np.bincount(labels.astype("int64")).max() / labels.size)


def near_chance(test_accuracy: float, labels: np.ndarray, margin: float = NEAR_CHANCE_MARGIN) -> bool:
    """True when `test_accuracy` is less than `margin` above chance on `labels` (the test set's)."""
    return test_accuracy < chance_accuracy(labels) + margin


def not_learned_message(test_accuracy: float, labels: np.ndarray, architecture: str, batch_norm: bool,
                        learning_rate: float) -> str | None:
    """A plain warning with what to try when the model stayed near chance; None when it learned."""
    if not near_chance(test_accuracy, labels):
        return None
    tips = [f"a smaller learning rate (now {learning_rate:g})", "more epochs"]
    if architecture == "cnn" and not batch_norm:
        tips.insert(0, "batch normalisation")
    return (f"This model did not learn: test accuracy {test_accuracy:.0%} against {chance_accuracy(labels):.0%} "
            f"for always guessing the commonest class, so what is shown of it here is mostly its random start, "
            f"not what a trained network does. Try {', '.join(tips[:-1])} or {tips[-1]}.")
