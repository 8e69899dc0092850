"""Devito equations of the viscoacoustic wave equation (`jaxseis.Viscoacoustic`): variable-density
acoustics with one standard linear solid (Blanch and Symes 1995) in second-order form.

Continuous system (pressure `p`, memory variable `r`, `L p = rho div(b grad p)`, `b = 1/rho`):

    m p_tt + damp p_t = (1 + tau) L p - r + q,        tau_s r_t + r = tau L p,

with the relaxation times from `qp` at the reference angular frequency `w0 = 2 pi f0`:
`tau_s = (sqrt(1 + 1/qp^2) - 1/qp) / w0`, `tau_e = 1 / (w0^2 tau_s)` and `tau = tau_e / tau_s - 1`.
In the frequency domain `r = tau L p / (1 + i w tau_s)`, so the modulus is
`M(w) = (rho/m) (1 + i w tau_e) / (1 + i w tau_s)` and `Q(w0) = qp`; `tau -> 0` (large `qp`)
is `jaxseis.VariableDensityAcoustic`.

Discrete scheme: `L` is the staggered operator of `VariableDensityAcoustic` (`L = rho K`, `K`
symmetric; its coefficients, free-surface treatment and Born/imaging pieces are reused from there),
the memory variable lives at half steps, `R^n = r^{n + 1/2}`, and is advanced by Crank-Nicolson
centred at step n; the pressure uses its mean `(R^n + R^{n-1}) / 2`. With
`g = 2 tau_s / (2 tau_s + dt)`, `a = 2g - 1`, `beta = tau (1 - a)` and `c = 1 + tau g`
(all pointwise functions of `qp` and `dt`):

    R^n       = a R^{n-1} + beta L p^n
    D p^{n+1} = dt^2 (c L p^n - g R^{n-1} + q^n) + m (2p^n - p^{n-1}) + dt damp p^n,  D = m + dt damp

Devito indexing: `u[k] = p^{k-1}` (as every physics) and `r[k] = R^{k-2}`, so step k reads `u[k]`,
`u[k-1]`, `r[k]` and writes `u[k+1]`, `r[k+1]`; both `u` (3 levels) and `r` (2 levels) are state
fields (Checkpointed keeps the levels of both at its block starts).

Stability (exact for each eigenmode `L -> -lambda` of the undamped scheme): the characteristic
polynomial of the three-level recursion in `(p^n, p^{n-1}, R^{n-1})` with `x = dt^2 lambda / m` is
`z^3 - (a + 2 - c x) z^2 + (a (2 - c x) + 1 - (1 + a) beta x / 2) z - a`; Jury's conditions reduce to
`x (1 + tau) < 4` (and the weaker `x tau < 4`): the limit of the acoustic scheme with the unrelaxed
modulus `(1 + tau) rho / m`, for any `tau_s / dt`. `critical_dt` is `2 / sqrt(max(lambda (1 + tau)
/ m))` with the Gershgorin bound of `VariableDensityAcoustic`; a small `qp` raises `1 + tau`
(about `4 qp^-2` for `qp << 1`), and a `qp` too small for the `dt` is refused by name.

Adjoint (the exact transpose of the recursion; multipliers `lambda^n` of the pressure update and
`mu^n = dt^2 eta^n` of the memory update, row by row of the transposed system):

    eta^n         = a eta^{n+1} - g lambda^{n+1}
    D lambda^{n-1} = dt^2 K(rho (c lambda^n + beta eta^n)) + m (2 lambda^n - lambda^{n+1})
                    + dt damp lambda^n + R^T dbar^n

Devito indexing: `v[k] = lambda^{k-1}` and `e[k] = eta^k`; reverse step k writes
`e[k-1] = a e[k] - g v[k+1]` and then `v[k-1]` from `v[k]`, `v[k+1]` and `Lambda = c v[k] + beta
e[k-1]`.

Born (the exact derivative in the coefficients `dm`, `drho`, `db_d`; `qp` has none):

    dR^n       = a dR^{n-1} + beta (L dp^n + dL p^n)
    D dp^{n+1} = dt^2 (c (L dp^n + dL p^n) - g dR^{n-1}) - dm (p^{n+1} - 2p^n + p^{n-1})
                 + m (2dp^n - dp^{n-1}) + dt damp dp^n,     dL p = drho K p + rho sum_d Dm_d(db_d Dp_d p)

Imaging (the transpose of the Born sources, which enter the pressure rows with `dt^2 c dL p^n` and
the memory rows with `beta dL p^n`: both pair with `Lambda^n = c lambda^n + beta eta^n`; at reverse
step k it reads u[k], v[k-1 .. k+1] and e[k-1]):

    g_m   = -sum_k u[k] (v[k+1] - 2v[k] + v[k-1])
    g_rho =  sum_k dt^2 Lambda K u[k]
    g_b_d = -sum_k dt^2 Dp_d u[k] Dp_d(rho Lambda)

and the host maps `g_rho`, `g_b_d` to `rho`'s gradient as for `VariableDensityAcoustic`. Only `u` is
saved for gradients (the memory variable's coefficients do not depend on `m` or `rho`).

Free surface: as `VariableDensityAcoustic` (odd mirror of `u`, `du`, `v`; even coefficients about
the surface, now also `tau_s` and `tau`, so `r`, `dr` and `e` stay odd and the mirrored scheme is
its own transpose; the `rho`/`b` imaging reads `imask * Lambda`).
"""

from __future__ import annotations

import numpy as np
from devito import Eq, Inc

from ...devito._kernel import mirror
from ..variable_density._devito import VariableDensityKernel


def relaxation_times(qp, f0):
    """`(tau_s, tau)`: stress relaxation time (ms) and `tau = tau_e / tau_s - 1` of one standard
    linear solid with quality factor `qp` at the reference frequency `f0` (kHz)."""
    y = 1.0 / np.asarray(qp, dtype=np.float64)
    sy = np.sqrt(1.0 + y**2) + y  # sqrt(1 + y^2) - y = 1 / sy without cancellation at small qp
    return 1.0 / (sy * 2.0 * np.pi * f0), 2.0 * y * sy


def unrelaxed_factor(qp):
    """`1 + tau = tau_e / tau_s`: the unrelaxed over relaxed modulus (>= 1, independent of f0)."""
    y = 1.0 / np.asarray(qp, dtype=np.float64)
    return (np.sqrt(1.0 + y**2) + y) ** 2


def min_qp(factor):
    """The smallest `qp` whose `unrelaxed_factor` is at most `factor` (> 1)."""
    k = (factor + 1.0) / (factor - 1.0)
    return np.sqrt(k**2 - 1.0)


class ViscoacousticKernel(VariableDensityKernel):
    """Variable-density acoustics plus one standard linear solid (see the module docstring)."""

    parameters = ("m", "rho", "qp")
    saved = ("u",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.f0 = float(ctx.options["reference_frequency"])
        self.tau_s = ctx.coefficient("tau_s")
        self.tau = ctx.coefficient("tau")
        self.r = ctx.state("r", time_order=1)
        self.dr = ctx.born_state("dr", time_order=1)
        self.e = ctx.adjoint_state("e", time_order=1)

    # ------------------------------------------------------------------ host-side maps
    def coefficients(self, model):
        out = super().coefficients(model)
        tau_s, tau = relaxation_times(self._mirror(model["qp"]), self.f0)
        out["tau_s"], out["tau"] = tau_s, tau
        return out

    def _sls(self):
        """`(a, beta, g, c)` of the scheme (symbolic in dt)."""
        dt, ts, tau = self.ctx.dt, self.tau_s, self.tau
        g = 2 * ts / (2 * ts + dt)
        a = 2 * g - 1
        return a, tau * (1 - a), g, 1 + tau * g

    # ------------------------------------------------------------------ equations
    def forward_eqs(self, source, save, born, sub):
        ctx = self.ctx
        u = ctx.saved(self.u) if save else self.u
        r = self.r
        rho, dt, lf = self.c["rho"], ctx.dt, self.lf
        a, beta, g, c = self._sls()
        q = ctx.wts * ctx.wav if source == "extended" else 0
        eqs = lf.eqs + self._fluxes("fu", u)
        lu = rho * self._div("fu")
        eqs.append(Eq(r.forward, a * r + beta * lu))
        eqs.append(lf.step(u, c * lu - g * r + q)[1])
        if source == "point":
            eqs += ctx.src.inject(field=u.forward, expr=ctx.src * lf.a / ctx.cell_volume)
        eqs += mirror(ctx, u.forward)
        if born:
            du, dr, dc = self.du, self.dr, self.dc
            eqs += [Eq(t, self.c[f"b_{d.name}"] * self._dp(du, d)
                       + dc[f"b_{d.name}"] * self._dp(u, d))
                    for t, d in zip(self.flux["fd"], self.dims)]
            dlu = rho * self._div("fd") + dc["rho"] * self._div("fu")
            eqs.append(Eq(dr.forward, a * dr + beta * dlu))
            src = c * dlu - g * dr - dc["m"] * (u.forward - 2 * u + u.backward) / dt**2
            eqs.append(lf.step(du, src)[1])
            eqs += mirror(ctx, du.forward)
            eqs += self.rec.interpolate(expr=du)
        else:
            eqs += self.rec.interpolate(expr=u)
        if sub:
            eqs += [Eq(ctx.subsampled("usub", sub), u)]
        name = "VQBorn" if born else ("VQForwardExt" if source == "extended" else "VQForward")
        return eqs, name + ("Save" if save else "") + (f"Sub{sub}" if sub else "")

    def adjoint_eqs(self, srca, ext, grad, sub):
        ctx = self.ctx
        rho, dt, v, e, lf = self.c["rho"], ctx.dt, self.v, self.e, self.lf
        a, beta, g, c = self._sls()
        eqs = lf.eqs + [Eq(e.backward, a * e - g * v.forward)]
        lam = c * v + beta * e.backward
        eqs += self._fluxes("fv", rho * lam)
        eqs.append(lf.step(v, self._div("fv"), forward=False)[1])
        eqs += self.rec.inject(field=v.backward, expr=self.rec * lf.inv_D)
        eqs += mirror(ctx, v.backward)
        if srca:
            eqs += ctx.srca.interpolate(expr=v * dt**2 / ctx.cell_volume)
        if ext:
            eqs += [Inc(ctx.wadj, dt**2 * ctx.wav * v)]
        if grad:
            eqs += self._imaging(grad, sub, v, lam)
        name = ("VQAdjoint" + ("Src" if srca else "") + ("Ext" if ext else "")
                + ("Grad" + "".join(n[0] for n in grad) if grad else ""))
        return eqs, name + (f"Sub{sub}" if sub else "")
