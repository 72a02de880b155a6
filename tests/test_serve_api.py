"""The web API of `covidxray serve` on a real (small) trained checkpoint: answers, refusals, no disk, no PHI."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import re
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi", reason="fastapi is not installed (pip install fastapi uvicorn python-multipart)")
from fastapi.testclient import TestClient  # noqa: E402

from covidxray import RESEARCH_NOTICE  # noqa: E402
from covidxray.inference.predictor import SAMPLES, Predictor, read_input  # noqa: E402
from covidxray.serve.app import create_app  # noqa: E402
from tests.dicom_factory import PATIENT_ID, PATIENT_NAME, radiograph_dataset, save  # noqa: E402

SAMPLE_PNG = SAMPLES / "normal-nih-00001280_004.png"
SAMPLE_JPEG = SAMPLES / "covid-cc-by-12941_2020_358_Fig1.jpg"
GATE = Path(__file__).resolve().parents[1] / "covidxray" / "weights" / "gate.npz"


def train_small_checkpoint(folder: Path) -> Path:
    """A real 3-class checkpoint trained briefly on generated radiographs (as tests/test_evaluate.py)."""
    from covidxray.training.loop import TrainConfig, train
    from tests.synthetic_xrays import write_split

    split = write_split(folder / "images", {"train": 6, "val": 3})
    config = TrainConfig(model="xray-cnn", task="3class", split=split, out=folder / "run", epochs=2, batch_size=8,
                         size=32, cache_dir=folder / "cache", threads=1, show_progress=False, lr=3e-3)
    return train(config).best_path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return train_small_checkpoint(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def client(checkpoint) -> TestClient:
    with TestClient(create_app(checkpoint, max_upload_mb=5, use_gate=False)) as test_client:
        yield test_client


def colour_photo_jpeg() -> bytes:
    """A colour holiday-like picture: what the input gate refuses."""
    rng = np.random.default_rng(2)
    photo = np.zeros((240, 320, 3), np.uint8)
    photo[..., 0], photo[..., 1] = 220, rng.integers(0, 120, (240, 320))
    photo[80:160, 100:220] = (30, 160, 40)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG")
    return buffer.getvalue()


def post(client: TestClient, name: str, data: bytes, query: str = "") -> "httpx.Response":  # noqa: F821
    return client.post(f"/api/v1/predict{query}", files={"file": (name, data, "application/octet-stream")})


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims width x height: what a decompression bomb looks like up front."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


def test_health_and_model_card(client, checkpoint):
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["model"]["name"] == "xray-cnn" and health["notice"] == RESEARCH_NOTICE
    card = client.get("/api/v1/model").json()
    expected = Predictor(checkpoint, use_gate=False).classifier
    assert card["architecture"] == "xray-cnn" and card["task"] == "3class"
    assert card["labels"] == list(expected.labels) and card["threshold"] == pytest.approx(expected.threshold)
    assert card["temperature"] == pytest.approx(expected.temperature)
    assert card["training_record"]["covidxray_version"] and card["training_record"]["split_sha256"]
    assert "model_card" in card and card["version"] == health["model"]["version"]


ABSOLUTE_PATH = re.compile(r"(^|[\s`'\"(=])(/(home|root|work|tmp|var|Users|mnt|private)/|[A-Za-z]:\\\\)")


def test_model_card_names_no_folder_of_the_training_machine_and_both_torch_versions(checkpoint, tmp_path):
    from importlib import metadata

    from covidxray.inference.checkpoint import read_checkpoint, write_content

    content = read_checkpoint(checkpoint)  # as older checkpoints hold it: the trainer's own folders
    content["record"]["split_file"] = "/home/trainer/project/prepared/split.csv"
    older = write_content(content, tmp_path / "older.pt")
    raw = Predictor(older, use_gate=False).info.record
    assert Path(raw["split_file"]).is_absolute()
    with TestClient(create_app(older, max_upload_mb=5, use_gate=False)) as client:
        card = client.get("/api/v1/model").json()
        page = client.get("/model-card")
    assert card["training_record"]["split_file"] == Path(raw["split_file"]).name
    assert not ABSOLUTE_PATH.search(json.dumps(card))
    assert card["torch_version_trained"] == raw["torch_version"] and card["torch_version_installed"] == metadata.version("torch")
    assert card["model_card"] is None  # MODEL_CARD.md describes the bundled model, not this checkpoint
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and RESEARCH_NOTICE in page.text
    assert f"{metadata.version('torch')} installed here" in page.text and not ABSOLUTE_PATH.search(page.text)


def test_model_card_page_renders_the_markdown_safely(client, checkpoint, tmp_path, monkeypatch):
    import covidxray.serve.app as serve_app

    markdown = tmp_path / "MODEL_CARD.md"
    markdown.write_text("# Model card: test\n\n> notice line\n\n## Model\n\n- trained on `/work/main/runs/x/best.pt`\n"
                        "- **bold** <script>alert(1)</script>\n\n| metric | value |\n|---|---|\n| roc_auc | 0.9 |\n\n"
                        "```bash\ncovidxray train --split /home/me/prepared/split.csv\n```\n", encoding="utf-8")
    monkeypatch.setattr(serve_app, "MODEL_CARD", markdown)
    monkeypatch.setattr(serve_app, "DEFAULT_MODEL", checkpoint)  # as if this were the bundled model
    text = client.get("/model-card").text
    assert "<h1>Model card: test</h1>" in text and "<blockquote>" in text and "<strong>bold</strong>" in text
    assert "<td>roc_auc</td><td>0.9</td>" in text and "<pre><code" in text and "<code>best.pt</code>" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert not ABSOLUTE_PATH.search(text) and "split.csv" in text
    assert "&#x27;" not in client.get("/api/v1/model").json()["model_card"]  # the JSON keeps the card as Markdown


def test_api_reference_is_served_locally_and_predict_has_a_response_schema(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: works offline
    assert "/api/v1/predict" in page.text and 'id="schema-PredictAnswer"' in page.text and "p_covid" in page.text
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN too
    schema = client.get("/openapi.json").json()
    success = schema["paths"]["/api/v1/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert success == {"$ref": "#/components/schemas/PredictAnswer"}
    fields = schema["components"]["schemas"]["PredictAnswer"]["properties"]
    assert {"p_covid", "prediction", "status", "input_note", "severity_extent", "model", "heatmap_png"} <= set(fields)
    assert all(fields[name].get("description") for name in fields if name != "model")
    refused = schema["paths"]["/api/v1/predict"]["post"]["responses"]["415"]["content"]["application/json"]["schema"]
    assert refused == {"$ref": "#/components/schemas/ErrorAnswer"}


def test_favicon_is_a_small_icon_not_a_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    icon = Image.open(io.BytesIO(response.content))
    assert icon.format == "ICO" and len(response.content) < 16 * 1024


@pytest.mark.parametrize("path", [SAMPLE_PNG, SAMPLE_JPEG], ids=["png", "jpeg"])
def test_predict_real_xray_matches_the_cli_predictor(client, checkpoint, path):
    response = post(client, path.name, path.read_bytes())
    assert response.status_code == 200, response.text
    answer = response.json()
    probabilities = {label: answer[f"p_{label}"] for label in ("covid", "pneumonia", "normal")}
    assert all(0.0 <= p <= 1.0 for p in probabilities.values())
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert answer["prediction"] == max(probabilities, key=probabilities.get)
    assert answer["status"] == "screened" and answer["filename"] == path.name
    assert answer["model"]["name"] == "xray-cnn" and answer["notice"] == RESEARCH_NOTICE
    assert {"threshold", "input_flags", "input_note", "severity_extent", "severity_opacity"} <= set(answer)
    assert "heatmap_png" not in answer and "image_png" not in answer  # unset fields of PredictAnswer stay out
    cli = Predictor(checkpoint, use_gate=False).screen_read([read_input(str(path))])[0]
    assert answer["p_covid"] == pytest.approx(cli.p_covid, abs=1e-5) and answer["prediction"] == cli.prediction


def test_heatmap_is_a_decodable_png_the_size_of_the_shown_radiograph(client):
    answer = post(client, SAMPLE_JPEG.name, SAMPLE_JPEG.read_bytes(), "?heatmap=true").json()
    heat = Image.open(io.BytesIO(base64.b64decode(answer["heatmap_png"])))
    shown = Image.open(io.BytesIO(base64.b64decode(answer["image_png"])))
    heat.load()
    assert heat.format == "PNG" and heat.mode == "RGB" and heat.size == shown.size and max(heat.size) <= 1024
    assert np.asarray(heat).std() > 1  # a picture, not a blank
    assert answer["heatmap_class"] in ("covid", "pneumonia", "normal")


def test_page_and_its_assets_are_served_and_need_no_internet(client):
    page = client.get("/")
    assert page.status_code == 200 and RESEARCH_NOTICE in page.text and 'id="file-input"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200 and response.text
        assert "http://" not in response.text and "https://" not in response.text, asset
    assert "http://" not in page.text and "https://" not in page.text
    assert "/api/v1/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("name, content, status, message", [
    ("notes.txt", b"these are not the pixels you are looking for\n" * 20, 415, "not a PNG, JPEG or DICOM"),
    ("empty.png", b"", 422, "file is empty"),
    ("truncated.png", SAMPLE_PNG.read_bytes()[:4000], 422, "truncated or corrupt"),
    ("random.dcm", np.random.default_rng(0).bytes(4096), 422, "random.dcm"),
    ("bomb.png", png_header_only(40000, 40000), 422, "40000x40000 pixels, over the limit"),
], ids=["text", "empty", "truncated", "random-dcm", "bomb"])
def test_bad_uploads_get_415_or_422_naming_the_problem(client, name, content, status, message):
    response = post(client, name, content)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert client.get("/api/v1/health").status_code == 200  # the worker is still there


def test_request_without_a_file_field_or_not_multipart_is_refused(client):
    assert client.post("/api/v1/predict", json={"file": "x"}).status_code == 415
    response = client.post("/api/v1/predict", files={"image": ("a.png", SAMPLE_PNG.read_bytes())})
    assert response.status_code == 422 and "no field named 'file'" in response.json()["detail"]


def test_upload_over_the_limit_is_413_by_header_and_by_counting(checkpoint):
    with TestClient(create_app(checkpoint, max_upload_mb=1, use_gate=False)) as small:
        two_mb = os.urandom(2 * 1024 * 1024)
        response = post(small, "big.png", two_mb)
        assert response.status_code == 413 and "over the limit of 1,048,576 bytes" in response.json()["detail"]

        def chunks():  # streamed: no Content-Length at all
            yield b"--edge\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\r\n"
            for start in range(0, len(two_mb), 64 * 1024):
                yield two_mb[start:start + 64 * 1024]
            yield b"\r\n--edge--\r\n"
        response = small.post("/api/v1/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=edge"})
        assert response.status_code == 413, response.text


def test_declared_oversize_is_refused_before_any_body_is_read_and_a_lying_length_is_caught(checkpoint):
    app = create_app(checkpoint, max_upload_mb=1, use_gate=False)

    def call(declared_length: int, body: bytes) -> tuple[int, int]:
        reads, sent = [], []
        pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]

        async def receive():
            reads.append(1)
            chunk = pieces.pop(0) if pieces else b""
            return {"type": "http.request", "body": chunk, "more_body": bool(pieces)}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": "/api/v1/predict", "raw_path": b"/api/v1/predict", "query_string": b"", "root_path": "",
                 "headers": [(b"content-type", b"multipart/form-data; boundary=edge"), (b"content-length", str(declared_length).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        asyncio.run(app(scope, receive, send))
        return sent[0]["status"], len(reads)

    status, reads = call(50 * 1024 * 1024, b"x" * 10)
    assert status == 413 and reads == 0
    body = b"--edge\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + b"\0" * (3 * 1024 * 1024)
    status, reads = call(1000, body)  # claims 1000 bytes, sends 3 MB
    assert status == 413 and reads < 3 * 1024 * 1024 // 65536


_WRITES: list[str] = []
_WATCHING = [False]


def _audit(event: str, args: tuple) -> None:
    if not _WATCHING[0]:
        return
    if event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
        _WRITES.append(f"{event} {args}")
    elif event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                  (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing:
            _WRITES.append(f"open {path} {mode} {flags}")


def test_uploads_are_never_written_to_disk(client, monkeypatch):
    import starlette.formparsers

    spooled = []

    class Spy(tempfile.SpooledTemporaryFile):
        def __init__(self, *args, **kwargs):
            spooled.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", Spy)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", Spy)
    noise = np.random.default_rng(1).integers(0, 255, (1400, 1400), dtype=np.uint8)  # ~2 MB PNG: over starlette's 1 MB spool
    base = np.asarray(Image.open(SAMPLE_PNG).convert("L").resize((1400, 1400)), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(((base.astype(np.uint16) * 3 + noise) // 4).astype(np.uint8)).save(buffer, format="PNG")
    assert buffer.tell() > 1024 * 1024
    sys.addaudithook(_audit)
    _WRITES.clear()
    _WATCHING[0] = True
    try:
        response = post(client, "large.png", buffer.getvalue(), "?heatmap=true")
    finally:
        _WATCHING[0] = False
    assert response.status_code == 200, response.text
    assert spooled == [] and _WRITES == []


def test_dicom_identifiers_never_reach_responses_or_logs(client, tmp_path, caplog):
    pixels = (np.asarray(Image.open(SAMPLE_PNG).convert("L").resize((256, 256)), np.uint16) * 16)
    good = save(radiograph_dataset(pixels, bits_stored=12), tmp_path / "study.dcm").read_bytes()
    caplog.set_level(logging.DEBUG)
    answers = [post(client, "study.dcm", good, "?heatmap=true"), post(client, "broken.dcm", good[: len(good) // 3])]
    assert answers[0].status_code == 200 and answers[1].status_code == 422
    assert answers[0].json()["p_covid"] is not None
    texts = [json.dumps({k: v for k, v in a.json().items() if not k.endswith("_png")}) for a in answers]  # base64 may spell anything
    for text in texts + [caplog.text]:
        assert PATIENT_NAME not in text and PATIENT_ID not in text and "19700101" not in text
    assert "study.dcm" not in caplog.text and "broken.dcm" not in caplog.text


@pytest.mark.skipif(not GATE.is_file(), reason=f"input gate weights {GATE} are missing (fitted by the gate issue)")
def test_input_gate_flags_a_colour_photo_and_gives_no_probability(checkpoint):
    with TestClient(create_app(checkpoint, use_gate=True)) as gated:
        answer = post(gated, "holiday.jpg", colour_photo_jpeg(), "?heatmap=true").json()
        assert answer["status"] == "refused" and "colour_photo" in answer["input_flags"] and answer["input_note"]
        assert answer["p_covid"] is None and answer["prediction"] is None and answer["heatmap_png"] is None
        real = post(gated, SAMPLE_PNG.name, SAMPLE_PNG.read_bytes()).json()
        assert real["status"] == "screened" and real["p_covid"] is not None


# ---- hostile and odd requests (issue #17): no 5xx, every error in the documented shape ----

def multipart_body(boundary: str, data: bytes, name: str = "chest.png") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize("length, status", [(256, 200), (257, 422), (5000, 422)])
def test_long_multipart_boundaries_are_422_not_500(client, length, status):
    boundary = "b" * length
    response = client.post("/api/v1/predict", content=multipart_body(boundary, SAMPLE_PNG.read_bytes()),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == status, response.text[:300]
    if status != 200:
        assert set(response.json()) == {"detail", "notice"} and "boundary" in response.json()["detail"]


@pytest.mark.parametrize("method, url, status, words", [
    ("get", "/api/v1/nowhere", 404, "Not Found"),
    ("get", "/api/v1/predict", 405, "Method Not Allowed"),
    ("delete", "/api/v1/health", 405, "Method Not Allowed"),
    ("post", "/api/v1/predict?heatmap=maybe", 422, "heatmap"),
])
def test_http_and_validation_errors_follow_the_documented_shape(client, method, url, status, words):
    response = getattr(client, method)(url)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"detail", "notice"} and isinstance(body["detail"], str) and words in body["detail"]
    assert body["notice"] == RESEARCH_NOTICE
