"""The lecture's worked examples, each reproduced through the public API by name.

Example A: a 3x3 image and a 3x3 kernel (cross-correlation 13, convolution 32). Example B:
a 5x5 binary image and a 3x3 kernel (the convolved feature map). The output size of
n=5, k=3, p=1, s=2 is 3. The named kernels are the lecture's."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import to_torch, torch

import convlens as cl
from convlens import filters
from convlens import functional as F

# Example A (slide "Визуализация операции свёртки"): one output value
EXAMPLE_A_INPUT = np.array([[1, 1, 2], [2, 2, 1], [1, 5, 0]], dtype=np.float64)
EXAMPLE_A_KERNEL = np.array([[2, 3, 0], [0, 1, 3], [3, 0, 3]], dtype=np.float64)

# Example B ("Convolved Feature"): 5x5 binary image, 3x3 kernel, valid cross-correlation
EXAMPLE_B_IMAGE = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=np.float64
)
EXAMPLE_B_KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float64)
EXAMPLE_B_FEATURE = np.array([[4, 3, 4], [2, 4, 3], [2, 3, 4]], dtype=np.float64)


def as_nchw(plane):
    return plane[None, None]


def test_example_a_cross_correlation_13_convolution_32_via_signal():
    assert cl.signal.correlate(EXAMPLE_A_INPUT, EXAMPLE_A_KERNEL, mode="valid").tolist() == [[13.0]]
    assert cl.signal.convolve(EXAMPLE_A_INPUT, EXAMPLE_A_KERNEL, mode="valid").tolist() == [[32.0]]
    # "centre output": the kernel centred on the input, i.e. the middle of 'same'
    assert cl.signal.correlate(EXAMPLE_A_INPUT, EXAMPLE_A_KERNEL, mode="same")[1, 1] == 13
    assert cl.signal.convolve(EXAMPLE_A_INPUT, EXAMPLE_A_KERNEL, mode="same")[1, 1] == 32
    # integer inputs stay integer, as in SciPy
    assert (
        cl.signal.correlate(EXAMPLE_A_INPUT.astype(int), EXAMPLE_A_KERNEL.astype(int), "valid").item() == 13
    )


def test_example_a_via_conv2d_is_cross_correlation():
    x, w = as_nchw(EXAMPLE_A_INPUT), as_nchw(EXAMPLE_A_KERNEL)
    out = F.conv2d(x, w)
    assert isinstance(out, cl.Tensor) and out.shape == (1, 1, 1, 1)
    assert out.item() == 13.0  # a CNN layer computes cross-correlation...
    assert F.conv2d(x, w[..., ::-1, ::-1].copy()).item() == 32.0  # ...true convolution needs the flip
    assert F.conv2d(x, w, padding=1).data[0, 0, 1, 1] == 13.0  # centred, with padding 1
    assert F.conv2d(x.astype(np.float32), w.astype(np.float32)).item() == 13.0


def test_example_b_convolved_feature_via_conv2d():
    out = F.conv2d(as_nchw(EXAMPLE_B_IMAGE), as_nchw(EXAMPLE_B_KERNEL))
    np.testing.assert_array_equal(out.data[0, 0], EXAMPLE_B_FEATURE)
    expected = torch.nn.functional.conv2d(
        to_torch(as_nchw(EXAMPLE_B_IMAGE)), to_torch(as_nchw(EXAMPLE_B_KERNEL))
    )
    np.testing.assert_array_equal(out.data, expected.numpy())


def test_example_b_via_signal_and_filters():
    np.testing.assert_array_equal(
        cl.signal.correlate(EXAMPLE_B_IMAGE, EXAMPLE_B_KERNEL, "valid"), EXAMPLE_B_FEATURE
    )
    # this kernel is symmetric, so true convolution agrees here
    np.testing.assert_array_equal(
        cl.signal.convolve(EXAMPLE_B_IMAGE, EXAMPLE_B_KERNEL, "valid"), EXAMPLE_B_FEATURE
    )
    np.testing.assert_array_equal(
        filters.apply(EXAMPLE_B_IMAGE, EXAMPLE_B_KERNEL, padding="valid"), EXAMPLE_B_FEATURE
    )
    as_uint8 = filters.apply((EXAMPLE_B_IMAGE * 10).astype(np.uint8), EXAMPLE_B_KERNEL, padding="valid")
    np.testing.assert_array_equal(as_uint8, EXAMPLE_B_FEATURE * 10)


def test_output_size_example_5_3_p1_s2_gives_3():
    assert cl.signal.output_size(5, 3, padding=1, stride=2) == 3
    out = F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=1, stride=2)
    assert out.shape == (1, 1, 3, 3)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1, 3, 3))
    expected = torch.nn.functional.conv2d(to_torch(x), to_torch(w), padding=1, stride=2)
    np.testing.assert_allclose(
        F.conv2d(x, w, padding=1, stride=2).data, expected.numpy(), rtol=1e-12, atol=1e-12
    )


def test_lecture_kernels_by_name():
    laplacian = [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]
    np.testing.assert_array_equal(filters.KERNELS["laplacian"], laplacian)
    assert filters.KERNELS["log7"].shape == (7, 7) and filters.KERNELS["log7"][3, 3] == -24
    assert filters.KERNELS["log7"].sum() == 0
    assert filters.KERNELS["log9"].shape == (9, 9) and filters.KERNELS["log9"][4, 4] == -40
    assert filters.KERNELS["log9"].sum() == 4  # the slide's 9x9 LoG does not sum to 0


@pytest.mark.parametrize("name", ["laplacian", "log7", "log9", "sobel_x", "emboss"])
def test_lecture_kernels_as_a_conv_layer_equal_the_filter(name):
    """A photo-editor filter is one plane of a convolutional layer with fixed weights."""
    rng = np.random.default_rng(1)
    image = rng.random((20, 24))
    kernel = filters.KERNELS[name]
    by_layer = F.conv2d(as_nchw(image), as_nchw(np.array(kernel))).data[0, 0]
    np.testing.assert_allclose(filters.apply(image, name, padding="valid"), by_layer, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cl.signal.correlate(image, kernel, "valid"), by_layer, rtol=1e-12, atol=1e-12)


def test_lenet_scaled_tanh():
    """1.7159 * tanh(2/3 * a): f(+-1) = +-1, as LeCun et al. 1998 chose."""
    out = F.scaled_tanh(np.array([-1.0, 0.0, 1.0])).data
    np.testing.assert_allclose(out, [-1.0, 0.0, 1.0], atol=2e-4)
    np.testing.assert_allclose(F.scaled_tanh(np.array([0.7])).data, 1.7159 * np.tanh(2 / 3 * 0.7), rtol=1e-15)
