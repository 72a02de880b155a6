"""Hostile files (decompression bombs) are refused cheaply: bounded memory, a second or two, one clear line.

Each file is read in a fresh process, from its path (as `covidxray predict` reads) and as whole
bytes (as the web service reads an upload); the peak resident memory above the process's
baseline must stay under PEAK_LIMIT_MB. Before issue #17 these took 1-3 GB.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bomb_factory import (
    deflated_dicom,
    dicom_with_lying_jpeg_frame,
    read_in_fresh_process,
    rgba_png_of_zeros,
    sparse_png,
    uncompressed_dicom_claiming,
)

PEAK_LIMIT_MB = 300
SECONDS_LIMIT = 5.0
def read_in_child(path: Path, route: str) -> dict:
    done = read_in_fresh_process(path, route)
    assert done.returncode == 0, done.stderr[-400:]
    assert done.stderr == "", done.stderr[-400:]  # no warning, no traceback
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("make, routes, message", [
    (lambda folder: deflated_dicom(folder / "deflated.dcm"), ("path", "bytes"), "inflates to more than"),
    (lambda folder: dicom_with_lying_jpeg_frame(folder / "lying.dcm"), ("path", "bytes"),
     "DICOM compressed frame is 20000x20000 pixels"),
    (lambda folder: rgba_png_of_zeros(folder / "rgba.png"), ("path", "bytes"), "7000x7000 pixels, over the limit"),
    (lambda folder: rgba_png_of_zeros(folder / "rgba6000.png", 6000, 6000), ("path", "bytes"), "would take 324 MB to decode"),
    (lambda folder: sparse_png(folder / "sparse.png"), ("path",), "over the limit of 84 MB"),
    (lambda folder: uncompressed_dicom_claiming(folder / "claims.dcm", 60000, 60000), ("path", "bytes"),
     "60000x60000 pixels, over the limit"),
], ids=["deflated-1GiB", "jpeg-frame-20000", "rgba-7000", "rgba-6000", "sparse-1GiB", "dicom-60000"])
def test_bombs_are_refused_with_bounded_memory_and_time(tmp_path, make, routes, message):
    path = make(tmp_path)
    for route in routes:
        result = read_in_child(path, route)
        assert message in result["outcome"] and path.name in result["outcome"], result
        assert "\n" not in result["outcome"]
        assert result["mb"] < PEAK_LIMIT_MB and result["s"] < SECONDS_LIMIT, (route, result)


def test_pillow_bomb_guard_stays_on(tmp_path, real_png):
    from PIL import Image

    from covidxray.imaging.read import read_image

    read_image(real_png)
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS > 0


def test_largest_real_size_radiograph_still_reads_within_the_budget(tmp_path):
    """A 16-bit 4300 x 4300 PNG (the largest detector size) reads, under the same memory limit."""
    import numpy as np
    from PIL import Image

    ramp = (np.add.outer(np.arange(4300), np.arange(4300)) * 7 % 65536).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "big.png", compress_level=1)
    result = read_in_child(tmp_path / "big.png", "path")
    assert result["outcome"] == "" and result["mb"] < PEAK_LIMIT_MB, result
