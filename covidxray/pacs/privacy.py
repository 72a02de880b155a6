"""Keep patient identifiers out of the console and the logs while covidxray talks to a PACS: the
libraries that parse and move DICOMs can quote header values in warnings and log lines, so they are
silenced, and covidxray's own messages name instances by UID only.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Iterator

__all__ = ["QUIET_LOGGERS", "quiet_libraries"]

#: Loggers of the DICOM libraries: their messages can hold names, IDs or whole datasets.
QUIET_LOGGERS = ("pydicom", "highdicom", "pynetdicom", "dicomweb_client", "urllib3")


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """While inside: the DICOM libraries' loggers off, and warnings ignored (a library's warning is
    attributed to whichever module called it, so no filter by module catches them all)."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    before = [logger.disabled for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.disabled = True
        try:
            yield
        finally:
            for logger, disabled in zip(loggers, before):
                logger.disabled = disabled
