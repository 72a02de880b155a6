"""Who may use a served model: with COVIDXRAY_API_TOKEN set, the API and the page answer 401 without it
and 200 with it (header or the page's sign-in cookie); beyond loopback, serve will not start without a
token unless --no-auth says so; screenings beyond --max-concurrent get 429."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from covidxray.cli import main  # noqa: E402
from covidxray.inference.predictor import SAMPLES  # noqa: E402
from covidxray.serve.app import create_app  # noqa: E402
from covidxray.serve.settings import ServeSettings, is_loopback  # noqa: E402

SAMPLE = SAMPLES / "normal-nih-00001280_004.png"
TOKEN = "a-long-enough-test-token-0123456789"


@pytest.fixture(scope="module")
def guarded():
    with TestClient(create_app(use_gate=False, token=TOKEN)) as client:
        yield client


def upload() -> dict:
    return {"file": (SAMPLE.name, SAMPLE.read_bytes(), "image/png")}


def test_the_api_needs_the_token(guarded):
    assert guarded.post("/api/v1/predict", files=upload()).status_code == 401
    wrong = guarded.post("/api/v1/predict", files=upload(), headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401 and "API token" in wrong.json()["detail"] and TOKEN not in wrong.text
    assert guarded.get("/api/v1/model").status_code == 401
    right = guarded.post("/api/v1/predict", files=upload(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and right.json()["status"] == "screened"
    assert guarded.get("/api/v1/health").status_code == 200  # liveness stays open: no patient data


def test_the_page_asks_for_the_token_and_its_cookie_lets_the_page_work(guarded):
    guarded.cookies.clear()
    page = guarded.get("/")
    assert page.status_code == 401 and 'name="token"' in page.text and "not a medical device" in page.text
    refused = guarded.post("/sign-in", data={"token": "wrong-token-wrong-token"}, follow_redirects=False)
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    signed = guarded.post("/sign-in", data={"token": TOKEN}, follow_redirects=False)
    assert signed.status_code == 303 and "HttpOnly" in signed.headers["set-cookie"] and TOKEN not in signed.headers["set-cookie"]
    assert guarded.get("/").status_code == 200
    assert guarded.post("/api/v1/predict", files=upload()).status_code == 200  # the page's fetch carries the cookie
    guarded.cookies.clear()


def test_beyond_loopback_serve_refuses_to_start_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv("COVIDXRAY_API_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "8765"]) == 2
    error = capsys.readouterr().err
    assert "COVIDXRAY_API_TOKEN" in error and "--no-auth" in error and len(error.strip().splitlines()) == 1
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def test_a_short_token_or_an_unreadable_token_file_is_one_line(tmp_path, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--token-file", str(tmp_path / "missing")]) == 2
    assert "cannot read the token file" in capsys.readouterr().err
    with pytest.raises(Exception, match="at least 16"):
        ServeSettings(token="short")


def test_screenings_beyond_the_cap_get_429():
    app = create_app(use_gate=False, max_concurrent=1)
    service = app.state.service
    original = service.screen

    async def slow_screen(*arguments):
        await asyncio.sleep(1.0)
        return await original(*arguments)

    service.screen = slow_screen
    import threading

    with TestClient(app) as client:
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(client.post("/api/v1/predict", files=upload())))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    codes = sorted(answer.status_code for answer in answers)
    assert codes[0] == 200 and 429 in codes
    busy = next(answer for answer in answers if answer.status_code == 429)
    assert "busy" in busy.json()["detail"] and busy.headers["retry-after"]
