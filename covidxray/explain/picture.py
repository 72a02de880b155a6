"""The one heat-map picture of a screened radiograph, for every consumer: predict's PNG files, the web
page, the PACS's secondary capture. The map of the decided class over the image, the lung outline, and
(with a title) a caption strip: file, probability, decision, gate warning, colour key, research notice.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from covidxray import RESEARCH_NOTICE
from covidxray.explain.overlay import captioned, heatmap_key, overlay, result_lines

__all__ = ["heatmap_picture"]


def heatmap_picture(predictor, image: np.ndarray, result, *, title: str | None = None,
                    heat: np.ndarray | None = None, opacity: float = 0.45) -> Image.Image:
    """The heat map of result's decided class (covid when none) over image, with the lungs outlined.

    Args:
        predictor: the Predictor that screened image (its classifier draws the map, its segmenter the outline).
        image: the radiograph as read, 2-D floats in [0, 1] (any size: a display copy is fine).
        result: the image's ScreeningResult; its status must be scored.
        title: caption the picture with this title (the file name), the result's lines, a colour key
            and the research notice; None gives the bare overlay (the web page blends it itself).
        heat: a map already computed for this image (any size); else result.heatmap, else Grad-CAM now.
        opacity: the map's weight where it is strongest.

    Returns:
        An RGB picture the size of image (taller by the caption strip when titled).
    """
    target = predictor.heatmap_class(result)
    if heat is None:
        heat = result.heatmap if result.heatmap is not None else predictor.heatmap(image, target, result)
    mask = predictor.lung_mask(image, result)
    picture = overlay(image, heat, opacity=opacity, lung_mask=mask)
    if title is None:
        return picture
    return captioned(picture, title, result_lines(result, predictor.labels),
                     heatmap_key(target, outline=mask is not None), RESEARCH_NOTICE)
