"""A site's labelled films, read from a CSV (`path,label[,patient_id]`) or a folder-per-class tree.

One table a row a film (path, label, is_covid, patient_id, source), the rows without a usable label
set apart with their reason; the readers are the data package's (csv_table, folder_per_class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from covidxray.errors import DatasetError

#: Labels a site may write for "anything but COVID-19", besides the project's own (normal, pneumonia).
NOT_COVID_NAMES = {"not covid", "not_covid", "not-covid", "notcovid", "non covid", "non-covid", "non_covid",
                   "noncovid", "other"}
#: The columns of Site.films, in order.
FILM_COLUMNS = ["path", "label", "is_covid", "patient_id", "source", "finding"]


@dataclass
class Site:
    """A site's labelled films and what was left out.

    films: one row per usable film, FILM_COLUMNS; label is covidxray's (covid, normal, pneumonia)
    or not_covid; patient_id is empty where the site gave none (the film is then its own patient).
    """

    name: str
    origin: Path
    layout: str
    films: pd.DataFrame
    #: Rows without a usable label: path, finding, reason.
    left_out: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["path", "finding", "reason"]))
    #: How patient ids were found: "given" (all), "partly given", "file name" (folder tree), "none".
    patient_ids: str = "given"

    @property
    def inputs(self) -> list[Path]:
        """What was read: the CSV or the folder tree (outputs must never land on or in these)."""
        return [self.origin]

    @property
    def image_folders(self) -> list[Path]:
        """Every folder that holds a listed film, and the tree's root for a folder layout."""
        folders = {Path(path).parent for path in self.films["path"]}
        if self.layout == "folder":
            folders.add(self.origin)
        return sorted(folders)


def site_label(finding: str, label: str, exclusion: str) -> tuple[str, str]:
    """(label, reason left out) for what the site wrote: the data package's label, else not-covid
    spelled any of the NOT_COVID_NAMES ways, else left out with the reader's reason."""
    if label:
        return label, ""
    if finding.strip().lower() in NOT_COVID_NAMES:
        return "not_covid", ""
    return "", exclusion or f"label '{finding}' is not covid, not-covid, normal or pneumonia"


def read_site(path: str | Path) -> Site:
    """The labelled films of a site's CSV or folder-per-class tree; DatasetError (one line) when
    there is no such file, no known layout, or no film with a usable label.

    Args:
        path: a CSV with columns path,label[,patient_id,source] (paths absolute or relative to the
            CSV's folder), or a folder with one sub-folder per class (covid/, normal/, not-covid/, ...).

    Returns:
        The Site, its films in the order listed (CSV) or sorted (folder tree).
    """
    from covidxray.data.sources import csv_table, folder_per_class

    origin = Path(path)
    if not origin.exists():
        raise DatasetError(f"{origin}: no such file or folder")
    if origin.is_file():
        if not csv_table.detect(origin):
            raise DatasetError(f"{origin}: not a site table; expected a CSV with columns path,label[,patient_id]")
        rows, layout = csv_table.read(origin), "csv"
    else:
        rows, layout = folder_per_class.read(origin), "folder"
        if not rows:
            raise DatasetError(f"{origin}: no class folders with images (expected e.g. {origin}/covid/*.png, "
                               f"{origin}/normal/*.dcm)")
    films, left_out = [], []
    for row in rows:
        label, reason = site_label(row.get("finding", ""), row.get("label", ""), row.get("exclusion", ""))
        if not label:
            left_out.append({"path": row["path"], "finding": row.get("finding", ""), "reason": reason})
            continue
        films.append({"path": row["path"], "label": label, "is_covid": label == "covid",
                      "patient_id": row.get("patient_id", ""), "source": row.get("source") or origin.stem,
                      "finding": row.get("finding", "")})
    frame = pd.DataFrame(films, columns=FILM_COLUMNS)
    if frame.empty:
        raise DatasetError(f"{origin}: no film has a usable label ({len(left_out)} left out"
                           f"{': ' + left_out[0]['reason'] if left_out else ''})")
    patient_ids = _patient_ids(frame, layout)
    return Site(name=origin.stem if layout == "csv" else origin.resolve().name, origin=origin, layout=layout,
                films=frame, left_out=pd.DataFrame(left_out, columns=["path", "finding", "reason"]), patient_ids=patient_ids)


def _patient_ids(films: pd.DataFrame, layout: str) -> str:
    """Fill a folder tree's patient ids with the file's name (its stem; the path under the tree when
    two files share a stem), and say how the ids were found."""
    if layout == "folder":
        stems = films["path"].map(lambda p: Path(p).stem)
        unique = not stems.duplicated(keep=False).any()
        films["patient_id"] = [f"{source}:{stem if unique else Path(p).with_suffix('').as_posix()}"
                               for source, stem, p in zip(films["source"], stems, films["path"])]
        return "file name"
    given = (films["patient_id"] != "").sum()
    return "given" if given == len(films) else "partly given" if given else "none"


def patient_note(site: Site) -> str:
    """One sentence for a report: what a bootstrap resample draws at this site."""
    if site.patient_ids == "given":
        return "Patient ids given for every film: the bootstrap resamples patients."
    if site.patient_ids == "file name":
        return ("A folder tree gives no patient ids: each film's file name stands for its patient, so the bootstrap "
                "resamples images; two films of one patient would make the intervals too narrow.")
    missing = int((site.films["patient_id"] == "").sum())
    return (f"{missing} of {len(site.films)} films have no patient id and count as their own patient (the bootstrap "
            "resamples them as images); two films of one patient would make the intervals too narrow.")
