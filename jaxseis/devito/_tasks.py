"""Host tasks: what one pure_callback does with its batch of shots (NumPy only, no JAX).

`forward` and `sweep` take the batch (one tuple of arrays per shot), validate every shot first (so
no PDE is solved when any input is bad), then hand the per-shot solves (`ForwardShot`,
`SweepShot`) to the executor (`jaxseis._executor.run`), which decides whether shots run one after
the other, concurrently, or on a Dask cluster. The per-shot tasks are small picklable objects that
say what the executor needs to know (`uses_wavefield`: whether the solve keeps or reads a saved
forward wavefield). Saved forward wavefields stay on the host in the solver's `WavefieldStore`; only
an integer token crosses into JAX. A gradient whose token is gone (evicted, or JAX re-ran a
callback) recomputes the forward, so a stale token costs time, never correctness.

A shot's item is `(*model, s1, s2, rec[, *dmodel])` for `forward` and
`(*model, data, s1, s2, rec, token)` for `sweep`, the model parameters in the physics' order (and
the Born perturbations in the same order; those of parameters without derivatives must be zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from .._errors import InsufficientMemory, JaxseisError, record_callback_error
from .._executor import run as run_shots
from .._storage import Checkpointed
from ._solver import _available_bytes, get_solver, new_token


def _validate(op, model, s1, s2, rec, kind, wavelet_for_warning=None, label="model"):
    _checks.check_model(op, model, label)
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
        _checks.warn_dispersion(op, model, wavelet_for_warning)


def validate(op, kind, model, s1, s2, rec, data=None, dmodel=None, label="model"):
    """All value checks of one shot (shared with the eager path). `model` and `dmodel` are dicts."""
    label = op._label(label)
    if not isinstance(model, dict):
        model = {op.names[0]: model}
    if dmodel is not None and not isinstance(dmodel, dict):
        dmodel = {op.names[0]: dmodel}
    wav = s1 if kind == "point" else s2
    _validate(op, model, s1, s2, rec, kind, wavelet_for_warning=wav, label=label)
    if data is not None:
        _checks.check_finite(data, "data")
    if dmodel is not None:
        for k, v in dmodel.items():
            _checks.check_finite(v, "dm" if op.single_array else f"dmodel['{k}']")
            if k not in op.differentiable:
                _checks.check_unperturbed(op, k, np.asarray(v))


def _source_kwargs(kind, s1, s2):
    return dict(src=s2, q=s1) if kind == "point" else dict(weights=s1, wavelet=s2)


def _split_model(op, item):
    n = len(op.names)
    return dict(zip(op.names, item[:n])), item[n:]


@dataclass(frozen=True)
class ForwardShot:
    """One shot of `forward`: `(*model, s1, s2, rec[, *dmodel]) -> (data,)` or `(data, token)`."""

    op: object
    kind: str
    save: bool
    born: bool

    @property
    def uses_wavefield(self) -> bool:
        return self.save

    def __call__(self, item, nthreads=None):
        op = self.op
        solver = get_solver(op.solver_config)
        t = op.time
        model, rest = _split_model(op, item)
        s1, s2, rec = rest[:3]
        kw = _source_kwargs(self.kind, s1, s2)
        if self.born:
            dmodel = {k: v for k, v in zip(op.names, rest[3:]) if k in op.differentiable}
            return (solver.forward(model, t.dt, t.nt, rec, dmodel=dmodel, nthreads=nthreads,
                                   **kw),)
        if self.save:
            data, history = solver.forward(model, t.dt, t.nt, rec, save=op.storage,
                                           nthreads=nthreads, **kw)
            token = new_token()
            solver.store.put(token, history)
            return data, np.int32(token)
        return (solver.forward(model, t.dt, t.nt, rec, nthreads=nthreads, **kw),)


@dataclass(frozen=True)
class SweepShot:
    """One shot of `sweep`: `(*model, data, s1, s2, rec, token)` -> one array per output (the
    gradient: one per parameter of `wrt`)."""

    op: object
    kind: str
    outs: tuple
    wrt: tuple = ()

    @property
    def uses_wavefield(self) -> bool:
        return "grad" in self.outs

    def __call__(self, item, nthreads=None):
        op = self.op
        solver = get_solver(op.solver_config)
        t = op.time
        model, rest = _split_model(op, item)
        data, s1, s2, rec, token = rest
        u, recomputed = None, False
        source = _source_kwargs(self.kind, s1, s2)
        if "grad" in self.outs:
            u = solver.store.get(int(token)) if token is not None and int(token) else None
            if u is None:
                _, u = solver.forward(model, t.dt, t.nt, rec, save=op.storage, nthreads=nthreads,
                                      **source)
                recomputed = True
        res = solver.adjoint(model, t.dt, t.nt, rec, data,
                             src=s2 if "src" in self.outs else None,
                             wavelet=s2 if "weights" in self.outs else None, u=u, source=source,
                             wrt=self.wrt or None, nthreads=nthreads)
        if recomputed:
            solver.store.release(u)
        elif u is not None:
            solver.store.consume(int(token))
        out = []
        for name in self.outs:
            if name == "grad":
                out += [res["grad"][k] for k in self.wrt]
            else:
                out.append(res[name])
        return tuple(out)


def check_memory(op, nshots=1):
    """Refuse a gradient whose saved forward wavefields would not fit in available memory."""
    need = nshots * op.gradient_bytes()
    # Buffers the store already holds are evicted and reused before new memory is touched: when
    # they suffice (every iteration of a training loop), /proc/meminfo is not read at all.
    held = get_solver(op.solver_config).store.nbytes()
    if need <= held:
        return
    avail = _available_bytes() + held
    if need > avail:
        raise InsufficientMemory(
            f"the gradient needs about {need / 2**30:.2f} GiB for saved forward wavefields "
            f"({nshots} shot(s) x {op.gradient_bytes() / 2**30:.2f} GiB with {op.storage!r}), but "
            f"only {avail / 2**30:.2f} GiB are available. Use "
            f"{type(op).__name__}(..., storage=jaxseis.Checkpointed()) (about "
            f"{op.gradient_bytes(Checkpointed()) / 2**30:.3f} GiB per shot) or fewer shots per call.")


def forward(op, kind, save, born, items):
    """A batch of forward (or Born) shots; every shot is validated before any is solved."""
    for it in items:
        model, rest = _split_model(op, it)
        dmodel = dict(zip(op.names, rest[3:])) if born else None
        validate(op, kind, model, rest[0], rest[1], rest[2], dmodel=dmodel,
                 label="model0" if born else "model")
    if save:
        check_memory(op, len(items))
    return run_shots(ForwardShot(op, kind, save, born), items)


def sweep(op, kind, outs, wrt, items):
    """A batch of adjoint sweeps; every shot is validated before any is solved."""
    for it in items:
        model, (data, s1, s2, rec, token) = _split_model(op, it)
        # Token 0 with imaging: born_adjoint (or Born's VJP), whose model argument is `model0`.
        label = "model0" if "grad" in outs and not int(token) else "model"
        validate(op, kind, model, s1 if "grad" in outs else None, s2, rec, data=data, label=label)
    if "grad" in outs:
        check_memory(op, 1)
    return run_shots(SweepShot(op, kind, outs, wrt), items)


class Batch:
    """The host side of one primitive call: `Batch(name, *args)(items)` runs `forward` or `sweep`
    of this module, looked up at call time."""

    def __init__(self, name, *args):
        self.name, self.args = name, args

    def __call__(self, items):
        try:
            return globals()[self.name](*self.args, items)
        except JaxseisError as e:  # shown first when it ends a script under jit (see _errors.py)
            record_callback_error(e)
            raise
