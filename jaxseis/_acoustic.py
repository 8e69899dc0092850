"""`Acoustic`: the static description of an acoustic problem, whose methods are JAX operators.

Each operator is a `jax.custom_vjp` around `_bridge.host_call` (a `pure_callback`), so it works under
`jit`, `vmap` and reverse-mode AD, and cotangents go to adjoint PDE solves, never through time steps.
Four private differentiable primitives do all the work; the public methods only reshape:

| primitive | computes | linear in | VJP |
|---|---|---|---|
| `_fwd(kind, m, s1, s2, rec)` | data | s1 | s1, m: `_sweep` (one adjoint solve for both) |
| `_born(kind, m, dm, s1, s2, rec)` | J(m) dm | dm | dm: `_sweep("grad")` |
| `_sweep(kind, outs, m, data, s1, s2, rec, token)` | adjoint outputs `outs` | data | data: `_fwd` / `_born` |

`kind` is "point" (`s1` = source time functions `(nt, nsrc)`, `s2` = source positions) or "extended"
(`s1` = weights on the grid, `s2` = wavelet `(nt,)`). `outs` names what the adjoint sweep returns:
"src" (adjoint wavefield at the sources), "weights" (extended-source adjoint) and "grad" (imaging
condition with the forward wavefield: the FWI gradient / Born adjoint). Because every bwd is built of
these primitives, the adjoints are themselves differentiable (Gauss-Newton products compose).

With `symbolic_zeros=True` the fwd rules know which inputs are perturbed: the forward saves its
wavefield only when `m` is, and a perturbed input whose derivative is not implemented (positions, or
a second derivative in `m`) raises `NotImplementedError` naming it, never a silent zero.
"""

from __future__ import annotations

import functools as ft
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _bridge
from ._errors import InvalidArgument, InvalidShape, InvalidType
from ._geometry import Grid, TimeAxis, critical_dt
from ._storage import Checkpointed, FullStorage, Subsampled
from .devito import _tasks
from .devito._solver import SolverConfig, get_solver

__all__ = ["Acoustic"]


@dataclass(frozen=True)
class Acoustic:
    """Constant-density isotropic acoustic wave equation `m u_tt - lap(u) + damp u_t = q`.

    A hashable, static description: use it as a static argument of `jax.jit` or a static field of an
    `equinox.Module`. Its methods are the operators; shapes are for one shot (use `jax.vmap` for
    several): `m` is squared slowness `1/vp**2` in s^2/km^2 with shape `grid.shape`; `src` is
    `(nsrc, ndim)` and `rec` `(nrec, ndim)` positions in metres; `wavelet` is `(nt,)` (shared by all
    source points) or `(nt, nsrc)`; `data` is `(nt, nrec)`.

    **Arguments:**

    - `grid`: the physical `Grid` (metres; the last axis is depth).
    - `time`: the `TimeAxis` (milliseconds).
    - `space_order`: even order of the spatial finite differences (default 8).
    - `nbl`: cells of the absorbing (damping) layer added on every side (default 40).
    - `free_surface`: if True, the top (first depth sample) is a zero-pressure surface and has no
      absorbing layer.
    - `dtype`: `jnp.float32` (default) or `jnp.float64` (needs `jax_enable_x64`).
    - `storage`: how the forward wavefield reaches the gradient: `FullStorage()` (default, two
      solves), `Checkpointed(n_checkpoints)` (Revolve checkpointing: bounded memory,
      recomputation) or `Subsampled(factor)`.
      `gradient_bytes()` estimates the memory per shot; a gradient that would not fit in available
      memory raises `InsufficientMemory` before any solve.

    Point sources are unit-strength sources of the continuous PDE, `q = s(t) delta(x - x_s)`: the
    injection divides by the cell volume and interpolates off-grid positions (bi/tri-linear);
    receivers interpolate the wavefield. So data converge to the analytic Green's function under
    grid refinement.
    """

    grid: Grid
    time: TimeAxis
    space_order: int = 8
    nbl: int = 40
    free_surface: bool = False
    dtype: Any = jnp.float32
    storage: Any = FullStorage()

    def __post_init__(self):
        if not isinstance(self.grid, Grid):
            raise InvalidType(f"`grid` must be a jaxseis.Grid, got {type(self.grid).__name__}.")
        if not isinstance(self.time, TimeAxis):
            raise InvalidType(f"`time` must be a jaxseis.TimeAxis, got {type(self.time).__name__}.")
        so = self.space_order
        if not isinstance(so, (int, np.integer)) or so < 2 or so % 2:
            raise InvalidArgument(f"`space_order` must be an even integer >= 2, got {so!r}.")
        if not isinstance(self.nbl, (int, np.integer)) or self.nbl < 0:
            raise InvalidArgument(f"`nbl` must be a non-negative integer, got {self.nbl!r}.")
        dtype = np.dtype(self.dtype)
        if dtype not in (np.float32, np.float64):
            raise InvalidArgument(f"`dtype` must be float32 or float64, got {dtype}.")
        object.__setattr__(self, "space_order", int(so))
        object.__setattr__(self, "nbl", int(self.nbl))
        object.__setattr__(self, "free_surface", bool(self.free_surface))
        object.__setattr__(self, "dtype", dtype)
        if not isinstance(self.storage, (FullStorage, Checkpointed, Subsampled)):
            raise InvalidArgument(
                f"`storage` must be FullStorage(), Checkpointed(...) or Subsampled(...), got "
                f"{self.storage!r}.")

    # ------------------------------------------------------------------ descriptive
    def __repr__(self):
        return (f"Acoustic(grid={self.grid!r}, time={self.time!r}, space_order={self.space_order}, "
                f"nbl={self.nbl}, free_surface={self.free_surface}, dtype={self.dtype.name}, "
                f"storage={self.storage!r})")

    @property
    def solver_config(self) -> SolverConfig:
        """The part of the configuration the compiled operators depend on (not the time axis)."""
        return SolverConfig(self.grid.shape, self.grid.spacing, self.grid.origin, self.space_order,
                            self.nbl, self.free_surface, self.dtype.name)

    @property
    def solver(self):
        """The host-side Devito solver (compiled operators, padding, wavefield store)."""
        return get_solver(self.solver_config)

    def critical_dt(self, m) -> float:
        """Largest stable dt (ms) for the model `m` (s^2/km^2)."""
        return critical_dt(self.grid, 1.0 / float(np.sqrt(np.min(np.asarray(m)))), self.space_order)

    def wavefield_bytes(self) -> int:
        """Bytes of one fully saved forward wavefield (padded grid with halo, `nt + 2` levels)."""
        return self.solver.saved_bytes(self.time.nt)

    def gradient_bytes(self, storage=None) -> int:
        """Estimated bytes a gradient keeps per shot with `storage` (default: `self.storage`)."""
        return self.solver.saved_bytes(self.time.nt, storage or self.storage)

    # ------------------------------------------------------------------ argument handling
    def _array(self, x, name, shape):
        if x is None:
            raise InvalidArgument(f"`{name}` is required.")
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating) and not jnp.issubdtype(x.dtype, jnp.integer):
            raise InvalidType(f"`{name}` must be a real array, got dtype {x.dtype}.")
        if self.dtype == np.float64 and not jax.config.jax_enable_x64:
            raise InvalidArgument("`dtype=float64` needs `jax.config.update('jax_enable_x64', True)`.")
        if tuple(x.shape) != tuple(shape):
            raise InvalidShape(
                f"`{name}` must have shape {_fmt(shape)}, got {tuple(x.shape)}. "
                + ("Use jax.vmap for several shots or models." if x.ndim > len(shape) else ""))
        return x.astype(self.dtype)

    def _points(self, x, name):
        x = jnp.asarray(x) if x is not None else None
        if x is None or x.ndim != 2 or x.shape[1] != self.grid.ndim or x.shape[0] < 1:
            got = None if x is None else tuple(x.shape)
            raise InvalidShape(
                f"`{name}` must have shape (n{name}, {self.grid.ndim}) with positions in metres, "
                f"got {got}." + (" Use jax.vmap for several shots." if x is not None and x.ndim == 3
                                else ""))
        return self._array(x, name, x.shape)

    def _wavelet(self, wavelet, nsrc):
        nt = self.time.nt
        w = jnp.asarray(wavelet)
        if w.ndim == 1:
            w = self._array(w, "wavelet", (nt,))
            return jnp.broadcast_to(w[:, None], (nt, nsrc))
        if w.ndim == 2 and w.shape[0] != nt:
            raise InvalidShape(f"`wavelet` must have nt={nt} samples (TimeAxis), got {w.shape[0]}.")
        return self._array(w, "wavelet", (nt, nsrc))

    def _model(self, m, name="m"):
        return self._array(m, name, self.grid.shape)

    def _data(self, data, nrec):
        return self._array(data, "data", (self.time.nt, nrec))

    def _eager_check(self, kind, m, s1, s2, rec, data=None, dm=None, model_name="m"):
        """Eager calls with concrete arrays: value checks now, as plain ValueErrors (under a trace
        the host callback makes the same checks before solving)."""
        args = [a for a in (m, s1, s2, rec, data, dm) if a is not None]
        if any(isinstance(a, jax.core.Tracer) for a in args):
            return
        conv = lambda a: None if a is None else np.asarray(a)  # noqa: E731
        _tasks.validate(self, kind, conv(m), conv(s1), conv(s2), conv(rec), conv(data), conv(dm),
                        model_name=model_name)

    # ------------------------------------------------------------------ operators
    def forward(self, m, wavelet, src, rec):
        """Data `(nt, nrec)` of point sources at `src` fired with `wavelet`, recorded at `rec`.

        Linear in `wavelet`. Gradients: w.r.t. `m` the adjoint-state FWI gradient (two PDE solves,
        the forward wavefield kept on the host), w.r.t. `wavelet` the adjoint wavefield at `src`.
        """
        src, rec = self._points(src, "src"), self._points(rec, "rec")
        m, q = self._model(m), self._wavelet(wavelet, src.shape[0])
        self._eager_check("point", m, q, src, rec)
        return _fwd(self, "point", m, q, src, rec)

    def adjoint(self, m, data, src, rec):
        """Adjoint of `forward` in its wavelet: `data` at `rec` back-propagated and sampled at `src`,
        shape `(nt, nsrc)`. Linear in `data`; its VJP is `forward`."""
        src, rec = self._points(src, "src"), self._points(rec, "rec")
        m, data = self._model(m), self._data(data, rec.shape[0])
        self._eager_check("point", m, None, src, rec, data=data)
        return _sweep(self, "point", ("src",), m, data, None, src, rec, _no_token())[0]

    def born(self, m0, dm, wavelet, src, rec):
        """Linearized (Born) data `J(m0) dm`, shape `(nt, nrec)`: the exact derivative of `forward`
        w.r.t. `m` for the discrete scheme. Linear in `dm`; its VJP is `born_adjoint`."""
        src, rec = self._points(src, "src"), self._points(rec, "rec")
        m0, dm = self._model(m0, "m0"), self._model(dm, "dm")
        q = self._wavelet(wavelet, src.shape[0])
        self._eager_check("point", m0, q, src, rec, dm=dm, model_name="m0")
        return _born(self, "point", m0, dm, q, src, rec)

    def born_adjoint(self, m0, data, wavelet, src, rec):
        """Image `J(m0)^T data` on `grid.shape` (reverse-time migration; the FWI gradient of a
        residual). Linear in `data`; its VJP is `born`."""
        src, rec = self._points(src, "src"), self._points(rec, "rec")
        m0 = self._model(m0, "m0")
        q, data = self._wavelet(wavelet, src.shape[0]), self._data(data, rec.shape[0])
        self._eager_check("point", m0, q, src, rec, data=data, model_name="m0")
        return _sweep(self, "point", ("grad",), m0, data, q, src, rec, _no_token())[0]

    def forward_extended(self, m, weights, wavelet, rec):
        """Data `(nt, nrec)` of the extended source `weights(x) * wavelet(t)` (a source density on
        the grid, JUDI4Flux's ExtendedQForward). Linear in `weights`; gradients w.r.t. `weights`
        (`adjoint_extended`) and `m` (FWI gradient)."""
        rec = self._points(rec, "rec")
        m, weights = self._model(m), self._model(weights, "weights")
        wavelet = self._array(wavelet, "wavelet", (self.time.nt,))
        self._eager_check("extended", m, weights, wavelet, rec)
        return _fwd(self, "extended", m, weights, wavelet, rec)

    def adjoint_extended(self, m, data, wavelet, rec):
        """Adjoint of `forward_extended` in its weights, shape `grid.shape`. Linear in `data`; its
        VJP is `forward_extended`."""
        rec = self._points(rec, "rec")
        m, data = self._model(m), self._data(data, rec.shape[0])
        wavelet = self._array(wavelet, "wavelet", (self.time.nt,))
        self._eager_check("extended", m, None, wavelet, rec, data=data)
        return _sweep(self, "extended", ("weights",), m, data, None, wavelet, rec, _no_token())[0]


def _fmt(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _no_token():
    return jnp.zeros((), jnp.int32)


@jax.tree_util.register_static
@dataclass(frozen=True)
class _Flags:
    """Static facts the fwd rules pass to the bwd rules (which inputs were perturbed)."""

    m: bool = False
    s1: bool = False


def _refuse(arg, name, what):
    if arg.perturbed:
        raise NotImplementedError(
            f"jaxseis does not implement the derivative of {what} with respect to `{name}`; "
            f"stop gradients through it (jax.lax.stop_gradient) or differentiate another argument.")


def _values(*args):
    return tuple(None if a is None else a.value for a in args)


def _s_names(kind):
    return ("wavelet", "src") if kind == "point" else ("weights", "wavelet")


def _spec(op, shape, dtype=None):
    return jax.ShapeDtypeStruct(tuple(shape), dtype or op.dtype)


def _nt_nrec(op, rec):
    return (op.time.nt, rec.shape[0])


# ---------------------------------------------------------------------------------- forward
def _fwd_call(op, kind, save, m, s1, s2, rec):
    specs = [_spec(op, _nt_nrec(op, rec))] + ([_spec(op, (), jnp.int32)] if save else [])
    task = ft.partial(_tasks.forward, op, kind, save, False)
    return _bridge.host_call(task, specs, m, s1, s2, rec)


@ft.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fwd(op, kind, m, s1, s2, rec):
    return _fwd_call(op, kind, False, m, s1, s2, rec)[0]


def _fwd_fwd(op, kind, m, s1, s2, rec):
    what = "forward" if kind == "point" else "forward_extended"
    _refuse(s2, _s_names(kind)[1], what)
    _refuse(rec, "rec", what)
    mv, s1v, s2v, recv = _values(m, s1, s2, rec)
    if m.perturbed:
        _tasks.check_memory(op, 1)
        data, token = _fwd_saved(op, kind, mv, s1v, s2v, recv)
    else:
        data, token = _fwd_call(op, kind, False, mv, s1v, s2v, recv)[0], _no_token()
    return data, (mv, s1v, s2v, recv, token, _Flags(m=m.perturbed, s1=s1.perturbed))


def _fwd_bwd(op, kind, res, ct):
    m, s1, s2, rec, token, flags = res
    if isinstance(ct, jax.custom_derivatives.SymbolicZero):
        return None, None, None, None
    outs = (("grad",) if flags.m else ()) + (("src" if kind == "point" else "weights",)
                                             if flags.s1 else ())
    if not outs:
        return None, None, None, None
    got = dict(zip(outs, _sweep(op, kind, outs, m, ct, s1, s2, rec, token)))
    return got.get("grad"), got.get("src", got.get("weights")), None, None


_fwd.defvjp(_fwd_fwd, _fwd_bwd, symbolic_zeros=True)


@ft.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fwd_saved(op, kind, m, s1, s2, rec):
    """The forward that keeps its wavefield for a gradient (returns data and a token). Only ever
    differentiated when someone asks for a second derivative, which is refused by name."""
    return tuple(_fwd_call(op, kind, True, m, s1, s2, rec))


def _fwd_saved_fwd(op, kind, m, s1, s2, rec):
    what = "the FWI gradient (second derivatives of forward are not implemented)"
    _refuse(m, "m", what)
    for arg, name in zip((s1, s2), _s_names(kind)):
        _refuse(arg, name, what)
    _refuse(rec, "rec", what)
    return _fwd_saved(op, kind, *_values(m, s1, s2, rec)), None


_fwd_saved.defvjp(_fwd_saved_fwd, lambda op, kind, res, ct: (None,) * 4, symbolic_zeros=True)


# ---------------------------------------------------------------------------------- born
@ft.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _born(op, kind, m, dm, s1, s2, rec):
    task = ft.partial(_tasks.forward, op, kind, False, True)
    return _bridge.host_call(task, [_spec(op, _nt_nrec(op, rec))], m, s1, s2, rec, dm)[0]


def _born_fwd(op, kind, m, dm, s1, s2, rec):
    _refuse(m, "m0", "born (second derivatives of forward are not implemented)")
    for arg, name in zip((s1, s2), _s_names(kind)):
        _refuse(arg, name, "born")
    _refuse(rec, "rec", "born")
    mv, dmv, s1v, s2v, recv = _values(m, dm, s1, s2, rec)
    return _born(op, kind, mv, dmv, s1v, s2v, recv), (mv, s1v, s2v, recv)


def _born_bwd(op, kind, res, ct):
    m, s1, s2, rec = res
    if isinstance(ct, jax.custom_derivatives.SymbolicZero):
        return None, None, None, None, None
    dm = _sweep(op, kind, ("grad",), m, ct, s1, s2, rec, _no_token())[0]
    return None, dm, None, None, None


_born.defvjp(_born_fwd, _born_bwd, symbolic_zeros=True)


# ---------------------------------------------------------------------------------- adjoint sweep
def _sweep_specs(op, kind, outs, s2, rec):
    shapes = {"grad": op.grid.shape, "weights": op.grid.shape,
              "src": (op.time.nt, s2.shape[0]) if kind == "point" else None}
    return [_spec(op, shapes[name]) for name in outs]


@ft.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _sweep(op, kind, outs, m, data, s1, s2, rec, token):
    task = ft.partial(_tasks.sweep, op, kind, outs)
    specs = _sweep_specs(op, kind, outs, s2, rec)
    return tuple(_bridge.host_call(task, specs, m, data, s1, s2, rec, token))


def _sweep_fwd(op, kind, outs, m, data, s1, s2, rec, token):
    what = {"src": "adjoint", "weights": "adjoint_extended", "grad": "born_adjoint (and of the "
            "FWI gradient: second derivatives are not implemented)"}
    for name in outs:
        _refuse(m, "m", what[name])
        if s1 is not None:
            _refuse(s1, _s_names(kind)[0], what[name])
        _refuse(s2, _s_names(kind)[1], what[name])
        _refuse(rec, "rec", what[name])
    mv, datav, s1v, s2v, recv, tokv = _values(m, data, s1, s2, rec, token)
    return _sweep(op, kind, outs, mv, datav, s1v, s2v, recv, tokv), (mv, s1v, s2v, recv)


def _sweep_bwd(op, kind, outs, res, cts):
    m, s1, s2, rec = res
    total = None
    for name, ct in zip(outs, cts):
        if isinstance(ct, jax.custom_derivatives.SymbolicZero):
            continue
        if name == "src":
            part = _fwd(op, "point", m, ct, s2, rec)
        elif name == "weights":
            part = _fwd(op, "extended", m, ct, s2, rec)
        else:
            part = _born(op, kind, m, ct, s1, s2, rec)
        total = part if total is None else total + part
    return None, total, None, None, None, None


_sweep.defvjp(_sweep_fwd, _sweep_bwd, symbolic_zeros=True)
