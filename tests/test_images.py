"""convlens.images: reading pictures (paths, bytes, file objects), MNIST-like digits,
normalisation, and what `convlens predict` feeds the model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import convlens as cl
from convlens import images


@pytest.fixture(scope="module")
def digits():
    test = cl.data.load_dataset("mnist-5k", split="test")
    return test.images[:8], test.labels[:8]


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_mnist_like_preprocessing_reproduces_mnist(digits):
    correlations = []
    for digit in digits[0]:
        for variant in (digit, 255 - digit, np.kron(digit, np.ones((4, 4), np.uint8))):
            processed = images.mnist_like(variant.astype(np.float32))
            assert processed.shape == (28, 28) and processed.min() >= 0 and processed.max() <= 1
            rows, cols = np.nonzero(processed > 0.1)
            assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21
            correlations.append(np.corrcoef(processed.ravel(), digit.ravel().astype(np.float64))[0, 1])
    # MNIST digits are already in this form: the result is (nearly) the original digit; a
    # centre of mass on a rounding boundary may move it by one pixel
    assert min(correlations) > 0.75 and np.mean(correlations) > 0.95


def test_mnist_like_centres_the_mass_and_fits_the_box():
    rng = np.random.default_rng(3)
    for _ in range(20):
        h, w = rng.integers(30, 120, size=2)
        gray = np.zeros((h, w), np.float32)
        top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
        gray[top : top + h // 3, left : left + w // 4] = rng.uniform(100, 255)
        digit = images.mnist_like(gray)
        ys, xs = np.indices(digit.shape)
        centre = (ys * digit).sum() / digit.sum(), (xs * digit).sum() / digit.sum()
        np.testing.assert_allclose(centre, (14, 14), atol=1.0)
        rows, cols = np.nonzero(digit > 0.1)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21
        assert digit.max() == pytest.approx(1.0, abs=0.1)


def test_blank_and_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match=r"mnist_like: the image is blank \(no ink found\)\. Received:"):
        images.mnist_like(np.full((30, 30), 255.0))
    with pytest.raises(ValueError, match="mnist_like: gray must be a non-empty 2-D image"):
        images.mnist_like(np.zeros((3, 4, 5)))


def test_read_gray_takes_paths_bytes_and_file_objects(tmp_path, digits):
    digit = digits[0][0]
    payload = _png(digit)
    path = tmp_path / "digit.png"
    path.write_bytes(payload)
    for source in (path, str(path), payload, io.BytesIO(payload)):
        gray = images.read_gray(source)
        assert gray.dtype == np.float32
        np.testing.assert_array_equal(gray, digit.astype(np.float32))


def test_transparency_shows_white():
    rgba = np.zeros((6, 5, 4), np.uint8)
    rgba[..., :3] = 10  # dark ink ...
    rgba[2:4, 1:3, 3] = 255  # ... opaque only in the middle
    gray = images.read_gray(_png(rgba, "RGBA"))
    expected = np.full((6, 5), 255.0, np.float32)
    expected[2:4, 1:3] = 10
    np.testing.assert_array_equal(gray, expected)
    np.testing.assert_array_equal(images.read_pixels(_png(rgba, "RGBA"))[..., 0], expected)


def test_read_pixels_keeps_gray_gray_and_colour_colour():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert images.read_pixels(_png(gray)).shape == (3, 4)
    rgb = np.zeros((3, 4, 3), np.uint8) + np.array([1, 2, 3], np.uint8)
    np.testing.assert_array_equal(images.read_pixels(_png(rgb)), rgb)


def test_undecodable_and_oversized_images_name_the_file(tmp_path, monkeypatch):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    for read in (images.read_gray, images.read_pixels, images.prepare_digit):
        with pytest.raises(
            ValueError, match=r"cannot read image, Pillow cannot decode it .*bad\.png"
        ) as info:
            read(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"read_gray: cannot read image.*<16 bytes>"):
        images.read_gray(b"not a png at all")
    big = tmp_path / "big.png"
    big.write_bytes(_png(np.zeros((64, 64), np.uint8)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4,096 pixels: over twice the limit
    with pytest.raises(ValueError, match=r"more pixels than Pillow accepts.*big\.png"):
        images.read_gray(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # between the limit and twice it
    with pytest.raises(ValueError, match=r"more pixels than Pillow accepts.*big\.png"):
        images.read_gray(big)
    with pytest.raises(FileNotFoundError, match="image not found"):
        images.read_gray(tmp_path / "missing.png")


def test_prepare_digit_is_mnist_like_of_read_gray(tmp_path, digits):
    picture = np.kron(255 - digits[0][1], np.ones((3, 3), np.uint8))  # dark on light, 84x84
    payload = _png(picture)
    expected = images.mnist_like(picture.astype(np.float32))
    np.testing.assert_array_equal(images.prepare_digit(payload), expected)
    assert images.prepare_digit(payload, size=56).shape == (56, 56)


def test_normalize_and_model_input(tmp_path, digits):
    batch = np.random.default_rng(0).random((2, 1, 5, 6)).astype(np.float32)
    out = images.normalize(batch, 0.25, 0.5, pad=2)
    assert out.shape == (2, 1, 9, 10) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :, 2:-2, 2:-2], (batch - 0.25) / 0.5, rtol=1e-6)
    assert np.all(out[:, :, :2] == np.float32(-0.5))  # the background, normalised
    per_channel = images.normalize(np.ones((1, 3, 2, 2)), [0.0, 0.5, 1.0], [1.0, 0.5, 2.0])
    np.testing.assert_allclose(per_channel[0, :, 0, 0], [1.0, 1.0, 0.0])

    path = tmp_path / "d.png"
    Image.fromarray(digits[0][0]).save(path)
    digit = images.prepare_digit(path)
    mean, std = images.NORMALIZATION["mnist"]
    np.testing.assert_allclose(images.model_input([path])[0, 0], (digit - mean) / std, rtol=1e-6)
    classic = images.model_input([path, path], (1, 32, 32), mean=0.1, std=0.2)
    assert classic.shape == (2, 1, 32, 32)
    np.testing.assert_allclose(classic[0, 0, 2:-2, 2:-2], (digit - 0.1) / 0.2, rtol=1e-6)
    colour = images.model_input([path], (3, 16, 16))
    assert colour.shape == (1, 3, 16, 16) and colour.min() >= 0 and colour.max() <= 1


def test_normalization_constants_are_defined_once():
    assert images.normalization("mnist") == (images.MNIST_MEAN, images.MNIST_STD) == (0.1307, 0.3081)
    assert images.normalization("mnist-5k") == images.normalization("mnist")
    assert images.normalization("fashion-mnist") == (0.2860, 0.3530)
    assert images.normalization("something else") == (0.5, 0.5)


def test_light_ink_on_a_transparent_canvas_stays_visible():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[8:32, 18:23] = (255, 255, 255, 255)  # white ink, the rest fully transparent
    dark = rgba.copy()
    dark[8:32, 18:23] = (0, 0, 0, 255)
    white_ink, dark_ink = images.read_gray(_png(rgba, "RGBA")), images.read_gray(_png(dark, "RGBA"))
    assert white_ink[0, 0] == 0 and white_ink[10, 20] == 255  # black behind white ink
    assert dark_ink[0, 0] == 255 and dark_ink[10, 20] == 0  # white behind dark ink
    np.testing.assert_array_equal(
        images.prepare_digit(_png(rgba, "RGBA")), images.prepare_digit(_png(dark, "RGBA"))
    )
