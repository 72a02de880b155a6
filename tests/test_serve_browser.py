"""The pages of `covidxray serve` in a real browser: Debian's Chromium driven by Playwright, in each
state a person sees: empty, a result, a result with a gate warning, not screened, an error after a result;
and the API and model-card pages, all with no request leaving the server.

Skipped when /usr/bin/chromium or the playwright package is missing (`apt-get install -y chromium`,
`pip install playwright`; never `playwright install`, the browser comes from Debian). Screenshots go to
$COVIDXRAY_SCREENSHOTS when set (to look at them), else to the test's temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")
import httpx  # noqa: E402

from covidxray import RESEARCH_NOTICE  # noqa: E402
from covidxray.serve.app import create_app, installed_torch_version  # noqa: E402
from tests.test_serve_api import GATE, SAMPLE_JPEG, colour_photo_jpeg, train_small_checkpoint  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USE_GATE = GATE.is_file()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """uvicorn in a thread on a free loopback port, serving a freshly trained checkpoint (gate on when shipped)."""
    checkpoint = train_small_checkpoint(tmp_path_factory.mktemp("serve-browser"))
    port = free_port()
    config = uvicorn.Config(create_app(checkpoint, use_gate=USE_GATE), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("COVIDXRAY_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Visit:
    """A page of the app, recording every request that leaves the server and every failed response."""

    def __init__(self, browser, server: str, path: str = "/") -> None:
        self.server = server
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.offsite: list[str] = []
        self.failed: list[str] = []
        self.page.on("request", lambda r: self.offsite.append(r.url) if not r.url.startswith((server, "data:")) else None)
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 and "/api/" not in r.url else None)
        self.page.goto(server + path)
        self.page.wait_for_load_state("networkidle")

    def visible(self, selector: str) -> bool:
        return self.page.locator(selector).is_visible()

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def upload(self, path: Path | None = None, *, name: str = "", data: bytes = b"", mime: str = "application/octet-stream") -> None:
        """Choose a file and wait until the page shows an answer or an error."""
        files = str(path) if path else [{"name": name, "mimeType": mime, "buffer": data}]
        self.page.set_input_files("#file-input", files=files)
        self.page.wait_for_function("() => !document.getElementById('result').hidden || !document.getElementById('error').hidden",
                                    timeout=30_000)
        self.page.wait_for_function("() => [...document.images].every(i => !i.getAttribute('src') || i.complete)", timeout=30_000)

    def screenshot(self, folder: Path, name: str) -> Path:
        self.page.evaluate("() => window.scrollTo(0, 0)")
        path = folder / f"serve-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.page.close()
        assert self.offsite == [], f"requests left the server: {self.offsite}"  # the page works with no internet
        assert self.failed == [], f"failed requests: {self.failed}"


def answer_as(visit: Visit, **changes) -> None:
    """Answer the page's uploads with the server's real answer for the sample X-ray, changed as given
    (for states a real file rarely reaches)."""
    real = httpx.post(f"{visit.server}/api/v1/predict?heatmap=true", files={"file": (SAMPLE_JPEG.name, SAMPLE_JPEG.read_bytes())},
                      timeout=30)
    assert real.status_code == 200, real.text
    body = json.dumps({**real.json(), **changes})
    visit.page.route(re.compile(r".*/api/v1/predict.*"),
                     lambda route: route.fulfill(status=200, content_type="application/json", body=body))


def assert_not_enlarged(visit: Visit) -> None:
    width, natural = visit.page.locator("#radiograph").evaluate("img => [img.getBoundingClientRect().width, img.naturalWidth]")
    assert natural > 0 and width <= natural + 0.5, f"radiograph of {natural} px shown {width} px wide"


def test_empty_page_shows_the_notice_and_nothing_else(server, browser, shots):
    visit = Visit(browser, server)
    assert visit.visible("#notice") and visit.text("#notice").strip() == RESEARCH_NOTICE
    assert visit.visible("#dropzone") and not visit.visible("#result") and not visit.visible("#error")
    assert httpx.get(f"{server}/favicon.ico").status_code == 200
    visit.screenshot(shots, "empty")
    visit.close()


def test_result_then_a_refused_upload_clears_the_result(server, browser, shots):
    expected = httpx.post(f"{server}/api/v1/predict", files={"file": (SAMPLE_JPEG.name, SAMPLE_JPEG.read_bytes())}, timeout=30).json()
    visit = Visit(browser, server)
    visit.upload(SAMPLE_JPEG)
    page = visit.page
    page.wait_for_function("() => { const h = document.getElementById('heatmap'); return h.complete && h.naturalWidth > 0 && !h.hidden; }",
                           timeout=30_000)
    assert visit.text("#p-covid") == f"{expected['p_covid']:.3f}"
    assert float(page.locator("#p-covid").get_attribute("data-value")) == pytest.approx(expected["p_covid"], abs=1e-6)
    assert visit.text("#decision") == expected["prediction"] and page.locator("#probabilities li").count() == 3
    assert visit.visible("#heatmap-key") and "low" in visit.text("#heatmap-key") and "high" in visit.text("#heatmap-key")
    assert "explains the score; it does not show where disease is" in visit.text("#heatmap-note")
    assert not visit.visible("#gate-warning") and not visit.visible("#not-screened") and not visit.visible("#error")
    assert_not_enlarged(visit)
    page.locator("#opacity").fill("20")
    assert page.locator("#heatmap").evaluate("img => img.style.opacity") == "0.2"
    visit.screenshot(shots, "result")

    visit.upload(name="scan.png", data=b"this is a text file, not an x-ray\n" * 10)  # named .png, 415
    assert visit.visible("#error") and visit.text("#error").startswith("415") and "scan.png" in visit.text("#error")
    assert not visit.visible("#result") and not visit.visible("#p-covid") and not visit.visible("#radiograph")
    assert visit.visible("#notice")
    visit.screenshot(shots, "error-after-result")
    visit.close()


def test_a_file_the_gate_refuses_shows_why_and_nothing_like_a_result(server, browser, shots):
    visit = Visit(browser, server)
    if USE_GATE:
        visit.upload(name="holiday.jpg", data=colour_photo_jpeg(), mime="image/jpeg")
    else:  # no gate weights: the server's answer, as the gate would have given it
        answer_as(visit, p_covid=None, p_pneumonia=None, p_normal=None, prediction=None,
                  status="refused", input_flags=["colour_photo"], input_note="a colour picture; radiographs are greyscale",
                  heatmap_png=None, heatmap_class=None, severity_extent=None, severity_opacity=None)
        visit.upload(SAMPLE_JPEG)
    assert visit.visible("#not-screened") and "Not screened" in visit.text("#not-screened")
    assert "colour" in visit.text("#refusal-reason")
    for result_part in ("#decision", "#probabilities", "#threshold-line", "#opacity", "#heatmap", "#heatmap-key", "#severity"):
        assert not visit.visible(result_part), result_part
    assert "does not" not in visit.text("#filename") and visit.visible("#radiograph")  # the picture as read, nothing on it
    assert "threshold" not in visit.text("#result").lower()
    visit.screenshot(shots, "refused")
    visit.close()


def test_a_warning_shows_the_result_with_the_reason_in_words(server, browser, shots):
    visit = Visit(browser, server)
    answer_as(visit, status="warned", input_flags=["unlike_training"],
              input_note="unlike the radiographs the model was trained on: check it is a frontal chest X-ray",
              severity_extent=3.54, severity_opacity=2.72)
    visit.upload(SAMPLE_JPEG)
    assert visit.visible("#gate-warning") and "Screened with a warning" in visit.text("#gate-warning")
    assert "unlike the radiographs" in visit.text("#gate-note")
    assert visit.visible("#p-covid") and visit.visible("#decision") and not visit.visible("#not-screened")
    assert visit.text("#severity-extent") == "3.5" and visit.text("#severity-opacity") == "2.7"
    severity = visit.text("#severity")
    assert "of 8" in severity and "of 6" in severity and "not a grading" in severity
    visit.screenshot(shots, "warned")
    visit.close()


def test_a_small_image_is_shown_at_its_own_size(server, browser):
    buffer = io.BytesIO()
    ramp = np.linspace(30, 220, 96, dtype=np.uint8)
    Image.fromarray(np.outer(ramp, ramp[::-1]) // 255 + 40).convert("L").save(buffer, format="PNG")
    visit = Visit(browser, server)
    visit.upload(name="small.png", data=buffer.getvalue(), mime="image/png")
    if visit.visible("#error"):
        pytest.fail(visit.text("#error"))
    assert_not_enlarged(visit)
    assert "96 \u00d7 96" in visit.text("#image-size")
    visit.close()


def test_api_and_model_card_pages_work_offline_and_name_no_machine_folder(server, browser, shots):
    visit = Visit(browser, server, "/docs")
    assert "/api/v1/predict" in visit.text("main") and visit.visible("#schema-PredictAnswer")
    assert "p_covid" in visit.text("#schema-PredictAnswer")
    visit.screenshot(shots, "docs")
    visit.close()

    visit = Visit(browser, server)
    visit.page.click("text=model card")
    visit.page.wait_for_load_state("networkidle")
    assert visit.page.url.endswith("/model-card") and visit.visible("#notice")
    text = visit.text("main")
    assert "Served here" in text and f"{installed_torch_version()} installed here" in text
    assert not re.search(r"(^|\s)/(home|root|work|tmp|Users|mnt)/", text)
    visit.screenshot(shots, "model-card")
    visit.close()
