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
