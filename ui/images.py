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


def to_rgb_uint8(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 1 or 3) floats in [0, 1] to (N, H, W, 3) uint8 (greyscale repeated)."""
    images = np.clip(images, 0, 1)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return (images * 255).astype("uint8")


def intensity_rgb(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) activations to dark-blue -> yellow images, each map on its own range."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    t = ((maps - lo) / np.maximum(hi - lo, 1e-12))[..., None]
    dark, bright = np.array([20, 24, 82], dtype="float32"), np.array([250, 230, 60], dtype="float32")
    return (dark + (bright - dark) * t).astype("uint8")


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """An (H, W, 1|3) image in [0, 1] with an (H, W) heat map in [0, 1] blended on top in red-yellow."""
    base = to_rgb_uint8(image[None])[0].astype("float32")
    h = np.clip(heat / (heat.max() or 1.0), 0, 1)[..., None]
    colour = np.concatenate([np.full_like(h, 255), 255 * h, np.zeros_like(h)], axis=-1)  # red -> yellow
    weight = alpha * h
    return (base * (1 - weight) + colour * weight).astype("uint8")


def grid_image(images: np.ndarray, columns: int, size: int = 96) -> np.ndarray:
    """Tile (N, h, w, 3) uint8 images, each upscaled (nearest neighbour) to about `size` pixels."""
    factor = max(1, size // images.shape[1])
    return tile(np.stack([upscale(im, factor) for im in images]), columns)


PREVIEW_BORDER = 128  # mid grey: a frame that shows on white and on dark pages alike


def preview_image(image: np.ndarray, size: int = 160, border: int = 2) -> np.ndarray:
    """One (h, w, 3) uint8 image framed for display: upscaled (nearest neighbour) to at least `size` pixels on
    its longer side, inside a `border`-pixel mid-grey frame, so even a one-pixel white upload is a visible square.

    Returns:
        (h*f + 2*border, w*f + 2*border, 3) uint8, with f = ceil(size / max(h, w)).
    """
    factor = max(1, -(-size // max(image.shape[:2])))
    big = upscale(image, factor)
    return np.pad(big, ((border, border), (border, border), (0, 0)), constant_values=PREVIEW_BORDER)


def kernel_tiles(rgb: np.ndarray, signed: np.ndarray, size: int = 48) -> np.ndarray:
    """One tile per first-layer filter: its RGB picture, then each input channel's signed weights.

    Args:
        rgb: (F, kh, kw, C) floats in [0, 1], each filter on its own range (models.features.first_layer_kernels).
        signed: (F, C, kh, kw) raw weights (models.features.kernel_channels).
        size: pixels per drawn kernel (nearest-neighbour upscaling keeps each weight a crisp square).

    Returns:
        (F, size, (1 + C) * (size + 4) - 4, 3) uint8: blue positive, orange negative, grey zero, on one
        symmetric scale per filter so its channels can be compared.
    """
    factor = max(1, size // rgb.shape[1])
    tiles = []
    for picture, channels in zip(rgb, signed, strict=True):
        scale = float(np.max(np.abs(channels))) or 1.0
        parts = [upscale(to_rgb_uint8(picture[None])[0], factor)]
        parts += [upscale(diverging_rgb(channel, scale), factor) for channel in channels]
        tiles.append(tile(np.stack(parts), columns=len(parts), gap=4, background=128))
    return np.stack(tiles)


def resize_nearest(images: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w, C) images resized to exactly (N, size, size, C) by nearest neighbour, so pixels stay crisp."""
    rows = np.arange(size) * images.shape[1] // size
    cols = np.arange(size) * images.shape[2] // size
    return images[:, rows][:, :, cols]


def labelled_strip(images: np.ndarray, size: int = 64, gap: int = 2) -> np.ndarray:
    """A row of (N, h, w, 1|3) images in [0, 1], each drawn at exactly size x size pixels (nearest neighbour)."""
    return tile(resize_nearest(to_rgb_uint8(images), size), columns=len(images), gap=gap, background=128)
