"""Variable-density isotropic acoustics: `jaxseis.VariableDensityAcoustic` (model `{"m", "rho"}`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._operator import WaveOperator
from ..._physics import Parameter

__all__ = ["VariableDensityAcoustic"]


def _staggered_weights(space_order):
    """Half-cell first-derivative weights `c_j` (unit spacing), `j = 1 .. space_order / 2`:
    `Dp f[i] = sum_j c_j (f[i + j] - f[i - j + 1])`."""
    k = space_order // 2
    offsets = np.arange(1, k + 1) - 0.5
    # sum_j c_j 2 x_j^p = delta_{p,1} for odd p = 1, 3, ..., 2k - 1.
    powers = np.arange(1, 2 * k, 2)
    a = 2.0 * offsets[None, :] ** powers[:, None]
    rhs = np.zeros(k)
    rhs[0] = 1.0
    return np.linalg.solve(a, rhs)


def eigen_bound(spacing, space_order, model):
    """Gershgorin bound, per node, of the largest eigenvalue of `(rho / m) K` (1/ms^2), `K` the
    staggered operator `sum_d Dm_d(b_d Dp_d)`: its row sums with the largest buoyancy its stencil
    reaches. `model` holds `m` and `rho` (NumPy, any grid); `spacing` in metres."""
    m = np.asarray(model["m"], dtype=np.float64)
    rho = np.asarray(model["rho"], dtype=np.float64)
    so = space_order
    w = (2 * np.sum(np.abs(_staggered_weights(so)))) ** 2
    lam = np.zeros(m.shape)
    b = 1.0 / rho
    for axis, h in enumerate(spacing):
        bd = np.moveaxis(b, axis, 0)
        half = bd.copy()
        half[:-1] = 0.5 * (bd[:-1] + bd[1:])
        # max of b_d over the half nodes i - so/2 .. i + so/2 - 1 that Dm_d reads at node i
        k = so // 2
        n = half.shape[0]
        padded = np.concatenate([np.repeat(half[:1], k, 0), half, np.repeat(half[-1:], k, 0)])
        bmax = padded[:n].copy()
        for j in range(1, 2 * k):
            np.maximum(bmax, padded[j:j + n], out=bmax)
        lam += np.moveaxis(bmax, 0, axis) * w / h**2
    return lam * rho / m


def eigen_bound_max(spacing, space_order, model):
    """An upper bound (1/ms^2) of `eigen_bound(...).max()` from extrema alone: every buoyancy
    average the stencil reaches is at most `1 / min(rho)`, so each node's row sum is at most
    `max(rho / m) / min(rho) * w * sum_d 1/h_d^2`. Equal to it in a homogeneous medium; a few
    array passes instead of the per-node maxima over each stencil's reach."""
    m = np.asarray(model["m"], dtype=np.float64)
    rho = np.asarray(model["rho"], dtype=np.float64)
    w = (2 * np.sum(np.abs(_staggered_weights(space_order)))) ** 2
    return float((rho / m).max() / rho.min() * w * sum(1.0 / h**2 for h in spacing))


@dataclass(frozen=True, repr=False)
class VariableDensityAcoustic(WaveOperator):
    """Variable-density isotropic acoustic wave equation `m u_tt - rho div(grad(u) / rho) = q`.

    Same constructor, methods, units and shapes as `jaxseis.Acoustic`; the model is a dict
    `{"m": squared slowness 1/vp**2 (s^2/km^2), "rho": density (g/cm^3)}` of arrays of shape
    `grid.shape`, and gradients, `born_adjoint` images and Born perturbations `dmodel` are dicts with
    the same keys. `u` is the pressure; a point source is a unit-strength source of the continuous
    PDE (injection divided by the cell volume), so data converge under grid refinement. With
    constant `rho` the data equal `Acoustic`'s up to the slightly wider stencil of the staggered
    derivatives (relative difference about 1e-3).

    The spatial operator is built from staggered (half-cell) first derivatives with the harmonic
    mean of density between nodes, so the discrete system has an exact transpose (dot tests ~1e-14
    in float64) and a pure density contrast reflects with `(rho2 - rho1) / (rho2 + rho1)`. Any
    parametrisation, e.g. `(vp, rho)` or `(impedance, rho)`, is a JAX function in front of the
    operator: `op.forward({"m": 1 / vp**2, "rho": rho}, ...)` differentiates through it.

    **Arguments:** as `jaxseis.Acoustic` (`grid`, `time`, `space_order`, `nbl`, `free_surface`,
    `dtype`, `storage`).
    """

    parameters = (
        Parameter("m", "s^2/km^2", "squared slowness 1/vp^2", lower=0.0, lower_open=True),
        Parameter("rho", "g/cm^3", "density", lower=0.0, lower_open=True),
    )
    speed_name = "effective maximum velocity"

    @classmethod
    def devito_kernel(cls):
        from ._devito import VariableDensityKernel

        return VariableDensityKernel

    def _eigen_bound(self, model):
        return eigen_bound(self.grid.spacing, self.space_order, model)

    def max_speed(self, model, xp=np):
        """The effective maximum velocity (km/s) the stability limit uses: `vp` in a smooth medium,
        somewhat more at strong density contrasts (Gershgorin bound of the discrete operator)."""
        lam = self._eigen_bound(model)
        w = (2 * np.sum(np.abs(_staggered_weights(self.space_order)))) ** 2
        return float(np.sqrt(lam.max() / (w * sum(1.0 / h**2 for h in self.grid.spacing))))

    def min_speed(self, model, xp=np):
        return 1.0 / xp.sqrt(xp.max(model["m"]))

    def critical_dt(self, model) -> float:
        """Largest stable dt (ms) for `model`: `2 / sqrt(lambda_max)` with a Gershgorin bound of the
        discrete operator's largest eigenvalue (exact for a homogeneous medium)."""
        return float(2.0 / np.sqrt(self._eigen_bound(self._host_model(model)).max()))

    def _certainly_stable(self, model, dt) -> bool:
        """`dt <= critical_dt(model)` shown by `eigen_bound_max` (False: not shown)."""
        return dt <= 2.0 / np.sqrt(eigen_bound_max(self.grid.spacing, self.space_order,
                                                   self._host_model(model)))
