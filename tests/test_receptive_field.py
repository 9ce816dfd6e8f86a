import keras
import numpy as np
import pytest
import tensorflow as tf

from models.builders import build_model
from models.receptive_field import ReceptiveField, crop_box, receptive_fields, window_origin
from models.recipes import DEFAULT_CNN

L = keras.layers


def _fields(model):
    return {name: (rf.size, rf.jump, rf.start) for name, rf in receptive_fields(model).items()}


def test_hand_worked_same_padding_chain():
    model = keras.Sequential([
        keras.Input((32, 32, 1)),
        L.Conv2D(1, 3, padding="same", name="c1"),
        L.MaxPooling2D(2, name="p1"),
        L.Conv2D(1, 3, padding="same", name="c2"),
        L.MaxPooling2D(2, name="p2"),
        L.Conv2D(1, 3, padding="same", name="c3"),
        L.GlobalAveragePooling2D(name="gap"),
    ])
    # size_out = size + (k-1)*jump, jump_out = jump*s, start_out = start + ((k-1)/2 - pad_before)*jump
    # c1: k3 s1 on 32: pad_total = 31+3-32 = 2, before 1 -> size 1+2*1 = 3,  jump 1, start 0+(1-1)*1 = 0
    # p1: k2 s2 valid on 32 -> 16         -> size 3+1*1 = 4,   jump 2, start 0+(0.5-0)*1 = 0.5
    # c2: k3 s1 same on 16, before 1      -> size 4+2*2 = 8,   jump 2, start 0.5+(1-1)*2 = 0.5
    # p2: k2 s2 valid on 16 -> 8          -> size 8+1*2 = 10,  jump 4, start 0.5+0.5*2 = 1.5
    # c3: k3 s1 same on 8, before 1       -> size 10+2*4 = 18, jump 4, start 1.5
    assert _fields(model) == {
        "c1": (3, 1, 0.0), "p1": (4, 2, 0.5), "c2": (8, 2, 0.5), "p2": (10, 4, 1.5), "c3": (18, 4, 1.5),
    }


def test_hand_worked_valid_stride_padding_and_dilation():
    inputs = keras.Input((21, 21, 1))
    x = L.Conv2D(1, 3, strides=2, padding="valid", name="a")(inputs)
    x = L.ZeroPadding2D(1, name="pad")(x)
    x = L.Conv2D(1, 3, strides=2, padding="same", name="b")(x)
    x = L.Conv2D(1, 3, dilation_rate=2, padding="valid", name="c")(x)
    model = keras.Model(inputs, L.Flatten()(x))
    # a:   k3 s2 valid on 21 -> (21-3)//2+1 = 10 units; size 3, jump 2, start 0+(1-0)*1 = 1
    # pad: 1 each side -> 12 units; start 1 - 1*2 = -1 (the first unit is a padding zero)
    # b:   k3 s2 same on 12 -> 6 units, pad_total = 5*2+3-12 = 1, before 0 (TF puts the odd pixel after)
    #      size 3+2*2 = 7, jump 4, start -1+(1-0)*2 = 1
    # c:   k3 dilation 2 = effective k5, valid on 6 -> 2 units; size 7+4*4 = 23, jump 4, start 1+2*4 = 9
    assert _fields(model) == {"a": (3, 2, 1.0), "pad": (3, 2, -1.0), "b": (7, 4, 1.0), "c": (23, 4, 9.0)}


@pytest.mark.parametrize("side, start", [(5, 0.0), (6, 1.0)])
def test_same_padding_with_stride_follows_tensorflows_rule(side, start):
    # k3 s2 same: side 5 -> pad_total = 2*2+3-5 = 2, before 1 -> start 0+(1-1) = 0;
    #             side 6 -> pad_total = 2*2+3-6 = 1, before 0 -> start 0+(1-0) = 1.
    model = keras.Sequential([keras.Input((side, side, 1)), L.Conv2D(1, 3, strides=2, padding="same", name="s")])
    assert receptive_fields(model)["s"] == ReceptiveField("s", 3, 2, start)


def test_default_cnn_fields():
    fields = receptive_fields(build_model(DEFAULT_CNN, (32, 32, 3), 4))
    # conv 3x3 same, 2x2 pool, conv, pool (the maps are then 8x8, a quarter of the input), conv, conv:
    # sizes 3, 3+1=4 (pool), 4+2*2=8, 8+2=10 (pool), 10+2*4=18, 18+2*4=26; jumps 1, 2, 2, 4, 4, 4;
    # starts 0, 0.5, 0.5, 1.5, 1.5, 1.5.
    assert {n: (fields[n].size, fields[n].jump, fields[n].start) for n in ("conv_1", "conv_2", "conv_3", "conv_4")} == {
        "conv_1": (3, 1, 0.0), "conv_2": (8, 2, 0.5), "conv_3": (18, 4, 1.5), "conv_4": (26, 4, 1.5),
    }
    assert fields["conv_bn_2"] == ReceptiveField("conv_bn_2", 8, 2, 0.5)
    assert fields["conv_act_4"].size == 26 and "gap" not in fields


def test_unknown_layer_before_the_stop_is_named():
    model = keras.Sequential([
        keras.Input((8, 8, 1)), L.Conv2D(1, 3, name="c"), L.UpSampling2D(name="up"), L.GlobalAveragePooling2D(),
    ])
    with pytest.raises(ValueError, match=r"'up' \(UpSampling2D\)"):
        receptive_fields(model)


def test_non_image_input_is_refused():
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    with pytest.raises(ValueError, match=r"input shape \(None, 4\)"):
        receptive_fields(model)


def test_crop_box_hand_worked():
    rf = ReceptiveField("c", size=3, jump=1, start=0.0)
    assert window_origin(rf, 0, 0) == (-1, -1)
    assert crop_box(rf, 0, 0, 32, 32) == (0, 0, 2, 2)  # the row and column of padding are clipped
    assert crop_box(rf, 5, 7, 32, 32) == (4, 6, 7, 9)
    wide = ReceptiveField("p", size=10, jump=4, start=1.5)
    # unit (2, 4): centres 1.5+2*4 = 9.5 and 1.5+4*4 = 17.5, minus (10-1)/2 -> top 5, left 13; right 23 clips to 20
    assert crop_box(wide, 2, 4, 20, 20) == (5, 13, 15, 20)


def _positive_linear_cnn():
    """Positive weights and no non-linearity: every path from a pixel to a unit adds, none cancels."""
    init = {"kernel_initializer": keras.initializers.RandomUniform(0.1, 1.0, seed=0), "use_bias": False}
    inputs = keras.Input((22, 22, 1))
    x = L.Conv2D(2, 3, padding="same", name="c1", **init)(inputs)
    x = L.AveragePooling2D(2, name="p1")(x)  # 22 -> 11
    x = L.Conv2D(2, 3, strides=2, padding="same", name="c2", **init)(x)  # 11 -> 6, one unit of padding before
    x = L.ZeroPadding2D(1, name="pad")(x)  # 6 -> 8
    x = L.Conv2D(2, 3, dilation_rate=2, padding="same", name="c3", **init)(x)
    x = L.AveragePooling2D(3, strides=2, padding="same", name="p3")(x)  # 8 -> 4, padding after only
    return keras.Model(inputs, L.GlobalAveragePooling2D()(x))


def _gradient_boxes(sub_model, image):
    """Bounding box of the pixels with a non-zero gradient, for every unit of channel 0; None if none."""
    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        units = sub_model(x)[0, :, :, 0]
    jacobian = tape.jacobian(units, x).numpy()[:, :, 0, :, :, 0]  # (h, w, H, W)
    boxes = {}
    for row, col in np.ndindex(jacobian.shape[:2]):
        rows, cols = np.nonzero(jacobian[row, col])
        boxes[row, col] = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) if rows.size else None
    return boxes


@pytest.mark.parametrize("layer", ["c1", "p1", "c2", "pad", "c3", "p3"])
def test_crop_box_bounds_the_pixels_with_a_gradient(layer):
    # Oracle: autodiff. The pixels whose gradient on a unit is non-zero lie inside its receptive field,
    # and reach every side of the window that the image does not clip (padding and dilation holes can
    # hide pixels only next to the image border). Checked for every unit, so the padding rule is too.
    model = _positive_linear_cnn()
    sub = keras.Model(model.inputs[0], model.get_layer(layer).output)
    rf = receptive_fields(model)[layer]
    image = np.random.default_rng(0).uniform(0.1, 1.0, (1, 22, 22, 1)).astype("float32")
    boxes = _gradient_boxes(sub, image)
    for (row, col), box in boxes.items():
        on_ring = layer == "pad" and (row in (0, 7) or col in (0, 7))  # ZeroPadding's constant zeros
        assert (box is None) == on_ring, (layer, row, col)
        if on_ring:
            continue
        top, left = window_origin(rf, row, col)
        window = (top, left, top + rf.size, left + rf.size)
        clipped = crop_box(rf, row, col, 22, 22)
        assert clipped[0] <= box[0] and clipped[1] <= box[1], (layer, row, col)
        assert box[2] <= clipped[2] and box[3] <= clipped[3], (layer, row, col)
        for side in range(4):
            if window[side] == clipped[side]:
                assert box[side] == window[side], (layer, row, col, side)
