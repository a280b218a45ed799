"""``Module`` and ``Parameter``: the stateful layer API, as ``torch.nn.Module``.

A module keeps its parameters, buffers and sub-modules in three ordered
registries filled by attribute assignment (``self.conv1 = Conv2d(...)``), so
``named_parameters()`` and ``state_dict()`` give PyTorch's names and order:
a module's own parameters, then its own buffers, then each child's, depth first.

Two additions over PyTorch:

* ``output_shape(input_shape)`` infers the output shape (batch dimension
  excluded) without data, so ``convlens.summary`` needs no forward pass;
* ``get_config()`` / ``from_config(cfg)`` describe and rebuild the architecture
  as JSON (checkpoints store it next to the weights). Constructor arguments are
  recorded automatically when a ``Module`` subclass is instantiated.

Two registries make ``from_config`` work without importing the code that defined a
module: every ``Module`` subclass registers its class by name when it is defined, and
a model factory (a function building a whole model, such as ``convlens.models.lenet5``)
registers itself with :func:`register_factory`. ``convlens.models`` fills the second at
import, so this package never imports the models.
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..tensor import Tensor

__all__ = ["Module", "Parameter", "factory_names", "from_config", "model_factory", "register_factory"]

Shape = tuple[int, ...]

# Every Module subclass by class name: ``from_config`` rebuilds from it.
_REGISTRY: dict[str, type[Module]] = {}
# Model factories by name, filled by ``register_factory`` (``convlens.models`` registers its own).
_FACTORIES: dict[str, Callable[..., Module]] = {}


def _factory_key(name: str) -> str:
    return name.lower().replace("-", "_")


def register_factory(name: str, factory: Callable[..., Module]) -> Callable[..., Module]:
    """Make ``factory(**kwargs) -> Module`` rebuildable by name: ``from_config`` and
    ``convlens.models.get`` find it. A model it builds records ``(name, kwargs)`` in its
    ``_factory`` attribute so ``get_config`` describes it by them. Returns ``factory``.
    """
    _FACTORIES[_factory_key(name)] = factory
    return factory


def factory_names() -> list[str]:
    """The registered model factory names, sorted (``-`` and ``_`` are interchangeable)."""
    return sorted(_FACTORIES)


def model_factory(name: str) -> Callable[..., Module]:
    """The factory registered as ``name`` (``-`` and ``_`` alike)."""
    key = _factory_key(name)
    if key not in _FACTORIES:
        raise ValueError(
            f"model_factory: unknown model {name!r}; available: {', '.join(factory_names())}. "
            f"Received: name={name!r}"
        )
    return _FACTORIES[key]


class Parameter(Tensor):
    """A tensor that is a module parameter: ``requires_grad=True`` and listed by ``parameters()``.

    >>> import numpy as np
    >>> p = Parameter(np.zeros(3, dtype=np.float32))
    >>> p.requires_grad
    True
    """

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: dict[int, Callable], key: int):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign parameters, buffers
    (``register_buffer``) and sub-modules as attributes, and define ``forward``.
    """

    training: bool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_init(cls.__dict__["__init__"])

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # -- registration -----------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes. "
                f"Received: {name}={type(value).__name__}"
            )
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry and not _belongs(registry, self, name, value):
                del registry[name]
        if isinstance(value, Parameter) or (value is None and name in self._parameters):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            value = None if value is None else _as_buffer(value)
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Any) -> None:
        """Keep ``value`` (an array/tensor, or None) as state that is saved but not trained,
        e.g. BatchNorm's ``running_mean``."""
        self._buffers[name] = None if value is None else _as_buffer(value)
        object.__setattr__(self, name, self._buffers[name])

    def register_parameter(self, name: str, value: Parameter | None) -> None:
        self._parameters[name] = value
        object.__setattr__(self, name, value)

    def add_module(self, name: str, module: Module | None) -> None:
        self._modules[name] = module
        object.__setattr__(self, name, module)

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward; a non-None
        return value replaces the output (PyTorch's rule)."""
        key = id(hook) ^ len(self._forward_hooks)
        while key in self._forward_hooks:
            key += 1
        self._forward_hooks[key] = hook
        return RemovableHandle(self._forward_hooks, key)

    # -- forward ------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        output = self.forward(*args, **kwargs)
        if not self._forward_hooks:
            return output
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, output)
            if replaced is not None:
                output = replaced
        return output

    def output_shape(self, input_shape: Shape) -> Shape:
        """Shape of the output for an input of ``input_shape`` (batch dimension excluded).

        Raises ValueError, naming the layer, when the input does not fit.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define output_shape()")

    # -- traversal ------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "", _seen: set[int] | None = None) -> Iterator[tuple[str, Module]]:
        """This module, then every descendant, depth first, with dotted names."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def _named_members(self, registry: str) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """``(dotted_name, parameter)`` pairs in PyTorch's order; shared parameters once."""
        return self._named_members("_parameters")

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers")

    def buffers(self) -> Iterator[Tensor]:
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every child (recursively), then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- state --------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Every parameter and buffer as a NumPy array, in PyTorch's key order.

        Unlike PyTorch the arrays are copies, so a saved state does not change
        when training continues.
        """
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for prefix, module in self.named_modules():
            dotted = f"{prefix}." if prefix else ""
            for registry in (module._parameters, module._buffers):
                for name, value in registry.items():
                    if value is not None:
                        state[dotted + name] = value.data.copy()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values (NumPy arrays, convlens or torch tensors) into the parameters and buffers.

        Values are cast to each parameter's dtype. Shapes must match. With
        ``strict`` every key of the model must be present and no other key.
        Raises RuntimeError listing every problem at once.
        """
        targets = {}
        for prefix, module in self.named_modules():
            dotted = f"{prefix}." if prefix else ""
            for registry in (module._parameters, module._buffers):
                for name, value in registry.items():
                    if value is not None:
                        targets[dotted + name] = value
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        values = {k: _to_numpy(v) for k, v in state_dict.items() if k in targets}
        mismatched = [
            f"{k}: checkpoint has shape {values[k].shape} but the model expects {targets[k].shape}"
            for k in values
            if values[k].shape != targets[k].shape
        ]
        problems = list(mismatched)
        if strict and missing:
            problems.insert(0, "Missing key(s): " + ", ".join(missing))
        if strict and unexpected:
            problems.insert(len(problems) - len(mismatched), "Unexpected key(s): " + ", ".join(unexpected))
        if problems:
            raise RuntimeError(
                f"load_state_dict: error(s) loading state_dict for {type(self).__name__}:\n  "
                + "\n  ".join(problems)
            )
        for key, value in values.items():
            target = targets[key]
            target.data = np.array(value, dtype=target.dtype)
        return IncompatibleKeys(missing, unexpected)

    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) recursively."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget gradients: ``grad = None`` (PyTorch's default) or zeros."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, dtype: Any) -> Module:
        """Cast every floating-point parameter and buffer to ``dtype`` in place; returns self."""
        for module in self.modules():
            for registry in (module._parameters, module._buffers):
                for value in registry.values():
                    if value is not None and value.dtype.kind == "f":
                        value.data = value.data.astype(dtype)
                        value.grad = None
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # -- architecture as data -------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """A JSON-able description of the architecture: ``from_config`` rebuilds it.

        Models made by a factory (``convlens.models.lenet5``) are described by
        the factory name and its arguments; other modules by their class name
        and the constructor arguments they were given.
        """
        factory = self.__dict__.get("_factory")
        if factory is not None:
            return {"factory": factory[0], "kwargs": _jsonable(factory[1], type(self).__name__)}
        args = self.__dict__.get("_init_args", {})
        return {"class": type(self).__name__, "args": _jsonable(args, type(self).__name__)}

    # -- printing -------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's one-line repr."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        extra = self.extra_repr()
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


def _belongs(registry: OrderedDict, module: Module, name: str, value: Any) -> bool:
    """Whether ``name`` stays in ``registry`` after assigning ``value`` (else it is unregistered)."""
    if registry is module._parameters:
        return isinstance(value, Parameter) or value is None
    if registry is module._modules:
        return isinstance(value, Module)
    return not isinstance(value, Parameter | Module)


def _as_buffer(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return Tensor(np.asarray(value))


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.data
    if not isinstance(value, np.ndarray) and hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _recording_init(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a subclass ``__init__`` so the outermost call records the arguments it was given."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Module, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        if "_init_args" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            recorded = dict(bound.arguments)
            recorded.pop(next(iter(signature.parameters)))  # self
            self.__dict__["_init_args"] = recorded
        init(self, *args, **kwargs)

    return __init__


def _jsonable(value: Any, owner: str) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, owner) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v, owner) for v in value]
    if isinstance(value, bool | str | int | float) or value is None:
        return value
    if isinstance(value, np.integer | np.floating | np.bool_):
        return value.item()
    if isinstance(value, Module):
        return {"module": value.get_config()}
    raise TypeError(
        f"get_config: {owner} was built with an argument that cannot be stored as JSON. Received: {value!r}"
    )


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"module"}:
        return from_config(value["module"])
    if isinstance(value, list):  # JSON has no tuples; constructors take tuples
        return tuple(_from_jsonable(v) for v in value)
    return value


def from_config(config: Mapping[str, Any]) -> Module:
    """Rebuild a module from ``module.get_config()`` (fresh parameters, same architecture).

    >>> from convlens import nn
    >>> layer = nn.Conv2d(1, 6, 5, padding=2)
    >>> nn.from_config(layer.get_config())
    Conv2d(1, 6, kernel_size=(5, 5), padding=(2, 2))
    """
    if "factory" in config:
        return model_factory(config["factory"])(**config.get("kwargs", {}))
    name = config.get("class")
    if name not in _REGISTRY:
        raise ValueError(f"from_config: unknown module class. Received: class={name!r}")
    if "modules" in config:  # a container: its children, in order, by name
        children = OrderedDict((key, from_config(child)) for key, child in config["modules"])
        return _REGISTRY[name](children)
    args = {k: _from_jsonable(v) for k, v in config.get("args", {}).items()}
    return _REGISTRY[name](**args)
