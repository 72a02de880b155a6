"""Split a manifest into train / val / test by patient, never by image, saved to a file.

Images are grouped so that one patient and one duplicate cluster always land in one split
(an image without a patient id is its own patient unless a duplicate links it). Groups are
dealt out per stratum (source x label) so that every split keeps the mix of the whole. In
leave-one-source-out mode the held-out source becomes `external`, and images elsewhere that
duplicate it are `excluded`, so that nothing of the external source leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from covidxray.data.groups import connected_roots
from covidxray.errors import DatasetError

SPLITS = ("train", "val", "test")
EXTERNAL, EXCLUDED = "external", "excluded"


@dataclass(frozen=True)
class SplitSettings:
    """Fractions of images per split, and the seed that makes the deal reproducible."""

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15
    seed: int = 0

    def fractions(self) -> dict[str, float]:
        total = self.train + self.val + self.test
        if total <= 0 or min(self.train, self.val, self.test) < 0:
            raise DatasetError(f"split fractions must be non-negative and not all zero (got {self.train}, {self.val}, {self.test})")
        return {"train": self.train / total, "val": self.val / total, "test": self.test / total}


def patient_groups(manifest: pd.DataFrame) -> pd.Series:
    """A group name per row: rows sharing a patient id or a duplicate cluster share a group."""
    links = []
    for column in ("patient_id", "dup_cluster"):
        if column not in manifest:
            continue
        first_of: dict[str, int] = {}
        for index, key in enumerate(manifest[column].tolist()):
            if key:
                links.append((index, first_of.setdefault(key, index)))
    roots = connected_roots(len(manifest), links)
    return pd.Series([f"g{root}" for root in roots], index=manifest.index)


def _stratum(frame: pd.DataFrame) -> str:
    labels = frame["label"].where(frame["label"] != "", "excluded")
    return (frame["source"] + "|" + labels).mode().sort_values().iat[0]


def assign_splits(manifest: pd.DataFrame, settings: SplitSettings = SplitSettings(),
                  holdout_sources: tuple[str, ...] = ()) -> pd.DataFrame:
    """Deal whole groups (patient and duplicate cluster) to train/val/test, per source x label.

    Args:
        manifest: the rows, ideally with dup_cluster (`data dedupe`).
        settings: fractions and seed.
        holdout_sources: sources made `external` entirely (their duplicates elsewhere `excluded`).

    Returns:
        The manifest with `group` and `split` columns added (see the module docstring).
    """
    unknown = set(holdout_sources) - set(manifest["source"])
    if unknown:
        raise DatasetError(
            f"held-out source(s) {', '.join(sorted(unknown))} not in the manifest; "
            f"sources are: {', '.join(sorted(set(manifest['source'])))}"
        )
    fractions = settings.fractions()
    result = manifest.copy()
    result["group"] = patient_groups(result)
    result["split"] = ""
    held = result["source"].isin(holdout_sources)
    touched = set(result.loc[held, "group"])
    result.loc[held, "split"] = EXTERNAL
    result.loc[~held & result["group"].isin(touched), "split"] = EXCLUDED
    free = result[result["split"] == ""]
    rng = np.random.default_rng(settings.seed)
    strata: dict[str, list[tuple[str, int]]] = {}
    for group, rows in free.groupby("group", sort=True):
        strata.setdefault(_stratum(rows), []).append((group, len(rows)))
    decided: dict[str, str] = {}
    for stratum in sorted(strata):
        groups = strata[stratum]
        order = rng.permutation(len(groups))
        filled = dict.fromkeys(SPLITS, 0)
        total = sum(size for _, size in groups)
        for position in order:
            group, size = groups[position]
            # the split furthest below its share of this stratum takes the next group
            chosen = max(SPLITS, key=lambda s: fractions[s] * total - filled[s] if fractions[s] > 0 else -np.inf)
            decided[group] = chosen
            filled[chosen] += size
    mask = result["split"] == ""
    result.loc[mask, "split"] = result.loc[mask, "group"].map(decided)
    check_split(result)
    return result


def check_split(split: pd.DataFrame) -> None:
    """Raise DatasetError if any patient or duplicate cluster has images in two splits."""
    used = split[split["split"].isin(SPLITS + (EXTERNAL,))]
    for column in ("patient_id", "dup_cluster", "group"):
        if column not in used:
            continue
        keyed = used[used[column] != ""]
        spread = keyed.groupby(column)["split"].nunique()
        crossing = spread[spread > 1]
        if len(crossing):
            raise DatasetError(f"{column} {crossing.index[0]} has images in more than one split")


def split_counts(split: pd.DataFrame) -> pd.DataFrame:
    """Images per split, source and label (for the printed table)."""
    labels = split["label"].where(split["label"] != "", "excluded")
    table = pd.crosstab([split["split"], split["source"]], labels)
    table["total"] = table.sum(axis=1)
    return table


def split_gaps(split: pd.DataFrame) -> list[str]:
    """One plain line per label that a part (train, val, test) lacks, with the patients it had to deal.

    A small table (a user's few films) can leave val or test without a class; calibrate and
    evaluate then have nothing to measure, so the commands say so instead of leaving it to be found.
    """
    dealt = split[split["split"].isin(SPLITS) & (split["label"] != "")]
    notes = []
    for label in sorted(set(dealt["label"])):
        lacking = [part for part in SPLITS if not ((dealt["split"] == part) & (dealt["label"] == label)).any()]
        if lacking:
            groups = dealt.loc[dealt["label"] == label, "group"].nunique() if "group" in dealt else 0
            notes.append(f"no {label} image in {' or '.join(lacking)}: {groups} {label} patient(s) in all, too few to "
                         f"deal to every part; list more patients of each class to calibrate and evaluate")
    return notes
