"""Where the model looked: Grad-CAM heat maps and their overlays on the radiograph.

`heatmap_picture` (covidxray.explain.picture) is the one picture every consumer draws.
"""

__all__ = ["heatmap_picture"]


def __getattr__(name: str):
    if name == "heatmap_picture":
        from covidxray.explain.picture import heatmap_picture

        return heatmap_picture
    raise AttributeError(f"module 'covidxray.explain' has no attribute {name!r}")
