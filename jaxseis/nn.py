"""Equinox layers over the acoustic operators, for networks that contain wave physics.

| layer | held constants | call | returns |
|---|---|---|---|
| `Forward(op, wavelet, src, rec)` | wavelet, src, rec | `layer(m)` | data |
| `Born(op, m0, wavelet, src, rec)` | m0, wavelet, src, rec | `layer(dm)` | data |
| `BornAdjoint(op, m0, wavelet, src, rec)` | m0, wavelet, src, rec | `layer(data)` | image |
| `ExtendedSourceForward(op, wavelet, rec)` | wavelet, rec | `layer(weights, m)` | data |
| `ExtendedSourceAdjoint(op, wavelet, rec)` | wavelet, rec | `layer(data, m)` | weights |

The layers work for every physics (`jaxseis.Acoustic`, `jaxseis.VariableDensityAcoustic`, ...): the
model (`m`, `m0`, `dm`, the image) is what the operator takes, a bare array for `Acoustic` and a
dict over the physics' parameters otherwise. Units are those of the operators: positions in
metres, time in ms, `m = 1/vp**2` in s^2/km^2, density in g/cm^3. Data are `(nt, nrec)` per shot;
with a shot axis on `src` they are `(nshots, nt, nrec)`.

**What is trainable.** The operator, the acquisition geometry, the wavelet and the background model
are *constants* of a layer: they are stored as static fields (NumPy copies behind a hashable
wrapper), so they are not leaves of the pytree. `eqx.filter_grad`,
`eqx.partition(..., eqx.is_inexact_array)` and optax therefore never see them (no derivative is
attempted, no weight decay touches them), and only the inputs of `__call__` are differentiated.
Consequences: a layer is built from concrete arrays (outside `jit`); changing one of its constants
means a new layer, and a new trace under `filter_jit` (equal constants hash equal, so rebuilding an
identical layer reuses the compiled code). To linearise around a model that is itself traced
(Gauss-Newton inside `jit`), call `op.born(m0, dm, ...)` directly.
"""

from __future__ import annotations

import hashlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import InvalidArgument, InvalidShape, InvalidType
from ._operator import WaveOperator

__all__ = ["Forward", "Born", "BornAdjoint", "ExtendedSourceForward", "ExtendedSourceAdjoint"]


class _Constant:
    """A read-only NumPy array that is hashable (by content), for static fields of layers.

    Equality is identity or equal content, so rebuilding a layer with the same arrays hits the
    `filter_jit` cache; the hash is computed once.
    """

    __slots__ = ("value", "_hash")

    def __init__(self, value):
        value = np.array(value, copy=True)
        value.setflags(write=False)
        self.value = value
        self._hash = None

    def __hash__(self):
        if self._hash is None:
            digest = hashlib.sha1(np.ascontiguousarray(self.value).tobytes()).hexdigest()
            self._hash = hash((self.value.shape, self.value.dtype.str, digest))
        return self._hash

    def __eq__(self, other):
        if self is other:
            return True
        if not isinstance(other, _Constant):
            return NotImplemented
        return (self.value.shape == other.value.shape and self.value.dtype == other.value.dtype
                and hash(self) == hash(other) and bool(np.array_equal(self.value, other.value)))

    def __repr__(self):
        kind, bits = self.value.dtype.kind, self.value.dtype.itemsize * 8
        return f"{kind}{bits}[{','.join(str(s) for s in self.value.shape)}](const)"

    def jax(self):
        return jnp.asarray(self.value)


class _ModelConstant:
    """A model-shaped constant (array, or dict of arrays for multi-parameter physics), hashable."""

    __slots__ = ("items", "is_dict")

    def __init__(self, items, is_dict):
        self.items = tuple(items)  # ((name, _Constant), ...)
        self.is_dict = is_dict

    def __hash__(self):
        return hash(self.items)

    def __eq__(self, other):
        return isinstance(other, _ModelConstant) and self.items == other.items

    def __repr__(self):
        if not self.is_dict:
            return repr(self.items[0][1])
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self.items) + "}"

    @property
    def value(self):
        if not self.is_dict:
            return self.items[0][1].value
        return {k: v.value for k, v in self.items}

    def jax(self):
        if not self.is_dict:
            return self.items[0][1].jax()
        return {k: v.jax() for k, v in self.items}


def _concrete(x, name):
    if isinstance(x, jax.core.Tracer):
        raise InvalidType(
            f"`{name}` must be a concrete array: layer constants are static (build the layer "
            f"outside jit). To use a traced `{name}`, call the operator method directly.")
    return np.asarray(x)


def _constant(x, name, dtype):
    arr = _concrete(x, name)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidType(f"`{name}` must be a real array, got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"`{name}` must be finite: it contains NaN or infinite values.")
    return _Constant(arr.astype(dtype))


def _model_constant(op, x, name):
    """A model argument (array or dict, as the operator takes it) as a static constant."""
    if op.single_array:
        if isinstance(x, dict):
            raise InvalidType(f"`{name}` of {type(op).__name__} is an array, not a dict.")
        if np.shape(_concrete(x, name)) != tuple(op.grid.shape):
            raise InvalidShape(f"`{name}` must have the grid shape {_shape(op.grid.shape)}, got "
                               f"{_shape(np.shape(x))}.")
        return _ModelConstant([(op.names[0], _constant(x, name, op.dtype))], False)
    if not isinstance(x, dict) or set(x) != set(op.names):
        raise InvalidArgument(
            f"`{name}` must be a dict with exactly the keys {', '.join(map(repr, op.names))} of "
            f"{type(op).__name__}, got {sorted(x) if isinstance(x, dict) else type(x).__name__}.")
    items = []
    for k in op.names:
        if np.shape(_concrete(x[k], f"{name}[{k!r}]")) != tuple(op.grid.shape):
            raise InvalidShape(f"`{name}[{k!r}]` must have the grid shape "
                               f"{_shape(op.grid.shape)}, got {_shape(np.shape(x[k]))}.")
        items.append((k, _constant(x[k], f"{name}[{k!r}]", op.dtype)))
    return _ModelConstant(items, True)


def _check_op(op):
    if not isinstance(op, WaveOperator):
        raise InvalidType(f"`op` must be a jaxseis physics operator such as jaxseis.Acoustic, got "
                          f"{type(op).__name__}.")


def _shape(x):
    return "(" + ", ".join(str(s) for s in x) + ("," if len(x) == 1 else "") + ")"


class _Acquisition:
    """Shared shape logic of the point-source layers: shots, wavelet layout, receiver layout."""

    @staticmethod
    def build(op, wavelet, src, rec):
        ndim, nt = op.grid.ndim, op.time.nt
        src_a, rec_a = _concrete(src, "src"), _concrete(rec, "rec")
        w_a = _concrete(wavelet, "wavelet")
        if src_a.ndim not in (2, 3) or src_a.shape[-1] != ndim or src_a.shape[-2] < 1:
            raise InvalidShape(
                f"`src` must have shape (nsrc, {ndim}) or (nshots, nsrc, {ndim}) in metres, got "
                f"{_shape(src_a.shape)}.")
        nshots = src_a.shape[0] if src_a.ndim == 3 else None
        nsrc = src_a.shape[-2]
        if rec_a.ndim not in (2, 3) or rec_a.shape[-1] != ndim or rec_a.shape[-2] < 1:
            raise InvalidShape(
                f"`rec` must have shape (nrec, {ndim}) or (nshots, nrec, {ndim}) in metres, got "
                f"{_shape(rec_a.shape)}.")
        if rec_a.ndim == 3 and rec_a.shape[0] != nshots:
            raise InvalidShape(
                f"`rec` with a shot axis must have as many shots as `src` ({nshots}), got "
                f"{_shape(rec_a.shape)}." if nshots is not None else
                f"`rec` has a shot axis {_shape(rec_a.shape)} but `src` has none: give `src` the "
                f"shape (nshots, nsrc, {ndim}).")
        if nshots is None:
            ok = w_a.shape in ((nt,), (nt, nsrc))
            want = f"({nt},) or ({nt}, {nsrc})"
        else:
            ok = w_a.shape in ((nt,), (nshots, nt), (nshots, nt, nsrc))
            want = f"({nt},) shared by all shots, ({nshots}, {nt}) or ({nshots}, {nt}, {nsrc})"
        if not ok:
            raise InvalidShape(
                f"`wavelet` must have shape {want} (nt from the TimeAxis), got "
                f"{_shape(w_a.shape)}.")
        dtype = op.dtype
        return (_constant(w_a, "wavelet", dtype), _constant(src_a, "src", dtype),
                _constant(rec_a, "rec", dtype), nshots)

    @staticmethod
    def map(layer, fn, *, batched=()):
        """`fn(wavelet, src, rec, *batched)` per shot (vmapped over the shot axis, if any)."""
        w, s, r = layer._wavelet.jax(), layer._src.jax(), layer._rec.jax()
        if layer.nshots is None:
            return fn(w, s, r, *batched)
        w_axis = 0 if w.ndim >= 2 else None
        r_axis = 0 if r.ndim == 3 else None
        return jax.vmap(fn, in_axes=(w_axis, 0, r_axis) + (0,) * len(batched))(w, s, r, *batched)


def _check_model(op, x, name):
    """A model-shaped call argument: the grid shape (per parameter for dict models)."""
    if not op.single_array and name != "weights":
        if not isinstance(x, dict) or set(x) != set(op.names):
            raise InvalidArgument(
                f"`{name}` must be a dict with exactly the keys {', '.join(map(repr, op.names))} "
                f"of {type(op).__name__}.")
        return {k: _check_model(_Plain(op), x[k], f"{name}[{k!r}]") for k in op.names}
    x = jnp.asarray(x)
    if tuple(x.shape) != tuple(op.grid.shape):
        raise InvalidShape(
            f"`{name}` must have the grid shape {_shape(op.grid.shape)}, got {_shape(x.shape)}. "
            f"Use eqx.filter_vmap (or jax.vmap) for a batch.")
    return x


class _Plain:
    """An operator's view for one array of the grid shape."""

    single_array = True

    def __init__(self, op):
        self.grid = op.grid


def _check_data(layer, data):
    data = jnp.asarray(data)
    nrec = layer._rec.value.shape[-2]
    core = layer.op.data_shape(nrec)
    want = core if layer.nshots is None else (layer.nshots,) + core
    if tuple(data.shape) != want:
        raise InvalidShape(f"`data` must have shape {_shape(want)}"
                           + (" (nshots, nt, nrec)" if layer.nshots is not None else " (nt, nrec)")
                           + f", got {_shape(data.shape)}. Use eqx.filter_vmap for a batch.")
    return data


def _describe(layer, **extra):
    parts = [f"op={layer.op!r}"] + [f"{k}={v!r}" for k, v in extra.items()]
    return f"{type(layer).__name__}(" + ", ".join(parts) + ")"


class _PointLayer(eqx.Module):
    """Base of the point-source layers (geometry and wavelet as static constants)."""

    op: WaveOperator = eqx.field(static=True)
    _wavelet: _Constant = eqx.field(static=True)
    _src: _Constant = eqx.field(static=True)
    _rec: _Constant = eqx.field(static=True)
    nshots: int | None = eqx.field(static=True)

    @property
    def wavelet(self) -> np.ndarray:
        """The source time function(s) (read-only NumPy copy)."""
        return self._wavelet.value

    @property
    def src(self) -> np.ndarray:
        """Source positions in metres, `(nsrc, ndim)` or `(nshots, nsrc, ndim)`."""
        return self._src.value

    @property
    def rec(self) -> np.ndarray:
        """Receiver positions in metres, `(nrec, ndim)` or `(nshots, nrec, ndim)`."""
        return self._rec.value

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of the data this layer produces or consumes."""
        core = self.op.data_shape(self._rec.value.shape[-2])
        return core if self.nshots is None else (self.nshots,) + core


class Forward(_PointLayer):
    """Forward modelling `m -> data` with fixed sources, wavelet and receivers.

    **Arguments:**

    - `op`: the operator of any physics, e.g. `jaxseis.Acoustic` (static).
    - `wavelet`: source time function, `(nt,)` (every source point) or `(nt, nsrc)`; with a shot
      axis on `src` also `(nshots, nt)` or `(nshots, nt, nsrc)`. Amplitude units are those of the
      data you want (the PDE source is `wavelet(t) delta(x - src)`).
    - `src`: source positions in metres, `(nsrc, ndim)`, or `(nshots, nsrc, ndim)` for several
      shots (then the shots are `jax.vmap`ped inside the layer and reach the host in one batch).
    - `rec`: receiver positions in metres, `(nrec, ndim)` (all shots) or `(nshots, nrec, ndim)`.

    **Call:** `layer(m)` with `m = 1/vp**2` (s^2/km^2) of shape `grid.shape`; returns data
    `(nt, nrec)` or `(nshots, nt, nrec)`. Differentiable in `m` (adjoint-state FWI gradient, summed
    over shots).
    """

    def __init__(self, op, wavelet, src, rec):
        _check_op(op)
        self.op = op
        self._wavelet, self._src, self._rec, self.nshots = _Acquisition.build(op, wavelet, src, rec)

    def __call__(self, m):
        m = _check_model(self.op, m, "m")
        return _Acquisition.map(self, lambda w, s, r: self.op.forward(m, w, s, r))

    def __repr__(self):
        return _describe(self, wavelet=self._wavelet, src=self._src, rec=self._rec,
                         nshots=self.nshots)


class _AroundM0(_PointLayer):
    """A point-source layer linearised around a fixed background model `m0` (a constant)."""

    _m0: _ModelConstant = eqx.field(static=True)

    def __init__(self, op, m0, wavelet, src, rec):
        _check_op(op)
        self.op = op
        self._wavelet, self._src, self._rec, self.nshots = _Acquisition.build(op, wavelet, src, rec)
        self._m0 = _model_constant(op, m0, "m0")

    @property
    def m0(self):
        """The background model (read-only NumPy copy; a dict for multi-parameter physics)."""
        return self._m0.value


class Born(_AroundM0):
    """Linearised (Born) modelling `dm -> J(m0) dm` around a fixed background model `m0`.

    **Arguments:**

    - `op`: the operator of any physics, e.g. `jaxseis.Acoustic` (static).
    - `m0`: background squared slowness (s^2/km^2), `grid.shape`; a constant of the layer.
    - `wavelet`, `src`, `rec`: as for `Forward` (metres; shot axis allowed on `src`).

    **Call:** `layer(dm)` with a model perturbation `dm` (s^2/km^2, `grid.shape`); returns data
    `(nt, nrec)` or `(nshots, nt, nrec)`. Linear in `dm`; its gradient is `BornAdjoint` (`layer.T`).
    """

    @property
    def T(self) -> BornAdjoint:
        """The adjoint layer `data -> J(m0)^T data` with the same constants."""
        return BornAdjoint(self.op, self.m0, self.wavelet, self.src, self.rec)

    def __call__(self, dm):
        dm = _check_model(self.op, dm, "dm")
        m0 = self._m0.jax()
        return _Acquisition.map(self, lambda w, s, r: self.op.born(m0, dm, w, s, r))

    def __repr__(self):
        return _describe(self, m0=self._m0, wavelet=self._wavelet, src=self._src, rec=self._rec,
                         nshots=self.nshots)


class BornAdjoint(_AroundM0):
    """Adjoint Born (reverse-time migration) `data -> J(m0)^T data` around a fixed `m0`.

    **Arguments:** as for `Born`.

    **Call:** `layer(data)` with data `(nt, nrec)`, or `(nshots, nt, nrec)` when `src` has a shot
    axis; returns the image on `grid.shape` (s^2/km^2 per unit of data squared: the gradient of
    `<Born(dm), data>` w.r.t. `dm`), summed over shots. Linear in `data`; its gradient is `Born`.
    """

    @property
    def T(self) -> Born:
        """The adjoint layer `dm -> J(m0) dm` with the same constants."""
        return Born(self.op, self.m0, self.wavelet, self.src, self.rec)

    def __call__(self, data):
        data = _check_data(self, data)
        m0 = self._m0.jax()
        fn = lambda w, s, r, d: self.op.born_adjoint(m0, d, w, s, r)  # noqa: E731
        image = _Acquisition.map(self, fn, batched=(data,))
        if self.nshots is None:
            return image
        return jax.tree_util.tree_map(lambda a: jnp.sum(a, axis=0), image)

    def __repr__(self):
        return _describe(self, m0=self._m0, wavelet=self._wavelet, src=self._src, rec=self._rec,
                         nshots=self.nshots)


class _ExtendedLayer(eqx.Module):
    op: WaveOperator = eqx.field(static=True)
    _wavelet: _Constant = eqx.field(static=True)
    _rec: _Constant = eqx.field(static=True)

    def _build(self, op, wavelet, rec):
        _check_op(op)
        nt, ndim = op.time.nt, op.grid.ndim
        wavelet, rec = _concrete(wavelet, "wavelet"), _concrete(rec, "rec")
        if np.shape(wavelet) != (nt,):
            raise InvalidShape(f"`wavelet` must have shape ({nt},) (nt from the TimeAxis), got "
                               f"{_shape(np.shape(wavelet))}.")
        rec_shape = np.shape(rec)
        if len(rec_shape) != 2 or rec_shape[1] != ndim or rec_shape[0] < 1:
            raise InvalidShape(f"`rec` must have shape (nrec, {ndim}) in metres, got "
                               f"{_shape(rec_shape)}. Use eqx.filter_vmap for several shots.")
        self.op = op
        self._wavelet = _constant(wavelet, "wavelet", op.dtype)
        self._rec = _constant(rec, "rec", op.dtype)

    @property
    def wavelet(self) -> np.ndarray:
        """The source time function `(nt,)` (read-only NumPy copy)."""
        return self._wavelet.value

    @property
    def rec(self) -> np.ndarray:
        """Receiver positions in metres, `(nrec, ndim)`."""
        return self._rec.value

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.op.data_shape(self._rec.value.shape[0])

    def __repr__(self):
        return _describe(self, wavelet=self._wavelet, rec=self._rec)


class ExtendedSourceForward(_ExtendedLayer):
    """Data of an extended source `(weights, m) -> data`: the source is `weights(x) * wavelet(t)`
    (a source density on the grid, JUDI4Flux's ExtendedQForward).

    **Arguments:**

    - `op`: the operator of any physics, e.g. `jaxseis.Acoustic` (static).
    - `wavelet`: the source time function, `(nt,)`.
    - `rec`: receiver positions in metres, `(nrec, ndim)`.

    **Call:** `layer(weights, m)` with `weights` and `m = 1/vp**2` (s^2/km^2) of shape
    `grid.shape`; returns data `(nt, nrec)`. Linear in `weights`; differentiable in both `weights`
    (`ExtendedSourceAdjoint`) and `m` (FWI gradient).
    """

    def __init__(self, op, wavelet, rec):
        self._build(op, wavelet, rec)

    @property
    def T(self) -> ExtendedSourceAdjoint:
        """The adjoint layer in `weights`, `(data, m) -> weights`."""
        return ExtendedSourceAdjoint(self.op, self.wavelet, self.rec)

    def __call__(self, weights, m):
        weights = _check_model(self.op, weights, "weights")
        m = _check_model(self.op, m, "m")
        return self.op.forward_extended(m, weights, self._wavelet.jax(), self._rec.jax())


class ExtendedSourceAdjoint(_ExtendedLayer):
    """Adjoint of `ExtendedSourceForward` in its weights, `(data, m) -> weights`.

    **Arguments:** as for `ExtendedSourceForward`.

    **Call:** `layer(data, m)` with data `(nt, nrec)` and `m` (s^2/km^2, `grid.shape`); returns
    the weights on `grid.shape` (the back-propagated data correlated with the wavelet).
    Differentiable in `data` (its gradient is `ExtendedSourceForward`); not in `m` (a second
    derivative, which raises `NotImplementedError`).
    """

    def __init__(self, op, wavelet, rec):
        self._build(op, wavelet, rec)

    @property
    def T(self) -> ExtendedSourceForward:
        """The forward layer `(weights, m) -> data`."""
        return ExtendedSourceForward(self.op, self.wavelet, self.rec)

    def __call__(self, data, m):
        data = jnp.asarray(data)
        if tuple(data.shape) != self.data_shape:
            raise InvalidShape(f"`data` must have shape {_shape(self.data_shape)} (nt, nrec), got "
                               f"{_shape(data.shape)}. Use eqx.filter_vmap for a batch.")
        m = _check_model(self.op, m, "m")
        return self.op.adjoint_extended(m, data, self._wavelet.jax(), self._rec.jax())
