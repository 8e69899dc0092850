"""What a physics gives the generic Devito solver: a `Kernel` written against a `Context`.

A physics' Devito backend (`jaxseis/physics/<name>/_devito.py`) is a subclass of `Kernel`. It
declares its symbolic Devito objects through the `Context` (which remembers how to make a runtime
twin of each, so the generic `Solver` can lease, fill, save and restore them without knowing the
physics) and returns the equations of each operator:

- `forward_eqs(source, save, born, sub)`: forward modelling from a point (`ctx.src`) or extended
  (`ctx.wts * ctx.wav`) source, recorded by the receivers `ctx.receivers`; with `save` the fields
  listed in `saved` are the saved variants `ctx.saved(f)` (every time level kept); with `born` the
  scattered fields (`ctx.born_state`) driven by the perturbations `ctx.perturbation(c)` are
  recorded instead; with `sub > 0`, what the imaging needs every `sub` steps in
  `ctx.subsampled(...)` fields.
- `adjoint_eqs(srca, ext, grad, sub)`: the exact transpose of the forward recursion driven by
  receiver data, with, as asked, the adjoint wavefield sampled at the sources (`ctx.srca`), the
  extended-source adjoint (`ctx.wadj`) and the imaging conditions of the coefficients `grad`
  (accumulated into `ctx.gradient(c)`), reading the saved (or subsampled) forward fields.

Host-side NumPy maps between the model parameters and the coefficients the equations use
(`coefficients`, its derivative `linearize` and that derivative's transpose `transpose`) make
parametrisations exact by construction (chain rule, pointwise or any linear map with its transpose).

Time indexing shared by every physics: Devito's time index `k` holds step `n = k - 1`, slot 0 is the
zero state before the first step and the loop runs `k = 1 .. nt`; every sparse time series (sources,
receivers, the extended-source wavelet) has `nt + 2` rows with row `k` = sample `k - 1`.
Checkpointing restarts a block from the `time_order` levels of every state field; imaging at
reverse step `k` may read saved forward levels `k - 1 .. k + 1` and adjoint levels `k - 1 .. k + 1`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy
from devito import (ConditionalDimension, Eq, Function, SparseTimeFunction, TimeFunction)

from ._build import OPERATOR_KWARGS  # noqa: F401  (re-exported: the Devito options jaxseis uses)
from ._layout import aligned_rows

__all__ = ["Context", "Kernel", "Leapfrog", "OPERATOR_KWARGS", "laplacian", "mirror"]


@dataclass
class Spec:
    """How to make a runtime twin of a symbolic object: `cls(**kwargs, **overrides)`."""

    role: str        # coef, dcoef, grad, aux, state, born, adjoint, sub, fixed, sparse, ext
    cls: type
    kwargs: dict
    time_order: int = 0
    components: tuple = field(default_factory=tuple)
    symbol: object = None
    rewritten: bool = False  # aux only: assigned over the whole domain before any read

    def make(self, aligned=None, **overrides):
        """A new Devito object, its rows padded to whole cache lines (`_layout.aligned_rows`;
        `aligned=False` for Devito's default layout, as benchmarks compare)."""
        kwargs = {**self.kwargs, **overrides}
        grid = kwargs.get("grid")
        dtype = kwargs.get("dtype") or (grid.dtype if grid is not None else np.float32)
        with aligned_rows(aligned, dtype=dtype):
            return self.cls(**kwargs)


def components(obj):
    """The plain Devito functions of an object (the components of a vector/tensor function)."""
    values = getattr(obj, "values", None)
    if callable(values) and not hasattr(obj, "data"):
        return list(values())
    return [obj]


class Context:
    """The symbolic objects of one configuration, registered by name with how to remake them.

    Only names, dimensions, staggering and dtypes matter at apply time: each call passes its own
    runtime objects with the same names (fresh or pooled), never these symbols.
    """

    def __init__(self, grid, space_order, cell_volume, free_surface_index, nghost, options=()):
        self.grid = grid
        self.space_order = space_order
        self.cell_volume = cell_volume
        self.fs = free_surface_index  # None or the padded depth index of the surface
        self.nghost = nghost
        self.options = dict(options)
        self.dt = grid.stepping_dim.spacing
        self.specs: dict[str, Spec] = {}
        self._saved: dict[str, object] = {}
        self._tsub: dict[int, ConditionalDimension] = {}
        so = space_order
        self.damp = self._register("fixed", Function, name="damp", grid=grid, space_order=so)
        self.src = self._register("sparse", SparseTimeFunction, name="src", grid=grid, npoint=1,
                                  nt=2)
        self.srca = self._register("sparse", SparseTimeFunction, name="srca", grid=grid, npoint=1,
                                   nt=2)
        self.wts = self._register("ext", Function, name="wts", grid=grid, space_order=so)
        self.wav = self._register("ext", Function, name="wav", dimensions=(grid.time_dim,),
                                  shape=(2,), dtype=grid.dtype)
        self.wadj = self._register("ext", Function, name="wadj", grid=grid, space_order=so)
        self.receivers: list = []
        self.offsets: dict[str, tuple] = {}

    # ------------------------------------------------------------------ registration
    def _register(self, role, cls, order=0, **kwargs):
        name = kwargs["name"]
        if name in self.specs:
            known = self.specs[name]
            if known.role != role or known.cls is not cls:
                # one Devito name, two objects: the second would silently be the first (an
                # adjoint auxiliary `wz` once overwrote a coefficient `wz` in 3D elastic)
                raise ValueError(f"Devito name {name!r} is registered with role {known.role!r} "
                                 f"({known.cls.__name__}); cannot register it again with role "
                                 f"{role!r} ({cls.__name__})")
            return known.symbol
        spec = Spec(role, cls, kwargs, order)
        obj = spec.make()
        spec.symbol = obj
        spec.components = tuple(c.name for c in components(obj))
        self.specs[name] = spec
        return obj

    def coefficient(self, name, **kw):
        """A coefficient Function on the padded grid, filled from `Kernel.coefficients`."""
        return self._register("coef", Function, name=name, grid=self.grid,
                              space_order=self.space_order, **kw)

    def perturbation(self, name, **kw):
        """The Born perturbation `d<name>` of a coefficient, filled from `Kernel.linearize`."""
        return self._register("dcoef", Function, name="d" + name, grid=self.grid,
                              space_order=self.space_order, **kw)

    def gradient(self, name, **kw):
        """The imaging accumulator `g_<name>` of a coefficient (zeroed per call)."""
        return self._register("grad", Function, name="g_" + name, grid=self.grid,
                              space_order=self.space_order, **kw)

    def auxiliary(self, name, rewritten=False, **kw):
        """A scratch Function on the padded grid, zeroed per call.

        `rewritten=True` declares that every operator using it assigns it over the whole domain
        before reading it (as `Leapfrog` does with its coefficients): a leased one is then not
        zeroed again (its halo, which nothing writes, stays zero from when it was made). A name
        registered more than once is rewritten only if every registration says so: one user that
        relies on the zeroing keeps it."""
        first = name not in self.specs
        obj = self._register("aux", Function, name=name, grid=self.grid,
                             space_order=self.space_order, **kw)
        spec = self.specs[name]
        spec.rewritten = bool(rewritten) if first else spec.rewritten and bool(rewritten)
        return obj

    def _time(self, role, name, time_order, cls, kw):
        return self._register(role, cls, order=time_order, name=name, grid=self.grid,
                              time_order=time_order, space_order=self.space_order, **kw)

    def state(self, name, time_order=2, cls=TimeFunction, **kw):
        """A forward state field (circular buffer of `time_order + 1` levels; zeroed per call)."""
        return self._time("state", name, time_order, cls, kw)

    def born_state(self, name, time_order=2, cls=TimeFunction, **kw):
        """A scattered (Born) field."""
        return self._time("born", name, time_order, cls, kw)

    def adjoint_state(self, name, time_order=2, cls=TimeFunction, **kw):
        """An adjoint field (carried over between checkpointed blocks)."""
        return self._time("adjoint", name, time_order, cls, kw)

    def saved(self, f):
        """The saved variant of the state field `f` (same name; every time level kept at run
        time: `nt + 2` levels, or a block's for checkpointing)."""
        name = f.name
        if name not in self._saved:
            spec = self.specs[name]
            self._saved[name] = spec.make(save=3)
        return self._saved[name]

    def tsub(self, factor):
        """The (cached) sub-sampled time dimension: runtime subsampled fields share it."""
        if factor not in self._tsub:
            self._tsub[factor] = ConditionalDimension(name="tsub", parent=self.grid.time_dim,
                                                      factor=factor)
        return self._tsub[factor]

    def subsampled(self, name, factor, **kw):
        """A field kept every `factor`-th step (`Subsampled` storage)."""
        key = f"{name}@{factor}"
        if key not in self.specs:
            spec = Spec("sub", TimeFunction, dict(name=name, grid=self.grid, time_order=0,
                                                  space_order=self.space_order, save=2,
                                                  time_dim=self.tsub(factor), **kw))
            spec.symbol = spec.make()
            spec.components = (name,)
            self.specs[key] = spec
        return self.specs[key].symbol

    def receiver(self, name="rec"):
        """A receiver SparseTimeFunction (one per recorded component, in data order)."""
        rec = self._register("sparse", SparseTimeFunction, name=name, grid=self.grid, npoint=1,
                             nt=2)
        if name not in self.receivers:
            self.receivers.append(name)
        return rec

    def stagger(self, name, offset):
        """Declare that the sparse function `name` samples (or feeds) a field whose value at index
        `i` lives at `x_i + offset` (metres per axis, e.g. half a cell for a staggered velocity
        component stored on integer indices): the solver shifts its positions by `-offset` before
        interpolation or injection, so it acts at the physical positions given."""
        self.offsets[name] = tuple(float(o) for o in offset)

    # ------------------------------------------------------------------ queries for the solver
    def fields(self, role):
        return [s for s in list(self.specs.values()) if s.role == role]

    def spec_of(self, component):
        """The spec a (component) name belongs to."""
        for key, spec in self.specs.items():
            if component in spec.components and spec.role != "sub":
                return spec
        return None

    def multiple(self):
        """Block lengths of checkpointing are multiples of this: the circular buffers of the state
        and adjoint fields then have the same slots in local and global time indexing."""
        mods = [s.time_order + 1 for s in list(self.specs.values())
                if s.role in ("state", "adjoint")]
        return math.lcm(*mods) if mods else 1


class Leapfrog:
    """The damped second-order time step of the physics written as `m f_tt + damp f_t = r`
    (acoustic, variable density, viscoacoustic, TTI):

        D f^{n+1} = dt^2 r^n + m (2 f^n - f^{n-1}) + dt damp f^n,      D = m + dt damp,

    evaluated as `f^{n+1} = a r^n + f^n + b (f^n - f^{n-1})` with `a = dt^2 / D` and `b = m / D`:
    the same scheme, without a division per point and step and reading two coefficient arrays
    (`a`, `b`) where the quotient form reads `m` and `damp`. `a` and `b` are auxiliary Functions
    computed by `eqs` (which an operator must list first: Devito places them in a loop nest of
    their own before the time loop, one pass per apply), from `m` and the runtime `dt`.

    The adjoint of the step, written for `w = D^{-1} lambda` (the form every physics' adjoint uses,
    see acoustic/_devito.py), is the same update run backwards: `w^n = a r^{n+1} + w^{n+1} +
    b (w^{n+1} - w^{n+2})` with the transposed spatial operator in `r`. Sources enter as `a q`, an
    injected residual as `(a / dt^2) d = d / D`. Measured on S2 against the quotient form
    (`benchmarks/bench_tuning.py --configs static+quotient static`): the acoustic forward 6-12 %
    faster, the other physics' operators within the timing noise; results equal to rounding (float64
    dot and Taylor tests unchanged)."""

    def __init__(self, ctx, m):
        self.ctx, self.m = ctx, m
        self.a = ctx.auxiliary("lf_a", rewritten=True)
        self.b = ctx.auxiliary("lf_b", rewritten=True)
        dt, D = ctx.dt, m + ctx.dt * ctx.damp
        self.eqs = [Eq(self.a, dt**2 / D), Eq(self.b, m / D)]

    @property
    def inv_D(self):
        """`1 / D` (for residuals injected into the level just computed)."""
        return self.a / self.ctx.dt**2

    def step(self, f, rhs, forward=True):
        """`(next level, Eq)` of `f` one step along the sweep (`forward` or backward in time), with
        `rhs` the spatial term `r` (and sources) at the current level."""
        nxt, prv = (f.forward, f.backward) if forward else (f.backward, f.forward)
        return nxt, Eq(nxt, self.a * rhs + f + self.b * (f - prv))


def laplacian(f):
    """Devito's `f.laplace`, written with one set of weights for all axes when the grid spacing is
    the same along every axis (square or cubic cells, the usual case):

        lap f = (ndim c_0 f + sum_{k>=1} c_k sum_d (f[d + k] + f[d - k])) / h^2

    with `c_k` the centred second-derivative weights of `f.space_order` (exact rationals, the ones
    `f.laplace` uses per axis). The same symmetric operator (so its own transpose, as before), in
    fewer operations per point: Devito's form scales each axis' sum by its own `1 / h_d^2` and adds
    the centre once per axis. Measured on S2 (`benchmarks/README.md`, 2026-12-04): the acoustic
    forward 2-7 % faster (the gradient within the noise), data equal to float32 rounding (1.5e-6
    to 4e-6 of the maximum). Other spacings fall back on `f.laplace`."""
    grid = f.grid
    if len({float(h) for h in grid.spacing}) != 1:
        return f.laplace
    dims = grid.dimensions
    half = f.space_order // 2
    # exact rational weights (sympy's, as Devito's own derivatives use), c_0 .. c_half
    c = sympy.finite_diff_weights(2, list(range(-half, half + 1)), 0)[2][-1][half:]
    out = len(dims) * c[0] * f
    for k in range(1, half + 1):
        out += c[k] * sum(f.subs(d, d + k * d.spacing) + f.subs(d, d - k * d.spacing)
                          for d in dims)
    return out / dims[0].spacing**2


def mirror(ctx, nxt):
    """Zero-value surface at the free-surface depth index: `nxt = 0` there and odd mirror into the
    `nghost` ghost rows above (the zero-pressure free surface of acoustic physics)."""
    if ctx.fs is None:
        return []
    zdim, zs = ctx.grid.dimensions[-1], ctx.fs
    eqs = [Eq(nxt.subs(zdim, zs), 0)]
    eqs += [Eq(nxt.subs(zdim, zs - i), -nxt.subs(zdim, zs + i)) for i in range(1, ctx.nghost + 1)]
    return eqs


class Kernel:
    """Base of a physics' Devito equations (see the module docstring). Subclasses set `saved` and
    write `__init__(ctx)`, `forward_eqs` and `adjoint_eqs`; the parameter <-> coefficient maps
    default to the identity (coefficients named like the parameters)."""

    #: the physics' model parameter names, in order (as its `parameters`)
    parameters: tuple[str, ...] = ()
    #: state fields whose every time level a gradient keeps (`FullStorage`)
    saved: tuple[str, ...] = ()
    #: whether data have a component axis (one receiver function per recorded component)
    component_axis: bool = False
    #: number of fields `Subsampled` storage keeps
    n_subsampled: int = 1

    def __init__(self, ctx: Context):
        self.ctx = ctx

    @classmethod
    def ghost_rows(cls, space_order: int) -> int:
        """Ghost rows above a free surface (mirror rows the stencils read): `space_order / 2` for
        a centred second derivative; wider composite stencils need more."""
        return space_order // 2

    # -- host-side parameter maps (NumPy, on the padded grid) ------------------------------
    def coefficients(self, model: dict) -> dict:
        """Coefficient arrays of the Devito functions from the (padded) model parameters."""
        return dict(model)

    def linearize(self, model: dict, dmodel: dict) -> dict:
        """Perturbations of the coefficients (keys: coefficient names) for a model perturbation."""
        return dict(dmodel)

    def transpose(self, model: dict, grads: dict) -> dict:
        """Transpose of `linearize`: parameter gradients from coefficient gradients.

        `grads` holds read-only views of the imaging buffers (padded grid, the solver's dtype):
        compute in float64 (`np.asarray(g, np.float64)`) and never write into them."""
        return dict(grads)

    def needs(self, wrt: tuple) -> tuple:
        """The coefficients whose imaging is needed for gradients w.r.t. the parameters `wrt`."""
        return tuple(wrt)

    # -- equations -----------------------------------------------------------------------------
    def forward_eqs(self, source: str, save: bool, born: bool, sub: int):
        """`(equations, operator name)` of forward (or Born) modelling."""
        raise NotImplementedError

    def adjoint_eqs(self, srca: bool, ext: bool, grad: tuple, sub: int):
        """`(equations, operator name)` of the adjoint sweep."""
        raise NotImplementedError

    @staticmethod
    def zeros_like(model):
        return {k: np.zeros_like(v) for k, v in model.items()}
