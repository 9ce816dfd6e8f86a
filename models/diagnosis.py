"""Did a model learn? A plain check against chance, so pages never caption an untrained network as if it had.

A regression run has no accuracy (its history holds NaN there): only its loss is checked, against the
loss of always predicting the mean target (the targets' variance).
"""

from __future__ import annotations

import math

import numpy as np

from models.activation_lab import layer_health
from models.config import DEFAULT_FEATURES, ExperimentConfig
from models.engine import TrainResult

# Test accuracy within this many points of chance counts as "did not learn" (issue: warn, don't narrate).
NEAR_CHANCE_MARGIN = 0.10


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always guessing the most common class of `labels` (0.25 on 4 balanced classes)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("chance_accuracy needs at least one label; got an empty array.")
    return float(np.bincount(labels.astype("int64")).max() / labels.size)


def near_chance(test_accuracy: float, labels: np.ndarray, margin: float = NEAR_CHANCE_MARGIN) -> bool:
    """True when `test_accuracy` is less than `margin` above chance on `labels` (the test set's).

    A NaN accuracy (regression) means there is no accuracy to check: False.
    """
    if math.isnan(test_accuracy):
        return False
    return test_accuracy < chance_accuracy(labels) + margin


def not_learned_message(test_accuracy: float, labels: np.ndarray, architecture: str, batch_norm: bool,
                        learning_rate: float) -> str | None:
    """A plain warning with what to try when the model stayed near chance; None when it learned."""
    if not near_chance(test_accuracy, labels):
        return None
    tips = [f"a smaller learning rate (now {learning_rate:g})", "more epochs"]
    if architecture == "cnn" and not batch_norm:
        tips.insert(0, "batch normalisation")
    return f"{_not_learned_head(test_accuracy, labels)} {_try(tips)}"


def _not_learned_head(test_accuracy: float, labels: np.ndarray, random_start: bool = True) -> str:
    head = (f"This model did not learn: test accuracy {test_accuracy:.0%} against {chance_accuracy(labels):.0%} "
            f"for always guessing the commonest class")
    return head + (", so what is shown of it here is mostly its random start, not what a trained network does."
                   if random_start else ".")


def _try(tips: list[str]) -> str:
    return f"Try {', '.join(tips[:-1])} or {tips[-1]}." if len(tips) > 1 else f"Try {tips[0]}."


# The training loss counts as stuck at chance when none of the last STUCK_EPOCHS epochs got more than
# STUCK_MARGIN (relative) below the loss of the best constant guess.
STUCK_EPOCHS = 5
STUCK_MARGIN = 0.02


def chance_loss(labels: np.ndarray, loss: str, n_classes: int) -> float:
    """Mean data loss of the best prediction that ignores the input: the class shares of `labels`.

    A network whose output is constant can do no better than this: ln(2) = 0.693 for two balanced
    classes with cross-entropy, 0.25 with mean squared error (on the one-hot targets, averaged over classes).
    For regression (`n_classes == 0`, `labels` the targets) the best constant is the mean target, whose
    squared error is the targets' variance.
    """
    if np.asarray(labels).size == 0:
        raise ValueError("chance_loss needs at least one label; got an empty array.")
    if n_classes == 0:
        if loss != "mse":
            raise ValueError(f"chance_loss of a regression knows only the loss 'mse'; got {loss!r}.")
        return float(np.var(np.asarray(labels, dtype="float64")))
    labels = np.asarray(labels).astype("int64")
    shares = np.bincount(labels, minlength=n_classes) / labels.size
    if loss == "cross_entropy":
        present = shares[shares > 0]
        return float(-np.sum(present * np.log(present)))
    if loss == "mse":
        return float(np.sum(shares * (1 - shares)) / n_classes)
    raise ValueError(f"chance_loss knows the losses 'cross_entropy' and 'mse'; got {loss!r}.")


def loss_stuck_at_chance(train_loss: list[float], chance: float, epochs: int = STUCK_EPOCHS,
                         margin: float = STUCK_MARGIN) -> bool:
    """True when each of the last `epochs` training losses is no better than `chance` (within `margin`)."""
    if len(train_loss) < epochs:
        return False
    return min(train_loss[-epochs:]) >= chance * (1 - margin)


def dead_layers(result: TrainResult) -> list[str]:
    """Names of the hidden activation layers in which every unit is dead on the training set.

    A unit is dead when its activation's slope is ~0 for every training input (models.activation_lab's
    layer health): such a layer outputs the same values whatever the input, and passes no gradient back.
    """
    return [health.layer for health in layer_health(result) if health.dead == 1.0]


def _layer_words(name: str) -> str:
    """`act_3` -> "hidden layer 3", `conv_act_2` -> "conv layer 2": names a user sees in the sidebar."""
    index = name.rsplit("_", 1)[-1]
    return f"conv layer {index}" if name.startswith("conv_") else f"hidden layer {index}"


def dying_message(result: TrainResult) -> str | None:
    """What went wrong when a layer died or the loss never left chance, with what to try; None otherwise."""
    h, c, data = result.history, result.config, result.dataset
    chance = chance_loss(data.y_train, c.loss, data.n_classes)
    regression = data.task == "regression"
    # A slow start (plain SGD after a few epochs) can sit at the chance loss while the accuracy already
    # climbs: only a run whose predictions are no better than a guess either is stuck. Regression has
    # no accuracy; its loss alone decides.
    stuck = loss_stuck_at_chance(h.train_loss, chance) and (regression or near_chance(h.train_acc[-1], data.y_train))
    dead = dead_layers(result)
    if not dead and not stuck:
        return None
    parts = []
    if dead:
        names = " and ".join(_layer_words(name) for name in dead)
        it, outputs, passes = ("they", "output", "pass") if len(dead) > 1 else ("it", "outputs", "passes")
        parts.append(
            f"Every unit of {names} has zero slope for every training input, so {it} {outputs} the same values "
            f"whatever the input and {passes} no gradient back: the layers before cannot learn any more"
            + (" (ReLU units whose inputs all went negative output 0 for good: \"dying ReLU\")."
               if _uses_relu(c) else "."))
    if stuck:
        guess = "predicting the mean target" if regression else "guessing the class shares"
        parts.append(f"The training loss stayed at {h.train_loss[-1]:.3f} for the last {STUCK_EPOCHS} epochs, no "
                     f"better than {chance:.3f}, the loss of ignoring the input and {guess}.")
    return " ".join([*parts, _try(_dying_tips(result.config, bool(dead)))])


def _dying_tips(c: ExperimentConfig, dead: bool) -> list[str]:
    if set(c.hidden_activations()) <= {"linear"}:  # also true without hidden layers
        shape = "fit a flat plane" if c.task == "regression" else "draw a straight boundary"
        if c.input_features != DEFAULT_FEATURES:
            shape += " in its input features"
        return ["a non-linear activation with at least one hidden layer: without both, the network can only "
                f"{shape}"]
    tips = [f"a lower learning rate (now {c.learning_rate:g})"]
    if _uses_relu(c):
        tips.append("leaky_relu, whose units keep a small slope for negative inputs")
    if dead and len(c.hidden_layers) > 1:
        tips.append(f"fewer hidden layers (now {len(c.hidden_layers)})")
    return tips


def _uses_relu(c: ExperimentConfig) -> bool:
    return c.activation == "relu" or "relu" in c.hidden_activations()


def learning_warning(result: TrainResult) -> str | None:
    """One warning for a run that stayed near chance, lost a whole layer or never beat a constant guess."""
    h, c, labels = result.history, result.config, result.dataset.y_test
    dying = dying_message(result)
    if dying is None:
        return not_learned_message(h.test_acc[-1], labels, c.architecture, c.batch_norm, c.learning_rate)
    if not near_chance(h.test_acc[-1], labels):
        return dying
    return f"{_not_learned_head(h.test_acc[-1], labels, random_start=False)} {dying}"
