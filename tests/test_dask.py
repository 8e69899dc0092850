"""DaskExecutor on a local two-process cluster (loopback only): same numbers as in-process, compiled
operators reused by each worker, a worker dying mid-batch costs a rerun not the result, and an
unreachable scheduler is a clear error before any work."""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from jaxseis import _executor as ex
from jaxseis.devito import _tasks
from jaxseis.devito._solver import get_solver

distributed = pytest.importorskip("distributed")

# Starting worker processes (each imports jaxseis and builds its operators) takes tens of seconds on
# a loaded 2-core machine.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    c = distributed.Client(cluster)
    print(f"\nLocalCluster(2 processes) up in {time.perf_counter() - t0:.1f} s")
    yield c
    c.close()
    cluster.close()


def _setup(problem, n=4):
    op, rec, w = problem["op"], problem["rec"], problem["wavelet"]
    xs = np.linspace(60.0, 340.0, n)
    srcs = jnp.asarray(np.stack([xs, np.full(n, 25.0)], axis=1)[:, None, :])
    m = jnp.asarray(problem["m"])
    m0 = jnp.asarray(np.full_like(problem["m"], problem["m"].mean()))
    fwd = jax.jit(jax.vmap(op.forward, in_axes=(None, None, 0, None)))
    d_obs = fwd(m, w, srcs, rec)

    @jax.jit
    def loss(mm):
        return 0.5 * jnp.sum((fwd(mm, w, srcs, rec) - d_obs) ** 2)

    return op, fwd, loss, m0, w, srcs, rec


def _compare(name, got, ref):
    got, ref = np.asarray(got), np.asarray(ref)
    scale = float(np.max(np.abs(ref)))
    print(f"  {name}: max |dask - local| / max |local| = {np.max(np.abs(got - ref)) / scale:.2e}")
    assert scale > 0
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * scale)


def js_serial():
    return ex.executor("serial")


def _builds(cfg):
    return get_solver(cfg).builds


def test_forward_and_gradient_match_local(problem, client):
    op, fwd, loss, m0, w, srcs, rec = _setup(problem)
    with js_serial():
        ref_d = np.asarray(fwd(m0, w, srcs, rec))
        ref_l, ref_g = jax.value_and_grad(loss)(m0)
    dask = ex.DaskExecutor(client)
    t0 = time.perf_counter()
    with ex.executor(dask):
        d = np.asarray(fwd(m0, w, srcs, rec))
        t1 = time.perf_counter()
        val, g = jax.block_until_ready(jax.value_and_grad(loss)(m0))
    t2 = time.perf_counter()
    print(f"\ndask forward (4 shots, first: builds on workers) {t1 - t0:.2f} s, "
          f"value_and_grad {t2 - t1:.2f} s")
    _compare("forward", d, ref_d)
    _compare("loss", val, ref_l)
    _compare("grad", g, ref_g)
    # Both workers got shots, and every sweep went to the worker holding its forward wavefield.
    assert len(set(dask._homes.values())) == 2


def test_variable_density_on_the_cluster_matches_local(client):
    """A multi-parameter physics through Dask: shots on the workers, the gradient dict equal to the
    local one (the wavefield store, tasks and executors know nothing about one physics)."""
    from test_variable_density import vd_problem

    p = vd_problem(tn=250.0)
    op, model, rec, w = p["op"], p["model"], p["rec"], p["wavelet"]
    srcs = jnp.array([[[120.0, 20.0]], [[280.0, 20.0]]])
    fwd = jax.jit(jax.vmap(op.forward, in_axes=(None, None, 0, None)))
    d_obs = fwd(model, w, srcs, rec)
    m0 = {"m": jnp.asarray(model["m"]) * 1.02, "rho": jnp.asarray(model["rho"]) * 0.97}

    def loss(mm):
        return 0.5 * jnp.sum((fwd(mm, w, srcs, rec) - d_obs) ** 2)

    with js_serial():
        ref_l, ref_g = jax.value_and_grad(loss)(m0)
    with ex.executor(ex.DaskExecutor(client)):
        val, g = jax.block_until_ready(jax.value_and_grad(loss)(m0))
    _compare("vd loss", val, ref_l)
    for k in ("m", "rho"):
        _compare(f"vd grad[{k}]", g[k], ref_g[k])


def test_variable_density_threads_match_serial():
    from test_variable_density import vd_problem

    p = vd_problem(tn=250.0)
    op, model, rec, w = p["op"], p["model"], p["rec"], p["wavelet"]
    srcs = jnp.array([[[120.0, 20.0]], [[280.0, 20.0]]])
    fwd = jax.vmap(op.forward, in_axes=(None, None, 0, None))
    d_obs = fwd(model, w, srcs, rec)
    loss = lambda mm: 0.5 * jnp.sum((fwd(mm, w, srcs, rec) - d_obs) ** 2)  # noqa: E731
    m0 = {"m": jnp.asarray(model["m"]) * 1.02, "rho": jnp.asarray(model["rho"]) * 0.97}
    with js_serial():
        ref = jax.grad(loss)(m0)
    with ex.executor("threads", workers=2):
        got = jax.grad(loss)(m0)
    for k in ("m", "rho"):
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(ref[k]))


def test_workers_reuse_compiled_operators(problem, client):
    op, fwd, loss, m0, w, srcs, rec = _setup(problem)
    cfg = op.solver_config
    with ex.executor(ex.DaskExecutor(client)):
        jax.block_until_ready(jax.value_and_grad(loss)(m0))
        first = client.run(_builds, cfg)
        t0 = time.perf_counter()
        jax.block_until_ready(jax.value_and_grad(loss)(m0))
        t1 = time.perf_counter()
        second = client.run(_builds, cfg)
    print(f"\noperators built per worker after batch 1: {first}, after batch 2: {second}; "
          f"warm value_and_grad {t1 - t0:.2f} s")
    assert len(first) == 2 and all(b >= 2 for b in first.values())  # forward(save) + adjoint
    assert second == first


def test_cross_process_token_recomputes(problem, client):
    """A gradient whose forward ran in this process and whose sweep runs on a worker: the worker's
    store must miss (tokens differ between processes) and recompute, never use another shot's
    wavefield."""
    op, fwd, loss, m0, w, srcs, rec = _setup(problem)
    with js_serial():
        ref_val, ref_g = jax.value_and_grad(loss)(m0)
        val, pull = jax.vjp(loss, m0)
    # Fill the workers' stores with wavefields of other shots first.
    with ex.executor(ex.DaskExecutor(client)):
        jax.block_until_ready(jax.grad(lambda mm: jnp.sum(fwd(mm, w, srcs[::-1], rec) ** 2))(m0))
        (g,) = pull(jnp.ones_like(val))
    _compare("grad", g, ref_g)


def test_worker_tokens_distinct(problem, client):
    op = problem["op"]
    item = (problem["m"], problem["wavelet"][:, None], np.array([[200.0, 25.0]]), problem["rec"])
    fn = _tasks.ForwardShot(op, "point", True, False)
    dask = ex.DaskExecutor(client)
    tokens = [int(r[1]) for r in dask.run(fn, [item] * 4)]
    print(f"\nworker tokens {tokens}")
    assert len(set(tokens)) == 4 and min(tokens) >= 1


class DieOnce:
    """Test-only wrapper: the first attempt that finds `flag` deletes it and kills its worker
    process (as a crash or an out-of-memory kill would), in the middle of a batch."""

    def __init__(self, fn, flag):
        self.fn, self.flag = fn, flag

    def __call__(self, item, nthreads=None):
        try:
            os.unlink(self.flag)
        except FileNotFoundError:
            return self.fn(item, nthreads=nthreads)
        os._exit(1)


class DyingDask(ex.DaskExecutor):
    def __init__(self, client, flag):
        super().__init__(client)
        self.flag = flag

    def run(self, fn, items):
        return super().run(DieOnce(fn, self.flag), items)


def test_worker_dies_mid_batch(problem, client, tmp_path):
    op, fwd, loss, m0, w, srcs, rec = _setup(problem)
    with js_serial():
        ref_d = np.asarray(fwd(m0, w, srcs, rec))
    pids = set(client.run(os.getpid).values())
    flag = tmp_path / "die"
    flag.write_text("")
    t0 = time.perf_counter()
    with ex.executor(DyingDask(client, str(flag))):
        d = np.asarray(fwd(m0, w, srcs, rec))
    print(f"\nbatch with a worker killed mid-batch: {time.perf_counter() - t0:.2f} s")
    assert not flag.exists()  # a worker did die
    _compare("forward", d, ref_d)
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != pids  # the nanny restarted it


def _report_nthreads(item, nthreads=None):
    return nthreads


def test_tasks_solve_with_the_workers_thread_count(client):
    """`DaskExecutor(nthreads=None)` solves with each worker's threads_per_worker (1 here), never
    OMP_NUM_THREADS: two 2-thread OpenMP teams in two workers on 2 cores spin at their barriers
    (8 S2 shots' value_and_grad 18-25 s instead of 1.5 s)."""
    assert client.submit(ex._dask_task, _report_nthreads, None, (0,), pure=False).result()[1] == 1
    assert client.submit(ex._dask_task, _report_nthreads, 3, (0,), pure=False).result()[1] == 3


def test_unreachable_scheduler():
    t0 = time.perf_counter()
    with pytest.raises(ex.ClusterUnavailable, match=r"127\.0\.0\.1:1 .*LocalCluster") as e:
        ex.DaskExecutor("tcp://127.0.0.1:1", timeout=2)
    print(f"\nunreachable scheduler refused in {time.perf_counter() - t0:.1f} s: {e.value}")
    assert isinstance(e.value, js.JaxseisError)


def test_scheduler_gone(problem):
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       protocol="tcp", host="127.0.0.1", dashboard_address=None)
    c = distributed.Client(cluster)
    dask = ex.DaskExecutor(c, timeout=2)
    address = cluster.scheduler_address
    cluster.close()
    calls = []

    def fn(item, nthreads=None):  # never reached: the check comes before any work
        calls.append(item)
        return item

    try:
        with pytest.raises(ex.ClusterUnavailable, match=address.replace(".", r"\.")):
            dask.run(fn, [(1,), (2,)])
        # Through an operator call the same message reaches the user.
        op, fwd, loss, m0, w, srcs, rec = _setup(problem, 2)
        with ex.executor(dask), pytest.raises(Exception, match="cannot reach the Dask scheduler"):
            jax.block_until_ready(fwd(m0, w, srcs, rec))
    finally:
        c.close()
    assert calls == []
