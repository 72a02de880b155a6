"""Retries with back-off for a PACS that is slow, down or answering with errors: each wait is one line,
and after the last attempt one error, so that a run outlives a restarting server and never hangs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from covidxray.errors import CovidxrayError

__all__ = ["PacsUnavailable", "RetryPolicy", "call_with_retries", "transient_problem"]

Answer = TypeVar("Answer")
#: HTTP statuses worth another try: the server is busy, restarting or behind a failing gateway.
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}


class PacsUnavailable(CovidxrayError):
    """The PACS did not answer (or kept failing) through every attempt."""


@dataclass(frozen=True)
class RetryPolicy:
    """attempts in all; waits of first_wait, doubling, at most longest_wait seconds."""

    attempts: int = 6
    first_wait: float = 1.0
    longest_wait: float = 30.0

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number attempt (counted from 1)."""
        return min(self.longest_wait, self.first_wait * 2 ** (attempt - 1))


def transient_problem(exc: BaseException) -> str | None:
    """What went wrong, in a few words, when exc is worth retrying; None when it is not."""
    import requests

    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        return f"HTTP {status} {exc.response.reason or ''}".strip() if status in TRANSIENT_HTTP else None
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "cannot connect" if "refused" not in str(exc).lower() else "connection refused"
    if isinstance(exc, (ConnectionError, TimeoutError)):  # DIMSE associations (pynetdicom) and sockets
        return str(exc) or type(exc).__name__
    return None


def call_with_retries(action: Callable[[], Answer], what: str, policy: RetryPolicy,
                      say: Callable[[str], None]) -> Answer:
    """action(), tried again after a transient failure until policy.attempts are spent.

    Args:
        action: the request to make.
        what: the request in a few words for messages, e.g. "PACS http://host/dicom-web: search".
        policy: how many attempts and how long to wait between them.
        say: prints one line (each wait is announced).

    Returns:
        What action returned; a non-transient error is raised at once, PacsUnavailable after the last attempt.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - sorted into transient (retried) and not (raised)
            _refuse_credentials(exc, what)
            problem = transient_problem(exc)
            if problem is None:
                raise
            if attempt == policy.attempts:
                raise PacsUnavailable(f"{what}: {problem}; gave up after {policy.attempts} attempts") from None
            wait = policy.wait(attempt)
            say(f"{what}: {problem}; trying again in {wait:g} s ({attempt} of {policy.attempts - 1} retries)")
            time.sleep(wait)
    raise AssertionError("unreachable")


def _refuse_credentials(exc: BaseException, what: str) -> None:
    import requests

    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None and exc.response.status_code in (401, 403):
        raise CovidxrayError(f"{what}: the PACS refused access (HTTP {exc.response.status_code}); check the credentials "
                             "(COVIDXRAY_PACS_USER/_PASSWORD, COVIDXRAY_PACS_TOKEN or COVIDXRAY_PACS_CREDENTIALS)") from None
