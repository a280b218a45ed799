"""The segmentation U-Net against a PyTorch twin, and the training scenes drawn anew each epoch."""

from __future__ import annotations

import numpy as np
import pytest

import convlens as cl
from convlens import models, scenes, tasks

torch = pytest.importorskip("torch")
tnn = torch.nn


def _double_conv(c_in: int, c_out: int):
    return tnn.Sequential(
        tnn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        tnn.BatchNorm2d(c_out),
        tnn.ReLU(),
        tnn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        tnn.BatchNorm2d(c_out),
        tnn.ReLU(),
    )


class TorchUNet(tnn.Module):
    """The same network written with torch.nn, module for module in the same order."""

    def __init__(self, width: int, depth: int, classes: int, coarse_level: int):
        super().__init__()
        widths = [width * 2**level for level in range(depth + 1)]
        self.coarse_level = coarse_level
        self.down = tnn.ModuleList(
            _double_conv(a, b) for a, b in zip([1, *widths], widths[:-1], strict=False)
        )
        self.bottom = _double_conv(widths[-2], widths[-1])
        self.up = tnn.ModuleList(tnn.ConvTranspose2d(2 * w, w, 2, stride=2) for w in reversed(widths[:-1]))
        self.merge = tnn.ModuleList(_double_conv(2 * w, w) for w in reversed(widths[:-1]))
        self.head = tnn.Conv2d(width, classes, 1)
        if coarse_level:
            self.coarse_head = tnn.Conv2d(widths[coarse_level], classes, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = tnn.functional.max_pool2d(x, 2)
        x, coarse = self.bottom(x), 0
        levels = reversed(range(len(self.up)))
        for level, up, merge, skip in zip(levels, self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([up(x), skip], 1))
            if self.coarse_level and level == self.coarse_level:
                coarse = tnn.functional.interpolate(
                    self.coarse_head(x), scale_factor=2**level, mode="bilinear", align_corners=False
                )
        return self.head(x) + coarse


@pytest.mark.parametrize(("depth", "coarse_level"), [(2, 1), (3, 2), (3, 0), (4, 2)])
def test_unet_matches_a_torch_twin_forward_and_backward(depth, coarse_level):
    rng = np.random.default_rng(depth * 10 + coarse_level)
    cl.manual_seed(depth)
    model = models.get("unet", width=2, depth=depth, size=32, coarse_level=coarse_level).double()
    twin = TorchUNet(2, depth, 11, coarse_level).double()
    ours = model.state_dict()
    assert set(ours) >= {k for k in twin.state_dict() if not k.endswith("num_batches_tracked")}
    twin.load_state_dict({k: torch.tensor(np.asarray(ours[k])) for k in twin.state_dict()}, strict=True)
    x = rng.standard_normal((3, 1, 32, 32))
    masks = rng.integers(0, 11, (3, 32, 32))
    out = model(cl.Tensor(x, requires_grad=True))
    loss = model.loss(out, masks)
    loss.backward()
    tx = torch.tensor(x, requires_grad=True)
    tloss = tnn.functional.cross_entropy(twin(tx), torch.tensor(masks))
    tloss.backward()
    np.testing.assert_allclose(float(loss.data), tloss.item(), rtol=1e-10)
    grads = dict(twin.named_parameters())
    for name, parameter in model.named_parameters():
        np.testing.assert_allclose(
            parameter.grad, grads[name].grad.numpy(), rtol=1e-8, atol=1e-11, err_msg=name
        )


def test_coarse_level_is_checked_once_with_the_value_received():
    with pytest.raises(
        ValueError, match=r"coarse_level must be in \[0, depth - 1\].*coarse_level=3, depth=3"
    ):
        models.get("unet", depth=3, coarse_level=3)
    assert models.get("unet", depth=1).coarse_level == 0  # no level between the finest and the bottom


def test_the_priors_go_into_the_full_size_head_only():
    model = models.get("unet", width=2)
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[0, :2] = 3
    model.start_from_priors(masks)
    np.testing.assert_allclose(np.exp(model.head.bias.data[[0, 3]]), [112 / 128, 16 / 128], rtol=1e-6)
    assert not model.coarse_head.bias.data.any()


def test_fresh_scenes_are_new_every_epoch_and_the_same_on_every_run():
    config = tasks.task_config("segment", train_scenes=12, test_scenes=4, batch_size=4)
    assert config["fresh_scenes"]
    first, _ = tasks.load_task_data(config)
    again, _ = tasks.load_task_data(config)
    seen = []
    for epoch in (0, 1, 2):
        first.set_epoch(epoch)
        again.set_epoch(epoch)
        np.testing.assert_array_equal(first.scenes.images, again.scenes.images)
        seen.append(first.scenes.images)
        expected = scenes.digit_scenes("train", 12, config["seed"], epoch=epoch)
        np.testing.assert_array_equal(first.scenes.masks, expected.masks)
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])
    np.testing.assert_array_equal(seen[0], scenes.digit_scenes("train", 12, config["seed"]).images)
    fixed, _ = tasks.load_task_data({**config, "fresh_scenes": False})
    fixed.set_epoch(1)
    np.testing.assert_array_equal(fixed.scenes.images, seen[0])
