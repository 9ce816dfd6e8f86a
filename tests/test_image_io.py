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
