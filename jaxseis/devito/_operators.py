"""Devito operator builders for the constant-density acoustic wave equation.

The discrete scheme (one time step, all fields on the padded grid, `D = m + damp * dt`):

    D u^{n+1} = dt^2 (lap u^n + q^n) + m (2 u^n - u^{n-1}) + damp * dt * u^n

i.e. `m (u^{n+1} - 2u^n + u^{n-1}) / dt^2 - lap u^n + damp (u^{n+1} - u^n) / dt = q^n`, receivers
record `d^n = R u^n`. Devito's time index `k` holds step `n = k - 1` (`u_dev[k] = u^{k-1}`), so slot 0
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
level of `u` read per step). Dot tests in float64
hold to ~1e-13 with these choices (tests/test_adjoint.py).
"""

from __future__ import annotations

from devito import (ConditionalDimension, Eq, Function, Inc, Operator, SparseTimeFunction,
                    TimeFunction)

# Devito options: OpenMP on the CPU (threads from OMP_NUM_THREADS or `nthreads=` at apply time).
OPERATOR_KWARGS = {"language": "openmp", "opt": ("advanced", {"openmp": True})}


def _update(f, m, damp, dt, forward=True, q=0):
    """`f` at the next time level of the sweep, from the two levels before it."""
    nxt, prv = (f.forward, f.backward) if forward else (f.backward, f.forward)
    return nxt, Eq(nxt, (dt**2 * (f.laplace + q) + m * (2 * f - prv) + dt * damp * f)
                   / (m + dt * damp))


def _mirror(nxt, zdim, zs, nghost):
    """Zero-pressure surface at depth index `zs`: u = 0 there and odd mirror into the ghost rows."""
    eqs = [Eq(nxt.subs(zdim, zs), 0)]
    eqs += [Eq(nxt.subs(zdim, zs - i), -nxt.subs(zdim, zs + i)) for i in range(1, nghost + 1)]
    return eqs


class Symbols:
    """The symbolic Devito objects every operator of one configuration is built from.

    Only their names, dimensions and dtypes matter: at apply time each call passes its own
    Functions with the same names (fresh or pooled), never these.
    """

    def __init__(self, grid, space_order, free_surface_index, nghost):
        self.grid = grid
        self.space_order = space_order
        self.fs = free_surface_index  # None or padded depth index of the surface
        self.nghost = nghost
        so = space_order
        self.m = Function(name="m", grid=grid, space_order=so)
        self.damp = Function(name="damp", grid=grid, space_order=so)
        self.dm = Function(name="dm", grid=grid, space_order=so)
        self.wts = Function(name="wts", grid=grid, space_order=so)
        self.grad = Function(name="grad", grid=grid, space_order=so)
        self.wadj = Function(name="wadj", grid=grid, space_order=so)
        self.wav = Function(name="wav", dimensions=(grid.time_dim,), shape=(2,), dtype=grid.dtype)
        self.u = TimeFunction(name="u", grid=grid, time_order=2, space_order=so)
        self.usave = TimeFunction(name="u", grid=grid, time_order=2, space_order=so, save=3)
        self.du = TimeFunction(name="du", grid=grid, time_order=2, space_order=so)
        self.v = TimeFunction(name="v", grid=grid, time_order=2, space_order=so)
        self.src = SparseTimeFunction(name="src", grid=grid, npoint=1, nt=2)
        self.rec = SparseTimeFunction(name="rec", grid=grid, npoint=1, nt=2)
        self.srca = SparseTimeFunction(name="srca", grid=grid, npoint=1, nt=2)
        self.dt = grid.stepping_dim.spacing
        self._tsub = {}

    def subsampled(self, factor):
        """`usub[k / factor]`: the second time difference `u[k+1] - 2u[k] + u[k-1]` kept every
        `factor`-th step (what the imaging condition needs), for `Subsampled` storage."""
        return TimeFunction(name="usub", grid=self.grid, time_order=0, space_order=self.space_order,
                            save=2, time_dim=self.tsub(factor))

    def tsub(self, factor):
        """The (cached) sub-sampled time dimension: runtime `usub` Functions must share it."""
        if factor not in self._tsub:
            self._tsub[factor] = ConditionalDimension(name="tsub", parent=self.grid.time_dim,
                                                      factor=factor)
        return self._tsub[factor]

    def mirror(self, nxt):
        if self.fs is None:
            return []
        return _mirror(nxt, self.grid.dimensions[-1], self.fs, self.nghost)


def build_forward(s: Symbols, source: str, save: bool, born: bool, cell_volume: float,
                  sub: int = 0) -> Operator:
    """Forward (or Born) modelling. `source` is "point" (src, wavelet per point) or "extended"
    (`wts(x) * wav(t)`). `save` keeps every time level of `u` (for a later gradient); `born` also
    propagates the scattered field `du` with source `-dm * (u^{n+1} - 2u^n + u^{n-1})` and records
    it instead of `u`. `sub > 0` keeps `u[k+1] - 2u[k] + u[k-1]` every `sub` steps in `usub`."""
    u = s.usave if save else s.u
    m, damp, dt = s.m, s.damp, s.dt
    q = s.wts * s.wav if source == "extended" else 0
    nxt, eq = _update(u, m, damp, dt, q=q)
    eqs = [eq]
    if source == "point":
        eqs += s.src.inject(field=nxt, expr=s.src * dt**2 / (cell_volume * (m + dt * damp)))
    eqs += s.mirror(nxt)
    if born:
        dnxt, deq = _update(s.du, m, damp, dt, q=-s.dm * (u.forward - 2 * u + u.backward) / dt**2)
        eqs += [deq] + s.mirror(dnxt)
        eqs += s.rec.interpolate(expr=s.du)
    else:
        eqs += s.rec.interpolate(expr=u)
    if sub:
        eqs += [Eq(s.subsampled(sub), u.forward - 2 * u + u.backward)]
    name = "Born" if born else ("ForwardExt" if source == "extended" else "Forward")
    name += ("Save" if save else "") + (f"Sub{sub}" if sub else "")
    return Operator(eqs, name=name, **OPERATOR_KWARGS)


def build_adjoint(s: Symbols, srca: bool, ext: bool, grad: bool, cell_volume: float,
                  sub: int = 0) -> Operator:
    """Adjoint sweep driven by receiver data. Outputs, by flag: `srca` (the adjoint wavefield sampled
    at source points, scaled to be the transpose of point injection), `wadj` (the transpose of the
    extended source `wts * wav`) and `grad` (the FWI gradient / Born adjoint imaging condition, which
    reads the saved forward wavefield `u`, or with `sub > 0` the subsampled `usub`, each sample
    standing for `sub` time steps)."""
    m, damp, dt, v = s.m, s.damp, s.dt, s.v
    nxt, eq = _update(v, m, damp, dt, forward=False)
    eqs = [eq]
    eqs += s.rec.inject(field=nxt, expr=s.rec / (m + dt * damp))
    eqs += s.mirror(nxt)
    if srca:
        eqs += s.srca.interpolate(expr=v * dt**2 / cell_volume)
    if ext:
        eqs += [Inc(s.wadj, dt**2 * s.wav * v)]
    if grad and sub:
        eqs += [Inc(s.grad, -sub * s.subsampled(sub) * v)]
    elif grad:
        # Summation by parts of -sum_k (u[k+1] - 2u[k] + u[k-1]) v[k]: the same sum as
        # -sum_k u[k] (v[k+1] - 2v[k] + v[k-1]) (the boundary terms vanish: u[0] = u[1] = 0 and
        # v[nt] = v[nt + 1] = 0; over Checkpointed blocks the carried-over `v` makes the per-block
        # sums add up to the same global sum). It reads one saved time level of `u` per step
        # instead of three; the three levels of `v` are at hand in its circular buffer.
        eqs += [Inc(s.grad, -s.usave * (v.forward - 2 * v + v.backward))]
    name = "Adjoint" + ("Src" if srca else "") + ("Ext" if ext else "") + ("Grad" if grad else "")
    name += f"Sub{sub}" if sub else ""
    return Operator(eqs, name=name, **OPERATOR_KWARGS)
