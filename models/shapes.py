"""A generated image dataset of coloured geometric shapes, with the object masks kept.

Colour, position, size, rotation and background vary at random, so only the outline tells the
classes apart: a network must go from edges to corners to whole shapes, which is the hierarchy the
Feature Hierarchy page shows. The masks let Grad-CAM be checked against where the object really is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ("circle", "square", "triangle", "cross")
IMAGE_SIZE = 32


def make_shapes(n: int, noise: float, rng: np.random.Generator, size: int = IMAGE_SIZE):
    """`n` RGB images, balanced over SHAPE_CLASSES.

    Args:
        n: number of images.
        noise: standard deviation of per-pixel Gaussian noise added to the images (0 = clean).
        rng: source of all randomness, so equal seeds give equal images.
        size: image side in pixels.

    Returns:
        images (n, size, size, 3) float32 in [0, 1], labels (n,) int32, masks (n, size, size) bool.
    """
    labels = np.arange(n) % len(SHAPE_CLASSES)
    rng.shuffle(labels)
    images = np.empty((n, size, size, 3), dtype="float32")
    masks = np.empty((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = _draw_one(SHAPE_CLASSES[label], size, rng)
    if noise:
        images = np.clip(images + rng.normal(0, noise, images.shape), 0, 1).astype("float32")
    return images, labels.astype("int32"), masks


def _draw_one(kind: str, size: int, rng: np.random.Generator):
    radius = rng.uniform(0.2, 0.34) * size
    centre = rng.uniform(radius + 1, size - radius - 1, 2)
    angle = rng.uniform(0, 2 * np.pi)
    mask_img = Image.new("L", (size, size), 0)
    _draw_shape(ImageDraw.Draw(mask_img), kind, centre, radius, angle)
    mask = np.asarray(mask_img) > 0

    background, foreground = _contrasting_colours(rng)
    # A smooth two-colour gradient as background, so "any non-flat pixel" is not a shortcut.
    ramp = np.linspace(0, 1, size)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, size)[:, None, None]
    other = np.clip(background + rng.uniform(-0.15, 0.15, 3), 0, 1)
    image = background * (1 - ramp) + other * ramp
    image = np.broadcast_to(image, (size, size, 3)).copy()
    image[mask] = foreground
    return image.astype("float32"), mask


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, centre, radius: float, angle: float) -> None:
    cx, cy = centre
    if kind == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
        return
    if kind == "square":
        corners = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
        scale = radius / np.sqrt(2) * 1.1
    elif kind == "triangle":
        corners = [(np.cos(a), np.sin(a)) for a in (0, 2 * np.pi / 3, 4 * np.pi / 3)]
        scale = radius * 1.1
    elif kind == "cross":
        w = 0.33
        corners = [
            (w, 1),
            (-w, 1),
            (-w, w),
            (-1, w),
            (-1, -w),
            (-w, -w),
            (-w, -1),
            (w, -1),
            (w, -w),
            (1, -w),
            (1, w),
            (w, w),
        ]
        scale = radius
    else:
        raise ValueError(f"Unknown shape {kind!r}; choose one of {', '.join(SHAPE_CLASSES)}.")
    c, s = np.cos(angle), np.sin(angle)
    points = [(cx + scale * (x * c - y * s), cy + scale * (x * s + y * c)) for x, y in corners]
    draw.polygon(points, fill=255)


def _contrasting_colours(rng: np.random.Generator):
    """A background and a shape colour whose brightness differs enough to see the outline."""
    while True:
        background, foreground = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        luminance = np.array([0.299, 0.587, 0.114])
        if abs(background @ luminance - foreground @ luminance) > 0.3:
            return background, foreground
