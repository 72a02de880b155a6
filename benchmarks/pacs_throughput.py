"""Images/s through a PACS (`covidxray pacs screen` against a live Orthanc: QIDO-RS, WADO-RS, screening,
SR and secondary capture built and stored by STOW-RS) against `covidxray predict` on the same files, in
the same run and process, with heat maps both ways (PNG files for predict, secondary captures for the PACS)
and without. The ratio is the price of the PACS path; it should be little over 1.

Needs Orthanc and its DICOMweb plugin (Debian: apt-get install orthanc orthanc-dicomweb). Run:
    .venv/bin/python benchmarks/pacs_throughput.py [--images 32] [--side 512] [--repeat 2] [--report FILE.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from orthanc_server import OrthancServer, frontal_study, missing_reason  # noqa: E402
from printed_figures import PrintedFigures  # noqa: E402 - benchmarks/ is the script's folder


def quietly(args: list[str]) -> tuple[int, float]:
    """covidxray's CLI in this process, its output swallowed: (exit status, seconds)."""
    from covidxray.cli import main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = main(args)
    return status, time.perf_counter() - start


def direct(files: list[Path], folder: Path, heatmaps: bool) -> float:
    """Seconds of `covidxray predict` on the files (rows to a CSV; heat maps to PNGs when asked)."""
    args = ["predict", *map(str, files), "--output", str(folder / f"rows-{time.monotonic_ns()}.csv")]
    if heatmaps:
        args += ["--heatmaps", str(folder / f"maps-{time.monotonic_ns()}")]
    status, seconds = quietly(args)
    if status not in (0, 1):
        raise SystemExit(f"predict failed with exit status {status}")
    return seconds


def through_pacs(orthanc: OrthancServer, files, folder: Path, heatmaps: bool) -> float:
    """Seconds of `covidxray pacs screen --study` on a fresh copy of the files stored in Orthanc."""
    for item in files:
        orthanc.upload(item.data)
    from pydicom import dcmread

    study = str(dcmread(io.BytesIO(files[0].data), stop_before_pixels=True).StudyInstanceUID)
    args = ["pacs", "screen", "--url", orthanc.dicomweb_url, "--study", study,
            "--state", str(folder / f"state-{time.monotonic_ns()}.json")]
    status, seconds = quietly(args + ([] if heatmaps else ["--no-heatmaps"]))
    if status != 0:
        raise SystemExit(f"pacs screen failed with exit status {status}")
    written = [row for row in orthanc.instances(study) if row["modality"] == "SR"]
    if len(written) != len(files):
        raise SystemExit(f"pacs screen wrote {len(written)} reports for {len(files)} images")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="images per measured run")
    parser.add_argument("--side", type=int, default=512, help="longer side of the test radiographs, in pixels")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each path; the fastest counts")
    parser.add_argument("--report", type=Path, help="also write the printed figures to this Markdown file")
    options = parser.parse_args()
    figures = PrintedFigures()
    reason = missing_reason()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory(prefix="covidxray-pacs-bench-") as temporary:
        folder = Path(temporary)
        orthanc = OrthancServer(folder / "orthanc").start()
        os.environ.update(COVIDXRAY_PACS_USER=orthanc.user, COVIDXRAY_PACS_PASSWORD=orthanc.password)
        try:
            sample = frontal_study(options.images, side=options.side)
            paths = []
            for number, item in enumerate(sample):
                path = folder / f"{number:03d}.dcm"
                path.write_bytes(item.data)
                paths.append(path)
            direct(paths[:2], folder, heatmaps=True)  # warm-up: imports (torch for Grad-CAM), model files in cache
            figures.say(f"{options.images} DICOM radiographs of at most {options.side} px; Orthanc "
                  f"{orthanc.rest('/system')['Version']} on loopback; fastest of {options.repeat} runs each")
            figures.say(f"{'heat maps':>10} | {'predict images/s':>16} | {'PACS images/s':>13} | {'PACS / predict time':>19}")
            for heatmaps in (True, False):
                predict_s = min(direct(paths, folder, heatmaps) for _ in range(options.repeat))
                pacs_s = min(through_pacs(orthanc, frontal_study(options.images, side=options.side), folder, heatmaps)
                             for _ in range(options.repeat))
                figures.say(f"{'yes' if heatmaps else 'no':>10} | {options.images / predict_s:16.2f} | "
                      f"{options.images / pacs_s:13.2f} | {pacs_s / predict_s:18.2f}x")
        finally:
            orthanc.stop(kill=True)
    figures.write(options.report, "PACS throughput: `covidxray pacs screen` through Orthanc against `covidxray predict`")


if __name__ == "__main__":
    main()
