"""Host side: one `Solver` per static configuration, NumPy in and NumPy out.

A `Solver` owns the padded Devito grid, the damping profile, the compiled operators (built lazily, once
each, and counted in `Solver.builds`) and a store of saved forward wavefields. Every call gets its own
Devito Functions for the model, sources and receivers, so calls may run from several threads at once
(Devito's tests/test_threading.py); nothing shared is mutated after construction, except the wavefield
store, which is locked. No JAX in here: callbacks may run on a JAX runtime thread, where using JAX
can deadlock (jax-ml/jax#24255).
"""

from __future__ import annotations

import contextlib
import itertools as it
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from devito import Function, Grid as DevitoGrid, SparseTimeFunction, TimeFunction

from . import _operators as ops

# Tokens name saved wavefields across a pure_callback boundary. Start each process at a random point
# so that a token from another process (a Dask worker) never names a wavefield here by accident.
_TOKENS = it.count(int.from_bytes(os.urandom(3), "little") * 64 + 1)


@dataclass(frozen=True)
class SolverConfig:
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    space_order: int
    nbl: int
    free_surface: bool
    dtype: str


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


def _nbytes(f):
    return f.data_with_halo.nbytes


@dataclass
class History:
    """What a forward run kept for a later gradient (see `jaxseis._storage`)."""

    kind: str          # "full", "sub" or "checkpoints"
    field: object      # TimeFunction u (full) or usub (sub); None for checkpoints
    nbytes: int
    factor: int = 1
    snapshots: dict | None = None   # checkpoints: block -> (u[k0], u[k0 - 1])
    segments: list | None = None    # checkpoints: the blocks' Devito time ranges (k0, k1)
    schedule: list | None = None    # checkpoints: Revolve actions left for the backward pass


class WavefieldStore:
    """Saved forward wavefields keyed by a token, within a byte budget.

    A gradient that has used its wavefield marks it *consumed*: it stays valid (a VJP closure may
    be pulled again) but is the first buffer the next forward reuses, so a training loop keeps
    reusing the same memory instead of touching a fresh wavefield per gradient (first touch of new
    memory costs more than the solve: ../shared/DESIGN.md). Beyond the budget the least recently
    used entries are evicted. A token that is gone makes the gradient recompute its forward.
    """

    def __init__(self, budget_bytes):
        self.budget = int(budget_bytes)
        self._entries: OrderedDict[int, History] = OrderedDict()
        self._consumed: set[int] = set()
        self._free: list = []
        self._lock = threading.Lock()

    def nbytes(self):
        return sum(h.nbytes for h in self._entries.values()) + sum(_nbytes(f) for f in self._free)

    def __len__(self):
        return len(self._entries)

    def _pop(self, token):
        h = self._entries.pop(token)
        self._consumed.discard(token)
        return h

    def acquire(self, make, save, nbytes):
        """A full-wavefield TimeFunction with `save` time levels: a free one, a consumed one, an
        evicted one, or a new one."""
        with self._lock:
            for i, f in enumerate(self._free):
                if f.save == save:
                    return self._free.pop(i)
            for token in list(self._entries):
                h = self._entries[token]
                if token in self._consumed and h.kind == "full" and h.field.save == save:
                    return self._pop(token).field
            while self._entries and self.nbytes() + nbytes > self.budget:
                h = self._pop(next(iter(self._entries)))
                if h.kind == "full":
                    if h.field.save == save:
                        return h.field
                    self._free.append(h.field)
                while self._free and self.nbytes() + nbytes > self.budget:
                    self._free.pop(0)
        return make()

    def put(self, token, history):
        with self._lock:
            self._entries[int(token)] = history
            while len(self._entries) > 1 and self.nbytes() > self.budget:
                h = self._pop(next(iter(self._entries)))
                if h.kind == "full":
                    self._free.append(h.field)
            while self._free and self.nbytes() > self.budget:
                self._free.pop(0)

    def get(self, token):
        with self._lock:
            h = self._entries.get(int(token))
            if h is not None:
                self._entries.move_to_end(int(token))
            return h

    def consume(self, token):
        """The gradient of `token` is done: a full wavefield's buffer may be reused by the next
        forward (and stays valid until then); other histories (subsampled, checkpoints) have no
        reusable buffer and are dropped, so a second pull of the same VJP recomputes them."""
        with self._lock:
            h = self._entries.get(int(token))
            if h is None:
                return
            if h.kind == "full":
                self._consumed.add(int(token))
            else:
                self._pop(int(token))

    def release(self, history):
        """Return a history's full-wavefield buffer for reuse (after a one-off gradient)."""
        if history.kind == "full":
            with self._lock:
                self._free.append(history.field)

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._consumed.clear()
            self._free.clear()


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


class Solver:
    """Compiled operators and padding for one static configuration (see `SolverConfig`)."""

    def __init__(self, cfg: SolverConfig):
        self.cfg = cfg
        self.dtype = np.dtype(cfg.dtype)
        nd = len(cfg.shape)
        self.nghost = cfg.space_order // 2 if cfg.free_surface else 0
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
        self.sym = ops.Symbols(self.grid, cfg.space_order, fs_index, self.nghost)
        self.damp = Function(name="damp", grid=self.grid, space_order=cfg.space_order)
        self.damp.data[:] = _damp_profile(self.padded_shape, cfg.nbl, cfg.spacing, self.pad_lo,
                                          cfg.free_surface)
        self.interior = tuple(slice(lo, lo + n) for lo, n in zip(self.pad_lo, cfg.shape))
        self._ops: dict = {}
        self._op_lock = threading.Lock()
        self.builds = 0
        self._pool: dict = {}
        self._pool_lock = threading.Lock()
        self._tls = threading.local()
        self.store = WavefieldStore(budget_bytes=0.5 * _available_bytes())

    # ------------------------------------------------------------------ operators
    def operator(self, kind, **flags):
        key = (kind, tuple(sorted(flags.items())))
        op = self._ops.get(key)
        if op is None:
            with self._op_lock:
                op = self._ops.get(key)
                if op is None:
                    if kind == "forward":
                        op = ops.build_forward(self.sym, cell_volume=self.cell_volume, **flags)
                    else:
                        op = ops.build_adjoint(self.sym, cell_volume=self.cell_volume, **flags)
                    self._ops[key] = op
                    self.builds += 1
        return op

    # ------------------------------------------------------------------ padding
    def pad_model(self, m):
        """Edge replication of a physical-grid model onto the padded grid."""
        return np.pad(m, list(zip(self.pad_lo, self.pad_hi)), mode="edge")

    def pad_zero(self, w):
        return np.pad(w, list(zip(self.pad_lo, self.pad_hi)))

    def unpad_model_adjoint(self, g):
        """Transpose of `pad_model`: padded cells are summed back onto the edge cells they copy.
        Free-surface ghost rows above the surface influence nothing and are dropped."""
        g = np.asarray(g, dtype=np.float64)
        for axis in range(g.ndim):
            lo = self.pad_lo[axis]
            hi = self.pad_hi[axis]
            n = g.shape[axis]
            idx = [slice(None)] * g.ndim
            idx[axis] = slice(lo, n - hi)
            core = g[tuple(idx)].copy()
            first = [slice(None)] * g.ndim
            last = [slice(None)] * g.ndim
            first[axis] = slice(0, 1)
            last[axis] = slice(-1, None)
            ghost_top = self.cfg.free_surface and axis == g.ndim - 1
            if lo and not ghost_top:
                idx[axis] = slice(0, lo)
                core[tuple(first)] += g[tuple(idx)].sum(axis=axis, keepdims=True)
            if hi:
                idx[axis] = slice(n - hi, n)
                core[tuple(last)] += g[tuple(idx)].sum(axis=axis, keepdims=True)
            g = core
        return g.astype(self.dtype)

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
        """A Function on the padded grid: `data` copied in, or zeros."""
        f = self._take(("f", name), lambda: Function(name=name, grid=self.grid,
                                                     space_order=self.cfg.space_order))
        if data is None:
            f.data_with_halo[:] = 0
        else:
            f.data[:] = data
        return f

    def _sparse(self, name, coords, series, nt):
        """A SparseTimeFunction with Devito row k = sample k - 1 (rows 0 and nt + 1 unused: every
        time series has the `nt + 2` levels of a saved wavefield, as Devito wants one time size)."""
        coords = np.asarray(coords, dtype=self.dtype).reshape(-1, len(self.cfg.shape))
        npoint = coords.shape[0]
        sp = self._take(("s", name, npoint, nt), lambda: SparseTimeFunction(
            name=name, grid=self.grid, npoint=npoint, nt=nt + 2))
        sp.coordinates.data[:] = coords
        sp.data[:] = 0
        if series is not None:
            sp.data[1:nt + 1] = np.asarray(series).reshape(nt, npoint)
        return sp

    def _wavelet_fn(self, wavelet, nt):
        f = self._take(("w", nt), lambda: Function(name="wav", dimensions=(self.grid.time_dim,),
                                                   shape=(nt + 2,), dtype=self.dtype.type))
        f.data[:] = 0
        f.data[1:nt + 1] = wavelet
        return f

    def _buffer(self, name):
        """A zeroed 3-level circular TimeFunction (u, du or v)."""
        f = self._take(("t", name), lambda: TimeFunction(name=name, grid=self.grid, time_order=2,
                                                         space_order=self.cfg.space_order))
        f.data_with_halo[:] = 0
        return f

    def _grid_points_with_halo(self):
        return int(np.prod([n + 2 * (self.cfg.space_order // 2) for n in self.padded_shape]))

    def saved_bytes(self, nt, storage=None):
        """Bytes one gradient keeps per shot for `nt` samples with `storage` (default: full)."""
        n_fields = nt + 2 if storage is None else storage.n_fields(nt)
        return n_fields * self._grid_points_with_halo() * self.dtype.itemsize

    def _new_saved(self, nt):
        nbytes = self.saved_bytes(nt)
        make = lambda: TimeFunction(name="u", grid=self.grid, time_order=2,  # noqa: E731
                                    space_order=self.cfg.space_order, save=nt + 2)
        u = self.store.acquire(make, nt + 2, nbytes)
        # Slots 0 and 1 are the zero initial states; every later slot is written before it is read.
        u.data_with_halo[:2] = 0
        return u

    def _apply(self, op, nt, dt, nthreads=None, time_m=1, **fields):
        kw = {"time_m": time_m, "time_M": nt, "dt": self.dtype.type(dt), "damp": self.damp}
        if nthreads:
            kw["nthreads"] = int(nthreads)
        op.apply(**kw, **fields)

    def _source_fields(self, nt, src=None, q=None, weights=None, wavelet=None):
        if weights is not None:
            return {"wts": self._function("wts", self.pad_zero(weights)),
                    "wav": self._wavelet_fn(wavelet, nt)}
        return {"src": self._sparse("src", src, q, nt)}

    # ------------------------------------------------------------------ solves (one shot each)
    def forward(self, m, dt, nt, rec, *, src=None, q=None, weights=None, wavelet=None,
                save=None, dm=None, nthreads=None):
        """Data `(nt, nrec)` from a point source (`src` coordinates, `q` of shape `(nt, nsrc)`: unit
        point sources of the continuous PDE, the injection divides by the cell volume) or an
        extended source (`weights` on the physical grid, `wavelet` of shape `(nt,)`). With `save`
        (a storage strategy of `jaxseis._storage`, or True for full storage) also returns the
        `History` a gradient needs; with `dm`, returns the Born data instead."""
        with self._leasing():
            return self._forward(m, dt, nt, rec, src, q, weights, wavelet, save, dm, nthreads)

    def _forward(self, m, dt, nt, rec, src, q, weights, wavelet, save, dm, nthreads):
        from .._storage import Checkpointed, FullStorage, Subsampled

        extended = weights is not None
        source = dict(src=src, q=q, weights=weights, wavelet=wavelet)
        if save is True:
            save = FullStorage()
        if isinstance(save, Checkpointed):
            return self._forward_checkpointed(m, dt, nt, rec, save, source, nthreads)
        full = isinstance(save, FullStorage)
        sub = save.factor if isinstance(save, Subsampled) else 0
        op = self.operator("forward", source="extended" if extended else "point",
                           save=full, born=dm is not None, **({"sub": sub} if sub else {}))
        fields = {"m": self._function("m", self.pad_model(m)),
                  "rec": self._sparse("rec", rec, None, nt), **self._source_fields(nt, **source)}
        history = None
        if full:
            u = fields["u"] = self._new_saved(nt)
            history = History("full", u, self.saved_bytes(nt))
        else:
            fields["u"] = self._buffer("u")
        if sub:
            usub = TimeFunction(name="usub", grid=self.grid, time_order=0,
                                space_order=self.cfg.space_order, save=nt // sub + 2,
                                time_dim=self.sym.tsub(sub))
            fields["usub"] = usub
            history = History("sub", usub, _nbytes(usub), factor=sub)
        if dm is not None:
            fields["dm"] = self._function("dm", self.pad_model(dm))
            fields["du"] = self._buffer("du")
        self._apply(op, nt, dt, nthreads, **fields)
        data = np.array(fields["rec"].data[1:nt + 1], dtype=self.dtype.type)
        return (data, history) if save else data

    def _forward_checkpointed(self, m, dt, nt, rec, storage, source, nthreads):
        """Buffered forward over all `nt` steps, keeping (u[k0], u[k0 - 1]) at the block starts the
        Revolve schedule stores in its first sweep (the actions before its first reversal)."""
        extended = source.get("weights") is not None
        op = self.operator("forward", source="extended" if extended else "point", save=False,
                           born=False)
        fields = {"m": self._function("m", self.pad_model(m)),
                  "rec": self._sparse("rec", rec, None, nt), "u": self._buffer("u"),
                  **self._source_fields(nt, **source)}
        u = fields["u"]
        blocks = storage.segments(nt)
        actions = storage.schedule(nt)
        first = next(i for i, a in enumerate(actions) if a[0] == "reverse")
        snapshots, k = {}, 1
        for action in actions[:first]:
            if action[0] == "advance":
                k1 = blocks[action[2]][0]
                self._apply(op, k1 - 1, dt, nthreads, time_m=k, **fields)
                k = k1
            else:  # "store": the first sweep only advances and stores
                snapshots[action[1]] = (np.array(u.data[k % 3]), np.array(u.data[(k - 1) % 3]))
        self._apply(op, nt, dt, nthreads, time_m=k, **fields)
        data = np.array(fields["rec"].data[1:nt + 1], dtype=self.dtype.type)
        nbytes = (2 * storage.n_stored(nt) * int(np.prod(self.padded_shape)) * self.dtype.itemsize
                  + self.saved_bytes(storage.block_length(nt)))
        return data, History("checkpoints", None, nbytes, snapshots=snapshots, segments=blocks,
                             schedule=actions[first:])

    def adjoint(self, m, dt, nt, rec, data, *, src=None, wavelet=None, u=None, source=None,
                nthreads=None):
        """Adjoint sweep driven by `data` `(nt, nrec)` at `rec`. Returns a dict with, as asked:
        `"src"`: `(nt, nsrc)` transpose of point injection at `src`; `"weights"`: transpose of the
        extended source for `wavelet`, physical grid; `"grad"`: imaging with the forward `History`
        `u` (the FWI gradient w.r.t. the physical-grid model). Checkpointed histories recompute
        their segments and need the forward's `source` (dict of src/q/weights/wavelet)."""
        with self._leasing():
            return self._adjoint(m, dt, nt, rec, data, src, wavelet, u, source, nthreads)

    def _adjoint(self, m, dt, nt, rec, data, src, wavelet, u, source, nthreads):
        if u is not None and u.kind == "checkpoints":
            return {"grad": self._gradient_checkpointed(m, dt, nt, rec, data, u, source, nthreads)}
        sub = u.factor if u is not None and u.kind == "sub" else 0
        op = self.operator("adjoint", srca=src is not None, ext=wavelet is not None,
                           grad=u is not None, **({"sub": sub} if sub else {}))
        fields = {"m": self._function("m", self.pad_model(m)),
                  "rec": self._sparse("rec", rec, data, nt), "v": self._buffer("v")}
        if src is not None:
            fields["srca"] = self._sparse("srca", src, None, nt)
        if wavelet is not None:
            fields["wav"] = self._wavelet_fn(wavelet, nt)
            fields["wadj"] = self._function("wadj")
        if u is not None:
            fields["usub" if sub else "u"] = u.field
            fields["grad"] = self._function("grad")
        self._apply(op, nt, dt, nthreads, **fields)
        out = {}
        if src is not None:
            out["src"] = np.array(fields["srca"].data[1:nt + 1], dtype=self.dtype.type)
        if wavelet is not None:
            out["weights"] = np.array(fields["wadj"].data[self.interior], dtype=self.dtype.type)
        if u is not None:
            out["grad"] = self.unpad_model_adjoint(fields["grad"].data)
        return out

    def _gradient_checkpointed(self, m, dt, nt, rec, data, hist, source, nthreads):
        """Run the rest of the Revolve schedule (`jaxseis._revolve`) over the blocks.

        Advances use the buffered forward `u` in global time indexing (restored from a checkpoint
        when it does not already hold the state). A reversal copies the block's starting state
        into a one-block saved buffer (local index j = global k - k0 + 1), recomputes the block
        and runs the adjoint with imaging over the same local range. Block starts satisfy
        (k0 - 1) % 3 == 0, so the adjoint's circular buffer `v` has the same slots in local and
        global indexing and carries over between blocks."""
        extended = source.get("weights") is not None
        kind = "extended" if extended else "point"
        op_adv = self.operator("forward", source=kind, save=False, born=False)
        op_f = self.operator("forward", source=kind, save=True, born=False)
        op_a = self.operator("adjoint", srca=False, ext=False, grad=True)
        blocks = hist.segments
        blen = max(k1 - k0 + 1 for k0, k1 in blocks)
        mf = self._function("m", self.pad_model(m))
        v = self._buffer("v")
        grad = self._function("grad")
        uloc = self._take(("useg", blen), lambda: TimeFunction(
            name="u", grid=self.grid, time_order=2, space_order=self.cfg.space_order,
            save=blen + 2))
        adv = {"m": mf, "u": self._buffer("u"), "rec": self._sparse("rec", rec, None, nt),
               **self._source_fields(nt, **source)}
        u = adv["u"]
        # One-block series, allocated once and refilled per block.
        if extended:
            loc = {"wts": adv["wts"], "wav": self._wavelet_fn(np.zeros(blen), blen)}
            series, full = loc["wav"], np.asarray(source["wavelet"]).reshape(nt, 1)
        else:
            loc = {"src": self._sparse("src", source["src"], None, blen)}
            series, full = loc["src"], np.asarray(source["q"]).reshape(nt, -1)
        rec_f = self._sparse("rec", rec, None, blen)
        rec_a = self._sparse("rec", rec, None, blen)
        # The schedule stores and drops checkpoints: it takes over the history's (a history is
        # consumed by its gradient anyway), so a dropped state is freed, not kept alive by `hist`.
        snaps = hist.snapshots
        data = np.asarray(data)
        current = None  # the block whose starting state `u` holds

        def restore(j):
            nonlocal current
            k0 = blocks[j][0]
            u.data_with_halo[:] = 0
            if j:
                u.data[k0 % 3], u.data[(k0 - 1) % 3] = snaps[j]
            current = j

        def goto(i):
            """Make `u` hold block i's starting state: from the current state if it is on the way,
            else from the nearest checkpoint before (block i's own, except after the first sweep,
            which may end past an unstored state)."""
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

        def state(i):
            """(u[k0], u[k0 - 1]) of block i: `u`'s slots (views) or a checkpoint."""
            if current != i and i not in snaps and i != 0:
                goto(i)
            if current == i:
                k0 = blocks[i][0]
                return u.data[k0 % 3], u.data[(k0 - 1) % 3]
            return snaps[i] if i else (0, 0)

        for action in hist.schedule:
            if action[0] == "advance":
                advance(action[1], action[2])
            elif action[0] == "store":
                snaps[action[1]] = tuple(np.array(a) for a in state(action[1]))
            elif action[0] == "drop":
                snaps.pop(action[1], None)
            else:  # "reverse"
                i = action[1]
                k0, k1 = blocks[i]
                n = k1 - k0 + 1
                uloc.data[1], uloc.data[0] = state(i)  # `u` itself is left as it was
                # Devito row j of a local series is global row k0 + j - 1, i.e. sample k0 + j - 2.
                rows = slice(k0 - 1, k1)
                series.data[:] = 0
                series.data[1:n + 1] = full[rows].reshape(series.data[1:n + 1].shape)
                self._apply(op_f, n, dt, nthreads, m=mf, u=uloc, rec=rec_f, **loc)
                rec_a.data[:] = 0
                rec_a.data[1:n + 1] = data[rows]
                self._apply(op_a, n, dt, nthreads, m=mf, u=uloc, v=v, grad=grad, rec=rec_a)
        return self.unpad_model_adjoint(grad.data)


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
