"""JAX plumbing of the core operators: jit, vmap and grad compositions against eager calls and
Python loops, reusable VJP closures, one host call per batch, refused derivatives, symbolic zeros
and the second-order products that are supported (Gauss-Newton, adjoint of the adjoint).

All comparisons are float32 against the same operator called eagerly (or in a loop), so they should
agree to round-off (max-norm relative error <= 1e-5).
"""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from jaxseis.devito import _solver, _tasks

RTOL = 1e-5


def rel_err(actual, desired):
    """Max-norm error relative to the max-norm of `desired` (which must be non-zero)."""
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    assert a.shape == d.shape, (a.shape, d.shape)
    scale = np.max(np.abs(d))
    assert scale > 0, "reference is identically zero: the comparison would prove nothing"
    return float(np.max(np.abs(a - d)) / scale)


def assert_close(actual, desired, rtol=RTOL, what=""):
    err = rel_err(actual, desired)
    print(f"  {what}: rel err {err:.2e}")
    assert err <= rtol, f"{what}: relative error {err:.3e} > {rtol:g}"


def assert_distinct(batch):
    """Elements of a batched result differ (so a vmap that repeats one element would be caught)."""
    b = np.asarray(batch)
    for i in range(1, len(b)):
        assert rel_err(b[i], b[0]) > 1e-3, f"batch elements 0 and {i} are (nearly) equal"


@pytest.fixture(scope="module")
def p(problem):
    """The session problem plus batches of 3 shots, receiver lines, wavelets, models, data."""
    op, m, w, rec = problem["op"], problem["m"], problem["wavelet"], problem["rec"]
    d = dict(problem)
    d["srcs"] = np.array([[[100.0, 25.0]], [[200.0, 35.0]], [[310.0, 45.0]]])  # (3, 1, 2)
    d["recs"] = np.stack([np.stack([np.linspace(5.0, 395.0, 21), np.full(21, z)], axis=1)
                          for z in (15.0, 105.0, 285.0)])  # (3, 21, 2)
    t = op.time
    d["wavelets"] = np.stack([np.asarray(js.ricker(t, f0, t_peak=tp), np.float32)
                              for f0, tp in ((0.015, 80.0), (0.02, 50.0), (0.025, 60.0))])
    d["ms"] = np.stack([m, 1.04 * m, 0.97 * m]).astype(np.float32)  # (3, nx, nz)
    d["m0"] = (1.05 * m).astype(np.float32)  # a slower starting model
    rng = np.random.default_rng(7)
    d["dms"] = (1e-2 * rng.standard_normal((3,) + m.shape)).astype(np.float32)
    d["datas"] = (rng.standard_normal((3, t.nt, rec.shape[0]))).astype(np.float32)
    # Observed data per shot, for FWI losses.
    d["dobs"] = np.stack([np.asarray(op.forward(m, w, s, rec)) for s in d["srcs"]])
    return d


def fwi_loss(op, w, rec):
    def loss(m, src, dobs):
        r = op.forward(m, w, src, rec) - dobs
        return 0.5 * jnp.sum(r**2)
    return loss


# ---------------------------------------------------------------------------------- jit
def test_jit_forward_equals_eager(p):
    op, m, w, src, rec = p["op"], p["m"], p["wavelet"], p["src"], p["rec"]
    eager = op.forward(m, w, src, rec)
    jitted = jax.jit(op.forward)(m, w, src, rec)
    assert_close(jitted, eager, what="jit(forward)")
    # and the other operators
    data = p["datas"][0]
    assert_close(jax.jit(op.adjoint)(m, data, src, rec), op.adjoint(m, data, src, rec),
                 what="jit(adjoint)")
    dm = p["dms"][0]
    assert_close(jax.jit(op.born)(m, dm, w, src, rec), op.born(m, dm, w, src, rec),
                 what="jit(born)")
    assert_close(jax.jit(op.born_adjoint)(m, data, w, src, rec),
                 op.born_adjoint(m, data, w, src, rec), what="jit(born_adjoint)")


# ---------------------------------------------------------------------------------- vmap
def test_vmap_over_shots(p):
    op, m, w, rec, srcs = p["op"], p["m"], p["wavelet"], p["rec"], p["srcs"]
    batched = jax.vmap(lambda s: op.forward(m, w, s, rec))(srcs)
    loop = np.stack([op.forward(m, w, s, rec) for s in srcs])
    assert batched.shape == (3, op.time.nt, rec.shape[0])
    assert_distinct(loop)
    assert_close(batched, loop, what="vmap over src")
    assert_close(jax.jit(jax.vmap(op.forward, in_axes=(None, None, 0, None)))(m, w, srcs, rec),
                 loop, what="jit(vmap over src)")


def test_vmap_over_rec(p):
    op, m, w, src, recs = p["op"], p["m"], p["wavelet"], p["src"], p["recs"]
    batched = jax.vmap(lambda r: op.forward(m, w, src, r))(recs)
    loop = np.stack([op.forward(m, w, src, r) for r in recs])
    assert_distinct(loop)
    assert_close(batched, loop, what="vmap over rec")


def test_vmap_over_wavelet(p):
    op, m, src, rec, ws = p["op"], p["m"], p["src"], p["rec"], p["wavelets"]
    batched = jax.vmap(lambda w: op.forward(m, w, src, rec))(ws)
    loop = np.stack([op.forward(m, w, src, rec) for w in ws])
    assert_distinct(loop)
    assert_close(batched, loop, what="vmap over wavelet")


def test_vmap_over_data(p):
    op, m, w, src, rec, datas = p["op"], p["m"], p["wavelet"], p["src"], p["rec"], p["datas"]
    batched = jax.vmap(lambda d: op.adjoint(m, d, src, rec))(datas)
    loop = np.stack([op.adjoint(m, d, src, rec) for d in datas])
    assert_distinct(loop)
    assert_close(batched, loop, what="vmap(adjoint) over data")
    batched = jax.vmap(lambda d: op.born_adjoint(m, d, w, src, rec))(datas)
    loop = np.stack([op.born_adjoint(m, d, w, src, rec) for d in datas])
    assert_distinct(loop)
    assert_close(batched, loop, what="vmap(born_adjoint) over data")


def test_vmap_over_models(p):
    op, w, src, rec, ms, dms = p["op"], p["wavelet"], p["src"], p["rec"], p["ms"], p["dms"]
    batched = jax.vmap(lambda m: op.forward(m, w, src, rec))(ms)
    loop = np.stack([op.forward(m, w, src, rec) for m in ms])
    assert_distinct(loop)
    assert_close(batched, loop, what="vmap(forward) over m")
    m0 = p["m"]
    batched = jax.vmap(lambda dm: op.born(m0, dm, w, src, rec))(dms)
    loop = np.stack([op.born(m0, dm, w, src, rec) for dm in dms])
    assert_distinct(loop)
    assert_close(batched, loop, what="vmap(born) over dm")
    batched = jax.vmap(lambda m, dm: op.born(m, dm, w, src, rec))(ms, dms)
    loop = np.stack([op.born(m, dm, w, src, rec) for m, dm in zip(ms, dms)])
    assert_close(batched, loop, what="vmap(born) over m0 and dm")


def test_nested_vmap_shots_and_models(p):
    """vmap over models of vmap over shots: the (2, 3) batch equals the double loop."""
    op, w, rec, srcs, ms = p["op"], p["wavelet"], p["rec"], p["srcs"], p["ms"][:2]
    f = jax.vmap(jax.vmap(lambda m, s: op.forward(m, w, s, rec), in_axes=(None, 0)),
                 in_axes=(0, None))
    batched = f(ms, srcs)
    loop = np.stack([np.stack([op.forward(m, w, s, rec) for s in srcs]) for m in ms])
    assert batched.shape == (2, 3, op.time.nt, rec.shape[0])
    assert_close(batched, loop, what="vmap(vmap(forward))")


# ---------------------------------------------------------------------------------- grad
def test_grad_compositions_equal_loops(p):
    op, w, rec, srcs, dobs, m0 = p["op"], p["wavelet"], p["rec"], p["srcs"], p["dobs"], p["m0"]
    loss = fwi_loss(op, w, rec)
    g = jax.grad(loss)
    loop = np.stack([g(m0, s, d) for s, d in zip(srcs, dobs)])
    assert_distinct(loop)
    vg = jax.vmap(g, in_axes=(None, 0, 0))
    assert_close(vg(m0, srcs, dobs), loop, what="vmap(grad)")
    assert_close(jax.jit(vg)(m0, srcs, dobs), loop, what="jit(vmap(grad))")
    total = jax.grad(lambda m: jnp.sum(jax.vmap(loss, in_axes=(None, 0, 0))(m, srcs, dobs)))(m0)
    assert_close(total, loop.sum(axis=0), what="grad(sum(vmap(loss)))")
    assert_close(jax.jit(jax.grad(loss))(m0, srcs[1], dobs[1]), loop[1], what="jit(grad)")


def test_value_and_grad_under_jit_repeatable(p):
    """A jitted value_and_grad called repeatedly gives the same value and gradient every time."""
    op, w, rec, srcs, dobs, m0 = p["op"], p["wavelet"], p["rec"], p["srcs"], p["dobs"], p["m0"]
    vg = jax.jit(jax.value_and_grad(fwi_loss(op, w, rec)))
    v1, g1 = vg(m0, srcs[0], dobs[0])
    v2, g2 = vg(m0, srcs[0], dobs[0])
    vg(p["m"] * 1.02, srcs[2], dobs[2])  # another gradient in between
    v3, g3 = vg(m0, srcs[0], dobs[0])
    assert float(v1) > 0
    assert float(v1) == float(v2) == float(v3)
    assert_close(g2, g1, what="jit(value_and_grad) 2nd call")
    assert_close(g3, g1, what="jit(value_and_grad) 3rd call")


class _CountForwards:
    """Counts `Solver.forward` calls, split by `save=True` (saved wavefield) and the rest."""

    def __init__(self, monkeypatch):
        self.saved = 0
        self.plain = 0
        lock = threading.Lock()  # shots of a batch may run on several threads
        orig = _solver.Solver.forward

        def wrapper(solver, *args, **kw):
            with lock:
                if kw.get("save"):
                    self.saved += 1
                else:
                    self.plain += 1
            return orig(solver, *args, **kw)

        monkeypatch.setattr(_solver.Solver, "forward", wrapper)


def test_vjp_closure_is_reusable(p, monkeypatch):
    op, w, rec, src, m0, dobs = p["op"], p["wavelet"], p["rec"], p["srcs"][0], p["m0"], p["dobs"]
    f = lambda m: op.forward(m, w, src, rec)  # noqa: E731
    data, pull = jax.vjp(f, m0)
    ct = np.asarray(data) - dobs[0]
    (g1,) = pull(ct)
    (g2,) = pull(ct)  # token still valid
    assert_close(g2, g1, what="pull twice")
    reference = jax.grad(fwi_loss(op, w, rec))(m0, src, dobs[0])
    assert_close(g1, reference, what="pull vs jax.grad")

    count = _CountForwards(monkeypatch)
    store = op.solver.store
    # Other gradients in between, with a tiny budget: they evict our saved wavefield and reuse its
    # buffer for theirs, so a stale token must not hand back someone else's wavefield.
    budget = store.budget
    try:
        store.budget = 1
        other = jax.grad(fwi_loss(op, w, rec))(p["ms"][1], p["srcs"][2], dobs[2])
        jax.vmap(jax.grad(fwi_loss(op, w, rec)), in_axes=(0, None, None))(
            p["ms"][1:], p["srcs"][1], dobs[1])
    finally:
        store.budget = budget
    assert np.max(np.abs(np.asarray(other))) > 0
    saved_before = count.saved
    (g3,) = pull(ct)
    print(f"  forwards recomputed by the stale pull: {count.saved - saved_before}")
    assert count.saved - saved_before == 1, "the stale token should make the pull recompute"
    assert_close(g3, g1, what="pull after eviction")
    store.clear()
    (g4,) = pull(ct)
    assert_close(g4, g1, what="pull after store.clear()")
    # Pull with another cotangent: linear in ct.
    (g5,) = pull(2.0 * ct)
    assert_close(g5, 2.0 * np.asarray(g1), what="pull(2 ct)")


def test_batched_call_reaches_host_once(p, monkeypatch):
    op, m, w, rec, srcs, dobs = p["op"], p["m"], p["wavelet"], p["rec"], p["srcs"], p["dobs"]
    calls = {"forward": [], "sweep": []}
    orig_fwd, orig_sweep = _tasks.forward, _tasks.sweep

    def fwd(op_, kind, save, born, items):
        calls["forward"].append(len(items))
        return orig_fwd(op_, kind, save, born, items)

    def sweep(op_, kind, outs, wrt, items):
        calls["sweep"].append(len(items))
        return orig_sweep(op_, kind, outs, wrt, items)

    monkeypatch.setattr(_tasks, "forward", fwd)
    monkeypatch.setattr(_tasks, "sweep", sweep)
    jax.vmap(lambda s: op.forward(m, w, s, rec))(srcs).block_until_ready()
    print(f"  vmap(forward) of 3 shots: host calls {calls['forward']}")
    assert calls["forward"] == [3]
    calls["forward"].clear()
    jax.jit(jax.vmap(jax.grad(fwi_loss(op, w, rec)), in_axes=(None, 0, 0)))(
        p["m0"], srcs, dobs).block_until_ready()
    print(f"  jit(vmap(grad)) of 3 shots: forward calls {calls['forward']}, "
          f"sweep calls {calls['sweep']}")
    assert calls["forward"] == [3]
    assert calls["sweep"] == [3]


# ------------------------------------------------------------------------ refused derivatives
def _sum(x):
    return jnp.sum(x)


@pytest.mark.parametrize("arg", ["src", "rec"])
def test_forward_position_derivatives_raise(p, arg):
    op, m, w, src, rec = p["op"], p["m"], p["wavelet"], p["src"], p["rec"]
    if arg == "src":
        f = lambda s: _sum(op.forward(m, w, s, rec))  # noqa: E731
        x = src
    else:
        f = lambda r: _sum(op.forward(m, w, src, r))  # noqa: E731
        x = rec
    with pytest.raises(NotImplementedError, match=f"`{arg}`"):
        jax.grad(f)(x)
    with pytest.raises(NotImplementedError, match=f"`{arg}`"):
        jax.jit(jax.grad(f))(x)


def test_born_wrt_m0_raises(p):
    op, m, w, src, rec, dm = p["op"], p["m"], p["wavelet"], p["src"], p["rec"], p["dms"][0]
    with pytest.raises(NotImplementedError, match="`m0`"):
        jax.grad(lambda m0: _sum(op.born(m0, dm, w, src, rec)))(m)


def test_adjoint_wrt_m_raises(p):
    op, m, src, rec, data = p["op"], p["m"], p["src"], p["rec"], p["datas"][0]
    with pytest.raises(NotImplementedError, match="`m`"):
        jax.grad(lambda mm: _sum(op.adjoint(mm, data, src, rec)))(m)
    with pytest.raises(NotImplementedError, match="`m0`|`m`"):
        jax.grad(lambda mm: _sum(op.born_adjoint(mm, data, p["wavelet"], src, rec)))(m)


def test_hessian_raises_not_zero(p):
    op, w, rec, src, dobs, m0 = p["op"], p["wavelet"], p["rec"], p["srcs"][0], p["dobs"][0], p["m0"]
    loss = fwi_loss(op, w, rec)
    v = p["dms"][0]
    hvp = jax.grad(lambda m: jnp.vdot(jax.grad(loss)(m, src, dobs), v))
    for f in (hvp, jax.jit(hvp)):
        with pytest.raises(Exception) as info:
            f(m0)
        err = info.value
        print(f"  grad of grad: {type(err).__name__}: {str(err).splitlines()[0][:100]}")
        assert isinstance(err, NotImplementedError), (
            f"second derivative w.r.t. `m` should raise NotImplementedError naming `m`, got "
            f"{type(err).__name__}: {str(err).splitlines()[0]}")
        assert "`m`" in str(err)
    # Forward mode is not available on custom_vjp at all: an error, never a zero tangent.
    with pytest.raises(TypeError):
        jax.jvp(lambda m: loss(m, src, dobs), (m0,), (v,))


# ---------------------------------------------------------------------------------- symbolic zeros
def test_grad_wrt_wavelet_saves_no_wavefield(p, monkeypatch):
    op, m, w, src, rec = p["op"], p["m"], p["wavelet"], p["src"], p["rec"]
    ct = p["datas"][0]
    count = _CountForwards(monkeypatch)
    entries = len(op.solver.store._entries)
    gw = jax.grad(lambda ww: jnp.vdot(op.forward(m, ww, src, rec), ct))(w)
    print(f"  grad wrt wavelet: saved forwards {count.saved}, plain forwards {count.plain}")
    assert count.saved == 0
    assert len(op.solver.store._entries) == entries
    # The gradient is the adjoint at the (single) source.
    assert_close(gw, np.asarray(op.adjoint(m, ct, src, rec))[:, 0], what="grad wrt wavelet")
    # Positive control: the same counter sees the saved forward of a gradient w.r.t. m.
    jax.grad(lambda mm: jnp.vdot(op.forward(mm, w, src, rec), ct))(m)
    assert count.saved == 1


def test_stop_gradient_positions_is_allowed(p):
    """Positions behind stop_gradient are not perturbed: grad w.r.t. m goes through."""
    op, m, w, src, rec, ct = p["op"], p["m"], p["wavelet"], p["src"], p["rec"], p["datas"][0]
    f = lambda mm, s: jnp.vdot(op.forward(mm, w, jax.lax.stop_gradient(s), rec), ct)  # noqa: E731
    g = jax.grad(f)(m, src)
    ref = jax.grad(lambda mm: jnp.vdot(op.forward(mm, w, src, rec), ct))(m)
    assert_close(g, ref, what="grad with stop_gradient(src)")


# ---------------------------------------------------------------------------------- second order
def test_gauss_newton_product(p):
    op, m0, w, src, rec, dm = p["op"], p["m"], p["wavelet"], p["src"], p["rec"], p["dms"][0]
    gn = jax.grad(lambda d: 0.5 * jnp.sum(op.born(m0, d, w, src, rec) ** 2))(dm)
    ref = op.born_adjoint(m0, op.born(m0, dm, w, src, rec), w, src, rec)
    assert_close(gn, ref, what="grad 0.5|J dm|^2 vs J^T J dm")
    assert_close(jax.jit(jax.grad(lambda d: 0.5 * jnp.sum(op.born(m0, d, w, src, rec) ** 2)))(dm),
                 ref, what="jit GN")


def test_vjp_of_born_adjoint_is_born(p):
    op, m0, w, src, rec = p["op"], p["m"], p["wavelet"], p["src"], p["rec"]
    data, img = p["datas"][0], p["dms"][1]
    out, pull = jax.vjp(lambda d: op.born_adjoint(m0, d, w, src, rec), data)
    assert_close(out, op.born_adjoint(m0, data, w, src, rec), what="vjp primal out")
    (back,) = pull(img)
    assert_close(back, op.born(m0, img, w, src, rec), what="vjp(born_adjoint) vs born")


def test_grad_of_adjoint_wrt_data_is_forward(p):
    op, m, src, rec, data = p["op"], p["m"], p["src"], p["rec"], p["datas"][0]
    q = np.asarray(p["wavelets"][0])[:, None]  # (nt, nsrc=1)
    g = jax.grad(lambda d: jnp.vdot(op.adjoint(m, d, src, rec), q))(data)
    assert_close(g, op.forward(m, q, src, rec), what="grad <adjoint(d), q> vs forward(q)")
