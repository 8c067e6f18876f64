"""Field metadata and the check of one value: the ``_f`` field helper, :class:`Range` and
the ranges most fields share, device names, and type coercion against a field's hint.

Nothing here knows the config sections (:mod:`deg_core.config.sections`) or how a project's
values are merged; ``build`` (:mod:`deg_core.config.resolution`) applies these checks to
every field of a section.
"""

from __future__ import annotations

import copy
import math
import re
import types
import typing
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from deg_core.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts (each element, for a list), checked by :func:`build`.

    ``ge``/``gt``/``le``/``lt``: bounds (>=, >, <=, <); ``length``: a list's number of
    values; ``check``: value -> problem text or None, for what bounds cannot say.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    length: int | None = None
    check: Any = None  # Callable[[Any], str | None]

    def text(self) -> str:
        """The range as ``deg config`` shows it, e.g. ``>= 1`` or ``2 values, each >= 32``."""
        bounds = self._bounds()
        if self.length is None:
            return bounds
        return f"{self.length} values" + (f", each {bounds}" if bounds else "")

    def _bounds(self) -> str:
        lo = f"[{_num(self.ge)}" if self.ge is not None else None
        lo = f"({_num(self.gt)}" if self.gt is not None else lo
        hi = f"{_num(self.le)}]" if self.le is not None else None
        hi = f"{_num(self.lt)})" if self.lt is not None else hi
        if lo and hi:
            return f"in {lo}, {hi}"
        if lo:
            return (">= " if lo[0] == "[" else "> ") + lo[1:]
        if hi:
            return ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
        return ""

    def problem(self, value: Any, key: str) -> str | None:
        """One line naming ``key`` if ``value`` is out of range, else None."""
        if self.length is not None and isinstance(value, list) and len(value) != self.length:
            return f"{key} must have {self.length} values, got {value!r}"
        for i, v in enumerate(value) if isinstance(value, list) else [(None, value)]:
            if not isinstance(v, int | float) or isinstance(v, bool):
                continue  # "auto", None: the type check already accepted them
            if not self._inside(v):
                where = key if i is None else f"{key}[{i}]"
                return f"{where} must be {self._bounds()}, got {v!r}"
        return self.check(value, key) if self.check is not None else None

    def _inside(self, v: float) -> bool:
        # written so that NaN fails every bound
        return (
            math.isfinite(v)
            and (self.ge is None or v >= self.ge)
            and (self.gt is None or v > self.gt)
            and (self.le is None or v <= self.le)
            and (self.lt is None or v < self.lt)
        )


def _num(x: float) -> str:
    return f"{x:g}"


def _f(default: Any, help: str, range: Range | None = None, **kw: Any) -> Any:
    """A dataclass field with a default, a one-line meaning and the values it accepts
    (both shown by ``deg config``; the range is checked by :func:`build`)."""
    meta = {"help": help, "range": range}
    if isinstance(default, list | dict):
        return field(default_factory=partial(copy.copy, default), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


# the ranges most fields share
POSITIVE_INT = Range(ge=1)  # steps, epochs, batch sizes, widths
POSITIVE = Range(gt=0)  # learning rates, scales
NON_NEGATIVE = Range(ge=0)  # weights, exponents, decays
PROBABILITY = Range(ge=0, le=1)
DROPOUT = Range(ge=0, lt=1)  # p = 1 would zero every input
LABEL_SMOOTHING = Range(ge=0, lt=0.5)  # deg_core.train.losses: 0.5 would make every target 0.5

DEVICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def device_problem(value: Any, key: str = "device") -> str | None:
    """What is wrong with a device name (None: a name deg accepts; torch.device reads it)."""
    if isinstance(value, str) and _DEVICE_RE.match(value):
        return None
    return f"{key} must be {DEVICES}, got {value!r}"


# ---------------------------------------------------------------------- one value


_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp)
        return f"list of {_type_name(inner)}"
    if origin is dict:
        key_tp, inner = typing.get_args(tp)
        return f"mapping of {_type_name(key_tp)} to {_type_name(inner)}"
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the type hint ``tp``; return it (ints widen to float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, list | tuple):
            return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        key_tp, inner = typing.get_args(tp)
        if isinstance(value, dict):
            return {
                _coerce(k, key_tp, f"{key} key {k!r}"): _coerce(v, inner, f"{key}.{k}")
                for k, v in value.items()
            }
    elif tp is Any:
        return value
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads "1e-4" (no dot) as a string; users mean a number
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the types above are used in config classes
        raise TypeError(f"unsupported config type {tp!r} for {key}")
    raise ConfigError(f"'{key}' must be {_type_name(tp)}, got {value!r}")
