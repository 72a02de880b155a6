"""The refusal corpus: files the input gate must refuse or flag, for the tests and the benchmarks.

Test material, not part of the package: `covidxray gate fit` never reads it. tests/test_gate.py and
tests/test_gate_corpus.py import it (tests/ is on sys.path under pytest); benchmarks/gate_generalisation.py
puts tests/ on sys.path first. Real files where a public one fits (photographs and an MR slice shipped
with scikit-learn and matplotlib, the COVID-19 collection's laterals, real radiographs inverted or cut),
generated otherwise (documents, screenshots, CT and MR slices, blank pictures), with seeds apart from fitting's.
"""

from __future__ import annotations

import gzip
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from covidxray.errors import ImageReadError
from covidxray.gate.fit import SEED, manifest_rows
from covidxray.gate.runtime import GateModel, GateResult
from covidxray.imaging.read import read_image

__all__ = ["CORPUS_KINDS", "CorpusCase", "ct_slice", "landscape_photo", "mr_slice", "refusal_corpus", "screen_case",
           "synthetic_non_radiographs"]


def synthetic_non_radiographs(seed: int, per_kind: int = 20, size: int = 256) -> dict[str, list[np.ndarray]]:
    """Greyscale [0, 1] pictures that are not radiographs: noise, gradients, checkerboards, photos, text."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 1.0, size)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    kinds: dict[str, list[np.ndarray]] = {name: [] for name in ("noise", "gradient", "checkerboard", "photo", "text")}
    for _ in range(per_kind):
        kinds["noise"].append(_blur(rng.random((size, size)), rng.choice([0.0, 1.0, 3.0])))
        angle, low, high = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.4), rng.uniform(0.6, 1.0)
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        if rng.random() < 0.3:
            ramp = np.hypot(xx - rng.random(), yy - rng.random())
        kinds["gradient"].append(low + (high - low) * (ramp - ramp.min()) / np.ptp(ramp))
        cells = int(rng.integers(2, 17))
        board = ((np.floor(xx * cells * 0.999) + np.floor(yy * cells * 0.999)) % 2).astype(np.float64)
        kinds["checkerboard"].append(0.15 + 0.7 * board)
        kinds["photo"].append(_synthetic_photo(rng, size))
        kinds["text"].append(_text_page(rng, size))
    return kinds


def _blur(picture: np.ndarray, radius: float) -> np.ndarray:
    if radius == 0:
        return picture
    blurred = Image.fromarray((picture * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(float(radius)))
    return np.asarray(blurred, np.float64) / 255.0


def _synthetic_photo(rng: np.random.Generator, size: int) -> np.ndarray:
    """Sky, ground and objects with 1/f texture: the statistics of a natural photograph, in grey."""
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / np.maximum(frequency, 1 / size)
    texture = np.real(np.fft.ifft2(spectrum))
    texture = (texture - texture.mean()) / (texture.std() + 1e-9)
    horizon = int(rng.integers(size // 4, 3 * size // 4))
    picture = np.empty((size, size))
    picture[:horizon] = rng.uniform(0.5, 0.95)
    picture[horizon:] = rng.uniform(0.1, 0.6)
    canvas = Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(2, 7))):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(size // 10, size // 2, 2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([int(x), int(y), int(x + w), int(y + h)], fill=int(rng.integers(0, 256)))
    photo = np.asarray(canvas, np.float64) / 255.0 + 0.08 * texture
    return np.clip(photo, 0.0, 1.0)


def _fractal(rng: np.random.Generator, height: int, width: int, power: float) -> np.ndarray:
    """Noise with a 1/f**power spectrum, mean 0 and standard deviation 1 (clouds, hills, grass)."""
    frequency = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :])
    frequency[0, 0] = 1.0
    spectrum = (rng.normal(size=(height, width)) + 1j * rng.normal(size=(height, width))) / frequency**power
    texture = np.real(np.fft.ifft2(spectrum))
    return (texture - texture.mean()) / (texture.std() + 1e-9)


def landscape_photo(rng: np.random.Generator, width: int = 640, height: int = 480) -> Image.Image:
    """A phone's landscape photograph turned grey: smooth bright sky, a ragged horizon of hills,
    darker textured ground, a few trees and a house standing on the horizon (greyscale PIL image)."""
    columns = np.arange(width)
    horizon = (height * rng.uniform(0.42, 0.58) + 0.06 * height * _fractal(rng, 1, width, 1.5)[0]
               + 0.02 * height * np.sin(columns / width * rng.uniform(2, 6)))
    rows = np.arange(height)[:, None]
    sky = rng.uniform(0.72, 0.88) - 0.12 * (1 - rows / height) + 0.03 * _fractal(rng, height, width, 2.0)
    ground = rng.uniform(0.28, 0.45) + 0.08 * _fractal(rng, height, width, 1.0) + 0.1 * (rows / height - 0.5)
    picture = np.where(rows < horizon[None, :], sky, ground)
    canvas = Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(2, 6))):  # trees: a trunk and a crown
        x = int(rng.integers(0, width))
        base, tall = int(horizon[x]) + int(rng.integers(0, 30)), int(rng.integers(height // 10, height // 4))
        crown = tall // 3
        draw.rectangle([x - 3, base - tall, x + 3, base], fill=int(rng.integers(30, 70)))
        draw.ellipse([x - crown, base - tall - crown, x + crown, base - tall + crown], fill=int(rng.integers(40, 90)))
    x = int(rng.integers(width // 8, 6 * width // 8))
    base = int(horizon[x]) + 20  # a house: walls and a roof
    draw.rectangle([x, base - 50, x + 70, base], fill=int(rng.integers(120, 200)))
    draw.polygon([(x - 8, base - 50), (x + 35, base - 85), (x + 78, base - 50)], fill=int(rng.integers(40, 90)))
    return canvas.filter(ImageFilter.GaussianBlur(0.8))


def _text_page(rng: np.random.Generator, size: int) -> np.ndarray:
    paper, ink = (255, 0) if rng.random() < 0.7 else (0, 255)
    page = Image.new("L", (size, size), paper)
    draw = ImageDraw.Draw(page)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 "
    for line in range(int(rng.integers(4, 20))):
        text = "".join(rng.choice(list(letters), int(rng.integers(10, 40))))
        draw.text((int(rng.integers(2, 20)), 4 + line * 12), text, fill=ink)
    return _blur(np.asarray(page, np.float64) / 255.0, rng.choice([0.0, 0.7]))


@dataclass
class CorpusCase:
    """One file that the gate must refuse or flag: its class, a name (with suffix) and its bytes."""

    kind: str
    name: str
    data: bytes


#: The classes of refusal_corpus, in the order printed.
CORPUS_KINDS = ("colour photograph", "natural image (grey)", "landscape photograph (grey)", "document", "screenshot",
                "blank or near-constant", "CT slice (PNG)", "MR slice (PNG)", "CT/MR DICOM",
                "CT DICOM in Hounsfield units, no Modality", "colour DICOM (OT, RGB)", "lateral view (real)",
                "inverted radiograph", "cropped fragment", "strip")


def _package_pictures() -> list[tuple[str, np.ndarray]]:
    """Real photographs shipped with installed packages (scikit-learn, matplotlib), as RGB arrays."""
    import matplotlib
    import sklearn

    found = []
    for path in (Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg",
                 Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg",
                 Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"):
        if path.is_file():
            found.append((path.stem, np.asarray(Image.open(path).convert("RGB"))))
    return found


def _real_mr() -> np.ndarray | None:
    """matplotlib's sample MR slice (256 x 256, 16-bit), scaled to [0, 1]."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "s1045.ima.gz"
    if not path.is_file():
        return None
    values = np.frombuffer(gzip.decompress(path.read_bytes()), ">u2").reshape(256, 256).astype(np.float64)
    return values / values.max()


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    picture = array if isinstance(array, Image.Image) else Image.fromarray(
        (np.clip(array, 0, 1) * 255).round().astype(np.uint8) if array.dtype.kind == "f" else array)
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _dicom(pixels: np.ndarray, modality: str, photometric: str = "MONOCHROME2") -> bytes:
    """A small Explicit VR Little Endian DICOM holding 8-bit pixels (grey, or RGB when 3-D)."""
    from pydicom.uid import SecondaryCaptureImageStorage

    from covidxray.imaging.dicom_writing import new_dataset, put_pixels

    dataset = new_dataset(SecondaryCaptureImageStorage)
    with warnings.catch_warnings():  # 'ct ' (lower case, padded) is written on purpose
        warnings.simplefilter("ignore")
        dataset.Modality = modality
    put_pixels(dataset, np.ascontiguousarray(pixels, np.uint8), photometric)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # 'ct ' (lower case, padded) is written on purpose
        warnings.simplefilter("ignore")
        dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_slice(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """An axial chest CT slice as a lung window shows it: body, two dark lungs with vessels, spine, ribs."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    body_w, body_h = rng.uniform(0.38, 0.46), rng.uniform(0.26, 0.34)
    body = ((xx - 0.5) / body_w) ** 2 + ((yy - 0.52) / body_h) ** 2 < 1
    picture = np.where(body, rng.uniform(0.55, 0.75), 0.0)
    for side in (-1, 1):
        lung = ((xx - 0.5 - side * body_w * 0.45) / (body_w * 0.38)) ** 2 + ((yy - 0.5) / (body_h * 0.75)) ** 2 < 1
        picture[lung] = rng.uniform(0.02, 0.12)
        for _ in range(25):
            cx, cy = 0.5 + side * body_w * 0.45 + rng.normal(0, body_w * 0.15), 0.5 + rng.normal(0, body_h * 0.3)
            vessel = ((xx - cx) ** 2 + (yy - cy) ** 2 < rng.uniform(0.00002, 0.0001)) & lung
            picture[vessel] = 0.6
    spine = ((xx - 0.5) ** 2 + (yy - 0.52 - body_h * 0.7) ** 2) < (body_h * 0.16) ** 2
    picture[spine] = 0.98
    for angle in np.linspace(0.2, np.pi - 0.2, 9):
        for side in (-1, 1):
            cx, cy = 0.5 + side * np.cos(angle) * body_w * 0.93, 0.52 + np.sin(angle - np.pi / 2) * -body_h * 0.93
            picture[(xx - cx) ** 2 + (yy - cy) ** 2 < 0.00012] = 0.95
    picture[int(size * (0.52 + body_h) + 6): int(size * (0.52 + body_h) + 9), :] = 0.5  # the table
    return np.clip(_blur(picture, 1.0) + rng.normal(0, 0.02, picture.shape), 0, 1)


def mr_slice(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """An axial brain MR slice: skull ring, grey matter with folds, white matter, ventricles."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    radius = ((xx - 0.5) / rng.uniform(0.33, 0.38)) ** 2 + ((yy - 0.5) / rng.uniform(0.4, 0.45)) ** 2
    angle = np.arctan2(yy - 0.5, xx - 0.5)
    folds = 0.06 * np.sin(angle * int(rng.integers(14, 24)) + rng.uniform(0, 6))
    picture = np.where(radius < 1.1, 0.85, 0.0) * (radius > 0.95)
    picture += np.where(radius < 0.95, 0.45, 0.0) + np.where(radius < 0.65 + folds, 0.25, 0.0)
    ventricles = (((xx - 0.46) / 0.04) ** 2 + ((yy - 0.48) / 0.12) ** 2 < 1) | (((xx - 0.54) / 0.04) ** 2 + ((yy - 0.48) / 0.12) ** 2 < 1)
    picture[ventricles] = 0.1
    return np.clip(_blur(picture, 1.2) + rng.normal(0, 0.02, picture.shape), 0, 1)


def _screenshot(rng: np.random.Generator, size: int = 320) -> np.ndarray:
    """A window: title bar, menu, buttons, text and a bar chart (grey)."""
    page = Image.new("L", (size, int(size * 0.75)), int(rng.integers(200, 256)))
    draw = ImageDraw.Draw(page)
    draw.rectangle([0, 0, size, 18], fill=int(rng.integers(40, 120)))
    for x in range(4, size - 60, 50):
        draw.text((x, 22), "Menu", fill=0)
    for _ in range(int(rng.integers(3, 7))):
        x, y = int(rng.integers(5, size - 80)), int(rng.integers(40, int(size * 0.7) - 20))
        draw.rectangle([x, y, x + 70, y + 18], outline=0, fill=int(rng.integers(150, 240)))
        draw.text((x + 6, y + 4), "Button", fill=0)
    base = int(size * 0.7)
    for i in range(int(rng.integers(4, 10))):
        height = int(rng.integers(10, 90))
        draw.rectangle([size // 2 + i * 14, base - height, size // 2 + i * 14 + 10, base], fill=int(rng.integers(0, 150)))
    return np.asarray(page, np.float64) / 255.0


def _lateral_paths(data: Path) -> list[str]:
    rows = manifest_rows(data, per_collection=10**9)
    return [p for p, v in zip(rows["path"], rows["view"]) if v.upper() == "L"]


def _frontal_samples(data: Path, count: int, seed: int) -> list[np.ndarray]:
    rows = manifest_rows(data, per_collection=count // 4 + 2, seed=seed)
    rows = rows[rows["view"].str.upper() != "L"]
    return [read_image(p) for p in rows["path"]][:count]


def refusal_corpus(data: Path, seed: int = SEED + 7, per_kind: int = 20) -> list[CorpusCase]:
    """Files the gate must refuse or flag, each class (CORPUS_KINDS) with about per_kind cases.

    Real where a public file fits: photographs shipped with scikit-learn and matplotlib, the MR
    slice shipped with matplotlib, the COVID-19 collection's lateral (view L) radiographs, real
    frontal radiographs inverted or cut to fragments; generated otherwise (documents, screenshots,
    CT and MR slices, blank pictures), with a seed apart from the one used in fitting.
    """
    rng = np.random.default_rng(seed)
    cases: list[CorpusCase] = []
    photos = _package_pictures()
    for number in range(per_kind):
        name, rgb = photos[number % len(photos)]
        h, w = rgb.shape[:2]
        top, left = int(rng.integers(0, h // 3)), int(rng.integers(0, w // 3))
        crop = rgb[top: top + int(h * rng.uniform(0.6, 0.67)), left: left + int(w * rng.uniform(0.6, 0.67))]
        cases.append(CorpusCase("colour photograph", f"{name}-{number}.jpg", _jpeg(crop)))
        grey = np.asarray(Image.fromarray(crop).convert("L"))
        cases.append(CorpusCase("natural image (grey)", f"{name}-grey-{number}.png", _png(grey)))
    synthetic = synthetic_non_radiographs(seed, per_kind=per_kind)
    for number in range(per_kind):
        cases.append(CorpusCase("natural image (grey)", f"scene-{number}.png", _png(synthetic["photo"][number])))
        cases.append(CorpusCase("document", f"page-{number}.png", _png(synthetic["text"][number])))
        cases.append(CorpusCase("screenshot", f"window-{number}.png", _png(_screenshot(rng))))
        level = rng.uniform(0.05, 0.95)
        flat = np.clip(level + rng.normal(0, rng.choice([0.0, 0.003, 0.01]), (240, 240)), 0, 1)
        cases.append(CorpusCase("blank or near-constant", f"blank-{number}.png", _png(flat)))
        ct, mr = ct_slice(rng), mr_slice(rng)
        cases.append(CorpusCase("CT slice (PNG)", f"ct-{number}.png", _png(ct)))
        cases.append(CorpusCase("MR slice (PNG)", f"mr-{number}.png", _png(mr)))
        modality = ("CT", "MR", "ct ", "mr")[number % 4]
        cases.append(CorpusCase("CT/MR DICOM", f"slice-{number}.dcm", _dicom((ct if number % 2 == 0 else mr) * 255, modality)))
        name, rgb = photos[number % len(photos)]
        cases.append(CorpusCase("colour DICOM (OT, RGB)", f"photo-{number}.dcm", _dicom(rgb[::2, ::2], "OT", "RGB")))
    mr = _real_mr()
    if mr is not None:
        cases.append(CorpusCase("MR slice (PNG)", "s1045-matplotlib.png", _png(mr)))
    for path in _lateral_paths(data):
        cases.append(CorpusCase("lateral view (real)", Path(path).name, Path(path).read_bytes()))
    for number, image in enumerate(_frontal_samples(data, per_kind, seed)):
        cases.append(CorpusCase("inverted radiograph", f"negative-{number}.png", _png(1.0 - image)))
        h, w = image.shape
        fh, fw = int(h * rng.uniform(0.2, 0.35)), int(w * rng.uniform(0.2, 0.35))
        top, left = int(rng.integers(0, h - fh)), int(rng.integers(0, w - fw))
        fragment = np.asarray(Image.fromarray((image[top: top + fh, left: left + fw] * 255).astype(np.uint8)).resize((256, 256)))
        cases.append(CorpusCase("cropped fragment", f"fragment-{number}.png", _png(fragment)))
        row = int(rng.integers(0, h - 8))
        strip = np.asarray(Image.fromarray((image[row: row + 8] * 255).astype(np.uint8)).resize((w * 4, 40)))
        cases.append(CorpusCase("strip", f"strip-{number}.png", _png(strip)))
    cases += _issue_25_cases(np.random.default_rng(seed + 25), per_kind)  # its own generator: the cases above stay as they were
    return cases


def _issue_25_cases(rng: np.random.Generator, per_kind: int) -> list[CorpusCase]:
    """Issue #25: grey landscape photographs (JPEG, as a phone saves them) and CT slices stored as signed
    Hounsfield units with no Modality and no window (half with RescaleIntercept -1024 over unsigned-range values)."""
    from dicom_factory import hounsfield_ct_dataset

    cases = []
    for number in range(per_kind):
        photo = landscape_photo(rng, width=int(rng.integers(480, 800)), height=int(rng.integers(360, 600)))
        buffer = io.BytesIO()
        photo.save(buffer, format="JPEG", quality=int(rng.integers(80, 95)))
        cases.append(CorpusCase("landscape photograph (grey)", f"landscape-{number}.jpg", buffer.getvalue()))
        dataset = hounsfield_ct_dataset(int(rng.integers(0, 2**31)), size=int(rng.choice([256, 512])),
                                        intercept=-1024.0 if number % 2 else None)
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        cases.append(CorpusCase("CT DICOM in Hounsfield units, no Modality", f"ct-hu-{number}.dcm", buffer.getvalue()))
    return cases


def screen_case(case: CorpusCase, model: GateModel | None = None) -> GateResult:
    """The gate's verdict on a corpus file, read as an upload is (bytes, name)."""
    from covidxray.gate.runtime import assess_input
    from covidxray.imaging.read import read_image_facts

    try:
        facts = read_image_facts(case.data, case.name)
    except ImageReadError as error:
        return GateResult(False, ["unreadable"], str(error), "refused")
    return assess_input(facts.image, modality=facts.modality, colourfulness=facts.colourfulness,
                        hue_spread=facts.hue_spread, hounsfield_range=facts.hounsfield_range, model=model)
