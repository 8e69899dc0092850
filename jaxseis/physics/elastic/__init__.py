"""Isotropic elasticity, velocity-stress form: `jaxseis.Elastic` (model `{"vp", "vs", "rho"}`)."""

from __future__ import annotations

import functools
import itertools as it
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..._errors import InvalidArgument
from ..._operator import WaveOperator
from ..._physics import Parameter

__all__ = ["Elastic"]


def _staggered_weights(space_order):
    """Half-cell first-derivative weights `c_j` (unit spacing), `j = 1 .. space_order / 2`."""
    k = space_order // 2
    offsets = np.arange(1, k + 1) - 0.5
    powers = np.arange(1, 2 * k, 2)
    a = 2.0 * offsets[None, :] ** powers[:, None]
    rhs = np.zeros(k)
    rhs[0] = 1.0
    return np.linalg.solve(a, rhs)


def _shift(f, axis, s):
    """`out[i] = f[i + s]` along `axis`, zero outside."""
    out = np.zeros_like(f)
    n = f.shape[axis]
    src = [slice(None)] * f.ndim
    dst = [slice(None)] * f.ndim
    if s >= 0:
        src[axis], dst[axis] = slice(s, n), slice(0, n - s)
    else:
        src[axis], dst[axis] = slice(0, n + s), slice(-s, n)
    out[tuple(dst)] = f[tuple(src)]
    return out


def _abs_dp(f, axis, w, h):
    """|Dp| f: forward half-cell derivative with absolute weights."""
    return sum(wj * (_shift(f, axis, j + 1) + _shift(f, axis, -j)) for j, wj in enumerate(w)) / h


def _abs_dm(f, axis, w, h):
    return sum(wj * (_shift(f, axis, j) + _shift(f, axis, -j - 1)) for j, wj in enumerate(w)) / h


@functools.lru_cache(maxsize=8)
def _abs_z_matrices(nz, h, space_order, fs):
    """`|Zp|^T`, `|Zm|^T` of the free surface's depth derivatives (`_devito.z_matrices`), built
    once per depth axis: they are dense `nz x nz` products, several ms each on S2."""
    from ._devito import z_matrices

    out = tuple(np.abs(m).T for m in z_matrices(nz, h, space_order, fs))
    for m in out:
        m.flags.writeable = False
    return out


def _integrate(w, dt):
    """Trapezoidal running time integral of `w` (time first): the explosive source's stress rate."""
    c = jnp.cumsum(w, axis=0)
    return dt * (c - 0.5 * w)


def _integrate_T(g, dt):
    """Transpose of `_integrate`."""
    c = jnp.cumsum(g[::-1], axis=0)[::-1]
    return dt * (c - 0.5 * g)


@dataclass(frozen=True, repr=False)
class Elastic(WaveOperator):
    """Isotropic elastic waves in velocity-stress form (Virieux 1986) on a staggered grid, 2D or 3D.

        rho dv/dt = div(sigma) + f,     d(sigma)/dt = lam tr(eps(v)) I + 2 mu eps(v) + m(t)

    with `lam = rho (vp**2 - 2 vs**2)`, `mu = rho vs**2`. The model is a dict `{"vp": P velocity
    (km/s), "vs": S velocity (km/s, >= 0; vs = 0 cells are fluid), "rho": density (g/cm^3)}` of
    arrays of shape `grid.shape`; gradients, `born_adjoint` images and Born perturbations are dicts
    with the same keys. Valid models: `vp > 0`, `vs >= 0`, `rho > 0`, `vp**2 >= 4/3 vs**2`.

    **Sources** (`source=`, unit-strength point sources of the PDE, injection divided by the cell
    volume):

    - `"explosive"`: an isotropic stress-rate source in the normal stresses whose rate is the time
      integral of the wavelet, so that the pressure responds like an acoustic point source of the
      wavelet: in a fluid (or for P waves in a homogeneous solid) `p` is `m(x_s) = 1/vp(x_s)**2`
      times the data of `VariableDensityAcoustic` with the same wavelet.
    - `"fx"`, `"fz"` (`"fy"` in 3D): a body force per unit mass (an acceleration, km/s per ms) along
      that axis, injected into the velocity component at its staggered node.

    **Records** (`record=`, a tuple, in data order): `"p"` (pressure, minus the mean normal stress,
    at the nodes), `"vx"`, `"vz"` (`"vy"` in 3D; particle velocity, interpolated at the receiver
    positions from their staggered nodes). Data (and the adjoints' `data`) have shape
    `(nt, nrec, len(record))`.

    The scheme's adjoint, Born and imaging operators are the exact transposes/derivatives of the
    discrete recursion run (staggering, parameter averaging onto staggered nodes and damping
    included; dot tests ~1e-15 in float64). The absorbing layer damps velocities and stresses
    with time-centred factors, which keeps the undamped stability limit (boundary reflections
    about 0.5 % with `nbl=20`; over thousands of steps a small static stress drifts up slowly,
    about 1e-3 of the peak per 1000 steps): `critical_dt` is
    `2 / sqrt(lambda_max)` with a Gershgorin bound of the discrete elastic operator (exact for a
    homogeneous medium with `lam >= 0`).

    `free_surface=True`: the top is traction-free (no damping layer there). The surface is the
    first depth sample itself (the normal-stress row: `t_zz = 0` there, the horizontal normal
    stresses with the stiffness that eliminates `e_zz`, `lam' = 2 mu lam / (lam + 2 mu)`), a half
    cell below a vacuum (zero coefficients above, zero shear stress on the half row above), and
    depth derivatives that act as the image method near the surface (2D and 3D), all exactly
    transposed, so the adjoints stay exact. A fluid surface (`vs = 0`) has zero pressure on the
    first depth sample, like the acoustic physics' free surface: with `vs = 0` everywhere the
    pressure matches `VariableDensityAcoustic`'s (correlation 0.9995). Rayleigh waves (vp 2,
    vs 1) travel within 0.63 % of the Rayleigh speed at ~19 points per Rayleigh wavelength
    (1.4 % at ~9, 0.23 % at ~37). `vz` receivers and `fz` forces above the first `vz` node
    (depth < h_z / 2) use its value there (its image above the surface). In 3D a y-invariant
    model with a line source gives the 2D data (relative L2 3e-8).

    **Arguments:** as `jaxseis.Acoustic` (`grid`, `time`, `space_order`, `nbl`, `free_surface`,
    `dtype`, `storage`), plus `source` and `record`.
    """

    source: str = "explosive"
    record: tuple = ("p",)

    parameters = (
        Parameter("vp", "km/s", "P-wave velocity", lower=0.0, lower_open=True),
        Parameter("vs", "km/s", "S-wave velocity (0: fluid)", lower=0.0),
        Parameter("rho", "g/cm^3", "density", lower=0.0, lower_open=True),
    )
    speed_name = "effective maximum P velocity"

    def __post_init__(self):
        super().__post_init__()
        axes = ("x", "z") if self.grid.ndim == 2 else ("x", "y", "z")
        forces = tuple("f" + a for a in axes)
        if self.source not in ("explosive",) + forces:
            raise InvalidArgument(
                f"`source` must be one of {', '.join(map(repr, ('explosive',) + forces))} for a "
                f"{self.grid.ndim}D grid, got {self.source!r}.")
        rec = self.record
        if isinstance(rec, str):
            rec = (rec,)
        rec = tuple(rec) if isinstance(rec, (tuple, list)) else None
        comps = ("p",) + tuple("v" + a for a in axes)
        if not rec or any(c not in comps for c in rec) or len(set(rec)) != len(rec):
            raise InvalidArgument(
                f"`record` must be a non-empty tuple of distinct components among "
                f"{', '.join(map(repr, comps))}, got {self.record!r}.")
        object.__setattr__(self, "record", rec)

    @property
    def data_components(self):
        """The recorded components, in the order of the data's last axis."""
        return self.record

    @classmethod
    def devito_kernel(cls):
        from ._devito import ElasticKernel

        return ElasticKernel

    # ------------------------------------------------------------------ the explosive wavelet
    def _wavelet(self, wavelet, nsrc):
        q = super()._wavelet(wavelet, nsrc)
        return _integrate(q, self.time.dt) if self.source == "explosive" else q

    def adjoint(self, model, data, src, rec):
        out = super().adjoint(model, data, src, rec)
        return _integrate_T(out, self.time.dt) if self.source == "explosive" else out

    def forward_extended(self, model, weights, wavelet, rec):
        if self.source == "explosive":
            w = self._array(wavelet, "wavelet", (self.time.nt,))
            wavelet = _integrate(w, self.time.dt)
        return super().forward_extended(model, weights, wavelet, rec)

    def adjoint_extended(self, model, data, wavelet, rec):
        if self.source == "explosive":
            w = self._array(wavelet, "wavelet", (self.time.nt,))
            wavelet = _integrate(w, self.time.dt)
        return super().adjoint_extended(model, data, wavelet, rec)

    # ------------------------------------------------------------------ validity and stability
    def constraints(self, model, label):
        vp = np.asarray(model["vp"], dtype=np.float64)
        vs = np.asarray(model["vs"], dtype=np.float64)
        bad = vp**2 < 4.0 / 3.0 * vs**2 * (1 - 1e-6)
        if np.any(bad):
            ratio = float(np.max(vs[bad] / vp[bad]))
            raise InvalidArgument(
                f"`vs` in `{label}` must satisfy vp**2 >= 4/3 vs**2 (a positive bulk modulus), "
                f"i.e. vs/vp <= {np.sqrt(0.75):.4f}: {int(bad.sum())} of {bad.size} cells do not, "
                f"got vs/vp up to {ratio:.4g}.")

    def _eigen_bound(self, model):
        """Gershgorin bound, per velocity node, of the largest eigenvalue of `B G C G^T`
        (1/ms^2)."""
        vp, vs, rho = (np.asarray(model[k], dtype=np.float64) for k in ("vp", "vs", "rho"))
        from ._devito import surface_coefficients

        fs = None
        if self.free_surface:  # the vacuum row above the surface, as the solver pads it
            vp, vs, rho = (np.concatenate([a[..., :1], a], axis=-1) for a in (vp, vs, rho))
            fs = 1
        lam, mu = rho * (vp**2 - 2 * vs**2), rho * vs**2
        nd = vp.ndim
        coef = surface_coefficients(1.0 / rho, lam, mu, fs)
        lam, mu = coef["lam"], coef["mu"]
        w = np.abs(_staggered_weights(self.space_order))
        h = self.grid.spacing
        pairs = list(it.combinations(range(nd), 2))
        ones = np.ones(vp.shape)
        z = nd - 1
        cut = fs is not None  # the free surface's depth derivatives (the kernel's _zp, _zm)
        if cut:
            zp, zm = _abs_z_matrices(vp.shape[-1], float(h[z]), self.space_order, fs)

        def dp(f, a):
            return f @ zp if cut and a == z else _abs_dp(f, a, w, h[a])

        def dm(f, a):
            return f @ zm if cut and a == z else _abs_dm(f, a, w, h[a])

        # |E| 1: strain-like magnitudes from unit velocities
        en = [dm(ones, a) for a in range(nd)]
        es = [dp(ones, j) + dp(ones, i) for i, j in pairs]
        # the surface row's masks (no t_zz, no e_zz there; see _devito.ElasticKernel._C)
        pm = [1.0] * (nd - 1) + [1.0 - coef["sm"] if fs is not None else 1.0]
        tr = sum(p * e for p, e in zip(pm, en))
        tn = [p * (np.abs(lam) * tr + 2 * mu * e) for p, e in zip(pm, en)]
        ts = [coef[("mu", i, j)] * e for (i, j), e in zip(pairs, es)]
        out = np.zeros(vp.shape)
        for a in range(nd):
            row = dp(tn[a], a)
            for k, (i, j) in enumerate(pairs):
                if a in (i, j):
                    e = j if a == i else i
                    row = row + dm(ts[k], e)
            out = np.maximum(out, coef[("b", a)] * row)
        return out

    def critical_dt(self, model) -> float:
        """Largest stable dt (ms) for `model`: `2 / sqrt(lambda_max)` with a Gershgorin bound of the
        discrete operator's largest eigenvalue."""
        return float(2.0 / np.sqrt(self._eigen_bound(self._host_model(model)).max()))

    def _bound_of_bound(self, model) -> float:
        """An upper bound (1/ms^2) of `_eigen_bound(model).max()` from the extrema of `b = 1/rho`,
        `|lam|` and `mu` alone: every coefficient the bound reads (averages, the surface row's
        halved or doubled values, `surface_lambda`) is at most `max b` (twice that on a free
        surface), `max |lam|` or `max mu`, and each absolute derivative of a non-negative field
        is at most its largest absolute row sum times the field's maximum. Equal to the bound in
        a homogeneous medium without a free surface; larger elsewhere. A few array passes
        instead of the full bound's ~13 ms on S2."""
        vp, vs, rho = (np.asarray(model[k], dtype=np.float64) for k in ("vp", "vs", "rho"))
        vs2 = vs * vs
        lam = np.abs(rho * (vp * vp - 2 * vs2)).max()
        mu = (rho * vs2).max()
        b = 1.0 / rho.min() * (2.0 if self.free_surface else 1.0)
        nd = vp.ndim
        W = float(np.sum(np.abs(_staggered_weights(self.space_order))))
        h = self.grid.spacing
        Dp = [2 * W / h[a] for a in range(nd)]
        Dm = list(Dp)
        if self.free_surface:  # the cut depth derivatives' largest absolute row sums
            zp, zm = _abs_z_matrices(vp.shape[-1] + 1, float(h[-1]), self.space_order, 1)
            Dp[-1], Dm[-1] = float(zp.sum(axis=0).max()), float(zm.sum(axis=0).max())
        pairs = list(it.combinations(range(nd), 2))
        rows = []
        for a in range(nd):
            row = Dp[a] * (lam * sum(Dm) + 2 * mu * Dm[a])
            for i, j in pairs:
                if a in (i, j):
                    row += Dm[j if a == i else i] * mu * (Dp[i] + Dp[j])
            rows.append(row)
        return b * max(rows)

    def _certainly_stable(self, model, dt) -> bool:
        """`dt <= critical_dt(model)`, shown by `_bound_of_bound` (True), or not shown (False:
        `critical_dt` decides)."""
        return dt <= 2.0 / np.sqrt(self._bound_of_bound(self._host_model(model)))

    def max_speed(self, model, xp=np):
        """The effective maximum P velocity (km/s) the stability limit uses: `vp` in a homogeneous
        medium with `vs <= vp / sqrt(2)`, more at strong contrasts (Gershgorin bound)."""
        lam = self._eigen_bound(self._host_model(model)).max()
        w = 2 * np.sum(np.abs(_staggered_weights(self.space_order)))
        return float(np.sqrt(lam / (w**2 * sum(1.0 / h**2 for h in self.grid.spacing))))

    def min_speed(self, model, xp=np):
        vs, vp = model["vs"], model["vp"]
        return xp.min(xp.where(vs > 0, vs, vp))
