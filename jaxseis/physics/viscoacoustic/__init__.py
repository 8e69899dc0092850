"""Viscoacoustics: `jaxseis.Viscoacoustic` (model `{"m", "rho", "qp"}`), variable-density acoustics
with one standard linear solid."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._errors import InvalidArgument, UnstableTimeStep
from ..._operator import WaveOperator
from ..._physics import Parameter
from ..variable_density import _staggered_weights, eigen_bound, eigen_bound_max
from ._devito import min_qp, unrelaxed_factor

__all__ = ["Viscoacoustic"]


@dataclass(frozen=True, repr=False)
class Viscoacoustic(WaveOperator):
    """Viscoacoustic wave equation: variable-density acoustics with one standard linear solid
    (Blanch and Symes 1995) whose relaxation times give the quality factor `qp` at
    `reference_frequency`:

        m p_tt = (1 + tau) rho div(grad(p) / rho) - r + q,    tau_s r_t + r = tau rho div(grad(p) / rho)

    with `tau_s = (sqrt(1 + 1/qp^2) - 1/qp) / w0`, `tau_e = 1 / (w0^2 tau_s)`, `tau = tau_e/tau_s - 1`,
    `w0 = 2 pi reference_frequency`: the modulus `(rho / m) (1 + i w tau_e) / (1 + i w tau_s)` has
    quality factor `qp` at `w0` (and nearly so over a decade around it); large `qp` is
    `jaxseis.VariableDensityAcoustic`. Waves travel at `vp = 1/sqrt(m)` at low frequency and slightly
    faster at high frequency (physical dispersion).

    Same constructor, methods, units and shapes as `jaxseis.VariableDensityAcoustic`, plus the
    option `reference_frequency` (kHz, default 0.010). The model is a dict `{"m": squared slowness
    (s^2/km^2), "rho": density (g/cm^3), "qp": quality factor (dimensionless, > 0)}` of arrays of
    shape `grid.shape`.

    Derivatives: gradients, `born` and `born_adjoint` in `m` and `rho` (exact for the discrete
    scheme: the adjoint is its transpose, see `_devito.py`). `qp` has none: `jax.grad` asking for
    it raises `NotImplementedError` naming it (keep it out of the differentiated arguments, e.g.
    close over it, or `jax.lax.stop_gradient` it); `born`'s `dmodel["qp"]` must be zero (a nonzero
    one raises `NotImplementedError`) and `born_adjoint` returns zeros for `"qp"` (the exact adjoint
    of that `born`).

    Stability: the explicit scheme is stable for `dt <= critical_dt(model)`, the acoustic limit for
    the unrelaxed (high-frequency) modulus, smaller by `sqrt(tau_e / tau_s)` (0.95 at `qp = 20`,
    0.41 at `qp = 1`). A `qp` too small for the `TimeAxis` dt raises `UnstableTimeStep` naming `qp`
    and the smallest stable value, never NaN data.

    **Arguments:** as `jaxseis.Acoustic` (`grid`, `time`, `space_order`, `nbl`, `free_surface`,
    `dtype`, `storage`) and `reference_frequency` (kHz, > 0).
    """

    reference_frequency: float = 0.010

    parameters = (
        Parameter("m", "s^2/km^2", "squared slowness 1/vp^2", lower=0.0, lower_open=True),
        Parameter("rho", "g/cm^3", "density", lower=0.0, lower_open=True),
        Parameter("qp", "1", "P-wave quality factor at reference_frequency", lower=0.0,
                  lower_open=True, differentiable=False),
    )
    speed_name = "effective unrelaxed maximum velocity"

    def __post_init__(self):
        super().__post_init__()
        f0 = self.reference_frequency
        if isinstance(f0, bool) or not isinstance(f0, (int, float, np.floating, np.integer)) \
                or not math.isfinite(f0) or f0 <= 0:
            raise InvalidArgument(
                f"`reference_frequency` must be a positive finite number (kHz), got {f0!r}.")
        object.__setattr__(self, "reference_frequency", float(f0))

    @classmethod
    def devito_kernel(cls):
        from ._devito import ViscoacousticKernel

        return ViscoacousticKernel

    def _bounds(self, model):
        """Per node: the Gershgorin bound of the elastic operator (1/ms^2) and `1 + tau`."""
        lam = eigen_bound(self.grid.spacing, self.space_order, model)
        return lam, unrelaxed_factor(np.asarray(model["qp"], dtype=np.float64))

    def max_speed(self, model, xp=np):
        """The effective maximum velocity (km/s) of the stability limit: the unrelaxed
        (high-frequency) velocity `vp sqrt(tau_e / tau_s)` in a smooth medium, somewhat more at
        strong density contrasts (Gershgorin bound of the discrete operator)."""
        lam, fac = self._bounds(model)
        w = (2 * np.sum(np.abs(_staggered_weights(self.space_order)))) ** 2
        return float(np.sqrt((lam * fac).max() / (w * sum(1.0 / h**2 for h in self.grid.spacing))))

    def min_speed(self, model, xp=np):
        return 1.0 / xp.sqrt(xp.max(model["m"]))

    def critical_dt(self, model) -> float:
        """Largest stable dt (ms) for `model`: `2 / sqrt(max(lambda (1 + tau)))`, `lambda` the
        Gershgorin bound of the acoustic operator's eigenvalues and `1 + tau = tau_e / tau_s` (exact
        for each eigenmode of the scheme, see `_devito.py`)."""
        lam, fac = self._bounds(self._host_model(model))
        return float(2.0 / np.sqrt((lam * fac).max()))

    def _certainly_stable(self, model, dt) -> bool:
        """`dt <= critical_dt(model)` shown from extrema alone (False: not shown): the acoustic
        bound's `eigen_bound_max` times the largest `1 + tau`, that of the smallest `qp`."""
        model = self._host_model(model)
        fac = float(unrelaxed_factor(np.min(np.asarray(model["qp"], dtype=np.float64))))
        lam = eigen_bound_max(self.grid.spacing, self.space_order, model)
        return dt <= 2.0 / math.sqrt(lam * fac)

    def constraints(self, model, label):
        """A `qp` too small for dt (when dt is stable without attenuation) is refused by name."""
        if self._certainly_stable(model, self.time.dt):
            return  # stable with attenuation (so the per-node search below would pass)
        lam, fac = self._bounds(model)
        dt = self.time.dt
        x = lam * dt**2
        if x.max() >= 4.0 or np.all(x * fac <= 4.0):
            return  # stable, or unstable without attenuation too: the dt check reports that
        need = float(np.max(min_qp(4.0 / x)))
        qp = np.asarray(model["qp"], dtype=np.float64)
        raise UnstableTimeStep(
            f"`qp` in `{label}` (quality factor, > 0) is too small for `dt` = {dt:g} ms: the "
            f"standard linear solid stiffens the medium at high frequency by tau_e/tau_s (up to "
            f"{float(fac.max()):.4g} here, minimum qp {float(qp.min()):.4g}), and the scheme is "
            f"stable only for qp >= {need:.4g} everywhere at this dt (or dt <= "
            f"{2.0 / math.sqrt(float((lam * fac).max())):.6g} ms for this qp). Use a larger qp or "
            f"a smaller TimeAxis dt.")
