"""Grid, TimeAxis, ricker and critical_dt: formulas, values, representations, and that the CFL limit
`critical_dt` is the actual stability limit of the compiled scheme (tight to 1 %).
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from jaxseis._geometry import fd_weights


# ---------------------------------------------------------------------------------- TimeAxis
@pytest.mark.parametrize("t0,tn,dt", [(0.0, 400.0, 1.0), (0.0, 1000.0, 0.7), (100.0, 300.0, 2.0),
                                      (5.0, 5.0, 1.0), (0.0, 1.0, 0.3)])
def test_time_axis_nt_and_values(t0, tn, dt):
    t = js.TimeAxis(t0, tn, dt)
    assert t.nt == int(round((tn - t0) / dt)) + 1
    v = t.values
    assert v.shape == (t.nt,)
    assert v[0] == t0
    if t.nt > 1:
        np.testing.assert_allclose(np.diff(v), dt, rtol=1e-12)
    # the last sample is tn up to the rounding of (tn - t0) / dt to a whole number of steps
    assert abs(v[-1] - tn) <= dt / 2 + 1e-9


def test_time_axis_examples():
    assert js.TimeAxis(0, 400, 1).nt == 401
    assert js.TimeAxis(0, 1000, 0.7).nt == 1430  # 1000 / 0.7 = 1428.57 -> 1429 steps
    t = js.TimeAxis(100, 300, 2)
    np.testing.assert_array_equal(t.values, 100.0 + 2.0 * np.arange(101))
    assert js.TimeAxis(5, 5, 1).nt == 1
    assert isinstance(t.t0, float) and isinstance(t.dt, float)


def test_time_axis_equality_and_hash():
    a, b = js.TimeAxis(0, 400, 1), js.TimeAxis(0.0, 400.0, 1.0)
    assert a == b and hash(a) == hash(b)
    assert js.TimeAxis(0, 400, 0.5) != a


# ---------------------------------------------------------------------------------- Grid
def test_grid_basics():
    g = js.Grid((41, 31), (10.0, 5.0))
    assert g.shape == (41, 31) and g.ndim == 2
    assert g.spacing == (10.0, 5.0) and g.origin == (0.0, 0.0)
    assert g.extent == (400.0, 150.0)
    assert g.bounds == ((0.0, 400.0), (0.0, 150.0))
    assert g.cell_volume == 50.0
    np.testing.assert_array_equal(g.coordinates(1), 5.0 * np.arange(31))
    g3 = js.Grid([11, 12, 13], 20, origin=(100.0, -50.0, 10.0))
    assert g3.ndim == 3 and g3.spacing == (20.0, 20.0, 20.0)
    assert g3.bounds == ((100.0, 300.0), (-50.0, 170.0), (10.0, 250.0))
    assert g3.coordinates(0)[-1] == 300.0


def test_grid_equality_and_hash():
    a = js.Grid((41, 31), (10.0, 10.0))
    b = js.Grid([41, 31], 10, origin=[0, 0])
    assert a == b and hash(a) == hash(b)
    assert all(isinstance(s, int) for s in b.shape)
    assert js.Grid((41, 31), (10.0, 10.0), origin=(1.0, 0.0)) != a


# ---------------------------------------------------------------------------------- reprs
def test_reprs_are_informative(problem):
    g = js.Grid((41, 31), (10.0, 5.0), origin=(1.0, 2.0))
    r = repr(g)
    assert "41, 31" in r and "10.0, 5.0" in r and "1.0, 2.0" in r
    assert eval(r, {"Grid": js.Grid}) == g  # round-trips
    t = js.TimeAxis(0, 400, 0.5)
    rt = repr(t)
    for frag in ("t0=0", "tn=400", "dt=0.5", "nt=801"):
        assert frag in rt, rt
    op = problem["op"]
    ro = repr(op)
    print(f"  {r}\n  {rt}\n  {ro}")
    for frag in (repr(op.grid), repr(op.time), f"space_order={op.space_order}",
                 f"nbl={op.nbl}", "free_surface=False", "float32"):
        assert frag in ro, ro


# ---------------------------------------------------------------------------------- ricker
def test_ricker_peak_and_shape():
    t = js.TimeAxis(0.0, 400.0, 1.0)
    f0 = 0.02
    w = js.ricker(t, f0)
    assert w.shape == (t.nt,) and w.dtype == jnp.float32
    w = np.asarray(w)
    tp = 1.0 / f0  # default peak time: 50 ms
    i = int(np.argmax(w))
    assert t.values[i] == tp and w[i] == pytest.approx(1.0, abs=1e-7)
    # symmetric about the peak
    np.testing.assert_allclose(w[i - 30:i], w[i + 30:i:-1], atol=1e-7)
    w2 = np.asarray(js.ricker(t, f0, t_peak=123.0))
    assert t.values[int(np.argmax(w2))] == 123.0 and w2.max() == pytest.approx(1.0, abs=1e-7)


def test_ricker_values_match_formula_features():
    """Zero crossings at t_peak +- 1/(pi f0 sqrt 2), minima -2 exp(-3/2) at +- sqrt(3/2)/(pi f0)."""
    f0 = 0.025
    t = js.TimeAxis(0.0, 200.0, 0.01)
    w = np.asarray(js.ricker(t, f0), dtype=np.float64)
    tp = 1.0 / f0
    tz = tp + 1.0 / (np.pi * f0 * np.sqrt(2.0))
    k = int(round(tz / t.dt))
    assert w[k - 2] > 0 > w[k + 2]
    tmin = tp + np.sqrt(1.5) / (np.pi * f0)
    assert w.min() == pytest.approx(-2 * np.exp(-1.5), rel=1e-5)
    assert abs(t.values[int(np.argmin(w))] - (2 * tp - tmin)) < 0.011 or \
        abs(t.values[int(np.argmin(w))] - tmin) < 0.011
    # the peak frequency of the amplitude spectrum is f0
    n = 2**22  # zero padding: frequency resolution 1 / (n dt) = 2.4e-5 kHz
    spec = np.abs(np.fft.rfft(w, n=n))
    fpk = np.fft.rfftfreq(n, d=t.dt)[int(np.argmax(spec))]
    assert abs(fpk - f0) <= 1.0 / (n * t.dt)


# ---------------------------------------------------------------------------------- critical_dt
def test_fd_weights_are_textbook():
    np.testing.assert_allclose(fd_weights(2), (1.0, -2.0, 1.0), atol=1e-12)
    np.testing.assert_allclose(fd_weights(4), (-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12), atol=1e-12)
    for so in (2, 4, 6, 8, 12, 16):
        c = np.asarray(fd_weights(so))
        assert abs(c.sum()) < 1e-10  # annihilates constants
        k = np.arange(-(so // 2), so // 2 + 1)
        assert (c * k**2).sum() == pytest.approx(2.0, rel=1e-10)  # exact on x^2


def test_critical_dt_closed_forms():
    h, v = 10.0, 2.0
    g2, g3 = js.Grid((10, 10), h), js.Grid((10, 10, 10), h)
    # second order in space: the textbook CFL number 1/sqrt(ndim)
    assert js.critical_dt(g2, v, 2) == pytest.approx(h / (v * math.sqrt(2)), rel=1e-12)
    assert js.critical_dt(g3, v, 2) == pytest.approx(h / (v * math.sqrt(3)), rel=1e-12)
    # fourth order: sum |c| = 16/3, so dt = 2 h / (v sqrt(2 * 16/3))
    assert js.critical_dt(g2, v, 4) == pytest.approx(2 * h / (v * math.sqrt(32 / 3)), rel=1e-12)
    # anisotropic spacing: dominated by the finer axis
    ga = js.Grid((10, 10), (10.0, 5.0))
    assert js.critical_dt(ga, v, 2) == pytest.approx(2 / (v * math.sqrt(4 / 100 + 4 / 25)))


def test_critical_dt_scaling():
    g = js.Grid((41, 31), (10.0, 10.0))
    orders = (2, 4, 6, 8, 10, 12, 16)
    dts = [js.critical_dt(g, 3.0, so) for so in orders]
    print("  critical_dt at 3 km/s, 10 m: "
          + ", ".join(f"so{so} {d:.4f}" for so, d in zip(orders, dts)))
    assert all(a > b for a, b in zip(dts, dts[1:])), "must decrease with space order"
    for so in (2, 8):
        base = js.critical_dt(g, 1.5, so)
        for factor in (2.0, 3.0, 1.7):
            assert js.critical_dt(g, 1.5 * factor, so) == pytest.approx(base / factor, rel=1e-12)
        coarse = js.Grid((41, 31), 20.0)
        assert js.critical_dt(coarse, 1.5, so) == pytest.approx(2 * base, rel=1e-12)
    assert js.critical_dt(g, 2.0) == js.critical_dt(g, 2.0, 8)  # default space order 8


def test_acoustic_critical_dt_uses_max_velocity(problem):
    op, vp = problem["op"], problem["vp"]
    m = problem["m"]
    assert op.critical_dt(m) == pytest.approx(js.critical_dt(op.grid, vp.max(), op.space_order),
                                              rel=1e-6)


def _run_raw(op, vp, dt, nt, src, rec, f0=0.02):
    """The compiled scheme at an arbitrary dt, bypassing the CFL check (solver internals)."""
    m = np.full(op.grid.shape, 1.0 / vp**2, np.float32)
    tt = np.arange(nt) * dt
    a = (np.pi * f0 * (tt - 1.0 / f0)) ** 2
    q = ((1 - 2 * a) * np.exp(-a)).astype(np.float32)[:, None]
    with np.errstate(all="ignore"):
        return op.solver.forward(m, dt, nt, rec, src=src, q=q)


def test_cfl_limit_is_tight(problem):
    """1 % above critical_dt the scheme blows up; at and 1 % below it stays bounded. Uses the
    session configuration (space order 4, 10 damping cells: the damping does not stabilise the
    interior), so nothing new is compiled."""
    op, src, rec = problem["op"], problem["src"], problem["rec"]
    vp = 2.5
    dtc = js.critical_dt(op.grid, vp, op.space_order)
    nt = 600
    peak = {}
    for factor in (0.99, 1.0, 1.01):
        d = _run_raw(op, vp, factor * dtc, nt, src, rec)
        early = float(np.max(np.abs(d[: nt // 4])))
        late = float(np.max(np.abs(d[nt // 2:]))) if np.all(np.isfinite(d)) else np.inf
        peak[factor] = (early, late)
        print(f"  dt = {factor:.2f} critical_dt: max |data| early {early:.3g}, late {late:.3g}")
    for factor in (0.99, 1.0):
        early, late = peak[factor]
        assert np.isfinite(late) and 0 < late <= early
    early, late = peak[1.01]
    assert not np.isfinite(late) or late > 1e6 * peak[1.0][0]


def test_unstable_dt_is_refused_and_stable_dt_runs(problem):
    op, src, rec = problem["op"], problem["src"], problem["rec"]
    vp = 2.5
    m = np.full(op.grid.shape, 1.0 / vp**2, np.float32)
    dtc = js.critical_dt(op.grid, vp, op.space_order)
    above = js.Acoustic(op.grid, js.TimeAxis(0.0, 300.0, 1.01 * dtc), space_order=op.space_order,
                        nbl=op.nbl)
    with pytest.raises(js.UnstableTimeStep):
        above.forward(m, js.ricker(above.time, 0.02), src, rec)
    below = js.Acoustic(op.grid, js.TimeAxis(0.0, 600 * 0.99 * dtc, 0.99 * dtc),
                        space_order=op.space_order, nbl=op.nbl)
    d = np.asarray(below.forward(m, js.ricker(below.time, 0.02), src, rec))
    nt = below.time.nt
    assert np.all(np.isfinite(d))
    assert 0 < np.max(np.abs(d[nt // 2:])) <= np.max(np.abs(d[: nt // 4]))
    assert below.solver is op.solver
