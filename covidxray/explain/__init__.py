"""Where the model looked: Grad-CAM heat maps and their overlays on the radiograph.

`heatmap_picture` (covidxray.explain.picture) is the one picture every consumer draws; `covidxray.explain.cam`
makes heat maps from an ONNX export's class activation maps, without torch.
"""

from __future__ import annotations

from covidxray.lazy import lazy_names

_API = {"heatmap_picture": "covidxray.explain.picture"}

__all__ = list(_API)

__getattr__, __dir__ = lazy_names(__name__, _API)
