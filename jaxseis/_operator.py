"""`WaveOperator`: the public operator class body every physics shares.

A physics is a frozen dataclass subclassing `WaveOperator` (its folder is `jaxseis/physics/<name>/`)
that declares

- `parameters`: a tuple of `jaxseis._physics.Parameter` (names, units, valid ranges);
- `max_speed(model, xp)`: the fastest wave speed of the model (km/s) for the stability limit, written
  with the array module `xp` (NumPy on the host);
- optionally `constraints(model)` (cross-parameter validity, NumPy), `critical_dt(model)`,
  `data_components` (names of recorded components when data have a component axis) and physics
  options as extra dataclass fields;
- `devito_kernel()`: the class holding its Devito equations (the host backend). A second backend
  (the same discrete scheme in pure JAX, say) would be another such hook; nothing here assumes
  Devito.

This module does argument normalisation and the six methods; the differentiable primitives are in
`jaxseis/_core.py` and work on the model as a dict `{name: array}` whatever the physics. `Acoustic`
keeps its model a bare array (`single_array = True`); every other physics takes a dict with exactly
its parameter names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from . import _core
from ._checks import check_unperturbed
from ._errors import InvalidArgument, InvalidShape, InvalidType
from ._geometry import Grid, TimeAxis, critical_dt
from ._physics import Parameter
from ._storage import Checkpointed, FullStorage, Subsampled

__all__ = ["WaveOperator"]


def _fmt(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True)
class WaveOperator:
    """Base of every physics: a hashable, static description whose methods are JAX operators.

    Use an instance as a static argument of `jax.jit` or a static field of an `equinox.Module`.
    Shapes are for one shot (use `jax.vmap` for several): the model (see the physics' `parameters`)
    has `grid.shape` per parameter; `src` is `(nsrc, ndim)` and `rec` `(nrec, ndim)` positions in
    metres; `wavelet` is `(nt,)` (shared by all source points) or `(nt, nsrc)`; `data` is
    `(nt, nrec)` (or `(nt, nrec, ncomponents)` for physics that record several components).
    """

    grid: Grid
    time: TimeAxis
    space_order: int = 8
    nbl: int = 40
    free_surface: bool = False
    dtype: Any = jnp.float32
    storage: Any = FullStorage()

    parameters: ClassVar[tuple[Parameter, ...]] = ()
    single_array: ClassVar[bool] = False
    data_components: ClassVar[tuple[str, ...] | None] = None
    speed_name: ClassVar[str] = "maximum velocity"

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

    # ------------------------------------------------------------------ what a physics provides
    @classmethod
    def devito_kernel(cls):
        """The class with this physics' Devito equations (see `jaxseis/devito/_kernel.py`)."""
        raise NotImplementedError(f"{cls.__name__} has no Devito backend.")

    def max_speed(self, model: dict, xp=np) -> Any:
        """Fastest wave speed of `model` in km/s (for the stability limit)."""
        raise NotImplementedError

    def min_speed(self, model: dict, xp=np) -> Any:
        """Slowest wave speed of `model` in km/s (for the dispersion warning; None: not checked)."""
        return None

    def constraints(self, model: dict, label: str) -> None:
        """Cross-parameter validity checks on a padded-free NumPy model dict (raise InvalidArgument)."""

    def options(self) -> tuple:
        """The physics options (dataclass fields beyond the common ones), as `(name, value)` pairs:
        part of the compiled-operator configuration."""
        common = {f.name for f in fields(WaveOperator)}
        return tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name not in common)

    # ------------------------------------------------------------------ descriptive
    @property
    def names(self) -> tuple[str, ...]:
        """The model parameter names, in order."""
        return tuple(p.name for p in self.parameters)

    @property
    def differentiable(self) -> tuple[str, ...]:
        """The parameters with gradients and Born perturbations."""
        return tuple(p.name for p in self.parameters if p.differentiable)

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self.options())
        return (f"{type(self).__name__}(grid={self.grid!r}, time={self.time!r}, "
                f"space_order={self.space_order}, nbl={self.nbl}, "
                f"free_surface={self.free_surface}, dtype={self.dtype.name}, "
                f"storage={self.storage!r}{extra})")

    @cached_property
    def solver_config(self):
        """The part of the configuration the compiled operators depend on (not the time axis).

        Computed once per operator (every solve asks for it; building it walks the dataclass
        fields, ~0.2 ms): the operator is frozen, so the value never changes."""
        from .devito._solver import SolverConfig

        return SolverConfig(type(self).devito_kernel(), self.grid.shape, self.grid.spacing,
                            self.grid.origin, self.space_order, self.nbl, self.free_surface,
                            self.dtype.name, self.options())

    @property
    def solver(self):
        """The host-side Devito solver (compiled operators, padding, wavefield store)."""
        from .devito._solver import get_solver

        return get_solver(self.solver_config)

    def critical_dt(self, model) -> float:
        """Largest stable dt (ms) for `model` (the physics' fastest speed, see `max_speed`)."""
        return critical_dt(self.grid, float(self.max_speed(self._host_model(model))),
                           self.space_order)

    def _certainly_stable(self, model, dt) -> bool:
        """True when a cheap sufficient condition shows `dt <= critical_dt(model)`; False when it
        does not (then `critical_dt` decides). A physics whose `critical_dt` is costly overrides
        this; the default shows nothing."""
        return False

    def wavefield_bytes(self) -> int:
        """Bytes of one fully saved forward wavefield (padded grid with halo, `nt + 2` levels)."""
        return self.solver.saved_bytes(self.time.nt)

    def gradient_bytes(self, storage=None) -> int:
        """Estimated bytes a gradient keeps per shot with `storage` (default: `self.storage`)."""
        return self.solver.saved_bytes(self.time.nt, storage or self.storage)

    def data_shape(self, nrec: int) -> tuple[int, ...]:
        """Shape of one shot's data for `nrec` receivers."""
        core = (self.time.nt, int(nrec))
        return core if self.data_components is None else core + (len(self.data_components),)

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

    def _model(self, model, name="model") -> dict:
        """The model as a dict `{parameter: array}` (from a bare array for single-array physics)."""
        shape = self.grid.shape
        if self.single_array:
            if isinstance(model, dict):
                raise InvalidType(
                    f"`{name}` of {type(self).__name__} is the array `{self.names[0]}` "
                    f"({self.parameters[0].unit}) of shape {_fmt(shape)}, not a dict.")
            return {self.names[0]: self._array(model, name, shape)}
        if not isinstance(model, dict):
            raise InvalidType(
                f"`{name}` of {type(self).__name__} must be a dict with the keys "
                f"{', '.join(map(repr, self.names))} (arrays of shape {_fmt(shape)}), got "
                f"{type(model).__name__}.")
        missing = [k for k in self.names if k not in model]
        extra = [k for k in model if k not in self.names]
        if missing or extra:
            what = "; ".join(p for p in (
                f"missing {', '.join(map(repr, missing))}" if missing else "",
                f"unknown {', '.join(map(repr, extra))}" if extra else "") if p)
            raise InvalidArgument(
                f"`{name}` has the wrong keys ({what}): {type(self).__name__} needs exactly "
                + ", ".join(f"{p.name!r} ({p.unit})" for p in self.parameters) + ".")
        return {k: self._array(model[k], f"{name}[{k!r}]" if name != k else k, shape)
                for k in self.names}

    def _out(self, model: dict):
        """The public form of a model-shaped result (array for single-array physics)."""
        return model[self.names[0]] if self.single_array else dict(model)

    def _host_model(self, model) -> dict:
        if self.single_array and not isinstance(model, dict):
            return {self.names[0]: np.asarray(model)}
        return {k: np.asarray(v) for k, v in dict(model).items()}

    def _label(self, name):
        """How a model argument is named in value errors (`m`/`m0` for Acoustic)."""
        if self.single_array:
            return self.names[0] + ("0" if name.endswith("0") else "")
        return name

    def _data(self, data, nrec):
        return self._array(data, "data", self.data_shape(nrec))

    def _eager_check(self, kind, model, s1, s2, rec, data=None, dmodel=None, label="model"):
        """Eager calls with concrete arrays: value checks now, as plain ValueErrors (under a trace
        the host callback makes the same checks before solving)."""
        leaves = jax.tree_util.tree_leaves((model, s1, s2, rec, data, dmodel))
        if any(isinstance(a, jax.core.Tracer) for a in leaves):
            return
        from .devito import _tasks

        conv = lambda a: None if a is None else jax.tree_util.tree_map(np.asarray, a)  # noqa: E731
        _tasks.validate(self, kind, conv(model), conv(s1), conv(s2), conv(rec), conv(data),
                        conv(dmodel), label=label)

    # ------------------------------------------------------------------ operators
    def forward(self, model, wavelet, src, rec):
        """Data of point sources at `src` fired with `wavelet`, recorded at `rec`.

        Linear in `wavelet`. Gradients: w.r.t. the model the adjoint-state FWI gradient (two PDE
        solves, the forward wavefield kept on the host), w.r.t. `wavelet` the adjoint wavefield
        at `src`.
        """
        src, rec = self._points(src, "src"), self._points(rec, "rec")
        model, q = self._model(model, self._arg("model")), self._wavelet(wavelet, src.shape[0])
        self._eager_check("point", model, q, src, rec, label=self._arg("model"))
        return _core.fwd(self, "point", model, q, src, rec)

    def adjoint(self, model, data, src, rec):
        """Adjoint of `forward` in its wavelet: `data` at `rec` back-propagated and sampled at
        `src`, shape `(nt, nsrc)`. Linear in `data`; its VJP is `forward`."""
        src, rec = self._points(src, "src"), self._points(rec, "rec")
        model, data = self._model(model, self._arg("model")), self._data(data, rec.shape[0])
        self._eager_check("point", model, None, src, rec, data=data, label=self._arg("model"))
        return _core.sweep(self, "point", ("src",), (), model, data, None, src, rec)[0]

    def born(self, model0, dmodel, wavelet, src, rec):
        """Linearized (Born) data `J(model0) dmodel`: the exact derivative of `forward` w.r.t. the
        model for the discrete scheme. Linear in `dmodel` (same structure as the model); its VJP is
        `born_adjoint`. The entries of parameters without derivatives (`differentiable=False`)
        must be zero: a nonzero one raises `NotImplementedError` naming it (checked on the host
        under `jit`)."""
        src, rec = self._points(src, "src"), self._points(rec, "rec")
        model0 = self._model(model0, self._arg("model0"))
        dmodel = self._dmodel(dmodel)
        q = self._wavelet(wavelet, src.shape[0])
        self._eager_check("point", model0, q, src, rec, dmodel=dmodel, label=self._arg("model0"))
        return _core.born(self, "point", model0, dmodel, q, src, rec)

    def born_adjoint(self, model0, data, wavelet, src, rec):
        """Image `J(model0)^T data` (reverse-time migration; the FWI gradient of a residual), with
        the structure of the model. Linear in `data`; its VJP is `born`."""
        src, rec = self._points(src, "src"), self._points(rec, "rec")
        model0 = self._model(model0, self._arg("model0"))
        q, data = self._wavelet(wavelet, src.shape[0]), self._data(data, rec.shape[0])
        self._eager_check("point", model0, q, src, rec, data=data, label=self._arg("model0"))
        out = _core.sweep(self, "point", ("grad",), self.differentiable, model0, data, q, src,
                          rec)[0]
        # A parameter without derivatives gets a zero image: `born` is defined on perturbations
        # that leave it unchanged, and this is the exact adjoint of that `born`.
        zero = jnp.zeros(self.grid.shape, self.dtype)
        return self._out({k: out.get(k, zero) for k in self.names})

    def forward_extended(self, model, weights, wavelet, rec):
        """Data of the extended source `weights(x) * wavelet(t)` (a source density on the grid,
        JUDI4Flux's ExtendedQForward). Linear in `weights`; gradients w.r.t. `weights`
        (`adjoint_extended`) and the model (FWI gradient)."""
        rec = self._points(rec, "rec")
        model = self._model(model, self._arg("model"))
        weights = self._array(weights, "weights", self.grid.shape)
        wavelet = self._array(wavelet, "wavelet", (self.time.nt,))
        self._eager_check("extended", model, weights, wavelet, rec, label=self._arg("model"))
        return _core.fwd(self, "extended", model, weights, wavelet, rec)

    def adjoint_extended(self, model, data, wavelet, rec):
        """Adjoint of `forward_extended` in its weights, shape `grid.shape`. Linear in `data`; its
        VJP is `forward_extended`."""
        rec = self._points(rec, "rec")
        model, data = self._model(model, self._arg("model")), self._data(data, rec.shape[0])
        wavelet = self._array(wavelet, "wavelet", (self.time.nt,))
        self._eager_check("extended", model, None, wavelet, rec, data=data,
                          label=self._arg("model"))
        return _core.sweep(self, "extended", ("weights",), (), model, data, None, wavelet, rec)[0]

    # ------------------------------------------------------------------ helpers of the methods
    def _arg(self, name):
        """The public name of a model argument: `m`/`m0` for single-array physics."""
        return self._label(name)

    def _dmodel(self, dmodel) -> dict:
        name = "dm" if self.single_array else "dmodel"
        if self.single_array:
            return self._model(dmodel, name)
        d = self._model(dmodel, name)
        for k in self.names:
            if k not in self.differentiable and not isinstance(d[k], jax.core.Tracer):
                check_unperturbed(self, k, np.asarray(d[k]))
        return d
