"""jaxseis.losses: l2 and normalised cross-correlation misfits (values, invariances, gradients)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from jaxseis import losses

# Jitted once per shape: far fewer compilations than op-by-op eager dispatch.
ncc = jax.jit(losses.ncc, static_argnames=("time_axis",))
ncc_value_and_grad = jax.jit(jax.value_and_grad(losses.ncc))


@pytest.fixture(scope="module")
def traces():
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 200)[:, None]
    obs = np.sin(2 * np.pi * 7 * t + rng.uniform(0, 6, size=(1, 5))) * np.exp(-3 * t)
    pred = obs + 0.3 * rng.normal(size=obs.shape)
    return jnp.asarray(pred, jnp.float32), jnp.asarray(obs, jnp.float32)


def test_l2_value_and_gradient(traces):
    pred, obs = traces
    r = np.asarray(pred, float) - np.asarray(obs, float)
    assert float(losses.l2(pred, obs)) == pytest.approx(0.5 * np.sum(r**2), rel=1e-5)
    assert float(losses.l2(obs, obs)) == 0.0
    g = jax.grad(losses.l2)(pred, obs)
    np.testing.assert_allclose(np.asarray(g), r, rtol=1e-5, atol=1e-6)
    with pytest.raises(js.InvalidShape, match="same shape"):
        losses.l2(pred, obs[:, :3])


def test_ncc_values(traces):
    pred, obs = traces
    # Identical traces: zero misfit; negated: 2 per trace.
    assert float(ncc(obs, obs)) == pytest.approx(0.0, abs=1e-5)
    assert float(ncc(-obs, obs)) == pytest.approx(2.0 * obs.shape[1], rel=1e-5)
    # Per-trace reference in float64.
    p, o = np.asarray(pred, float), np.asarray(obs, float)
    ref = np.sum(1 - np.sum(p * o, 0) / (np.linalg.norm(p, axis=0) * np.linalg.norm(o, axis=0)))
    val = float(ncc(pred, obs))
    print(f"ncc = {val:.6f}, float64 reference = {ref:.6f}")
    assert val == pytest.approx(ref, rel=1e-4)
    assert 0.0 < val < 2.0 * p.shape[1]
    # Invariant to a positive scaling of pred (each trace separately, too) and of obs.
    assert float(ncc(1e3 * pred, obs)) == pytest.approx(val, rel=1e-5)
    assert float(ncc(1e-4 * pred, obs)) == pytest.approx(val, rel=1e-5)
    scale = jnp.asarray([0.1, 1.0, 10.0, 3.0, 0.5], jnp.float32)
    assert float(ncc(pred * scale, 7.0 * obs)) == pytest.approx(val, rel=1e-5)
    # l2 is not scale invariant: the contrast that motivates ncc.
    assert float(losses.l2(2 * obs, obs)) > 0
    # Batched (nshots, nt, nrec) sums over shots; a 1D array is one trace.
    batch = ncc(jnp.stack([pred, obs]), jnp.stack([obs, obs]))
    assert float(batch) == pytest.approx(val, rel=1e-5)
    assert float(ncc(pred[:, 0], obs[:, 0])) == pytest.approx(
        1 - np.dot(p[:, 0], o[:, 0]) / np.linalg.norm(p[:, 0]) / np.linalg.norm(o[:, 0]), rel=1e-4)
    # time_axis: the transposed layout gives the same value.
    assert float(ncc(pred.T, obs.T, time_axis=-1)) == pytest.approx(val, rel=1e-5)


def test_ncc_gradient(traces, x64):
    pred, obs = (jnp.asarray(a, jnp.float64) for a in traces)
    _, g = ncc_value_and_grad(pred, obs)
    assert np.all(np.isfinite(np.asarray(g)))
    # Scale invariance means the gradient of each trace is orthogonal to that trace.
    dots = np.sum(np.asarray(g) * np.asarray(pred), axis=0) / (
        np.linalg.norm(np.asarray(g), axis=0) * np.linalg.norm(np.asarray(pred), axis=0))
    assert np.max(np.abs(dots)) < 1e-8
    # Central finite difference along a random direction.
    d = jnp.asarray(np.random.default_rng(1).normal(size=pred.shape))
    h = 1e-5
    fd = (ncc(pred + h * d, obs) - ncc(pred - h * d, obs)) / (2 * h)
    assert float(jnp.vdot(g, d)) == pytest.approx(float(fd), rel=1e-6)


def test_ncc_zero_traces_finite():
    obs = jnp.ones((50, 3), jnp.float32)
    pred = jnp.zeros((50, 3), jnp.float32).at[:, 0].set(1.0)
    val, g = ncc_value_and_grad(pred, obs)
    assert np.isfinite(float(val)) and np.all(np.isfinite(np.asarray(g)))
    # Trace 0 matches, the two dead traces cost 1 each.
    assert float(val) == pytest.approx(2.0, abs=1e-5)
    val0, g0 = ncc_value_and_grad(jnp.zeros((50, 3), jnp.float32), obs)
    assert float(val0) == pytest.approx(3.0, abs=1e-5) and np.all(np.isfinite(np.asarray(g0)))


def test_losses_under_jit_and_vmap(traces):
    pred, obs = traces
    batch_p, batch_o = jnp.stack([pred, 2 * pred]), jnp.stack([obs, obs])
    for f in (losses.l2, losses.ncc):
        per_shot = jax.vmap(f)(batch_p, batch_o)
        looped = [float(f(p, o)) for p, o in zip(batch_p, batch_o)]
        np.testing.assert_allclose(np.asarray(per_shot), looped, rtol=1e-5)
        assert float(jax.jit(f)(pred, obs)) == pytest.approx(float(f(pred, obs)), rel=1e-6)
