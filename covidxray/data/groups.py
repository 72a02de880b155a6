"""Union-find: which items end up linked once some pairs of them are joined.

Shared by dedupe (images linked by likeness) and split (images linked by patient or cluster).
"""

from __future__ import annotations

from typing import Iterable


def connected_roots(count: int, links: Iterable[tuple[int, int]]) -> list[int]:
    """For items 0..count-1 and links (i, j), a representative item per item; linked items share it."""
    parent = list(range(count))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in links:
        parent[find(i)] = find(j)
    return [find(i) for i in range(count)]
