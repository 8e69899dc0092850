"""Host side: one `Solver` per static configuration, NumPy in and NumPy out, for any physics.

A `Solver` owns the padded Devito grid, the damping profile, the physics' `Kernel` (its Devito
equations, `jaxseis/devito/_kernel.py`), the compiled operators (built lazily, once each, and counted
in `Solver.builds`) and a store of saved forward wavefields. Every call gets its own Devito objects
for the model, sources, receivers and wavefields (leased from a pool), so calls may run from several
threads at once (Devito's tests/test_threading.py); nothing shared is mutated after construction,
except the wavefield store, which is locked. No JAX in here: callbacks may run on a JAX runtime
thread, where using JAX can deadlock (jax-ml/jax#24255). (The Context registers a Subsampled field
lazily, under the operator lock, when its operator is first built; readers iterate snapshots.)

The solver knows nothing about one physics: it pads every model parameter by edge replication
(the transpose sums the layer back onto the edge), fills the coefficient functions the kernel asks
for, leases zeroed state buffers, and runs the storage strategies (`jaxseis._storage`) over the
kernel's state fields: full histories of its `saved` fields, subsampled fields, or Revolve
checkpoints of every state field's time levels.
"""

from __future__ import annotations

import contextlib
import itertools as it
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from devito import Grid as DevitoGrid

from .._storage import Checkpointed, FullStorage, Layout, Subsampled
from . import _openmp
from ._build import build_operator
from ._kernel import Context, components
from ._store import History, WavefieldStore, nbytes_of

# Tokens name saved wavefields across a pure_callback boundary. Start each process at a random point
# so that a token from another process (a Dask worker) never names a wavefield here by accident.
_TOKENS = it.count(int.from_bytes(os.urandom(3), "little") * 64 + 1)


@dataclass(frozen=True)
class SolverConfig:
    kernel: type
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    space_order: int
    nbl: int
    free_surface: bool
    dtype: str
    options: tuple = ()


def _damp_profile(shape, nbl, spacing, pad_lo, free_surface):
    """Devito's damping layer (examples/seismic/model.py::initialize_damp): zero in the physical
    domain, `1.5 ln(1000) / nbl * (p - sin(2 pi p) / (2 pi)) / h` at relative depth `p` into the layer.
    Not applied at the top when there is a free surface."""
    damp = np.zeros(shape)
    coeff = 1.5 * np.log(1000.0) / max(nbl, 1)
    for axis, (n, h) in enumerate(zip(shape, spacing)):
        if nbl == 0:
            break
        prof = np.zeros(n)
        for i in range(nbl):
            pos = abs((nbl - i + 1) / nbl)
            val = coeff * (pos - np.sin(2 * np.pi * pos) / (2 * np.pi)) / h
            if not (free_surface and axis == len(shape) - 1):
                prof[pad_lo[axis] - nbl + i] += val  # left / top
            prof[n - 1 - i] += val  # right / bottom
        view = [1] * len(shape)
        view[axis] = n
        damp = damp + prof.reshape(view)
    return damp


class _CallCache:
    """The argument lists of recent operator calls, so a repeated call skips Devito's
    `Operator.apply` bookkeeping.

    `Operator.apply` rebuilds and validates every argument (`Operator.arguments`), then
    post-processes them and builds a performance summary: about 5.5 ms per call whatever the
    grid (measured: 6.5 ms for a 10-step solve on a 41 x 41 grid whose compiled function takes
    0.64 ms), i.e. ~9 % of an S2 forward. The values it passes to the compiled function depend
    only on the Devito objects (their data pointers, which never move: `raw`), the sizes and the
    scalars, all in the key. The first call with a key goes through `Operator.arguments` (all of
    Devito's checks); later calls pass the same values to `Operator.cfunction` and check its
    return code as `apply` does. An entry holds only weak references to the Devito objects and
    is dropped as soon as one of them is collected (its values hold the objects' data arrays:
    a dropped wavefield history must not stay alive here), and the least recently used entries
    go beyond `SIZE`."""

    SIZE = 64

    def __init__(self):
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def _drop(self, key):
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is not None:
            for fin in entry[2]:
                fin.detach()

    def runner(self, op, kw):
        """A no-argument callable running `op` with the arguments `kw` of `Operator.apply`."""
        objects = [(k, v) for k, v in sorted(kw.items(), key=lambda kv: kv[0])
                   if not isinstance(v, (int, float, np.number))]
        scalars = tuple((k, v.item() if isinstance(v, np.number) else v)
                        for k, v in sorted(kw.items(), key=lambda kv: kv[0])
                        if isinstance(v, (int, float, np.number)))
        key = (id(op), scalars, tuple((k, id(v)) for k, v in objects))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if all(r() is v for r, (_, v) in zip(entry[1], objects)):
                    self._entries.move_to_end(key)
                else:  # an object died and its id was reused before the finalizer ran
                    entry = None
        if entry is not None:
            values = entry[0]
            return lambda: op._postprocess_errors(op.cfunction(*values))

        def first():
            op.cfunction  # compiled before the arguments are built, as `Operator.apply` does
            args = op.arguments(**kw)
            values = [args[p.name] for p in op.parameters]
            refs = tuple(weakref.ref(v) for _, v in objects)
            fins = tuple(weakref.finalize(v, self._drop, key) for _, v in objects)
            old = []
            with self._lock:
                prev = self._entries.pop(key, None)
                if prev is not None:
                    old.append(prev)
                self._entries[key] = (values, refs, fins)
                while len(self._entries) > self.SIZE:
                    old.append(self._entries.popitem(last=False)[1])
            for e in old:
                for fin in e[2]:
                    fin.detach()
            op._postprocess_errors(op.cfunction(*values))
        return first


def _nbytes(obj):
    return sum(nbytes_of(c) for c in components(obj))


def raw(f, halo=False):
    """Plain NumPy views of a Devito function's data (`halo=True`: with its halo), cached on the
    function. Devito's `Data` indexing costs 40-80 us per access (it maps global to local indices
    for MPI); a solve touches a dozen of them, which was ~2 ms of jaxseis's per-call overhead on
    S2. The views share the function's memory (allocated once, never moved)."""
    key = "_jaxseis_raw_halo" if halo else "_jaxseis_raw"
    d = f.__dict__
    v = d.get(key)
    if v is None:
        v = d[key] = (f.data_with_halo if halo else f.data).view(np.ndarray)
    return v


def _zero(obj):
    for c in components(obj):
        raw(c, halo=True)[:] = 0


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def _levels(c, k):
    """Slots of the time levels `k, k - 1, ..., k - time_order + 1` of a circular buffer."""
    t = c.time_order
    return [(k - i) % (t + 1) for i in range(t)]


class Solver:
    """Compiled operators and padding for one static configuration (see `SolverConfig`)."""

    def __init__(self, cfg: SolverConfig):
        self.cfg = cfg
        self.dtype = np.dtype(cfg.dtype)
        nd = len(cfg.shape)
        self.nghost = cfg.kernel.ghost_rows(cfg.space_order) if cfg.free_surface else 0
        self.pad_lo = tuple([cfg.nbl] * (nd - 1) + [self.nghost if cfg.free_surface else cfg.nbl])
        self.pad_hi = (cfg.nbl,) * nd
        self.padded_shape = tuple(n + lo + hi for n, lo, hi in
                                  zip(cfg.shape, self.pad_lo, self.pad_hi))
        origin = tuple(o - lo * h for o, lo, h in zip(cfg.origin, self.pad_lo, cfg.spacing))
        extent = tuple((n - 1) * h for n, h in zip(self.padded_shape, cfg.spacing))
        self.grid = DevitoGrid(shape=self.padded_shape, extent=extent, origin=origin,
                               dtype=self.dtype.type)
        self.cell_volume = float(np.prod(cfg.spacing))
        fs_index = self.nghost if cfg.free_surface else None
        self.ctx = Context(self.grid, cfg.space_order, self.cell_volume, fs_index, self.nghost,
                           cfg.options)
        self.kernel = cfg.kernel(self.ctx)
        self.damp = self.ctx.specs["damp"].make()
        self.damp.data[:] = _damp_profile(self.padded_shape, cfg.nbl, cfg.spacing, self.pad_lo,
                                          cfg.free_surface)
        self.interior = tuple(slice(lo, lo + n) for lo, n in zip(self.pad_lo, cfg.shape))
        self._ops: dict = {}
        self._op_args: dict = {}
        self._op_lock = threading.Lock()
        self._calls = _CallCache()
        self.builds = 0
        self._pool: dict = {}
        self._pool_lock = threading.Lock()
        self._tls = threading.local()
        self.store = WavefieldStore(budget_bytes=0.5 * _available_bytes())

    # ------------------------------------------------------------------ the kernel's layout
    @property
    def parameters(self) -> tuple[str, ...]:
        return self.kernel.parameters

    def _specs(self, role):
        return self.ctx.fields(role)

    def _state_components(self):
        """(spec, component name, time_order) of every forward state field."""
        return [(s, c, s.time_order) for s in self._specs("state") for c in s.components]

    def layout(self) -> Layout:
        saved = [s for s in self._specs("state") if s.kwargs["name"] in self.kernel.saved]
        return Layout(saved=sum(len(s.components) for s in saved),
                      levels=sum(t for _, _, t in self._state_components()),
                      sub=self.kernel.n_subsampled, multiple=self.ctx.multiple())

    # ------------------------------------------------------------------ operators
    def operator(self, kind, **flags):
        if kind == "forward":
            flags = {"sub": 0, **flags}
        else:
            flags = {"srca": False, "ext": False, "grad": (), "sub": 0, **flags}
            if flags["grad"] is True:
                flags["grad"] = tuple(self.kernel.needs(self.parameters))
            flags["grad"] = tuple(flags["grad"] or ())
        key = (kind, tuple(sorted(flags.items())))
        op = self._ops.get(key)
        if op is None:
            with self._op_lock:
                op = self._ops.get(key)
                if op is None:
                    build = self.kernel.forward_eqs if kind == "forward" else self.kernel.adjoint_eqs
                    eqs, name = build(**flags)
                    op = build_operator(eqs, name)
                    known = {c for spec in list(self.ctx.specs.values()) for c in spec.components}
                    self._op_args[id(op)] = (
                        {p.name for p in op.parameters},
                        {p.name for p in op.parameters if p.name in known})
                    self._ops[key] = op
                    self.builds += 1
        return op

    # ------------------------------------------------------------------ padding
    def pad_model(self, m):
        """Edge replication of a physical-grid model parameter onto the padded grid."""
        return np.pad(m, list(zip(self.pad_lo, self.pad_hi)), mode="edge")

    def pad_zero(self, w):
        return np.pad(w, list(zip(self.pad_lo, self.pad_hi)))

    def unpad_model_adjoint(self, g):
        """Transpose of `pad_model`: padded cells are summed back onto the edge cells they copy
        (in float64, returned in the solver's dtype). Free-surface ghost rows above the surface
        influence nothing and are dropped. `g` may be a view of a Devito buffer: it is only read."""
        return self._fold(np.asarray(g), 0).astype(self.dtype, copy=False)

    def _fold(self, g, axis):
        """`unpad_model_adjoint` over the axes `axis, ...` of `g` (float64, a new array): the
        interior is copied once, and each padded strip is summed (a small array) and folded onto
        its edge by the same rule over the remaining axes."""
        if axis == g.ndim:
            return np.array(g, dtype=np.float64)
        lo, hi, n = self.pad_lo[axis], self.pad_hi[axis], g.shape[axis]

        def cut(a, b):
            return (slice(None),) * axis + (slice(a, b),)

        out = self._fold(g[cut(lo, n - hi)], axis + 1)
        ghost_top = self.cfg.free_surface and axis == g.ndim - 1
        if lo and not ghost_top:
            out[cut(0, 1)] += self._fold(g[cut(0, lo)].sum(axis, keepdims=True, dtype=np.float64),
                                         axis + 1)
        if hi:
            out[cut(-1, None)] += self._fold(
                g[cut(n - hi, n)].sum(axis, keepdims=True, dtype=np.float64), axis + 1)
        return out

    def _as_model(self, model):
        """A model dict (a bare array is the single parameter of single-array physics)."""
        if isinstance(model, dict):
            return model
        return {self.parameters[0]: model}

    def _padded(self, model):
        return {k: self.pad_model(np.asarray(v)) for k, v in self._as_model(model).items()}

    # ------------------------------------------------------------------ Devito objects per call
    # Devito objects are pooled per solver: creating them costs ~5 ms each (and a fresh sparse
    # function redoes set-up inside `apply`), which is 10-25 % of a small forward solve. Each call
    # leases its own objects (so concurrent calls never share one) and returns them afterwards;
    # everything a solve reads is overwritten or zeroed when leased.
    @contextlib.contextmanager
    def _leasing(self):
        outer = getattr(self._tls, "lease", None)
        if outer is not None:
            yield
            return
        self._tls.lease = []
        try:
            yield
        finally:
            lease, self._tls.lease = self._tls.lease, None
            with self._pool_lock:
                for key, obj in lease:
                    self._pool.setdefault(key, []).append(obj)

    def _take(self, key, make):
        with self._pool_lock:
            free = self._pool.get(key)
            obj = free.pop() if free else None
        if obj is None:
            obj = make()
        lease = getattr(self._tls, "lease", None)
        if lease is not None:
            lease.append((key, obj))
        return obj

    def _function(self, name, data=None):
        """A Function on the padded grid (any registered name): `data` copied in, or zeros."""
        f = self._take(("f", name), self.ctx.specs[name].make)
        if data is None:
            raw(f, halo=True)[:] = 0
        else:
            raw(f)[:] = data
        return f

    def _sparse(self, name, coords, series, nt):
        """A SparseTimeFunction with Devito row k = sample k - 1 (rows 0 and nt + 1 unused: every
        time series has the `nt + 2` levels of a saved wavefield, as Devito wants one time size)."""
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, len(self.cfg.shape))
        if name in self.ctx.offsets:  # a staggered field stored on integer indices
            coords = coords - np.asarray(self.ctx.offsets[name])
        coords = coords.astype(self.dtype)
        npoint = coords.shape[0]
        sp = self._take(("s", name, npoint, nt), lambda: self.ctx.specs[name].make(
            npoint=npoint, nt=nt + 2))
        raw(sp.coordinates)[:] = coords
        d = raw(sp)
        d[:] = 0
        if series is not None:
            d[1:nt + 1] = np.asarray(series).reshape(nt, npoint)
        return sp

    def _wavelet_fn(self, wavelet, nt):
        f = self._take(("w", nt), lambda: self.ctx.specs["wav"].make(shape=(nt + 2,)))
        d = raw(f)
        d[:] = 0
        d[1:nt + 1] = wavelet
        return f

    def _buffer(self, name, tag="t"):
        """A zeroed circular time buffer of a state/born/adjoint field (`tag` tells apart buffers
        one call needs twice)."""
        f = self._take((tag, name), self.ctx.specs[name].make)
        _zero(f)
        return f

    def _buffers(self, role, tag="t", skip=()):
        return {s.kwargs["name"]: self._buffer(s.kwargs["name"], tag) for s in self._specs(role)
                if s.kwargs["name"] not in skip}

    def _grid_points_with_halo(self):
        """Points one time level of a field allocates: the padded grid, its halo, and the row
        padding to whole cache lines (jaxseis/devito/_layout.py), as the solver's own `damp`."""
        return int(np.prod(self.damp.shape_allocated))

    def saved_bytes(self, nt, storage=None):
        """Bytes one gradient keeps per shot for `nt` samples with `storage` (default: full)."""
        storage = FullStorage() if storage is None else storage
        if isinstance(storage, Checkpointed):
            return self._checkpoint_bytes(nt, storage)
        n_fields = storage.n_fields(nt, self.layout())
        return n_fields * self._grid_points_with_halo() * self.dtype.itemsize

    def _checkpoint_bytes(self, nt, storage):
        """Bytes a checkpointed history holds at its peak: the stored states (the domain of every
        time level, as `_snapshot` copies them) and one block's saved fields (halo and row
        padding included, as `_history_field` allocates them)."""
        layout, mult = self.layout(), self.ctx.multiple()
        return (layout.levels * storage.n_stored(nt, mult) * int(np.prod(self.padded_shape))
                * self.dtype.itemsize
                + layout.saved * (storage.block_length(nt, mult) + 2)
                * self._grid_points_with_halo() * self.dtype.itemsize)

    def _history_field(self, spec, size, zeroed):
        """A `size`-slot saved variant of `spec`'s field from the wavefield store (a consumed
        history's buffers are reused), its first `zeroed` slots set to zero."""
        name = spec.kwargs["name"]
        nbytes = len(spec.components) * self._grid_points_with_halo() * size * self.dtype.itemsize
        f = self.store.acquire((name, size), lambda: spec.make(save=size), nbytes)
        for c in components(f):
            raw(c, halo=True)[:zeroed] = 0
        return f

    def _new_saved(self, nt):
        """The saved variants (every level, `nt + 2` slots) of the kernel's saved fields. Slots 0
        and 1 are the zero initial states; every later slot is written before it is read."""
        return {name: self._history_field(self.ctx.specs[name], nt + 2, 2)
                for name in self.kernel.saved}

    def _new_sub(self, nt, sub):
        """The subsampled fields (`nt // sub + 2` slots). Every slot the imaging reads is written
        by the forward first; slot 0 is zeroed anyway."""
        return {spec.kwargs["name"]: self._history_field(spec, nt // sub + 2, 1)
                for key, spec in list(self.ctx.specs.items())
                if spec.role == "sub" and key.endswith(f"@{sub}")}

    def _apply(self, op, nt, dt, nthreads=None, time_m=1, **fields):
        names, functions = self._op_args[id(op)]
        kw = {"time_m": time_m, "time_M": nt, "dt": self.dtype.type(dt)}
        if "damp" in names:
            kw["damp"] = self.damp
        for obj in fields.values():
            for c in components(obj):
                if c.name in names:
                    kw[c.name] = c
        missing = functions - set(kw)
        if missing:  # never fall back on the Context's shared symbolic objects
            raise RuntimeError(f"operator {op.name} was given no {sorted(missing)} (a kernel's "
                               f"coefficients/linearize must cover every function it declares)")
        if nthreads:
            kw["nthreads"] = int(nthreads)
            if "nthreads_nonaffine" in names:
                # Devito's sparse-point loops (injection, interpolation) take their own thread
                # count, defaulting to OMP_NUM_THREADS whatever `nthreads` is: a one-thread solve
                # of ThreadExecutor then opened 2-thread OpenMP teams on its pool threads, which
                # made every solve in the process sleep at its barriers (jaxseis/devito/_openmp.py).
                kw["nthreads_nonaffine"] = int(nthreads)
        _openmp.run(self._calls.runner(op, kw), kw.get("nthreads"))

    def _source_fields(self, nt, src=None, q=None, weights=None, wavelet=None):
        if weights is not None:
            return {"wts": self._function("wts", self.pad_zero(weights)),
                    "wav": self._wavelet_fn(wavelet, nt)}
        return {"src": self._sparse("src", src, q, nt)}

    def _coefficients(self, padded):
        return {name: self._function(name, arr)
                for name, arr in self.kernel.coefficients(padded).items()}

    def _receivers(self, rec, nt, data=None):
        out = {}
        names = self.ctx.receivers
        for i, name in enumerate(names):
            series = None
            if data is not None:
                series = data[..., i] if self.kernel.component_axis else data
            out[name] = self._sparse(name, rec, series, nt)
        return out

    def _record(self, fields, nt):
        traces = [np.array(raw(fields[name])[1:nt + 1], dtype=self.dtype.type)
                  for name in self.ctx.receivers]
        return np.stack(traces, axis=-1) if self.kernel.component_axis else traces[0]

    # ------------------------------------------------------------------ solves (one shot each)
    def forward(self, model, dt, nt, rec, *, src=None, q=None, weights=None, wavelet=None,
                save=None, dmodel=None, nthreads=None):
        """Data `(nt, nrec)` (or `(nt, nrec, ncomponents)`) from a point source (`src`
        coordinates, `q` of shape `(nt, nsrc)`: unit point sources of the continuous PDE, the
        injection divides by the cell volume) or an extended source (`weights` on the physical
        grid, `wavelet` of shape `(nt,)`). `model` is a dict of physical-grid parameters (a bare
        array for single-array physics). With `save` (a storage strategy of `jaxseis._storage`, or
        True for full storage) also returns the `History` a gradient needs; with `dmodel` (a dict
        over the differentiable parameters), returns the Born data instead."""
        with self._leasing():
            return self._forward(self._as_model(model), dt, nt, rec, src, q, weights, wavelet,
                                 save, dmodel, nthreads)

    def _forward(self, model, dt, nt, rec, src, q, weights, wavelet, save, dmodel, nthreads):
        extended = weights is not None
        source = dict(src=src, q=q, weights=weights, wavelet=wavelet)
        if save is True:
            save = FullStorage()
        if isinstance(save, Checkpointed):
            return self._forward_checkpointed(model, dt, nt, rec, save, source, nthreads)
        full = isinstance(save, FullStorage)
        sub = save.factor if isinstance(save, Subsampled) else 0
        born = dmodel is not None
        op = self.operator("forward", source="extended" if extended else "point",
                           save=full, born=born, **({"sub": sub} if sub else {}))
        padded = self._padded(model)
        state = self._buffers("state", skip=self.kernel.saved if full else ())
        fields = {**self._coefficients(padded), **self._receivers(rec, nt),
                  **self._source_fields(nt, **source), **state, **self._aux()}
        history = None
        if full:
            saved = self._new_saved(nt)
            fields.update(saved)
            history = History("full", saved, sum(_nbytes(f) for f in saved.values()))
        if sub:
            subs = self._new_sub(nt, sub)
            fields.update(subs)
            history = History("sub", subs, sum(_nbytes(f) for f in subs.values()), factor=sub)
        if born:
            dpad = {k: self.pad_model(np.asarray(v)) for k, v in self._as_model(dmodel).items()}
            for name, arr in self.kernel.linearize(padded, dpad).items():
                fields["d" + name] = self._function("d" + name, arr)
            fields.update(self._buffers("born"))
        self._apply(op, nt, dt, nthreads, **fields)
        data = self._record(fields, nt)
        return (data, history) if save else data

    def _aux(self):
        """The kernel's scratch Functions, zeroed, except those declared `rewritten` (the
        `Leapfrog` coefficients, which every operator computes over the whole domain before its
        time loop): a leased one of those keeps the zero halo it was made with."""
        out = {}
        for s in self._specs("aux"):
            name = s.kwargs["name"]
            if s.rewritten:
                out[name] = self._take(("f", name), lambda name=name: self._zeroed(name))
            else:
                out[name] = self._function(name)
        return out

    def _zeroed(self, name):
        f = self.ctx.specs[name].make()
        raw(f, halo=True)[:] = 0
        return f

    def _snapshot(self, state, k):
        """{component: (level k, k - 1, ...)} copies of the circular state buffers."""
        out = {}
        for obj in state.values():
            for c in components(obj):
                out[c.name] = tuple(np.array(c.data[s]) for s in _levels(c, k))
        return out

    def _forward_checkpointed(self, model, dt, nt, rec, storage, source, nthreads):
        """Buffered forward over all `nt` steps, keeping the time levels of every state field at
        the block starts the Revolve schedule stores in its first sweep (the actions before its
        first reversal)."""
        extended = source.get("weights") is not None
        op = self.operator("forward", source="extended" if extended else "point", save=False,
                           born=False)
        state = self._buffers("state")
        fields = {**self._coefficients(self._padded(model)), **self._receivers(rec, nt),
                  **state, **self._aux(), **self._source_fields(nt, **source)}
        mult = self.ctx.multiple()
        blocks = storage.segments(nt, mult)
        actions = storage.schedule(nt, mult)
        first = next(i for i, a in enumerate(actions) if a[0] == "reverse")
        snapshots, k = {}, 1
        for action in actions[:first]:
            if action[0] == "advance":
                k1 = blocks[action[2]][0]
                self._apply(op, k1 - 1, dt, nthreads, time_m=k, **fields)
                k = k1
            else:  # "store": the first sweep only advances and stores
                snapshots[action[1]] = self._snapshot(state, k)
        self._apply(op, nt, dt, nthreads, time_m=k, **fields)
        data = self._record(fields, nt)
        nbytes = self._checkpoint_bytes(nt, storage)
        return data, History("checkpoints", {}, nbytes, snapshots=snapshots, segments=blocks,
                             schedule=actions[first:])

    def adjoint(self, model, dt, nt, rec, data, *, src=None, wavelet=None, u=None, source=None,
                wrt=None, nthreads=None):
        """Adjoint sweep driven by `data` at `rec`. Returns a dict with, as asked:
        `"src"`: `(nt, nsrc)` transpose of point injection at `src`; `"weights"`: transpose of the
        extended source for `wavelet`, physical grid; `"grad"`: imaging with the forward `History`
        `u` (the FWI gradient w.r.t. the physical-grid model: a dict over the parameters `wrt`,
        default all; a bare array for single-array physics called with a bare array).
        Checkpointed histories recompute their blocks and need the forward's `source` (dict of
        src/q/weights/wavelet)."""
        bare = not isinstance(model, dict)
        with self._leasing():
            out = self._adjoint(self._as_model(model), dt, nt, rec, data, src, wavelet, u, source,
                                tuple(wrt or self.parameters), nthreads)
        if bare and "grad" in out:
            out["grad"] = out["grad"][self.parameters[0]]
        return out

    def _adjoint_fields(self, padded, rec, nt, data):
        return {**self._coefficients(padded), **self._receivers(rec, nt, data),
                **self._aux()}

    def _images(self, padded, fields, needs, wrt):
        """Parameter gradients (physical grid) from the coefficient imaging accumulators."""
        coef = [s.kwargs["name"] for s in self._specs("coef")]
        # Views of the imaging buffers in the solver's dtype: `transpose` and
        # `unpad_model_adjoint` only read them (and compute in float64).
        zero = np.zeros(self.padded_shape, self.dtype) if set(coef) - set(needs) else None
        grads = {c: raw(fields["g_" + c]) if c in needs else zero for c in coef}
        par = self.kernel.transpose(padded, grads)
        return {k: self.unpad_model_adjoint(par[k]) for k in wrt}

    def _adjoint(self, model, dt, nt, rec, data, src, wavelet, u, source, wrt, nthreads):
        padded = self._padded(model)
        needs = tuple(self.kernel.needs(wrt)) if u is not None else ()
        if u is not None and u.kind == "checkpoints":
            return self._gradient_checkpointed(padded, dt, nt, rec, data, u, source, needs, wrt,
                                               nthreads, src=src, wavelet=wavelet)
        sub = u.factor if u is not None and u.kind == "sub" else 0
        op = self.operator("adjoint", srca=src is not None, ext=wavelet is not None, grad=needs,
                           **({"sub": sub} if sub else {}))
        fields = {**self._adjoint_fields(padded, rec, nt, data), **self._buffers("adjoint")}
        if src is not None:
            fields["srca"] = self._sparse("srca", src, None, nt)
        if wavelet is not None:
            fields["wav"] = self._wavelet_fn(wavelet, nt)
            fields["wadj"] = self._function("wadj")
        if u is not None:
            fields.update(u.fields)
            fields.update({"g_" + c: self._function("g_" + c) for c in needs})
        self._apply(op, nt, dt, nthreads, **fields)
        out = {}
        if src is not None:
            out["src"] = np.array(raw(fields["srca"])[1:nt + 1], dtype=self.dtype.type)
        if wavelet is not None:
            out["weights"] = np.array(fields["wadj"].data[self.interior], dtype=self.dtype.type)
        if u is not None:
            out["grad"] = self._images(padded, fields, needs, wrt)
        return out

    def _gradient_checkpointed(self, padded, dt, nt, rec, data, hist, source, needs, wrt,
                               nthreads, src=None, wavelet=None):
        """Run the rest of the Revolve schedule (`jaxseis._revolve`) over the blocks.

        Advances use the buffered forward state in global time indexing (restored from a
        checkpoint when it does not already hold the state). A reversal copies the block's
        starting levels into one-block buffers (saved fields: local index j = global k - k0 + 1;
        other state fields: their circular slots), recomputes the block and runs the adjoint with
        imaging over the same local range. Block starts satisfy (k0 - 1) % multiple == 0, so the
        circular buffers (the adjoint's carried over between blocks) have the same slots in local
        and global indexing. With `src` / `wavelet` the same sweep also returns the source-side
        adjoint (point sources: sampled per block into the global series; extended: accumulated)."""
        extended = source.get("weights") is not None
        kind = "extended" if extended else "point"
        op_adv = self.operator("forward", source=kind, save=False, born=False)
        op_f = self.operator("forward", source=kind, save=True, born=False)
        op_a = self.operator("adjoint", grad=needs, srca=src is not None,
                             ext=wavelet is not None)
        blocks = hist.segments
        blen = max(k1 - k0 + 1 for k0, k1 in blocks)
        coefs = self._coefficients(padded)
        aux = self._aux()
        adjoint = self._buffers("adjoint")
        grads = {"g_" + c: self._function("g_" + c) for c in needs}
        saved_names = set(self.kernel.saved)
        local = {}
        for s in self._specs("state"):
            name = s.kwargs["name"]
            if name in saved_names:
                local[name] = self._take(("useg", name, blen),
                                         lambda s=s: s.make(save=blen + 2))
            else:
                local[name] = self._buffer(name, tag="loc")
        state = self._buffers("state")
        adv = {**coefs, **aux, **state, **self._receivers(rec, nt),
               **self._source_fields(nt, **source)}
        # One-block series, allocated once and refilled per block.
        if extended:
            loc = {"wts": adv["wts"], "wav": self._wavelet_fn(np.zeros(blen), blen)}
            series, full = loc["wav"], np.asarray(source["wavelet"]).reshape(nt, 1)
        else:
            loc = {"src": self._sparse("src", source["src"], None, blen)}
            series, full = loc["src"], np.asarray(source["q"]).reshape(nt, -1)
        rec_f = self._receivers(rec, blen)
        rec_a = self._receivers(rec, blen)  # a second lease: other objects of the same size
        extra, out = {}, {}
        if src is not None:
            extra["srca"] = self._sparse("srca", src, None, blen)
            out["src"] = np.zeros((nt, np.asarray(src).reshape(-1, len(self.cfg.shape)).shape[0]),
                                  self.dtype)
        if wavelet is not None:
            extra["wadj"] = self._function("wadj")
            extra["wav"] = loc["wav"]  # the block's wavelet, refilled per block
        snaps = hist.snapshots
        data = np.asarray(data)
        current = None  # the block whose starting state the advancing buffers hold

        def comps(fs):
            return [c for obj in fs.values() for c in components(obj)]

        def restore(j):
            nonlocal current
            k0 = blocks[j][0]
            for c in comps(state):
                c.data_with_halo[:] = 0
                if j:
                    for slot, level in zip(_levels(c, k0), snaps[j][c.name]):
                        c.data[slot] = level
            current = j

        def goto(i):
            """Make the buffers hold block i's starting state: from the current state if it is on
            the way, else from the nearest checkpoint before (block i's own, except after the
            first sweep, which may end past an unstored state)."""
            j = max([b for b in snaps if b <= i], default=0)
            if current is None or not j <= current <= i:
                restore(j)
            if current < i:
                advance(current, i)

        def advance(i, j):
            nonlocal current
            if current != i:
                goto(i)
            self._apply(op_adv, blocks[j][0] - 1, dt, nthreads, time_m=blocks[i][0], **adv)
            current = j

        def levels_of(i):
            """{component: levels of block i's start}: views of the buffers, a checkpoint, or
            None (block 0 starts from rest)."""
            if current != i and i not in snaps and i != 0:
                goto(i)
            if current == i:
                k0 = blocks[i][0]
                return {c.name: tuple(c.data[s] for s in _levels(c, k0)) for c in comps(state)}
            return snaps[i] if i else None

        for action in hist.schedule:
            if action[0] == "advance":
                advance(action[1], action[2])
            elif action[0] == "store":
                lv = levels_of(action[1])
                snaps[action[1]] = {k: tuple(np.array(a) for a in v) for k, v in lv.items()}
            elif action[0] == "drop":
                snaps.pop(action[1], None)
            else:  # "reverse"
                i = action[1]
                k0, k1 = blocks[i]
                n = k1 - k0 + 1
                lv = levels_of(i)  # the advancing buffers are left as they were
                for name, obj in local.items():
                    for c in components(obj):
                        if name in saved_names:
                            slots = [1 - j for j in range(c.time_order)]
                        else:
                            c.data_with_halo[:] = 0
                            slots = _levels(c, k0)
                        for j, slot in enumerate(slots):
                            c.data[slot] = 0 if lv is None else lv[c.name][j]
                # Devito row j of a local series is global row k0 + j - 1, i.e. sample k0 + j - 2.
                rows = slice(k0 - 1, k1)
                series.data[:] = 0
                series.data[1:n + 1] = full[rows].reshape(series.data[1:n + 1].shape)
                for f in rec_f.values():
                    f.data[:] = 0
                self._apply(op_f, n, dt, nthreads, **coefs, **aux, **local, **rec_f, **loc)
                for name, f in rec_a.items():
                    f.data[:] = 0
                    col = data[rows]
                    if self.kernel.component_axis:
                        col = col[..., self.ctx.receivers.index(name)]
                    f.data[1:n + 1] = col
                if "srca" in extra:
                    extra["srca"].data[:] = 0
                self._apply(op_a, n, dt, nthreads, **coefs, **aux, **local, **adjoint, **grads,
                            **rec_a, **extra)
                if "srca" in extra:
                    out["src"][k0 - 1:k1] = extra["srca"].data[1:n + 1]
        if wavelet is not None:
            out["weights"] = np.array(extra["wadj"].data[self.interior], dtype=self.dtype.type)
        out["grad"] = self._images(padded, grads, needs, wrt)
        return out


_SOLVERS: dict[SolverConfig, Solver] = {}
_SOLVERS_LOCK = threading.Lock()


def get_solver(cfg: SolverConfig) -> Solver:
    """The process-wide `Solver` of a configuration (built on first use)."""
    solver = _SOLVERS.get(cfg)
    if solver is None:
        with _SOLVERS_LOCK:
            solver = _SOLVERS.get(cfg)
            if solver is None:
                solver = _SOLVERS[cfg] = Solver(cfg)
    return solver


def new_token() -> int:
    return next(_TOKENS) % (2**31 - 1) or 1
