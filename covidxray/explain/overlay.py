"""Blend a heat map over the radiograph it explains, as an RGB picture people can read."""

from __future__ import annotations

import numpy as np
from PIL import Image


OUTLINE_RGB = (0.0, 0.9, 1.0)  # cyan: distinct from every colour of the heat map


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.45, colormap: str = "inferno",
            lung_mask: np.ndarray | None = None) -> Image.Image:
    """The greyscale image (2-D, [0, 1]) with heat (any size, [0, 1]) resized onto it and coloured;
    with lung_mask (bool, any size), the lungs' outline is drawn on top."""
    from matplotlib import colormaps

    height, width = image.shape
    heat_image = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    colours = colormaps[colormap](np.asarray(heat_image, np.float32) / 255.0)[..., :3]
    grey = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=2)
    weight = opacity * (np.asarray(heat_image, np.float32)[..., None] / 255.0)
    blended = grey * (1 - weight) + colours * weight
    if lung_mask is not None:
        from covidxray.imaging.lungs import lung_outline

        mask = Image.fromarray(np.asarray(lung_mask, np.uint8) * 255).resize((width, height), Image.Resampling.NEAREST)
        edge = lung_outline(np.asarray(mask) > 127)
        edge = edge | np.roll(edge, 1, axis=0) | np.roll(edge, 1, axis=1)  # two pixels wide, visible when scaled down
        blended[edge] = OUTLINE_RGB
    return Image.fromarray((blended * 255).round().astype(np.uint8), mode="RGB")
