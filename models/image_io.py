"""Defensive decoding of user images: size caps, one frame, known colour modes, clear errors."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # refuse larger files before decoding anything
MAX_PIXELS = 4096 * 4096  # refuse larger images before decoding pixels (decompression bombs)
MAX_ASPECT = 20  # refuse images whose long side is more than this many times the short side
# Larger images are reduced to about this many pixels while decoding, so no full-size float copy is ever made
# (a 4096x4096 PNG cost ~580 MB before). The models' inputs are at most 224x224; at MAX_ASPECT:1 this still
# leaves a short side of 229 px, so a centre crop needs no upscaling.
DECODED_PIXELS = 1024 * 1024
# What the uploader's file types promise. PIL picks a decoder by content, not by file name, so without this list
# EPS content named .png runs Ghostscript, and PSD, ICO, ... reach their own plugins.
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
_NOT_RESIZABLE = {"1": "L", "PA": "RGBA", "I;16": "I", "I;16B": "I", "I;16L": "I", "I;16N": "I"}  # see _resizable_mode


class ImageRejected(ValueError):
    """The upload is not an image the dashboard can use; the message says why, for the user."""


@dataclass(frozen=True)
class DecodedImage:
    """A safely decoded image and what was done to it."""

    pixels: np.ndarray  # (H, W, 3) float32 in [0, 1]
    steps: tuple[str, ...]  # human-readable conversions applied, in order


def decode_image(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Decode uploaded bytes to RGB floats, refusing anything unsafe or unreadable.

    Images over DECODED_PIXELS are reduced while decoding (JPEG decodes at 1/2 to 1/8 scale directly).

    Raises:
        ImageRejected: empty, too large, not in ALLOWED_FORMATS, truncated, too many pixels, sides further
            apart than MAX_ASPECT:1, or float values that are NaN or infinite.
    """
    if not data:
        raise ImageRejected("The file is empty.")
    if len(data) > max_bytes:
        raise ImageRejected(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = image.size  # read from the header, before any pixel is decoded
            if width * height > max_pixels:
                raise ImageRejected(f"The image is {width}x{height} pixels; the limit is {max_pixels:,} pixels.")
            if max(width, height) > MAX_ASPECT * min(width, height):
                raise ImageRejected(f"The image is {width}x{height} pixels; its sides may differ by at most "
                                    f"{MAX_ASPECT}:1.")
            steps = [f"decoded {image.format or 'image'} {width}x{height}, mode {image.mode}"]
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
                steps.append(f"kept the first of {image.n_frames} frames")
            target = _reduced_size(width, height)
            if target != (width, height):
                image.draft(None, target)  # JPEG decodes at 1/2, 1/4 or 1/8 scale, never below target; others ignore
            image.load()
    except ImageRejected:
        raise
    except UnidentifiedImageError as err:
        names = ", ".join(ALLOWED_FORMATS[:-1]) + " or " + ALLOWED_FORMATS[-1]
        raise ImageRejected(f"This file is not an image in a format the dashboard reads: {names}.") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageRejected(f"This file is not an image that can be read safely ({type(err).__name__}).") from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise ImageRejected(f"The image data is damaged or truncated ({err}).") from err
    _refuse_non_finite(image)
    image = _reduce(image, (width, height), target, steps)
    return DecodedImage(*_to_rgb(image, steps))


def _reduced_size(width: int, height: int) -> tuple[int, int]:
    """The size, same aspect ratio, of at most about DECODED_PIXELS pixels; smaller images keep theirs."""
    scale = (DECODED_PIXELS / (width * height)) ** 0.5
    return (width, height) if scale >= 1 else (max(1, round(width * scale)), max(1, round(height * scale)))


def _refuse_non_finite(image: Image.Image) -> None:
    """Float images with NaN or infinity would scale to all black; refuse them instead (a megapixel at a time)."""
    if image.mode != "F":
        return
    rows = max(1, 2**20 // image.width)
    for top in range(0, image.height, rows):
        if not np.isfinite(np.asarray(image.crop((0, top, image.width, top + rows)))).all():
            raise ImageRejected("The image holds values that are not a number (NaN) or infinite, so its brightness "
                                "cannot be shown. Save it with finite values only.")


def _reduce(image: Image.Image, size: tuple[int, int], target: tuple[int, int], steps: list[str]) -> Image.Image:
    """Shrink a decoded image of header size `size` to `target`; resized copies keep `info`, so EXIF too."""
    if size == target:
        return image
    if image.size != target:  # a JPEG's draft may already have decoded at the target size
        mode = _resizable_mode(image)
        if mode != image.mode:
            steps.append(f"converted {image.mode} to {mode}")
            image = image.convert(mode)
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)
    steps.append(f"reduced {size[0]}x{size[1]} -> {image.size[0]}x{image.size[1]} while decoding")
    return image


def _resizable_mode(image: Image.Image) -> str:
    """A mode that PIL resizes by interpolation: P and 1 would be resized by nearest neighbour, I;16 not at all."""
    if image.mode == "P":
        return "RGBA" if "transparency" in image.info else "RGB"
    return _NOT_RESIZABLE.get(image.mode, image.mode)


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
