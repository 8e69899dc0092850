"""The OpenMP schedule jaxseis compiles its operators with (jaxseis/devito/_build.py).

Contiguous `schedule(static)` slabs for the grid loops were measured 2x faster than Devito's
`schedule(dynamic,1)` on 2 cores (benchmarks/bench_tuning.py). These tests would show the choice
coming back undone (a Devito upgrade that renames the clause builder, a build path that bypasses
`build_operator`) and that it changes no result.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from jaxseis._errors import JaxseisError
from jaxseis.devito import _build
from jaxseis.devito._solver import Solver


def _grid_schedules(op):
    """The schedule clauses of the loops over grid points (not the sparse-point loops)."""
    code = str(op.ccode)
    out = []
    for line in code.splitlines():
        if "omp for" in line or "omp parallel for" in line:
            if "chunk_size" in line:     # sparse points: Devito's dynamic schedule, kept
                continue
            out += re.findall(r"schedule\([^)]*\)", line)
    return out


def test_every_built_operator_has_contiguous_static_grid_loops(problem):
    op = problem["op"]
    m = jnp.asarray(problem["m"])
    d = op.forward(m, problem["wavelet"], problem["src"], problem["rec"])
    jax.grad(lambda mm: jnp.sum(op.forward(mm, problem["wavelet"], problem["src"],
                                           problem["rec"]) * d))(m)
    ops = list(op.solver._ops.values())
    assert len(ops) >= 3            # forward, forward with history, adjoint with imaging
    for o in ops:
        sched = _grid_schedules(o)
        assert sched, f"{o.name}: no parallel grid loop found"
        assert set(sched) == {"schedule(static)"}, f"{o.name}: {sched}"


def test_devito_mode_keeps_devitos_defaults_and_gives_identical_results(problem, monkeypatch):
    """The schedule changes which thread computes a point, never how: bit-identical data."""
    op = problem["op"]
    cfg = op.solver_config
    args = (problem["m"], op.time.dt, op.time.nt, np.asarray(problem["rec"], np.float32))
    kw = dict(src=np.asarray(problem["src"], np.float32),
              q=np.asarray(problem["wavelet"], np.float32))
    fast = Solver(cfg)
    d_fast = fast.forward(*args, **kw)
    monkeypatch.setenv("JAXSEIS_OMP_SCHEDULE", "devito")
    slow = Solver(cfg)
    d_slow = slow.forward(*args, **kw)
    (o_slow,) = slow._ops.values()
    assert "schedule(static)" not in _grid_schedules(o_slow)
    assert np.array_equal(np.asarray(d_fast), np.asarray(d_slow))
    assert np.abs(np.asarray(d_fast)).max() > 0


def test_bad_schedule_mode_is_named(monkeypatch):
    monkeypatch.setenv("JAXSEIS_OMP_SCHEDULE", "fastest")
    with pytest.raises(JaxseisError, match="JAXSEIS_OMP_SCHEDULE='fastest'.*static.*devito"):
        _build.schedule_mode()


def test_patch_is_scoped_to_the_build():
    """Devito's clause builder is restored after each jaxseis build (other Devito code in the
    process keeps Devito's defaults)."""
    from devito.passes.iet.languages.openmp import OmpIteration

    before = OmpIteration.__dict__["_make_clauses"]
    with _build._contiguous_static():
        assert OmpIteration.__dict__["_make_clauses"] is not before
    assert OmpIteration.__dict__["_make_clauses"] is before


def test_other_physics_build_static_too():
    """A multi-field staggered physics (Elastic) gets the same schedule."""
    grid = js.Grid((21, 17), (10.0, 10.0))
    time = js.TimeAxis(0.0, 40.0, 0.5)
    op = js.Elastic(grid, time, space_order=4, nbl=4)
    o = op.solver.operator("forward", source="point", save=False, born=False)
    assert set(_grid_schedules(o)) == {"schedule(static)"}


def test_context_refuses_one_name_for_two_objects():
    """One Devito name registered twice with different roles must raise: the second object would
    otherwise silently be the first (the 3D elastic free surface's lattice weights `wz` were once
    overwritten by the adjoint's auxiliary `w_z` this way). The same name with the same role stays
    one shared object."""
    from devito import Grid

    from jaxseis.devito._kernel import Context

    ctx = Context(Grid(shape=(11, 11), extent=(100.0, 100.0)), 4, 100.0, None, 0)
    w = ctx.coefficient("wz")
    assert ctx.coefficient("wz") is w
    with pytest.raises(ValueError, match="'wz' is registered with role 'coef'"):
        ctx.adjoint_state("wz", time_order=1)
    with pytest.raises(ValueError, match="'damp'"):
        ctx.coefficient("damp")


def test_a_scratch_field_is_rewritten_only_if_every_registration_says_so():
    """`Context.auxiliary(..., rewritten=True)` skips the per-call zeroing; a second registration of
    the same name that relies on the zeroing (either order) must keep it."""
    from devito import Grid

    from jaxseis.devito._kernel import Context

    ctx = Context(Grid(shape=(11, 11), extent=(100.0, 100.0)), 4, 100.0, None, 0)
    ctx.auxiliary("s1", rewritten=True)
    assert ctx.specs["s1"].rewritten
    ctx.auxiliary("s1", rewritten=True)
    assert ctx.specs["s1"].rewritten
    ctx.auxiliary("s1")
    assert not ctx.specs["s1"].rewritten
    ctx.auxiliary("s2")
    ctx.auxiliary("s2", rewritten=True)
    assert not ctx.specs["s2"].rewritten


def test_leapfrog_step_is_the_quotient_scheme():
    """`Leapfrog` (the damped step of acoustic, VDA, viscoacoustic and TTI) evaluates
    `f+ = a r + f + b (f - f-)`, `a = dt^2 / D`, `b = m / D`, computed before the time loop: the same
    scheme as `D f+ = dt^2 r + m (2f - f-) + dt damp f`, checked in float64 against the quotient form
    over 150 steps with a damping layer, variable m and a source term, both directions; and the
    coefficients are computed outside the time loop (the point of the change)."""
    from devito import Eq, Function, Grid, TimeFunction

    from jaxseis.devito._kernel import Context, Leapfrog

    grid = Grid(shape=(41, 31), extent=(400.0, 300.0), dtype=np.float64)
    ctx = Context(grid, 4, 100.0, None, 2)
    m = Function(name="m", grid=grid, space_order=4, dtype=np.float64)
    x, z = np.meshgrid(np.arange(41), np.arange(31), indexing="ij")
    m.data[:] = 1 / (1.5 + 0.02 * x + 0.01 * z) ** 2
    damp = ctx.specs["damp"].make()
    damp.data[:] = 0.05 * (np.maximum(0, 8 - x) + np.maximum(0, x - 32)) / 8
    lf = Leapfrog(ctx, m)
    dt = np.float64(1.2)
    out = {}
    for forward in (True, False):
        for form in ("leapfrog", "quotient"):
            f = TimeFunction(name="f", grid=grid, time_order=2, space_order=4, dtype=np.float64)
            q = 1e-3 * m * ctx.dt  # a constant source term everywhere (scaled with dt)
            if form == "leapfrog":
                eqs = lf.eqs + [lf.step(f, f.laplace + q, forward=forward)[1]]
            else:
                nxt, prv = (f.forward, f.backward) if forward else (f.backward, f.forward)
                D = m + ctx.dt * ctx.damp
                eqs = [Eq(nxt, (ctx.dt**2 * (f.laplace + q) + m * (2 * f - prv)
                                + ctx.dt * ctx.damp * f) / D)]
            op = _build.build_operator(eqs, f"LF{form}{int(forward)}")
            if form == "leapfrog":
                code = str(op.ccode)
                loop = code.index("for (int time")
                assign = re.compile(r"lf_[ab]\[[^]]*\]\[[^]]*\] =")
                assert len(assign.findall(code[:loop])) == 2 and not assign.findall(code[loop:])
            f.data[:] = 0
            f.data[:, 20, 15] = 1.0
            kw = dict(dt=dt, damp=damp)
            if form == "leapfrog":
                kw.update(lf_a=ctx.specs["lf_a"].make(), lf_b=ctx.specs["lf_b"].make())
            op.apply(time_m=1, time_M=150, **kw)
            out[form, forward] = np.array(f.data)
    for forward in (True, False):
        a, b = out["leapfrog", forward], out["quotient", forward]
        assert np.max(np.abs(b)) > 1e-3
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b))


@pytest.mark.parametrize("shape,spacing", [((23, 19), (10.0, 10.0)), ((13, 11, 9), (5.0,) * 3),
                                           ((23, 19), (10.0, 7.5))])
def test_laplacian_is_devitos_laplace(shape, spacing):
    """`laplacian` (one set of weights for all axes on equal spacing; acoustic forward, Born and
    adjoint) is the centred Laplacian with the exact rational weights, to float64 round-off against
    an independent NumPy stencil, in 2D and 3D; and Devito's `f.laplace` to 1e-8 (Devito rounds its
    weights to 9 digits: -2.847222220, -1.78571429e-3, ... even in float64). Unequal spacing falls
    back on `f.laplace` itself."""
    from fractions import Fraction
    from math import factorial

    from devito import Eq, Function, Grid, Operator

    from jaxseis.devito._kernel import laplacian

    extent = tuple((n - 1) * h for n, h in zip(shape, spacing))
    grid = Grid(shape=shape, extent=extent, dtype=np.float64)
    so, half = 8, 4
    f = Function(name="f", grid=grid, space_order=so, dtype=np.float64)
    a = Function(name="a", grid=grid, space_order=so, dtype=np.float64)
    b = Function(name="b", grid=grid, space_order=so, dtype=np.float64)
    f.data_with_halo[:] = np.random.default_rng(3).standard_normal(f.data_with_halo.shape)
    lap = laplacian(f)
    if len(set(spacing)) > 1:
        assert lap == f.laplace
        return
    assert lap != f.laplace  # the merged form really is another expression
    Operator([Eq(a, lap), Eq(b, f.laplace)], name="LapCheck")()
    # c_0 = -2 sum 1/k^2, c_k = 2 (-1)^(k+1) (n!)^2 / (k^2 (n-k)! (n+k)!)
    c = [-2 * sum(Fraction(1, k * k) for k in range(1, half + 1))]
    c += [Fraction(2 * (-1) ** (k + 1) * factorial(half) ** 2,
                   k * k * factorial(half - k) * factorial(half + k)) for k in range(1, half + 1)]
    fh = np.array(f.data_with_halo)
    lo = [(fh.shape[d] - n) // 2 for d, n in enumerate(shape)]  # halo width per side
    core = tuple(slice(o, o + n) for o, n in zip(lo, shape))
    ref = len(shape) * float(c[0]) * fh[core]
    for d in range(len(shape)):
        for k in range(1, half + 1):
            for sgn in (1, -1):
                idx = list(core)
                idx[d] = slice(lo[d] + sgn * k, lo[d] + sgn * k + shape[d])
                ref = ref + float(c[k]) * fh[tuple(idx)]
    ref = ref / spacing[0] ** 2
    assert np.max(np.abs(ref)) > 1e-2
    assert np.max(np.abs(a.data - ref)) <= 1e-12 * np.max(np.abs(ref))
    assert np.max(np.abs(a.data - b.data)) <= 1e-8 * np.max(np.abs(ref))
