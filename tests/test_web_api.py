"""The JSON API of ``convlens serve`` through Starlette's test client: results against
independent computations, and every bad input the issue lists, after which the server
still serves and the model is unchanged."""

from __future__ import annotations

import io
import json
import math
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
pytest.importorskip("PIL")

import warnings  # noqa: E402

from PIL import Image  # noqa: E402

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2; httpx is what it still supports
    warnings.simplefilter("ignore")  # StarletteDeprecationWarning
    from starlette.testclient import TestClient
from web_helpers import drawn_digit, png_bytes, trained_checkpoint, trained_run  # noqa: E402

import convlens as cl  # noqa: E402
from convlens import data, filters, images  # noqa: E402
from convlens import functional as F  # noqa: E402
from convlens.io import CHECKPOINT_NAME, load_checkpoint  # noqa: E402
from convlens.web.app import create_app, shown_model  # noqa: E402
from convlens.web.inputs import MAX_BODY_BYTES  # noqa: E402
from convlens.web.session import Session, describe  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(trained_checkpoint(), runs_dir=tmp_path_factory.mktemp("runs"))
    return TestClient(app)


@pytest.fixture(scope="module")
def test_digits():
    split = data.load_dataset("mnist-5k").test
    return split.images[:40], split.labels[:40]


def weights(client) -> dict[str, np.ndarray]:
    return shown_model(client.app).model.state_dict()


def assert_unchanged(client, before: dict[str, np.ndarray]) -> None:
    """The server answers and its model has the same weights as ``before``."""
    after = weights(client)
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert client.get("/api/model").status_code == 200


# ---------------------------------------------------------------------- the page
def test_index_and_static_files_are_served_and_load_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200
    for hook in ("draw-canvas", "prediction", "conv-output-size", "clear"):
        assert f'data-testid="{hook}"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for path in ("/static/style.css", "/static/js/main.js", "/static/vendor/chart.umd.min.js"):
        assert client.get(path).status_code == 200
    assert "MIT" in client.get("/static/vendor/chart.js-LICENSE.md").text
    ours = ["/", "/static/style.css"] + [
        f"/static/js/{name}.js"
        for name in ("api", "colors", "draw", "layers", "main", "photos", "playground", "train")
    ]
    for path in ours:
        text = client.get(path).text
        assert "http://" not in text and "https://" not in text, path


def test_unknown_path_is_json_404(client):
    response = client.get("/api/nothing")
    assert response.status_code == 404
    assert response.json()["error"].startswith("Nothing here")


# ---------------------------------------------------------------------- the model
def test_model_summary_and_kernels(client):
    info = client.get("/api/model").json()
    assert info["loaded"] and info["problem"] is None
    assert info["summary"]["total_params"] == 61_706
    assert [r["name"] for r in info["summary"]["rows"]][:3] == ["conv1", "relu1", "pool1"]
    assert [k["name"] for k in info["kernels"]] == ["conv1", "conv2"]
    assert info["kernels"][1]["shape"] == [16, 6, 5, 5]
    model = load_checkpoint(trained_checkpoint())["model"]
    np.testing.assert_allclose(info["kernels"][0]["values"], model.conv1.weight.data, atol=1e-5)


def test_no_model_yet(tmp_path):
    client = TestClient(create_app(None, runs_dir=tmp_path))
    assert client.get("/api/model").json()["loaded"] is False
    response = client.post("/api/predict", json={"pixels": np.zeros((28, 28)).tolist()})
    assert response.status_code == 409
    assert "train one" in response.json()["error"]


def test_newest_checkpoint_under_runs_is_used():
    client = TestClient(create_app(None, runs_dir=trained_run().parent))
    info = client.get("/api/model").json()
    assert info["loaded"] and info["source"].endswith(CHECKPOINT_NAME)


# ---------------------------------------------------------------------- predict
def test_predict_upload_matches_convlens_predict_pipeline(client, test_digits):
    model = load_checkpoint(trained_checkpoint())["model"].eval()
    digits, labels = test_digits
    correct = 0
    for digit, label in zip(digits[:12], labels[:12], strict=True):
        picture = drawn_digit(digit)
        response = client.post("/api/predict", files={"image": ("digit.png", picture, "image/png")})
        assert response.status_code == 200, response.text
        result = response.json()
        # the oracle: the library path `convlens predict` takes, run here without the server
        batch = images.model_input([picture], (1, 28, 28), 0.1307, 0.3081)
        with cl.no_grad():
            expected = F.softmax(model(cl.tensor(batch)), dim=1).data[0]
        np.testing.assert_allclose(result["probabilities"], expected, atol=2e-6)
        np.testing.assert_array_equal(np.asarray(result["input"], np.float32), images.prepare_digit(picture))
        assert math.isclose(sum(result["probabilities"]), 1.0, abs_tol=1e-4)
        correct += result["class"] == label
    assert correct >= 10


def test_predict_json_pixels_and_layer_outputs(client, test_digits):
    digits, labels = test_digits
    pixels = digits[0].astype(np.float32) / 255
    result = client.post("/api/predict", json={"pixels": pixels.tolist()}).json()
    names = [layer["name"] for layer in result["layers"]]
    assert names == [
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
        "flatten",
        "fc1",
        "relu3",
        "fc2",
        "relu4",
        "fc3",
    ]
    model = load_checkpoint(trained_checkpoint())["model"]
    x = (pixels[None, None] - np.float32(0.1307)) / np.float32(0.3081)
    conv1 = F.conv2d(x, model.conv1.weight.data, model.conv1.bias.data, padding=2).data[0]
    np.testing.assert_allclose(result["layers"][0]["values"], conv1, atol=1e-4)
    np.testing.assert_allclose(result["layers"][1]["values"], np.maximum(conv1, 0), atol=1e-4)
    pooled = np.maximum(conv1, 0).reshape(6, 14, 2, 14, 2).max(axis=(2, 4))
    np.testing.assert_allclose(result["layers"][2]["values"], pooled, atol=1e-4)
    assert result["layers"][0]["shape"] == [6, 28, 28] and result["layers"][-1]["shape"] == [10]
    with cl.no_grad():
        logits = model.eval()(cl.tensor(x)).data[0]
    np.testing.assert_allclose(result["scores"], logits, atol=1e-5)
    assert result["class"] == int(np.argmax(logits))
    batch = [(d.astype(np.float32) / 255).tolist() for d in digits]
    classes = [
        client.post("/api/predict", json={"pixels": p, "layers": False}).json()["class"] for p in batch
    ]
    assert np.mean(np.asarray(classes) == labels) >= 0.85


def test_predict_raw_png_body(client, test_digits):
    digits, labels = test_digits
    response = client.post(
        "/api/predict", content=drawn_digit(digits[1]), headers={"content-type": "image/png"}
    )
    assert response.status_code == 200 and response.json()["class"] == labels[1]


def test_predict_classic_lenet_takes_32x32(tmp_path, test_digits):
    cl.manual_seed(0)
    cl.save(cl.models.get("lenet5-classic"), tmp_path / "classic")
    client = TestClient(create_app(tmp_path / "classic"))
    result = client.post(
        "/api/predict", files={"image": ("d.png", drawn_digit(test_digits[0][0]), "image/png")}
    ).json()
    assert np.shape(result["network_input"]) == (32, 32)
    assert [layer["name"] for layer in result["layers"]][:3] == ["c1", "act1", "s2"]
    assert result["layers"][0]["shape"] == [6, 28, 28]


# ---------------------------------------------------------------------- bad input
def bomb_png() -> bytes:
    """A tiny file that decodes to 10,000 x 10,000 pixels: past Pillow's decompression-bomb limit."""
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def bad_uploads() -> list[tuple[str, bytes, int, str]]:
    blank = png_bytes(np.full((64, 64), 255, np.uint8))
    good = png_bytes(np.full((64, 64), 255, np.uint8) - np.eye(64, dtype=np.uint8) * 255)
    return [
        ("too large", b"\x89PNG" + b"0" * (MAX_BODY_BYTES + 10), 413, "too large"),
        ("not an image", b"hello, this is a text file\n" * 20, 415, "not a picture"),
        ("a PDF", b"%PDF-1.4\n" + b"0" * 100, 415, "not a picture"),
        ("a bomb", bomb_png(), 400, "decompression-bomb"),
        ("truncated", good[: len(good) // 2], 400, "cannot be used"),
        ("blank", blank, 400, "blank"),
        ("empty", b"", 422, "empty"),
    ]


@pytest.mark.parametrize("name, payload, status, words", bad_uploads(), ids=[u[0] for u in bad_uploads()])
def test_bad_uploads_are_refused_and_the_server_goes_on(client, test_digits, name, payload, status, words):
    before = weights(client)
    response = client.post("/api/predict", files={"image": ("x.png", payload, "image/png")})
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert_unchanged(client, before)
    ok = client.post("/api/predict", files={"image": ("d.png", drawn_digit(test_digits[0][0]), "image/png")})
    assert ok.status_code == 200


def test_upload_without_content_length_is_cut_at_the_limit(client):
    def chunks():
        for _ in range(40):
            yield b"0" * 100_000

    response = client.post("/api/predict", content=chunks(), headers={"content-type": "image/png"})
    assert response.status_code == 413


def bad_json_bodies() -> list[tuple[str, bytes, str]]:
    row = [0.0] * 28
    return [
        ("syntax", b'{"pixels": [[0, 1', "body"),
        ("not an object", b"[1, 2, 3]", "body"),
        ("missing", b"{}", "pixels"),
        ("wrong shape", json.dumps({"pixels": [row] * 27}).encode(), "pixels"),
        ("ragged", json.dumps({"pixels": [row] * 27 + [row[:5]]}).encode(), "pixels"),
        (
            "NaN",
            (
                "{"
                + '"pixels": ['
                + ",".join(["[NaN" + ",0" * 27 + "]"] + ["[" + ",".join(["0"] * 28) + "]"] * 27)
                + "]}"
            ).encode(),
            "pixels",
        ),
        ("strings", json.dumps({"pixels": [["a"] * 28] * 28}).encode(), "pixels"),
        ("out of range", json.dumps({"pixels": [[2.0] * 28] * 28}).encode(), "pixels"),
        ("deep", b"[" * 100_000 + b"]" * 100_000, "body"),
    ]


@pytest.mark.parametrize("name, body, field", bad_json_bodies(), ids=[b[0] for b in bad_json_bodies()])
def test_bad_json_is_422_naming_the_field(client, name, body, field):
    before = weights(client)
    response = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert field in response.json()["error"] or field == "body"
    assert_unchanged(client, before)


def test_nan_named_in_the_message(client):
    body = '{"pixels": [' + ",".join(["[" + ",".join(["NaN"] * 28) + "]"] * 28) + "]}"
    response = client.post(
        "/api/predict", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"].startswith("pixels[0][0] is nan")


def test_unknown_content_type_is_415(client):
    response = client.post("/api/predict", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415


# ---------------------------------------------------------------------- the arithmetic
@pytest.mark.parametrize(
    "layer, cell", [("conv1", (0, 0, 0)), ("conv1", (3, 13, 9)), ("conv2", (7, 4, 2)), ("relu2", (2, 9, 9))]
)
def test_explain_sum_equals_the_activation(client, test_digits, layer, cell):
    pixels = (test_digits[0][2].astype(np.float32) / 255).tolist()
    predicted = client.post("/api/predict", json={"pixels": pixels}).json()
    values = {entry["name"]: np.asarray(entry["values"]) for entry in predicted["layers"]}
    c, y, x = cell
    result = client.post(
        "/api/explain", json={"pixels": pixels, "layer": layer, "channel": c, "y": y, "x": x}
    ).json()
    conv = result["layer"]
    assert conv == layer.replace("relu", "conv")
    assert math.isclose(result["value"], values[conv][c, y, x], abs_tol=1e-4)
    assert math.isclose(result["value"], result["recorded"], abs_tol=1e-4)
    products = sum(np.sum(ch["products"]) for ch in result["channels"])
    assert math.isclose(products + result["bias"], result["value"], rel_tol=1e-9, abs_tol=1e-9)
    for ch in result["channels"]:
        np.testing.assert_allclose(np.multiply(ch["window"], ch["kernel"]), ch["products"])
    relu, pool = result["after"][:2]
    assert math.isclose(relu["value"], max(0.0, result["recorded"]), abs_tol=1e-6)
    window = [v for row in pool["window"] for v in row]
    assert math.isclose(pool["value"], max(window), abs_tol=1e-6)
    assert math.isclose(pool["value"], values[pool["layer"]][tuple(pool["cell"])], abs_tol=1e-4)


def test_explain_marks_padding_cells(client, test_digits):
    pixels = (test_digits[0][2].astype(np.float32) / 255).tolist()
    result = client.post(
        "/api/explain", json={"pixels": pixels, "layer": "conv1", "channel": 0, "y": 0, "x": 1}
    ).json()
    padding = np.asarray(result["channels"][0]["padding"])
    assert padding[:2].all() and padding[:, 0].all() and not padding[2:, 1:].any()
    background = (0 - 0.1307) / 0.3081
    window = np.asarray(result["channels"][0]["window"])
    assert (window[padding] == 0).all() and np.allclose(window[~padding], background, atol=1e-5)


def test_explain_classic_partial_connections(tmp_path, test_digits):
    cl.manual_seed(1)
    cl.save(cl.models.get("lenet5-classic"), tmp_path / "classic")
    client = TestClient(create_app(tmp_path / "classic"))
    pixels = (test_digits[0][0].astype(np.float32) / 255).tolist()
    result = client.post(
        "/api/explain", json={"pixels": pixels, "layer": "c3", "channel": 0, "y": 2, "x": 3}
    ).json()
    connected = [ch["channel"] for ch in result["channels"] if ch["connected"]]
    assert connected == [0, 1, 2]  # Table I of the paper: C3 map 0 reads S2 maps 0, 1, 2
    for ch in result["channels"]:
        if not ch["connected"]:
            assert not np.any(ch["kernel"])
    assert math.isclose(result["value"], result["recorded"], abs_tol=1e-4)
    assert [step["layer"] for step in result["after"]] == ["act3", "s4", "act4"]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"layer": "fc1", "channel": 0, "y": 0, "x": 0}, "layer"),
        ({"layer": "nope", "channel": 0, "y": 0, "x": 0}, "layer"),
        ({"layer": "conv1", "channel": 6, "y": 0, "x": 0}, "channel"),
        ({"layer": "conv1", "channel": 0, "y": 28, "x": 0}, "y"),
        ({"layer": "conv1", "channel": 0, "y": 0, "x": -1}, "x"),
    ],
)
def test_explain_bad_cells(client, fields, field):
    response = client.post("/api/explain", json={"pixels": np.zeros((28, 28)).tolist(), **fields})
    assert response.status_code == 422 and response.json()["field"] == field


# ---------------------------------------------------------------------- playground
def test_convolve_lecture_examples(client):
    presets = client.get("/api/presets").json()
    a = presets["example-a"]
    assert client.post("/api/convolve", json=a).json()["output"] == [[13.0]]
    assert client.post("/api/convolve", json={**a, "mode": "convolution"}).json()["output"] == [[32.0]]
    b = client.post("/api/convolve", json=presets["example-b"]).json()
    assert b["output"] == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    stride = client.post("/api/convolve", json=presets["stride-2"]).json()
    assert stride["output_size"]["value"] == 3 and stride["output_size"]["whole"]
    assert stride["output_size"]["explanation"] == "(5 + 2*1 - 3)/2 + 1 = 3"
    assert np.shape(stride["output"]) == (3, 3)


def test_convolve_not_whole_and_invalid(client):
    uneven = client.post("/api/convolve", json={"size": 6, "kernel_size": 3, "stride": 2}).json()
    assert uneven["output_size"]["value"] == 2 and not uneven["output_size"]["whole"]
    assert uneven["output_size"]["explanation"].startswith("(6 + 2*0 - 3)/2 + 1 = 2.5 is not whole:")
    too_big = client.post("/api/convolve", json={"size": 3, "kernel_size": 5}).json()
    assert not too_big["output_size"]["valid"] and too_big["output"] is None
    assert "fits nowhere" in too_big["output_size"]["explanation"]


@pytest.mark.parametrize("seed", range(6))
def test_convolve_against_a_loop(client, seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(3, 12)), int(rng.integers(1, 4))
    p, s, d = int(rng.integers(0, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    if d * (k - 1) + 1 > n + 2 * p:
        d = 1
    grid, kernel = rng.integers(-3, 4, (n, n)), rng.integers(-2, 3, (k, k))
    body = {"input": grid.tolist(), "kernel": kernel.tolist(), "padding": p, "stride": s, "dilation": d}
    result = client.post("/api/convolve", json=body).json()
    padded = np.pad(grid, p)
    out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    expected = [
        [
            sum(padded[y * s + d * i, x * s + d * j] * kernel[i, j] for i in range(k) for j in range(k))
            for x in range(out)
        ]
        for y in range(out)
    ]
    np.testing.assert_allclose(result["output"], expected)
    assert [step["sum"] for step in result["steps"]] == pytest.approx(np.ravel(expected).tolist())


@pytest.mark.parametrize(
    "body, field",
    [
        ({"size": 0}, "size"),
        ({"stride": 0}, "stride"),
        ({"input": [[1, 2], [3]]}, "input"),
        ({"kernel": [[math.inf]]}, "kernel"),
    ],
)
def test_convolve_bad_fields(client, body, field):
    raw = json.dumps(body).encode()  # Infinity: not JSON
    response = client.post("/api/convolve", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["field"] == field


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_against_numpy(client, mode):
    grid = np.random.default_rng(3).integers(0, 10, (6, 6))
    result = client.post(
        "/api/pool", json={"input": grid.tolist(), "kernel_size": 2, "stride": 2, "mode": mode}
    ).json()
    blocks = grid.reshape(3, 2, 3, 2)
    expected = blocks.max(axis=(1, 3)) if mode == "max" else blocks.mean(axis=(1, 3))
    np.testing.assert_allclose(result["output"], expected)
    for window in result["windows"]:
        y, x = window["out"]
        assert grid[tuple(window["winner"])] == blocks[y, :, x, :].max()


def test_parameter_counts_of_the_lecture(client):
    result = client.post("/api/params", json={}).json()
    assert result["cnn"]["total_params"] == 646_810
    assert result["mlp"]["total_params"] == 1_021_310
    assert result["cnn"]["total_params"] == cl.summary(cl.models.lecture_cnn(), (1, 100, 100)).total_params
    smaller = client.post("/api/params", json={"channels": [8, 16], "hidden": [32], "input_size": 28}).json()
    assert smaller["cnn"]["total_params"] == (5 * 5 * 8 + 8) + (5 * 5 * 8 * 16 + 16) + (16 * 7 * 7 * 10 + 10)
    assert smaller["mlp"]["total_params"] == 784 * 32 + 32 + 32 * 10 + 10
    bad = client.post("/api/params", json={"channels": [4] * 5, "input_size": 16})
    assert bad.status_code == 422 and bad.json()["field"] == "channels"


# ---------------------------------------------------------------------- photos
def decode(data_url: str) -> np.ndarray:
    import base64

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_filter_sample_photo_as_convlens_filter(client):
    result = client.post("/api/filter", json={"kernel": "sharpen"}).json()
    photo = decode(result["input"])
    expected = np.clip(np.rint(filters.apply(photo.astype(np.float32), "sharpen")), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(decode(result["output"]), expected)
    edges = client.post("/api/filter", json={"kernel": "log9"}).json()
    assert edges["edge"] and edges["kernel_sum"] == 4


def test_filter_custom_kernel_and_upload(client):
    photo = np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    result = client.post(
        "/api/filter",
        files={"image": ("p.png", png_bytes(photo), "image/png")},
        data={"kernel": json.dumps([[0, 0, 0], [0, 2, 0], [0, 0, 0]]), "padding_mode": "zeros"},
    ).json()
    np.testing.assert_array_equal(decode(result["output"]), np.clip(2 * photo.astype(int), 0, 255))


@pytest.mark.parametrize(
    "body, status",
    [({"kernel": "nope"}, 422), ({"kernel": [[1, 2], [3]]}, 422), ({"padding_mode": "mirror"}, 422)],
)
def test_filter_bad_fields(client, body, status):
    assert client.post("/api/filter", json=body).status_code == status


def test_filter_upload_not_an_image(client):
    response = client.post("/api/filter", files={"image": ("p.png", b"plain text", "image/png")})
    assert response.status_code == 415


def test_volume_planes_are_the_3_channel_convolution(client):
    result = client.post("/api/volume", json={"filters": ["vertical edges", "red minus green"]}).json()
    assert result["weight_shape"] == [2, 3, 3, 3]
    assert result["output_shape"] == [2, result["height"], result["width"]]
    photo = decode(result["input"]).astype(np.float64) / 255
    red_minus_green = photo[:, :, 0] - photo[:, :, 1]
    plane = decode(result["filters"][1]["plane"]).astype(np.float64)
    low, high = red_minus_green.min(), red_minus_green.max()
    np.testing.assert_allclose(plane, np.rint((red_minus_green - low) * 255 / (high - low)), atol=1)
    assert client.post("/api/volume", json={"filters": ["nope"]}).status_code == 422


# ---------------------------------------------------------------------- models the page cannot show
def test_a_model_the_page_cannot_show_gets_a_message(tmp_path):
    cl.save(cl.nn.Sequential(cl.nn.Conv2d(3, 4, 3), cl.nn.Flatten()), tmp_path / "rgb")
    client = TestClient(create_app(tmp_path / "rgb"))
    info = client.get("/api/model").json()
    assert info["loaded"] and "does not run through this model" in info["problem"]
    response = client.post("/api/predict", json={"pixels": np.zeros((28, 28)).tolist()})
    assert response.status_code == 409 and "cannot show this model" in response.json()["error"]


def test_session_hands_out_whole_published_weights():
    model = cl.models.get("lenet5")
    session = Session()
    session.show(describe(model, "test"))
    first = {k: np.full_like(v, 1.0) for k, v in model.state_dict().items()}
    second = {k: np.full_like(v, 2.0) for k, v in model.state_dict().items()}
    session.publish(first)
    session.publish(second)
    with session.using() as shown:
        assert all((v == 2.0).all() for v in shown.model.state_dict().values())


# ---------------------------------------------------------------------- training
def wait_for(predicate, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def sse_events(client) -> list[dict]:
    events = []
    with client.stream("GET", "/api/train/events?after=-1") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def test_training_run_events_checkpoint_and_409(tmp_path, test_digits):
    app = create_app(None, runs_dir=tmp_path)
    client = TestClient(app)
    start = client.post("/api/train/start", json={"model": "lenet5", "epochs": 2, "limit": 512})
    assert start.status_code == 202
    second = client.post("/api/train/start", json={"model": "lenet5", "epochs": 2})
    assert second.status_code == 409 and "already going" in second.json()["error"]
    # predictions while it trains run on a published copy of the weights
    errors = []

    def predict_many():
        for _ in range(5):
            r = client.post(
                "/api/predict", json={"pixels": (test_digits[0][0] / 255).tolist(), "layers": False}
            )
            if r.status_code not in (200, 409) or (
                r.status_code == 200 and not np.isfinite(r.json()["probabilities"]).all()
            ):
                errors.append(r.text)

    threads = [threading.Thread(target=predict_many) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    run = app.state.web.trainer.run
    run.join(timeout=300)
    status = client.get("/api/train/status").json()
    assert status["state"] == "finished", status
    events = sse_events(client)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("epoch") == 2 and "progress" in kinds
    progress = [e for e in events if e["type"] == "progress"]
    assert progress[-1]["global_step"] == progress[-1]["total_steps"] == 2 * 8
    assert np.shape(progress[-1]["kernels"]["values"]) == (6, 1, 5, 5)
    out = run.out
    for name in (CHECKPOINT_NAME, "config.json", "history.json"):
        assert (out / name).exists(), name
    saved = load_checkpoint(out / CHECKPOINT_NAME)
    assert saved["epoch"] == 2 and saved["config"]["model"] == "lenet5" and saved["config"]["limit"] == 512
    shown = shown_model(app)
    for key, value in saved["model"].state_dict().items():
        np.testing.assert_array_equal(shown.model.state_dict()[key], value)
    assert client.post("/api/predict", json={"pixels": (test_digits[0][0] / 255).tolist()}).status_code == 200


def test_training_stop(tmp_path):
    app = create_app(None, runs_dir=tmp_path)
    client = TestClient(app)
    assert client.post("/api/train/start", json={"epochs": 50}).status_code == 202
    run = app.state.web.trainer.run
    wait_for(lambda: any(e["type"] == "progress" for e in run.events) or not run.alive)
    assert client.post("/api/train/stop").json()["state"] in ("stopping", "stopped")
    run.join(timeout=120)
    assert run.state == "stopped", run.message
    saved = load_checkpoint(run.out / CHECKPOINT_NAME)
    assert saved["epoch"] < 50
    assert client.post("/api/train/stop").json()["message"] == "No training run is going."


@pytest.mark.parametrize(
    "body, field",
    [
        ({"epochs": 0}, "epochs"),
        ({"model": "resnet"}, "model"),
        ({"dataset": "imagenet"}, "dataset"),
        ({"lr": -1}, "lr"),
    ],
)
def test_training_bad_fields(client, body, field):
    response = client.post("/api/train/start", json=body)
    assert response.status_code == 422 and response.json()["field"] == field


def test_events_without_a_run(client):
    assert [e["type"] for e in sse_events(client)] == ["idle"]


# ---------------------------------------------------------------------- the command
def test_serve_arguments_and_warning(monkeypatch, capsys, tmp_path):
    import argparse

    import uvicorn

    from convlens.web import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.checkpoint, args.port, args.host) == (None, 8000, "127.0.0.1")
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(sockets))
    real_bind = cli._bind
    monkeypatch.setattr(
        cli, "_bind", lambda host, port: real_bind("127.0.0.1", 0)
    )  # never listen beyond loopback
    args = parser.parse_args(["--host", "0.0.0.0", "--port", "0", "--runs", str(tmp_path)])
    assert cli.run(args) == 0 and served
    out, err = capsys.readouterr()
    assert "no authentication" in err
    assert out.startswith("convlens serve: http://0.0.0.0:") and out.count("\n") == 1
    args = parser.parse_args(["--port", "0", "--runs", str(tmp_path)])
    assert cli.run(args) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err and out.startswith("convlens serve: http://127.0.0.1:")
    assert cli.run(parser.parse_args([str(tmp_path / "missing")])) == 1
    assert "not found" in capsys.readouterr().err
