"""Drop the rows that cannot serve training or evaluation, and count each reason.

Reasons, checked in this order: missing or unreadable image (from `data verify`), no usable
label, not an X-ray, not a frontal view (unless laterals are asked for). A row whose view was
never recorded (blank, as in a user's CSV without a view column) is kept: an unknown view is
unknown, not lateral, and the input gate's view check speaks for that image when it is screened.
"""

from __future__ import annotations

import pandas as pd

from covidxray.data.schema import is_frontal, with_manifest_columns
from covidxray.errors import DatasetError

REASONS = ("image missing or unreadable", "no usable label", "not an X-ray", "not a frontal view")
#: A step that keeps less than this share of its rows stops with an error instead of carrying on.
MIN_KEPT_SHARE = 0.05
UNRECORDED_VIEWS = {"", "?", "nan", "none", "unknown", "n/a"}


def drop_reason(row: pd.Series, keep_lateral: bool) -> str:
    """The first reason this row cannot serve, or '' when it can."""
    if row.get("status", "ok") not in ("ok", ""):
        return REASONS[0]
    if not row["label"]:
        return REASONS[1]
    if row["modality"] and row["modality"].strip().lower() not in {"x-ray", "xray", "cr", "dx"}:
        return REASONS[2]
    view = row["view"].strip().lower()
    if not keep_lateral and view not in UNRECORDED_VIEWS and view != "frontal" and not is_frontal(row["view"]):
        return REASONS[3]
    return ""


def clean_manifest(verified: pd.DataFrame, keep_lateral: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    """(rows that serve, count of dropped rows per reason)."""
    verified = with_manifest_columns(verified)
    reasons = verified.apply(drop_reason, axis=1, keep_lateral=keep_lateral) if len(verified) else pd.Series(dtype=str)
    counts = reasons[reasons != ""].value_counts().reindex(REASONS, fill_value=0)
    return verified[reasons == ""].reset_index(drop=True), counts


def check_kept(read: int, kept: int, dropped: pd.Series, what: str) -> None:
    """Stop with one plain line when a step kept nothing, or under MIN_KEPT_SHARE, of the rows it read.

    what names the input (a file or the datasets) so the user knows where to look; the line also
    gives the commonest reasons, since a step that silently drops everything hides the real problem.
    """
    if read == 0 or kept >= max(1, MIN_KEPT_SHARE * read):
        return
    reasons = ", ".join(f"{int(n)} {reason}" for reason, n in dropped.sort_values(ascending=False).items() if n)
    share = "none" if kept == 0 else f"only {kept}"
    raise DatasetError(f"{what}: clean kept {share} of {read} rows (dropped: {reasons or 'none'}); "
                       "check the labels, views and image paths")
