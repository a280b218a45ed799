"""The Starlette application: the page, its static files and the JSON API.

Each endpoint reads and checks its request once (:mod:`.inputs`), runs the
computation in a worker thread (the event loop stays free for other clients and
the training events), and answers JSON. Errors are JSON too,
``{"error": sentence, "field": name-or-null}``, and leave the server and the
loaded model as they were. The API is described in this package's README.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import convlens as cl
from convlens import filters, images
from convlens import functional as F
from convlens.train import predict_classes

from . import inputs, photos, playground
from .inputs import ApiError
from .layers import explain_cell, forward_recorded, kernels_json, layers_json
from .session import DIGIT_SIZE, Session, ShownModel, newest_checkpoint, read_checkpoint
from .training import Trainer

STATIC = Path(__file__).parent / "static"
# Everything the page loads comes from this server; data: URLs carry the filtered photos.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; script-src 'self'; "
        b"style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass
class WebState:
    session: Session
    trainer: Trainer
    runs_dir: Path
    notice: str = ""  # shown on the page, e.g. why the newest checkpoint could not be read


# ------------------------------------------------------------------------ the app
def create_app(
    checkpoint: str | Path | None = None,
    runs_dir: str | Path = "runs",
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The page and API for ``checkpoint`` (default: the newest under ``runs_dir``, if any).

    Raises:
        FileNotFoundError, ValueError: ``checkpoint`` was given and cannot be read.
    """
    session = Session()
    state = WebState(session, Trainer(session, Path(runs_dir)), Path(runs_dir))
    if checkpoint is not None:
        session.show(read_checkpoint(checkpoint))
    else:
        newest = newest_checkpoint(Path(runs_dir))
        if newest is not None:
            try:
                session.show(read_checkpoint(newest))
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
                state.notice = f"The newest checkpoint, {newest}, cannot be read: {error}"
    middleware = [Middleware(_SecurityHeaders)]
    if allowed_hosts:  # a page on another site cannot reach us through DNS rebinding
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(
        routes=_routes(),
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _server_error},
    )
    app.state.web = state
    return app


def _routes() -> list[Any]:
    return [
        Route("/", _index),
        Route("/api/model", _model),
        Route("/api/predict", _predict, methods=["POST"]),
        Route("/api/explain", _explain, methods=["POST"]),
        Route("/api/convolve", _json_endpoint(playground.convolve), methods=["POST"]),
        Route("/api/pool", _json_endpoint(playground.pool), methods=["POST"]),
        Route("/api/params", _json_endpoint(playground.parameter_counts), methods=["POST"]),
        Route("/api/presets", _presets),
        Route("/api/kernels", _kernels),
        Route("/api/filter", _photo_endpoint(photos.filter_photo), methods=["POST"]),
        Route("/api/volume", _photo_endpoint(photos.volume), methods=["POST"]),
        Route("/api/train/start", _train_start, methods=["POST"]),
        Route("/api/train/stop", _train_stop, methods=["POST"]),
        Route("/api/train/status", _train_status),
        Route("/api/train/events", _train_events),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


class _SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response (a plain ASGI middleware: streams pass through)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def _web(request: Request) -> WebState:
    return request.app.state.web


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return JSONResponse(error.to_dict(), status_code=error.status)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    message = {404: f"Nothing here: {request.url.path}.", 405: f"{request.method} is not allowed here."}
    text = message.get(error.status_code, str(error.detail))
    return JSONResponse({"error": text, "field": None}, status_code=error.status_code)


async def _server_error(request: Request, error: Exception) -> Response:
    return JSONResponse(
        {"error": f"The server failed on this request ({type(error).__name__}: {error}).", "field": None},
        status_code=500,
    )


# ------------------------------------------------------------------------ the page
async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


# ------------------------------------------------------------------------ the model
async def _model(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(model_info, _web(request)))


def model_info(web: WebState) -> dict[str, Any]:
    """What ``GET /api/model`` returns: the shown model, its summary rows and kernels."""
    with web.session.current() as shown:
        if shown is None:
            return {
                "loaded": False,
                "message": web.notice or "No model is loaded: train one below, or start with a checkpoint.",
            }
        info: dict[str, Any] = {
            "loaded": True,
            "title": shown.title,
            "source": shown.source,
            "version": shown.version,
            "problem": shown.problem,
            "notice": web.notice,
            "input_shape": list(shown.input_shape),
            "digit_size": DIGIT_SIZE,
            "pad": shown.pad,
            "mean": shown.mean,
            "std": shown.std,
            "classes": shown.classes,
            "layers": shown.layer_names,
        }
        try:
            info["summary"] = playground.summary_json(cl.summary(shown.model, shown.input_shape))
        except (ValueError, TypeError, RuntimeError) as error:
            info["summary"] = None
            info["problem"] = info["problem"] or f"cl.summary cannot describe this model: {error}"
        info["kernels"] = kernels_json(shown.model) if not shown.problem else []
        return info


# ------------------------------------------------------------------------ predict
async def _predict(request: Request) -> Response:
    image, fields = await inputs.read_upload_or_json(request)
    return JSONResponse(await run_in_threadpool(predict, _web(request), image, fields))


def digit_pixels(image: bytes | None, fields: dict[str, Any]) -> np.ndarray:
    """The 28x28 digit in [0, 1]: an upload prepared as ``convlens predict`` does, or ``pixels``."""
    if image is None:
        return inputs.array(fields, "pixels", 2, shape=(DIGIT_SIZE, DIGIT_SIZE), low=0.0, high=1.0).astype(
            np.float32
        )
    inputs.check_picture(image)
    try:
        return images.prepare_digit(image)
    except ValueError as error:
        reason = str(error).split(". Received")[0].split(": ", 1)[-1]
        raise ApiError(400, f"The picture cannot be used: {reason}.", field="image") from None


def predict(web: WebState, image: bytes | None, fields: dict[str, Any]) -> dict[str, Any]:
    """What ``POST /api/predict`` returns: class, probabilities, the input and every layer's output."""
    started = time.perf_counter()
    pixels = digit_pixels(image, fields)
    with web.session.using() as shown:
        prepared = time.perf_counter()
        scores, records = forward_recorded(shown.model, shown.to_input(pixels))
        forward = time.perf_counter()
        probabilities = np.asarray(F.softmax(cl.tensor(scores), dim=1).data[0], np.float64)
        label = int(predict_classes(shown.model, scores)[0])
        layers = layers_json(records) if fields.get("layers", True) not in (False, "false", "0") else []
        version = shown.version
        classes = shown.classes
        seen = np.pad(pixels, shown.pad)
    return {
        "class": label,
        "label": classes[label],
        "classes": classes,
        "probabilities": probabilities.round(6).tolist(),
        "scores": np.asarray(scores[0], np.float64).round(6).tolist(),
        "input": pixels.astype(np.float64).tolist(),
        "network_input": seen.astype(np.float64).round(5).tolist(),
        "layers": layers,
        "model_version": version,
        "milliseconds": {
            "prepare": 1000 * (prepared - started),
            "forward": 1000 * (forward - prepared),
            "total": 1000 * (time.perf_counter() - started),
        },
    }


async def _explain(request: Request) -> Response:
    fields = inputs.parse_json(await inputs.read_body(request))
    return JSONResponse(await run_in_threadpool(explain, _web(request), fields))


def explain(web: WebState, fields: dict[str, Any]) -> dict[str, Any]:
    """What ``POST /api/explain`` returns: the arithmetic behind one feature-map cell."""
    pixels = digit_pixels(None, fields)
    layer = fields.get("layer")
    if not isinstance(layer, str):
        raise ApiError(422, f"layer must be a layer name. Received: layer={layer!r}.", field="layer")
    channel = inputs.integer(fields, "channel", 0, 10**6)
    y = inputs.integer(fields, "y", 0, 10**6)
    x = inputs.integer(fields, "x", 0, 10**6)
    with web.session.using() as shown:
        _, records = forward_recorded(shown.model, shown.to_input(pixels))
        result = explain_cell(records, layer, channel, y, x)
        result["model_version"] = shown.version
    return result


# ------------------------------------------------------------------------ playground
def _json_endpoint(compute: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        fields = inputs.parse_json(await inputs.read_body(request))
        return JSONResponse(await run_in_threadpool(compute, fields))

    endpoint.__name__ = compute.__name__
    return endpoint


def _photo_endpoint(compute: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        image, fields = await inputs.read_upload_or_json(request)
        return JSONResponse(await run_in_threadpool(compute, image, fields))

    endpoint.__name__ = compute.__name__
    return endpoint


async def _presets(request: Request) -> Response:
    return JSONResponse(playground.PRESETS)


async def _kernels(request: Request) -> Response:
    return JSONResponse(
        {
            "kernels": {name: np.asarray(k).tolist() for name, k in filters.KERNELS.items()},
            "edge": list(photos.EDGE_KERNELS),
            "volume_filters": list(photos.VOLUME_FILTERS),
        }
    )


# ------------------------------------------------------------------------ training
async def _train_start(request: Request) -> Response:
    fields = inputs.parse_json(await inputs.read_body(request))
    trainer = _web(request).trainer
    run = await run_in_threadpool(trainer.start, fields)
    return JSONResponse({**trainer.status(), "state": run.state}, status_code=202)


async def _train_stop(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_web(request).trainer.stop))


async def _train_status(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_web(request).trainer.status))


async def _train_events(request: Request) -> Response:
    """Server-sent events of the current run, from ``?after=N`` (or Last-Event-ID) on; ends with the run."""
    run = _web(request).trainer.run
    after = request.query_params.get("after") or request.headers.get("last-event-id") or "-1"
    start = int(after) + 1 if after.lstrip("-").isdigit() else 0

    async def stream() -> Any:
        yield "retry: 2000\n\n"
        if run is None:
            yield _sse({"type": "idle", "index": -1, "message": "No training run has started."})
            return
        index = max(0, start)
        while True:
            events = run.events[index:]
            for event in events:
                yield _sse(event)
            index += len(events)
            if not events and not run.alive and index >= len(run.events):
                return
            if not events:
                await anyio.sleep(0.1)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def _sse(event: dict[str, Any]) -> str:
    return f"id: {event['index']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"


def shown_model(app: Starlette) -> ShownModel | None:
    """The model the page currently shows, its latest weights loaded (for tests and scripts)."""
    with app.state.web.session.current() as shown:
        return shown
