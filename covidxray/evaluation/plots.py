"""The report's figures as PNG bytes: ROC and PR curves, confusion matrices, reliability, montage."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def roc_pr_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """ROC and PR curves, one line per named (is_positive, score) pair."""
    figure, (roc_axis, pr_axis) = plt.subplots(1, 2, figsize=(10, 4.4))
    for name, (is_positive, score) in curves.items():
        if is_positive.min(initial=1) == is_positive.max(initial=0):
            continue
        fpr, tpr, _ = roc_curve(is_positive, score)
        precision, recall, _ = precision_recall_curve(is_positive, score)
        roc_axis.plot(fpr, tpr, label=name)
        pr_axis.plot(recall, precision, label=name)
    roc_axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_axis.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    pr_axis.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall")
    for axis in (roc_axis, pr_axis):
        axis.legend(fontsize=8, loc="lower right" if axis is roc_axis else "lower left")
        axis.grid(alpha=0.3)
    return _png(figure)


def confusion_matrices(matrix: np.ndarray, labels: list[str]) -> bytes:
    """Counts and row-normalised matrices side by side (rows: truth, columns: prediction)."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    for axis, values, title, fmt in ((axes[0], matrix, "counts", "{:d}"), (axes[1], normalised, "row-normalised", "{:.2f}")):
        axis.imshow(values, cmap="Blues", vmin=0)
        for (i, j), value in np.ndenumerate(values):
            axis.text(j, i, fmt.format(value), ha="center", va="center",
                      color="white" if value > values.max() / 2 else "black")
        axis.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
                 xlabel="predicted", ylabel="true", title=title)
    return _png(figure)


def reliability_diagram(table, ece: float, brier: float) -> bytes:
    """Observed frequency against mean predicted probability per bin, with bin counts.

    Args:
        table: reliability_table's rows.
        ece: expected calibration error, shown in the title.
        brier: Brier score, shown in the title.

    Returns:
        PNG bytes.
    """
    figure, axis = plt.subplots(figsize=(5, 4.4))
    filled = table[table["count"] > 0]
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    axis.plot(filled["mean_predicted"], filled["observed"], marker="o", label="model")
    for _, row in filled.iterrows():
        axis.annotate(str(int(row["count"])), (row["mean_predicted"], row["observed"]), fontsize=7,
                      textcoords="offset points", xytext=(3, -9))
    axis.set(xlabel="predicted p(covid)", ylabel="observed frequency of covid",
             title=f"Reliability (ECE {ece:.3f}, Brier {brier:.3f})", xlim=(0, 1), ylim=(0, 1))
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return _png(figure)


#: Colour map of the Grad-CAM tiles and their colour bar.
HEAT_COLORMAP = "inferno"


def montage(tiles: list[tuple[np.ndarray, np.ndarray, str]], columns: int = 4) -> bytes:
    """A grid of Grad-CAM tiles (greyscale image [0, 1], heat map [0, 1] of any size, caption) with one colour bar.

    Each heat map is drawn over its radiograph in HEAT_COLORMAP, its opacity rising with the heat,
    so that cold regions leave the film readable and hot ones stand out in full colour; the colour
    bar says what the colours mean.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    rows = max(1, int(np.ceil(len(tiles) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(3.1 * columns + 0.8, 3.4 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, (image, heat, caption) in zip(axes.ravel(), tiles):
        height, width = image.shape[:2]
        axis.imshow(image, cmap="gray", vmin=0, vmax=1, extent=(0, width, height, 0))
        heat = np.clip(np.asarray(heat, dtype=float), 0, 1)
        axis.imshow(heat, cmap=HEAT_COLORMAP, vmin=0, vmax=1, extent=(0, width, height, 0), interpolation="bilinear",
                    alpha=np.clip(0.15 + 0.75 * heat, 0, 1))
        axis.set_xlim(0, width)
        axis.set_ylim(height, 0)
        axis.set_title(caption, fontsize=7)
    colour_bar = figure.colorbar(ScalarMappable(Normalize(0, 1), colormaps[HEAT_COLORMAP]), ax=axes.ravel().tolist(),
                                 fraction=0.02, pad=0.01)
    colour_bar.set_label("Grad-CAM weight for the class the model said (1 = the map's maximum)", fontsize=8)
    return _png(figure)
