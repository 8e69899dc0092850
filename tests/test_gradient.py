"""Taylor tests of the gradients that `jax.grad` gets through the operators.

For a loss `f` with gradient `g` at `x`, along `dx`, with steps `h = h0 / 2**k`:

    r1(h) = |f(x + h dx) - f(x)|                 = O(h)   (rate ~1: halves per halving)
    r2(h) = |f(x + h dx) - f(x) - h <g, dx>|     = O(h^2) (rate ~2: quarters per halving)

r2 is O(h^2) only if `g` is the true gradient; a wrong gradient (wrong sign, scale, time shift,
missing term) leaves an O(h) part in r2 and its rate drops towards 1 (a gradient 2 % too large gives
rate2 ~1.4 in the float32 case below). Cases:

- `forward` w.r.t. `m` (FWI gradient): float64 (absorbing and free surface) and float32;
- `forward` w.r.t. the wavelet (two sources, one wavelet each);
- `forward_extended` w.r.t. `weights` and w.r.t. `m`.

`forward` is linear in the wavelet and `forward_extended` in the weights, so the loss used for those
is the least-squares misfit `0.5 ||F w - d||^2`: it is exactly quadratic in `w`, so r2 is exactly
`0.5 h^2 ||F dw||^2` (rate 2 up to round-off) and r1 = `|h <g, dw> + r2|` (rate ~1 while the linear
term dominates). A linear loss `<F w, c>` would not do: its r2 is pure round-off and says nothing.
For those cases the measured r2 is also compared with the exact `0.5 h^2 ||F dw||^2`.

Choice of the data: r1 has rate ~1 only while the linear term `h <g, dx>` dominates the curvature
term, and r2 must stay above round-off at the smallest step. Both hold when the observed data come
from a model `x_true - a dx` (a = 4 or 5) that differs from the start along `dx` (in float64 also by
an unrelated Gaussian anomaly): then `<g, dx> ~ a ||J dx||^2` and the curvature term is only about
`h / (2a)` of the linear one.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import bandlimited_wavelets, check_rates, smooth_random
from helpers import report_taylor as report
from jaxseis.testing import taylor_test

SRC2 = np.array([[150.0, 25.0], [263.0, 37.0]])
A = 5.0  # the observed data's model is `x_true - A * dx` (see the module docstring)


# ------------------------------------------------------------------------------------ helpers
def background(op, dtype):
    """Smooth starting model: the linear-gradient background of `small_problem` (no anomaly)."""
    z = op.grid.coordinates(1)
    vp0 = 1.5 + 1.0 * z / 300.0
    return np.broadcast_to(1.0 / vp0[None, :] ** 2, op.grid.shape).astype(dtype)


def interior_bumps(op, m, amplitude):
    """Smooth model perturbation: two Gaussian bumps (sigma 30 m) in the interior, away from the
    edges, source and receivers; peak `amplitude` (relative) times `m`."""
    x = op.grid.coordinates(0)[:, None]
    z = op.grid.coordinates(1)[None, :]
    b = (np.exp(-((x - 130.0) ** 2 + (z - 170.0) ** 2) / (2 * 30.0**2))
         - 0.7 * np.exp(-((x - 280.0) ** 2 + (z - 200.0) ** 2) / (2 * 30.0**2)))
    return (amplitude * m * b).astype(m.dtype)


# ------------------------------------------------------------------------------------ helpers
def _true_model(p, m0, dm, anomaly, a):
    """The model of the observed data: `m0 - a * dm`, plus the problem's Gaussian anomaly."""
    return (p["m"] if anomaly else m0) - a * dm


def _fwi_taylor(p, amplitude, anomaly=True, a=A, h0=1.0):
    op, m, src, rec, w = p["op"], p["m"], p["src"], p["rec"], p["wavelet"]
    m0 = background(op, m.dtype)
    dm = interior_bumps(op, m0, amplitude)
    d_obs = op.forward(_true_model(p, m0, dm, anomaly, a), w, src, rec)

    def loss(mm):
        r = op.forward(mm, w, src, rec) - d_obs
        return 0.5 * jnp.sum(r**2)

    return taylor_test(loss, jnp.asarray(m0), jnp.asarray(dm), h0=h0, n=5)


# ------------------------------------------------------------------------------------ forward, m
@pytest.mark.parametrize("fs", [False, True], ids=["absorbing", "free-surface"])
def test_taylor_forward_m_float64(request, x64, fs):
    p = request.getfixturevalue("problem64_fs" if fs else "problem64")
    res = _fwi_taylor(p, amplitude=0.02)
    report(f"forward wrt m, float64, free_surface={fs}", res)
    check_rates(res)


# float32: the forward solves carry round-off that makes the loss jitter by ~2e-8 here (measured:
# loss differences for steps of 2e-4 dm scatter by that much), whatever the loss value. The smallest
# r2 must be far above that, so the perturbation is larger (10 % bumps) and the observed data differ
# from the start only along dm (no unrelated anomaly, whose residual-term curvature partly cancels
# the Gauss-Newton term and makes r2 small). a = 4 keeps the true model within the CFL limit.
def test_taylor_forward_m_float32(problem):
    res = _fwi_taylor(problem, amplitude=0.1, anomaly=False, a=4.0)
    report("forward wrt m, float32", res)
    check_rates(res)


# ------------------------------------------------------------------------------- forward, wavelet
def test_taylor_forward_wavelet(problem):
    op, m, rec, w = problem["op"], problem["m"], problem["rec"], problem["wavelet"]
    rng = np.random.default_rng(21)
    q0 = np.stack([np.roll(w, 15), 0.3 * w], axis=1).astype(np.float32)
    dq = (0.3 * bandlimited_wavelets(rng, w, 2)).astype(np.float32)
    q_true = np.stack([w, -0.6 * w], axis=1) - A * dq
    d_obs = op.forward(m, q_true.astype(np.float32), SRC2, rec)

    def loss(q):
        r = op.forward(m, q, SRC2, rec) - d_obs
        return 0.5 * jnp.sum(r**2)

    res = taylor_test(loss, jnp.asarray(q0), jnp.asarray(dq), h0=1.0, n=5)
    report("forward wrt wavelet (quadratic misfit), float32", res)
    check_rates(res)
    # The loss is exactly quadratic: r2 = 0.5 h^2 ||F dq||^2.
    fdq = np.asarray(op.forward(m, dq, SRC2, rec), dtype=np.float64)
    exact = 0.5 * res.steps**2 * np.sum(fdq**2)
    rel = np.abs(res.second_order - exact) / exact
    print(f"  r2 vs exact 0.5 h^2 |F dq|^2: rel {np.array2string(rel, precision=2)}")
    assert np.all(rel < 1e-2)


# ------------------------------------------------------------------------------------ extended
def test_taylor_extended_weights(problem):
    op, m, rec, w = problem["op"], problem["m"], problem["rec"], problem["wavelet"]
    rng = np.random.default_rng(22)
    wt0 = np.zeros(op.grid.shape, np.float32)
    dwt = (0.3 / op.grid.cell_volume * smooth_random(rng, op.grid.shape, 2.0)
           * (np.arange(op.grid.shape[1]) < 12)[None, :]).astype(np.float32)
    wt_true = np.zeros(op.grid.shape, np.float32)
    wt_true[20, 5] = 1.0 / op.grid.cell_volume  # a point source as a density
    d_obs = op.forward_extended(m, wt_true - A * dwt, w, rec)

    def loss(wt):
        r = op.forward_extended(m, wt, w, rec) - d_obs
        return 0.5 * jnp.sum(r**2)

    res = taylor_test(loss, jnp.asarray(wt0), jnp.asarray(dwt), h0=1.0, n=5)
    report("forward_extended wrt weights (quadratic misfit), float32", res)
    check_rates(res)
    fdw = np.asarray(op.forward_extended(m, dwt, w, rec), dtype=np.float64)
    exact = 0.5 * res.steps**2 * np.sum(fdw**2)
    rel = np.abs(res.second_order - exact) / exact
    print(f"  r2 vs exact 0.5 h^2 |F dw|^2: rel {np.array2string(rel, precision=2)}")
    assert np.all(rel < 1e-2)


@pytest.mark.parametrize("prec", ["float32", "float64"])
def test_taylor_extended_m(request, prec):
    ctx = jax.enable_x64(True) if prec == "float64" else jax.enable_x64(False)
    with ctx:
        p = request.getfixturevalue("problem64" if prec == "float64" else "problem")
        op, m, rec, w = p["op"], p["m"], p["rec"], p["wavelet"]
        wt = np.zeros(op.grid.shape, m.dtype)
        wt[20, 2:5] = 1.0 / op.grid.cell_volume  # a short vertical line source
        m0 = background(op, m.dtype)
        if prec == "float64":
            dm = interior_bumps(op, m0, 0.02)
            m_true = _true_model(p, m0, dm, anomaly=True, a=A)
        else:  # larger, cleaner remainders above float32 round-off (see the float32 FWI test)
            dm = interior_bumps(op, m0, 0.1)
            m_true = _true_model(p, m0, dm, anomaly=False, a=4.0)
        d_obs = op.forward_extended(m_true, wt, w, rec)

        def loss(mm):
            r = op.forward_extended(mm, wt, w, rec) - d_obs
            return 0.5 * jnp.sum(r**2)

        res = taylor_test(loss, jnp.asarray(m0), jnp.asarray(dm), h0=1.0, n=5)
    report(f"forward_extended wrt m, {prec}", res)
    check_rates(res)
