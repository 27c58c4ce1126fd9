"""Random durations for the simulator: service, patience, ring and retry times.

A :class:`Dist` is immutable plain data (loadable from a TOML inline table)
and draws whole numpy arrays at once from a seeded ``numpy.random.Generator``
so that the event loop only indexes pre-drawn values.

TOML forms::

    service  = { dist = "lognormal", mean = 420, cv = 0.8 }     # or sd = ...
    patience = { dist = "weibull", mean = 180, shape = 0.7 }    # or scale = ...
    talk     = { dist = "exponential", mean = 300 }             # or rate = ...
    ring     = 3                                                # a number: fixed
    patience = "infinite"                                       # never abandons
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

from ..errors import InvalidInput

__all__ = ("Dist", "dist_from_spec", "DIST_KINDS")

#: supported kinds and the parameters each takes (besides ``dist``)
DIST_KINDS = {
    "fixed": ("value",),
    "exponential": ("mean", "rate"),
    "lognormal": ("mean", "sd", "cv"),
    "weibull": ("mean", "scale", "shape"),
    "uniform": ("low", "high"),
    "infinite": (),
}


def _num(field: str, value: object, *, positive: bool = False, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number, got {value!r}")
    v = float(value)
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        what = "positive" if not allow_zero else "non-negative"
        raise InvalidInput(f"{field} must be {what}, got {value!r}")
    return v


@dataclass(frozen=True)
class Dist:
    """A distribution of non-negative durations (seconds).

    ``kind`` is one of :data:`DIST_KINDS`; ``a`` and ``b`` are its canonical
    parameters: fixed (value, -), exponential (mean, -), lognormal (mu, sigma
    of the underlying normal), weibull (scale, shape), uniform (low, high).
    Build it with the class methods or :func:`dist_from_spec`.
    """

    kind: str
    a: float = 0.0
    b: float = 0.0

    # ---- constructors (validated)
    @classmethod
    def fixed(cls, value: float) -> "Dist":
        return cls("fixed", _num("fixed value", value, positive=True))

    @classmethod
    def exponential(cls, mean: float) -> "Dist":
        return cls("exponential", _num("exponential mean", mean, positive=True, allow_zero=False))

    @classmethod
    def lognormal(cls, mean: float, sd: float) -> "Dist":
        m = _num("lognormal mean", mean, positive=True, allow_zero=False)
        s = _num("lognormal sd", sd, positive=True, allow_zero=False)
        sigma2 = math.log1p((s / m) ** 2)
        return cls("lognormal", math.log(m) - sigma2 / 2, math.sqrt(sigma2))

    @classmethod
    def weibull(cls, shape: float, *, mean: Optional[float] = None, scale: Optional[float] = None) -> "Dist":
        k = _num("weibull shape", shape, positive=True, allow_zero=False)
        if (mean is None) == (scale is None):
            raise InvalidInput("weibull needs exactly one of mean or scale")
        if mean is not None:
            lam = _num("weibull mean", mean, positive=True, allow_zero=False) / math.gamma(1 + 1 / k)
        else:
            lam = _num("weibull scale", scale, positive=True, allow_zero=False)
        return cls("weibull", lam, k)

    @classmethod
    def uniform(cls, low: float, high: float) -> "Dist":
        lo = _num("uniform low", low, positive=True)
        hi = _num("uniform high", high, positive=True)
        if hi < lo:
            raise InvalidInput(f"uniform high must be >= low, got low={low!r}, high={high!r}")
        return cls("uniform", lo, hi)

    @classmethod
    def infinite(cls) -> "Dist":
        return cls("infinite")

    # ---- properties
    @property
    def mean(self) -> float:
        k, a, b = self.kind, self.a, self.b
        if k == "fixed" or k == "exponential":
            return a
        if k == "lognormal":
            return math.exp(a + b * b / 2)
        if k == "weibull":
            return a * math.gamma(1 + 1 / b)
        if k == "uniform":
            return (a + b) / 2
        return math.inf

    @property
    def is_zero(self) -> bool:
        return self.kind == "fixed" and self.a == 0.0

    def scaled(self, factor: float) -> "Dist":
        """The same shape with every draw multiplied by ``factor`` (> 0)."""
        f = _num("scale factor", factor, positive=True, allow_zero=False)
        if self.kind in ("fixed", "exponential"):
            return Dist(self.kind, self.a * f)
        if self.kind == "lognormal":
            return Dist(self.kind, self.a + math.log(f), self.b)
        if self.kind == "weibull":
            return Dist(self.kind, self.a * f, self.b)
        if self.kind == "uniform":
            return Dist(self.kind, self.a * f, self.b * f)
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws as a float64 array."""
        k, a, b = self.kind, self.a, self.b
        if k == "fixed":
            return np.full(n, a)
        if k == "exponential":
            return rng.exponential(a, n)
        if k == "lognormal":
            return rng.lognormal(a, b, n)
        if k == "weibull":
            return a * rng.weibull(b, n)
        if k == "uniform":
            return rng.uniform(a, b, n)
        return np.full(n, np.inf)

    def to_spec(self) -> Any:
        """Plain data that :func:`dist_from_spec` turns back into this distribution."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "infinite":
            return "infinite"
        if self.kind == "exponential":
            return {"dist": "exponential", "mean": self.a}
        if self.kind == "lognormal":
            m = self.mean
            return {"dist": "lognormal", "mean": m, "sd": m * math.sqrt(math.expm1(self.b ** 2))}
        if self.kind == "weibull":
            return {"dist": "weibull", "scale": self.a, "shape": self.b}
        return {"dist": "uniform", "low": self.a, "high": self.b}

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {self.a:g} s"
        if self.kind == "infinite":
            return "infinite"
        if self.kind == "lognormal":
            sd = self.mean * math.sqrt(math.expm1(self.b ** 2))
            return f"lognormal mean {self.mean:.0f} s, sd {sd:.0f} s"
        if self.kind == "weibull":
            return f"weibull mean {self.mean:.0f} s, shape {self.b:g}"
        if self.kind == "uniform":
            return f"uniform {self.a:g}-{self.b:g} s"
        return f"exponential mean {self.a:.0f} s"


def dist_from_spec(field: str, spec: object) -> Dist:
    """Build a :class:`Dist` from TOML data; ``field`` names it in error messages."""
    if isinstance(spec, Dist):
        return spec
    if isinstance(spec, str):
        if spec in ("infinite", "none"):
            return Dist.infinite()
        raise InvalidInput(f"{field} must be a number, \"infinite\" or a table with dist = ..., got {spec!r}")
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Dist.fixed(_num(field, spec, positive=True))
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{field} must be a number, \"infinite\" or a table with dist = ..., got {spec!r}")
    d = dict(spec)
    kind = d.pop("dist", None)
    if kind not in DIST_KINDS:
        raise InvalidInput(f"{field}.dist must be one of {sorted(DIST_KINDS)!r}, got {kind!r}")
    unknown = set(d) - set(DIST_KINDS[kind])
    if unknown:
        raise InvalidInput(f"unknown {field} parameter(s) {sorted(unknown)!r} for dist {kind!r} "
                           f"(allowed: {list(DIST_KINDS[kind])!r})")
    try:
        if kind == "fixed":
            return Dist.fixed(d["value"])
        if kind == "infinite":
            return Dist.infinite()
        if kind == "exponential":
            if ("mean" in d) == ("rate" in d):
                raise InvalidInput(f"{field}: exponential needs exactly one of mean or rate")
            if "rate" in d:
                return Dist.exponential(1.0 / _num(f"{field}.rate", d["rate"], positive=True, allow_zero=False))
            return Dist.exponential(d["mean"])
        if kind == "lognormal":
            if "mean" not in d or ("sd" in d) == ("cv" in d):
                raise InvalidInput(f"{field}: lognormal needs mean and exactly one of sd or cv")
            sd = d["sd"] if "sd" in d else _num(f"{field}.cv", d["cv"], positive=True) * _num(
                f"{field}.mean", d["mean"])
            return Dist.lognormal(d["mean"], sd)
        if kind == "weibull":
            if "shape" not in d:
                raise InvalidInput(f"{field}: weibull needs shape and one of mean or scale")
            return Dist.weibull(d["shape"], mean=d.get("mean"), scale=d.get("scale"))
        return Dist.uniform(d["low"], d["high"])
    except KeyError as e:
        raise InvalidInput(f"{field}: dist {kind!r} needs parameter {e.args[0]!r}") from None
    except InvalidInput as e:
        msg = str(e)
        if not msg.startswith(field):
            msg = f"{field}: {msg}"
        raise InvalidInput(msg) from None
