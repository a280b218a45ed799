"""``Sequential``: modules applied one after another, as ``torch.nn.Sequential``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from .module import Module, Shape

__all__ = ["Sequential"]


class Sequential(Module):
    """Apply modules in order. Children are named ``"0"``, ``"1"``, ... or, when built
    from an ``OrderedDict``, by its keys (the names then prefix the state_dict keys).
    ``nn.fuse(model)`` replaces Conv2d -> ReLU -> MaxPool2d blocks by one fused op.

    >>> from collections import OrderedDict
    >>> from convlens import nn
    >>> net = nn.Sequential(OrderedDict(fc=nn.Linear(4, 2), act=nn.ReLU()))
    >>> list(net.state_dict())
    ['fc.weight', 'fc.bias']
    >>> net.output_shape((4,))
    (2,)
    """

    def __init__(self, *modules: Module | OrderedDict[str, Module]):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, _check_module(module, name))
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), _check_module(module, str(index)))

    def forward(self, input: Any) -> Any:  # noqa: A002 - PyTorch's name
        for module in self._modules.values():
            input = module(input)  # noqa: A001
        return input

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        for module in self._modules.values():
            shape = module.output_shape(shape)
        return shape

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), _check_module(module, str(len(self))))
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"Sequential: index {index} is out of range for {len(items)} modules")
        return items[index][1]

    def get_config(self) -> dict[str, Any]:
        """Plain Sequentials are described by their children (so ``append`` is kept);
        subclasses and factory-made models by their constructor or factory."""
        if type(self) is not Sequential or "_factory" in self.__dict__:
            return super().get_config()
        return {
            "class": "Sequential",
            "modules": [[name, child.get_config()] for name, child in self._modules.items()],
        }


def _check_module(module: Any, name: str) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"Sequential: item {name} is not a Module. Received: {type(module).__name__}")
    return module
