"""Run a checkpoint over the images of a table: probabilities, penultimate features, read errors.

Images are decoded in a thread pool while the model works; an unreadable image gets an error
and no probability, and is counted, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from covidxray.console import progress
from covidxray.inference.inputs import read_image_or_error, read_in_batches


@dataclass
class Predictions:
    proba: np.ndarray      # (N, labels), NaN rows where the image could not be read
    features: np.ndarray   # (N, D) penultimate features (input of the last Linear layer)
    errors: list[str]      # '' where the image was read


def predict_images(classifier, images: list[np.ndarray], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and penultimate features of already-read images, in batches.

    Args:
        classifier: the Classifier.
        images: 2-D float [0, 1] images.
        batch_size: images per model call.

    Returns:
        (probabilities (n, labels), features (n, d)).
    """
    logits, features = classifier.outputs(images, batch_size)
    if features is None:
        raise ValueError(f"{classifier.path}: this backend gives no penultimate features; load the checkpoint by torch")
    return classifier.calibrated(logits), features


def predict_paths(classifier, paths: list[str], batch_size: int = 32, transform=None, description: str = "predicting") -> Predictions:
    """Read and predict every path; an unreadable file becomes its row's error, never the run's.

    Args:
        classifier: the Classifier.
        paths: image files.
        batch_size: images per model call.
        transform: transform(image, index) may alter an image before the model (the audits hide lungs).
        description: the progress bar's text.

    Returns:
        Predictions: probabilities, features and an error string per path.
    """
    count = len(paths)
    proba = np.full((count, len(classifier.labels)), np.nan)
    features: np.ndarray | None = None
    errors = [""] * count
    with progress() as bar:
        task = bar.add_task(description, total=count)
        for start, read in zip(range(0, count, batch_size), read_in_batches(paths, batch_size, reader=read_image_or_error)):
            chunk = list(range(start, start + len(read)))
            good, images = [], []
            for index, (image, error) in zip(chunk, read):
                if image is None:
                    errors[index] = error
                    continue
                good.append(index)
                images.append(transform(image, index) if transform else image)
            if images:
                batch_proba, batch_features = predict_images(classifier, images, batch_size)
                proba[good] = batch_proba
                if features is None:
                    features = np.full((count, batch_features.shape[1]), np.nan, np.float32)
                features[good] = batch_features
            bar.advance(task, len(chunk))
    return Predictions(proba, features if features is not None else np.zeros((count, 0), np.float32), errors)
