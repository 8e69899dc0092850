"""Devito equations of the constant-density acoustic wave equation (`jaxseis.Acoustic`).

The discrete scheme (one time step, all fields on the padded grid, `D = m + damp * dt`):

    D u^{n+1} = dt^2 (lap u^n + q^n) + m (2 u^n - u^{n-1}) + damp * dt * u^n

i.e. `m (u^{n+1} - 2u^n + u^{n-1}) / dt^2 - lap u^n + damp (u^{n+1} - u^n) / dt = q^n`, receivers
record `d^n = R u^n`. The step is evaluated as
`u^{n+1} = a (lap u^n + q^n) + u^n + b (u^n - u^{n-1})` with `a = dt^2 / D`, `b = m / D` computed
once per apply (`Leapfrog` in jaxseis/devito/_kernel.py: the same scheme without a division per
point and step). Devito's time index `k` holds step `n = k - 1` (`u_dev[k] = u^{k-1}`), so slot 0
is the zero state `u^{-1}` and a saved wavefield never reads outside its buffer; the loop runs
`k = 1 .. nt`. Every sparse time series (sources, receivers, extended-source wavelet) uses the same
shift: its Devito row `k` is sample `k - 1`, row 0 is unused.

The adjoint is the exact transpose of that recursion, written for `w^n = D^{-T} lambda^n`:

    D w^n = dt^2 lap w^{n+1} + m (2 w^{n+1} - w^{n+2}) + damp * dt * w^{n+1} + R^T dbar^n

which is Devito's `damp * v.dt.T` adjoint (see examples/seismic/acoustic/operators.py). The source
cotangent is `qbar^n = dt^2 P w^{n+1} / h^d` and the FWI gradient, the exact transpose of the Born
source `-dm (u^{n+1} - 2u^n + u^{n-1}) / D`, is `-sum_n (u^{n+1} - 2u^n + u^{n-1}) w^{n+1}`: in
Devito's indexing `-(u[k+1] - 2u[k] + u[k-1]) * v[k]` summed over the reverse loop, which the
operator evaluates summed by parts as `-u[k] * (v[k+1] - 2v[k] + v[k-1])` (same sum, one saved
level of `u` read per step). Dot tests in float64 hold to ~1e-14 with these choices
(tests/test_adjoint.py).

The level `v[k-1]` that reverse step `k` computes is the stencil's value `S` plus the residual
injected at the receivers' grid points, `I = R^T dbar / D`, and the imaging term is split the same
way: `-u[k] (v[k+1] - 2v[k] + S)` is evaluated in the stencil's own loop nest (it reads only the
point the stencil just wrote, so Devito fuses it there and the saved `u[k]` streams in while the
stencil computes), and `-u[k] I` is injected into the gradient at the receivers' points, in the
residual's own sparse loop (`rec.inject(field=(v, g_m), ...)`, the same weights). The same sum in
another rounding order. Measured on S2 (benchmarks/bench_imaging.py): the adjoint with imaging
7-12 % faster than a separate imaging loop nest after the injection, which re-read three levels of
`v` and streamed `u[k]` in a pass of its own.
"""

from __future__ import annotations

from devito import Eq, Inc

from ...devito._kernel import Kernel, Leapfrog, laplacian, mirror


class AcousticKernel(Kernel):
    """`m u_tt - lap(u) + damp u_t = q` (coefficient `m`, the model itself)."""

    parameters = ("m",)
    saved = ("u",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.m = ctx.coefficient("m")
        self.dm = ctx.perturbation("m")
        self.grad = ctx.gradient("m")
        self.u = ctx.state("u")
        self.du = ctx.born_state("du")
        self.v = ctx.adjoint_state("v")
        self.rec = ctx.receiver("rec")
        self.lf = Leapfrog(ctx, self.m)

    def forward_eqs(self, source, save, born, sub):
        c = self.ctx
        u = c.saved(self.u) if save else self.u
        lf, dt = self.lf, c.dt
        q = c.wts * c.wav if source == "extended" else 0
        nxt, eq = lf.step(u, laplacian(u) + q)
        eqs = lf.eqs + [eq]
        if source == "point":
            eqs += c.src.inject(field=nxt, expr=c.src * lf.a / c.cell_volume)
        eqs += mirror(c, nxt)
        if born:
            dnxt, deq = lf.step(self.du, laplacian(self.du)
                                - self.dm * (u.forward - 2 * u + u.backward) / dt**2)
            eqs += [deq] + mirror(c, dnxt)
            eqs += self.rec.interpolate(expr=self.du)
        else:
            eqs += self.rec.interpolate(expr=u)
        if sub:
            # `usub[k / sub]`: the second time difference `u[k+1] - 2u[k] + u[k-1]` kept every
            # `sub`-th step (what the imaging condition needs), for `Subsampled` storage.
            eqs += [Eq(c.subsampled("usub", sub), u.forward - 2 * u + u.backward)]
        name = "Born" if born else ("ForwardExt" if source == "extended" else "Forward")
        return eqs, name + ("Save" if save else "") + (f"Sub{sub}" if sub else "")

    def adjoint_eqs(self, srca, ext, grad, sub):
        c = self.ctx
        dt, v = c.dt, self.v
        nxt, eq = self.lf.step(v, laplacian(v), forward=False)
        eqs = self.lf.eqs + [eq]
        resid = self.rec * self.lf.inv_D
        if grad and not sub:
            # Summation by parts of -sum_k (u[k+1] - 2u[k] + u[k-1]) v[k]: the same sum as
            # -sum_k u[k] (v[k+1] - 2v[k] + v[k-1]) (the boundary terms vanish: u[0] = u[1] = 0 and
            # v[nt] = v[nt + 1] = 0; over Checkpointed blocks the carried-over `v` makes the per-block
            # sums add up to the same global sum). It reads one saved time level of `u` per step
            # instead of three; the three levels of `v` are at hand in its circular buffer. The
            # stencil's part of `v[k-1]` is imaged in the stencil's loop nest, the injected
            # residual's part in the injection (module docstring).
            u = c.saved(self.u)
            eqs += [Inc(self.grad, -u * (v.forward - 2 * v + nxt))]
            eqs += self.rec.inject(field=(nxt, self.grad), expr=(resid, -u * resid))
        else:
            eqs += self.rec.inject(field=nxt, expr=resid)
        eqs += mirror(c, nxt)
        if srca:
            eqs += c.srca.interpolate(expr=v * dt**2 / c.cell_volume)
        if ext:
            eqs += [Inc(c.wadj, dt**2 * c.wav * v)]
        if grad and sub:
            eqs += [Inc(self.grad, -sub * c.subsampled("usub", sub) * v)]
        name = "Adjoint" + ("Src" if srca else "") + ("Ext" if ext else "") + ("Grad" if grad else "")
        return eqs, name + (f"Sub{sub}" if sub else "")
