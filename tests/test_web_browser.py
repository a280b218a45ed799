"""The page of ``convlens serve`` in a real browser: Debian's Chromium driven by Playwright.

A model trained in the test session (mnist-5k) reads a "1" and a "0" drawn with mouse
strokes; a click on a feature map shows arithmetic whose sum is the activation shown;
the playground reads the lecture's "3"; a short training run starts, draws its curve
and stops. Every test fails on a page error or on any request that leaves 127.0.0.1,
and runs at a phone's 375-pixel width and at desktop size. Screenshots go to
/tmp/web_shots/.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):  # .ci/run installs it: in CI a missing browser is a failure, not a skip
        raise RuntimeError(f"{CHROMIUM} is missing although .ci/run installs it")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install playwright)")
pytest.importorskip("uvicorn")

from web_helpers import ServerThread, trained_checkpoint  # noqa: E402

from convlens.io import CHECKPOINT_NAME  # noqa: E402
from convlens.web.app import create_app  # noqa: E402

SHOTS = Path("/tmp/web_shots")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORTS = {"phone": {"width": 375, "height": 740}, "desktop": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = create_app(trained_checkpoint(), runs_dir=tmp_path_factory.mktemp("runs"))
    with ServerThread(app) as running:
        yield running


class Watched:
    """A page whose every request must stay on 127.0.0.1 and that records page errors."""

    def __init__(self, browser, viewport: dict):
        self.page = browser.new_page(viewport=viewport)
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.route("**/*", self._guard)

    def _console(self, message) -> None:
        if message.type == "error" and "status of 4" not in message.text:  # refused inputs are expected 4xx
            self.errors.append(message.text)

    def _guard(self, route) -> None:
        url = urlparse(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def check(self) -> None:
        assert self.outside == [], f"requests left 127.0.0.1: {self.outside}"
        assert self.errors == [], f"page errors: {self.errors}"
        self.page.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request, browser, server):
    watched = Watched(browser, VIEWPORTS[request.param])
    watched.name = request.param
    watched.page.goto(server.url)
    watched.page.wait_for_function(
        "() => document.getElementById('model-status').textContent.startsWith('Model:')"
    )
    yield watched
    watched.check()


def stroke(page, points) -> None:
    """Drag the mouse through ``points`` given as fractions of the drawing pad."""
    pad = page.locator('[data-testid="draw-canvas"]')
    pad.evaluate("element => element.scrollIntoView({block: 'center'})")
    box = pad.bounding_box()

    def at(fx, fy):
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(*point))
    page.mouse.up()


def predicted(page, previous: str = "–") -> str:
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=\"prediction\"]').textContent !== {previous!r}",
        timeout=20_000,
    )
    page.wait_for_timeout(600)  # the last stroke's request answers last
    return page.inner_text('[data-testid="prediction"]')


def test_draw_a_one_and_a_zero(page):
    p = page.page
    stroke(p, [(0.5, 0.15 + 0.7 * i / 20) for i in range(21)])
    assert predicted(p) == "1"
    assert p.locator('[data-testid="feature-map"]').count() == 6 + 6 + 6 + 16 + 16 + 16
    p.screenshot(path=str(SHOTS / f"draw_one_{page.name}.png"), full_page=False)
    p.click('[data-testid="clear"]')
    assert p.inner_text('[data-testid="prediction"]') == "–"
    ring = [
        (0.5 + 0.22 * math.sin(2 * math.pi * i / 40), 0.5 - 0.32 * math.cos(2 * math.pi * i / 40))
        for i in range(42)
    ]
    stroke(p, ring)
    assert predicted(p) == "0"
    p.locator("#layers").screenshot(path=str(SHOTS / f"layers_zero_{page.name}.png"))


def test_click_a_feature_map_cell_shows_its_arithmetic(page):
    p = page.page
    stroke(p, [(0.5, 0.15 + 0.7 * i / 20) for i in range(21)])
    predicted(p)
    first = p.locator('[data-testid="feature-map"][data-layer="conv1"]').nth(2)
    first.scroll_into_view_if_needed()
    box = first.bounding_box()
    first.click(
        position={"x": box["width"] * 14.5 / 28, "y": box["height"] * 10.5 / 28}
    )  # about cell (10, 14)
    panel = p.locator('[data-testid="arithmetic"]')
    p.wait_for_function("() => document.getElementById('arithmetic').dataset.state === 'ready'")
    cell = re.search(r"conv1, map 2, cell \((\d+), (\d+)\)", panel.inner_text())
    assert cell and abs(int(cell[1]) - 10) <= 1 and abs(int(cell[2]) - 14) <= 1
    total = float(p.inner_text('[data-testid="arith-sum"]'))
    shown = float(p.inner_text('[data-testid="arith-shown"]'))
    assert total == pytest.approx(shown, abs=2e-4)
    assert "ReLU" in panel.inner_text() and "max over 2x2" in panel.inner_text()
    panel.screenshot(path=str(SHOTS / f"arithmetic_{page.name}.png"))
    pool = p.locator('[data-testid="feature-map"][data-layer="pool1"]').first
    pool.click(position={"x": 5, "y": 5})
    p.wait_for_function(
        "() => document.getElementById('arithmetic').textContent.includes('You clicked pool1')"
    )


def test_playground_reads_the_lecture_example(page):
    p = page.page
    p.click('[data-testid="preset-stride"]')
    p.wait_for_function("() => document.getElementById('conv-title').textContent.startsWith('Image 5')")
    assert p.inner_text('[data-testid="conv-output-size"]') == "3"
    assert "(5 + 2*1 - 3)/2 + 1 = 3" in p.inner_text("#conv-formula")
    p.click("#conv-step")
    assert p.inner_text("#conv-step-text").startswith("out[0][0] =")
    p.locator("#conv").screenshot(path=str(SHOTS / f"playground_{page.name}.png"))
    p.click("text=Example A (13 vs 32)")
    p.wait_for_function("() => document.getElementById('conv-compare').textContent.includes('32')")
    assert re.search(r"cross-correlation: 13\b", p.inner_text("#conv-compare"))
    p.fill("#conv-n", "6")
    p.fill("#conv-k", "3")
    p.fill("#conv-p", "0")
    p.fill("#conv-s", "2")
    p.wait_for_function("() => document.getElementById('conv-formula').textContent.includes('is not whole')")
    assert p.inner_text('[data-testid="conv-output-size"]') == "2"
    assert p.inner_text('[data-testid="cnn-params"]') == "646,810"
    assert p.inner_text('[data-testid="mlp-params"]') == "1,021,310"
    p.wait_for_function("() => document.getElementById('filter-output').naturalWidth > 0")
    p.wait_for_function("() => document.querySelectorAll('#volume-stack img').length === 4")
    p.locator("#filters").screenshot(path=str(SHOTS / f"filters_{page.name}.png"))
    p.locator("#pooling").screenshot(path=str(SHOTS / f"pooling_{page.name}.png"))


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_train_live_then_draw(browser, tmp_path, viewport):
    with ServerThread(create_app(None, runs_dir=tmp_path)) as server:
        watched = Watched(browser, VIEWPORTS[viewport])
        p = watched.page
        p.goto(server.url)
        p.wait_for_function("() => document.getElementById('model-status').textContent.includes('No model')")
        p.fill("#train-epochs", "40")
        p.click('[data-testid="train-start"]')
        p.wait_for_function(
            "() => Number(document.querySelector('[data-testid=\"loss-chart\"]').dataset.points) >= 3",
            timeout=120_000,
        )
        p.wait_for_function("() => document.querySelectorAll('#train-kernels canvas').length === 6")
        p.click('[data-testid="train-stop"]')
        p.wait_for_function(
            "() => document.querySelector('[data-testid=\"train-status\"]').textContent.includes('stopped')",
            timeout=120_000,
        )
        p.wait_for_function("() => document.getElementById('model-status').textContent.startsWith('Model:')")
        stroke(p, [(0.5, 0.15 + 0.7 * i / 20) for i in range(21)])
        assert re.fullmatch(r"\d", predicted(p))
        p.locator("#train").screenshot(path=str(SHOTS / f"training_{viewport}.png"))
        assert list(tmp_path.glob(f"*/{CHECKPOINT_NAME}"))
        watched.check()
