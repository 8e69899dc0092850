"""Every multi-threaded Devito solve runs on one OpenMP master thread (jaxseis/devito/_openmp.py).

libgomp keeps a worker team for each thread that ever opened a parallel region; once the teams
outnumber the cores, every barrier sleeps and all solves in the process become several times
slower (measured 0.062 s -> 0.31 s for the S2 acoustic forward on 2 cores). JAX runs our host
callbacks on whichever XLA thread is free, so without the master thread each of them became a
master. These tests would show that coming back: solves reached through eager calls, `jax.jit`,
`jax.grad`, other Python threads and the executors all run on the same thread.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from jaxseis.devito import _openmp


def test_every_path_to_a_solve_uses_one_master_thread(problem):
    op = problem["op"]
    m = jnp.asarray(problem["m"])
    w, src, rec = problem["wavelet"], problem["src"], problem["rec"]
    with _openmp._USED_LOCK:
        _openmp._USED.clear()

    def loss(mm):
        return jnp.sum(op.forward(mm, w, src, rec) ** 2)

    d = op.forward(m, w, src, rec)                       # eager
    jax.jit(op.forward)(m, w, src, rec).block_until_ready()
    jax.jit(jax.value_and_grad(loss))(m)[1].block_until_ready()
    with ThreadPoolExecutor(2) as pool:                  # calls from other Python threads
        outs = list(pool.map(lambda _: np.asarray(op.forward(m, w, src, rec)), range(3)))
    for o in outs:
        np.testing.assert_array_equal(o, np.asarray(d))
    assert _openmp.solve_threads() == {"jaxseis-openmp"}, _openmp.solve_threads()


def test_run_returns_raises_and_nests():
    assert _openmp.run(lambda: 41 + 1) == 42
    with pytest.raises(ZeroDivisionError):
        _openmp.run(lambda: 1 / 0)
    assert _openmp.run(lambda: _openmp.run(lambda: threading.current_thread().name)) \
        == "jaxseis-openmp"                              # a solve inside a solve: no deadlock
    assert _openmp.run(threading.current_thread, nthreads=1) is threading.current_thread()


def test_switch_off_runs_in_the_calling_thread(monkeypatch):
    monkeypatch.setenv("JAXSEIS_OPENMP_MASTER", "0")
    assert not _openmp.enabled()
    assert _openmp.run(threading.current_thread) is threading.current_thread()
    monkeypatch.setenv("JAXSEIS_OPENMP_MASTER", "1")
    assert _openmp.run(lambda: threading.current_thread().name) == "jaxseis-openmp"


def test_threads_executor_one_thread_solves_open_no_team(problem, monkeypatch):
    """ThreadExecutor's per-shot solves with one OpenMP thread each run in the executor's own
    threads (several at once) and never reach the master; and Devito's sparse-point loops, whose
    `nthreads_nonaffine` defaults to OMP_NUM_THREADS whatever `nthreads` is, get one thread too,
    or the pool threads open OpenMP teams (measured: 8 quick S2-shots forwards 0.556 s serial
    instead of 0.070 s once they had)."""
    from jaxseis.devito._solver import _CallCache

    seen = []
    runner = _CallCache.runner

    def spy(self, op, kwargs):  # every solve's arguments reach the compiled function here
        seen.append((kwargs.get("nthreads"), kwargs.get("nthreads_nonaffine")))
        return runner(self, op, kwargs)

    op = problem["op"]
    m = jnp.asarray(problem["m"])
    src = jnp.stack([problem["src"]] * 3)
    fwd = jax.vmap(op.forward, in_axes=(None, None, 0, None))
    ref = np.asarray(op.forward(m, problem["wavelet"], problem["src"], problem["rec"]))
    with _openmp._USED_LOCK:
        _openmp._USED.clear()
    monkeypatch.setattr(_CallCache, "runner", spy)
    with js.executor("threads", workers=2, nthreads=1):
        d = np.asarray(fwd(m, problem["wavelet"], src, problem["rec"]))
    assert _openmp.solve_threads() == set()
    assert len(seen) == 3 and set(seen) == {(1, 1)}, seen
    for k in range(3):
        np.testing.assert_allclose(d[k], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
