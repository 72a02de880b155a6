"""A real PACS for the PACS tests and benchmark: Orthanc with its DICOMweb plugin, run as a plain process
on free loopback ports with a JSON config and a temporary storage folder; and the studies put in it.

Debian installs it (`apt-get install orthanc orthanc-dicomweb`; .ci/run does). The tests skip, saying
why, only when the Orthanc binary or its DICOMweb plugin is absent.
"""

from __future__ import annotations

import glob
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Where Debian puts the DICOMweb plugin (orthanc-dicomweb), the first that exists is used.
PLUGIN_PATTERNS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so*",
                   "/usr/local/share/orthanc/plugins/libOrthancDicomWeb.so")
DATA_DIR = Path(os.environ.get("COVIDXRAY_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SAMPLES = Path(__file__).resolve().parents[1] / "covidxray" / "samples"


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next((path for path in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.path.exists(path)), None)


def dicomweb_plugin() -> str | None:
    for pattern in PLUGIN_PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def missing_reason() -> str | None:
    """Why Orthanc cannot run here (None when it can)."""
    if orthanc_binary() is None:
        return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb; .ci/run installs it)"
    if dicomweb_plugin() is None:
        return "Orthanc's DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OrthancServer:
    """One Orthanc on loopback: HTTP (REST and DICOMweb, basic auth) and DICOM ports, its own storage."""

    def __init__(self, root: Path, modalities: dict[str, tuple[str, str, int]] | None = None) -> None:
        self.root = Path(root)
        self.storage = self.root / "storage"
        self.user, self.password = "covidxray-test", secrets.token_hex(8)
        self.http_port, self.dicom_port = free_port(), free_port()
        self.ae_title = "ORTHANC"
        self.modalities = modalities or {}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def node(self) -> str:
        """Its DIMSE address as `covidxray pacs listen --send-to` takes it."""
        return f"{self.ae_title}@127.0.0.1:{self.dicom_port}"

    def config(self) -> dict:
        return {
            "Name": "covidxray-test", "StorageDirectory": str(self.storage), "IndexDirectory": str(self.storage),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
            "RegisteredUsers": {self.user: self.password}, "Plugins": [dicomweb_plugin()],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "DicomModalities": {name: list(node) for name, node in self.modalities.items()},
            "HttpCompressionEnabled": False, "StorageCompression": False,
        }

    def start(self, timeout: float = 30.0) -> "OrthancServer":
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "orthanc.json").write_text(json.dumps(self.config(), indent=1))
        log = open(self.root / "orthanc.log", "ab")
        self.process = subprocess.Popen([orthanc_binary(), str(self.root / "orthanc.json")], cwd=self.root,
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}; see {self.root / 'orthanc.log'}")
            try:
                self.rest("/system")
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within {timeout} s; see {self.root / 'orthanc.log'}")

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    # --- REST and DICOMweb, for the tests' own checks -----------------------------------------

    def _request(self, path: str, data: bytes | None = None, accept: str = "application/json") -> bytes:
        import base64
        import urllib.request

        request = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        request.add_header("Accept", accept)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()

    def rest(self, path: str):
        return json.loads(self._request(path) or b"null")

    def upload(self, data: bytes) -> dict:
        """Store one DICOM file by Orthanc's REST API (as a modality's router would, outside covidxray)."""
        return json.loads(self._request("/instances", data=data))

    def instances(self, study_uid: str) -> list[dict]:
        """(SOPInstanceUID, SeriesInstanceUID, Modality, SOPClassUID) of every instance of a study, by QIDO-RS."""
        answer = json.loads(self._request(f"/dicom-web/studies/{study_uid}/instances", accept="application/dicom+json") or b"[]")

        def value(item, tag):
            return ((item.get(tag) or {}).get("Value") or [""])[0]

        return [{"sop": value(item, "00080018"), "series": value(item, "0020000E"), "modality": value(item, "00080060"),
                 "sop_class": value(item, "00080016")} for item in answer]

    def file(self, sop_uid: str) -> bytes:
        """The stored file of an instance (Orthanc's REST API)."""
        found = json.loads(self._request("/tools/lookup", data=sop_uid.encode()))
        return self._request(f"/instances/{found[0]['ID']}/file", accept="application/dicom")

    def instance_count(self) -> int:
        return int(self.rest("/statistics")["CountInstances"])


# --- what the tests put in the PACS --------------------------------------------------------------


@dataclass
class StudyFile:
    """One instance put in the test PACS: what it is, and its bytes."""

    kind: str
    sop_uid: str
    data: bytes
    #: True for the instances covidxray screens (CR/DX radiographs).
    candidate: bool


def _grey(path: Path, side: int = 256) -> np.ndarray:
    from PIL import Image

    image = Image.open(path).convert("L")
    image.thumbnail((side, side))
    return np.asarray(image, dtype=np.uint8)


def _part10(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def frontal_images() -> list[Path]:
    """Small real frontal radiographs: the bundled samples and a few of the shared collections."""
    dark = DATA_DIR / "darkcovidnet" / "X-Ray Image DataSet"
    found = [SAMPLES / "covid-cc-by-12941_2020_358_Fig1.jpg", SAMPLES / "normal-nih-00001280_004.png",
             SAMPLES / "pneumonia-cc-by-pneumocystis-pneumonia-1.jpg", SAMPLES / "covid-cc-by-41182_2020_203_Fig3.jpg"]
    for folder in ("No_findings", "Covid-19", "Pneumonia"):
        if (dark / folder).is_dir():
            found += sorted((dark / folder).iterdir())[:4]
    return [path for path in found if path.is_file()]


def lateral_image() -> Path | None:
    path = DATA_DIR / "covid-chestxray-dataset" / "images" / "nejmoa2001191_f1-L.jpeg"
    return path if path.is_file() else None


def radiograph(pixels: np.ndarray, study_uid: str, series_uid: str, number: int, modality: str = "DX"):
    """A CR or DX instance of the study (made-up patient identifiers, so tests can check they never leak)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from dicom_factory import radiograph_dataset
    from pydicom.uid import ComputedRadiographyImageStorage, DigitalXRayImageStorageForPresentation

    sop_class = ComputedRadiographyImageStorage if modality == "CR" else DigitalXRayImageStorageForPresentation
    dataset = radiograph_dataset(pixels, modality=modality, sop_class=sop_class)
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study_uid, series_uid
    dataset.InstanceNumber, dataset.SeriesNumber = number, 1 if modality in ("CR", "DX") else 2
    dataset.StudyDate, dataset.StudyTime, dataset.AccessionNumber = "20240105", "101500", "ACC-SECRET-77"
    dataset.PatientSex, dataset.ViewPosition, dataset.BodyPartExamined = "F", "PA", "CHEST"
    return dataset


def frontal_study(count: int, study_uid: str | None = None, modality: str = "DX", side: int = 256) -> list[StudyFile]:
    """A study of count frontal radiographs from real images (cycled, longer side at most side px), one series."""
    from pydicom.uid import generate_uid

    study_uid, series_uid = study_uid or generate_uid(), generate_uid()
    images = frontal_images()
    files = []
    for number in range(count):
        dataset = radiograph(_grey(images[number % len(images)], side), study_uid, series_uid, number + 1, modality)
        files.append(StudyFile(f"frontal {modality}", dataset.SOPInstanceUID, _part10(dataset), True))
    return files


def mixed_study() -> list[StudyFile]:
    """A study as a PACS holds them: frontal CR and DX, a lateral, a CT slice, an RGB secondary capture,
    and a DX whose pixel data was cut short (Orthanc refuses a file cut mid-element, so the cut is at
    an element boundary: the header promises more pixels than the file holds)."""
    from pydicom.uid import CTImageStorage, SecondaryCaptureImageStorage, generate_uid

    study_uid = generate_uid()
    cr_series, dx_series, ct_series, sc_series = (generate_uid() for _ in range(4))
    images = frontal_images()
    files = []
    cr = radiograph(_grey(images[0]), study_uid, cr_series, 1, "CR")
    files.append(StudyFile("frontal CR", cr.SOPInstanceUID, _part10(cr), True))
    dx = radiograph(_grey(images[1]), study_uid, dx_series, 1, "DX")
    files.append(StudyFile("frontal DX", dx.SOPInstanceUID, _part10(dx), True))
    lateral_path = lateral_image() or images[2]
    lateral = radiograph(_grey(lateral_path), study_uid, dx_series, 2, "DX")
    lateral.ViewPosition = "LL"
    files.append(StudyFile("lateral DX", lateral.SOPInstanceUID, _part10(lateral), True))
    truncated = radiograph(_grey(images[2]), study_uid, dx_series, 3, "DX")
    truncated.PixelData = truncated.PixelData[: len(truncated.PixelData) // 3 // 2 * 2]
    files.append(StudyFile("truncated DX", truncated.SOPInstanceUID, _part10(truncated), True))
    ct = radiograph((np.random.default_rng(0).random((64, 64)) * 4000).astype(np.uint16), study_uid, ct_series, 1, "CT")
    ct.SOPClassUID = ct.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ct.RescaleIntercept, ct.RescaleSlope = -1024, 1
    files.append(StudyFile("CT slice", ct.SOPInstanceUID, _part10(ct), False))
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from dicom_factory import rgb_dataset

    photo = np.zeros((64, 96, 3), np.uint8)
    photo[..., 0], photo[16:48, 24:72, 1] = 200, 180
    sc = rgb_dataset(photo, modality="OT")
    sc.SOPClassUID = sc.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    sc.StudyInstanceUID, sc.SeriesInstanceUID, sc.InstanceNumber = study_uid, sc_series, 1
    sc.StudyDate, sc.AccessionNumber = "20240105", "ACC-SECRET-77"
    files.append(StudyFile("RGB secondary capture", sc.SOPInstanceUID, _part10(sc), False))
    return files
