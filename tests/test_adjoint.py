"""Adjointness of the three linear pairs, and the wiring of their VJPs.

Dot tests `<A x, y> = <x, A^T y>` with `jaxseis.testing.dot_test` for

- `forward` / `adjoint` (linear in the wavelet, two sources, one of them off the grid),
- `born` / `born_adjoint` (linear in `dm`),
- `forward_extended` / `adjoint_extended` (linear in `weights`),

in float32 (relative mismatch <= 1e-4) and float64 (<= 1e-11), with and without a free surface.
Then: the FWI gradient from `jax.grad` is `born_adjoint` of the residual; the VJP of `forward` in
the wavelet is `adjoint` (summed over sources for a shared `(nt,)` wavelet); and `born` is the
derivative of `forward` (central differences in float64).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import bandlimited_wavelets, smooth_random
from jaxseis.testing import dot_test

F32_TOL = 1e-4
F64_TOL = 1e-11

# Two point sources: one on a node, one between nodes (tests the transpose of the interpolation).
SRC2 = np.array([[150.0, 25.0], [263.0, 37.0]])


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(params=[("float32", False), ("float32", True), ("float64", False),
                        ("float64", True)],
                ids=["f32", "f32-fs", "f64", "f64-fs"])
def case(request):
    """(problem, tolerance) for one precision / boundary combination; float64 runs with x64 on."""
    prec, fs = request.param
    if prec == "float32":
        yield request.getfixturevalue("problem_fs" if fs else "problem"), F32_TOL
    else:
        p = request.getfixturevalue("problem64_fs" if fs else "problem64")
        with jax.enable_x64(True):
            yield p, F64_TOL


def _label(p):
    op = p["op"]
    return f"{op.dtype.name} free_surface={op.free_surface}"


# ------------------------------------------------------------------------------------ dot tests
def test_dot_forward_adjoint(case):
    p, tol = case
    op, m, rec = p["op"], p["m"], p["rec"]
    rng = np.random.default_rng(11)
    dtype = op.dtype
    x = bandlimited_wavelets(rng, p["wavelet"], 2).astype(dtype)
    y = rng.standard_normal((op.time.nt, rec.shape[0])).astype(dtype)
    err, lhs, rhs = dot_test(lambda q: op.forward(m, q, SRC2, rec),
                             lambda d: op.adjoint(m, d, SRC2, rec), x, y)
    print(f"\n[dot forward/adjoint {_label(p)}] <Fq,d>={lhs:.12e} <q,F'd>={rhs:.12e} rel={err:.3e}")
    assert lhs != 0.0
    assert err <= tol


def test_dot_born(case):
    p, tol = case
    op, m, src, rec, w = p["op"], p["m"], p["src"], p["rec"], p["wavelet"]
    rng = np.random.default_rng(12)
    dtype = op.dtype
    # dm is nonzero up to the edges: the padding (edge replication) and its transpose are tested.
    x = (0.05 * np.mean(m) * smooth_random(rng, op.grid.shape)).astype(dtype)
    y = rng.standard_normal((op.time.nt, rec.shape[0])).astype(dtype)
    err, lhs, rhs = dot_test(lambda dm: op.born(m, dm, w, src, rec),
                             lambda d: op.born_adjoint(m, d, w, src, rec), x, y)
    print(f"\n[dot born/born_adjoint {_label(p)}] <J dm,d>={lhs:.12e} <dm,J'd>={rhs:.12e} "
          f"rel={err:.3e}")
    assert lhs != 0.0
    assert err <= tol


def test_dot_extended(case):
    p, tol = case
    op, m, rec, w = p["op"], p["m"], p["rec"], p["wavelet"]
    rng = np.random.default_rng(13)
    dtype = op.dtype
    x = smooth_random(rng, op.grid.shape).astype(dtype)
    y = rng.standard_normal((op.time.nt, rec.shape[0])).astype(dtype)
    err, lhs, rhs = dot_test(lambda wt: op.forward_extended(m, wt, w, rec),
                             lambda d: op.adjoint_extended(m, d, w, rec), x, y)
    print(f"\n[dot forward_extended/adjoint_extended {_label(p)}] <Fw,d>={lhs:.12e} "
          f"<w,F'd>={rhs:.12e} rel={err:.3e}")
    assert lhs != 0.0
    assert err <= tol


# ------------------------------------------------------------------------------------ VJP wiring
def _background(p):
    """A smooth starting model: the linear-gradient background of the test problem without its
    Gaussian anomaly."""
    z = p["op"].grid.coordinates(1)
    vp0 = 1.5 + 1.0 * z / 300.0
    return np.broadcast_to(1.0 / vp0[None, :] ** 2, p["op"].grid.shape).astype(p["m"].dtype)


@pytest.mark.parametrize("fs", [False, True], ids=["absorbing", "free-surface"])
def test_fwi_gradient_is_born_adjoint_of_residual(request, fs):
    p = request.getfixturevalue("problem_fs" if fs else "problem")
    op, m, src, rec, w = p["op"], p["m"], p["src"], p["rec"], p["wavelet"]
    d_obs = op.forward(m, w, src, rec)
    m0 = _background(p)

    def loss(mm):
        r = op.forward(mm, w, src, rec) - d_obs
        return 0.5 * jnp.sum(r**2)

    g_ad = np.asarray(jax.grad(loss)(m0), dtype=np.float64)
    res = op.forward(m0, w, src, rec) - d_obs
    g_ba = np.asarray(op.born_adjoint(m0, res, w, src, rec), dtype=np.float64)
    rel = np.linalg.norm(g_ad - g_ba) / np.linalg.norm(g_ba)
    print(f"\n[grad vs born_adjoint(residual), free_surface={fs}] |g|={np.linalg.norm(g_ba):.4e} "
          f"rel diff={rel:.3e}")
    assert np.linalg.norm(g_ba) > 0
    assert rel <= 1e-5
    # The cotangent is honoured: a scaled loss has a scaled gradient.
    g3 = np.asarray(jax.grad(lambda mm: 3.0 * loss(mm))(m0), dtype=np.float64)
    assert np.linalg.norm(g3 - 3.0 * g_ba) / np.linalg.norm(3.0 * g_ba) <= 1e-5


def test_vjp_wavelet_is_adjoint(problem):
    op, m, rec, w = problem["op"], problem["m"], problem["rec"], problem["wavelet"]
    rng = np.random.default_rng(14)
    ct = rng.standard_normal((op.time.nt, rec.shape[0])).astype(np.float32)
    adj = np.asarray(op.adjoint(m, ct, SRC2, rec), dtype=np.float64)
    assert adj.shape == (op.time.nt, 2)

    # Shared (nt,) wavelet broadcast to both sources: the VJP sums the adjoint over sources.
    _, vjp1 = jax.vjp(lambda q: op.forward(m, q, SRC2, rec), jnp.asarray(w))
    (g1,) = vjp1(jnp.asarray(ct))
    g1 = np.asarray(g1, dtype=np.float64)
    assert g1.shape == (op.time.nt,)
    rel1 = np.linalg.norm(g1 - adj.sum(axis=1)) / np.linalg.norm(adj.sum(axis=1))

    # One wavelet per source: the VJP is the adjoint itself.
    q2 = np.stack([w, 0.5 * w], axis=1)
    _, vjp2 = jax.vjp(lambda q: op.forward(m, q, SRC2, rec), jnp.asarray(q2))
    (g2,) = vjp2(jnp.asarray(ct))
    rel2 = np.linalg.norm(np.asarray(g2, dtype=np.float64) - adj) / np.linalg.norm(adj)
    print(f"\n[vjp wavelet vs adjoint] shared wavelet rel={rel1:.3e}, per-source rel={rel2:.3e}")
    assert rel1 <= 1e-5
    assert rel2 <= 1e-5


@pytest.mark.parametrize("fs", [False, True], ids=["absorbing", "free-surface"])
def test_born_is_derivative_of_forward(request, x64, fs):
    """float64: `born(m0, dm)` against central differences of `forward` (error O(h^2))."""
    p = request.getfixturevalue("problem64_fs" if fs else "problem64")
    op, src, rec, w = p["op"], p["src"], p["rec"], p["wavelet"]
    m0 = _background(p)
    rng = np.random.default_rng(15)
    grid = op.grid
    # Smooth perturbation of ~0.5% of m0 (rms), tapered to zero at the edges.
    taper = np.outer(np.sin(np.pi * np.arange(grid.shape[0]) / (grid.shape[0] - 1)),
                     np.sin(np.pi * np.arange(grid.shape[1]) / (grid.shape[1] - 1)))
    dm = 0.005 * m0 * taper * smooth_random(rng, grid.shape, 3.0)
    lin = np.asarray(op.born(m0, dm, w, src, rec))
    errs = []
    for h in (1.0, 0.5):
        cd = (np.asarray(op.forward(m0 + h * dm, w, src, rec))
              - np.asarray(op.forward(m0 - h * dm, w, src, rec))) / (2 * h)
        errs.append(np.linalg.norm(cd - lin) / np.linalg.norm(lin))
    print(f"\n[born vs central differences, float64, free_surface={fs}] "
          f"rel err h=1: {errs[0]:.3e}, h=1/2: {errs[1]:.3e}, ratio {errs[0] / errs[1]:.2f}")
    assert errs[0] <= 1e-3
    # O(h^2): the error of a central difference drops 4x per halving.
    assert 3.5 <= errs[0] / errs[1] <= 4.5
