"""Find the same radiograph stored twice, under other names and sizes, within and across sources.

Each image gets a fingerprint (a 64-bit perceptual hash of its DCT and a 16x16 normalised
thumbnail). Two images are linked when (a) their hashes are close AND their thumbnails correlate
strongly, or (b) they carry the same distinctive file name and still look alike: redistributed
sets (darkcovidnet) cropped the borders and text of the originals away, which global
fingerprints cannot see through. Linked images form a cluster that downstream steps keep
together (one split for all of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pandas as pd
from scipy.fft import dctn

from covidxray.data.groups import connected_roots
from covidxray.errors import ImageReadError
from covidxray.imaging.read import read_thumbnail
from covidxray.parallel import map_with_progress

HASH_SIZE = 8            # 8x8 low-frequency DCT coefficients -> 64 bits
THUMB_SIZE = 16


@dataclass(frozen=True)
class DedupeSettings:
    """Two images are the same radiograph when both tests pass."""

    max_hamming: int = 8           # of 64 hash bits
    min_correlation: float = 0.96  # Pearson r of the 16x16 thumbnails
    same_name_min_correlation: float = 0.3  # for copies that kept a distinctive file name


GENERIC_NAME = re.compile(r"^[A-Za-z_ ]*[-_ ]?\d{1,6}$")


def distinctive_stem(path: str) -> str:
    """The file's stem, lower case, or '' when it is too generic to identify an image (COVID-12)."""
    stem = PurePath(path).stem.lower()
    return "" if len(stem) < 10 or GENERIC_NAME.match(stem) else stem


def fingerprint(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(64 hash bits as bool, unit-norm zero-mean 16x16 thumbnail), or None when unreadable."""
    try:
        small = read_thumbnail(path, size=32)
    except ImageReadError:
        return None
    except Exception:  # noqa: BLE001 - a decoder failure nobody foresaw: unreadable, like any broken file
        return None
    coefficients = dctn(small.astype(np.float64), norm="ortho")[:HASH_SIZE, :HASH_SIZE].ravel()
    bits = coefficients[1:] > np.median(coefficients[1:])
    bits = np.concatenate([[False], bits])
    thumb = small.reshape(THUMB_SIZE, 2, THUMB_SIZE, 2).mean(axis=(1, 3)).ravel()
    thumb = thumb - thumb.mean()
    norm = np.linalg.norm(thumb)
    thumb = thumb / norm if norm > 0 else thumb
    return bits, thumb.astype(np.float32)


def similar_pairs(bits: np.ndarray, thumbs: np.ndarray, settings: DedupeSettings) -> list[tuple[int, int, int, float]]:
    """Pairs that pass both content tests: perceptual hashes close and thumbnails correlated.

    Args:
        bits: (n, 64) perceptual hash bits.
        thumbs: (n, 256) standardised 16x16 thumbnails.
        settings: the two limits (max_hamming, min_correlation).

    Returns:
        (i, j, hamming, correlation) for every pair i < j that passes.
    """
    pairs = []
    packed = bits.astype(np.uint8)
    count = len(packed)
    for start in range(0, count, 512):
        block = packed[start:start + 512]
        hamming = (block[:, None, :] != packed[None, :, :]).sum(axis=2)
        correlation = thumbs[start:start + 512] @ thumbs.T
        rows, cols = np.nonzero((hamming <= settings.max_hamming) & (correlation >= settings.min_correlation))
        for row, col in zip(rows, cols):
            i, j = start + int(row), int(col)
            if i < j:
                pairs.append((i, j, int(hamming[row, col]), float(correlation[row, col])))
    return pairs


def same_name_pairs(paths: list[str], thumbs: np.ndarray, settings: DedupeSettings) -> list[tuple[int, int, int, float]]:
    """Images with one distinctive file name that still look alike (copies cropped past a global fingerprint).

    Args:
        paths: the readable images' paths.
        thumbs: their (n, 256) standardised thumbnails.
        settings: the dedupe limits.

    Returns:
        (i, j, -1, correlation) for each such pair.
    """
    by_name: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        stem = distinctive_stem(path)
        if stem:
            by_name.setdefault(stem, []).append(index)
    pairs = []
    for members in by_name.values():
        for a, i in enumerate(members):
            for j in members[a + 1:]:
                correlation = float(thumbs[i] @ thumbs[j])
                if correlation >= settings.same_name_min_correlation:
                    pairs.append((i, j, -1, correlation))
    return pairs


def _clusters(count: int, pairs: list[tuple[int, int, int, float]]) -> np.ndarray:
    """Union-find over the pairs: a cluster number per image, -1 for images with no twin."""
    roots = np.array(connected_roots(count, ((i, j) for i, j, _, _ in pairs)))
    sizes = pd.Series(roots).value_counts()
    cluster = np.full(count, -1)
    for number, root in enumerate(sorted(r for r, n in sizes.items() if n > 1)):
        cluster[roots == root] = number
    return cluster


def find_duplicates(manifest: pd.DataFrame, settings: DedupeSettings = DedupeSettings(),
                    workers: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Find the same radiograph under other names and sizes, so a split can keep copies together.

    Args:
        manifest: the rows to compare.
        settings: the content tests' limits.
        workers: processes for fingerprinting (default: all cores, up to 8).

    Returns:
        (manifest with dup_cluster added: 'dup<N>' for images with a twin, empty otherwise;
        pairs table with paths, sources, labels, scores and evidence).
    """
    prints = map_with_progress(fingerprint, manifest["path"].tolist(), "fingerprinting images", workers)
    readable = [i for i, p in enumerate(prints) if p is not None]
    bits = np.array([prints[i][0] for i in readable]) if readable else np.zeros((0, 64), bool)
    thumbs = np.array([prints[i][1] for i in readable]) if readable else np.zeros((0, 256), np.float32)
    local_pairs = similar_pairs(bits, thumbs, settings)
    found = {(i, j) for i, j, _, _ in local_pairs}
    readable_paths = [manifest["path"].iat[i] for i in readable]
    local_pairs += [p for p in same_name_pairs(readable_paths, thumbs, settings) if (p[0], p[1]) not in found]
    pairs = [(readable[i], readable[j], h, c) for i, j, h, c in local_pairs]
    cluster = _clusters(len(manifest), pairs)
    result = manifest.copy()
    result["dup_cluster"] = [f"dup{c}" if c >= 0 else "" for c in cluster]
    table = pd.DataFrame(
        [
            {
                "cluster": f"dup{cluster[i]}",
                "path_a": manifest["path"].iat[i], "source_a": manifest["source"].iat[i], "label_a": manifest["label"].iat[i],
                "path_b": manifest["path"].iat[j], "source_b": manifest["source"].iat[j], "label_b": manifest["label"].iat[j],
                "hamming": hamming if hamming >= 0 else "", "correlation": round(correlation, 4),
                "evidence": "content" if hamming >= 0 else "same file name",
            }
            for i, j, hamming, correlation in pairs
        ],
        columns=["cluster", "path_a", "source_a", "label_a", "path_b", "source_b", "label_b", "hamming", "correlation", "evidence"],
    )
    return result, table


def cluster_summary(deduped: pd.DataFrame) -> pd.DataFrame:
    """One row per cluster: size, sources, labels, and whether the labels conflict."""
    members = deduped[deduped["dup_cluster"] != ""]
    rows = []
    for name, group in members.groupby("dup_cluster", sort=False):
        labels = sorted(set(group["label"]) - {""})
        rows.append({
            "cluster": name, "images": len(group),
            "sources": ";".join(sorted(set(group["source"]))),
            "labels": ";".join(labels) or "(none)",
            "label_conflict": len(labels) > 1,
            "paths": ";".join(group["path"]),
        })
    return pd.DataFrame(rows, columns=["cluster", "images", "sources", "labels", "label_conflict", "paths"])
