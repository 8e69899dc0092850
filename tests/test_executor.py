"""Executors: where the shots of a batched call run. Threads must give the serial numbers, and the
selection must reach callbacks under `jit` (which may run on a JAX runtime thread)."""

import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from jaxseis import _executor as ex


def _shots(problem, n=4):
    xs = np.linspace(60.0, 340.0, n)
    return jnp.asarray(np.stack([xs, np.full(n, 25.0)], axis=1)[:, None, :])  # (n, 1, 2)


def _run_all(problem, kind, **kw):
    """forward, born and value_and_grad of a 4-shot vmapped batch under the executor `kind`."""
    op, m, rec, w = problem["op"], jnp.asarray(problem["m"]), problem["rec"], problem["wavelet"]
    srcs = _shots(problem)
    m0 = jnp.asarray(np.full_like(problem["m"], problem["m"].mean()))
    dm = m - m0
    fwd = jax.jit(jax.vmap(op.forward, in_axes=(None, None, 0, None)))
    born = jax.jit(jax.vmap(op.born, in_axes=(None, None, None, 0, None)))
    d_obs = fwd(m, w, srcs, rec)

    @jax.jit
    def loss(mm):
        d = jax.vmap(op.forward, in_axes=(None, None, 0, None))(mm, w, srcs, rec)
        return 0.5 * jnp.sum((d - d_obs) ** 2)

    with js_executor(kind, **kw):
        out = dict(forward=fwd(m0, w, srcs, rec), born=born(m0, dm, w, srcs, rec))
        out["loss"], out["grad"] = jax.value_and_grad(loss)(m0)
        out = jax.block_until_ready(out)
    return {k: np.asarray(v) for k, v in out.items()}


def js_executor(kind, **kw):
    return ex.executor(kind, **kw)


class Recording:
    """An executor that runs serially and records each batch it gets (and on which thread)."""

    def __init__(self):
        self.batches = []

    def run(self, fn, items):
        self.batches.append((len(items), threading.current_thread().name))
        return [fn(item) for item in items]


@pytest.fixture(scope="module")
def serial_results(problem):
    t0 = time.perf_counter()
    res = _run_all(problem, "serial")
    print(f"\nserial forward+born+value_and_grad, 4 shots: {time.perf_counter() - t0:.2f} s")
    return res


@pytest.mark.parametrize("kind,kw", [("threads", dict(workers=2)), ("threads", dict(workers=4)),
                                     ("auto", {})])
def test_threads_match_serial(problem, serial_results, kind, kw):
    t0 = time.perf_counter()
    res = _run_all(problem, kind, **kw)
    print(f"\n{kind} {kw}: {time.perf_counter() - t0:.2f} s")
    for name, ref in serial_results.items():
        got = res[name]
        scale = float(np.max(np.abs(ref)))
        diff = float(np.max(np.abs(got - ref)))
        print(f"  {name}: max |threads - serial| / max |serial| = {diff / scale:.2e}")
        assert scale > 0
        # The same compiled kernels on the same inputs: only OpenMP's thread count differs, and
        # every update is pointwise, so the results are identical up to float32 round-off.
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * scale)


def test_batched_equals_single_shots(problem, serial_results):
    """A vmapped batch through threads equals single-shot calls one by one."""
    op, rec, w = problem["op"], problem["rec"], problem["wavelet"]
    m0 = jnp.asarray(np.full_like(problem["m"], problem["m"].mean()))
    srcs = _shots(problem)
    single = np.stack([np.asarray(op.forward(m0, w, s, rec)) for s in srcs])
    np.testing.assert_allclose(serial_results["forward"], single, rtol=0,
                               atol=1e-6 * np.abs(single).max())


def test_selection_honoured_under_jit(problem):
    op, m, rec, w = problem["op"], problem["m"], problem["rec"], problem["wavelet"]
    srcs = _shots(problem, 3)
    f = jax.jit(jax.vmap(op.forward, in_axes=(None, None, 0, None)))
    jax.block_until_ready(f(m, w, srcs, rec))  # compiled outside any block
    outer, inner = Recording(), Recording()
    with ex.executor(outer) as got:
        assert got is outer and ex.current_executor() is outer
        jax.block_until_ready(f(m, w, srcs, rec))
        with ex.executor(inner):
            assert ex.current_executor() is inner
            jax.block_until_ready(f(m, w, srcs, rec))
        jax.block_until_ready(jax.grad(lambda mm: jnp.sum(f(mm, w, srcs, rec) ** 2))(m))
    assert isinstance(ex.current_executor(), ex.AutoExecutor)
    jax.block_until_ready(f(m, w, srcs, rec))
    print(f"\nouter batches {outer.batches}\ninner batches {inner.batches}")
    # One host call per batch with all 3 shots: forward, (inner forward), forward+save, sweep.
    assert [b[0] for b in inner.batches] == [3]
    assert [b[0] for b in outer.batches] == [3, 3, 3]


def test_selection_visible_from_other_threads():
    rec = Recording()
    seen = []
    with ex.executor(rec):
        t = threading.Thread(target=lambda: seen.append(ex.current_executor()))
        t.start()
        t.join()
    assert seen == [rec]


def test_thread_executor_order_errors_and_concurrency():
    calls = []

    def fn(item, nthreads=None):
        calls.append((item[0], nthreads, threading.current_thread().name))
        time.sleep(0.05 * (3 - item[0] % 3))
        if item[0] == 5:
            raise RuntimeError("shot 5 failed")
        return (item[0] * 10,)

    t = ex.ThreadExecutor(workers=2)
    assert t.run(fn, [(i,) for i in range(5)]) == [(i * 10,) for i in range(5)]
    # The first batch of an operator runs its first shot alone, in the caller, then the rest in the
    # pool with cores // workers threads each.
    assert calls[0][2] == threading.current_thread().name
    assert all(c[2].startswith("jaxseis") for c in calls[1:])
    assert {c[1] for c in calls} == {max(1, ex._cores() // 2)}
    with pytest.raises(RuntimeError, match="shot 5 failed"):
        t.run(fn, [(i,) for i in range(4, 8)])
    # One shot: in the calling thread with every thread (nthreads=None: Devito's default).
    calls.clear()
    assert t.run(fn, [(7,)]) == [(70,)]
    assert calls == [(7, None, threading.current_thread().name)]


def test_bad_selection():
    with pytest.raises(js.InvalidArgument, match="`kind` must be"):
        ex.executor("processes")
    with pytest.raises(js.InvalidArgument, match="`kind` must be"):
        ex.executor(42)
    with pytest.raises(js.InvalidArgument, match="`workers` must be a positive integer"):
        ex.executor("threads", workers=0)
    assert isinstance(ex.executor("serial").executor, ex.SerialExecutor)


def test_auto_uses_threads_only_for_gradient_solves(problem, monkeypatch):
    """The default executor picks threads for batches of gradient solves (measured faster) and
    serial for everything else."""
    from jaxseis.devito import _tasks

    op = problem["op"]
    auto = ex.AutoExecutor()
    used = []
    monkeypatch.setattr(auto._threads, "run", lambda fn, items: used.append("threads") or [])
    monkeypatch.setattr(auto._serial, "run", lambda fn, items: used.append("serial") or [])
    two = [None, None]
    auto.run(_tasks.ForwardShot(op, "point", False, False), two)     # plain forward
    auto.run(_tasks.ForwardShot(op, "point", True, False), two)      # forward, saved
    auto.run(_tasks.SweepShot(op, "point", ("grad",), ("m",)), two)  # gradient sweep
    auto.run(_tasks.SweepShot(op, "point", ("src",)), two)           # adjoint only
    auto.run(_tasks.SweepShot(op, "point", ("grad",), ("m",)), [None])  # one shot
    assert used == ["serial", "threads", "threads", "serial", "serial"]
