"""``nn.fuse``: run LeNet's Conv2d -> ReLU -> MaxPool2d block as one op, like PyTorch's ``fuse_modules``.

Fusing is an explicit step on a built model. It changes how the model computes,
never what: values and gradients stay those of the modules one after the other.
"""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .activation import ReLU
from .container import Sequential
from .conv import Conv2d
from .linear import Identity
from .module import Module, Shape
from .pool import MaxPool2d

__all__ = ["ConvReLUMaxPool2d", "FusedAway", "ReLUMaxPool2d", "fuse", "fused_blocks", "unfuse"]


def fuse(model: Module) -> Module:
    """Fuse, in place, the blocks of every ``Sequential`` in ``model`` (recursively); returns ``model``.

    - ``Conv2d -> ReLU -> MaxPool2d(2)`` (2x2 windows at stride 2, no padding, dilation
      or ceil_mode) becomes one :class:`ConvReLUMaxPool2d`: with numba, where the
      convolution runs on the direct or the batch-inner engine, the pooling happens as
      the convolution's output is computed (``engines/fused.py``);
    - any other ``ReLU -> MaxPool2d`` becomes one :class:`ReLUMaxPool2d`, which runs
      the ReLU on the smaller pooled tensor (``F.relu_max_pool2d``).

    Only modules of exactly those classes are fused, and only when none of them has a
    forward hook (a hook must see the output of its own module). The fused module
    takes the first module's place and name and holds its very ``weight`` and ``bias``
    Parameters; the others become :class:`FusedAway` (an ``nn.Identity``). So
    ``state_dict`` keys, ``parameters()``, an optimizer built before or after fusing,
    and ``get_config`` (which describes the unfused model) are unchanged; a checkpoint
    of a fused model loads into an unfused one. Hooks registered after fusing see the
    fused module's output. Fusing twice changes nothing.

    Differences from PyTorch's ``torch.ao.quantization.fuse_modules``: the blocks are
    found, not listed, and the model is changed in place.

    >>> from convlens import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    >>> fused = nn.fuse(model)
    >>> nn.fused_blocks(fused), list(fused.state_dict())
    (['0'], ['0.weight', '0.bias'])
    >>> fused[1]
    FusedAway(ReLU())
    """
    for module in list(model.modules()):
        if isinstance(module, Sequential):
            _fuse_children(module)
    return model


def fused_blocks(model: Module) -> list[str]:
    """The names of the fused modules in ``model`` (``nn.fuse`` made them), in order."""
    return [name for name, m in model.named_modules() if isinstance(m, ConvReLUMaxPool2d | ReLUMaxPool2d)]


def unfuse(model: Module) -> Module:
    """Undo :func:`fuse` in place: every fused module gives back the modules it replaced
    (the very same objects, so the Parameters are those of the fused model); returns ``model``.

    >>> from convlens import nn
    >>> model = nn.fuse(nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2)))
    >>> [type(m).__name__ for m in nn.unfuse(model)]
    ['Conv2d', 'ReLU', 'MaxPool2d']
    """
    for module in list(model.modules()):
        if isinstance(module, Sequential):
            for name, child in list(module._modules.items()):
                if isinstance(child, ConvReLUMaxPool2d | ReLUMaxPool2d):
                    module.add_module(name, child.unfused[0])
                elif isinstance(child, FusedAway):
                    module.add_module(name, child.original)
    return model


def _fuse_children(sequential: Sequential) -> None:
    names = list(sequential._modules)
    i = 0
    while i < len(names):
        block = [sequential._modules[name] for name in names[i : i + 3]]
        if _is_conv_block(block):
            conv, relu, pool = block
            fused: list[Module] = [ConvReLUMaxPool2d(conv, relu, pool), FusedAway(relu), FusedAway(pool)]
        elif _is_relu_block(block[:2]):
            relu, pool = block[:2]
            fused = [ReLUMaxPool2d(relu, pool), FusedAway(pool)]
        else:
            i += 1
            continue
        for name, module in zip(names[i : i + len(fused)], fused, strict=True):
            sequential.add_module(name, module)  # same name, same place in the order
        i += len(fused)


def _unhooked(block: list[Any]) -> bool:
    return not any(module._forward_hooks for module in block)


def _is_conv_block(block: list[Any]) -> bool:
    kinds = tuple(type(m) for m in block)
    return kinds == (Conv2d, ReLU, MaxPool2d) and _unhooked(block) and _is_2x2_tiles(block[2])


def _is_relu_block(block: list[Any]) -> bool:
    return tuple(type(m) for m in block) == (ReLU, MaxPool2d) and _unhooked(block)


def _is_2x2_tiles(pool: MaxPool2d) -> bool:
    """Plain 2x2 windows at stride 2: what the fused convolution engines pool."""

    def pair(value: Any) -> tuple:
        return tuple(value) if isinstance(value, tuple | list) else (value, value)

    return (
        pair(pool.kernel_size) == pair(pool.stride) == (2, 2)
        and pair(pool.padding) == (0, 0)
        and pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
    )


class ConvReLUMaxPool2d(Module):
    """``MaxPool2d(2)(ReLU()(conv(x)))`` as one op (``conv2d_relu_max_pool2d``); made by :func:`fuse`.

    Holds the convolution's own ``weight`` and ``bias`` Parameters (the same objects) and
    describes itself by the convolution's config, so ``state_dict``, optimizers and
    checkpoints see the convolution. Output ``(N, C_out, H_out // 2, W_out // 2)``.
    """

    def __init__(self, conv: Conv2d, relu: ReLU, pool: MaxPool2d):
        super().__init__()
        self.weight = conv.weight
        self.bias = conv.bias
        self.__dict__["unfused"] = (conv, relu, pool)  # not children: no state_dict keys of their own

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        from ..engines.fused import conv2d_relu_max_pool2d  # the engines load on first use

        conv = self.unfused[0]
        args = (conv.stride, conv.padding, conv.dilation, conv.groups, conv.padding_mode)
        return conv2d_relu_max_pool2d(input, self.weight, self.bias, *args)

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        for module in self.unfused:
            shape = module.output_shape(shape)
        return shape

    def get_config(self) -> dict[str, Any]:
        return self.unfused[0].get_config()

    def extra_repr(self) -> str:
        return f"{self.unfused[0].extra_repr()}, then ReLU and MaxPool2d(2)"


class ReLUMaxPool2d(Module):
    """``pool(relu(x))`` as ``relu(pool(x))`` in one op (``F.relu_max_pool2d``); made by :func:`fuse`."""

    def __init__(self, relu: ReLU, pool: MaxPool2d):
        super().__init__()
        self.__dict__["unfused"] = (relu, pool)

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        pool = self.unfused[1]
        return F.relu_max_pool2d(
            input, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode
        )

    def output_shape(self, input_shape: Shape) -> Shape:
        return self.unfused[1].output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return self.unfused[0].get_config()

    def extra_repr(self) -> str:
        return f"then MaxPool2d({self.unfused[1].extra_repr()})"


class FusedAway(Identity):
    """Stands where a module was fused into the module before it: returns its input unchanged.

    Keeps the module it replaces (``original``) for ``get_config`` and ``repr``.
    """

    def __init__(self, original: Module):
        super().__init__()
        self.__dict__["original"] = original

    def get_config(self) -> dict[str, Any]:
        return self.original.get_config()

    def extra_repr(self) -> str:
        return repr(self.original)
