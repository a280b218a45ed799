"""The lecture's two networks for a 100x100 image (a CNN and a fully connected one), and
the modern LeNet-5."""

from __future__ import annotations

from collections import OrderedDict

from .. import nn

__all__ = ["lecture_cnn", "lecture_mlp", "lenet5_modern"]


def _named(
    factory: str, kwargs: dict, input_shape: tuple[int, ...], layers: OrderedDict[str, nn.Module]
) -> nn.Sequential:
    """A Sequential that remembers the factory that made it (for checkpoints) and its input shape."""
    model = nn.Sequential(layers)
    model._factory = (factory, dict(kwargs))
    model.input_shape = input_shape
    return model


def lenet5_modern(num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 as it is built today: 1x28x28 input, ReLU, max pooling, full C3, linear output.

    conv1 Conv2d(1, 6, 5, padding=2) 156 -> relu -> pool 2x2 -> conv2 Conv2d(6, 16, 5) 2,416
    -> relu -> pool 2x2 -> flatten 400 -> fc1 120 (48,120) -> relu -> fc2 84 (10,164) -> relu
    -> fc3 10 (850): 61,706 parameters. The output are logits for ``F.cross_entropy``.
    ``state_dict`` keys equal those of the same ``torch.nn.Sequential(OrderedDict(...))``.
    """
    layers = OrderedDict(
        conv1=nn.Conv2d(1, 6, 5, padding=2),
        relu1=nn.ReLU(),
        pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(6, 16, 5),
        relu2=nn.ReLU(),
        pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(),
        fc1=nn.Linear(16 * 5 * 5, 120),
        relu3=nn.ReLU(),
        fc2=nn.Linear(120, 84),
        relu4=nn.ReLU(),
        fc3=nn.Linear(84, num_classes),
    )
    return _named("lenet5", {"variant": "modern", "num_classes": num_classes}, (1, 28, 28), layers)


def lecture_cnn(num_classes: int = 10) -> nn.Sequential:
    """The lecture's CNN for a 1x100x100 image: three blocks of
    conv 5x5 'same' (100 planes) + ReLU + max-pool 2 (100 -> 50 -> 25 -> 12),
    then a fully connected layer 12*12*100 -> 10.

    Parameters: 5*5*1*100 + 5*5*100*100 + 5*5*100*100 + 12*12*100*10 = 646,500
    weights, plus 310 biases = 646,810 (the slide's "about 650K").
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, channels in enumerate((1, 100, 100), start=1):
        layers[f"conv{i}"] = nn.Conv2d(channels, 100, 5, padding="same")
        layers[f"relu{i}"] = nn.ReLU()
        layers[f"pool{i}"] = nn.MaxPool2d(2)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(12 * 12 * 100, num_classes)
    return _named("lecture_cnn", {"num_classes": num_classes}, (1, 100, 100), layers)


def lecture_mlp(num_classes: int = 10) -> nn.Sequential:
    """The lecture's fully connected network for a 1x100x100 image:
    10000 -> 100 -> 100 -> 100 -> 10 with ReLU.

    Parameters: 10000*100 + 100*100 + 100*100 + 100*10 = 1,021,000 weights,
    plus 310 biases = 1,021,310 (the slide's "about 1M").
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    sizes = (100 * 100, 100, 100, 100)
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False), start=1):
        layers[f"fc{i}"] = nn.Linear(n_in, n_out)
        layers[f"relu{i}"] = nn.ReLU()
    layers["fc4"] = nn.Linear(100, num_classes)
    return _named("lecture_mlp", {"num_classes": num_classes}, (1, 100, 100), layers)
