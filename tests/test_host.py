"""The host-side work around each solve (jaxseis/devito/_solver.py, jaxseis/_checks.py).

Each of these runs twice per `value_and_grad` call, so their fast paths matter (issue 13, measured in
benchmarks/README.md); these tests hold each fast path to the slow, obvious definition it replaced.
"""

import itertools

import numpy as np
import pytest

import jaxseis as js
from jaxseis import _checks
from jaxseis._errors import InvalidArgument
from jaxseis._physics import Parameter
from jaxseis.devito._solver import Solver


def _solver(ndim, free_surface, dtype=np.float64, nbl=3):
    shape = (7, 6, 5)[:ndim] if ndim == 3 else (9, 7)
    grid = js.Grid(shape, (10.0,) * ndim)
    op = js.Acoustic(grid, js.TimeAxis(0.0, 10.0, 1.0), space_order=4, nbl=nbl,
                     free_surface=free_surface, dtype=dtype)
    return Solver(op.solver_config)


@pytest.mark.parametrize("ndim,free_surface", [(2, False), (2, True), (3, False), (3, True)])
def test_unpad_model_adjoint_is_the_transpose_of_pad_model(ndim, free_surface, rng):
    """<pad(x), y> = <x, unpad_adjoint(y)> to round-off, for edge replication on every side.
    With a free surface the ghost rows above it influence nothing (the physics overwrites them),
    so the transpose drops whatever is there: it is the transpose for `y` zero in those rows."""
    s = _solver(ndim, free_surface)
    x = rng.standard_normal(s.cfg.shape)
    y = rng.standard_normal(s.padded_shape)
    ghost = s.pad_lo[-1] if free_surface else 0
    y0 = y.copy()
    y0[..., :ghost] = 0
    lhs = float(np.sum(s.pad_model(x) * y0))
    rhs = float(np.sum(x * s.unpad_model_adjoint(y0)))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
    np.testing.assert_array_equal(s.unpad_model_adjoint(y), s.unpad_model_adjoint(y0))
    # every padded cell below the ghost rows is summed onto exactly one physical cell
    counts = s.unpad_model_adjoint(np.ones(s.padded_shape))
    assert counts.sum() == np.prod(s.padded_shape) - np.prod(s.padded_shape[:-1]) * ghost


def test_unpad_model_adjoint_reads_a_view_and_returns_the_solver_dtype(rng):
    s = _solver(2, False, dtype=np.float32)
    g = rng.standard_normal(s.padded_shape).astype(np.float32)
    keep = g.copy()
    out = s.unpad_model_adjoint(g)
    assert out.dtype == np.float32 and out.shape == s.cfg.shape
    np.testing.assert_array_equal(g, keep)  # the imaging buffer it reads is left as it was
    ref = s.unpad_model_adjoint(g.astype(np.float64))
    np.testing.assert_array_equal(out, ref.astype(np.float32))


@pytest.mark.parametrize("p", [
    Parameter("m", "s^2/km^2", "squared slowness", lower=0.0, lower_open=True),
    Parameter("eps", "-", "Thomsen epsilon", lower=-0.5, lower_open=True, upper=1.0),
    Parameter("q", "-", "quality factor", lower=1.0, upper=1e4, upper_open=True),
    Parameter("t", "rad", "tilt"),
], ids=lambda p: p.name)
def test_parameter_holds_agrees_with_the_cell_by_cell_mask(p, rng):
    values = [-1.0, -0.5, 0.0, 1e-30, 0.5, 1.0, 2.0, 1e4, np.inf, -np.inf, np.nan]
    for a, b in itertools.product(values, repeat=2):
        x = np.array([0.7, a, 0.9, b], dtype=np.float32)
        assert p.holds(x) == (not np.any(p.outside(x, np))), (p.name, a, b)
    assert p.holds(np.zeros((0,), np.float32))


def test_check_finite_finds_every_kind_of_bad_value():
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros((5, 4), np.float32)
        x[3, 2] = bad
        with pytest.raises(InvalidArgument, match="`data` must be finite"):
            _checks.check_finite(x, "data")
    _checks.check_finite(np.zeros((5, 4), np.float32), "data")
    _checks.check_finite(np.arange(4), "data")  # integers are always finite
    with pytest.raises(InvalidArgument):
        _checks.check_finite(np.array([1 + 1j, np.nan]), "data")


def test_rewritten_scratch_is_not_zeroed_and_nothing_reads_its_stale_values(problem):
    """`Leapfrog`'s coefficients are leased without zeroing: poison them between two forwards and
    the second one still gives the first one's data, bit for bit."""
    op = problem["op"]
    s = Solver(op.solver_config)
    args = (problem["m"], op.time.dt, op.time.nt, np.asarray(problem["rec"], np.float32))
    kw = dict(src=np.asarray(problem["src"], np.float32),
              q=np.asarray(problem["wavelet"], np.float32).reshape(-1, 1))
    d1 = s.forward(*args, **kw)
    specs = {sp.kwargs["name"]: sp for sp in s.ctx.fields("aux")}
    assert specs["lf_a"].rewritten and specs["lf_b"].rewritten
    with s._leasing():
        aux = s._aux()
        for f in aux.values():
            f.data[:] = np.nan  # the domain; the halo is never written by anyone
            assert np.all(f.data_with_halo[0] == 0)
    with s._leasing():
        again = s._aux()
        assert all(again[k] is aux[k] for k in aux)  # the same pooled objects, not re-zeroed
        assert all(np.isnan(again[k].data).all() for k in aux)
    d2 = s.forward(*args, **kw)
    assert np.all(np.isfinite(d2))
    np.testing.assert_array_equal(d1, d2)
