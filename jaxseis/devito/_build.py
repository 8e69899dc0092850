"""How jaxseis asks Devito to compile an operator: `build_operator(eqs, name)`.

One choice differs from Devito's defaults, measured on this project's 2-core machine
(`benchmarks/bench_tuning.py` prints the table; benchmarks/README.md keeps the numbers):

**Contiguous static OpenMP schedule for the grid loops.** Devito parallelises the outermost grid
loop of each time step with `schedule(dynamic,1)` (or `schedule(static,1)` when the loop body is
cheap): consecutive rows (2D) or blocks (3D) go to alternating threads. Every thread then streams
the whole wavefield each step, the rows' end cache lines are written by both threads, and two
threads were measured to be no faster than one (S2 acoustic forward: 0.144 s with 2 threads,
0.128 s with `static,1`, 0.115 s with 1 thread). With `schedule(static)` each thread owns one
contiguous slab of rows for the whole run, keeps it in its own caches (its L2 and its part of
the shared L3) and shares only the slab edges: 0.059 s, 2.4x faster, bit-identical results (the schedule changes which thread
computes a point, never how).

Devito has no option for the chunk size of affine loops, so `build_operator` asks for static
schedules everywhere (`par-dynamic-work` above any loop's cost) and, while the operator is built,
drops the `,1` chunk Devito's OpenMP clause builder appends to a static schedule. The change is
scoped to jaxseis's own operators (a lock serialises the builds; other Devito code in the process,
built outside `build_operator`, keeps Devito's defaults) and checked on every build: if a future
Devito renames the clause builder, operators are built with Devito's defaults and a
`RuntimeWarning` says so (correct, only slower). Set `JAXSEIS_OMP_SCHEDULE=devito` to build with
Devito's defaults anyway (for comparison).

Loops over sparse points (source injection, receiver interpolation) keep Devito's
`schedule(dynamic, chunk_size)` with atomics: the schedule choice above is for affine grid loops
only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings

from devito import Operator

from . import _layout

__all__ = ["OPERATOR_KWARGS", "DEVITO_DEFAULT_KWARGS", "build_operator", "schedule_mode"]

# Devito options: OpenMP on the CPU (threads from OMP_NUM_THREADS or `nthreads=` at apply time),
# every affine grid loop statically scheduled (see the module docstring).
OPERATOR_KWARGS = {"language": "openmp",
                   "opt": ("advanced", {"openmp": True, "par-dynamic-work": 2**62})}
# Devito's own defaults, for `JAXSEIS_OMP_SCHEDULE=devito` and benchmarks.
DEVITO_DEFAULT_KWARGS = {"language": "openmp", "opt": ("advanced", {"openmp": True})}

_LOCK = threading.Lock()
_MODES = ("static", "devito")


def schedule_mode():
    """`"static"` (contiguous static schedule, the default) or `"devito"` (Devito's defaults),
    from the environment variable JAXSEIS_OMP_SCHEDULE."""
    mode = os.environ.get("JAXSEIS_OMP_SCHEDULE", "static").strip().lower() or "static"
    if mode not in _MODES:
        from .._errors import JaxseisError

        raise JaxseisError(f"JAXSEIS_OMP_SCHEDULE={mode!r} is not one of {_MODES}")
    return mode


def _omp_iteration():
    try:
        from devito.passes.iet.languages.openmp import OmpIteration
    except ImportError:
        return None
    return OmpIteration if hasattr(OmpIteration, "_make_clauses") else None


@contextlib.contextmanager
def _contiguous_static():
    """While active, Devito's OpenMP loops with a static schedule and no explicit chunk get
    `schedule(static)` (contiguous slabs) instead of `schedule(static,1)`."""
    cls = _omp_iteration()
    if cls is None:
        warnings.warn("jaxseis: this Devito version has no OmpIteration._make_clauses; operators "
                      "use Devito's default OpenMP schedule (correct, but about 2x slower on "
                      "2 cores)", RuntimeWarning, stacklevel=3)
        yield
        return
    original = cls.__dict__["_make_clauses"]
    make = original.__func__

    def clauses(klass, *args, chunk_size=None, schedule=None, **kwargs):
        if schedule == "static" and chunk_size is None:
            out = make(klass, *args, chunk_size=False, schedule=schedule, **kwargs)
            return ["schedule(static)"] + list(out)
        return make(klass, *args, chunk_size=chunk_size, schedule=schedule, **kwargs)

    cls._make_clauses = classmethod(clauses)
    try:
        yield
    finally:
        cls._make_clauses = original


def build_operator(eqs, name, mode=None):
    """A Devito `Operator` for `eqs`, with jaxseis's OpenMP schedule (`mode` "static", default
    from JAXSEIS_OMP_SCHEDULE) or Devito's defaults (`mode="devito"`)."""
    mode = schedule_mode() if mode is None else mode
    # the layout lock first (jaxseis/devito/_layout.py): no other thread switches Devito's
    # `autopadding` while this operator's temporaries are laid out
    with _layout.lock():
        if mode == "devito":
            return Operator(eqs, name=name, **DEVITO_DEFAULT_KWARGS)
        with _LOCK, _contiguous_static():
            return Operator(eqs, name=name, **OPERATOR_KWARGS)
