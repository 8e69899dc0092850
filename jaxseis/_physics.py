"""What a physics declares about its model: `Parameter`, the description of one model parameter.

Every physics class (`jaxseis.Acoustic`, `jaxseis.VariableDensityAcoustic`, ...) lists its model
parameters in `parameters`, in a fixed order; the model dict must have exactly these keys (a bare
array for `Acoustic`, whose only parameter is `m`). The core reads the valid range of each
parameter for its value checks, pads each parameter onto the absorbing layer by edge replication,
and returns gradients and Born images as the same pytree as the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Parameter", "PerDimension"]


@dataclass(frozen=True)
class Parameter:
    """One model parameter of a physics.

    **Fields:**

    - `name`: the key in the model dict (`"m"`, `"rho"`, ...).
    - `unit`: its unit (`"s^2/km^2"`, `"g/cm^3"`, `"1"` for dimensionless, `"rad"`).
    - `meaning`: one line saying what it is (used in error messages and `repr`).
    - `lower`, `upper`: the valid range (`None`: unbounded on that side); `lower_open` /
      `upper_open` say whether the bound itself is excluded.
    - `differentiable`: whether gradients and Born perturbations w.r.t. it are implemented
      (if not, `jax.grad` asking for it raises `NotImplementedError` naming it).
    - `ndim`: the grid dimension it exists in (`None`: every dimension; `3` for an azimuth).
    """

    name: str
    unit: str
    meaning: str
    lower: float | None = None
    upper: float | None = None
    lower_open: bool = False
    upper_open: bool = False
    differentiable: bool = True
    ndim: int | None = None

    @property
    def valid_range(self) -> str:
        """The valid range as text, e.g. `"> 0"`, `"(-0.5, inf)"`, `"any finite value"`."""
        lo, hi = self.lower, self.upper
        if lo is None and hi is None:
            return "any finite value"
        if hi is None:
            return f"{'>' if self.lower_open else '>='} {lo:g}"
        if lo is None:
            return f"{'<' if self.upper_open else '<='} {hi:g}"
        return (f"{'(' if self.lower_open else '['}{lo:g}, {hi:g}{')' if self.upper_open else ']'}")

    def holds(self, x) -> bool:
        """Whether every value of the NumPy array `x` is finite and in the valid range, from its
        minimum and maximum (NaN propagates into both; no temporaries): the fast path of
        `jaxseis._checks.check_model`, which looks for the offending cells only when False."""
        if x.size == 0:
            return True
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        if self.lower is not None and math.isfinite(self.lower):
            if (lo <= self.lower) if self.lower_open else (lo < self.lower):
                return False
        if self.upper is not None and math.isfinite(self.upper):
            if (hi >= self.upper) if self.upper_open else (hi > self.upper):
                return False
        return True

    def outside(self, x, xp):
        """Boolean mask of the values of `x` outside the valid range (NaN counts as outside)."""
        bad = ~xp.isfinite(x)
        if self.lower is not None and math.isfinite(self.lower):
            bad = bad | ((x <= self.lower) if self.lower_open else (x < self.lower))
        if self.upper is not None and math.isfinite(self.upper):
            bad = bad | ((x >= self.upper) if self.upper_open else (x > self.upper))
        return bad

    def __str__(self):
        return f"{self.name} ({self.unit}, {self.valid_range}): {self.meaning}"


class PerDimension:
    """`parameters` of a physics whose model keys depend on the grid dimension (a 3D-only azimuth):
    on the class, every parameter (`P.parameters` stays a tuple); on an operator, those of its
    grid's dimension (`Parameter.ndim` `None` or equal to `grid.ndim`)."""

    def __init__(self, *parameters: Parameter):
        self.all = tuple(parameters)

    def __get__(self, obj, cls=None):
        if obj is None:
            return self.all
        return self.for_ndim(obj.grid.ndim)

    def for_ndim(self, ndim: int) -> tuple:
        return tuple(p for p in self.all if p.ndim in (None, ndim))


def parameters_for(cls, ndim: int | None, options=None) -> tuple:
    """The parameters a physics class takes on a grid of dimension `ndim` (None: any) with the
    physics `options` (a dict of constructor options; a class may drop parameters for some, via
    its classmethod `parameters_for_options(parameters, options)`)."""
    out = tuple(p for p in cls.parameters if ndim is None or p.ndim in (None, ndim))
    hook = getattr(cls, "parameters_for_options", None)
    return hook(out, dict(options or {})) if hook is not None else out
