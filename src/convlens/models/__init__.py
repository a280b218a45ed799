"""Ready-made models: LeNet-5 (modern and as published), the lecture's two networks, and the
other tasks' models: ``wavenet`` and ``logmel_cnn`` (spoken digits), ``unet`` (segmentation).

Each model has an ``input_shape`` attribute (batch excluded): (1, 28, 28) for the
modern LeNet-5, (1, 32, 32) for the classic one (the data pipeline pads MNIST's
28x28 digits by 2 on each side to fit it), (1, 100, 100) for the lecture's networks.

Training loops call ``model.loss(output, target)`` when the model defines it (the
classic LeNet-5's MAP criterion) and ``F.cross_entropy`` otherwise; every model's
output is a score per class whose argmax is the prediction.

>>> from convlens import models, summary
>>> summary(models.get("lenet5"), (1, 28, 28)).total_params
61706
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn.module import factory_names, model_factory, register_factory
from .lecture import lecture_cnn, lecture_mlp, lenet5_modern
from .lenet import C3_CONNECTIONS, DIGIT_BITMAPS, EuclideanRBF, LeNet5Classic, PartialConv2d, Subsampling2d
from .spectro import LogMelCNN, logmel_cnn
from .unet import UNet, unet
from .wavenet import WaveNetClassifier, wavenet

__all__ = [
    "C3_CONNECTIONS",
    "DIGIT_BITMAPS",
    "EuclideanRBF",
    "LeNet5Classic",
    "LogMelCNN",
    "PartialConv2d",
    "Subsampling2d",
    "UNet",
    "WaveNetClassifier",
    "available",
    "get",
    "lecture_cnn",
    "lecture_mlp",
    "lenet5",
    "logmel_cnn",
    "unet",
    "wavenet",
]


def lenet5(variant: str = "modern", num_classes: int = 10) -> nn.Module:
    """LeNet-5. ``variant="modern"``: ReLU, max pooling, full C3, 1x28x28 input,
    61,706 parameters (``lenet5_modern``). ``variant="classic"``: LeCun et al. 1998
    as published, 1x32x32 input, scaled tanh, trainable subsampling, partial C3,
    RBF output with the MAP loss (``LeNet5Classic``).
    """
    if variant == "modern":
        return lenet5_modern(num_classes)
    if variant == "classic":
        model = LeNet5Classic(num_classes)
        model._factory = ("lenet5", {"variant": "classic", "num_classes": num_classes})
        return model
    raise ValueError(f"lenet5: variant must be 'modern' or 'classic'. Received: variant={variant!r}")


def _lenet5_classic(num_classes: int = 10) -> nn.Module:
    return lenet5("classic", num_classes)


# Registered with nn, so a checkpoint naming a factory is rebuilt without nn importing this package.
register_factory("lenet5", lenet5)
register_factory("lenet5_classic", _lenet5_classic)
register_factory("lecture_cnn", lecture_cnn)
register_factory("lecture_mlp", lecture_mlp)
register_factory("wavenet", wavenet)
register_factory("logmel_cnn", logmel_cnn)
register_factory("unet", unet)


def available() -> list[str]:
    """Names ``get`` accepts (``-`` and ``_`` are interchangeable)."""
    return factory_names()


def get(name: str, **kwargs: Any) -> nn.Module:
    """Build a model by name: "lenet5", "lenet5-classic", "lecture_cnn", "lecture_mlp".

    >>> get("lenet5-classic").input_shape
    (1, 32, 32)
    """
    try:
        factory = model_factory(name)
    except ValueError:
        raise ValueError(
            f"models.get: unknown model; available: {', '.join(available())}. Received: name={name!r}"
        ) from None
    return factory(**kwargs)
