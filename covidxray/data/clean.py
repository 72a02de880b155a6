"""Drop the rows that cannot serve training or evaluation, and count each reason.

Reasons, checked in this order: missing or unreadable image (from `data verify`), no usable
label, not an X-ray, not a frontal view (unless laterals are asked for).
"""

from __future__ import annotations

import pandas as pd

from covidxray.data.schema import is_frontal, with_manifest_columns

REASONS = ("image missing or unreadable", "no usable label", "not an X-ray", "not a frontal view")


def drop_reason(row: pd.Series, keep_lateral: bool) -> str:
    """The first reason this row cannot serve, or '' when it can."""
    if row.get("status", "ok") not in ("ok", ""):
        return REASONS[0]
    if not row["label"]:
        return REASONS[1]
    if row["modality"] and row["modality"].strip().lower() not in {"x-ray", "xray", "cr", "dx"}:
        return REASONS[2]
    if not keep_lateral and row["view"].strip().lower() != "frontal" and not is_frontal(row["view"]):
        return REASONS[3]
    return ""


def clean_manifest(verified: pd.DataFrame, keep_lateral: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    """(rows that serve, count of dropped rows per reason)."""
    verified = with_manifest_columns(verified)
    reasons = verified.apply(drop_reason, axis=1, keep_lateral=keep_lateral) if len(verified) else pd.Series(dtype=str)
    counts = reasons[reasons != ""].value_counts().reindex(REASONS, fill_value=0)
    return verified[reasons == ""].reset_index(drop=True), counts
