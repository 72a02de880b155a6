"""Drop the rows that cannot serve training or evaluation, and count each reason.

Reasons, checked in this order: a path a collection's metadata lists outside its folder (never
opened), missing or unreadable image (from `data verify`), no usable label, not an X-ray, not a
frontal view (unless laterals are asked for). A row whose view was never recorded (blank, as in a
user's CSV without a view column) is kept: an unknown view is unknown, not lateral, and the input
gate's view check speaks for that image when it is screened.
"""

from __future__ import annotations

import pandas as pd

from covidxray.data.schema import is_frontal, with_manifest_columns
from covidxray.data.sources.paths import OUTSIDE_DATASET
from covidxray.errors import DatasetError

REASONS = (OUTSIDE_DATASET, "image missing or unreadable", "no usable label", "not an X-ray", "not a frontal view")
#: A step that keeps less than this share of its rows stops with an error instead of carrying on.
MIN_KEPT_SHARE = 0.05
UNRECORDED_VIEWS = {"", "?", "nan", "none", "unknown", "n/a"}


def drop_reason(row: pd.Series, keep_lateral: bool) -> str:
    """The first reason this row cannot serve (one of REASONS), or '' when it can."""
    if row.get("exclusion", "") == OUTSIDE_DATASET or row.get("reason", "") == OUTSIDE_DATASET:
        return OUTSIDE_DATASET
    if row.get("status", "ok") not in ("ok", ""):
        return REASONS[1]
    if not row["label"]:
        return REASONS[2]
    if row["modality"] and row["modality"].strip().lower() not in {"x-ray", "xray", "cr", "dx"}:
        return REASONS[3]
    view = row["view"].strip().lower()
    if not keep_lateral and view not in UNRECORDED_VIEWS and view != "frontal" and not is_frontal(row["view"]):
        return REASONS[4]
    return ""


def _detail(row: pd.Series, reason: str) -> str:
    """What one dropped row shows of its reason: the file and what verify or the reader found."""
    if reason == REASONS[1]:
        return f"{row['path']}: {row.get('reason', '') or row.get('status', '')}"
    if reason == REASONS[2] and row.get("exclusion", ""):
        return f"{row['path']}: {row['exclusion']}"
    if reason == REASONS[0]:
        return str(row["path"])
    return ""  # a modality or a view: the count says it all


def clean_manifest(verified: pd.DataFrame, keep_lateral: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    """(rows that serve, count of dropped rows per reason).

    The counts are indexed by REASONS; their `attrs["examples"]` maps each reason that dropped a row
    to its first such row in words (the file, and what verify or the reader said of it).
    """
    verified = with_manifest_columns(verified)
    reasons = verified.apply(drop_reason, axis=1, keep_lateral=keep_lateral) if len(verified) else pd.Series(dtype=str)
    counts = reasons[reasons != ""].value_counts().reindex(REASONS, fill_value=0)
    examples = {}
    for index, reason in reasons[reasons != ""].items():
        if reason not in examples:
            examples[reason] = _detail(verified.loc[index], reason)
    counts.attrs["examples"] = examples
    return verified[reasons == ""].reset_index(drop=True), counts


def check_kept(read: int, kept: int, dropped: pd.Series, what: str) -> None:
    """Stop with one plain line when a step kept nothing, or under MIN_KEPT_SHARE, of the rows it read.

    A step that silently drops everything hides the real problem, so the line gives the reasons, commonest
    first, with the counts the table of dropped rows shows, and the first file dropped for the commonest.

    Args:
        read: rows the step read.
        kept: rows it kept.
        dropped: rows dropped per reason (clean_manifest's counts).
        what: the input (a file or the datasets), so the user knows where to look.

    Raises:
        DatasetError: when too little was kept.
    """
    if read == 0 or kept >= max(1, MIN_KEPT_SHARE * read):
        return
    ordered = [(reason, int(n)) for reason, n in dropped.sort_values(ascending=False, kind="stable").items() if n]
    reasons = ", ".join(f"{n} {reason}" for reason, n in ordered)
    share = "none" if kept == 0 else f"only {kept}"
    example = dropped.attrs.get("examples", {}).get(ordered[0][0], "") if ordered else ""
    first = f"; first: {example}" if example else ""
    raise DatasetError(f"{what}: clean kept {share} of {read} rows (dropped: {reasons or 'none'}{first}); "
                       "check the labels, views and image paths")
