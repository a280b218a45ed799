"""Tensor and autograd: a small define-by-run graph.

Every operation that involves a tensor with ``requires_grad=True`` records, on
its result, the tensors it read (``_parents``) and a function that maps the
gradient of the result to the gradients of those parents (``_backward``).
``Tensor.backward`` walks that graph once, in reverse topological order
(iteratively, so deep graphs do not hit Python's recursion limit), summing
the gradient of a tensor used twice, and stores ``.grad`` on the leaves, as
PyTorch does.

An op is written as a forward on NumPy arrays plus its backward, side by side::

    def exp(x):
        out = np.exp(x.data)
        return Tensor._from_op(out, (x,), lambda g: (g * out,))
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ArrayLike = Any
BackwardFn = Callable[[np.ndarray], Sequence["np.ndarray | None"]]

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside a ``no_grad()`` block."""
    return getattr(_state, "grad_enabled", True)


class _GradMode(contextlib.ContextDecorator):
    """Set whether graphs are recorded for the duration of a ``with`` block (or a decorated
    call), restoring the previous mode afterwards. A class rather than a generator-based
    context manager: entering one is on the path of every batch-1 inference call."""

    _enabled = True

    def __enter__(self) -> None:
        self._previous = getattr(_state, "grad_enabled", True)
        _state.grad_enabled = self._enabled

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._previous

    def _recreate_cm(self) -> _GradMode:
        return type(self)()  # a decorated function may recurse: one saved mode per call


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context in which no graph is recorded (inference, optimizer steps).

    >>> import convlens as cl
    >>> x = cl.tensor([1.0, 2.0], requires_grad=True)
    >>> with cl.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _enabled = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Re-enable graph recording inside a ``no_grad()`` block."""

    _enabled = True


def _to_array(data: ArrayLike, dtype: Any = None) -> np.ndarray:
    """NumPy array for ``data`` with PyTorch's dtype rules.

    Python floats become float32 (PyTorch's default dtype), Python ints int64,
    NumPy arrays keep their dtype (so float64 stays float64), unless ``dtype``
    is given.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=np.dtype(dtype))
    if isinstance(data, np.ndarray | np.generic):
        return np.array(data)
    array = np.array(data)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype.kind not in "fiub":
        raise TypeError(
            f"tensor: cannot make a tensor from {type(data).__name__} (NumPy dtype {array.dtype})"
        )
    return array


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _normalize_dims(dim: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int | np.integer) else tuple(dim)
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"dim {d} is out of range for a tensor with {ndim} dimensions")
    return tuple(int(d) % max(ndim, 1) for d in dims)


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Attributes:
        data: the values, a ``numpy.ndarray``.
        grad: after ``backward()``, the gradient (a ``numpy.ndarray`` of the
            same shape), or ``None``. Gradients accumulate, as in PyTorch.
        requires_grad: whether operations on this tensor are recorded.
    """

    __array_priority__ = 1000  # so ndarray (op) Tensor defers to Tensor's reflected op

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None):
        self.data: np.ndarray = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"tensor: only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad: bool = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._backward: BackwardFn | None = None

    # -- graph construction ---------------------------------------------------
    @staticmethod
    def _from_op(data: np.ndarray, parents: Sequence[Tensor], backward: BackwardFn) -> Tensor:
        """The result of an op: ``data``, linked to ``parents`` when a gradient is needed.

        ``backward(grad_out)`` returns one gradient (or ``None``) per parent.
        """
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out.requires_grad = False
        out._parents = ()
        out._backward = None
        if getattr(_state, "grad_enabled", True):
            for p in parents:  # a plain loop: this runs once per op (batch-1 inference)
                if p.requires_grad:
                    out.requires_grad = True
                    out._parents = tuple(parents)
                    out._backward = backward
                    break
        return out

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def backward(self, gradient: ArrayLike | None = None) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires it.

        Args:
            gradient: d(something)/d(self), the same shape as ``self``. May be
                omitted only for a single-element tensor (it is then 1).
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: gradient can be implicit only for a scalar, got shape {self.shape}"
                )
            seed = np.ones_like(self.data)
        else:
            seed = np.asarray(
                gradient.data if isinstance(gradient, Tensor) else gradient, dtype=self.data.dtype
            )
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward: gradient has shape {seed.shape} but tensor has shape {self.shape}"
                )
        grads: dict[int, np.ndarray] = {id(self): seed}
        for node in self._topological_order():
            grad = grads.pop(id(node), None)
            if grad is None:
                continue
            if node.is_leaf:
                node.grad = grad.copy(order="K") if node.grad is None else node.grad + grad
                continue
            for parent, parent_grad in zip(node._parents, node._backward(grad), strict=True):
                if parent_grad is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad

    def _topological_order(self) -> list[Tensor]:
        """Nodes reachable from ``self``, each after every node that uses it (iterative DFS)."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in visited)
        return order[::-1]

    # -- NumPy-facing accessors ---------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (shares memory, like PyTorch's ``.numpy()``)."""
        return self.data

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same values, cut from the graph (shares memory)."""
        return _wrap(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"requires_grad_: only floating-point tensors can require gradients, got {self.dtype}"
            )
        self.requires_grad = requires_grad
        return self

    def astype(self, dtype: Any) -> Tensor:
        """A copy with another dtype; gradients flow back in the original dtype."""
        source_dtype = self.dtype
        return Tensor._from_op(self.data.astype(dtype), (self,), lambda g: (g.astype(source_dtype),))

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extras = ""
        if self.dtype != np.float32:
            extras += f", dtype={self.dtype}"
        if self.requires_grad:
            extras += ", requires_grad=True"
        return f"tensor({body}{extras})"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # -- arithmetic (broadcasting, as NumPy and PyTorch) ---------------------
    def __add__(self, other: ArrayLike) -> Tensor:
        a, b = self, _as_operand(other, self)
        return Tensor._from_op(
            a.data + b.data, (a, b), lambda g: (_unbroadcast(g, a.shape), _unbroadcast(g, b.shape))
        )

    def __radd__(self, other: ArrayLike) -> Tensor:
        return _as_operand(other, self) + self

    def __sub__(self, other: ArrayLike) -> Tensor:
        a, b = self, _as_operand(other, self)
        return Tensor._from_op(
            a.data - b.data, (a, b), lambda g: (_unbroadcast(g, a.shape), _unbroadcast(-g, b.shape))
        )

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return _as_operand(other, self) - self

    def __mul__(self, other: ArrayLike) -> Tensor:
        a, b = self, _as_operand(other, self)
        return Tensor._from_op(
            a.data * b.data,
            (a, b),
            lambda g: (_unbroadcast(g * b.data, a.shape), _unbroadcast(g * a.data, b.shape)),
        )

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return _as_operand(other, self) * self

    def __truediv__(self, other: ArrayLike) -> Tensor:
        a, b = self, _as_operand(other, self)

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _unbroadcast(g / b.data, a.shape), _unbroadcast(-g * a.data / (b.data * b.data), b.shape)

        return Tensor._from_op(a.data / b.data, (a, b), backward)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return _as_operand(other, self) / self

    def __pow__(self, exponent: ArrayLike) -> Tensor:
        a, b = self, _as_operand(exponent, self)
        out = a.data**b.data

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            grad_a = _unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape)
            if not b.requires_grad:
                return grad_a, None
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a.data > 0, np.log(np.where(a.data > 0, a.data, 1)), 0)
            return grad_a, _unbroadcast(g * out * log_a, b.shape)

        return Tensor._from_op(out, (a, b), backward)

    def __rpow__(self, base: ArrayLike) -> Tensor:
        return _as_operand(base, self) ** self

    def __neg__(self) -> Tensor:
        return Tensor._from_op(-self.data, (self,), lambda g: (-g,))

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return matmul(self, _as_operand(other, self))

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return matmul(_as_operand(other, self), self)

    # comparisons give plain boolean tensors (no gradient), as in PyTorch
    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        return _wrap(self.data == _raw(other))

    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        return _wrap(self.data != _raw(other))

    def __lt__(self, other: ArrayLike) -> Tensor:
        return _wrap(self.data < _raw(other))

    def __le__(self, other: ArrayLike) -> Tensor:
        return _wrap(self.data <= _raw(other))

    def __gt__(self, other: ArrayLike) -> Tensor:
        return _wrap(self.data > _raw(other))

    def __ge__(self, other: ArrayLike) -> Tensor:
        return _wrap(self.data >= _raw(other))

    __hash__ = object.__hash__

    # -- reductions -----------------------------------------------------------
    def sum(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        axes = _normalize_dims(dim, self.ndim)
        shape = self.shape

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            if not keepdim:
                g = np.expand_dims(g, axes)
            return (np.broadcast_to(g, shape).copy(),)

        return Tensor._from_op(np.sum(self.data, axis=axes, keepdims=keepdim), (self,), backward)

    def mean(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        axes = _normalize_dims(dim, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(dim, keepdim) * np.asarray(1.0 / count, dtype=self.dtype)

    def max(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Largest value (over ``dim`` or everything). The gradient is shared
        equally among tied maxima (PyTorch's ``amax`` rule)."""
        return _extreme(self, dim, keepdim, np.max)

    def min(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Smallest value; gradient rule as ``max``."""
        return _extreme(self, dim, keepdim, np.min)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return _wrap(np.argmax(self.data, axis=dim, keepdims=keepdim))

    # -- shape ------------------------------------------------------------------
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        new_shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        old_shape = self.shape
        try:
            out = self.data.reshape(new_shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {old_shape} "
                f"({self.data.size} elements) into {tuple(new_shape)}"
            ) from None
        return Tensor._from_op(out, (self,), lambda g: (g.reshape(old_shape),))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = _normalize_dims((start_dim, end_dim), self.ndim)
        # the merged size, not -1: NumPy cannot infer -1 for an empty batch, (0, 16, 5, 5) -> (0, 400)
        merged = math.prod(self.shape[start : end + 1])
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1 :])

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        order = tuple(dims[0]) if len(dims) == 1 and not isinstance(dims[0], int) else dims
        order = _normalize_dims(order, self.ndim)
        if sorted(order) != list(range(self.ndim)):
            raise ValueError(f"permute: {order} is not a permutation of the {self.ndim} dimensions")
        inverse = tuple(np.argsort(order))
        return Tensor._from_op(self.data.transpose(order), (self,), lambda g: (g.transpose(inverse),))

    def transpose(self, dim0: int = 0, dim1: int = 1) -> Tensor:
        order = list(range(self.ndim))
        d0, d1 = _normalize_dims((dim0, dim1), self.ndim)
        order[d0], order[d1] = order[d1], order[d0]
        return self.permute(order)

    @property
    def T(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return self.permute(tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim: int) -> Tensor:
        return self.reshape(np.expand_dims(self.data, dim).shape)

    def squeeze(self, dim: int | None = None) -> Tensor:
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        d = _normalize_dims(dim, self.ndim)[0]
        return self.reshape(self.shape[:d] + self.shape[d + 1 :]) if self.shape[d] == 1 else self

    def __getitem__(self, index: Any) -> Tensor:
        index = _raw_index(index)
        shape, dtype = self.shape, self.dtype

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            grad = np.zeros(shape, dtype=dtype)
            if _is_basic_index(index):
                grad[index] = g  # slices and ints select each element at most once
            else:
                np.add.at(grad, index, g)  # fancy indices may repeat; add.at sums them
            return (grad,)

        return Tensor._from_op(self.data[index], (self,), backward)

    # -- elementwise math ---------------------------------------------------------
    def exp(self) -> Tensor:
        out = np.exp(self.data)
        return Tensor._from_op(out, (self,), lambda g: (g * out,))

    def log(self) -> Tensor:
        x = self.data
        return Tensor._from_op(np.log(x), (self,), lambda g: (g / x,))

    def sqrt(self) -> Tensor:
        out = np.sqrt(self.data)
        return Tensor._from_op(out, (self,), lambda g: (g / (2 * out),))

    def abs(self) -> Tensor:
        x = self.data
        return Tensor._from_op(np.abs(x), (self,), lambda g: (g * np.sign(x),))

    def tanh(self) -> Tensor:
        out = np.tanh(self.data)
        return Tensor._from_op(out, (self,), lambda g: (g * (1 - out * out),))

    def sigmoid(self) -> Tensor:
        out = _sigmoid(self.data)
        return Tensor._from_op(out, (self,), lambda g: (g * out * (1 - out),))

    def relu(self) -> Tensor:
        x = self.data
        # one pass, the input's memory order kept (channels-last stays channels-last); NaN stays
        # NaN as in torch.relu; the mask is only made if a backward runs
        out = np.maximum(x, x.dtype.type(0)) if x.dtype.kind == "f" else np.maximum(x, 0).astype(x.dtype)
        return Tensor._from_op(out, (self,), lambda g: (np.multiply(g, x > 0),))

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        x = self.data
        keep = np.ones(x.shape, dtype=bool)
        if min is not None:
            keep &= x >= min
        if max is not None:
            keep &= x <= max
        return Tensor._from_op(np.clip(x, min, max), (self,), lambda g: (g * keep,))

    def zero_(self) -> Tensor:
        self.data[...] = 0
        return self


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow for large negative x."""
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1 / (1 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1 + e)
    return out


def _extreme(t: Tensor, dim: int | None, keepdim: bool, reduce: Callable[..., np.ndarray]) -> Tensor:
    axes = _normalize_dims(dim, t.ndim)
    out = reduce(t.data, axis=axes, keepdims=True)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        hits = t.data == out
        share = hits / hits.sum(axis=axes, keepdims=True)
        return ((g if keepdim else np.expand_dims(g, axes)) * share,)

    return Tensor._from_op(out if keepdim else np.squeeze(out, axis=axes), (t,), backward)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's ``@`` rules (1-D operands, batched broadcasting)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both operands need at least one dimension, got shapes {a.shape} and {b.shape}"
        )
    a2 = a.data[None, :] if a.ndim == 1 else a.data
    b2 = b.data[:, None] if b.ndim == 1 else b.data
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align ({a2.shape[-1]} != {b2.shape[-2]})"
        )
    out = a2 @ b2
    full_shape = out.shape  # before the 1-D operands' axes are dropped below

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g2 = g.reshape(full_shape)
        grad_a = _unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        grad_b = _unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return grad_a, grad_b

    if b.ndim == 1:
        out = out[..., 0]
    if a.ndim == 1:
        out = out[..., 0, :] if b.ndim > 1 else out[..., 0]
    return Tensor._from_op(out, (a, b), backward)


def cat(tensors: Sequence[ArrayLike], dim: int = 0) -> Tensor:
    """Join tensors along ``dim``, as ``torch.cat``; the gradient is split back along it.

    Every shape must agree except along ``dim`` (U-Net joins skip connections this way).

    >>> import convlens as cl
    >>> cl.cat([cl.tensor([[1.0]]), cl.tensor([[2.0, 3.0]])], dim=1).numpy()
    array([[1., 2., 3.]], dtype=float32)
    """
    parts = [as_tensor(t) for t in tensors]
    if not parts:
        raise ValueError("cat: needs at least one tensor. Received: tensors=[]")
    axis = _normalize_dims(dim, parts[0].ndim)[0]
    try:
        out = np.concatenate([p.data for p in parts], axis=axis)
    except ValueError:
        shapes = [p.shape for p in parts]
        message = f"cat: shapes must agree except along dim {dim}. Received: shapes={shapes}"
        raise ValueError(message) from None
    bounds = np.cumsum([p.shape[axis] for p in parts])[:-1]

    def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.split(g, bounds, axis=axis))

    return Tensor._from_op(out, tuple(parts), backward)


def _wrap(array: np.ndarray) -> Tensor:
    t = Tensor.__new__(Tensor)
    t.data, t.grad, t.requires_grad, t._parents, t._backward = array, None, False, (), None
    return t


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _raw_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(
        i is None or i is Ellipsis or (isinstance(i, slice | int | np.integer) and not isinstance(i, bool))
        for i in items
    )


def _as_operand(x: ArrayLike, like: Tensor) -> Tensor:
    """Tensor for the other operand of a binary op; Python scalars take ``like``'s dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, float) and like.dtype.kind != "f":
        return _wrap(np.asarray(x, dtype=np.float32))  # int tensor * 2.5 must not truncate 2.5 to 2
    if isinstance(x, int | float | bool) or (
        isinstance(x, np.ndarray | np.generic) and x.ndim == 0 and like.dtype.kind == "f"
    ):
        return _wrap(np.asarray(x, dtype=like.dtype))
    return Tensor(x)


def tensor(data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a tensor from a list, scalar or NumPy array (the data is copied).

    Python floats give float32 (PyTorch's default), NumPy arrays keep their
    dtype, so float64 stays float64.

    >>> import convlens as cl
    >>> t = cl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (t * t).sum().backward()
    >>> t.grad
    array([[2., 4.],
           [6., 8.]], dtype=float32)
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(x: ArrayLike) -> Tensor:
    """``x`` itself if it is a Tensor, else a Tensor on its data (no gradient).

    A NumPy array of a numeric dtype is wrapped without a copy (it shares memory, as
    ``torch.as_tensor`` does): a model's input batch is not copied on every call.
    """
    if isinstance(x, Tensor):
        return x
    if type(x) is np.ndarray and x.dtype.kind in "fiub":
        return _wrap(x)
    return Tensor(x)
