"""Optimizers (SGD, Adam) and learning-rate schedulers, step for step as ``torch.optim``.

An optimizer holds ``param_groups``: a list of dicts, each with ``"params"`` (a
list of tensors) and its hyperparameters, as in PyTorch. ``step()`` updates each
parameter's ``.data`` in place from its ``.grad`` (parameters whose grad is None
are skipped); ``state_dict()`` / ``load_state_dict()`` capture everything needed
to resume training exactly.

>>> import numpy as np, convlens as cl
>>> w = cl.tensor(np.array([1.0, -2.0]), requires_grad=True)
>>> opt = cl.optim.SGD([w], lr=0.1, momentum=0.9)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w.data
array([ 0.8, -1.6])
>>> opt.zero_grad()
>>> w.grad is None
True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .tensor import Tensor, enable_grad, no_grad

__all__ = ["SGD", "Adam", "CosineAnnealingLR", "LRScheduler", "Optimizer", "StepLR"]

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad`` and state dicts.

    Subclasses set ``defaults`` (via ``__init__``) and implement ``_update(group)``.
    ``state`` maps ``id(param)`` to that parameter's state dict.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        if isinstance(params, Tensor):
            raise TypeError(
                f"{self._name}: params must be an iterable of Tensors or dicts, got a single Tensor"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters; missing hyperparameters take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a param group must be a dict, got {type(param_group).__name__}")
        params = param_group.get("params")
        params = [params] if isinstance(params, Tensor) else list(params or [])
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, got {type(p).__name__}")
            if p.data.dtype.kind != "f":
                raise TypeError(f"{self._name}: can only optimize floating-point tensors, got {p.dtype}")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{self._name}: some parameters appear in more than one parameter group")
        group = {**self.defaults, **param_group, "params": params}
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ValueError for bad hyperparameters (subclasses extend)."""
        _check(self._name, "lr", group["lr"], group["lr"] >= 0, ">= 0")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients: set them to None (default, as PyTorch), or fill with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()`` if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update(group)
        return loss

    def _update(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _flat(self, group: dict[str, Any], names: tuple[str, ...]) -> _Flat | None:
        """The group's flat buffers when every parameter has a gradient of its own dtype and
        shape and all share one dtype (the usual training step); None otherwise."""
        params = group["params"]
        if len(params) < 2:
            return None
        dtype = params[0].data.dtype
        for p in params:
            g = p.grad
            if g is None or p.data.dtype != dtype or type(g) is not np.ndarray or g.dtype != dtype:
                return None
            if g.shape != p.data.shape:
                return None
        flats = self.__dict__.setdefault("_flats", {})
        flat = flats.get(id(group))
        if flat is None or not flat.fits(params, dtype) or tuple(flat.buffers) != names:
            flat = flats[id(group)] = _Flat(params, names, dtype)
        return flat

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}`` (copies).

        Parameters are numbered in group order, as in PyTorch; arrays are copied.
        """
        index, groups = 0, []
        state: dict[int, dict[str, Any]] = {}
        for group in self.param_groups:
            numbers = []
            for p in group["params"]:
                if id(p) in self.state:
                    state[index] = copy.deepcopy(self.state[id(p)])
                numbers.append(index)
                index += 1
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": numbers})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by :meth:`state_dict` (validated, copied)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{self._name}.load_state_dict: the state has {len(groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        params_by_index = {}
        for saved, group in zip(groups, self.param_groups, strict=True):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{self._name}.load_state_dict: a saved group has {len(saved['params'])} "
                    f"parameters, the optimizer's has {len(group['params'])}"
                )
            params_by_index.update(zip((int(i) for i in saved["params"]), group["params"], strict=True))
        new_state = {}
        for key, saved_state in state_dict["state"].items():
            p = params_by_index.get(int(key))
            if p is None:
                raise ValueError(f"{self._name}.load_state_dict: state for unknown parameter index {key}")
            new_state[id(p)] = {name: self._restore(name, value, p) for name, value in saved_state.items()}
        self.state = new_state
        for saved, group in zip(groups, self.param_groups, strict=True):
            for name, value in saved.items():
                if name != "params":
                    group[name] = tuple(value) if isinstance(value, list) else value

    def _restore(self, name: str, value: Any, p: Tensor) -> Any:
        if isinstance(value, np.ndarray | Tensor):
            value = np.array(getattr(value, "data", value), dtype=p.data.dtype)
            if value.shape != p.data.shape:
                raise ValueError(
                    f"{self._name}.load_state_dict: state {name!r} has shape {value.shape} "
                    f"but its parameter has shape {p.data.shape}"
                )
        return value

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join([*lines, ")"])


class _Flat:
    """One flat buffer per kind of per-parameter state (plus the gradients and the update) of a
    parameter group, so an optimizer step is a handful of NumPy calls instead of a dozen per
    parameter. ``state`` keeps its per-parameter arrays as views into these buffers (so
    ``state_dict`` is unchanged); the parameters' own arrays are updated in place, as always.
    Elementwise, the arithmetic is exactly the per-parameter one (same ops, same order).
    """

    def __init__(self, params: list[Tensor], names: tuple[str, ...], dtype: np.dtype):
        self.params, self.dtype = list(params), dtype
        self.shapes = [p.data.shape for p in params]
        self.bounds = np.cumsum([0] + [p.data.size for p in params]).tolist()
        total = self.bounds[-1]
        self.grad, self.delta = np.empty(total, dtype), np.empty(total, dtype)
        self.scratch = np.empty(total, dtype)  # temporaries via out=: no allocation per step
        self.grad_views, self.delta_views = self._views(self.grad), self._views(self.delta)
        self.buffers = {name: np.zeros(total, dtype) for name in names}
        self.views = {name: self._views(buffer) for name, buffer in self.buffers.items()}

    def _views(self, buffer: np.ndarray) -> list[np.ndarray]:
        return [
            buffer[a:b].reshape(shape)
            for a, b, shape in zip(self.bounds[:-1], self.bounds[1:], self.shapes, strict=True)
        ]

    def fits(self, params: list[Tensor], dtype: np.dtype) -> bool:
        return (
            dtype == self.dtype
            and len(params) == len(self.params)
            and all(
                p is q and p.data.shape == s for p, q, s in zip(params, self.params, self.shapes, strict=True)
            )
        )

    def gather_grads(self) -> np.ndarray:
        for view, p in zip(self.grad_views, self.params, strict=True):
            np.copyto(view, p.grad)
        return self.grad

    def adopt(self, states: list[dict[str, Any]], name: str) -> bool:
        """Make ``state[name]`` of every parameter a view of the flat buffer (copying values
        restored by ``load_state_dict``); False if some parameter lacks it."""
        for state, view in zip(states, self.views[name], strict=True):
            current = state.get(name)
            if current is view:
                continue
            if not isinstance(current, np.ndarray) or current.shape != view.shape:
                return False
            np.copyto(view, current)
            state[name] = view
        return True

    def apply(self) -> None:
        """``p.data -= delta`` for every parameter, in place."""
        for p, view in zip(self.params, self.delta_views, strict=True):
            p.data -= view


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    .. math::
        g &= \nabla_\theta (\pm f) + \lambda\theta \\
        b_1 &= g, \quad b_t = \mu b_{t-1} + (1 - \tau) g \\
        \theta &\leftarrow \theta - \gamma\,(g + \mu b_t \text{ if nesterov else } b_t)

    with learning rate :math:`\gamma`, momentum :math:`\mu`, dampening :math:`\tau`
    and weight decay :math:`\lambda` (without momentum the step is :math:`\gamma g`).
    Note the first momentum buffer is the gradient itself (no dampening), as in PyTorch.

    >>> import numpy as np, convlens as cl
    >>> w = cl.tensor(np.array([3.0]), requires_grad=True)
    >>> opt = cl.optim.SGD([w], lr=0.5)
    >>> w.grad = np.array([2.0]); opt.step(); w.data
    array([2.])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
    ):
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        _check("SGD", "momentum", group["momentum"], group["momentum"] >= 0, ">= 0")
        _check("SGD", "weight_decay", group["weight_decay"], group["weight_decay"] >= 0, ">= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: nesterov=True requires momentum > 0 and dampening=0. Received: "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, group: dict[str, Any]) -> None:
        if group["momentum"] != 0 and group["weight_decay"] == 0 and self._update_flat(group):
            return
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        for p in group["params"]:
            if p.grad is None:
                continue
            d_p = -p.grad if group["maximize"] else p.grad
            if weight_decay != 0:
                d_p = d_p + weight_decay * p.data
            if momentum != 0:
                state = self.state.setdefault(id(p), {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(d_p, dtype=p.data.dtype)
                else:
                    buf *= momentum
                    buf += (1 - dampening) * d_p
                d_p = d_p + momentum * buf if nesterov else buf
            p.data -= lr * d_p

    def _update_flat(self, group: dict[str, Any]) -> bool:
        """The momentum step on flat buffers; False (nothing done) when it does not apply."""
        flat = self._flat(group, ("momentum_buffer",))
        if flat is None:
            return False
        states = [self.state.get(id(p)) for p in flat.params]
        fresh = all(not state or state.get("momentum_buffer") is None for state in states)
        if not fresh and (not all(states) or not flat.adopt(states, "momentum_buffer")):
            return False
        momentum, dampening = group["momentum"], group["dampening"]
        d_p = flat.gather_grads()
        if group["maximize"]:
            np.negative(d_p, out=d_p)
        buf = flat.buffers["momentum_buffer"]
        if fresh:
            np.copyto(buf, d_p)  # the first buffer is the gradient itself, as torch
            for p, view in zip(flat.params, flat.views["momentum_buffer"], strict=True):
                self.state.setdefault(id(p), {})["momentum_buffer"] = view
        else:
            buf *= momentum
            if dampening == 0:
                buf += d_p  # (1 - 0) * d_p is d_p exactly
            else:
                buf += np.multiply(d_p, 1 - dampening, out=flat.scratch)
        step = buf
        if group["nesterov"]:
            step = np.add(d_p, np.multiply(buf, momentum, out=flat.scratch), out=flat.scratch)
        np.multiply(step, group["lr"], out=flat.delta)
        flat.apply()
        return True


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    .. math::
        g &= \nabla_\theta (\pm f) + \lambda\theta \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsgrad else } v_t \\
        \theta &\leftarrow \theta - \frac{\gamma}{1 - \beta_1^t}\,
                 \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Weight decay here is the L2 penalty added to the gradient (Adam, not AdamW).

    >>> import numpy as np, convlens as cl
    >>> w = cl.tensor(np.array([1.0]), requires_grad=True)
    >>> opt = cl.optim.Adam([w], lr=0.1)
    >>> w.grad = np.array([5.0]); opt.step(); np.round(w.data, 6)
    array([0.9])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ):
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        group["betas"] = tuple(group["betas"])
        beta1, beta2 = group["betas"]
        _check("Adam", "eps", group["eps"], group["eps"] >= 0, ">= 0")
        _check("Adam", "betas[0]", beta1, 0 <= beta1 < 1, "in [0, 1)")
        _check("Adam", "betas[1]", beta2, 0 <= beta2 < 1, "in [0, 1)")
        _check("Adam", "weight_decay", group["weight_decay"], group["weight_decay"] >= 0, ">= 0")

    def _update(self, group: dict[str, Any]) -> None:
        if group["weight_decay"] == 0 and self._update_flat(group):
            return
        lr, eps, weight_decay, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = -p.grad if group["maximize"] else p.grad
            if weight_decay != 0:
                grad = grad + weight_decay * p.data
            state = self.state.setdefault(id(p), {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
                if amsgrad:
                    state["max_exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
            _lerp_(exp_avg, grad, 1 - beta1)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * (grad * grad)
            second = exp_avg_sq
            if amsgrad:
                second = np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            step_size = lr / (1 - beta1**step)
            denom = np.sqrt(second) / math.sqrt(1 - beta2**step) + eps
            p.data -= step_size * (exp_avg / denom)

    def _update_flat(self, group: dict[str, Any]) -> bool:
        """The Adam step on flat buffers; False (nothing done) when it does not apply."""
        amsgrad = group["amsgrad"]
        names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if amsgrad else ("exp_avg", "exp_avg_sq")
        flat = self._flat(group, names)
        if flat is None:
            return False
        states = [self.state.get(id(p)) for p in flat.params]
        fresh = not any(states)
        if fresh:
            for buffer in flat.buffers.values():
                buffer.fill(0)
        else:
            if not all(states) or len({state.get("step") for state in states}) != 1:
                return False
            if not all(flat.adopt(states, name) for name in names):
                return False
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        grad = flat.gather_grads()
        if group["maximize"]:
            np.negative(grad, out=grad)
        if fresh:
            for i, p in enumerate(flat.params):
                state = self.state[id(p)] = {"step": 0}
                for name in names:
                    state[name] = flat.views[name][i]
            states = [self.state[id(p)] for p in flat.params]
        for state in states:
            state["step"] += 1
        step = states[0]["step"]
        exp_avg, exp_avg_sq = flat.buffers["exp_avg"], flat.buffers["exp_avg_sq"]
        tmp, delta = flat.scratch, flat.delta
        _lerp_(exp_avg, grad, 1 - beta1, tmp)
        exp_avg_sq *= beta2
        exp_avg_sq += np.multiply(np.multiply(grad, grad, out=tmp), 1 - beta2, out=tmp)
        second = exp_avg_sq
        if amsgrad:
            peak = flat.buffers["max_exp_avg_sq"]
            second = np.maximum(peak, exp_avg_sq, out=peak)
        step_size = lr / (1 - beta1**step)
        denom = np.sqrt(second, out=tmp)
        denom /= math.sqrt(1 - beta2**step)
        denom += eps
        np.divide(exp_avg, denom, out=delta)
        delta *= step_size
        flat.apply()
        return True


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float, scratch: np.ndarray | None = None) -> None:
    """``start += weight * (end - start)`` in place, rounded as torch's ``lerp_``
    (``scratch``, an array like ``start``, holds the temporary)."""
    diff = np.subtract(end, start, out=scratch)
    if weight < 0.5:
        diff *= weight
        start += diff
    else:
        diff *= 1 - weight
        np.subtract(end, diff, out=start)


def _check(owner: str, name: str, value: Any, ok: bool, requirement: str) -> None:
    if not ok:
        raise ValueError(f"{owner}: {name} must be {requirement}. Received: {name}={value}")


# ----------------------------------------------------------------------------- schedulers


class LRScheduler:
    """Base scheduler: sets each group's ``lr`` from a closed form of ``last_epoch``.

    Call ``step()`` once per epoch, after ``optimizer.step()``. Each group's
    starting ``lr`` is kept as ``initial_lr`` (as PyTorch does). Unlike PyTorch's
    chainable recursive updates, the closed form is used every step, so two
    schedulers on one optimizer do not compose; the values agree with PyTorch's
    to rounding.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"{type(self).__name__}: last_epoch={last_epoch} needs 'initial_lr' in every "
                    "param group (resume from a state_dict instead)"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(base_lr, self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (as PyTorch)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(copy.deepcopy(state_dict))


class StepLR(LRScheduler):
    r"""Decay the learning rate by ``gamma`` every ``step_size`` epochs.

    :math:`\eta_t = \eta_0 \gamma^{\lfloor t / \text{step\_size} \rfloor}`

    >>> import numpy as np, convlens as cl
    >>> opt = cl.optim.SGD([cl.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    >>> sched = cl.optim.StepLR(opt, step_size=2, gamma=0.5)
    >>> [sched.step() or sched.get_last_lr()[0] for _ in range(4)]
    [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not isinstance(step_size, int | np.integer) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive int. Received: step_size={step_size!r}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial lr down to ``eta_min`` over ``T_max`` epochs.

    :math:`\eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})(1 + \cos(\pi t / T_{max}))`
    (periodic beyond ``T_max``, as PyTorch).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        if not isinstance(T_max, int | np.integer) or T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int. Received: T_max={T_max!r}")
        self.T_max, self.eta_min = int(T_max), eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
