"""Devito equations of the variable-density acoustic wave equation
(`jaxseis.VariableDensityAcoustic`): `m u_tt - rho div(b grad u) + damp u_t = q`, `b = 1/rho`.

Time stepping, Devito indexing, damping, point and extended sources and receivers are those of
`jaxseis.Acoustic` (`D = m + dt * damp`):

    D u^{n+1} = dt^2 (L u^n + q^n) + m (2u^n - u^{n-1}) + dt damp u^n

with the spatial operator built from staggered (half-cell) first derivatives

    L u = rho * K u,     K u = sum_d Dm_d( b_d * Dp_d u ),

`Dp_d` the forward half-cell derivative (value at i + 1/2 stored at i: Devito's
`Derivative(f, d, x0=d + h/2)`) and `Dm_d` the backward one (`x0=d - h/2`). Both use the same
coefficients, so on the finite grid with a zero halo `Dm_d = -Dp_d^T` exactly and `K` is symmetric.
Coefficients on the padded grid (computed on the host by `coefficients`): `m` and `rho` at nodes,
`b_<d>` at half nodes, `b_d[i] = (1/rho[i] + 1/rho[i+1]) / 2` (the harmonic mean of density) and
`b_d[n-1] = 1/rho[n-1]`.

Adjoint (the exact transpose of the recursion, for `w^n = D^{-1} lambda^n`):

    D w^n = dt^2 K(rho w^{n+1}) + m (2 w^{n+1} - w^{n+2}) + dt damp w^{n+1} + R^T dbar^n

Born (the exact derivative of the update in the coefficients `dm`, `drho`, `db_d`):

    s^n = drho K u^n + rho sum_d Dm_d(db_d Dp_d u^n) - dm (u^{n+1} - 2u^n + u^{n-1}) / dt^2

Imaging (the transpose of the Born source; at reverse step k it reads u[k] and v[k-1 .. k+1]):

    g_m   = -sum_k u[k] (v[k+1] - 2v[k] + v[k-1])          (summation by parts, as Acoustic)
    g_rho =  sum_k dt^2 v[k] K u[k]
    g_b_d = -sum_k dt^2 Dp_d u[k] Dp_d(rho v[k])

then `rho`'s gradient is `g_rho - sum_d avg_d^T(g_b_d) / rho^2` on the host (chain rule through
`b = 1/rho` and the transpose of the half-node average).

Free surface (zero pressure at the surface row with an odd mirror of u, du and v into the ghost
rows): the mirrored scheme is its own transpose only if K commutes with the reflection about the
surface, so the host makes the coefficients even about it (`rho` in the ghost rows is the mirror
image of the rows below; its transpose folds the ghost rows back), the composite stencil's radius
`space_order - 1` needs `space_order - 2` ghost rows, and the `rho`/`b` imaging reads `imask * v`
(`imask` = 0 at and above the surface, where `v` holds the mirror and not the adjoint variable).
Dot tests hold to ~1e-14 in float64 (tests/test_variable_density.py).
"""

from __future__ import annotations

import numpy as np
from devito import Derivative, Eq, Inc

from ...devito._kernel import Kernel, Leapfrog, mirror


def _half(b, axis):
    """b_d[i] = (b[i] + b[i+1]) / 2 along `axis`, the last cell keeps b[n-1]."""
    b = np.moveaxis(b, axis, 0)
    out = b.copy()
    out[:-1] = 0.5 * (b[:-1] + b[1:])
    return np.moveaxis(out, 0, axis)


def _half_T(g, axis):
    """Transpose of `_half`."""
    g = np.moveaxis(np.asarray(g, dtype=np.float64), axis, 0)
    out = np.zeros_like(g)
    out[:-1] += 0.5 * g[:-1]
    out[1:] += 0.5 * g[:-1]
    out[-1] += g[-1]
    return np.moveaxis(out, 0, axis)


class VariableDensityKernel(Kernel):
    """`m u_tt - rho div(grad(u) / rho) + damp u_t = q` on staggered first derivatives."""

    parameters = ("m", "rho")
    saved = ("u",)

    @classmethod
    def ghost_rows(cls, space_order):
        return max(space_order // 2, space_order - 2)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.dims = list(ctx.grid.dimensions)
        self.names = ["m", "rho"] + [f"b_{d.name}" for d in self.dims]
        self.c = {n: ctx.coefficient(n) for n in self.names}
        self.imask = ctx.coefficient("imask")
        self.dc = {n: ctx.perturbation(n) for n in self.names}
        self.g = {n: ctx.gradient(n) for n in self.names}
        # Per-dimension flux temporaries (b_d Dp_d f), rewritten every time step.
        self.flux = {tag: [ctx.auxiliary(f"{tag}_{d.name}") for d in self.dims]
                     for tag in ("fu", "fd", "fv", "fi")}
        self.u = ctx.state("u")
        self.du = ctx.born_state("du")
        self.v = ctx.adjoint_state("v")
        self.rec = ctx.receiver("rec")
        self.lf = Leapfrog(ctx, self.c["m"])

    # ------------------------------------------------------------------ host-side maps
    def _mirror(self, rho):
        fs, ng = self.ctx.fs, self.ctx.nghost
        if fs is None:
            return np.asarray(rho, dtype=np.float64)
        r = np.array(rho, dtype=np.float64, copy=True)
        for j in range(1, ng + 1):
            r[..., fs - j] = r[..., fs + j]
        return r

    def _mirror_T(self, g):
        fs, ng = self.ctx.fs, self.ctx.nghost
        if fs is None:
            return g
        g = np.array(g, dtype=np.float64, copy=True)
        for j in range(1, ng + 1):
            g[..., fs + j] += g[..., fs - j]
            g[..., fs - j] = 0
        return g

    def coefficients(self, model):
        rho = self._mirror(model["rho"])
        b = 1.0 / rho
        out = {"m": np.asarray(model["m"], dtype=np.float64), "rho": rho}
        for a, d in enumerate(self.dims):
            out[f"b_{d.name}"] = _half(b, a)
        mask = np.ones(rho.shape)
        if self.ctx.fs is not None:
            mask[..., :self.ctx.fs + 1] = 0
        out["imask"] = mask
        return out

    def linearize(self, model, dmodel):
        rho = self._mirror(model["rho"])
        drho = self._mirror(dmodel["rho"])
        db = -drho / rho**2
        out = {"m": np.asarray(dmodel["m"], dtype=np.float64), "rho": drho}
        for a, d in enumerate(self.dims):
            out[f"b_{d.name}"] = _half(db, a)
        return out

    def transpose(self, model, grads):
        rho = self._mirror(model["rho"])
        if self._flux_imaging:
            # the images were accumulated as flux products (`_imaging`): g_b_d = image / b_d^2
            b = 1.0 / rho
            grads = {**grads, **{f"b_{d.name}": np.asarray(grads[f"b_{d.name}"], np.float64)
                                 / _half(b, a) ** 2 for a, d in enumerate(self.dims)}}
        gb = sum(_half_T(grads[f"b_{d.name}"], a) for a, d in enumerate(self.dims))
        grho = np.asarray(grads["rho"], dtype=np.float64) - gb / rho**2
        return {"m": np.asarray(grads["m"], dtype=np.float64), "rho": self._mirror_T(grho)}

    def needs(self, wrt):
        out = ["m"] if "m" in wrt else []
        if "rho" in wrt:
            out += ["rho"] + [f"b_{d.name}" for d in self.dims]
        return tuple(out)

    # ------------------------------------------------------------------ stencils
    def _dp(self, f, d):
        """Forward half-cell derivative Dp_d f (value at i + 1/2 stored at i)."""
        return Derivative(f, d, x0=d + d.spacing / 2, fd_order=self.ctx.space_order)

    def _fluxes(self, tag, f, **kw):
        """`tag_d = b_d * Dp_d(f)` for every dimension."""
        return [Eq(t, self.c[f"b_{d.name}"] * self._dp(f, d), **kw)
                for t, d in zip(self.flux[tag], self.dims)]

    def _div(self, tag):
        """sum_d Dm_d(tag_d)."""
        so = self.ctx.space_order
        return sum(Derivative(t, d, x0=d - d.spacing / 2, fd_order=so)
                   for t, d in zip(self.flux[tag], self.dims))

    # ------------------------------------------------------------------ equations
    def forward_eqs(self, source, save, born, sub):
        ctx = self.ctx
        u = ctx.saved(self.u) if save else self.u
        rho, dt, lf = self.c["rho"], ctx.dt, self.lf
        q = ctx.wts * ctx.wav if source == "extended" else 0
        eqs = lf.eqs + self._fluxes("fu", u)
        eqs.append(lf.step(u, rho * self._div("fu") + q)[1])
        if source == "point":
            eqs += ctx.src.inject(field=u.forward, expr=ctx.src * lf.a / ctx.cell_volume)
        eqs += mirror(ctx, u.forward)
        if born:
            du, dc = self.du, self.dc
            eqs += [Eq(t, self.c[f"b_{d.name}"] * self._dp(du, d)
                       + dc[f"b_{d.name}"] * self._dp(u, d))
                    for t, d in zip(self.flux["fd"], self.dims)]
            src = (rho * self._div("fd") + dc["rho"] * self._div("fu")
                   - dc["m"] * (u.forward - 2 * u + u.backward) / dt**2)
            eqs.append(lf.step(du, src)[1])
            eqs += mirror(ctx, du.forward)
            eqs += self.rec.interpolate(expr=du)
        else:
            eqs += self.rec.interpolate(expr=u)
        if sub:
            # `usub[k / sub]` keeps u[k] every `sub`-th step (the imaging reads u[k] only).
            eqs += [Eq(ctx.subsampled("usub", sub), u)]
        name = "VDBorn" if born else ("VDForwardExt" if source == "extended" else "VDForward")
        return eqs, name + ("Save" if save else "") + (f"Sub{sub}" if sub else "")

    def _imaging(self, grad, sub, v, a):
        """Imaging conditions of `m` (from the adjoint field `v`) and of `rho`, `b_d` (from the
        variable `a` that multiplies `L u` in the adjoint: `v` here, the memory-weighted adjoint
        variable in viscoacoustics), reading the saved (or subsampled) forward field."""
        ctx, rho = self.ctx, self.c["rho"]
        dt = ctx.dt
        # Subsampled: u[k] every `sub`-th step, each sample standing for `sub` steps.
        us = ctx.subsampled("usub", sub) if sub else ctx.saved(self.u)
        w = sub or 1
        kw = {"implicit_dims": (ctx.tsub(sub),)} if sub else {}
        am = self.imask * a
        g, eqs = self.g, []
        if "m" in grad:
            eqs.append(Inc(g["m"], -w * us * (v.forward - 2 * v + v.backward), **kw))
        if "rho" in grad:
            eqs += self._fluxes("fi", us, **kw)
            eqs.append(Inc(g["rho"], w * dt**2 * am * self._div("fi"), **kw))
            for t_i, t_a, d in zip(self.flux["fi"], self.flux["fv"], self.dims):
                if self._flux_imaging:
                    # Without a free surface `imask = 1`, so `Dp_d(rho am) = fv_d / b_d` and
                    # `Dp_d(us) = fi_d / b_d`: both fluxes are already on the grid this step, and
                    # the image is their product; `transpose` divides by b_d^2 (host, float64).
                    # Measured: one derivative pair fewer per point and dimension.
                    # (no time index in the expression: keep it inside the time loop)
                    eqs.append(Inc(g[f"b_{d.name}"], -w * dt**2 * t_i * t_a,
                                   **(kw or {"implicit_dims": (ctx.grid.time_dim,)})))
                else:
                    eqs.append(Inc(g[f"b_{d.name}"],
                                   -w * dt**2 * self._dp(us, d) * self._dp(rho * am, d), **kw))
        return eqs

    @property
    def _flux_imaging(self):
        """Whether the `b_d` images are flux products (no free surface: see `_imaging`)."""
        return self.ctx.fs is None

    def adjoint_eqs(self, srca, ext, grad, sub):
        ctx = self.ctx
        rho, dt, v, lf = self.c["rho"], ctx.dt, self.v, self.lf
        eqs = lf.eqs + self._fluxes("fv", rho * v)
        eqs.append(lf.step(v, self._div("fv"), forward=False)[1])
        eqs += self.rec.inject(field=v.backward, expr=self.rec * lf.inv_D)
        eqs += mirror(ctx, v.backward)
        if srca:
            eqs += ctx.srca.interpolate(expr=v * dt**2 / ctx.cell_volume)
        if ext:
            eqs += [Inc(ctx.wadj, dt**2 * ctx.wav * v)]
        if grad:
            eqs += self._imaging(grad, sub, v, v)
        name = ("VDAdjoint" + ("Src" if srca else "") + ("Ext" if ext else "")
                + ("Grad" + "".join(n[0] for n in grad) if grad else ""))
        return eqs, name + (f"Sub{sub}" if sub else "")
