"""cl.filters: the lecture's kernels, and apply() against scipy.ndimage.correlate."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import relative_error

import convlens as cl
from convlens import filters

ndimage = pytest.importorskip("scipy.ndimage")

# our padding_mode -> scipy.ndimage mode
SCIPY_MODE = {"reflect": "mirror", "replicate": "nearest", "circular": "wrap", "zeros": "constant"}


def test_image(height=48, width=64, channels=3, seed=0):
    """A real-ish photo: smooth gradients, a bright disc, hard-edged bars and sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 0.5 + 0.3 * np.sin(x / 7.0) * np.cos(y / 5.0)
    disc = ((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (height / 4) ** 2) * 0.4
    bars = ((x // 6) % 2 == 0) * (y > height * 0.7) * 0.3
    planes = [
        np.clip(base * (0.8 + 0.2 * c) + disc - bars + rng.normal(0, 0.03, (height, width)), 0, 1)
        for c in range(channels)
    ]
    return (np.stack(planes, axis=-1) * 255).astype(np.uint8)


test_image.__test__ = False  # a helper, not a test


def expected_filter(image, kernel, padding_mode, padding="same"):
    """scipy.ndimage.correlate per channel, in float64, with our 'same' centring."""
    img = image.astype(np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    # PyTorch's 'same': (k-1)//2 before; ndimage centres on k//2, so shift even kernels by -1
    origin = [(n - 1) // 2 - n // 2 for n in k.shape]
    planes = img[..., None] if img.ndim == 2 else img
    out = np.stack(
        [
            ndimage.correlate(planes[..., c], k, mode=SCIPY_MODE[padding_mode], origin=origin)
            for c in range(planes.shape[-1])
        ],
        axis=-1,
    )
    if padding == "valid":
        top, left = ((n - 1) // 2 for n in k.shape)
        out = out[top : top + img.shape[0] - k.shape[0] + 1, left : left + img.shape[1] - k.shape[1] + 1]
    out = out[..., 0] if img.ndim == 2 else out
    if image.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out


def test_kernels_have_the_lectures_exact_values():
    k = filters.KERNELS
    np.testing.assert_array_equal(k["laplacian"], [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    np.testing.assert_array_equal(
        k["log7"],
        [
            [0, 0, 1, 1, 1, 0, 0],
            [0, 1, 3, 3, 3, 1, 0],
            [1, 3, 0, -7, 0, 3, 1],
            [1, 3, -7, -24, -7, 3, 1],
            [1, 3, 0, -7, 0, 3, 1],
            [0, 1, 3, 3, 3, 1, 0],
            [0, 0, 1, 1, 1, 0, 0],
        ],
    )
    np.testing.assert_array_equal(
        k["log9"],
        [
            [0, 0, 3, 2, 2, 2, 3, 0, 0],
            [0, 2, 3, 5, 5, 5, 3, 2, 0],
            [3, 3, 5, 3, 0, 3, 5, 3, 3],
            [2, 5, 3, -12, -23, -12, 3, 5, 2],
            [2, 5, 0, -23, -40, -23, 0, 5, 2],
            [2, 5, 3, -12, -23, -12, 3, 5, 2],
            [3, 3, 5, 3, 0, 3, 5, 3, 3],
            [0, 2, 3, 5, 5, 5, 3, 2, 0],
            [0, 0, 3, 2, 2, 2, 3, 0, 0],
        ],
    )
    assert k["laplacian"].sum() == 0 and k["log7"].sum() == 0
    assert k["log9"].sum() == 4  # as printed on the slide; documented
    for name in ("laplacian", "log7", "log9"):
        np.testing.assert_array_equal(k[name], k[name].T)
        np.testing.assert_array_equal(k[name], k[name][::-1, ::-1])


def test_kernel_catalogue():
    k = filters.KERNELS
    assert set(k) == {
        "identity",
        "box_blur",
        "gaussian_blur",
        "sharpen",
        "emboss",
        "laplacian",
        "log7",
        "log9",
        "sobel_x",
        "sobel_y",
    }
    for name, kernel in k.items():
        assert kernel.dtype == np.float64 and kernel.ndim == 2, name
        assert not kernel.flags.writeable, name
    for name in ("identity", "box_blur", "gaussian_blur", "sharpen"):
        assert abs(k[name].sum() - 1) < 1e-12, name
    np.testing.assert_array_equal(k["gaussian_blur"] * 16, np.outer([1, 2, 1], [1, 2, 1]))
    np.testing.assert_array_equal(k["sobel_y"], k["sobel_x"].T)


@pytest.mark.parametrize("padding_mode", list(SCIPY_MODE))
@pytest.mark.parametrize("layout", ["gray", "rgb"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_apply_matches_scipy_ndimage(padding_mode, layout, dtype):
    image = test_image(channels=3)
    image = image[..., 0] if layout == "gray" else image
    if dtype != np.uint8:
        image = (image / 255.0).astype(dtype)
    tol = {np.uint8: 0, np.float32: 2e-6, np.float64: 1e-13}[dtype]  # uint8 is computed in float64: exact
    for name, kernel in filters.KERNELS.items():
        out = filters.apply(image, name, padding_mode=padding_mode)
        assert out.shape == image.shape and out.dtype == image.dtype
        expected = expected_filter(image, kernel, padding_mode)
        assert relative_error(out, expected) <= tol, name


def test_apply_random_kernels_even_sizes_and_valid_padding():
    rng = np.random.default_rng(1)
    worst = 0.0
    for i in range(60):
        h, w = (int(v) for v in rng.integers(5, 20, 2))
        kh, kw = (int(v) for v in rng.integers(1, min(h, w) + 1, 2))
        image = rng.random((h, w) if i % 2 else (h, w, int(rng.integers(1, 5))))
        kernel = rng.standard_normal((kh, kw))
        mode = list(SCIPY_MODE)[i % 4]
        for padding in ("same", "valid"):
            out = filters.apply(image, kernel, padding=padding, padding_mode=mode)
            expected = expected_filter(image, kernel, mode, padding)
            assert out.shape == expected.shape
            worst = max(worst, float(np.max(np.abs(out - expected))))
    assert worst < 1e-12, worst


def test_apply_is_cross_correlation_like_a_cnn_layer():
    image = test_image(channels=1)[..., 0].astype(np.float64)
    emboss = filters.KERNELS["emboss"]
    correlated = filters.apply(image, emboss, padding="valid")
    np.testing.assert_allclose(correlated, cl.signal.correlate(image, emboss, mode="valid"))
    np.testing.assert_allclose(
        filters.apply(image, emboss[::-1, ::-1], padding="valid"),
        cl.signal.convolve(image, emboss, mode="valid"),
    )
    sym = filters.KERNELS["log7"]  # symmetric: correlation == convolution
    np.testing.assert_allclose(  # log7 goes through the FFT: exact zeros come out as ~1e-13
        filters.apply(image, sym, padding="valid"), cl.signal.convolve(image, sym, "valid"), atol=1e-9
    )


def test_apply_semantics():
    image = test_image()
    np.testing.assert_array_equal(filters.apply(image, "identity"), image)
    ramp = np.tile(np.arange(10.0), (6, 1))
    assert (filters.apply(ramp, "sobel_x", padding="valid") > 0).all()  # brightness grows rightwards
    np.testing.assert_allclose(filters.apply(ramp.T, "sobel_y", padding="valid"), 8.0)
    flat = np.full((12, 12), 0.5)
    np.testing.assert_allclose(filters.apply(flat, "laplacian"), 0.0, atol=1e-15)
    np.testing.assert_allclose(filters.apply(flat, "log9"), 2.0)  # sums to 4, not 0
    assert (
        filters.apply(np.full((5, 5), 250, np.uint8), "sharpen", padding_mode="zeros")[0, 0] == 255
    )  # clipped
    assert filters.apply(np.full((5, 5), 10, np.uint8), "laplacian", padding_mode="zeros")[0, 0] == 50


def test_apply_errors():
    image = np.zeros((8, 8))
    with pytest.raises(ValueError, match="unknown kernel 'blurr'.*gaussian_blur"):
        filters.apply(image, "blurr")
    with pytest.raises(ValueError, match="2-D"):
        filters.apply(image, np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="larger than the image"):
        filters.apply(np.zeros((8, 5)), "log7")
    with pytest.raises(ValueError, match="HxW"):
        filters.apply(np.zeros(8), "sharpen")
    with pytest.raises(ValueError, match="HxW"):
        filters.apply(np.zeros((1, 8, 8, 3)), "sharpen")
    with pytest.raises(TypeError, match="uint8 or floating"):
        filters.apply(np.zeros((8, 8), np.int32), "sharpen")
    with pytest.raises(ValueError, match="padding_mode"):
        filters.apply(image, "sharpen", padding_mode="mirror")
    with pytest.raises(ValueError, match="padding must be"):
        filters.apply(image, "sharpen", padding="full")


def real_photograph():
    """Grace Hopper's portrait from matplotlib's bundled sample data (a real photograph)."""
    cbook = pytest.importorskip("matplotlib.cbook")
    pil = pytest.importorskip("PIL.Image")
    try:
        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            return np.asarray(pil.open(handle).convert("RGB"))
    except (OSError, ValueError):
        pytest.skip("matplotlib's sample photograph is not installed")


@pytest.mark.parametrize("padding_mode", list(SCIPY_MODE))
def test_every_kernel_on_a_real_photograph_matches_scipy(padding_mode):
    photo = real_photograph()[::3, ::3]  # every third pixel: the test stays fast
    for name, kernel in filters.KERNELS.items():
        for image in (photo, photo[..., 1]):
            out = filters.apply(image, name, padding_mode=padding_mode)
            np.testing.assert_array_equal(out, expected_filter(image, kernel, padding_mode), err_msg=name)


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_every_method_agrees_with_the_direct_sum(method):
    rng = np.random.default_rng(7)
    image = test_image(channels=3)
    for name, kernel in filters.KERNELS.items():
        if method == "separable" and filters._separable_factors(kernel) is None:
            with pytest.raises(ValueError, match="rank-1"):
                filters.apply(image, name, method=method)
            continue
        direct = filters.apply(image, name, method="direct").astype(int)
        # uint8 output is rounded: through the FFT a sum that is exactly k + 0.5 may land
        # a hair either side of it (Gaussian /16); no other difference is allowed
        off_by = np.abs(filters.apply(image, name, method=method).astype(int) - direct)
        assert off_by.max() <= (1 if method == "fft" else 0), name
        floats = rng.random((37, 41, 2))
        err = relative_error(
            filters.apply(floats, name, method=method), filters.apply(floats, name, method="direct")
        )
        assert err < 1e-12, (name, err)


def test_auto_method_choice():
    choose = filters._choose_method
    assert choose(filters.KERNELS["gaussian_blur"], "auto") == "separable"
    assert choose(filters.KERNELS["sobel_x"], "auto") == "separable"
    assert choose(filters.KERNELS["laplacian"], "auto") == "direct"
    assert choose(filters.KERNELS["log9"], "auto") == "fft"
    with pytest.raises(ValueError, match="method must be one of"):
        filters.apply(test_image(), "sharpen", method="winograd")
