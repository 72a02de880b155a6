"""Settle label conflicts between copies of one radiograph: a radiologist's grade outranks a folder name.

The radiography database took COVID images from BIMCV, which SIIM grades film by film; a copy that
SIIM grades "Negative for Pneumonia" sits in the database's COVID folder. For covidxray the label
`covid` means COVID-19 pneumonia on the film, so SIIM's grade decides and the other copies of that
cluster are excluded, each with the reason, so the conflict is counted and never silently kept.
"""

from __future__ import annotations

import pandas as pd

GRADED_SOURCES = ("siim-covid19-detection",)


def prefer_graded_copies(deduped: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest with conflicting ungraded copies excluded, one row per conflict found).

    Needs the `dup_cluster` column of `data dedupe`. A copy whose label equals the graded copy's is kept.
    """
    result = deduped.copy()
    columns = ["cluster", "graded_path", "grade", "graded_label", "other_path", "other_source", "other_label"]
    if "dup_cluster" not in result or result.empty:
        return result, pd.DataFrame(columns=columns)
    graded = result[result["source"].isin(GRADED_SOURCES) & (result["dup_cluster"] != "")]
    conflicts = []
    for cluster, reference in graded.groupby("dup_cluster", sort=True):
        first = reference.iloc[0]
        others = result[(result["dup_cluster"] == cluster) & ~result["source"].isin(GRADED_SOURCES)]
        for index, other in others.iterrows():
            if other["label"] == first["label"]:
                continue
            conflicts.append({"cluster": cluster, "graded_path": first["path"], "grade": first["finding"],
                              "graded_label": first["label"] or "(excluded)", "other_path": other["path"],
                              "other_source": other["source"], "other_label": other["label"] or "(excluded)"})
            result.at[index, "label"] = ""
            result.at[index, "exclusion"] = (f"copy of a {first['source']} film graded '{first['finding']}', "
                                             "which outranks this copy's label")
    return result, pd.DataFrame(conflicts, columns=columns)
