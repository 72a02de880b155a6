"""Fit the input gate (lateral-view detector, out-of-distribution score) on the real data and save it.

Run: python -m covidxray.imaging.gate_fit --data ../shared/data --out covidxray/weights/gate.npz
It prints patient-grouped cross-validated figures, the ones quoted in docs/gate.md.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from covidxray.errors import ImageReadError
from covidxray.imaging.gate import THUMB_SIZE, GateModel, assess_input, colourfulness, describe, is_blank
from covidxray.imaging.read import read_image

FRONTAL_VIEWS = {"PA", "AP", "AP Supine"}
LATERAL_VIEWS = {"L"}
#: Out-of-distribution: kept PCA components, and the share of held-out radiographs that must pass.
OOD_COMPONENTS = 24
OOD_PASS_QUANTILE = 0.99
#: Lateral detector: PCA components before the logistic regression, and its decision threshold.
LATERAL_COMPONENTS = 24
LATERAL_THRESHOLD = 0.5
FOLDS = 5
SEED = 20200601


@dataclass
class Radiograph:
    """One real image: what the gate sees (describe()), its view ('frontal' or 'lateral'),
    collection and patient group, and what the gate sees of it inverted (every tenth image)."""

    pixels: np.ndarray
    stats: np.ndarray
    view: str
    collection: str
    group: str
    inverted: tuple[np.ndarray, np.ndarray] | None
    blank: bool


def load_radiographs(data: Path, per_collection: int, rng: np.random.Generator) -> list[Radiograph]:
    """Frontal and lateral X-rays of the Cohen collection, and frontal ones of NIH and Radiography DB.

    darkcovidnet's Covid-19 folder is left out: it copies Cohen images, which would leak across folds.
    """
    cohen = data / "covid-chestxray-dataset"
    found: list[tuple[Path, str, str, str]] = []
    with open(cohen / "metadata.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            path = cohen / row["folder"] / row["filename"]
            view = "frontal" if row["view"] in FRONTAL_VIEWS else "lateral" if row["view"] in LATERAL_VIEWS else ""
            if row["modality"] == "X-ray" and view and path.is_file():
                found.append((path, view, "cohen", f"cohen:{row['patientid']}"))
    nih = sorted((data / "darkcovidnet" / "X-Ray Image DataSet").glob("[NP]*/*.png"))
    for path in _sample(nih, per_collection, rng):
        found.append((path, "frontal", "nih", f"nih:{path.name.split('_')[0]}"))
    radiography = sorted((data / "covid19-radiography-database" / "COVID-19_Radiography_Dataset").glob("*/*.png"))
    for path in _sample(radiography, per_collection, rng):
        found.append((path, "frontal", "radiography", f"radiography:{path.name}"))  # no patient ids there
    radiographs = []
    for number, (path, view, collection, group) in enumerate(found):
        try:
            image = read_image(path)
            inverted = describe(1.0 - image) if number % 10 == 0 and view == "frontal" else None
            radiographs.append(Radiograph(*describe(image), view, collection, group, inverted, is_blank(image)[0]))
        except ImageReadError as error:
            print(f"skipped: {error}")
    return radiographs


def _sample(paths: list[Path], count: int, rng: np.random.Generator) -> list[Path]:
    if len(paths) <= count:
        return paths
    return [paths[i] for i in sorted(rng.choice(len(paths), count, replace=False))]


def fit_ood(pixels: np.ndarray, stats: np.ndarray, groups: np.ndarray) -> tuple[GateModel, float]:
    """Fit on frontal radiographs; threshold = OOD_PASS_QUANTILE of grouped out-of-fold scores."""
    out_of_fold = np.empty(len(pixels))
    for train, held_out in GroupKFold(FOLDS).split(pixels, groups=groups):
        out_of_fold[held_out] = _fit_ood_parts(pixels[train], stats[train]).ood_score(pixels[held_out], stats[held_out])
    return _fit_ood_parts(pixels, stats), float(np.quantile(out_of_fold, OOD_PASS_QUANTILE))


def _fit_ood_parts(pixels: np.ndarray, stats: np.ndarray) -> GateModel:
    """Probabilistic PCA of the thumbnails and a shrunk Gaussian of the statistics (no threshold yet)."""
    pca = PCA(n_components=OOD_COMPONENTS, random_state=SEED).fit(pixels)
    total = float(pixels.var(axis=0, ddof=1).sum())
    residual = max(total - float(pca.explained_variance_.sum()), 1e-8) / (pixels.shape[1] - OOD_COMPONENTS)
    gaussian = LedoitWolf().fit(stats)
    return GateModel(pca.mean_, pca.components_, pca.explained_variance_, residual, gaussian.location_,
                     gaussian.precision_, np.inf, np.zeros(pixels.shape[1]), -50.0, LATERAL_THRESHOLD)


def fit_lateral(pixels: np.ndarray, is_lateral: np.ndarray) -> tuple[np.ndarray, float]:
    """PCA + balanced logistic regression, folded into one linear function of the thumbnail pixels.

    Left-right mirrored copies are added in training, since laterals face either way.
    """
    mirrored = pixels.reshape(-1, THUMB_SIZE, THUMB_SIZE)[:, :, ::-1].reshape(len(pixels), -1)
    vectors = np.concatenate([pixels, mirrored]).astype(np.float64)
    labels = np.concatenate([is_lateral, is_lateral]).astype(int)
    pca = PCA(n_components=LATERAL_COMPONENTS, random_state=SEED).fit(vectors)
    features = pca.transform(vectors)
    scale = features.std(axis=0)
    classifier = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(features / scale, labels)
    weights = pca.components_.T @ (classifier.coef_[0] / scale)
    return weights, float(classifier.intercept_[0] - weights @ pca.mean_)


def synthetic_non_radiographs(seed: int, per_kind: int = 20, size: int = 256) -> dict[str, list[np.ndarray]]:
    """Greyscale [0, 1] pictures that are not radiographs: noise, gradients, checkerboards, photos, text."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 1.0, size)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    kinds: dict[str, list[np.ndarray]] = {name: [] for name in ("noise", "gradient", "checkerboard", "photo", "text")}
    for _ in range(per_kind):
        kinds["noise"].append(_blur(rng.random((size, size)), rng.choice([0.0, 1.0, 3.0])))
        angle, low, high = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.4), rng.uniform(0.6, 1.0)
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        if rng.random() < 0.3:
            ramp = np.hypot(xx - rng.random(), yy - rng.random())
        kinds["gradient"].append(low + (high - low) * (ramp - ramp.min()) / np.ptp(ramp))
        cells = int(rng.integers(2, 17))
        board = ((np.floor(xx * cells * 0.999) + np.floor(yy * cells * 0.999)) % 2).astype(np.float64)
        kinds["checkerboard"].append(0.15 + 0.7 * board)
        kinds["photo"].append(_synthetic_photo(rng, size))
        kinds["text"].append(_text_page(rng, size))
    return kinds


def _blur(picture: np.ndarray, radius: float) -> np.ndarray:
    if radius == 0:
        return picture
    blurred = Image.fromarray((picture * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(float(radius)))
    return np.asarray(blurred, np.float64) / 255.0


def _synthetic_photo(rng: np.random.Generator, size: int) -> np.ndarray:
    """Sky, ground and objects with 1/f texture: the statistics of a natural photograph, in grey."""
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / np.maximum(frequency, 1 / size)
    texture = np.real(np.fft.ifft2(spectrum))
    texture = (texture - texture.mean()) / (texture.std() + 1e-9)
    horizon = int(rng.integers(size // 4, 3 * size // 4))
    picture = np.empty((size, size))
    picture[:horizon] = rng.uniform(0.5, 0.95)
    picture[horizon:] = rng.uniform(0.1, 0.6)
    canvas = Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(2, 7))):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(size // 10, size // 2, 2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([int(x), int(y), int(x + w), int(y + h)], fill=int(rng.integers(0, 256)))
    photo = np.asarray(canvas, np.float64) / 255.0 + 0.08 * texture
    return np.clip(photo, 0.0, 1.0)


def _text_page(rng: np.random.Generator, size: int) -> np.ndarray:
    paper, ink = (255, 0) if rng.random() < 0.7 else (0, 255)
    page = Image.new("L", (size, size), paper)
    draw = ImageDraw.Draw(page)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 "
    for line in range(int(rng.integers(4, 20))):
        text = "".join(rng.choice(list(letters), int(rng.integers(10, 40))))
        draw.text((int(rng.integers(2, 20)), 4 + line * 12), text, fill=ink)
    return _blur(np.asarray(page, np.float64) / 255.0, rng.choice([0.0, 0.7]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding the three collections")
    parser.add_argument("--out", type=Path, required=True, help="where to write gate.npz")
    parser.add_argument("--per-collection", type=int, default=600, help="frontal images sampled from NIH and Radiography DB")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(SEED)
    radiographs = load_radiographs(args.data, args.per_collection, rng)
    pixels = np.stack([r.pixels for r in radiographs])
    stats = np.stack([r.stats for r in radiographs])
    views = np.array([r.view for r in radiographs])
    collections = np.array([r.collection for r in radiographs])
    groups = np.array([r.group for r in radiographs])
    frontal = views == "frontal"
    print(f"images: {frontal.sum()} frontal ({', '.join(f'{c} {np.sum(frontal & (collections == c))}' for c in ('cohen', 'nih', 'radiography'))}), "
          f"{(~frontal).sum()} lateral (cohen), {len(set(groups))} patient groups")

    # Lateral detector, patient-grouped cross-validation.
    is_lateral = ~frontal
    p_lateral = np.empty(len(pixels))
    for train, held_out in StratifiedGroupKFold(FOLDS, shuffle=True, random_state=SEED).split(pixels, is_lateral, groups):
        weights, bias = fit_lateral(pixels[train], is_lateral[train])
        p_lateral[held_out] = 1 / (1 + np.exp(-(pixels[held_out] @ weights + bias)))
    called = p_lateral > LATERAL_THRESHOLD
    print(f"lateral detection ({FOLDS}-fold, grouped by patient): sensitivity {called[is_lateral].mean():.3f} "
          f"({called[is_lateral].sum()}/{is_lateral.sum()} laterals flagged)")
    for name in ("cohen", "nih", "radiography"):
        chosen = frontal & (collections == name)
        print(f"  specificity on {name} frontal: {1 - called[chosen].mean():.3f} ({(~called[chosen]).sum()}/{chosen.sum()} passed)")

    # Out-of-distribution score, fitted on frontal radiographs; nested so the pass rate is honest.
    f_pixels, f_stats, f_groups = pixels[frontal], stats[frontal], groups[frontal]
    passed = np.zeros(len(f_pixels), bool)
    for train, held_out in GroupKFold(FOLDS).split(f_pixels, groups=f_groups):
        model, threshold = fit_ood(f_pixels[train], f_stats[train], f_groups[train])
        passed[held_out] = model.ood_score(f_pixels[held_out], f_stats[held_out]) <= threshold
    print(f"out-of-distribution pass rate on held-out frontal radiographs ({FOLDS}-fold, grouped): "
          f"{passed.mean():.3f} ({passed.sum()}/{passed.size}; target {OOD_PASS_QUANTILE})")
    for name in ("cohen", "nih", "radiography"):
        chosen = collections[frontal] == name
        print(f"  {name}: {passed[chosen].mean():.3f} ({passed[chosen].sum()}/{chosen.sum()})")

    whole = passed & ~called[frontal]
    print(f"held-out frontal radiographs passing both (not unlike a radiograph, not called lateral): "
          f"{whole.mean():.3f} ({whole.sum()}/{whole.size})")

    parts, threshold = fit_ood(f_pixels, f_stats, f_groups)
    weights, bias = fit_lateral(pixels, is_lateral)
    model = replace(parts, ood_threshold=threshold, lateral_weights=weights, lateral_bias=bias)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KB): {OOD_COMPONENTS} components, "
          f"OOD threshold {threshold:.3f}, lateral threshold {LATERAL_THRESHOLD}")

    # The whole gate (blank check + fitted parts) on pictures that are not radiographs.
    rejected_all = []
    for kind, pictures in synthetic_non_radiographs(SEED + 1).items():
        rejected = [not assess_input(p.astype(np.float32), model=model).ok for p in pictures]
        rejected_all += rejected
        print(f"  rejected {kind}: {np.mean(rejected):.3f} ({sum(rejected)}/{len(rejected)})")
    print(f"rejection rate on synthetic non-radiographs (final gate): {np.mean(rejected_all):.3f} "
          f"({sum(rejected_all)}/{len(rejected_all)})")
    inverted = [model.ood_score(*r.inverted)[0] > threshold for r in radiographs if r.inverted is not None]
    print(f"flagged as unlike a radiograph when inverted (final gate, images it was fitted on): "
          f"{np.mean(inverted):.3f} ({sum(inverted)}/{len(inverted)})")
    print(f"real radiographs caught by the blank check: {sum(r.blank for r in radiographs)}/{len(radiographs)}")
    _report_colour(args.data)
    return 0


def _report_colour(data: Path) -> None:
    """How colourful the real radiograph files are (many are stored as RGB), against COLOURFUL_LIMIT."""
    from covidxray.imaging.gate import COLOURFUL_LIMIT

    files = sorted((data / "covid-chestxray-dataset" / "images").iterdir())
    scores = np.array([colourfulness(path) for path in files if path.suffix.lower() in {".jpg", ".jpeg", ".png"}])
    print(f"colourfulness of Cohen radiograph files: median {np.median(scores):.4f}, 99th percentile "
          f"{np.quantile(scores, 0.99):.4f}, max {scores.max():.4f}; above {COLOURFUL_LIMIT}: {(scores > COLOURFUL_LIMIT).sum()}/{scores.size}")


if __name__ == "__main__":
    raise SystemExit(main())
