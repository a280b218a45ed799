"""convlens.summary: rows, totals, the table, shape validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import convlens as cl
from convlens import models, nn
from convlens.summary import summary


def test_modern_lenet_summary():
    s = summary(models.lenet5(), (1, 28, 28))
    assert s.total_params == s.trainable_params == 61_706
    assert [r.name for r in s.rows][:3] == ["conv1", "relu1", "pool1"]
    by_name = {r.name: r for r in s.rows}
    assert by_name["conv1"].output_shape == (6, 28, 28) and by_name["conv1"].params == 156
    assert by_name["flatten"].output_shape == (400,)
    assert by_name["fc1"].params == 48_120 and by_name["fc3"].output_shape == (10,)
    assert s.param_bytes == 61_706 * 4
    assert s.activation_bytes == 4 * sum(math.prod(r.output_shape) for r in s.rows)
    text = str(s)
    for piece in (
        "Layer (type)",
        "Output Shape",
        "Param #",
        "conv1 (Conv2d)",
        "[6, 28, 28]",
        "48,120",
        "Total params: 61,706",
        "Trainable params: 61,706",
    ):
        assert piece in text, piece


def test_classic_lenet_summary_has_the_papers_counts():
    s = summary(models.lenet5("classic"), "1x32x32")
    params = {r.name: r.params for r in s.rows if r.params}
    assert params == {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164}
    assert s.rows[-1].name == "output" and s.rows[-1].params == 0 and s.rows[-1].output_shape == (10,)
    assert "1,516" in str(s)


@pytest.mark.parametrize("name,total", [("lecture_cnn", 646_810), ("lecture_mlp", 1_021_310)])
def test_lecture_summaries(name, total):
    s = summary(models.get(name), (1, 100, 100))
    assert s.total_params == total
    assert f"{total:,}" in str(s)


def test_nested_sequential_rows_use_dotted_names():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    s = summary(model, [1, 8, 8])
    assert [r.name for r in s.rows] == ["0.0", "0.1", "1", "2"]
    assert [r.kind for r in s.rows] == ["Conv2d", "ReLU", "Flatten", "Linear"]


def test_mismatched_input_names_the_layer():
    with pytest.raises(ValueError, match=r"layer 'fc1' \(Linear\)"):
        summary(models.lenet5(), (1, 32, 32))
    with pytest.raises(ValueError, match=r"layer 'conv1' \(Conv2d\).*channels"):
        summary(models.lenet5(), (3, 28, 28))
    with pytest.raises(ValueError, match="input_shape"):
        summary(models.lenet5(), "1 by 28")


def test_custom_module_is_traced():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 2)

        def forward(self, x):
            return self.fc(self.conv(x).relu().reshape(x.shape[0], -1))

    net = Net()
    s = summary(net, (1, 8, 8))
    assert [(r.name, r.output_shape, r.params) for r in s.rows] == [
        ("conv", (4, 6, 6), 40),
        ("fc", (2,), 290),
    ]
    assert net.training and s.total_params == 330


def test_non_trainable_parameters_are_counted_apart():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)
    s = summary(model, (3,))
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (11, 3, 8)
    assert np.isclose(s.input_bytes, 12)
    assert cl.summary is summary or callable(cl.summary)
