"""Host tasks: what one pure_callback does with its batch of shots (NumPy only, no JAX).

Each task validates every shot of the batch first (so no PDE is solved when any input is bad), then
runs the solves through the executor (`jaxseis._executor.run`), which decides whether shots run one
after the other, concurrently, or on a Dask cluster: `forward_one` and `sweep_one` are module-level
functions of picklable arguments for that reason. Saved forward wavefields stay on the host in the solver's
`WavefieldStore`; only an integer token crosses into JAX (design (b) in ../shared/DESIGN.md). A
gradient whose token is gone (evicted, or JAX re-ran a callback) recomputes the forward, so a stale
token costs time, never correctness.
"""

from __future__ import annotations

import functools as ft

import numpy as np

from .. import _checks
from .._errors import InsufficientMemory
from .._storage import Checkpointed
from .._executor import run as run_shots
from ._solver import _available_bytes, get_solver, new_token


def _validate(op, m, s1, s2, rec, kind, wavelet_for_warning=None, model_name="m"):
    _checks.check_model(op, m, model_name)
    _checks.check_positions(op, rec, "rec")
    if kind == "point":
        _checks.check_positions(op, s2, "src")
        if s1 is not None:
            _checks.check_finite(s1, "wavelet")
    else:
        if s1 is not None:
            _checks.check_finite(s1, "weights")
        _checks.check_finite(s2, "wavelet")
    if wavelet_for_warning is not None:
        _checks.warn_dispersion(op, m, wavelet_for_warning)


def validate(op, kind, m, s1, s2, rec, data=None, dm=None, model_name="m"):
    """All value checks of one shot (shared with the eager path)."""
    wav = s1 if kind == "point" else s2
    _validate(op, m, s1, s2, rec, kind, wavelet_for_warning=wav, model_name=model_name)
    if data is not None:
        _checks.check_finite(data, "data")
    if dm is not None:
        _checks.check_finite(dm, "dm")


def _source_kwargs(kind, s1, s2):
    return dict(src=s2, q=s1) if kind == "point" else dict(weights=s1, wavelet=s2)


def forward_one(op, kind, save, born, item, nthreads=None):
    """One shot of `forward`: (m, s1, s2, rec[, dm]) -> (data,) or (data, token)."""
    solver = get_solver(op.solver_config)
    t = op.time
    m, s1, s2, rec = item[:4]
    kw = _source_kwargs(kind, s1, s2)
    if born:
        return (solver.forward(m, t.dt, t.nt, rec, dm=item[4], nthreads=nthreads, **kw),)
    if save:
        data, history = solver.forward(m, t.dt, t.nt, rec, save=op.storage, nthreads=nthreads, **kw)
        token = new_token()
        solver.store.put(token, history)
        return data, np.int32(token)
    return (solver.forward(m, t.dt, t.nt, rec, nthreads=nthreads, **kw),)


def sweep_one(op, kind, outs, item, nthreads=None):
    """One shot of `sweep`: (m, data, s1, s2, rec, token) -> one array per name in `outs`."""
    solver = get_solver(op.solver_config)
    t = op.time
    m, data, s1, s2, rec, token = item
    u, recomputed = None, False
    source = _source_kwargs(kind, s1, s2)
    if "grad" in outs:
        u = solver.store.get(int(token)) if token is not None and int(token) else None
        if u is None:
            _, u = solver.forward(m, t.dt, t.nt, rec, save=op.storage, nthreads=nthreads, **source)
            recomputed = True
    res = solver.adjoint(m, t.dt, t.nt, rec, data,
                         src=s2 if "src" in outs else None,
                         wavelet=s2 if "weights" in outs else None, u=u, source=source,
                         nthreads=nthreads)
    if recomputed:
        solver.store.release(u)
    elif u is not None:
        solver.store.consume(int(token))
    return tuple(res[name] for name in outs)


def check_memory(op, nshots=1):
    """Refuse a gradient whose saved forward wavefields would not fit in available memory."""
    need = nshots * op.gradient_bytes()
    # Buffers the store already holds are evicted and reused before new memory is touched.
    avail = _available_bytes() + get_solver(op.solver_config).store.nbytes()
    if need > avail:
        raise InsufficientMemory(
            f"the gradient needs about {need / 2**30:.2f} GiB for saved forward wavefields "
            f"({nshots} shot(s) x {op.gradient_bytes() / 2**30:.2f} GiB with {op.storage!r}), but "
            f"only {avail / 2**30:.2f} GiB are available. Use "
            f"Acoustic(..., storage=jaxseis.Checkpointed()) (about "
            f"{op.gradient_bytes(Checkpointed()) / 2**30:.3f} GiB per shot) or fewer shots per call.")


def forward(op, kind, save, born, items):
    """A batch of forward (or Born) shots; every shot is validated before any is solved."""
    for it in items:
        validate(op, kind, it[0], it[1], it[2], it[3], dm=it[4] if born else None,
                 model_name="m0" if born else "m")
    if save:
        check_memory(op, len(items))
    return run_shots(ft.partial(forward_one, op, kind, save, born), items)


def sweep(op, kind, outs, items):
    """A batch of adjoint sweeps; every shot is validated before any is solved."""
    for m, data, s1, s2, rec, token in items:
        # Token 0 with imaging: born_adjoint (or Born's VJP), whose model argument is `m0`.
        name = "m0" if "grad" in outs and not int(token) else "m"
        validate(op, kind, m, s1 if "grad" in outs else None, s2, rec, data=data, model_name=name)
    if "grad" in outs:
        check_memory(op, 1)
    return run_shots(ft.partial(sweep_one, op, kind, outs), items)
