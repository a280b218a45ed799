"""``convlens serve``: time from a stroke to the prediction with every layer's activations,
and the page's first load.

A real uvicorn server on 127.0.0.1 (a free port, in a thread of this process) holds a
LeNet-5 (weights do not change the cost). One "stroke" is what the page sends while the
user draws: the 280x280 drawing as a PNG, POSTed to /api/predict; the answer holds the
class, the probabilities and the output of every layer. Reported: the round trip over
HTTP (median and 90th percentile) and the server's own share (preparing the picture as
``convlens predict`` does, and the forward pass with hooks).

First load: every file the page needs, fetched one after the other over HTTP, and, when
Debian's Chromium and Playwright are installed, a headless browser's navigation to the
page's load event and until the page has drawn its first result (the playground's output
size), median of a few cold loads.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.web``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

PAGE_FILES = [
    "/",
    "/static/style.css",
    "/static/vendor/chart.umd.min.js",
    *(
        f"/static/js/{name}.js"
        for name in ("main", "api", "colors", "draw", "layers", "photos", "playground", "train")
    ),
    "/api/model",
    "/api/presets",
    "/api/kernels",
    "/api/train/status",
]
CHROMIUM = "/usr/bin/chromium"


def stroke_png(seed: int) -> bytes:
    """A drawn digit as the page sends it: black strokes on a white 280x280 canvas."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (280, 280), "white")
    draw = ImageDraw.Draw(image)
    points = [tuple(int(v) for v in rng.integers(60, 220, 2)) for _ in range(5)]
    draw.line(points, fill="black", width=22, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Server:
    def __init__(self, app: Any):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def post_png(url: str, payload: bytes) -> dict[str, Any]:
    request = urllib.request.Request(url, data=payload, headers={"content-type": "image/png"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def stroke_latency(base: str, repeats: int) -> dict[str, Any]:
    strokes = [stroke_png(i) for i in range(16)]
    for payload in strokes[:4]:  # warm-up: first calls compile kernels and fill caches
        post_png(base + "/api/predict", payload)
    round_trips, server_total, forward, prepare, size = [], [], [], [], 0
    for i in range(repeats):
        payload = strokes[i % len(strokes)]
        started = time.perf_counter()
        answer = post_png(base + "/api/predict", payload)
        round_trips.append(1000 * (time.perf_counter() - started))
        assert answer["layers"], "the answer must carry every layer's activations"
        server_total.append(answer["milliseconds"]["total"])
        forward.append(answer["milliseconds"]["forward"])
        prepare.append(answer["milliseconds"]["prepare"])
        size = len(json.dumps(answer))
    return {
        "round_trip_ms": _stats(round_trips),
        "server_ms": _stats(server_total),
        "prepare_ms": _stats(prepare),
        "forward_ms": _stats(forward),
        "answer_bytes": size,
        "repeats": repeats,
    }


def first_load_http(base: str, repeats: int) -> dict[str, Any]:
    times, total_bytes = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        total_bytes = 0
        for path in PAGE_FILES:
            with urllib.request.urlopen(base + path, timeout=30) as response:
                total_bytes += len(response.read())
        times.append(1000 * (time.perf_counter() - started))
    return {"all_files_ms": _stats(times), "files": len(PAGE_FILES), "bytes": total_bytes}


def first_load_browser(base: str, repeats: int) -> dict[str, Any] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not os.path.exists(CHROMIUM):
        return None
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
    loads, ready = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        for _ in range(repeats + 1):  # the first launch of a page warms the browser itself
            context = browser.new_context()  # a cold cache every time
            page = context.new_page()
            started = time.perf_counter()
            page.goto(base + "/", wait_until="load")
            loaded = time.perf_counter()
            page.wait_for_function("() => document.getElementById('conv-output-size').textContent !== '–'")
            drawn = time.perf_counter()
            loads.append(1000 * (loaded - started))
            ready.append(1000 * (drawn - started))
            context.close()
        browser.close()
    return {"load_event_ms": _stats(loads[1:]), "first_result_ms": _stats(ready[1:])}


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
        "min": round(ordered[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="strokes per model (default: 200)")
    parser.add_argument("--loads", type=int, default=5, help="cold page loads (default: 5)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)

    import convlens as cl
    from convlens.web.app import create_app

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in ("lenet5", "lenet5-classic"):
            cl.manual_seed(0)
            cl.save(cl.models.get(name), Path(folder) / name)
            with Server(create_app(Path(folder) / name, runs_dir=folder)) as server:
                results[name] = stroke_latency(server.url, args.repeats)
                if name == "lenet5":
                    results["first_load_http"] = first_load_http(server.url, args.loads)
                    results["first_load_browser"] = first_load_browser(server.url, args.loads)
    for name in ("lenet5", "lenet5-classic"):
        r = results[name]
        print(
            f"{name:15} stroke -> prediction + activations: round trip median "
            f"{r['round_trip_ms']['median']:.1f} ms "
            f"(p90 {r['round_trip_ms']['p90']:.1f}); in the server {r['server_ms']['median']:.1f} ms "
            f"(prepare {r['prepare_ms']['median']:.1f}, forward {r['forward_ms']['median']:.1f}); "
            f"answer {r['answer_bytes'] / 1024:.0f} KiB"
        )
    http = results["first_load_http"]
    print(
        f"first load, {http['files']} files one after the other over HTTP: "
        f"median {http['all_files_ms']['median']:.1f} ms "
        f"({http['bytes'] / 1024:.0f} KiB)"
    )
    browser = results["first_load_browser"]
    if browser:
        print(
            f"first load in headless Chromium: load event median "
            f"{browser['load_event_ms']['median']:.0f} ms, "
            f"first results drawn {browser['first_result_ms']['median']:.0f} ms"
        )
    else:
        print("first load in a browser: skipped (no /usr/bin/chromium or playwright)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
