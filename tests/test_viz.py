"""cl.viz: every picture has the panels it promises, writes a real PNG (or GIF), and
shows the numbers convlens computes (the lecture's worked examples A and B)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import convlens as cl
from convlens import nn, viz

matplotlib = pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")
torch = pytest.importorskip("torch")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The lecture's worked examples: A (3x3 image, 3x3 kernel) and B (5x5 image, 3x3 kernel).
A_IMAGE = [[1, 1, 2], [2, 2, 1], [1, 5, 0]]
A_KERNEL = [[2, 3, 0], [0, 1, 3], [3, 0, 3]]
B_IMAGE = [
    [1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0],
    [0, 0, 1, 1, 1],
    [0, 0, 1, 1, 0],
    [0, 1, 1, 0, 0],
]
B_KERNEL = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
B_MAP = [[4, 3, 4], [2, 4, 3], [2, 3, 4]]


# ------------------------------------------------------------------ helpers
def assert_png(path: Path, fig, dpi: int = 100) -> None:
    """A PNG file Pillow opens, of the figure's size in pixels."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = fig.get_size_inches() * dpi
        assert image.size == (round(width), round(height))
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")], "temporary file left behind"


def axes_labelled(fig, label: str) -> list:
    return [ax for ax in fig.axes if ax.get_label() == label]


def cell_values(ax) -> np.ndarray:
    """The numbers written in the cells of a grid axes, as a matrix (NaN where empty)."""
    rows, cols = ax.get_images()[0].get_array().shape[:2]
    grid = np.full((rows, cols), np.nan)
    for text in ax.texts:
        x, y = text.get_position()
        grid[int(round(y)), int(round(x))] = float(text.get_text())
    return grid


def arithmetic_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if " = " in t.get_text()]


def evaluate_arithmetic(text: str) -> tuple[float, float]:
    """(sum of the products written, the result written) of 'x*w + x*w ... = y'."""
    left, right = text.rsplit(" = ", 1)
    products = re.findall(r"(\(?-?[\d.e+-]+\)?)\*(\(?-?[\d.e+-]+\)?)", left)
    total = sum(float(x.strip("()")) * float(w.strip("()")) for x, w in products)
    return total, float(right)


def torch_conv(image, kernel, padding, stride) -> np.ndarray:
    x = torch.tensor(np.asarray(image, np.float64))[None, None]
    w = torch.tensor(np.asarray(kernel, np.float64))[None, None]
    return torch.nn.functional.conv2d(x, w, padding=padding, stride=stride)[0, 0].numpy()


# ------------------------------------------------------------------ convolution_steps
def test_example_a_centre_is_13_and_true_convolution_32(tmp_path):
    path = tmp_path / "a.png"
    fig = viz.convolution_steps(A_IMAGE, A_KERNEL, save=path)
    assert len(fig.axes) == 3  # one output position: input, kernel, output
    assert {ax.get_label() for ax in fig.axes} == {"input", "kernel", "output"}
    assert cell_values(axes_labelled(fig, "output")[0]).tolist() == [[13]]
    (text,) = arithmetic_texts(fig)
    assert text.startswith("1*2 + 1*3 + 2*0") and text.endswith("= 13")
    assert evaluate_arithmetic(text) == (13, 13)
    assert_png(path, fig)

    flipped = viz.convolution_steps(A_IMAGE, A_KERNEL, convolve=True)
    assert flipped.convlens_output.tolist() == [[32]]
    assert arithmetic_texts(flipped)[0].endswith("= 32")
    assert cl.signal.convolve(np.array(A_IMAGE), np.array(A_KERNEL), mode="valid").tolist() == [[32]]

    # With padding 1 the 3x3 output's centre is the same 13.
    padded = viz.convolution_steps(A_IMAGE, A_KERNEL, padding=1, steps=[(1, 1)])
    assert len(padded.axes) == 3
    assert padded.convlens_output[1, 1] == 13
    assert arithmetic_texts(padded)[0].endswith("= 13")


def test_example_b_map(tmp_path):
    path = tmp_path / "b.png"
    fig = viz.convolution_steps(B_IMAGE, B_KERNEL, save=path)
    assert len(fig.axes) == 3 * 9
    outputs = axes_labelled(fig, "output")
    assert len(outputs) == 9
    assert cell_values(outputs[-1]).tolist() == B_MAP  # the last panel shows the whole map
    first = cell_values(outputs[0])
    assert first[0, 0] == 4 and np.isnan(first).sum() == 8  # nothing else written yet
    assert cell_values(axes_labelled(fig, "input")[0]).tolist() == B_IMAGE
    assert cell_values(axes_labelled(fig, "kernel")[0]).tolist() == B_KERNEL
    results = [evaluate_arithmetic(t) for t in arithmetic_texts(fig)]
    assert [r for _, r in results] == [v for row in B_MAP for v in row]
    assert all(total == result for total, result in results)
    assert fig.convlens_output.tolist() == B_MAP
    assert cl.signal.correlate(np.array(B_IMAGE), np.array(B_KERNEL), mode="valid").tolist() == B_MAP
    assert_png(path, fig)


def test_padding_1_stride_2_gives_3x3(tmp_path):
    fig = viz.convolution_steps(B_IMAGE, B_KERNEL, padding=1, stride=2, steps=[0, 4, 8], ncols=3)
    assert fig.convlens_output.shape == (3, 3) == (cl.signal.output_size(5, 3, 1, 2),) * 2
    assert len(fig.axes) == 9
    np.testing.assert_array_equal(fig.convlens_output, torch_conv(B_IMAGE, B_KERNEL, 1, 2))
    inputs = axes_labelled(fig, "input")
    grid = cell_values(inputs[0])
    assert grid.shape == (7, 7)  # padding cells are drawn
    np.testing.assert_array_equal(grid, np.pad(B_IMAGE, 1))
    assert "padding 1" in inputs[0].get_title()
    assert "stride 2" in axes_labelled(fig, "output")[0].get_title()
    window = [p for p in inputs[-1].patches if p.get_linewidth() == 3][0]  # step 8: bottom right
    assert window.get_xy() == (4 - 0.5, 4 - 0.5)


def test_random_cases_match_torch():
    rng = np.random.default_rng(0)
    for _ in range(12):
        h, w = rng.integers(2, 7, size=2)
        kh, kw = rng.integers(1, 4, size=2)
        padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        if kh > h + 2 * padding[0] or kw > w + 2 * padding[1]:
            continue
        image = rng.integers(-3, 4, size=(h, w))
        kernel = rng.integers(-2, 3, size=(kh, kw))
        fig = viz.convolution_steps(image, kernel, padding=padding, stride=stride, steps=[-1])
        expected = torch_conv(image, kernel, padding, stride)
        np.testing.assert_array_equal(fig.convlens_output, expected)
        total, result = evaluate_arithmetic(arithmetic_texts(fig)[0])
        assert total == result == expected[-1, -1]
        np.testing.assert_array_equal(cell_values(axes_labelled(fig, "output")[0]), expected)


def test_float_values_are_rounded_for_display():
    fig = viz.convolution_steps(np.full((3, 3), 0.5), np.full((2, 2), 1 / 3), steps=0)
    assert arithmetic_texts(fig)[0].endswith("= 0.667")


def test_steps_selection():
    assert len(viz.convolution_steps(B_IMAGE, B_KERNEL, steps=4).axes) == 3
    assert len(viz.convolution_steps(B_IMAGE, B_KERNEL, steps=(2, 1)).axes) == 3
    assert len(viz.convolution_steps(B_IMAGE, B_KERNEL, steps=[(0, 0), 8]).axes) == 6
    with pytest.raises(ValueError, match="out of range"):
        viz.convolution_steps(B_IMAGE, B_KERNEL, steps=9)
    with pytest.raises(ValueError, match="outside the 3x3 output"):
        viz.convolution_steps(B_IMAGE, B_KERNEL, steps=[(3, 0)])
    with pytest.raises(TypeError, match="steps must be"):
        viz.convolution_steps(B_IMAGE, B_KERNEL, steps=["a"])
    with pytest.raises(ValueError, match="too many panels for one figure; choose some with steps="):
        viz.convolution_steps(np.zeros((10, 10)), np.ones((2, 2)))
    big = viz.convolution_steps(np.zeros((20, 20)), np.ones((3, 3)), steps=[0])
    assert not axes_labelled(big, "input")[0].texts  # too small to write numbers in


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel": [1, 2, 3]}, ValueError, "kernel must be 2-D"),
        ({"kernel": np.ones((2, 2, 2))}, ValueError, "kernel must be 2-D"),
        ({"image": np.ones((2, 2, 2))}, ValueError, "image must be 2-D"),
        ({"kernel": np.ones((6, 2))}, ValueError, "larger than the padded image"),
        ({"kernel": np.ones((0, 2))}, ValueError, "must not be empty"),
        ({"image": [[1, np.nan]]}, ValueError, "NaN"),
        ({"image": [["a", "b"]]}, TypeError, "numeric"),
        ({"stride": 0}, ValueError, "stride must be positive"),
        ({"padding": -1}, ValueError, "padding must be >= 0"),
    ],
)
def test_bad_input_is_named(kwargs, error, match):
    arguments = {"image": B_IMAGE, "kernel": B_KERNEL, **kwargs}
    with pytest.raises(error, match=match) as info:
        viz.convolution_steps(**arguments)
    assert "convolution_steps" in str(info.value)


# ------------------------------------------------------------------ animation
@pytest.mark.parametrize(
    ("image", "kernel", "padding", "stride", "frames"),
    [(B_IMAGE, B_KERNEL, 1, 2, 9), (np.eye(4), np.ones((2, 2)), 0, 2, 4)],
)
def test_animation_frames(tmp_path, image, kernel, padding, stride, frames):
    path = tmp_path / "slide.gif"
    fig = viz.convolution_animation(image, kernel, padding=padding, stride=stride, path=path, fps=4)
    assert len(fig.axes) == 3
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == frames
        assert gif.info["duration"] == 250
        assert gif.info.get("loop") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["slide.gif"]


def test_animation_arguments(tmp_path):
    with pytest.raises(TypeError, match="path"):
        viz.convolution_animation(B_IMAGE, B_KERNEL)
    with pytest.raises(ValueError, match="fps must be"):
        viz.convolution_animation(B_IMAGE, B_KERNEL, path=tmp_path / "x.gif", fps=0)
    with pytest.raises(ValueError, match="kernel must be 2-D"):
        viz.convolution_animation(B_IMAGE, [1, 0], path=tmp_path / "x.gif")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ kernels
def test_kernels_of_a_layer(tmp_path):
    nn.init.manual_seed(0)
    layer = nn.Conv2d(3, 4, 3)
    path = tmp_path / "k.png"
    fig = viz.kernels(layer, save=path)
    assert len(fig.axes) == 4 * 3 + 1  # one per kernel + the colour bar
    image = fig.axes[0].get_images()[0]
    limit = float(np.abs(layer.weight.data).max())
    assert image.norm.vmin == pytest.approx(-limit) and image.norm.vmax == pytest.approx(limit)
    assert image.norm.vcenter == 0
    assert image.get_cmap().name == "RdBu_r"
    np.testing.assert_array_equal(image.get_array(), layer.weight.data[0, 0])
    assert_png(path, fig)


def test_kernels_of_arrays():
    assert len(viz.kernels(np.ones((3, 3))).axes) == 2
    assert len(viz.kernels(cl.tensor(np.zeros((2, 1, 5, 5)))).axes) == 3
    assert len(viz.kernels(np.ones((5, 2, 4))).axes) == 11  # Conv1d weight
    fig = viz.kernels(np.ones((40, 20, 3, 3)), max_out=4, max_in=3)
    assert len(fig.axes) == 13
    assert "showing 4 of 40" in fig.get_suptitle()
    with pytest.raises(ValueError, match="kernels: expected"):
        viz.kernels(np.ones((1, 1, 1, 3, 3)))


# ------------------------------------------------------------------ feature maps
def small_cnn():
    nn.init.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)
    )


def test_feature_maps_one_row_per_layer(tmp_path):
    model = small_cnn()
    image = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    path = tmp_path / "fm.png"
    fig = viz.feature_maps(model, image, save=path)
    assert len(fig.axes) == 1 + 4 + 4 + 4  # input, conv, relu, pool (flatten/linear skipped)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert [label.split("\n")[1] for label in labels[1:]] == ["Conv2d", "ReLU", "MaxPool2d"]
    assert labels[-1].endswith("4x4x4")
    conv_out = fig.axes[1].get_images()[0].get_array()
    expected = cl.functional.conv2d(image[None, None], model[0].weight, model[0].bias, padding=1).data
    np.testing.assert_allclose(conv_out, expected[0, 0], rtol=1e-6)
    assert model.training  # the mode is restored
    assert not model[0]._forward_hooks  # the hooks are removed
    assert_png(path, fig)
    assert len(viz.feature_maps(model, image[None], max_maps=2, include_input=False).axes) == 6


def test_feature_maps_of_lenet5():
    model = cl.models.lenet5("modern")
    fig = viz.feature_maps(model, np.zeros((1, 1, 28, 28), np.float32), max_maps=6)
    # input 1 + conv1/relu1/pool1 6 each + conv2/relu2/pool2 6 each (of 16)
    assert len(fig.axes) == 1 + 6 * 6


def test_feature_maps_bad_input():
    with pytest.raises(ValueError, match="feature_maps: image must be"):
        viz.feature_maps(small_cnn(), np.zeros((2, 1, 8, 8)))
    with pytest.raises(TypeError, match="nn.Module"):
        viz.feature_maps(lambda x: x, np.zeros((8, 8)))


# ------------------------------------------------------------------ training curves
def test_training_curves(tmp_path):
    from convlens.history import EpochRecord, History

    records = [
        EpochRecord(e, 1.0 / (e + 1), 0.5 + e / 10, 1.2 / (e + 1), 0.45 + e / 10, 1.0, 100.0)
        for e in range(3)
    ]
    path = tmp_path / "curves.png"
    fig = viz.training_curves(History(records), save=path)
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert sorted(line.get_label() for line in loss_ax.lines) == ["train loss", "val loss"]
    assert sorted(line.get_label() for line in acc_ax.lines) == ["train acc", "val acc"]
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [1.0, 0.5, 1 / 3])
    assert list(loss_ax.lines[0].get_xdata()) == [1, 2, 3]
    assert_png(path, fig)

    as_records = viz.training_curves(records)  # a plain list of epoch records works too
    assert [len(ax.lines) for ax in as_records.axes] == [2, 2]
    no_val = viz.training_curves({"train_loss": [2.0, 1.0], "val_loss": [None, None]})
    assert len(no_val.axes) == 2 and len(no_val.axes[0].lines) == 1
    with pytest.raises(ValueError, match="no loss or accuracy"):
        viz.training_curves({"seconds": [1.0]})


# ------------------------------------------------------------------ confusion matrix
def test_confusion_matrix(tmp_path):
    matrix = np.array([[5, 1, 0], [0, 7, 2], [1, 0, 4]])
    path = tmp_path / "cm.png"
    fig = viz.confusion_matrix(matrix, ["cat", "dog", "owl"], save=path)
    assert len(fig.axes) == 2  # heatmap + colour bar
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for v in matrix.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "owl"]
    assert "80.0%" in ax.get_title()  # 16 of 20
    assert_png(path, fig)
    normalized = viz.confusion_matrix(matrix, normalize=True).axes[0]
    assert normalized.texts[0].get_text() == f"{5 / 6:.2f}"
    with pytest.raises(ValueError, match="square"):
        viz.confusion_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="class_names"):
        viz.confusion_matrix(matrix, ["a"])


# ------------------------------------------------------------------ most confused
class PixelOracle(nn.Module):
    """Predicts the class written in pixel (0, 0): a model whose mistakes we choose."""

    def forward(self, x):
        data = np.asarray(x.data)
        return cl.tensor(np.eye(10, dtype=np.float32)[data[:, 0, 0, 0].astype(int)])


def test_most_confused(tmp_path):
    labels = np.array([1, 1, 1, 4, 4, 3, 2, 2])
    predicted = np.array([7, 7, 7, 9, 9, 5, 2, 2])
    images = np.zeros((8, 1, 6, 6), np.float32)
    images[:, 0, 0, 0] = predicted
    path = tmp_path / "mc.png"
    fig = viz.most_confused(PixelOracle(), images, labels, top=2, examples=3, save=path)
    assert len(fig.axes) == 2 * 3
    row_labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert row_labels == ["true 1\npred 7\n3 times", "true 4\npred 9\n2 times"]
    assert len(fig.axes[3].get_images()) == 1 and not fig.axes[5].get_images()  # 2 examples of 4 -> 9
    assert_png(path, fig)
    perfect = viz.most_confused(PixelOracle(), images, predicted)
    assert len(perfect.axes) == 1 and "no mistakes" in perfect.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="labels"):
        viz.most_confused(PixelOracle(), images, labels[:3])


# ------------------------------------------------------------------ filters grid
def photo(shape=(24, 32)) -> np.ndarray:
    y, x = np.mgrid[: shape[0], : shape[1]]
    return ((x * 7 + y * 3) % 256).astype(np.uint8)


def test_filters_grid_every_kernel(tmp_path):
    path = tmp_path / "grid.png"
    fig = viz.filters_grid(photo(), save=path)
    assert len(fig.axes) == 1 + len(cl.filters.KERNELS)
    assert [ax.get_label() for ax in fig.axes] == ["input", *cl.filters.KERNELS]
    assert fig.axes[-1].get_title().endswith("(3x3)")
    sharpen = [ax for ax in fig.axes if ax.get_label() == "sharpen"][0]
    np.testing.assert_array_equal(sharpen.get_images()[0].get_array(), cl.filters.apply(photo(), "sharpen"))
    assert_png(path, fig)


def test_filters_grid_colour_and_path(tmp_path):
    rgb = np.stack([photo(), photo()[::-1], np.full((24, 32), 90, np.uint8)], axis=-1)
    file = tmp_path / "photo.png"
    Image.fromarray(rgb).save(file)
    fig = viz.filters_grid(file, ["box_blur", "log7"], ncols=2)
    assert len(fig.axes) == 3
    assert fig.axes[1].get_images()[0].get_array().shape == (24, 32, 3)
    with pytest.raises(ValueError, match="unknown kernel"):
        viz.filters_grid(rgb, ["nope"])


# ------------------------------------------------------------------ checkpoint (CLI)
def test_visualize_checkpoint(tmp_path):
    from convlens.io import save_checkpoint

    nn.init.manual_seed(0)
    model = cl.models.lenet5("modern")
    checkpoint = save_checkpoint(
        tmp_path / "run" / "checkpoint.safetensors", model, config={"mean": 0.1307, "std": 0.3081}
    )
    digit = np.full((40, 30), 255, np.uint8)
    digit[8:32, 13:17] = 0  # a dark "1" on white paper
    image = tmp_path / "one.png"
    Image.fromarray(digit).save(image)
    paths = viz.visualize_checkpoint(checkpoint.parent, image, tmp_path / "out")
    assert set(paths) == {"kernels", "feature_maps"}
    for name in ("kernels.png", "feature_maps.png"):
        data = (tmp_path / "out" / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE
        with Image.open(tmp_path / "out" / name) as picture:
            assert picture.size[0] > 100 and picture.size[1] > 100


# ------------------------------------------------------------------ optional dependency
def test_clear_error_without_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"cl.viz needs matplotlib: pip install 'convlens\[viz\]'"):
        viz.confusion_matrix(np.eye(2))
    with pytest.raises(ImportError, match="cl.viz needs matplotlib"):
        viz.convolution_steps(A_IMAGE, A_KERNEL)


def test_clear_error_without_pillow(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    message = r"convolution_animation needs Pillow: pip install 'convlens\[viz\]'"
    with pytest.raises(ImportError, match=message):
        viz.convolution_animation(B_IMAGE, B_KERNEL, path=tmp_path / "x.gif")
