"""Checks of values read from files: each takes ``(value, where, path)`` and returns the value.

``where`` names the file, ``path`` the field inside it (``model.kwargs.num_classes``);
a value that does not pass raises :class:`ConfigError` in the project's one style::

    checkpoint.json: lr must be a finite number > 0. Received: lr=-1

JSON has one number type and ``true`` is not a count: ``Int`` refuses booleans and
floats, ``Real`` refuses booleans, NaN and infinities.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SHOWN",
    "Choice",
    "ConfigError",
    "Int",
    "Ints",
    "Maybe",
    "Real",
    "as_dict",
    "as_list",
    "fail",
    "flag",
    "is_int",
    "is_real",
    "text",
]

SHOWN = 60  # characters of a received value echoed in a message


class ConfigError(ValueError):
    """A checkpoint or config value outside what convlens accepts (one line)."""


def fail(where: str, path: str, requirement: str, value: Any) -> ConfigError:
    shown = repr(value)
    if len(shown) > SHOWN:
        shown = shown[: SHOWN - 3] + "..."
    leaf = path.rsplit(".", 1)[-1]
    return ConfigError(f"{where}: {path} must be {requirement}. Received: {leaf}={shown}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int:
    low: int
    high: int

    def __call__(self, value: Any, where: str, path: str) -> int:
        if not is_int(value) or not self.low <= value <= self.high:
            raise fail(where, path, f"an int in [{self.low}, {self.high}]", value)
        return value


@dataclass(frozen=True)
class Real:
    """A finite number in a range; ``open_low``/``open_high`` exclude the bound."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def __call__(self, value: Any, where: str, path: str) -> float:
        ok = is_real(value) and math.isfinite(value)
        ok = ok and (value > self.low if self.open_low else value >= self.low)
        ok = ok and (value < self.high if self.open_high else value <= self.high)
        if not ok:
            raise fail(where, path, self.describe(), value)
        return float(value)

    def describe(self) -> str:
        if self.low == -math.inf and self.high == math.inf:
            return "a finite number"
        if self.high == math.inf:
            return f"a finite number {'>' if self.open_low else '>='} {self.low:g}"
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        return f"a number in {left}{self.low:g}, {self.high:g}{right}"


def flag(value: Any, where: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise fail(where, path, "true or false", value)
    return value


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]

    def __call__(self, value: Any, where: str, path: str) -> Any:
        if not isinstance(value, str | bool | int | float) or value not in self.values:
            raise fail(where, path, "one of " + ", ".join(map(repr, self.values)), value)
        return value


@dataclass(frozen=True)
class Ints:
    """An int, or a list of ``dims`` ints, each in [low, high] (kernel sizes, strides, ...)."""

    dims: int
    low: int
    high: int

    def __call__(self, value: Any, where: str, path: str) -> tuple[int, ...]:
        listed = isinstance(value, list | tuple)
        items = list(value) if listed else [value]
        wrong_length = listed and len(items) != self.dims
        if wrong_length or not all(is_int(v) and self.low <= v <= self.high for v in items):
            raise fail(where, path, f"an int or {self.dims} ints in [{self.low}, {self.high}]", value)
        return tuple(items) if listed else tuple(items) * self.dims


@dataclass(frozen=True)
class Maybe:
    inner: Callable[[Any, str, str], Any]

    def __call__(self, value: Any, where: str, path: str) -> Any:
        return None if value is None else self.inner(value, where, path)


def text(limit: int) -> Callable[[Any, str, str], str]:
    def check(value: Any, where: str, path: str) -> str:
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise fail(where, path, f"a text of 1 to {limit} characters", value)
        return value

    return check


def as_dict(value: Any, where: str, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, path, "a JSON object", value)
    return value


def as_list(value: Any, where: str, path: str, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise fail(where, path, f"a list of at most {limit:,} items", value)
    return value
