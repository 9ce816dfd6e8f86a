"""Defensive decoding of user images: size caps, one frame, known colour modes, clear errors."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # refuse larger files before decoding anything
MAX_PIXELS = 4096 * 4096  # refuse larger images before decoding pixels (decompression bombs)


class ImageRejected(ValueError):
    """The upload is not an image the dashboard can use; the message says why, for the user."""


@dataclass(frozen=True)
class DecodedImage:
    """A safely decoded image and what was done to it."""

    pixels: np.ndarray  # (H, W, 3) float32 in [0, 1]
    steps: tuple[str, ...]  # human-readable conversions applied, in order


def decode_image(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Decode uploaded bytes to RGB floats, refusing anything unsafe or unreadable.

    Raises:
        ImageRejected: empty, too large, not an image, truncated, or too many pixels.
    """
    if not data:
        raise ImageRejected("The file is empty.")
    if len(data) > max_bytes:
        raise ImageRejected(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size  # read from the header, before any pixel is decoded
            if width * height > max_pixels:
                raise ImageRejected(f"The image is {width}x{height} pixels; the limit is {max_pixels:,} pixels.")
            steps = [f"decoded {image.format or 'image'} {width}x{height}, mode {image.mode}"]
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
                steps.append(f"kept the first of {image.n_frames} frames")
            image.load()
    except ImageRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageRejected(f"This file is not an image that can be read safely ({type(err).__name__}).") from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise ImageRejected(f"The image data is damaged or truncated ({err}).") from err
    return DecodedImage(*_to_rgb(image, steps))


def _to_rgb(image: Image.Image, steps: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype="float64")
        span = float(array.max() - array.min()) or 1.0
        image = Image.fromarray(((array - array.min()) / span * 255).astype("uint8"), "L")
        steps.append("scaled high bit-depth values to 8 bits")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
        steps.append("put transparent pixels on white")
    if image.mode != "RGB":
        steps.append(f"converted {image.mode} to RGB")
        image = image.convert("RGB")
    return np.asarray(image, dtype="float32") / 255.0, tuple(steps)


FIT_MODES = ("crop", "pad")  # how fit_to_input reaches the input's aspect ratio without stretching


def fit_to_input(
    pixels: np.ndarray, input_shape: tuple[int, ...], invert: bool = False, mode: str = "crop"
) -> tuple[np.ndarray, list[str]]:
    """Fit an RGB image to a model's (H, W, C) input without stretching; returns it and the steps taken.

    The image first reaches the input's aspect ratio, then is resized:
    - "crop" keeps the centre and cuts equal amounts from both long sides;
    - "pad" keeps everything and adds equal bands on both short sides, filled with the mean colour of the
      image's outermost pixels, so the bands read as more background. For ink-on-paper digits
      (invert=True) that is the paper, which inversion turns into the dark background the model knows.

    Raises:
        ValueError: mode is not one of FIT_MODES.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"Unknown fit mode {mode!r}; expected one of {', '.join(map(repr, FIT_MODES))}.")
    h, w, c = input_shape
    steps = []
    image = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype("uint8"), "RGB")
    if c == 1:
        image = image.convert("L")
        steps.append("converted to greyscale")
    image = _match_aspect(image, w, h, mode, steps)
    if image.size != (w, h):
        steps.append(f"resized {image.size[0]}x{image.size[1]} -> {w}x{h}")
        image = image.resize((w, h), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype="float32") / 255.0
    steps.append("scaled pixel values to [0, 1]")
    if invert:
        array = 1.0 - array
        steps.append("inverted (dark ink on light paper -> bright ink on dark, as in the training digits)")
    return array.reshape(h, w, c), steps


def _match_aspect(image: Image.Image, w: int, h: int, mode: str, steps: list[str]) -> Image.Image:
    """Crop or pad the image, centred, to the w:h aspect ratio; an image already there is returned as is."""
    width, height = image.size
    too_wide = width * h > height * w
    if mode == "crop":
        size = (max(1, round(height * w / h)), height) if too_wide else (width, max(1, round(width * h / w)))
    else:
        size = (width, round(width * h / w)) if too_wide else (round(height * w / h), height)
    if size == image.size:
        return image
    change = f"{width}x{height} -> {size[0]}x{size[1]}"
    if mode == "crop":
        left, top = (width - size[0]) // 2, (height - size[1]) // 2
        steps.append(f"centre-cropped {change} to match the input's aspect ratio")
        return image.crop((left, top, left + size[0], top + size[1]))
    steps.append(f"padded {change} with the mean border colour to match the input's aspect ratio")
    padded = Image.new(image.mode, size, _border_colour(image))
    padded.paste(image, ((size[0] - width) // 2, (size[1] - height) // 2))
    return padded


def _border_colour(image: Image.Image) -> int | tuple[int, ...]:
    """Mean colour of the outermost ring of pixels, in the image's own mode ("L" or "RGB")."""
    array = np.asarray(image, dtype="float64")  # (H, W) or (H, W, 3)
    ring = np.concatenate([array[0], array[-1], array[1:-1, 0], array[1:-1, -1]])
    mean = np.rint(ring.mean(axis=0)).astype(int)
    return int(mean) if mean.ndim == 0 else tuple(int(v) for v in mean)
