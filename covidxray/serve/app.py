"""The FastAPI app of `covidxray serve`: one loaded model screening uploaded X-rays as JSON.

Uploads are read from the request stream into memory under a byte budget (never spooled to disk),
decoded by the same reader and Predictor as `covidxray predict`, and answered with its row fields.
"""

from __future__ import annotations

import asyncio
import base64
import html
import hashlib
import io
import logging
import re
import time
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import parse_options_header
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from covidxray import RESEARCH_NOTICE, __version__
from covidxray.errors import CovidxrayError, ImageReadError
from covidxray.imaging.read import DICOM_MAGIC_OFFSET, sniff_bytes
from covidxray.inference.checkpoint import BIAS_KEY
from covidxray.inference.predictor import DEFAULT_MODEL, Predictor, ReadInput, read_bytes_input
from covidxray.inference.results import ScreeningResult, Status
from covidxray.serve.access import TokenGate
from covidxray.serve.pages import api_html, markdown_html, page
from covidxray.serve.settings import DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_UPLOAD_MB, ServeSettings
from covidxray.paths.shown import portable
from covidxray.paths.weights import WEIGHTS_DIR

STATIC = Path(__file__).resolve().parent / "static"
MODEL_CARD = WEIGHTS_DIR / "MODEL_CARD.md"
FAVICON = STATIC / "favicon.ico"
MIB = 1024 * 1024
#: Room in the request body for the multipart boundaries and part headers around the file.
MULTIPART_OVERHEAD = 64 * 1024
#: Longest multipart boundary accepted (RFC 2046 allows 70; python-multipart refuses over 256).
MAX_BOUNDARY = 256
#: The radiograph and heat map sent back for display are at most this many pixels on a side.
DISPLAY_SIDE = 1024
#: Uploads decoded at the same time (a 50-megapixel decode holds ~200 MB while it runs).
CONCURRENT_DECODES = 2
DICOM_SUFFIXES = (".dcm", ".dicom")

log = logging.getLogger("covidxray.serve")


class ModelIdentity(BaseModel):
    """Which model answered."""

    name: str = Field(description="The architecture, e.g. xray-cnn.")
    version: str = Field(description="First 12 hex digits of the checkpoint's SHA-256.")
    checkpoint: str = Field(description="The checkpoint's file name.")
    covidxray_version: str = Field(description="The covidxray package that served the answer.")


class PredictAnswer(BaseModel):
    """The answer of POST /api/v1/predict: the fields of a covidxray predict row, for one upload."""

    model_config = ConfigDict(extra="allow")

    filename: str = Field(description="The upload's own name, without folders.")
    p_covid: float | None = Field(description="Calibrated probability of COVID-19; null when the input gate refused the file.")
    p_pneumonia: float | None = Field(None, description="Three-class models only (absent for binary ones): probability of other pneumonia.")
    p_normal: float | None = Field(None, description="Three-class models only (absent for binary ones): probability of a normal radiograph.")
    status: Status = Field(description="What happened to the file: 'screened' (scored), 'warned' (scored; input_note says "
                                       "what to check first) or 'refused' (the input gate says it is not a frontal chest "
                                       "radiograph: no probability). A file that cannot be read gets an HTTP error instead.")
    prediction: str | None = Field(description="Binary: 'covid' when p_covid >= threshold, else 'not_covid'; three-class: the "
                                               "most probable class; null when the file was refused.")
    threshold: float | None = Field(description="The checkpoint's operating threshold on p_covid, chosen on validation data.")
    input_flags: list[str] = Field(description="The gate's flags, e.g. ['colour_photo'].")
    input_note: str = Field(description="Why the gate warned or refused, in plain words; 'input gate off' without the gate.")
    input_scores: dict[str, float] = Field(description="The numbers behind the gate's verdict.")
    severity_extent: float | None = Field(description="Estimated geographic extent, 0-8 (0-4 per lung), for images read as "
                                                      "COVID-19; else null.")
    severity_opacity: float | None = Field(description="Estimated opacity, 0-6 (0-3 per lung), for images read as COVID-19; else null.")
    model: ModelIdentity = Field(description="Which model answered.")
    notice: str = Field(description="The research-tool notice.")
    image_png: str | None = Field(None, description="With heatmap=true: the radiograph as read (greyscale, longer side at most "
                                                    "1024 px), base64 PNG.")
    heatmap_png: str | None = Field(None, description="With heatmap=true: the same picture with the Grad-CAM map overlaid at full "
                                                      "strength, base64 PNG; null when the file was not assessed.")
    heatmap_class: str | None = Field(None, description="With heatmap=true: the class the map explains, or null.")


class ErrorAnswer(BaseModel):
    """Every error of the API, the framework's own too."""

    detail: str = Field(description="What is wrong, naming the file.")
    notice: str = Field(description="The research-tool notice.")


def installed_torch_version() -> str | None:
    """The torch installed here (read from its metadata: serving with ONNX never imports torch)."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


class UploadRefused(Exception):
    """An upload we answer with an HTTP error: status and a message that names the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    """The file part of a multipart upload, held in memory."""

    name: str
    data: bytes


@dataclass
class _FilePart:
    """Collects the part named 'file' from python-multipart's callbacks, within max_bytes."""

    max_bytes: int
    name: str | None = None
    data: bytearray = field(default_factory=bytearray)
    _header_field: bytes = b""
    _header_value: bytes = b""
    _headers: dict = field(default_factory=dict)
    _collecting: bool = False
    _done: bool = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers, self._header_field, self._header_value = {}, b"", b""

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._collecting = options.get(b"name") == b"file" and not self._done
        if self._collecting:
            self.name = upload_name(options.get(b"filename", b"").decode("utf-8", "replace"))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._collecting:
            return
        if len(self.data) + (end - start) > self.max_bytes:
            raise UploadRefused(413, f"upload is over the limit of {self.max_bytes:,} bytes ({self.max_bytes / MIB:g} MB)")
        self.data += data[start:end]

    def _part_end(self) -> None:
        if self._collecting:
            self._collecting, self._done = False, True


def upload_name(filename: str) -> str:
    """The client's file name without folders or control characters, shortened; 'upload' if none."""
    base = re.split(r"[\\/]", filename)[-1]
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()[:120]
    return cleaned or "upload"


async def read_upload(request: Request, max_bytes: int) -> Upload:
    """The multipart field 'file' of request, read in memory; 413 as soon as it is over max_bytes.

    A declared Content-Length over the limit is refused before any of the body is read; the body
    is counted while it streams, so a missing or false Content-Length changes nothing.
    """
    mime, options = parse_options_header(request.headers.get("content-type", ""))
    if mime != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadRefused(415, "expected a multipart/form-data upload with the X-ray in a field named 'file'")
    body_limit = max_bytes + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise UploadRefused(422, "Content-Length header is not a number")
        if int(declared) > body_limit:
            raise UploadRefused(413, f"upload of {int(declared):,} bytes is over the limit of {max_bytes:,} bytes "
                                     f"({max_bytes / MIB:g} MB); refused before reading it")
    if len(options[b"boundary"]) > MAX_BOUNDARY:
        raise UploadRefused(422, f"multipart boundary of {len(options[b'boundary'])} characters is over the limit of "
                                 f"{MAX_BOUNDARY} (RFC 2046 allows 70)")
    part = _FilePart(max_bytes)
    received = 0
    try:
        parser = MultipartParser(options[b"boundary"], part.callbacks())
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise UploadRefused(413, f"upload is over the limit of {max_bytes:,} bytes ({max_bytes / MIB:g} MB)")
            parser.write(chunk)
        parser.finalize()
    except (MultipartParseError, FormParserError) as exc:
        raise UploadRefused(422, f"malformed multipart/form-data body ({type(exc).__name__})") from None
    except ClientDisconnect:
        raise UploadRefused(400, "the client closed the connection before the upload was complete") from None
    if part.name is None:
        raise UploadRefused(422, "no field named 'file' in the upload")
    return Upload(part.name, bytes(part.data))


def decode_upload(upload: Upload) -> ReadInput:
    """Read the upload as the CLI reads a file: 415 when it is no PNG, JPEG or DICOM, 422 when broken."""
    name, data = upload.name, upload.data
    if not data:
        raise UploadRefused(422, f"{name}: file is empty (0 bytes)")
    kind = sniff_bytes(data[: DICOM_MAGIC_OFFSET + 4])
    if kind == "other" and not name.lower().endswith(DICOM_SUFFIXES):
        raise UploadRefused(415, f"{name}: not a PNG, JPEG or DICOM file (its first bytes match none of them)")
    try:
        return read_bytes_input(data, name)
    except ImageReadError as exc:
        raise UploadRefused(422, str(exc)) from None
    except Exception as exc:  # a decoder failure the reader did not foresee is still the file's fault
        log.warning("decoder raised %s on a %s upload", type(exc).__name__, kind)  # no message: it may quote the header
        raise UploadRefused(422, f"{name}: cannot decode this {kind} file ({type(exc).__name__})") from None


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)  # a little larger, several times faster than the default 6
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def display_image(image: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """The read radiograph scaled so its longer side is at most side pixels, [0, 1] floats."""
    height, width = image.shape
    scale = min(1.0, side / max(height, width))
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).resize(size, Image.Resampling.BOX)
    return np.asarray(picture, np.float32) / 255.0


class ScreeningService:
    """The loaded Predictor and the one thread that runs it (Grad-CAM hooks are not thread-safe)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="covidxray-model")
        self.decode_limiter = anyio.CapacityLimiter(CONCURRENT_DECODES)
        self.checkpoint_sha256 = hashlib.sha256(predictor.model_path.read_bytes()).hexdigest()

    @property
    def model_identity(self) -> dict:
        return {"name": self.predictor.name, "version": self.checkpoint_sha256[:12],
                "checkpoint": self.predictor.model_path.name, "covidxray_version": __version__}

    async def screen(self, upload: Upload, heatmap: bool, gate_warnings: bool = True) -> dict:
        """Decode (in a worker thread), screen and explain (in the model thread), then draw the pictures."""
        item = await anyio.to_thread.run_sync(decode_upload, upload, limiter=self.decode_limiter)
        loop = asyncio.get_running_loop()
        result, heat = await loop.run_in_executor(self.model_thread, self._run_model, item, heatmap, gate_warnings)
        answer = self._answer(item, result)
        if heatmap:
            answer.update(await anyio.to_thread.run_sync(self._pictures, item.image, result, heat, limiter=self.decode_limiter))
        return answer

    def _run_model(self, item: ReadInput, heatmap: bool, gate_warnings: bool = True) -> tuple[ScreeningResult, np.ndarray | None]:
        """Gate, probabilities and (when asked and assessed) the Grad-CAM map: the only model work."""
        try:
            result = self.predictor.screen_read([item], gate_warnings=gate_warnings)[0]
        except (CovidxrayError, ValueError) as exc:  # e.g. the door check refusing the pixels
            raise UploadRefused(422, f"{item.name}: the model cannot read this image ({exc})") from None
        if result.status is Status.ERROR:
            raise UploadRefused(422, result.error)
        heat = None
        if heatmap and result.status.scored:
            heat = self.predictor.heatmap(item.image, self.predictor.heatmap_class(result), result)
        return result, heat

    def _answer(self, item: ReadInput, result: ScreeningResult) -> dict:
        """The predict row's fields (as every JSON writes them), model and notice."""
        row = result.as_row(self.predictor.labels)
        row.pop("path", None)
        row.pop("error", None)
        return {"filename": item.name, **row, "model": self.model_identity, "notice": RESEARCH_NOTICE}

    def _pictures(self, image: np.ndarray, result: ScreeningResult, heat: np.ndarray | None) -> dict:
        """image_png (the radiograph as read) and heatmap_png (the heat-map picture at full strength, uncaptioned)."""
        from covidxray.explain.picture import heatmap_picture

        shown = display_image(image)
        pictures = {"image_png": png_base64(Image.fromarray((shown * 255).round().astype(np.uint8))),
                    "heatmap_png": None, "heatmap_class": None}
        if heat is not None:
            self.predictor.lung_mask(image, result)  # the outline found on the full image, kept in result
            pictures.update(heatmap_png=png_base64(heatmap_picture(self.predictor, shown, result, heat=heat, opacity=1.0)),
                            heatmap_class=self.predictor.heatmap_class(result))
        return pictures

    def warm_up(self) -> None:
        """One screening and heat map of a synthetic picture, so the first upload is not slow (imports, caches)."""
        rows = np.linspace(0.2, 0.8, 256, dtype=np.float32)
        picture = np.clip(rows[:, None] * rows[None, ::-1] * 1.5, 0, 1)
        from covidxray.explain.overlay import overlay

        self.predictor.probabilities([picture])
        overlay(display_image(picture), self.predictor.heatmap(picture, "covid"), opacity=1.0)

    def model_card(self) -> dict:
        """The model's settings and training record, and the card's Markdown; absolute paths of the
        machine that built the model are cut to file names (covidxray.paths.shown)."""
        info = self.predictor.info  # the checkpoint's settings, from the ONNX sidecar or the checkpoint
        record = portable(dict(info.record or {}))
        bundled = self.predictor.model_path.resolve() == DEFAULT_MODEL.resolve()  # MODEL_CARD.md describes that model only
        return {
            **self.model_identity, **info.settings(),  # as the checkpoint stores them
            "input_gate": self.predictor.use_gate, "backend": self.predictor.backend,
            "training_record": record,
            "torch_version_trained": record.get("torch_version"), "torch_version_installed": installed_torch_version(),
            "model_card": portable(MODEL_CARD.read_text(encoding="utf-8")) if bundled and MODEL_CARD.is_file() else None,
            "notice": RESEARCH_NOTICE,
        }

    def model_card_html(self) -> str:
        """The /model-card page: what is served here (a table), then MODEL_CARD.md rendered."""
        card = self.model_card()
        trained, installed = card["torch_version_trained"], card["torch_version_installed"]
        torch_line = f"{trained or 'not recorded'} when trained; {installed or 'not installed'} installed here"
        rows = [("model", f"{card['name']} (version {card['version']}, file {card['checkpoint']})"),
                ("task and labels", f"{card['task']}: {', '.join(card['labels'])}"),
                ("decision threshold on p(covid)", f"{card['threshold']:.3f}"),
                ("calibration", f"temperature {card['temperature']:.3f}, logit bias {(card[BIAS_KEY] or 0.0):+.3f}"),
                ("runs on", f"{card['backend']} backend; input gate {'on' if card['input_gate'] else 'off'}"),
                ("torch", torch_line), ("covidxray", card["covidxray_version"])]
        table = "".join(f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>" for name, value in rows)
        body = [f'<section class="card"><h2>Served here</h2><div class="table"><table class="facts">{table}</table></div>'
                '<p class="small">The same as JSON, with the full training record: <a href="/api/v1/model">/api/v1/model</a>.</p></section>']
        if card["model_card"]:
            body.append(f'<article class="card" id="model-card">{markdown_html(card["model_card"])}</article>')
        else:
            body.append('<p class="card">No model card: covidxray/weights/MODEL_CARD.md describes the bundled model, '
                        'and this server runs another checkpoint (or the card is missing). The table above is what it records.</p>')
        return page(f"Model card: {card['name']} (covidxray)", "\n".join(body), RESEARCH_NOTICE, __version__)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message, "notice": RESEARCH_NOTICE}, status_code=status)


PREDICT_REQUEST_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "A chest radiograph: PNG, JPEG or DICOM."}},
    }}},
}
ERROR_RESPONSES = {
    413: {"description": "The upload is over the size limit (checked before and while reading it).", "model": ErrorAnswer},
    415: {"description": "Not multipart/form-data, or the file is not a PNG, JPEG or DICOM image.", "model": ErrorAnswer},
    422: {"description": "Empty, truncated, corrupt or oversized-in-pixels image, or no field named 'file'.", "model": ErrorAnswer},
    429: {"description": "Too many screenings running at once (serve --max-concurrent); try again shortly.", "model": ErrorAnswer},
}


def page_html(max_upload_mb: float) -> str:
    """static/index.html with the notice, version and upload limit filled in (so they stay in step)."""
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    for key, value in {"notice": RESEARCH_NOTICE, "version": __version__, "max_upload_mb": f"{max_upload_mb:g}"}.items():
        text = text.replace("{{ %s }}" % key, html.escape(value))
    return text


def check_gate() -> None:
    """Fail at start-up, not on every request, when the input gate's weights cannot be loaded."""
    from covidxray.gate.runtime import DEFAULT_GATE_PATH, load_gate_model

    try:
        load_gate_model()
    except ImageReadError as exc:
        raise CovidxrayError(f"{DEFAULT_GATE_PATH}: the input gate cannot be loaded ({exc}); "
                             "serve with --no-gate to screen without it") from None


def app_from_environment() -> FastAPI:
    """The app factory uvicorn calls in each worker process (`uvicorn --factory`): the app with the
    settings `covidxray serve` put in the environment (covidxray.serve.settings)."""
    return build_app(ServeSettings.from_environment())


def create_app(model_path: str | Path | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, use_gate: bool = True,
               max_concurrent: int = DEFAULT_MAX_CONCURRENT, token: str | None = None) -> FastAPI:
    """The app, with the model at model_path (default: the bundled one) loaded once, here.

    Args:
        model_path: a checkpoint; None for the bundled model.
        max_upload_mb: largest accepted upload in MiB; larger ones get 413.
        use_gate: run the input gate (needs covidxray/weights/gate.npz) before the model.
        max_concurrent: screenings running at once; one more gets 429.
        token: the API token every route but /api/v1/health asks for; None for none.

    Returns:
        The FastAPI app.
    """
    return build_app(ServeSettings(str(model_path) if model_path else None, max_upload_mb, use_gate, max_concurrent, token))


def build_app(settings: ServeSettings) -> FastAPI:
    """The app for settings (see create_app)."""
    model_path, max_upload_mb, use_gate = settings.model, settings.max_upload_mb, settings.use_gate
    predictor = Predictor(model_path, use_gate=use_gate)
    if use_gate:
        check_gate()
    service = ScreeningService(predictor)
    service.warm_up()
    max_bytes = int(max_upload_mb * MIB)
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        service.model_thread.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="covidxray", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=f"Screen chest X-rays for COVID-19 and other pneumonia. {RESEARCH_NOTICE}")
    app.state.service, app.state.max_upload_bytes, app.state.settings = service, max_bytes, settings
    in_flight = [0]  # screenings running now in this process (one event loop: no lock needed)
    if settings.token:
        app.add_middleware(TokenGate, token=settings.token)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """404, 405 and any other HTTP error in the documented shape: {"detail": text, "notice"}."""
        response = _error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        """A bad query value as one sentence naming the parameter, in the documented shape."""
        problems = ["{}: {}".format(".".join(str(p) for p in error.get("loc", ())[1:]) or "request", error.get("msg", "invalid"))
                    for error in exc.errors()]
        return _error(422, "; ".join(problems) or "invalid request")

    @app.get("/api/v1/health", summary="Liveness and the loaded model")
    async def health() -> dict:
        return {"status": "ok", "model": service.model_identity, "notice": RESEARCH_NOTICE}

    @app.get("/api/v1/model", summary="The model card: architecture, labels, threshold, calibration, training record")
    async def model() -> dict:
        return service.model_card()

    @app.post("/api/v1/predict", summary="Screen one chest X-ray (multipart field 'file': PNG, JPEG or DICOM)",
              openapi_extra={"requestBody": PREDICT_REQUEST_BODY}, responses=ERROR_RESPONSES,
              response_model=PredictAnswer, response_model_exclude_unset=True,
              response_description="The screening: probabilities, decision, the input gate's verdict (with heatmap=true, the pictures).")
    async def predict(request: Request, heatmap: bool = Query(False, description=(
            "Add image_png (the radiograph as read) and heatmap_png (it with the Grad-CAM map overlaid at full "
            "strength, same size; blend the two for any opacity), both base64 PNG.")),
            gate_warnings: bool = Query(True, description=(
                "false: the input gate only refuses (input_status 'refused'); unusual but plausible radiographs "
                "are screened without a warning."))):
        started = time.perf_counter()
        if in_flight[0] >= settings.max_concurrent:
            log.info("predict refused: %d screenings already running", in_flight[0])
            response = _error(429, f"the server is busy: {in_flight[0]} screenings are running (at most "
                                   f"{settings.max_concurrent} at once); try again in a few seconds")
            response.headers["retry-after"] = "2"
            return response
        in_flight[0] += 1
        try:
            upload = await read_upload(request, max_bytes)
            answer = await service.screen(upload, heatmap, gate_warnings)
        except UploadRefused as refusal:
            log.info("predict refused: status %d after %.2f s", refusal.status, time.perf_counter() - started)
            return _error(refusal.status, refusal.message)
        finally:
            in_flight[0] -= 1
        log.info("predict: %d bytes, %s, %.2f s", len(upload.data), answer["status"], time.perf_counter() - started)
        return answer

    index = page_html(max_upload_mb)

    @app.get("/", include_in_schema=False)
    async def upload_page() -> HTMLResponse:
        return HTMLResponse(index)

    @app.get("/model-card", include_in_schema=False)
    async def model_card_page() -> HTMLResponse:
        return HTMLResponse(service.model_card_html())

    @app.get("/docs", include_in_schema=False)
    async def api_page() -> HTMLResponse:
        """The API reference rendered here from the OpenAPI schema (Swagger UI would need a CDN)."""
        return HTMLResponse(page("covidxray API", api_html(app.openapi()), RESEARCH_NOTICE, __version__))

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(FAVICON.read_bytes(), media_type="image/x-icon", headers={"cache-control": "max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app
