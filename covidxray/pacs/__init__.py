"""Into the hospital's own workflow: read chest radiographs from a PACS (DICOMweb or DIMSE), screen them
with the predict model, and store an SR and a heat-map secondary capture beside each, exactly once.

Nothing is imported until a name is used: the CLI mounts `covidxray.pacs.command` on every start.
"""

from __future__ import annotations

from typing import Any

#: Public name -> the module that defines it (imported on first use).
_API = {
    "PacsSettings": "covidxray.pacs.connection",
    "pacs_settings": "covidxray.pacs.connection",
    "DicomWebPacs": "covidxray.pacs.dicomweb",
    "Screener": "covidxray.pacs.screening",
    "SourceImage": "covidxray.pacs.screening",
    "Selection": "covidxray.pacs.run",
    "screen_pass": "covidxray.pacs.run",
    "StorageListener": "covidxray.pacs.dimse",
    "screening_report": "covidxray.pacs.results_sr",
    "read_report": "covidxray.pacs.results_sr",
    "heatmap_capture": "covidxray.pacs.secondary_capture",
    "result_uids": "covidxray.pacs.uids",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        from importlib import import_module

        value = getattr(import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'covidxray.pacs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
