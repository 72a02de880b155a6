"""Measure a classifier on one part of a split (or any labelled manifest): metrics, calibration, audits.

The decision threshold and the temperature come from the checkpoint (fitted on validation);
nothing here is fitted on the part being evaluated except the audits' own probes, which are
cross-validated. The same checkpoint and table give the same numbers (seeded bootstrap).
covidxray.evaluation.pipeline.evaluate runs this on each part asked for and writes the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from covidxray.errors import CovidxrayError
import covidxray.evaluation.audits as audits
import covidxray.evaluation.metrics as metrics
import covidxray.evaluation.plots as plots
import covidxray.evaluation.yardstick as yardstick
from covidxray.evaluation.calibration import brier_score, expected_calibration_error, reliability_table
from covidxray.evaluation.metrics import Estimate, confusion, decide, patient_bootstrap
from covidxray.evaluation.predictions import predict_paths


@dataclass
class PartResult:
    """Everything measured on one part; `figures` holds PNG bytes for the report."""

    part: str
    n_images: int
    n_patients: int
    unreadable: int
    overall: dict[str, Estimate]
    per_source: dict[str, dict[str, Estimate]]
    confusion: list[list[int]]
    calibration: dict
    audits: dict
    within_hospital: dict = field(default_factory=dict)
    held_out_sources: list[str] = field(default_factory=list)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)


def truth_indices(labels_column: pd.Series, labels: tuple[str, ...]) -> np.ndarray:
    """Class index per row in the checkpoint's label order (binary: covid vs not_covid)."""
    if len(labels) == 2:
        return np.where(labels_column == "covid", labels.index("covid"), labels.index("not_covid"))
    unknown = set(labels_column) - set(labels)
    if unknown:
        raise CovidxrayError(f"labels {sorted(unknown)} are not among the model's labels {list(labels)}")
    return labels_column.map(labels.index).to_numpy()


def patient_keys(rows: pd.DataFrame) -> np.ndarray:
    """Bootstrap unit: the split's group (patient + duplicates), else patient id, else the image."""
    for column in ("group", "patient_id"):
        if column in rows:
            keys = rows[column].where(rows[column] != "", rows["path"])
            return keys.to_numpy()
    return rows["path"].to_numpy()


def select_part(table: pd.DataFrame, part: str, source: str) -> pd.DataFrame:
    """The labelled rows of one part, or a clear error saying which parts there are.

    Args:
        table: a split (or, with part 'all', any labelled manifest).
        part: train, val, test, external or all.
        source: the table's name in errors.

    Returns:
        The part's labelled rows, index reset.
    """
    if part != "all":
        if "split" not in table:
            raise CovidxrayError(f"{source}: has no split column; use --part all for a plain manifest")
        if part not in set(table["split"]):
            raise CovidxrayError(f"{source}: no rows in part '{part}' (parts: {', '.join(sorted(set(table['split'])))})")
        table = table[table["split"] == part]
    rows = table[table["label"] != ""].reset_index(drop=True)
    if rows.empty:
        raise CovidxrayError(f"{source}: part '{part}' has no labelled images")
    return rows


def evaluate_part(classifier, rows: pd.DataFrame, part: str, resamples: int, seed: int,
                  run_audits: bool = True, montage_per_class: int = 2) -> PartResult:
    """Everything measured on one part: metrics with CIs overall and per source, the yardstick, calibration, audits.

    Args:
        classifier: the Classifier (its threshold and calibration are used as they are).
        rows: the part's labelled rows (select_part).
        part: the part's name (external parts are marked held out).
        resamples: patient-bootstrap resamples.
        seed: seed of the bootstrap and the audits.
        run_audits: run the shortcut audits and the Grad-CAM montage.
        montage_per_class: right and wrong cases per class in the montage.

    Returns:
        PartResult, with the predictions and the figures' PNG bytes.
    """
    labels = tuple(classifier.labels)
    predictions = predict_paths(classifier, rows["path"].tolist(), description=f"predicting {part}")
    read = np.array([not e for e in predictions.errors])
    rows_ok = rows[read].reset_index(drop=True)
    proba = predictions.proba[read]
    features = predictions.features[read] if predictions.features.size else predictions.features
    truth = truth_indices(rows_ok["label"], labels)
    groups = patient_keys(rows_ok)
    overall = patient_bootstrap(truth, proba, labels, classifier.threshold, groups, resamples, seed)
    per_source = {}
    for source, index in rows_ok.groupby("source").groups.items():
        index = np.asarray(index)
        per_source[str(source)] = patient_bootstrap(truth[index], proba[index], labels, classifier.threshold,
                                                    groups[index], max(200, resamples // 2), seed)
    predicted = decide(proba, labels, classifier.threshold)
    matrix = confusion(truth, predicted, len(labels))
    covid = labels.index("covid")
    within = yardstick.within_hospital(rows_ok["label"].to_numpy(), rows_ok["source"].to_numpy(), proba[:, covid],
                                       groups, resamples, seed)
    is_covid = truth == covid
    table = reliability_table(is_covid, proba[:, covid])
    ece, brier = expected_calibration_error(is_covid, proba[:, covid]), brier_score(is_covid, proba[:, covid])
    result = PartResult(part, int(len(rows_ok)), int(len(set(groups))), int((~read).sum()), overall, per_source,
                        matrix.tolist(), {"ece": ece, "brier": brier, "bins": table.to_dict(orient="records")}, {},
                        within, sorted(set(rows_ok["source"])) if part == "external" else [])
    frame = rows[["path", "source", "patient_id", "label"]].copy() if "patient_id" in rows else rows[["path", "source", "label"]].copy()
    for column, label in enumerate(labels):
        frame[f"p_{label}"] = np.round(predictions.proba[:, column], 6)
    frame["prediction"] = ""
    frame.loc[read, "prediction"] = [labels[k] for k in predicted]
    frame["error"] = predictions.errors
    result.predictions = frame
    if part != "val" and overall[_auroc_key(overall)].value > 0.95:
        result.notes.append("AUROC above 0.95 on public data: suspect a shortcut (source, markers, age) before believing it; "
                            "see the audits and the per-source table.")
    curves = {"all": (is_covid, proba[:, covid])}
    curves.update({f"{s}": (is_covid[np.asarray(i)], proba[np.asarray(i), covid]) for s, i in rows_ok.groupby("source").groups.items()})
    result.figures["roc_pr"] = plots.roc_pr_curves(curves)
    result.figures["confusion"] = plots.confusion_matrices(matrix, list(labels))
    result.figures["reliability"] = plots.reliability_diagram(table, ece, brier)
    if run_audits:
        result.audits = run_shortcut_audits(classifier, rows_ok, features, truth, proba, groups, resamples, seed)
        result.figures["montage"] = heatmap_montage(classifier, rows_ok, truth, proba, predicted, montage_per_class)
    return result


def run_shortcut_audits(classifier, rows, features, truth, proba, groups, resamples, seed) -> dict:
    """Does the model read the lungs or the hospital? Source probe, lungs hidden, lungs only, Grad-CAM in the lungs.

    Args:
        classifier: the Classifier.
        rows: the part's readable rows.
        features: their penultimate features.
        truth: class index per row.
        proba: calibrated probabilities per row.
        groups: patient groups.
        resamples: patient-bootstrap resamples.
        seed: seed of the probes, the sample and the bootstrap.

    Returns:
        {source_probe, source_probe_covid_only, cam_in_lungs, lungs, targets}.
    """
    labels = tuple(classifier.labels)
    covid = labels.index("covid")
    within = rows["label"] == "covid"
    probes = {"source_probe": (features, rows["source"].to_numpy(), groups),
              "source_probe_covid_only": (features[within.to_numpy()], rows.loc[within, "source"].to_numpy(),
                                          groups[within.to_numpy()])}
    found: dict = {name: audits.source_probe(*probes[name], seed=seed) for name in _tracked(probes, "audit: source probes")}
    masks = rows["lung_mask"].tolist() if "lung_mask" in rows else [""] * len(rows)
    has_mask = np.array([audits.readable_masks([mask])[0] for mask in _tracked(masks, "audit: reading lung masks")], dtype=bool)
    masks = [m if ok else "" for m, ok in zip(masks, has_mask)]
    segmenter = _segmenter()
    subset = np.arange(len(rows)) if segmenter is not None else np.flatnonzero(has_mask)
    lungs: dict = {"n": int(len(subset)), "hand_masks": int(has_mask[subset].sum()),
                   "segmenter_masks": int(len(subset) - has_mask[subset].sum())}
    is_covid = truth[subset] == covid
    if len(subset) < 10 or is_covid.all() or not is_covid.any():
        lungs["applicable"] = False
        lungs["reason"] = "fewer than 10 images with lung masks, or only one class among them"
    else:
        lungs["applicable"] = True
        paths = rows["path"].to_numpy()[subset].tolist()
        mask_paths = [masks[i] for i in subset]
        sub_groups = groups[subset]
        lungs["original"] = _auroc_estimate(truth[subset], proba[subset], labels, classifier.threshold, sub_groups, resamples, seed)
        lung_masks = audits.LungMasks(mask_paths, segmenter)
        found["cam_in_lungs"] = _cam_in_lungs(classifier, paths, lung_masks, sub_groups, resamples, seed)
        for region, name in (("lungs", "lungs_hidden"), ("outside", "lungs_only")):
            hidden = predict_paths(classifier, paths, transform=audits.masked_transform(lung_masks, region),
                                   description=f"audit: {name.replace('_', ' ')}")
            lungs[name] = _auroc_estimate(truth[subset], hidden.proba, labels, classifier.threshold, sub_groups, resamples, seed)
    found["lungs"] = lungs
    found["targets"] = shortcut_targets(found)
    return found


CAM_IMAGES = 120  # Grad-CAM is one backward pass per image: a fixed, seeded sample keeps audits quick


def _tracked(items, description: str):
    """Yield items while a progress bar (stderr) counts them: the audits' slow steps say what they do."""
    from covidxray.console import progress

    items = list(items)
    with progress() as bar:
        task = bar.add_task(description, total=len(items))
        for item in items:
            yield item
            bar.advance(task)


def _cam_in_lungs(classifier, paths: list[str], lung_masks, groups: np.ndarray, resamples: int, seed: int) -> dict:
    """Mean share of covid Grad-CAM mass inside the lung masks over a seeded sample, with its CI."""
    from covidxray.imaging.read import read_image

    chosen = np.sort(np.random.default_rng(seed).permutation(len(paths))[:CAM_IMAGES])
    images, masks = [], []
    for i in _tracked(chosen, "audit: lung masks for Grad-CAM"):
        images.append(read_image(paths[i]))
        masks.append(lung_masks.get(int(i), images[-1]))
    pairs = [audits.cam_lung_share(classifier, [image], [mask])
             for image, mask in _tracked(list(zip(images, masks)), "audit: Grad-CAM inside the lungs")]
    shares = np.concatenate([share for share, _ in pairs]) if pairs else np.array([])
    areas = np.concatenate([area for _, area in pairs]) if pairs else np.array([])
    keep = ~np.isnan(shares)
    shares, areas, sample_groups = shares[keep], areas[keep], groups[chosen][keep]
    mean = metrics.bootstrap_estimate(lambda rows: float(shares[rows].mean()) if len(rows) else np.nan,
                                      sample_groups, max(200, resamples // 2), seed)
    return {"share": mean.as_dict(), "lung_area_share": float(areas.mean()) if len(areas) else None, "n": int(len(shares)),
            "empty_maps": int((~keep).sum())}  # no positive covid evidence anywhere: no share to measure


def shortcut_targets(found: dict) -> dict:
    """The shortcut figures beside their targets (covidxray.evaluation.yardstick.SHORTCUT_TARGETS)."""
    lungs = found.get("lungs") or {}
    probe = found.get("source_probe") or {}
    return yardstick.target_checks({
        "original_auroc": lungs.get("original"), "lungs_only_auroc": lungs.get("lungs_only"),
        "lungs_hidden_auroc": lungs.get("lungs_hidden"), "cam_in_lungs": (found.get("cam_in_lungs") or {}).get("share"),
        "source_probe_excess": ({"value": probe["balanced_accuracy"] - probe["chance"], "n": probe["n"]}
                                if probe.get("applicable") else None),
    })


def _segmenter():
    """The bundled lung segmenter, or None when this installation has none (hand masks only)."""
    from covidxray.lungs.segmenter import bundled_segmenter

    try:
        return bundled_segmenter()
    except CovidxrayError:
        return None


def _auroc_key(estimates: dict) -> str:
    return "roc_auc" if "roc_auc" in estimates else "macro/roc_auc"


def _auroc_estimate(truth, proba, labels, threshold, groups, resamples, seed) -> dict:
    estimates = patient_bootstrap(truth, proba, labels, threshold, groups, max(200, resamples // 2), seed)
    key = "roc_auc" if "roc_auc" in estimates else "covid/roc_auc"
    return estimates[key].as_dict()


def heatmap_montage(classifier, rows, truth, proba, predicted, per_class: int) -> bytes:
    """Grad-CAM maps of the most confident right and wrong cases of each true class, for the class the model said.

    Args:
        classifier: a torch Classifier.
        rows: the part's readable rows.
        truth: class index per row.
        proba: calibrated probabilities per row.
        predicted: predicted class index per row.
        per_class: cases shown per true class and right/wrong.

    Returns:
        The montage as PNG bytes (empty when there is no case).
    """
    from covidxray.explain.gradcam import gradcam_maps
    from covidxray.imaging.read import read_image

    labels = tuple(classifier.labels)
    cases = []
    for index, label in enumerate(labels):
        for correct in (True, False):
            chosen = np.flatnonzero((truth == index) & ((predicted == index) == correct))
            confidence = proba[chosen, predicted[chosen]]
            cases += [(row, label, correct) for row in chosen[np.argsort(-confidence)][:per_class]]
    tiles = []
    for row, label, correct in _tracked(cases, "audit: Grad-CAM montage"):
        said = labels[predicted[row]]
        image = read_image(rows["path"].iat[row])
        heat = gradcam_maps(classifier, [image], said)[0]
        caption = (f"{'right' if correct else 'WRONG'}: true {label}, said {said}\n"
                   f"p({said}) = {proba[row, predicted[row]]:.2f}, map for {said}\n{rows['source'].iat[row]}")
        tiles.append((image, heat, caption))
    return plots.montage(tiles) if tiles else b""
