"""Devito equations of pseudo-acoustic tilted transverse isotropy (`jaxseis.TTIAcoustic`).

Fields `p`, `r` (Zhang, Zhang and Zhang 2011; Devito's examples/seismic/tti), coefficients on the
padded grid (host maps below): `m = 1/vp^2` (vertical vp), `E = 1 + 2 epsilon`,
`S = sqrt(1 + 2 delta)`, and the unit symmetry axis `n = (sin(theta) cos(phi), sin(theta) sin(phi),
cos(theta))` (2D: `n = (sin(theta), cos(theta))` in (x, z)). With `D_d` the centred first
derivative along axis `d` (order `space_order`, zero outside the padded grid, so `D_d^T = -D_d`
exactly) and `L` the centred Laplacian of `jaxseis.Acoustic`:

    G f  = sum_d n_d D_d f                       (derivative along the symmetry axis)
    Hz f = sum_d D_d(n_d G f) = -G^T G f         (symmetric, <= 0)
    H0 f = L f - Hz f                            (symmetric; <= 0 because the symbol of the
                                                  centred second derivative bounds the square of
                                                  the centred first derivative's, for every order)

The system (`A = m + dt damp`, damping as `jaxseis.Acoustic`, `q` the source density):

    A p^{n+1} = dt^2 (E H0 p^n + S Hz r^n + q^n) + m (2p^n - p^{n-1}) + dt damp p^n
    A r^{n+1} = dt^2 (S H0 p^n +   Hz r^n + q^n) + m (2r^n - r^{n-1}) + dt damp r^n

i.e. `m X_tt = C H X + q` with `X = (p, r)`, the pointwise symmetric matrix `C = [[E, S], [S, 1]]`
(positive semi-definite iff `epsilon >= delta`) and `H = diag(H0, Hz)`. Point sources inject the
same unit-strength source into `p` and `r` (divided by the cell volume), receivers record
`(p + r) / 2`. With `epsilon = delta = 0`, `p = r` and `H0 + Hz = L`: the scheme is
`jaxseis.Acoustic`'s exactly, for any tilt. For a homogeneous medium the largest eigenvalue of
`C H` is at most `trace = E h0 + hz <= E (h0 + hz) = E lambda_L`, so the acoustic stability limit
with `vp sqrt(1 + 2 epsilon)` holds (and is reached along the symmetry plane).

Adjoint: the transpose of `C H` is `H C`: with `w = A^{-1} lambda` as in `jaxseis.Acoustic`,

    A wp^n = dt^2 H0(a) + m (2 wp^{n+1} - wp^{n+2}) + dt damp wp^{n+1} + R^T dbar^n / 2
    A wr^n = dt^2 Hz(b) + m (2 wr^{n+1} - wr^{n+2}) + dt damp wr^{n+1} + R^T dbar^n / 2

with `a = E wp + S wr`, `b = S wp + wr` (the coefficients applied *before* the derivatives). The
source cotangent is `dt^2 P (wp + wr) / h^d`.

Born (derivative of the update in `dm, dE, dS, dn`): `dHz f = sum_d D_d(dn_d G f + n_d dG f)`,
`dG f = sum_d dn_d D_d f`, `dH0 = -dHz`; the scattered fields obey the same scheme driven by

    sp = dE H0 p + E dH0 p + dS Hz r + S dHz r - dm (p^{n+1} - 2p^n + p^{n-1}) / dt^2
    sr = dS H0 p + S dH0 p + dHz r             - dm (r^{n+1} - 2r^n + r^{n-1}) / dt^2

in place of the spatial terms (the step multiplies them by `dt^2 / A`: `Leapfrog` in
jaxseis/devito/_kernel.py evaluates every update as `a rhs + f + b (f - f_prev)`, `a = dt^2 / A`,
`b = m / A`).

Imaging (transpose of the Born source; at reverse step k: saved p[k], r[k], adjoint wp, wr at
k - 1 .. k + 1, `ya = imask a`, `yb = imask b`):

    g_m   = -sum_k p (wp[k+1] - 2wp[k] + wp[k-1]) + r (wr[k+1] - 2wr[k] + wr[k-1])
    g_E   =  sum_k dt^2 wp H0 p
    g_S   =  sum_k dt^2 (wp Hz r + wr H0 p)
    g_n_d =  sum_k dt^2 (D_d ya G p + D_d p G ya - D_d yb G r - D_d r G yb)

(the last from `<y, dHz f> = -sum_d dn_d (D_d y G f + D_d f G y)`, using `D_d^T = -D_d`). The host
maps them to the parameters (`transpose`): `g_epsilon = 2 g_E`, `g_delta = g_S / S`,
`g_theta = sum_d dn_d/dtheta g_n_d` (and `phi` alike).

VTI (`tilt=False`, no angles): `H0` is the sum of the compact centred second derivatives of
`jaxseis.Acoustic`'s Laplacian along the horizontal axes and `Hz` the one along depth, both
symmetric and independent of the model; everything above holds with `dH0 = dHz = 0` and no
`g_n` terms, and no nested-derivative auxiliaries are needed.

Nested derivatives go through auxiliary Functions (`G f` written on the whole padded grid, zero
halo), so each derivative is the matrix `D_d` and the transposition above is exact.

Free surface (zero pressure at the surface row, odd mirror of p, r and their Born and adjoint
fields into the ghost rows): the mirrored scheme is its own transpose if `C H` commutes with the
reflection about the surface. The host makes `E`, `S`, `phi` even and the tilt odd about it
(`theta -> -theta` in the ghost rows, `theta = 0` on the surface row itself, where the field is
zero), so `n_x`, `n_y` are odd and `n_z` even; the composite stencil's radius `space_order` needs
`space_order - 1` ghost rows; the imaging reads `imask * w` (zero at and above the surface). The
tilt of the model's top row is therefore unused (its gradient is zero).
"""

from __future__ import annotations

import numpy as np
from devito import Derivative, Eq, Inc

from ...devito._kernel import Kernel, Leapfrog, mirror


class TTIKernel(Kernel):
    """Pseudo-acoustic TTI in `p`, `r` with symmetric rotated operators (see the module docs)."""

    saved = ("p", "r")
    n_subsampled = 2

    @classmethod
    def ghost_rows(cls, space_order):
        return max(space_order // 2, space_order - 1)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.dims = list(ctx.grid.dimensions)
        self.ndim = len(self.dims)
        self.tilt = bool(ctx.options.get("tilt", True))
        angles = ("theta",) + (("phi",) if self.ndim == 3 else ())
        self.parameters = ("m", "epsilon", "delta") + (angles if self.tilt else ())
        self.nnames = [f"n_{d.name}" for d in self.dims] if self.tilt else []
        self.names = ["m", "eps2", "sdel"] + self.nnames
        self.c = {n: ctx.coefficient(n) for n in self.names}
        self.imask = ctx.coefficient("imask")
        self.dc = {n: ctx.perturbation(n) for n in self.names}
        self.g = {n: ctx.gradient(n) for n in self.names}
        aux = ("gp", "gr", "tp", "tr", "ga", "gb", "gps", "grs", "ya", "yb") if self.tilt else ()
        self.aux = {n: ctx.auxiliary(n) for n in aux}
        self.prefix = "TTI" if self.tilt else "VTI"
        self.p = ctx.state("p")
        self.r = ctx.state("r")
        self.dp = ctx.born_state("dp")
        self.dr = ctx.born_state("dr")
        self.wp = ctx.adjoint_state("wp")
        self.wr = ctx.adjoint_state("wr")
        self.rec = ctx.receiver("rec")
        self.lf = Leapfrog(ctx, self.c["m"])

    # ------------------------------------------------------------------ host-side maps
    def _mirror(self, x, sign):
        """Ghost rows above the free surface: `sign` (+1 even, -1 odd) mirror of the rows below;
        odd fields are zero on the surface row."""
        x = np.array(x, dtype=np.float64, copy=True)
        fs, ng = self.ctx.fs, self.ctx.nghost
        if fs is None:
            return x
        for j in range(1, ng + 1):
            x[..., fs - j] = sign * x[..., fs + j]
        if sign < 0:
            x[..., fs] = 0
        return x

    def _mirror_T(self, g, sign):
        g = np.array(g, dtype=np.float64, copy=True)
        fs, ng = self.ctx.fs, self.ctx.nghost
        if fs is None:
            return g
        for j in range(1, ng + 1):
            g[..., fs + j] += sign * g[..., fs - j]
            g[..., fs - j] = 0
        if sign < 0:
            g[..., fs] = 0
        return g

    def _angles(self, model):
        if not self.tilt:
            return None, None
        theta = self._mirror(model["theta"], -1)
        phi = self._mirror(model["phi"], 1) if self.ndim == 3 else None
        return theta, phi

    def _axis(self, theta, phi):
        """n_d and its derivatives w.r.t. theta and phi (lists over the dimensions)."""
        st, ct = np.sin(theta), np.cos(theta)
        if self.ndim == 2:
            return [st, ct], [ct, -st], [0 * st, 0 * st]
        sp, cp = np.sin(phi), np.cos(phi)
        return ([st * cp, st * sp, ct], [ct * cp, ct * sp, -st], [-st * sp, st * cp, 0 * st])

    def coefficients(self, model):
        out = {"m": np.asarray(model["m"], dtype=np.float64),
               "eps2": 1 + 2 * self._mirror(model["epsilon"], 1),
               "sdel": np.sqrt(1 + 2 * self._mirror(model["delta"], 1))}
        if self.tilt:
            n, _, _ = self._axis(*self._angles(model))
            out.update(zip(self.nnames, n))
        mask = np.ones(out["m"].shape)
        if self.ctx.fs is not None:
            mask[..., :self.ctx.fs + 1] = 0
        out["imask"] = mask
        return out

    def linearize(self, model, dmodel):
        sdel = np.sqrt(1 + 2 * self._mirror(model["delta"], 1))
        out = {"m": np.asarray(dmodel["m"], dtype=np.float64),
               "eps2": 2 * self._mirror(dmodel["epsilon"], 1),
               "sdel": self._mirror(dmodel["delta"], 1) / sdel}
        if self.tilt:
            _, nt, nph = self._axis(*self._angles(model))
            dth = self._mirror(dmodel["theta"], -1)
            dph = self._mirror(dmodel["phi"], 1) if self.ndim == 3 else 0
            out.update({k: a * dth + b * dph for k, a, b in zip(self.nnames, nt, nph)})
        return out

    def transpose(self, model, grads):
        sdel = np.sqrt(1 + 2 * self._mirror(model["delta"], 1))
        out = {"m": np.asarray(grads["m"], dtype=np.float64),
               "epsilon": self._mirror_T(2 * np.asarray(grads["eps2"], np.float64), 1),
               "delta": self._mirror_T(np.asarray(grads["sdel"], np.float64) / sdel, 1)}
        if self.tilt:
            _, nt, nph = self._axis(*self._angles(model))
            gn = [np.asarray(grads[k], dtype=np.float64) for k in self.nnames]
            out["theta"] = self._mirror_T(sum(a * g for a, g in zip(nt, gn)), -1)
            if self.ndim == 3:
                out["phi"] = self._mirror_T(sum(b * g for b, g in zip(nph, gn)), 1)
        return out

    def needs(self, wrt):
        out = []
        for k, c in (("m", ["m"]), ("epsilon", ["eps2"]), ("delta", ["sdel"]),
                     ("theta", self.nnames), ("phi", self.nnames)):
            if k in wrt:
                out += [x for x in c if x not in out]
        return tuple(out)

    # ------------------------------------------------------------------ stencils
    def _d(self, f, d):
        """Centred first derivative D_d f (order space_order)."""
        return Derivative(f, d, fd_order=self.ctx.space_order)

    def _g(self, f, n=None):
        """G f = sum_d n_d D_d f (n: the axis coefficients, default the model's)."""
        n = n or [self.c[k] for k in self.nnames]
        return sum(nd * self._d(f, d) for nd, d in zip(n, self.dims))

    def _div(self, terms):
        """sum_d D_d(terms_d)."""
        return sum(self._d(t, d) for t, d in zip(terms, self.dims))

    def _lap(self, f):
        """The centred Laplacian of `jaxseis.Acoustic` applied to an expression."""
        return sum(Derivative(f, (d, 2), fd_order=self.ctx.space_order) for d in self.dims)

    def _hz(self, g):
        """Hz f from the auxiliary g = G f."""
        return self._div([self.c[k] * g for k in self.nnames])

    def _d2(self, f, dims):
        """VTI (`tilt=False`): the compact centred second derivatives of the Laplacian along
        `dims`, summed (`H0`: the horizontal axes, `Hz`: depth)."""
        return sum(Derivative(f, (d, 2), fd_order=self.ctx.space_order) for d in dims)

    def _h0_hz(self, f0, fz, sat=None):
        """`(H0 f0, Hz fz)` and the equations of the auxiliaries they need: the rotated
        operators (`tilt=True`, auxiliaries `sat = (name of G f0, name of G fz)`, or given ones
        already written) or the compact VTI ones."""
        if not self.tilt:
            return self._d2(f0, self.dims[:-1]), self._d2(fz, self.dims[-1:]), []
        g0, gz = (self.aux[n] for n in sat)
        eqs = [Eq(g0, self._g(f0)), Eq(gz, self._g(fz))]
        return self._lap(f0) - self._hz(g0), self._hz(gz), eqs

    # ------------------------------------------------------------------ equations
    def forward_eqs(self, source, save, born, sub):
        ctx, c, x = self.ctx, self.c, self.aux
        p = ctx.saved(self.p) if save else self.p
        r = ctx.saved(self.r) if save else self.r
        E, S, dt, lf = c["eps2"], c["sdel"], ctx.dt, self.lf
        q = ctx.wts * ctx.wav if source == "extended" else 0
        h0p, hzr, eqs = self._h0_hz(p, r, ("gp", "gr"))
        eqs = lf.eqs + eqs
        eqs.append(lf.step(p, E * h0p + S * hzr + q)[1])
        eqs.append(lf.step(r, S * h0p + hzr + q)[1])
        if source == "point":
            for f in (p, r):
                eqs += ctx.src.inject(field=f.forward, expr=ctx.src * lf.a / ctx.cell_volume)
        eqs += mirror(ctx, p.forward) + mirror(ctx, r.forward)
        if born:
            dp, dr, dc = self.dp, self.dr, self.dc
            if self.tilt:
                dn = [dc[k] for k in self.nnames]
                eqs += [Eq(x["tp"], self._g(dp) + self._g(p, dn)),
                        Eq(x["tr"], self._g(dr) + self._g(r, dn))]
                hzt_p = self._div([c[k] * x["tp"] + dc[k] * x["gp"] for k in self.nnames])
                hzt_r = self._div([c[k] * x["tr"] + dc[k] * x["gr"] for k in self.nnames])
                h0t_p = dp.laplace - hzt_p
            else:  # the VTI operators do not depend on the model: dH0 = dHz = 0
                h0t_p, hzt_r, _ = self._h0_hz(dp, dr)
            sp = (E * h0t_p + dc["eps2"] * h0p + S * hzt_r + dc["sdel"] * hzr
                  - dc["m"] * (p.forward - 2 * p + p.backward) / dt**2)
            sr = (S * h0t_p + dc["sdel"] * h0p + hzt_r
                  - dc["m"] * (r.forward - 2 * r + r.backward) / dt**2)
            eqs.append(lf.step(dp, sp)[1])
            eqs.append(lf.step(dr, sr)[1])
            eqs += mirror(ctx, dp.forward) + mirror(ctx, dr.forward)
            eqs += self.rec.interpolate(expr=(dp + dr) / 2)
        else:
            eqs += self.rec.interpolate(expr=(p + r) / 2)
        if sub:
            # `psub[k / sub]`, `rsub[k / sub]` keep p[k], r[k] every `sub`-th step.
            eqs += [Eq(ctx.subsampled("psub", sub), p), Eq(ctx.subsampled("rsub", sub), r)]
        name = self.prefix + ("Born" if born else ("ForwardExt" if source == "extended"
                                                   else "Forward"))
        return eqs, name + ("Save" if save else "") + (f"Sub{sub}" if sub else "")

    def adjoint_eqs(self, srca, ext, grad, sub):
        ctx, c, x = self.ctx, self.c, self.aux
        E, S, dt, lf = c["eps2"], c["sdel"], ctx.dt, self.lf
        wp, wr = self.wp, self.wr
        # `a`, `b` stay expressions: an auxiliary Function of an auxiliary Function would look
        # time-invariant to Devito (and be hoisted out of the time loop).
        aa, bb = E * wp + S * wr, S * wp + wr
        h0a, hzb, eqs = self._h0_hz(aa, bb, ("ga", "gb"))
        eqs = lf.eqs + eqs
        eqs.append(lf.step(wp, h0a, forward=False)[1])
        eqs.append(lf.step(wr, hzb, forward=False)[1])
        for f in (wp, wr):
            eqs += self.rec.inject(field=f.backward, expr=self.rec * lf.inv_D / 2)
        eqs += mirror(ctx, wp.backward) + mirror(ctx, wr.backward)
        if srca:
            eqs += ctx.srca.interpolate(expr=(wp + wr) * dt**2 / ctx.cell_volume)
        if ext:
            eqs += [Inc(ctx.wadj, dt**2 * ctx.wav * (wp + wr))]
        if grad:
            # Subsampled: p[k], r[k] every `sub`-th step, each sample standing for `sub` steps.
            if sub:
                ps, rs = ctx.subsampled("psub", sub), ctx.subsampled("rsub", sub)
            else:
                ps, rs = ctx.saved(self.p), ctx.saved(self.r)
            w = sub or 1
            kw = {"implicit_dims": (ctx.tsub(sub),)} if sub else {}
            g, mk = self.g, self.imask
            if "m" in grad:
                eqs.append(Inc(g["m"], -w * (ps * (wp.forward - 2 * wp + wp.backward)
                                             + rs * (wr.forward - 2 * wr + wr.backward)), **kw))
            if self.tilt:
                if "eps2" in grad or "sdel" in grad or self.nnames[0] in grad:
                    eqs += [Eq(x["gps"], self._g(ps), **kw), Eq(x["grs"], self._g(rs), **kw)]
                h0p, hzr = ps.laplace - self._hz(x["gps"]), self._hz(x["grs"])
            else:
                h0p, hzr, _ = self._h0_hz(ps, rs)
            if "eps2" in grad:
                eqs.append(Inc(g["eps2"], w * dt**2 * mk * wp * h0p, **kw))
            if "sdel" in grad:
                eqs.append(Inc(g["sdel"], w * dt**2 * mk * (wp * hzr + wr * h0p), **kw))
            if self.tilt and self.nnames[0] in grad:
                # `imask a`, `imask b` in auxiliaries (read at every stencil point below)
                ya, yb = x["ya"], x["yb"]
                eqs += [Eq(ya, mk * aa, **kw), Eq(yb, mk * bb, **kw)]
                gya, gyb = self._g(ya), self._g(yb)
                for k, d in zip(self.nnames, self.dims):
                    eqs.append(Inc(g[k], w * dt**2 * (
                        self._d(ya, d) * x["gps"] + self._d(ps, d) * gya
                        - self._d(yb, d) * x["grs"] - self._d(rs, d) * gyb), **kw))
        tags = {"m": "m", "eps2": "e", "sdel": "d"}
        name = (self.prefix + "Adjoint" + ("Src" if srca else "") + ("Ext" if ext else "")
                + ("Grad" + "".join(sorted({tags.get(n, "n") for n in grad})) if grad else ""))
        return eqs, name + (f"Sub{sub}" if sub else "")
