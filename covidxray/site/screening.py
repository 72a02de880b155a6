"""Screen every film of a site with a model, as `covidxray predict` would: gate, calibration, decision.

The answer is the site's film table with each film's status, p(covid) and decision beside its label;
only films with a scored status (screened, warned) carry a probability. Shared by validate and adapt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from covidxray.errors import CovidxrayError
from covidxray.site.sites import Site

#: Columns screening adds to a site's films.
SCREEN_COLUMNS = ["status", "p_covid", "prediction", "input_flags", "input_note", "error"]


@dataclass
class ScreenedSite:
    """A site's films screened by one model.

    films: Site.films plus SCREEN_COLUMNS (p_covid NaN where the film was not scored);
    model: what scored them (path, sha256, architecture, threshold, temperature, bias, backend, labels).
    """

    site: Site
    films: pd.DataFrame
    model: dict

    @property
    def scored(self) -> pd.DataFrame:
        """The films the model scored (a status that is scored: screened, warned), in site order, re-indexed."""
        from covidxray.inference.results import Status

        scored = [status.value for status in Status if status.scored]
        return self.films[self.films["status"].isin(scored)].reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """Films per status, every status named (0 where none)."""
        from covidxray.inference.results import Status

        counts = self.films["status"].value_counts()
        return {status.value: int(counts.get(status.value, 0)) for status in Status}


def screen_site(site: Site, model: str | Path | None = None, backend: str = "auto", gate_warnings: bool = True,
                batch_size: int = 16) -> ScreenedSite:
    """Screen every film of site with model (the bundled one when None), the gate on.

    Args:
        site: the films, from read_site.
        model: a checkpoint (.pt); None for the bundled model.
        backend: "auto" (the fresh ONNX export when there is one, as predict), "torch" or "onnx".
        gate_warnings: False screens unusual but plausible films without a warning (as predict --no-gate-warnings).
        batch_size: films per batch.

    Returns:
        The ScreenedSite; a binary (covid vs not covid) model is required (CovidxrayError otherwise).
    """
    from covidxray.console import progress
    from covidxray.hashing import sha256_file
    from covidxray.inference.predictor import DEFAULT_MODEL, Predictor

    predictor = Predictor(model, backend=backend, severity=False, gate_warnings=gate_warnings)
    info = predictor.info
    if info.task != "binary":
        raise CovidxrayError(f"{predictor.model_path}: a {info.task} model; the site check and adaptation take a "
                             "binary (covid vs not covid) model, whose threshold a site can move")
    paths = site.films["path"].tolist()
    answers = []
    with progress() as bar:
        task = bar.add_task(f"screening {site.name}", total=len(paths))
        for result in predictor.screen_iter(paths, batch_size=batch_size):
            answers.append(result)
            bar.advance(task)
    films = site.films.copy()
    films["status"] = [result.status.value for result in answers]
    films["p_covid"] = [np.nan if result.p_covid is None else float(result.p_covid) for result in answers]
    films["prediction"] = [result.prediction or "" for result in answers]
    films["input_flags"] = [";".join(result.input_flags) for result in answers]
    films["input_note"] = [result.input_note for result in answers]
    films["error"] = [result.error for result in answers]
    described = {"path": str(predictor.model_path), "bundled": predictor.model_path.resolve() == DEFAULT_MODEL.resolve(),
                 "sha256": sha256_file(predictor.model_path), "architecture": info.architecture,
                 "labels": list(info.labels), "threshold": float(info.threshold), "temperature": float(info.temperature),
                 "logit_bias": float(info.bias), "backend": predictor.backend, "record": info.record}
    return ScreenedSite(site, films, described)
