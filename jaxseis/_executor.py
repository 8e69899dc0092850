"""Where the shots of one batched call run.

A batched (vmapped) operator call reaches the host as *one* callback with every shot (see
`_bridge.py`); the host task validates them all and then calls `run(fn, items)`, which hands the shots
to the selected executor. `fn(item, nthreads=None)` solves one shot (`item` is a tuple of NumPy arrays,
`nthreads` the OpenMP threads of that solve) and is a module-level function of picklable arguments
(`devito/_tasks.py`), so an executor may run it in this process or ship it to another one. A task
tells the executor what it needs to know about itself (`uses_wavefield`); the executor never
imports the tasks.

Executors (anything with a `run(fn, items) -> list` method is one):

- `SerialExecutor`: one shot after the other, each with every OpenMP thread.
- `ThreadExecutor`: up to `workers` shots at once in this process, each with `cores // workers`
  threads. Devito applies of one compiled operator from several threads are safe when every call has
  its own Functions (Devito's tests/test_threading.py; our `Solver` does that, and locks the saved
  wavefield store), and ctypes releases the GIL while the C kernel runs.
- `AutoExecutor` (the default): threads for batches of more than one shot whose solves keep or read a
  saved forward wavefield (the two halves of a gradient), serial otherwise: on an idle 2-core
  machine that is what measured faster (benchmarks/bench_shots.py, see `AUTO_THREADS`).
- `DaskExecutor`: every shot is a dask.distributed task on a cluster's workers.

The selection is a module-level stack guarded by a lock, not a `contextvars.ContextVar`: JAX may run
a callback on one of its runtime threads, where a context variable set in the caller's thread is not
visible. So a selection holds for the whole process while its `with` block is open.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools as ft
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ._errors import InvalidArgument, JaxseisError

__all__ = [
    "AutoExecutor",
    "ClusterUnavailable",
    "DaskExecutor",
    "SerialExecutor",
    "ThreadExecutor",
    "current_executor",
    "executor",
    "run",
]

# Measured on S2-shots (benchmarks/bench_shots.py, 8 vmapped shots, idle 2-core machine, medians of 3):
# forward serial 0.547 s vs threads 0.642 s (no gain: two 1-thread stencils compete for the same
# memory bandwidth as one 2-thread stencil); value_and_grad serial 1.728 s vs threads 1.263 s
# (0.73x: saving and reading the wavefield overlaps well with another shot's stencil). So the
# default uses threads only for gradient solves (`_uses_wavefield`); set False to always run serial.
AUTO_THREADS = True


def _uses_wavefield(fn) -> bool:
    """Whether a per-shot task saves a forward wavefield or images with one (gradient solves):
    the task says so itself (`uses_wavefield`, see `jaxseis/devito/_tasks.py`)."""
    return bool(getattr(fn, "uses_wavefield", False))


class ClusterUnavailable(JaxseisError, ConnectionError):
    """The Dask scheduler of a `DaskExecutor` cannot be reached (or has no workers)."""


class Executor(Protocol):
    def run(self, fn: Callable, items: Sequence[tuple]) -> list: ...


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class SerialExecutor:
    """Shots one after the other in the calling thread.

    **Arguments:**

    - `nthreads`: OpenMP threads per solve; `None` leaves Devito's default (`OMP_NUM_THREADS`, else
      every physical core).
    """

    def __init__(self, nthreads: int | None = None):
        self.nthreads = nthreads

    def run(self, fn, items):
        return [fn(item, nthreads=self.nthreads) for item in items]

    def __repr__(self):
        return f"SerialExecutor(nthreads={self.nthreads})"


_POOLS: dict[int, cf.ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers):
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = cf.ThreadPoolExecutor(workers, thread_name_prefix="jaxseis")
        return pool


def _warm_key(fn):
    """What identifies the compiled operator `fn` runs (the task itself, or a partial's
    arguments), if hashable."""
    if isinstance(fn, ft.partial):
        key = (fn.func, fn.args, tuple(sorted(fn.keywords.items())))
    else:
        key = fn
    try:
        hash(key)
    except TypeError:
        return None
    return key


class ThreadExecutor:
    """Several shots at once in this process, each solve with a share of the cores.

    **Arguments:**

    - `workers`: shots solved at once (default: the number of cores available to this process).
    - `nthreads`: OpenMP threads per solve (default: `cores // min(workers, nshots)`, at least 1).

    A batch of one shot runs in the calling thread with every core. The first batch of a given
    operator runs its first shot alone: Devito compiles and loads an operator on its first apply, and
    that should happen once, not in several threads at the same time.
    """

    def __init__(self, workers: int | None = None, nthreads: int | None = None):
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise InvalidArgument(f"`workers` must be a positive integer, got {workers!r}.")
        if nthreads is not None and (not isinstance(nthreads, int) or nthreads < 1):
            raise InvalidArgument(f"`nthreads` must be a positive integer, got {nthreads!r}.")
        self.workers = workers
        self.nthreads = nthreads
        self._warm: set = set()
        self._lock = threading.Lock()

    def run(self, fn, items):
        items = list(items)
        workers = min(self.workers or _cores(), len(items))
        if workers <= 1:
            return [fn(item, nthreads=self.nthreads) for item in items]
        nthreads = self.nthreads or max(1, _cores() // workers)
        results = []
        key = _warm_key(fn)
        with self._lock:
            cold = key is None or key not in self._warm
        if cold:
            results.append(fn(items[0], nthreads=nthreads))
            if key is not None:
                with self._lock:
                    self._warm.add(key)
        futures = [_pool(workers).submit(fn, item, nthreads=nthreads)
                   for item in items[len(results):]]
        try:
            results.extend(f.result() for f in futures)
        finally:
            for f in futures:
                f.cancel()
            cf.wait(futures)  # never leave solves running behind an error
        return results

    def __repr__(self):
        return f"ThreadExecutor(workers={self.workers}, nthreads={self.nthreads})"


class AutoExecutor:
    """The default: threads (`ThreadExecutor()`) for batches of more than one gradient solve
    (measured faster, see `AUTO_THREADS`), serial for everything else."""

    def __init__(self):
        self._serial = SerialExecutor()
        self._threads = ThreadExecutor()

    def run(self, fn, items):
        if AUTO_THREADS and len(items) > 1 and _uses_wavefield(fn):
            return self._threads.run(fn, items)
        return self._serial.run(fn, items)

    def __repr__(self):
        return "AutoExecutor()"


# ---------------------------------------------------------------------------------- Dask
def _dask_task(fn, nthreads, item):
    """What a Dask worker runs for one shot: the solve, and the worker's address (so that a later
    task needing this worker's saved wavefield can be sent back to it)."""
    from distributed import get_worker

    worker = get_worker()
    if nthreads is None:   # the worker's share of the cores (its threads_per_worker)
        nthreads = worker.state.nthreads
    return worker.address, fn(item, nthreads=nthreads)


def _is_token(x):
    return getattr(x, "shape", None) == () and getattr(x, "dtype", None) is not None and \
        x.dtype.kind == "i"


class DaskExecutor:
    """Every shot of a batch is a task on a dask.distributed cluster.

    **Arguments:**

    - `client`: a `distributed.Client`, or a scheduler address (`"tcp://host:8786"`) to connect to.
    - `retries`: times a failed task is retried. A worker that dies in the middle of a task costs a
      rerun of that task on another worker (the scheduler reschedules it), not the result.
    - `nthreads`: OpenMP threads per solve on the workers; `None` uses each worker's own thread
      count (its `threads_per_worker`), so a cluster never runs more OpenMP threads than the cores
      it was given: run one worker per core, e.g. `LocalCluster(n_workers=cores,
      threads_per_worker=1)`. (Two 2-thread OpenMP teams in two processes on 2 cores spin at
      their barriers while the other holds the cores: 8 S2 shots' value_and_grad took 18-25 s
      instead of 1.5 s.)
    - `timeout`: seconds to wait for the scheduler (and for at least one worker) before giving up.

    Each worker process compiles an operator once and reuses it for every later task (the solver
    cache is per process). A gradient's adjoint sweep is sent to the worker that ran its forward and
    holds the saved wavefield; if that worker is gone, another worker recomputes the forward (right,
    but about 1.5x slower for that shot). Saved wavefields stay in the workers' memory (each worker's
    store has its own budget).

    Raises `ClusterUnavailable`, naming the address, when the scheduler cannot be reached or has no
    workers, before any shot is sent.
    """

    def __init__(self, client: Any, retries: int = 2, nthreads: int | None = None,
                 timeout: float = 10.0):
        try:
            import distributed
        except ImportError as e:  # pragma: no cover - dask is an optional dependency
            raise ImportError("DaskExecutor needs dask.distributed: pip install 'jaxseis[dask]'.") \
                from e
        if not isinstance(retries, int) or retries < 0:
            raise InvalidArgument(f"`retries` must be a non-negative integer, got {retries!r}.")
        self.retries = retries
        self.nthreads = nthreads
        self.timeout = float(timeout)
        if isinstance(client, str):
            address = client
            try:
                client = distributed.Client(address, timeout=self.timeout, set_as_default=False)
            except (OSError, TimeoutError) as e:
                raise ClusterUnavailable(_unreachable(address, e)) from None
        elif not isinstance(client, distributed.Client):
            raise InvalidArgument(
                f"`client` must be a distributed.Client or a scheduler address, got "
                f"{type(client).__name__}.")
        if client.asynchronous:
            raise InvalidArgument("`client` must be a synchronous distributed.Client "
                                  "(asynchronous=False).")
        self.client = client
        self._address = getattr(client.scheduler, "address", None) or str(client)
        self._homes: dict[int, str] = {}  # store token -> worker that holds its wavefield
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """The scheduler's address (as it was when the executor was made)."""
        return self._address

    def check(self):
        """Raise `ClusterUnavailable` unless the scheduler answers and has a worker."""
        if self.client.status != "running":
            raise ClusterUnavailable(
                _unreachable(self.address, f"client status {self.client.status!r}"))
        try:
            self.client.wait_for_workers(1, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - OSError, TimeoutError, CommClosedError, ...
            raise ClusterUnavailable(_unreachable(self.address, e)) from None

    def run(self, fn, items):
        items = list(items)
        if not items:
            return []
        self.check()
        task = ft.partial(_dask_task, fn, self.nthreads)
        name = getattr(getattr(fn, "func", fn), "__name__", type(fn).__name__)
        batch = uuid.uuid4().hex[:8]
        futures = []
        for i, item in enumerate(items):
            home = self._home(item)
            where = dict(workers=[home], allow_other_workers=True) if home else {}
            futures.append(self.client.submit(
                task, item, key=f"jaxseis-{name}-{batch}-{i}", pure=False, retries=self.retries,
                **where))
        try:
            done = self.client.gather(futures)
        finally:
            self.client.cancel(futures)
        results = []
        with self._lock:
            for worker, res in done:
                for x in res:
                    if _is_token(x):
                        self._homes[int(x)] = worker
                results.append(res)
            while len(self._homes) > 100_000:
                self._homes.pop(next(iter(self._homes)))
        return results

    def _home(self, item):
        with self._lock:
            for x in item:
                if _is_token(x) and int(x) in self._homes:
                    return self._homes[int(x)]
        return None

    def __repr__(self):
        return f"DaskExecutor({self.address!r}, retries={self.retries})"


def _unreachable(address, why):
    return (f"cannot reach the Dask scheduler at {address} ({why}). Start a cluster first, e.g. "
            f"`distributed.Client(distributed.LocalCluster(n_workers=2, threads_per_worker=1))` in "
            f"Python, or `dask scheduler` and `dask worker <scheduler-address>` in shells, and pass "
            f"its Client or address to jaxseis.DaskExecutor.")


# ---------------------------------------------------------------------------------- selection
_STACK: list = []
_STACK_LOCK = threading.Lock()
_DEFAULT = AutoExecutor()


def _resolve(spec, workers=None, nthreads=None):
    if isinstance(spec, str):
        if spec == "auto":
            return AutoExecutor()
        if spec == "serial":
            return SerialExecutor(nthreads)
        if spec == "threads":
            return ThreadExecutor(workers, nthreads)
        raise InvalidArgument(
            f'`kind` must be "auto", "serial", "threads" or an executor object such as '
            f"jaxseis.DaskExecutor(client), got {spec!r}.")
    if callable(getattr(spec, "run", None)):
        if workers is not None or nthreads is not None:
            raise InvalidArgument("`workers` and `nthreads` apply to \"threads\"/\"serial\" only; "
                                  "configure an executor object when you create it.")
        return spec
    raise InvalidArgument(
        f'`kind` must be "auto", "serial", "threads" or an object with a run(fn, items) method, '
        f"got {type(spec).__name__}.")


class executor:  # noqa: N801 - used like a function: `with jaxseis.executor("threads"):`
    """Select where the shots of batched (vmapped) operator calls run, for the `with` block.

    **Arguments:**

    - `kind`: `"auto"` (the default outside any block), `"serial"`, `"threads"`, or an executor
      object such as `jaxseis.DaskExecutor(client)`.
    - `workers`: for `"threads"`, shots solved at once (default: the number of cores).
    - `nthreads`: OpenMP threads per solve (default: all cores for serial, `cores // workers` for
      threads).

    The selection holds in every thread of the process (JAX may run callbacks on its own threads)
    while the block is open; blocks nest. JAX dispatches asynchronously: use the results (or
    `jax.block_until_ready`) inside the block, so that the solves run while it is open.

    ```python
    with jaxseis.executor("threads", workers=2):
        data = jax.vmap(op.forward, in_axes=(None, None, 0, None))(m, wavelet, srcs, rec)
    ```
    """

    def __init__(self, kind: Any = "auto", workers: int | None = None,
                 nthreads: int | None = None):
        self.executor = _resolve(kind, workers, nthreads)

    def __enter__(self):
        with _STACK_LOCK:
            _STACK.append(self.executor)
        return self.executor

    def __exit__(self, *exc):
        with _STACK_LOCK:
            for i in range(len(_STACK) - 1, -1, -1):
                if _STACK[i] is self.executor:
                    del _STACK[i]
                    break
        return False


def current_executor():
    """The executor batched calls use now (the innermost open `executor` block, else the default)."""
    with _STACK_LOCK:
        return _STACK[-1] if _STACK else _DEFAULT


def run(fn: Callable, items: Sequence[tuple]) -> list:
    """Apply `fn(item, nthreads=...)` to every shot with the current executor; results in order."""
    items = list(items)
    if not items:
        return []
    return current_executor().run(fn, items)
