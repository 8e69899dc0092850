"""Where jaxseis's multi-threaded Devito solves run: one persistent OpenMP master thread.

**Why.** GNU OpenMP (libgomp, which Devito's gcc-compiled operators use) keeps a team of worker
threads for *every* thread that has opened a parallel region, for as long as that thread lives.
When the workers of all those teams together outnumber the cores, libgomp stops spinning at
barriers (`gomp_throttled_spin_count_var`: 100 spins instead of about 3 ms) and every barrier
becomes a futex sleep and wake-up. A Devito time step has several barriers, so a solve becomes
several times slower, in every thread of the process, for the rest of its life.

jaxseis's solves are JAX host callbacks: XLA runs them on whichever of its runtime threads is
free (a jitted forward often on the calling thread, a gradient's callbacks on XLA's workers), each
becoming an OpenMP master with its own team. Measured on 2 cores: the S2 acoustic forward took
0.062 s with one master and 0.31 s as soon as a second thread had run a solve; the
variable-density value_and_grad went from 0.67 s to 1.5 s once a gradient had run
(`JAXSEIS_OPENMP_MASTER=0 python benchmarks/bench_steady.py --physics vda --grad` reproduces the
old behaviour). This is the "bimodal" timing of the steady-speed benchmark: the fast phases are
those where only one thread had opened a team so far.

**What.** `run(fn, nthreads)` calls `fn()` on one process-wide thread (started on first use) and
returns its result or raises its exception in the caller: every solve with more than one OpenMP
thread has the same master, so there is one team, whatever thread JAX, Dask or the user calls
from. Solves with `nthreads=1` (the per-shot solves of `ThreadExecutor`, which run several at once
on purpose) open no team and run in the calling thread. A call made from the master thread itself
(a solve inside a solve) runs inline.

Concurrent multi-threaded solves are serialised by this; on a machine where they would share the
same cores that costs nothing (they would have competed for the cores anyway). Set
`JAXSEIS_OPENMP_MASTER=0` to run solves in the calling thread instead (for comparison).
"""

from __future__ import annotations

import os
import queue
import threading

__all__ = ["run", "enabled", "master_thread", "solve_threads"]

_START_LOCK = threading.Lock()
_THREAD: threading.Thread | None = None
_QUEUE: "queue.SimpleQueue" = queue.SimpleQueue()
_USED_LOCK = threading.Lock()
_USED: set = set()   # names of the threads that ran a multi-threaded solve (for tests)


def enabled() -> bool:
    """Whether multi-threaded solves go to the master thread (`JAXSEIS_OPENMP_MASTER`, default
    on; "0", "false", "no" or "off" turn it off)."""
    return os.environ.get("JAXSEIS_OPENMP_MASTER", "1").strip().lower() not in (
        "0", "false", "no", "off")


def _serve():
    while True:
        fn, box, done = _QUEUE.get()
        try:
            box.append((True, fn()))
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller)
            box.append((False, e))
        finally:
            done.set()


def master_thread() -> threading.Thread:
    """The master thread (started on first use; a daemon, so it never keeps Python alive)."""
    global _THREAD
    t = _THREAD
    if t is not None:      # started once; its loop never returns
        return t
    with _START_LOCK:
        if _THREAD is None or not _THREAD.is_alive():
            _THREAD = threading.Thread(target=_serve, name="jaxseis-openmp", daemon=True)
            _THREAD.start()
        return _THREAD


def _note():
    with _USED_LOCK:
        _USED.add(threading.current_thread().name)


def solve_threads() -> set:
    """Names of the threads that have run a multi-threaded solve in this process."""
    with _USED_LOCK:
        return set(_USED)


def run(fn, nthreads=None):
    """`fn()` (one Devito `apply`) on the OpenMP master thread, unless `nthreads == 1`, the
    master is switched off, or this already is the master thread."""
    if nthreads == 1 or not enabled():
        if nthreads != 1:
            _note()
        return fn()
    master = master_thread()
    if threading.current_thread() is master:
        _note()
        return fn()
    box: list = []
    done = threading.Event()

    def call():
        _note()
        return fn()

    _QUEUE.put((call, box, done))
    done.wait()
    ok, value = box[0]
    if ok:
        return value
    raise value
