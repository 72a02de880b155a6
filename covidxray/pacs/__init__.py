"""Into the hospital's own workflow: read chest radiographs from a PACS (DICOMweb or DIMSE), screen them
with the predict model, and store an SR and a heat-map secondary capture beside each, exactly once.

Nothing is imported until a name is used: the CLI mounts `covidxray.pacs.command` on every start.
"""

from __future__ import annotations

from covidxray.lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(__name__, _API)
