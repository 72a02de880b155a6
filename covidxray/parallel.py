"""Map a function over many files on all cores, with a progress bar, results in input order."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

from covidxray.console import progress

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def map_with_progress(function: Callable[[T], R], items: Iterable[T], description: str,
                      workers: int | None = None, chunksize: int = 16) -> list[R]:
    """[function(item) for item in items], in worker processes when workers > 1."""
    items = list(items)
    workers = default_workers() if workers is None else workers
    results: list[R] = []
    with progress() as bar:
        task = bar.add_task(description, total=len(items))
        if workers <= 1 or len(items) < 2 * chunksize:
            for item in items:
                results.append(function(item))
                bar.advance(task)
            return results
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(function, items, chunksize=chunksize):
                results.append(result)
                bar.advance(task)
    return results


def map_in_order(function: Callable[[T], R], items: list[T], workers: int, chunksize: int = 16) -> Iterator[R]:
    """function over items, yielded in input order, in worker processes when workers > 1."""
    if workers > 1 and len(items) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(function, items, chunksize=chunksize)
    else:
        yield from map(function, items)
