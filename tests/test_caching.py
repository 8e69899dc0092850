"""Compiled Devito operators are built once per static configuration and reused (across calls,
shots, time axes, numbers of sources and receivers), and `Acoustic` is a proper static value for
`jax.jit` and `equinox` (hashable, equal objects do not retrace).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.max(np.abs(b)) > 0
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def exercise(op, m, w, src, rec):
    """Every operator and the gradients a user would take; returns the forward data."""
    nt, nrec, nsrc = op.time.nt, rec.shape[0], src.shape[0]
    d = op.forward(m, w, src, rec)
    data = jnp.ones((nt, nrec), op.dtype)
    dm = jnp.ones(op.grid.shape, op.dtype) * 1e-3
    op.adjoint(m, data, src, rec).block_until_ready()
    op.born(m, dm, w, src, rec).block_until_ready()
    op.born_adjoint(m, data, w, src, rec).block_until_ready()
    op.forward_extended(m, dm, w, rec).block_until_ready()
    op.adjoint_extended(m, data, w, rec).block_until_ready()
    jax.grad(lambda mm, ww: jnp.sum(op.forward(mm, ww, src, rec) ** 2), argnums=(0, 1))(m, w)
    jax.grad(lambda ww: jnp.sum(op.forward(m, ww, src, rec) ** 2))(w)
    jax.grad(lambda mm: jnp.sum(op.forward_extended(mm, dm, w, rec) ** 2))(m)
    assert nsrc >= 1
    return np.asarray(d)


@pytest.fixture(scope="module")
def warm(problem):
    """The session problem with every operator already built."""
    p = dict(problem)
    p["data"] = exercise(p["op"], p["m"], p["wavelet"], p["src"], p["rec"])
    return p


def test_builds_do_not_grow_with_repeated_calls(warm):
    op = warm["op"]
    builds = op.solver.builds
    print(f"  operators built for this configuration: {builds}")
    assert builds >= 4  # forward, saving forward, born, adjoint variants
    for _ in range(2):
        again = exercise(op, warm["m"], warm["wavelet"], warm["src"], warm["rec"])
        np.testing.assert_array_equal(again, warm["data"])
    jax.jit(op.forward)(warm["m"], warm["wavelet"], warm["src"], warm["rec"]).block_until_ready()
    assert op.solver.builds == builds


def test_builds_do_not_grow_across_shots(warm):
    op, m, w, rec = warm["op"], warm["m"], warm["wavelet"], warm["rec"]
    builds = op.solver.builds
    srcs = np.array([[[60.0, 20.0]], [[200.0, 40.0]], [[333.3, 77.7]], [[390.0, 290.0]]])
    out = jax.vmap(lambda s: op.forward(m, w, s, rec))(srcs)
    g = jax.vmap(jax.grad(lambda mm, s: jnp.sum(op.forward(mm, w, s, rec) ** 2)),
                 in_axes=(None, 0))(m, srcs)
    assert out.shape[0] == 4 and g.shape == (4,) + op.grid.shape
    assert op.solver.builds == builds


def test_time_axis_does_not_rebuild(warm):
    """Two operators that differ only in their TimeAxis share one solver and its compiled code."""
    op, m, src, rec = warm["op"], warm["m"], warm["src"], warm["rec"]
    builds = op.solver.builds
    short = js.Acoustic(op.grid, js.TimeAxis(0.0, 300.0, op.time.dt), space_order=op.space_order,
                        nbl=op.nbl)
    assert short != op and short.time.nt != op.time.nt
    assert short.solver is op.solver
    w_short = np.asarray(warm["wavelet"])[: short.time.nt]
    d_short = exercise(short, m, w_short, src, rec)
    assert op.solver.builds == builds
    # Causality: the first 301 samples of the longer record are the shorter record.
    err = rel_err(d_short, warm["data"][: short.time.nt])
    print(f"  nt {short.time.nt} vs first samples of nt {op.time.nt}: rel err {err:.1e}")
    assert err <= 1e-5


def test_number_of_points_does_not_rebuild(warm):
    op, m, w, src, rec = warm["op"], warm["m"], warm["wavelet"], warm["src"], warm["rec"]
    builds = op.solver.builds
    full = warm["data"]
    sub = exercise(op, m, w, src, rec[3:8])
    err_rec = rel_err(sub, full[:, 3:8])
    one = exercise(op, m, w, src, rec[10:11])
    err_one = rel_err(one, full[:, 10:11])
    src2 = np.array([[120.0, 25.0], [280.0, 55.0]])
    two = exercise(op, m, w, src2, rec)
    # linear in the sources: two points fired together = the sum of each alone
    each = sum(np.asarray(op.forward(m, w, s[None], rec)) for s in src2)
    err_src = rel_err(two, each)
    print(f"  5 receivers {err_rec:.1e}, 1 receiver {err_one:.1e}, 2 sources {err_src:.1e}")
    assert max(err_rec, err_one) <= 1e-5 and err_src <= 1e-5
    assert op.solver.builds == builds


# ---------------------------------------------------------------------------------- static values
def _same_op_built_differently(op):
    g = op.grid
    grid = js.Grid(list(g.shape), [float(h) for h in g.spacing])
    time = js.TimeAxis(int(op.time.t0), int(op.time.tn), op.time.dt)
    return js.Acoustic(grid, time, space_order=np.int64(op.space_order), nbl=op.nbl,
                       dtype=np.float32)


def test_acoustic_is_hashable_and_equal_by_value(warm):
    op = warm["op"]
    twin = _same_op_built_differently(op)
    assert twin is not op
    assert twin == op and hash(twin) == hash(op)
    assert {op: 1}[twin] == 1
    other = js.Acoustic(op.grid, op.time, space_order=op.space_order, nbl=op.nbl + 1)
    assert other != op
    assert js.Acoustic(op.grid, op.time, space_order=op.space_order, nbl=op.nbl,
                       free_surface=True) != op
    assert twin.solver is op.solver


def test_static_argument_of_jit(warm):
    op, m, w, src, rec = warm["op"], warm["m"], warm["wavelet"], warm["src"], warm["rec"]
    traces = []

    def f(o, mm):
        traces.append(o)
        return o.forward(mm, w[: o.time.nt], src, rec)

    jf = jax.jit(f, static_argnums=0)
    builds = op.solver.builds
    d1 = jf(op, m)
    d2 = jf(_same_op_built_differently(op), m)
    d3 = jf(op, 1.01 * m)
    assert len(traces) == 1, "an equal Acoustic retraced"
    np.testing.assert_array_equal(np.asarray(d1), warm["data"])
    np.testing.assert_array_equal(np.asarray(d2), warm["data"])
    assert rel_err(d3, d1) > 1e-4
    short = js.Acoustic(op.grid, js.TimeAxis(0.0, 200.0, 1.0), space_order=op.space_order,
                        nbl=op.nbl)
    assert jf(short, m).shape == (201, rec.shape[0])
    assert len(traces) == 2, "a different Acoustic must retrace"
    assert op.solver.builds == builds


class Layer(eqx.Module):
    op: js.Acoustic = eqx.field(static=True)
    m: jax.Array

    def __call__(self, w, src, rec):
        return self.op.forward(self.m, w, src, rec)


def test_static_field_of_equinox_module(warm):
    op, m, w, src, rec = warm["op"], warm["m"], warm["wavelet"], warm["src"], warm["rec"]
    traces = []
    builds = op.solver.builds

    @eqx.filter_jit
    def loss(layer):
        traces.append(1)
        return 0.5 * jnp.sum(layer(w, src, rec) ** 2)

    a = Layer(op, jnp.asarray(m))
    b = Layer(_same_op_built_differently(op), jnp.asarray(m))
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    assert len(jax.tree_util.tree_leaves(a)) == 1  # only m is a leaf
    la, lb = loss(a), loss(b)
    assert len(traces) == 1 and float(la) == float(lb)
    # the module is differentiable in its array field only; equal to the plain gradient
    g = eqx.filter_grad(loss)(a)
    ref = jax.grad(lambda mm: 0.5 * jnp.sum(op.forward(mm, w, src, rec) ** 2))(m)
    assert isinstance(g, Layer) and g.op == op
    err = rel_err(g.m, ref)
    print(f"  equinox filter_grad vs jax.grad: rel err {err:.1e}")
    assert err <= 1e-5
    # plain jax.jit over the module as a pytree works as well, without retracing for equal ops
    jtraces = []

    @jax.jit
    def fwd(layer):
        jtraces.append(1)
        return layer(w, src, rec)

    fwd(a)
    fwd(b)
    assert len(jtraces) == 1
    assert op.solver.builds == builds


def test_cached_call_arguments_match_devito_apply(warm, monkeypatch):
    """Repeated solves pass cached argument lists straight to the compiled function (skipping
    `Operator.apply`'s ~5 ms of bookkeeping): every operator and gradient gives bit for bit what
    `Operator.apply` gives, while sources, receivers, models and the time axis change between
    calls (new values in the same Devito objects, or new objects)."""
    import dataclasses

    from jaxseis.devito import _solver

    op, m, w, src, rec = (warm[k] for k in ("op", "m", "wavelet", "src", "rec"))
    longer = dataclasses.replace(op, time=js.TimeAxis(0.0, float(op.time.tn) * 1.5,
                                                      float(op.time.dt)))
    w_long = js.ricker(longer.time, 0.015)
    cases = [(op, m * 1.1, w, src + 30.0, rec[::2]), (longer, m, w_long, src, rec),
             (op, m, w, src, rec)]

    def run_all():
        out = []
        for o, mm, ww, ss, rr in cases:
            out.append(exercise(o, mm, ww, ss, rr))
            out.append(np.asarray(jax.grad(
                lambda x, o=o, ww=ww, ss=ss, rr=rr: jnp.sum(o.forward(x, ww, ss, rr) ** 2))(mm)))
        return out

    hits = []
    runner = _solver._CallCache.runner

    def spy(self, o, kw):
        hits.append(id(o) in {k[0] for k in self._entries})
        return runner(self, o, kw)

    monkeypatch.setattr(_solver._CallCache, "runner", spy)
    cached = run_all()
    assert len(hits) > 20 and sum(hits) > len(hits) // 2   # mostly served from the cache
    monkeypatch.setattr(_solver._CallCache, "runner",
                        lambda self, o, kw: (lambda: o.apply(**kw)))
    reference = run_all()
    for a, c in zip(cached, reference):
        np.testing.assert_array_equal(a, c)


def test_call_cache_drops_entries_of_collected_objects():
    """A cached argument list holds the data arrays of the objects it was made for: it must go
    with them (a dropped wavefield history is freed), and it is reused only for the very same
    objects."""
    import gc

    from devito import Eq, Grid, Operator, TimeFunction

    from jaxseis.devito._solver import _CallCache

    g = Grid((6, 6))
    u0 = TimeFunction(name="u", grid=g, save=4)
    op = Operator([Eq(u0.forward, u0 + 1)])
    cache = _CallCache()
    u = TimeFunction(name="u", grid=g, save=4)
    cache.runner(op, {"u": u, "time_M": 2})()         # first call: Operator.arguments
    assert len(cache._entries) == 1
    cache.runner(op, {"u": u, "time_M": 2})()         # served from the cache
    assert len(cache._entries) == 1 and np.all(np.asarray(u.data[3]) == 3)
    cache.runner(op, {"u": u, "time_M": 1})()         # another scalar: another entry
    assert len(cache._entries) == 2
    del u
    gc.collect()
    assert len(cache._entries) == 0
