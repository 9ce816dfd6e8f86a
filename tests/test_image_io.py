import io

import numpy as np
import pytest
from PIL import Image

from models.image_io import ImageRejected, decode_image, fit_to_input


def _bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_plain_rgb_png():
    decoded = decode_image(_bytes(Image.new("RGB", (10, 6), (255, 0, 0)), "PNG"))
    assert decoded.pixels.shape == (6, 10, 3) and np.allclose(decoded.pixels[0, 0], [1, 0, 0])


def test_not_an_image():
    with pytest.raises(ImageRejected, match="not an image"):
        decode_image(b"%PDF-1.4 definitely not an image")


def test_truncated_file():
    data = _bytes(Image.new("RGB", (64, 64), (10, 200, 30)), "JPEG")
    with pytest.raises(ImageRejected, match="damaged or truncated"):
        decode_image(data[: len(data) // 2])


def test_huge_dimensions_refused_before_decoding():
    data = _bytes(Image.new("L", (5000, 5000)), "PNG")  # compresses to a few kB
    with pytest.raises(ImageRejected, match="5000x5000 pixels"):
        decode_image(data)


def test_file_too_large():
    with pytest.raises(ImageRejected, match="limit is 1 MB"):
        decode_image(b"0" * 2_000_000, max_bytes=1_000_000)


@pytest.mark.parametrize("mode, fmt, step", [
    ("CMYK", "JPEG", "converted CMYK to RGB"),
    ("RGBA", "PNG", "transparent pixels on white"),
    ("P", "PNG", "converted P to RGB"),
    ("I;16", "PNG", "high bit-depth"),
    ("L", "PNG", "converted L to RGB"),
])
def test_colour_modes_are_converted(mode, fmt, step):
    image = Image.new(mode, (8, 8))
    if mode == "RGBA":
        image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    if mode == "I;16":
        image = Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    decoded = decode_image(_bytes(image, fmt))
    assert decoded.pixels.shape == (8, 8, 3) and decoded.pixels.dtype == np.float32
    assert any(step in s for s in decoded.steps)
    if mode == "RGBA":
        assert np.allclose(decoded.pixels, 1.0)  # fully transparent becomes white


def test_animated_gif_keeps_first_frame():
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    decoded = decode_image(buf.getvalue())
    assert "first of 3 frames" in " ".join(decoded.steps)
    assert decoded.pixels[0, 0, 0] > 0.9 and decoded.pixels[0, 0, 1] < 0.1


def test_fit_to_digit_input_inverts_and_resizes():
    white = np.ones((40, 40, 3), dtype="float32")
    white[10:30, 15:25] = 0.0  # a dark stroke on white paper
    image, steps = fit_to_input(white, (8, 8, 1), invert=True)
    assert image.shape == (8, 8, 1) and image.max() <= 1
    assert image[4, 4, 0] > 0.5 and image[0, 0, 0] < 0.1  # stroke bright, paper dark
    assert any("resized 40x40 -> 8x8" in s for s in steps) and any("inverted" in s for s in steps)


def test_empty_file():
    with pytest.raises(ImageRejected, match=r"^The file is empty\.$"):
        decode_image(b"")


def _striped(width: int = 50, height: int = 40, border: int = 5) -> np.ndarray:
    """Green centre with red bands `border` pixels wide on the left and right."""
    pixels = np.zeros((height, width, 3), dtype="float32")  # (H, W, 3)
    pixels[:, :, 1] = 1.0
    pixels[:, :border] = pixels[:, -border:] = [1.0, 0.0, 0.0]
    return pixels


def test_crop_keeps_the_centre_and_lists_each_step():
    image, steps = fit_to_input(_striped(), (32, 32, 3))
    assert image.shape == (32, 32, 3)
    assert image[..., 0].max() == 0.0 and image[..., 1].min() == 1.0  # no red border left, no stretching
    assert steps == ["centre-cropped 50x40 -> 40x40 to match the input's aspect ratio",
                     "resized 40x40 -> 32x32", "scaled pixel values to [0, 1]"]


def test_crop_of_a_tall_image_cuts_top_and_bottom():
    tall = np.transpose(_striped(), (1, 0, 2))  # 40 wide, 50 tall; red bands on top and bottom
    image, steps = fit_to_input(tall, (20, 20, 3))
    assert image[..., 0].max() == 0.0
    assert steps[0] == "centre-cropped 40x50 -> 40x40 to match the input's aspect ratio"


def test_pad_keeps_all_content_with_the_border_colour():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 50, 3)).astype("float32") / 255  # exact in uint8
    image, steps = fit_to_input(pixels, (50, 50, 3), mode="pad")
    assert np.allclose(image[5:45], pixels)  # every original pixel, centred
    ring = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    band = np.rint(ring.mean(axis=0) * 255) / 255
    assert np.allclose(image[:5], band) and np.allclose(image[45:], band)
    assert steps == ["padded 50x40 -> 50x50 with the mean border colour to match the input's aspect ratio",
                     "scaled pixel values to [0, 1]"]


def test_pad_then_resize_keeps_the_red_borders():
    image, steps = fit_to_input(_striped(), (32, 32, 3), mode="pad")
    assert image[16, 0, 0] > 0.9 and image[16, -1, 0] > 0.9  # the bands cropping would remove survive
    assert steps[:2] == ["padded 50x40 -> 50x50 with the mean border colour to match the input's aspect ratio",
                         "resized 50x50 -> 32x32"]


def test_pad_of_inverted_digit_is_dark_background():
    paper = np.ones((20, 40, 3), dtype="float32")  # wide photo of a digit on white paper
    paper[5:15, 18:22] = 0.0
    image, steps = fit_to_input(paper, (8, 8, 1), invert=True, mode="pad")
    assert image[0, 0, 0] < 0.05 and image[-1, 0, 0] < 0.05  # padded bands invert to dark, like MNIST
    assert image[4, 4, 0] > 0.3  # the stroke is still there and bright
    assert steps[:3] == ["converted to greyscale",
                         "padded 40x20 -> 40x40 with the mean border colour to match the input's aspect ratio",
                         "resized 40x40 -> 8x8"]


@pytest.mark.parametrize("mode", ["crop", "pad"])
def test_right_aspect_ratio_gets_no_crop_or_pad_step(mode):
    _, steps = fit_to_input(np.zeros((40, 40, 3), dtype="float32"), (32, 32, 3), mode=mode)
    assert steps == ["resized 40x40 -> 32x32", "scaled pixel values to [0, 1]"]


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="'stretch'"):
        fit_to_input(np.zeros((4, 4, 3), dtype="float32"), (4, 4, 3), mode="stretch")
