import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

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


# Issue 11, item 2: only the formats the page claims are decoded; content in any other format is refused before
# a plugin (EPS -> Ghostscript, PSD, ICO, ...) touches it.
ALLOWED = r"PNG, JPEG, GIF, BMP, WEBP or TIFF"
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\n0 0 moveto 8 8 lineto stroke\n%%EOF\n"


def test_disguised_eps_is_refused_without_running_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    marker = tmp_path / "gs-was-run"
    gs = tmp_path / "gs"  # a stand-in Ghostscript that records being run, then fails as a broken one would
    gs.write_text(f'#!/bin/sh\necho "$@" > "{marker}"\nexit 1\n')
    gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # PIL caches where it found gs; look again
    with pytest.raises(ImageRejected, match=ALLOWED):
        decode_image(EPS)  # the upload would be named .png; the name plays no part in decoding
    assert not marker.exists(), "Ghostscript was run on the upload"


def _psd() -> bytes:
    """A 4x4 RGB Photoshop file: header, empty colour-mode/resources/layers sections, raw pixel data."""
    return b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 4, 4, 8, 3) + struct.pack(">IIIH", 0, 0, 0, 0) + bytes(48)


@pytest.mark.parametrize("fmt", ["PSD", "ICO", "PDF"])
def test_formats_outside_the_allow_list_are_refused(fmt):
    data = _psd() if fmt == "PSD" else _bytes(Image.new("RGB", (16, 16), (0, 90, 200)), fmt)
    with pytest.raises(ImageRejected, match=f"not an image in a format the dashboard reads: {ALLOWED}"):
        decode_image(data)


@pytest.mark.parametrize("fmt", ["BMP", "WEBP", "TIFF"])
def test_allowed_formats_still_decode(fmt):  # PNG, JPEG and GIF are decoded in the tests above
    options = {"lossless": True} if fmt == "WEBP" else {}
    decoded = decode_image(_bytes(Image.new("RGB", (12, 10), (0, 0, 255)), fmt, **options))
    assert decoded.pixels.shape == (10, 12, 3) and np.allclose(decoded.pixels[5, 6], [0, 0, 1])
    assert decoded.steps[0] == f"decoded {fmt} 12x10, mode RGB"


# Issue 11, item 3: memory. A 58 kB 4096x4096 PNG used to cost ~580 MB of RSS (float copies at full size), so large
# images are reduced to about DECODED_PIXELS while decoding, and very thin strips are refused.
@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "4096.png"
    Image.new("RGB", (4096, 4096), (200, 30, 60)).save(path)  # ~58 kB, as in the issue
    return path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_large_image_is_reduced_while_decoding(fmt, big_png):
    data = big_png.read_bytes() if fmt == "PNG" else _bytes(Image.open(big_png), "JPEG")
    decoded = decode_image(data)
    assert decoded.pixels.shape == (1024, 1024, 3)
    assert decoded.steps[:2] == (f"decoded {fmt} 4096x4096, mode RGB", "reduced 4096x4096 -> 1024x1024 while decoding")
    assert np.allclose(decoded.pixels[512, 512], [200 / 255, 30 / 255, 60 / 255], atol=0.02)


_PEAK_RSS_GROWTH = r"""
import re, sys
from models.image_io import decode_image, fit_to_input

def status(field):
    return int(re.search(field + r":\s+(\d+) kB", open("/proc/self/status").read())[1]) / 1024

data = open(sys.argv[1], "rb").read()
open("/proc/self/clear_refs", "w").write("5")  # restart the high-water mark (VmHWM) from the current RSS
before = status("VmRSS")
fit_to_input(decode_image(data).pixels, (224, 224, 3))
print(status("VmHWM") - before)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to read peak RSS")
def test_large_png_upload_peak_memory(big_png):
    """Peak RSS growth of decode_image + fit_to_input, in MB, measured in a fresh process.

    tracemalloc misses PIL's C buffers, and getrusage's ru_maxrss is inherited from the parent across
    fork/exec (here: pytest with TensorFlow loaded), so the child reads its own VmHWM. Before the fix: ~580 MB.
    """
    run = subprocess.run([sys.executable, "-c", _PEAK_RSS_GROWTH, str(big_png)], cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, check=True)
    growth_mb = float(run.stdout)
    assert growth_mb < 150, f"decoding a 4096x4096 PNG raised peak RSS by {growth_mb:.0f} MB"


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_exif_orientation_survives_reduction(fmt):
    image = Image.new("RGB", (2048, 1024), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 1024, 1024))  # left half red
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # shown turned 90 degrees clockwise: the left half ends on top
    decoded = decode_image(_bytes(image, fmt, exif=exif))
    assert decoded.pixels.shape == (1448, 724, 3)
    assert decoded.pixels[10, 362, 0] > 0.9 and decoded.pixels[-10, 362, 2] > 0.9


@pytest.mark.parametrize("mode, converted", [("P", "converted P to RGB"), ("1", "converted 1 to L"),
                                             ("I;16", "converted I;16 to I")])
def test_large_image_in_a_mode_resize_cannot_interpolate_is_converted_first(mode, converted):
    image = Image.new(mode, (2048, 1024), 1)
    if mode == "I;16":
        image = Image.fromarray(np.tile(np.arange(2048, dtype=np.uint16) * 30, (1024, 1)))
    decoded = decode_image(_bytes(image, "PNG"))
    assert decoded.pixels.shape == (724, 1448, 3)
    assert decoded.steps[1:3] == (converted, "reduced 2048x1024 -> 1448x724 while decoding")


def test_reduced_thin_image_keeps_a_short_side_for_cropping():
    decoded = decode_image(_bytes(Image.new("L", (18000, 900)), "PNG"))  # 20:1, near the pixel limit
    height, width, _ = decoded.pixels.shape
    assert height >= 224 and width <= 20 * height  # a centre crop still covers a 224x224 input


@pytest.mark.parametrize("size", [(21, 1), (1, 21), (16_000_000, 1)])
def test_extreme_aspect_ratio_is_refused(size):
    with pytest.raises(ImageRejected, match=rf"^The image is {size[0]}x{size[1]} pixels; .* 20:1"):
        decode_image(_bytes(Image.new("L", size), "PNG"))


def test_aspect_ratio_at_the_limit_is_accepted():
    assert decode_image(_bytes(Image.new("L", (20, 1)), "PNG")).pixels.shape == (1, 20, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_tiff_with_nan_or_inf_is_refused(bad):
    values = np.linspace(0, 1, 64, dtype="float32").reshape(8, 8)
    values[3, 5] = bad
    with pytest.raises(ImageRejected, match="not a number .NaN. or infinite"):
        decode_image(_bytes(Image.fromarray(values, "F"), "TIFF"))


def test_float_tiff_is_scaled_to_8_bits():
    values = np.linspace(-5, 5, 64, dtype="float32").reshape(8, 8)
    decoded = decode_image(_bytes(Image.fromarray(values, "F"), "TIFF"))
    assert decoded.pixels[0, 0, 0] == 0 and decoded.pixels[-1, -1, 0] == 1
    assert "scaled high bit-depth values to 8 bits" in decoded.steps
