"""Arrays to crisp RGB images: colour maps, tiling and nearest-neighbour upscaling."""

from __future__ import annotations

import numpy as np

# Diverging orange -> light grey -> blue, the Playground's colours; reads on light and dark pages.
_NEGATIVE = np.array([245, 147, 34], dtype="float32")
_MIDDLE = np.array([232, 234, 237], dtype="float32")
_POSITIVE = np.array([8, 119, 189], dtype="float32")


def diverging_rgb(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Map values to orange (negative) / grey (zero) / blue (positive).

    Args:
        values: any array.
        scale: the magnitude shown at full colour; default the largest |value| (per-array scale).

    Returns:
        uint8 array of shape values.shape + (3,).
    """
    scale = float(np.max(np.abs(values))) if scale is None else float(scale)
    t = np.clip(values / scale, -1, 1)[..., None] if scale > 0 else np.zeros(values.shape + (1,))
    rgb = np.where(t < 0, _MIDDLE + (_NEGATIVE - _MIDDLE) * -t, _MIDDLE + (_POSITIVE - _MIDDLE) * t)
    return rgb.astype("uint8")


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of an (H, W) or (H, W, C) image, so pixels stay sharp."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def tile(images: np.ndarray, columns: int, gap: int = 2, background: int = 255) -> np.ndarray:
    """Arrange (N, H, W, 3) uint8 images in a grid with `gap` pixels between them.

    Returns:
        One (rows*(H+gap)-gap, columns*(W+gap)-gap, 3) uint8 image.
    """
    n, h, w = images.shape[:3]
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), background, dtype="uint8")
    for k in range(n):
        r, c = divmod(k, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = images[k]
    return out


def unit_maps_image(maps: np.ndarray, columns: int = 8, factor: int = 3) -> np.ndarray:
    """One hidden layer's (units, R, R) maps as a tiled picture, each unit on its own colour scale.

    The plane's x2 axis points up, so rows are flipped to put large x2 at the top.
    """
    tiles = np.stack([diverging_rgb(m[::-1]) for m in maps])
    return tile(np.stack([upscale(t, factor) for t in tiles]), columns)
