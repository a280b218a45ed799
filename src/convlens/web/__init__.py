"""``convlens serve``: a local web page that shows the network thinking and learning.

Draw a digit and see every layer's activations and the arithmetic behind any
feature-map cell; play with convolution, pooling and parameter counts; train
LeNet-5 live and draw on the model as it learns. Everything runs on this machine
with the real engine, and the page loads nothing from elsewhere.

Needs the ``web`` extra (``pip install 'convlens[web]'``). The JSON API the page
uses is described in this package's README.md.

>>> from convlens.web import create_app  # doctest: +SKIP
>>> app = create_app("runs/lenet5-mnist-5k-20250101-120000/checkpoint.safetensors")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The Starlette application (see :func:`convlens.web.app.create_app`)."""
    from .app import create_app as build

    return build(*args, **kwargs)
