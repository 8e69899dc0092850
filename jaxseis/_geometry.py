"""Static geometry: the spatial `Grid`, the `TimeAxis` and the CFL limit `critical_dt`.

Units: metres, milliseconds, km/s. The last axis is depth. These objects are immutable and hashable,
so they can be static arguments of `jax.jit` and static fields of `equinox.Module`s.
"""

from __future__ import annotations

import functools as ft
import math
from dataclasses import dataclass

import numpy as np

from ._errors import InvalidArgument

__all__ = ["Grid", "TimeAxis", "critical_dt", "fd_weights"]


def _as_float_tuple(value, n, name):
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.size == 1 and n > 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise InvalidArgument(f"`{name}` must have {n} entries (one per axis), got {arr.size}.")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"`{name}` must be finite, got {tuple(arr.tolist())}.")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class Grid:
    """A regular 2D or 3D grid of nodes.

    **Arguments:**

    - `shape`: number of nodes per axis, e.g. `(nx, nz)` or `(nx, ny, nz)`; the last axis is depth.
    - `spacing`: node spacing per axis in metres (a scalar is used for every axis).
    - `origin`: coordinates of node `(0, 0[, 0])` in metres; defaults to zeros.

    Interior node `i` along an axis sits at `origin + i * spacing`.
    """

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...] | None = None

    def __post_init__(self):
        try:
            shape = tuple(int(s) for s in np.asarray(self.shape).reshape(-1))
        except (TypeError, ValueError):
            raise InvalidArgument(f"`shape` must be a tuple of integers, got {self.shape!r}.") from None
        if len(shape) not in (2, 3):
            raise InvalidArgument(f"`shape` must have 2 or 3 entries (2D or 3D), got {shape}.")
        if any(s < 2 for s in shape):
            raise InvalidArgument(f"`shape` entries must be at least 2, got {shape}.")
        spacing = _as_float_tuple(self.spacing, len(shape), "spacing")
        if any(h <= 0 for h in spacing):
            raise InvalidArgument(f"`spacing` must be positive (metres), got {spacing}.")
        origin = (0.0,) * len(shape) if self.origin is None else _as_float_tuple(
            self.origin, len(shape), "origin")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def extent(self) -> tuple[float, ...]:
        """Physical size per axis in metres, `(shape - 1) * spacing`."""
        return tuple((n - 1) * h for n, h in zip(self.shape, self.spacing))

    @property
    def cell_volume(self) -> float:
        """Product of the spacings (m^ndim): the volume a point source is spread over."""
        return float(np.prod(self.spacing))

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """`(min, max)` coordinate per axis in metres."""
        return tuple((o, o + e) for o, e in zip(self.origin, self.extent))

    def coordinates(self, axis: int) -> np.ndarray:
        """Node coordinates along `axis` in metres."""
        return self.origin[axis] + self.spacing[axis] * np.arange(self.shape[axis])

    def __repr__(self):
        return f"Grid(shape={self.shape}, spacing={self.spacing}, origin={self.origin})"


@dataclass(frozen=True)
class TimeAxis:
    """Uniform time samples `t0, t0 + dt, ..., tn` in milliseconds.

    `nt = round((tn - t0) / dt) + 1` samples; `.values` are the sample times.
    """

    t0: float
    tn: float
    dt: float

    def __post_init__(self):
        t0, tn, dt = (float(v) for v in (self.t0, self.tn, self.dt))
        if not all(math.isfinite(v) for v in (t0, tn, dt)):
            raise InvalidArgument(f"`t0`, `tn` and `dt` must be finite, got {(t0, tn, dt)}.")
        if dt <= 0:
            raise InvalidArgument(f"`dt` must be positive (ms), got {dt}.")
        if tn < t0:
            raise InvalidArgument(f"`tn` must be >= `t0`, got t0={t0} ms and tn={tn} ms.")
        object.__setattr__(self, "t0", t0)
        object.__setattr__(self, "tn", tn)
        object.__setattr__(self, "dt", dt)

    @property
    def nt(self) -> int:
        return int(round((self.tn - self.t0) / self.dt)) + 1

    @property
    def values(self) -> np.ndarray:
        """The sample times in ms, shape `(nt,)`."""
        return self.t0 + self.dt * np.arange(self.nt)

    def __repr__(self):
        return f"TimeAxis(t0={self.t0:g}, tn={self.tn:g}, dt={self.dt:g}, nt={self.nt})"


@ft.lru_cache(maxsize=None)
def fd_weights(space_order: int) -> tuple[float, ...]:
    """Centred second-derivative weights `c_{-k..k}` (unit spacing) of the given even order.

    These are the weights Devito's `u.laplace` uses for `space_order` along each axis.
    """
    if space_order < 2 or space_order % 2:
        raise InvalidArgument(f"`space_order` must be an even integer >= 2, got {space_order}.")
    k = space_order // 2
    offsets = np.arange(-k, k + 1, dtype=float)
    # Solve the Vandermonde system sum_j c_j x_j^p = p! delta_{p,2} exactly enough in float64.
    vander = np.vander(offsets, increasing=True).T
    rhs = np.zeros(2 * k + 1)
    rhs[2] = 2.0
    return tuple(float(c) for c in np.linalg.solve(vander, rhs))


def critical_dt(grid: Grid, vmax: float, space_order: int = 8) -> float:
    """The largest stable time step (ms) of the leapfrog scheme for velocity `vmax` (km/s).

    Von Neumann analysis of `m (u^{n+1} - 2u^n + u^{n-1}) / dt^2 = lap(u)` with the centred stencil of
    `space_order`: the highest spatial frequency has `-lap` eigenvalue `sum_d S / h_d^2`, with
    `S = sum_k |c_k|` the absolute sum of the weights, and the scheme is stable for
    `dt <= 2 / (vmax * sqrt(sum_d S / h_d^2))`. Spacing is in metres and velocity in km/s = m/ms.
    """
    vmax = float(vmax)
    if not (math.isfinite(vmax) and vmax > 0):
        raise InvalidArgument(f"`vmax` must be a positive velocity in km/s, got {vmax}.")
    s = sum(abs(c) for c in fd_weights(int(space_order)))
    return 2.0 / (vmax * math.sqrt(sum(s / h**2 for h in grid.spacing)))
