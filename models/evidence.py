"""Measured evidence for the feature hierarchy: what each depth of a CNN encodes, as numbers.

Four measurements, each from the literature, all read from a conv layer's rectified feature maps:
- linear probes (Alain & Bengio 2016): how linearly decodable the class is from a layer;
- orientation tuning to sinusoidal gratings, summarised by the circular-variance orientation
  selectivity index (Ringach et al. 2002): edge detectors are sharply tuned, blob detectors are not;
- class selectivity (Morcos et al. 2018): how much a filter prefers one class over the rest;
- dataset examples (Zeiler & Fergus 2014; Olah et al. 2017, "Feature Visualization"): the images
  and receptive-field crops that drive a filter hardest.

Layer outputs always come from `models.features.layer_outputs`, a batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.features import layer_outputs, rectified_output
from models.receptive_field import ReceptiveField, crop_box, receptive_fields, window_origin

# Grating orientations used by `hierarchy_evidence`: evenly spaced over the half circle, so the
# orientation selectivity index is not biased towards any orientation.
ANGLES_DEG = tuple(range(0, 180, 15))
# Grating period in pixels: four samples of a cycle at the least, so a 3x3 filter sees a gradient.
GRATING_PERIOD = 8.0
# Crops fill the part of a receptive field that lies outside the image with this neutral grey.
PAD_GREY = 0.5


@dataclass(frozen=True)
class Example:
    """One dataset example for a filter: an image and where in it the filter peaks."""

    index: int  # index of the image in the array searched
    row: int  # row of the peak unit in the layer's feature map
    col: int  # column of the peak unit in the layer's feature map
    value: float  # the filter's activation at the peak, its maximum over the map


@dataclass(frozen=True)
class StageEvidence:
    """The four measurements for one depth of the network."""

    stage: str  # "early", "middle" or "late"
    layer: str  # the conv layer measured (its rectified output is read)
    rf_size: int  # receptive field side of one unit, in input pixels
    probe_accuracy: float  # test accuracy of a linear probe on the pooled maps, 0..1
    orientation_selectivity: float  # mean circular-variance OSI over filters, 0 (untuned) .. 1 (one orientation)
    class_selectivity: float  # mean Morcos class selectivity over filters, 0..1; NaN if the maps go negative


def pooled_features(model: keras.Model, layer_names: list[str], images: np.ndarray,
                    batch: int = 256) -> dict[str, np.ndarray]:
    """Global average pooled outputs of the named layers.

    Args:
        model: the network.
        layer_names: layers to read; spatial (N, h, w, C) outputs are averaged over h and w,
            flat (N, C) outputs are kept as they are.
        images: (N, H, W, C) inputs.
        batch: images per forward pass, to bound memory.

    Returns:
        layer name -> (N, C) float32.
    """
    parts = {name: [] for name in layer_names}
    for chunk in _batches(images, batch):
        for name, out in layer_outputs(model, layer_names, chunk).items():
            parts[name].append(out.mean(axis=(1, 2)) if out.ndim == 4 else out)
    return {name: np.concatenate(p).astype("float32") for name, p in parts.items()}


def linear_probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a linear probe (Alain & Bengio 2016): standardised features, logistic regression.

    Args:
        x_train, x_test: (N, F) features, e.g. from `pooled_features`.
        y_train, y_test: (N,) integer class labels.

    Returns:
        Share of test samples classified correctly, 0..1.
    """
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=0))
    probe.fit(x_train, y_train)
    return float(probe.score(x_test, y_test))


def gratings(size: int, angles_deg, period: float, phases: int = 4, channels: int = 3) -> np.ndarray:
    """Sinusoidal gratings, 0.5 + 0.5 cos(2 pi u / period + phase), grey repeated over the channels.

    Orientation convention: an angle is the direction the bars run along, in degrees counter-clockwise
    from the image's horizontal, with up being towards row 0. So 0 gives horizontal bars (each row is
    constant), 90 vertical bars (each column is constant) and 45 bars running from bottom-left to
    top-right, like "/". u is the distance from the image centre across the bars. The phases are
    evenly spaced over one cycle, phase 0 putting the middle of a bright bar through the centre.

    Args:
        size: image side in pixels.
        angles_deg: orientations, degrees.
        period: pixels per cycle, across the bars.
        phases: phases per orientation.
        channels: copies of the grey image, e.g. 3 for an RGB model.

    Returns:
        (len(angles_deg), phases, size, size, channels) float32 in [0, 1].
    """
    if size < 1 or period <= 0 or phases < 1 or channels < 1:
        raise ValueError(f"Need size, phases, channels >= 1 and period > 0; got size {size}, period {period}, "
                         f"phases {phases}, channels {channels}.")
    theta = np.deg2rad(np.asarray(angles_deg, dtype="float64"))[:, None, None, None]  # (A, 1, 1, 1)
    phase = (2 * np.pi * np.arange(phases) / phases)[None, :, None, None]  # (1, P, 1, 1)
    centre = (size - 1) / 2
    x = (np.arange(size) - centre)[None, None, None, :]  # rightwards, along columns
    y = (centre - np.arange(size))[None, None, :, None]  # upwards, against rows
    across = -x * np.sin(theta) + y * np.cos(theta)  # coordinate along the bars' normal
    grey = 0.5 + 0.5 * np.cos(2 * np.pi * across / period + phase)  # (A, P, size, size)
    return np.repeat(grey[..., None], channels, axis=-1).astype("float32")


def orientation_tuning(model: keras.Model, layer_name: str, angles_deg=ANGLES_DEG, period: float = GRATING_PERIOD,
                       phases: int = 4) -> np.ndarray:
    """Each filter's response to gratings at each orientation.

    The response to one grating is the layer's output averaged over the central half of the map
    (rows and columns from h // 4 to h - h // 4), which keeps zero-padding artefacts at the border
    out; the response to an orientation is the maximum over the grating's phases, so simple-cell-like
    filters count as tuned whatever the phase. Gratings follow `gratings`' orientation convention.

    Args:
        model: a network with a fixed-size image input; the gratings take its size and channels.
        layer_name: a spatial layer, typically a conv's rectified output.
        angles_deg: orientations, degrees.
        period: pixels per grating cycle.
        phases: phases tried per orientation.

    Returns:
        (filters, len(angles_deg)) float32.
    """
    height, width, channels = model.inputs[0].shape[1:]
    stimuli = gratings(max(height, width), angles_deg, period, phases, channels)[:, :, :height, :width]
    flat = stimuli.reshape(-1, height, width, channels)  # (A * P, H, W, C)
    maps = _spatial_output(model, layer_name, flat)  # (A * P, h, w, F)
    h, w = maps.shape[1:3]
    centre = maps[:, h // 4 : h - h // 4, w // 4 : w - w // 4].mean(axis=(1, 2))  # (A * P, F)
    per_phase = centre.reshape(len(stimuli), phases, -1)  # (A, P, F)
    return per_phase.max(axis=1).T.astype("float32")


def orientation_selectivity(tuning: np.ndarray, angles_deg) -> np.ndarray:
    """Circular-variance orientation selectivity: |sum_a r_a exp(2i theta_a)| / sum_a r_a per filter.

    Responses are clipped at 0 and NOT reduced by each filter's minimum: subtracting the minimum
    would make a filter with a tiny ripple on a large constant response look sharply tuned. So 1
    means a response at one orientation only, 0 an equal response at all orientations (and a filter
    that never responds). The angles should be evenly spaced over [0, 180) for an unbiased index.

    Args:
        tuning: (filters, angles) responses, e.g. from `orientation_tuning`.
        angles_deg: the orientation of each column, degrees.

    Returns:
        (filters,) float in [0, 1].
    """
    r, vector = _orientation_vectors(tuning, angles_deg)
    return _ratio_or_zero(np.abs(vector), r.sum(axis=1))


def preferred_orientation(tuning: np.ndarray, angles_deg) -> np.ndarray:
    """Each filter's preferred orientation: half the angle of sum_a r_a exp(2i theta_a).

    Returns:
        (filters,) degrees in [0, 180), in `gratings`' convention; NaN for a filter that never responds.
    """
    r, vector = _orientation_vectors(tuning, angles_deg)
    degrees = np.rad2deg(np.angle(vector)) / 2 % 180
    return np.where(r.sum(axis=1) > 0, degrees, np.nan)


def most_selective_filters(tuning: np.ndarray, selectivity: np.ndarray, k: int,
                           min_peak_share: float = 0.1) -> np.ndarray:
    """The k most orientation-selective filters among those that really respond, most selective first.

    A filter that barely fires at one angle and never elsewhere scores OSI 1 on a response too small to
    matter, so filters whose peak response is below `min_peak_share` of the layer's largest peak are
    skipped (used only when too few filters remain).

    Args:
        tuning: (filters, angles) responses, from `orientation_tuning`.
        selectivity: (filters,) from `orientation_selectivity`.
        k: how many to return.
        min_peak_share: the smallest peak, as a share of the layer's largest, that counts as responding.

    Returns:
        Up to k filter indices.
    """
    peaks = tuning.max(axis=1)
    responding = peaks >= min_peak_share * max(float(peaks.max()), 1e-12)
    order = np.lexsort((-selectivity, ~responding))  # responding first, then by selectivity, highest first
    return order[:k]


def relative_change(before: np.ndarray, after: np.ndarray) -> float:
    """||after - before|| / ||before||: how far training moved a layer's weights, as a share of where they began."""
    before, after = np.asarray(before, "float64"), np.asarray(after, "float64")
    return float(np.linalg.norm(after - before) / max(np.linalg.norm(before), 1e-12))


def class_selectivity(activations: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class selectivity index (Morcos et al. 2018) per filter: (mu_max - mu_rest) / (mu_max + mu_rest).

    mu_max is the largest class mean of the filter's activation, mu_rest the mean of the other
    classes' means. 1: the filter responds to one class only; 0: it responds equally to all (or never).

    Args:
        activations: (N, F) non-negative activations, e.g. spatially averaged rectified maps.
        labels: (N,) class indices in [0, n_classes).
        n_classes: number of classes, at least 2; every class needs at least one sample.

    Returns:
        (F,) float in [0, 1].

    Raises:
        ValueError: negative activations, labels out of range or a class without samples.
    """
    activations = np.asarray(activations, dtype="float64")
    labels = np.asarray(labels)
    _check_class_inputs(activations, labels, n_classes)
    means = np.stack([activations[labels == c].mean(axis=0) for c in range(n_classes)])  # (classes, F)
    mu_max = means.max(axis=0)
    mu_rest = (means.sum(axis=0) - mu_max) / (n_classes - 1)
    return _ratio_or_zero(mu_max - mu_rest, mu_max + mu_rest)


def top_examples(model: keras.Model, layer_name: str, images: np.ndarray, filters, k: int,
                 batch: int = 256) -> list[list[Example]]:
    """Dataset examples: for each filter, the k images whose maximum activation is highest.

    One example per image (at the filter's peak in it), strongest first; equal peaks keep image order.

    Args:
        model: the network.
        layer_name: a spatial layer, typically a conv's rectified output.
        images: (N, H, W, C) images to search.
        filters: channel indices of the layer.
        k: examples per filter, 1..N.
        batch: images per forward pass.

    Returns:
        One list of k Examples per filter, in the order of `filters`.
    """
    filters = [int(f) for f in filters]
    if not 1 <= k <= len(images):
        raise ValueError(f"k must be between 1 and the number of images ({len(images)}); got {k}.")
    peaks, rows, cols = _peaks(model, layer_name, images, filters, batch)
    examples = []
    for j in range(len(filters)):
        best = np.argsort(-peaks[:, j], kind="stable")[:k]
        examples.append([Example(int(i), int(rows[i, j]), int(cols[i, j]), float(peaks[i, j])) for i in best])
    return examples


def strongest_filters(model: keras.Model, layer_name: str, images: np.ndarray, n: int,
                      k: int = 1) -> tuple[list[int], list[list[Example]]]:
    """The n filters of `layer_name` with the highest peak activation on `images`, strongest first, with the
    top-k dataset examples of each (`top_examples`).

    Returns:
        the filter indices and, in the same order, their examples.
    """
    channels = int(model.get_layer(layer_name).output.shape[-1])
    examples = top_examples(model, layer_name, images, list(range(channels)), k)
    order = sorted(range(channels), key=lambda f: -examples[f][0].value)[:n]
    return order, [examples[f] for f in order]


def example_crops(images: np.ndarray, examples: list[list[Example]], rf: ReceptiveField, out_size: int) -> np.ndarray:
    """The receptive-field window of each example's peak unit, resized to out_size x out_size.

    The window is always the whole receptive field centred on the unit; where it leaves the image it
    is filled with grey (PAD_GREY). Resizing is nearest-neighbour so pixels stay crisp.

    Args:
        images: (N, H, W, C) the images the examples index.
        examples: from `top_examples`, the same number per filter.
        rf: receptive field of the layer the examples come from.
        out_size: side of each returned crop, in pixels.

    Returns:
        (filters, k, out_size, out_size, C) in the images' dtype.
    """
    counts = {len(row) for row in examples}
    if len(counts) > 1 or out_size < 1:
        raise ValueError(f"Need the same number of examples per filter and out_size >= 1; got counts "
                         f"{sorted(counts)} and out_size {out_size}.")
    crops = [[_resize_nearest(_window_crop(images[e.index], e, rf), out_size) for e in row] for row in examples]
    return np.asarray(crops, dtype=images.dtype).reshape(len(examples), -1, out_size, out_size, images.shape[-1])


def hierarchy_evidence(model: keras.Model, stage_layers: dict[str, str], x_train: np.ndarray, y_train: np.ndarray,
                       x_test: np.ndarray, y_test: np.ndarray, n_classes: int,
                       max_train: int = 1500) -> list[StageEvidence]:
    """Probe accuracy, orientation and class selectivity and receptive field size per stage.

    Args:
        model: a CNN with image input.
        stage_layers: stage name -> conv layer name, e.g. {"early": "conv_1", "late": "conv_4"}.
        x_train, y_train: images and labels the probes are fitted on (the first max_train are used).
        x_test, y_test: held-out images and labels: probe accuracy and class selectivity are measured here.
        n_classes: number of classes.
        max_train: cap on the probes' training images, to bound the time.

    Returns:
        One StageEvidence per stage, in the order of `stage_layers`.
    """
    fields = receptive_fields(model)
    maps, train, test = _pooled_stages(model, stage_layers, x_train[:max_train], x_test)
    evidence = []
    for stage, conv in stage_layers.items():
        layer = maps[stage]
        tuning = orientation_tuning(model, layer)
        evidence.append(StageEvidence(
            stage=stage,
            layer=conv,
            rf_size=fields[conv].size,
            probe_accuracy=linear_probe_accuracy(train[layer], y_train[:max_train], test[layer], y_test),
            orientation_selectivity=float(orientation_selectivity(tuning, ANGLES_DEG).mean()),
            class_selectivity=_mean_class_selectivity(test[layer], y_test, n_classes),
        ))
    return evidence


def stage_probe_accuracies(model: keras.Model, stage_layers: dict[str, str], x_train: np.ndarray,
                           y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                           max_train: int = 1500) -> dict[str, float]:
    """Linear-probe test accuracy of each stage's pooled rectified maps (the probe part of `hierarchy_evidence`).

    Args: as `hierarchy_evidence`.

    Returns:
        stage name -> probe accuracy, 0..1, in the order of `stage_layers`.
    """
    maps, train, test = _pooled_stages(model, stage_layers, x_train[:max_train], x_test)
    return {stage: linear_probe_accuracy(train[maps[stage]], y_train[:max_train], test[maps[stage]], y_test)
            for stage in stage_layers}


def _pooled_stages(model: keras.Model, stage_layers: dict[str, str], x_train: np.ndarray, x_test: np.ndarray):
    """Each stage's rectified layer, and the pooled features of those layers on the train and test images."""
    maps = {stage: rectified_output(model, conv) for stage, conv in stage_layers.items()}
    names = list(dict.fromkeys(maps.values()))
    return maps, pooled_features(model, names, x_train), pooled_features(model, names, x_test)


def _batches(images: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}.")
    for first in range(0, len(images), batch):
        yield images[first : first + batch]


def _ratio_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, and 0 where the denominator is 0 (a filter that never responds)."""
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), 0.0)


def _orientation_vectors(tuning: np.ndarray, angles_deg) -> tuple[np.ndarray, np.ndarray]:
    """Responses clipped at 0, (F, A), and their resultant vectors sum_a r_a exp(2i theta_a), (F,)."""
    tuning = np.atleast_2d(np.asarray(tuning, dtype="float64"))
    angles = np.deg2rad(np.asarray(angles_deg, dtype="float64"))
    if tuning.shape[1] != angles.size:
        raise ValueError(f"tuning has {tuning.shape[1]} columns but {angles.size} angles were given.")
    r = np.maximum(tuning, 0.0)
    return r, r @ np.exp(2j * angles)


def _check_class_inputs(activations: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
    if n_classes < 2:
        raise ValueError(f"Class selectivity needs at least 2 classes; got n_classes {n_classes}.")
    if activations.ndim != 2 or len(activations) != len(labels):
        raise ValueError(f"Need (N, F) activations and N labels; got shapes {activations.shape} and {labels.shape}.")
    if activations.size and activations.min() < 0:
        raise ValueError(f"Class selectivity needs non-negative activations; the smallest is {activations.min():.4g}.")
    counts = np.bincount(labels, minlength=n_classes) if labels.size and labels.min() >= 0 else None
    if counts is None or len(counts) > n_classes:
        raise ValueError(f"Labels must lie in [0, {n_classes}); got values from {labels.min()} to {labels.max()}.")
    if (counts == 0).any():
        raise ValueError(f"Every class needs samples; class {int(np.argmin(counts))} has none.")


def _mean_class_selectivity(activations: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Mean class selectivity; NaN when the activation takes negative values (tanh, ELU), where it is undefined."""
    if activations.min() < 0:
        return float("nan")
    return float(class_selectivity(activations, labels, n_classes).mean())


def _peaks(model: keras.Model, layer_name: str, images: np.ndarray, filters: list[int],
           batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image's maximum activation of each filter and the (row, col) where it occurs; (N, F) each."""
    peaks, places, width = [], [], 0
    for chunk in _batches(images, batch):
        maps = _spatial_output(model, layer_name, chunk)  # (B, h, w, all filters)
        _check_filters(filters, maps.shape[-1], layer_name)
        width = maps.shape[2]
        flat = maps[..., filters].reshape(len(chunk), -1, len(filters))  # (B, h * w, F)
        places.append(flat.argmax(axis=1))
        peaks.append(flat.max(axis=1))
    places = np.concatenate(places)
    return np.concatenate(peaks), places // width, places % width


def _spatial_output(model: keras.Model, layer_name: str, images: np.ndarray) -> np.ndarray:
    maps = layer_outputs(model, [layer_name], images)[layer_name]
    if maps.ndim != 4:
        raise ValueError(f"Layer {layer_name!r} must give feature maps (N, h, w, C); its output has shape "
                         f"{maps.shape}.")
    return maps


def _check_filters(filters: list[int], available: int, layer_name: str) -> None:
    bad = [f for f in filters if not 0 <= f < available]
    if bad or not filters:
        raise ValueError(f"Layer {layer_name!r} has filters 0..{available - 1}; got {filters}.")


def _window_crop(image: np.ndarray, example: Example, rf: ReceptiveField) -> np.ndarray:
    """The full rf.size square window of the example's unit, grey where it leaves the image."""
    height, width = image.shape[:2]
    top, left = window_origin(rf, example.row, example.col)
    t, lft, b, rgt = crop_box(rf, example.row, example.col, height, width)
    crop = np.full((rf.size, rf.size, image.shape[-1]), PAD_GREY, dtype=image.dtype)
    if b > t and rgt > lft:  # a window wholly in padding stays grey
        crop[t - top : b - top, lft - left : rgt - left] = image[t:b, lft:rgt]
    return crop


def _resize_nearest(image: np.ndarray, out_size: int) -> np.ndarray:
    source = (np.arange(out_size) + 0.5) * image.shape[0] / out_size  # centre of each output pixel
    index = np.minimum(source.astype(int), image.shape[0] - 1)
    return image[index][:, index]
