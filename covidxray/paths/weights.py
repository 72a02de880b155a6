"""Where the bundled models live: the package's weights folder, named once for every reader of it.

The classifier, its ONNX export, the input gate, the lung U-Net and the severity models all sit in
covidxray/weights of the installed package; each module that loads one builds its path from here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WEIGHTS_DIR"]

#: covidxray/weights of the installed package: what every user of this copy gets.
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
