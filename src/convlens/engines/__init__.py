"""The fast engines, one file each, beside the readable reference engines of ``functional/``.

An engine is one way to compute an op family; each file holds an engine's forward,
backward and saved state, says where it applies (``why_not``) and where the automatic
choice takes it (``suits``), and registers itself with ``convlens.backend``. The import
order below is the order of preference: ``backend.choose`` takes the first engine that
the backend allows, that applies and that suits, and falls back on the reference.

Convolution (family ``"conv"``): ``fft`` (large kernels, stride 1), ``direct`` (numba,
1-3 input channels, stride 1), ``batch-inner`` (few channels, short output rows), then
``tap-major`` (few channels per group) or ``channel-minor`` (many). The fused LeNet block
Conv2d -> ReLU -> MaxPool2d is in ``fused``; pooling's compiled 2x2 tiles in
``pool_tiles``. Thresholds are in ``tuning.TUNING``; docs/performance.md says how each
engine wins and docs/CONTRIBUTING.md how to add one.

The backend imports this package on its first choice (``functional/`` never imports it).
"""

import importlib
import importlib.util

# In order of preference within each family (registration order is preference order).
ENGINE_MODULES = ("fft", "direct", "batch_inner", "tap_major", "channel_minor", "fused", "pool_tiles")

for _module in ENGINE_MODULES:
    if importlib.util.find_spec(f"{__name__}.{_module}") is not None:
        importlib.import_module(f"{__name__}.{_module}")
