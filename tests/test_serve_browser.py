"""The page of `covidxray serve` in a real browser: Debian's Chromium driven by Playwright uploads an X-ray.

Skipped when /usr/bin/chromium or the playwright package is missing (`apt-get install -y chromium`,
`pip install playwright`; never `playwright install`, the browser comes from Debian).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")
import httpx  # noqa: E402

from covidxray import RESEARCH_NOTICE  # noqa: E402
from covidxray.serve.app import create_app  # noqa: E402
from tests.test_serve_api import SAMPLE_JPEG, train_small_checkpoint  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """uvicorn in a thread on a free loopback port, serving a freshly trained checkpoint."""
    checkpoint = train_small_checkpoint(tmp_path_factory.mktemp("serve-browser"))
    port = free_port()
    config = uvicorn.Config(create_app(checkpoint, use_gate=False), host="127.0.0.1", port=port, log_level="warning")
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


def test_upload_shows_probability_heatmap_and_notice(server, browser, tmp_path):
    expected = httpx.post(f"{server}/api/v1/predict", files={"file": (SAMPLE_JPEG.name, SAMPLE_JPEG.read_bytes())}, timeout=30).json()
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    offsite = []
    page.on("request", lambda request: offsite.append(request.url) if not request.url.startswith((server, "data:")) else None)
    page.goto(server)
    notice = page.locator("#notice")
    assert notice.is_visible() and notice.inner_text().strip() == RESEARCH_NOTICE

    page.set_input_files("#file-input", str(SAMPLE_JPEG))
    shown = page.locator("#p-covid")
    shown.wait_for(state="visible", timeout=30_000)
    page.wait_for_function("() => { const h = document.getElementById('heatmap'); "
                           "return h.complete && h.naturalWidth > 0 && !h.hidden; }", timeout=30_000)
    assert shown.inner_text() == f"{expected['p_covid']:.3f}"
    assert float(shown.get_attribute("data-value")) == pytest.approx(expected["p_covid"], abs=1e-6)
    assert page.locator("#decision").inner_text() == expected["prediction"]
    assert page.locator("#probabilities li").count() == 3
    assert page.locator("#radiograph").evaluate("img => img.naturalWidth") > 0
    assert page.locator("#gate-warning").is_hidden() and page.locator("#error").is_hidden()

    page.locator("#opacity").fill("20")
    assert page.locator("#heatmap").evaluate("img => img.style.opacity") == "0.2"
    assert notice.is_visible()
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(tmp_path / "serve-page.png"), full_page=True)
    assert offsite == []  # the page works with no internet

    # what the page does with the input gate's warning and with a refusal
    page.evaluate("""() => render({filename: 'cat.jpg', p_covid: null, p_pneumonia: null, p_normal: null,
        prediction: 'not assessed', threshold: 0.5, input_ok: false, input_flags: ['colour_photo'],
        input_note: 'colour picture, radiographs are greyscale', severity_extent: 0.4, model: {}, heatmap_png: null})""")
    assert page.locator("#gate-warning").is_visible() and "colour picture" in page.locator("#gate-warning").inner_text()
    assert page.locator("#severity").is_visible() and page.locator("#severity-extent").inner_text() == "0.40"
    page.set_input_files("#file-input", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an x-ray"}])
    page.locator("#error").wait_for(state="visible", timeout=15_000)
    assert page.locator("#error").inner_text().startswith("415") and notice.is_visible()
    page.close()
