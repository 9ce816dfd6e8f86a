"""Receptive fields of a CNN's spatial layers: which window of input pixels one unit can see.

The window is computed from the layers alone (kernel sizes, strides, dilation, padding), walking
the model from its input to the first layer that is no longer spatial (global pooling, Flatten,
Dense), with the standard recurrence (Araujo et al. 2019, "Computing Receptive Fields of
Convolutional Neural Networks"), for a layer with effective kernel k, stride s and p pixels of
padding before the first unit:

    size_out  = size_in + (k - 1) * jump_in
    jump_out  = jump_in * s
    start_out = start_in + ((k - 1) / 2 - p) * jump_in

"same" padding follows TensorFlow: pad_total = max((ceil(n / s) - 1) * s + k - n, 0) on an axis of
n units, of which pad_total // 2 go before the first unit (the odd pixel goes at the end). Input
pixel i has coordinate i, so `start` is 0 for the input itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

# Layers that compute each output position from the same position of their input only.
_POINTWISE_LAYERS = (
    keras.layers.BatchNormalization, keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
    keras.layers.ELU, keras.layers.PReLU, keras.layers.Dropout, keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise, keras.layers.GaussianDropout, keras.layers.Rescaling, keras.layers.Identity,
)
# Layers that slide a window over the map.
_WINDOW_LAYERS = (
    keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
    keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
)
# The first of these ends the spatial part of the model: the walk stops there.
_STOP_LAYERS = (
    keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D, keras.layers.Flatten, keras.layers.Dense,
)


@dataclass(frozen=True)
class ReceptiveField:
    """The square window of input pixels that one unit of a layer sees."""

    layer: str  # the layer's name
    size: int  # side of the window, in input pixels (it may exceed the image)
    jump: int  # input pixels between the windows of neighbouring units: the cumulative stride
    start: float  # input pixel coordinate of the centre of unit (0, 0); fractional or negative with padding


@dataclass(frozen=True)
class _Axis:
    """The receptive-field recurrence along one spatial axis."""

    units: int  # units along this axis in the layer's output
    size: int  # window side along this axis, in input pixels
    jump: int  # cumulative stride along this axis
    start: float  # coordinate of the centre of unit 0 along this axis


def receptive_fields(model: keras.Model) -> dict[str, ReceptiveField]:
    """The receptive field of every spatial layer, from the input to the first non-spatial layer.

    Args:
        model: a Sequential model or a functional model whose layers form one chain, with
            channels-last image input (N, H, W, C).

    Returns:
        layer name -> ReceptiveField, input to output; pointwise layers (batch norm, activations,
        dropout) get the field of the layer before them.

    Raises:
        ValueError: the input is not an image, a layer before the stop is not one the walk can
            reason about (the message names it and its class), or a layer's window is not square.
    """
    rows, cols = _input_axes(model)
    fields = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, _STOP_LAYERS):
            break
        rows, cols = _through_layer(layer, rows, cols)
        fields[layer.name] = _square_field(layer.name, rows, cols)
    return fields


def window_origin(rf: ReceptiveField, row: int, col: int) -> tuple[int, int]:
    """Input pixel (top, left) of unit (row, col)'s window, not clipped: negative past the image's top/left."""
    if row < 0 or col < 0:
        raise ValueError(f"Unit positions start at 0; got (row, col) = ({row}, {col}).")
    offset = rf.start - (rf.size - 1) / 2  # an integer for every field the recurrence produces
    return round(offset + row * rf.jump), round(offset + col * rf.jump)


def crop_box(rf: ReceptiveField, row: int, col: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The input pixels unit (row, col) sees, clipped to a height x width image.

    Returns:
        (top, left, bottom, right) with bottom and right exclusive: `image[top:bottom, left:right]`.
    """
    if height < 1 or width < 1:
        raise ValueError(f"The image must have at least one pixel; got height {height}, width {width}.")
    top, left = window_origin(rf, row, col)
    return max(top, 0), max(left, 0), min(top + rf.size, height), min(left + rf.size, width)


def _input_axes(model: keras.Model) -> tuple[_Axis, _Axis]:
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise ValueError(f"Receptive fields need a fixed-size image input (N, H, W, C); got input shape {shape}.")
    return _Axis(shape[1], 1, 1, 0.0), _Axis(shape[2], 1, 1, 0.0)


def _through_layer(layer: keras.layers.Layer, rows: _Axis, cols: _Axis) -> tuple[_Axis, _Axis]:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(f"Layer {layer.name!r} is {layer.data_format}; receptive fields assume channels_last.")
    if isinstance(layer, _POINTWISE_LAYERS):
        return rows, cols
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = layer.padding
        return _pad(rows, top, bottom), _pad(cols, left, right)
    if isinstance(layer, _WINDOW_LAYERS):
        (kh, kw), (sh, sw) = _kernel_and_stride(layer)
        return _slide(rows, kh, sh, layer.padding, layer), _slide(cols, kw, sw, layer.padding, layer)
    known = ", ".join(c.__name__ for c in _WINDOW_LAYERS + (keras.layers.ZeroPadding2D,) + _POINTWISE_LAYERS)
    raise ValueError(
        f"Cannot compute receptive fields through layer {layer.name!r} ({type(layer).__name__}); "
        f"the layers before global pooling / Flatten / Dense must be among: {known}."
    )


def _kernel_and_stride(layer: keras.layers.Layer) -> tuple[tuple[int, int], tuple[int, int]]:
    """Effective (dilated) kernel and stride of a conv or pooling layer, (rows, cols) each."""
    if isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
        return tuple(layer.pool_size), tuple(layer.strides)
    kernel = tuple(d * (k - 1) + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate, strict=True))
    return kernel, tuple(layer.strides)


def _slide(axis: _Axis, kernel: int, stride: int, padding: str, layer: keras.layers.Layer) -> _Axis:
    if padding == "same":
        units = math.ceil(axis.units / stride)
        pad_before = max((units - 1) * stride + kernel - axis.units, 0) // 2
    elif padding == "valid":
        units, pad_before = (axis.units - kernel) // stride + 1, 0
    else:
        raise ValueError(f"Layer {layer.name!r} has padding {padding!r}; only 'same' and 'valid' are supported.")
    return _Axis(
        units=units,
        size=axis.size + (kernel - 1) * axis.jump,
        jump=axis.jump * stride,
        start=axis.start + ((kernel - 1) / 2 - pad_before) * axis.jump,
    )


def _pad(axis: _Axis, before: int, after: int) -> _Axis:
    return _Axis(axis.units + before + after, axis.size, axis.jump, axis.start - before * axis.jump)


def _square_field(name: str, rows: _Axis, cols: _Axis) -> ReceptiveField:
    if (rows.size, rows.jump, rows.start) != (cols.size, cols.jump, cols.start):
        raise ValueError(
            f"Layer {name!r} sees a non-square window: rows (size {rows.size}, jump {rows.jump}, start {rows.start}), "
            f"columns (size {cols.size}, jump {cols.jump}, start {cols.start}); only square windows are supported."
        )
    return ReceptiveField(layer=name, size=rows.size, jump=rows.jump, start=rows.start)
