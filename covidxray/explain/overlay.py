"""Blend a heat map over the radiograph it explains, as an RGB picture people can read."""

from __future__ import annotations

import numpy as np
from PIL import Image


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.45, colormap: str = "inferno") -> Image.Image:
    """The greyscale image (2-D, [0, 1]) with heat (any size, [0, 1]) resized onto it and coloured."""
    from matplotlib import colormaps

    height, width = image.shape
    heat_image = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    colours = colormaps[colormap](np.asarray(heat_image, np.float32) / 255.0)[..., :3]
    grey = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=2)
    weight = opacity * (np.asarray(heat_image, np.float32)[..., None] / 255.0)
    blended = grey * (1 - weight) + colours * weight
    return Image.fromarray((blended * 255).round().astype(np.uint8), mode="RGB")
