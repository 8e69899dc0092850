"""Synthetic velocity models: constant, layered, camembert, smoothing, random training models.

Units: velocities in km/s, coordinates, depths, radii and smoothing lengths in metres; the squared
slowness `m = 1/vp**2` is in s^2/km^2. The last axis is depth (increasing downwards). Every function
returns a NumPy array of `grid.shape` (float32 unless `dtype` says otherwise); the models are built
on the host, once, and become JAX arrays when they enter an operator.

The presets mirror Devito's `examples/seismic/preset_models.py` (`constant`, `layers`, `circle`),
with metres instead of grid indices. `random_model` draws layered, folded and faulted models for
training sets; it is deterministic for a given seed. `marmousi` returns the Marmousi-II velocity
shipped as package data, resampled to a requested spacing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._errors import InvalidArgument, InvalidShape, InvalidType
from ._geometry import Grid

__all__ = [
    "camembert",
    "constant",
    "layered",
    "marmousi",
    "random_model",
    "smooth",
    "to_slowness2",
    "to_velocity",
]


# --------------------------------------------------------------------------------------------------
# argument checks


def _check_grid(grid) -> Grid:
    if not isinstance(grid, Grid):
        raise InvalidType(f"`grid` must be a jaxseis.Grid, got {type(grid).__name__}.")
    return grid


def _floats(value, name: str, unit: str) -> np.ndarray:
    """`np.asarray(value, float)`, with a jaxseis error naming `name` for non-numeric input."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidType(
            f"`{name}` must be a number or an array of numbers ({unit}), got "
            f"{type(value).__name__} {value!r:.60}.") from None


def _positive(value, name: str, unit: str = "km/s") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"`{name}` must be a positive number in {unit}, got {value!r}.") from None
    if not (math.isfinite(v) and v > 0):
        raise InvalidArgument(f"`{name}` must be a positive, finite number in {unit}, got {v}.")
    return v


def _coords(grid: Grid) -> list[np.ndarray]:
    """Node coordinates (m) of every axis, broadcastable against `grid.shape`."""
    out = []
    for axis in range(grid.ndim):
        shape = [1] * grid.ndim
        shape[axis] = grid.shape[axis]
        out.append(grid.coordinates(axis).reshape(shape))
    return out


def _finish(vp, grid: Grid, dtype) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(vp, grid.shape), dtype=dtype)


# --------------------------------------------------------------------------------------------------
# presets


def constant(grid: Grid, vp: float = 1.5, *, dtype=np.float32) -> np.ndarray:
    """A homogeneous model.

    **Arguments:**

    - `grid`: the `Grid` (2D or 3D).
    - `vp`: the velocity in km/s (> 0).

    **Returns:** a velocity array (km/s) of `grid.shape`.
    """
    grid = _check_grid(grid)
    vp = _positive(vp, "vp")
    return np.full(grid.shape, vp, dtype=dtype)


def layered(grid: Grid, velocities: Sequence[float] = (1.5, 2.0, 2.5, 3.0),
            depths: Sequence[float] | None = None, *, dtype=np.float32) -> np.ndarray:
    """Flat layers, one velocity per layer from the top down.

    **Arguments:**

    - `grid`: the `Grid` (2D or 3D); the last axis is depth.
    - `velocities`: the layer velocities in km/s, top layer first (all > 0).
    - `depths`: the depths in metres of the `len(velocities) - 1` interfaces between consecutive
      layers, strictly increasing (absolute coordinates, like `grid.coordinates(-1)`). A node at
      depth `z` belongs to the layer below every interface with depth `<= z`. Defaults to interfaces
      that split the depth extent of the grid into equal parts.

    **Returns:** a velocity array (km/s) of `grid.shape`.
    """
    grid = _check_grid(grid)
    vels = _floats(velocities, "velocities", "km/s").reshape(-1)
    if vels.size == 0:
        raise InvalidArgument(
            "`velocities` must hold at least one layer velocity (km/s), got none.")
    for i, v in enumerate(vels):
        _positive(v, f"velocities[{i}]")
    z0, z1 = grid.bounds[-1]
    if depths is None:
        d = z0 + (z1 - z0) * np.arange(1, vels.size) / vels.size
    else:
        d = _floats(depths, "depths", "m").reshape(-1)
        if d.size != vels.size - 1:
            raise InvalidShape(
                f"`depths` must hold len(velocities) - 1 = {vels.size - 1} interface depths (m), "
                f"got {d.size}.")
        if not np.all(np.isfinite(d)):
            raise InvalidArgument(f"`depths` must be finite (m), got {d.tolist()}.")
        if np.any(np.diff(d) <= 0):
            raise InvalidArgument(f"`depths` must be strictly increasing (m), got {d.tolist()}.")
    z = _coords(grid)[-1]
    layer = np.searchsorted(d, z, side="right")
    return _finish(vels[layer], grid, dtype)


def camembert(grid: Grid, vp_background: float = 2.5, vp_disc: float = 3.0,
              radius: float | None = None, center: Sequence[float] | None = None, *,
              dtype=np.float32) -> np.ndarray:
    """A disc (2D) or sphere (3D) anomaly in a homogeneous background: the "camembert" test model.

    **Arguments:**

    - `grid`: the `Grid` (2D or 3D).
    - `vp_background`: the background velocity in km/s (> 0).
    - `vp_disc`: the velocity inside the disc in km/s (> 0).
    - `radius`: the radius in metres (> 0); defaults to a quarter of the smallest extent of the
      grid.
    - `center`: the centre in metres (absolute coordinates, one per axis); defaults to the centre of
      the grid.

    Nodes at a distance `<= radius` from `center` get `vp_disc`, all others `vp_background`.

    **Returns:** a velocity array (km/s) of `grid.shape`.
    """
    grid = _check_grid(grid)
    vb = _positive(vp_background, "vp_background")
    vd = _positive(vp_disc, "vp_disc")
    r = 0.25 * min(grid.extent) if radius is None else _positive(radius, "radius", "metres")
    if center is None:
        c = np.array([0.5 * (lo + hi) for lo, hi in grid.bounds])
    else:
        c = _floats(center, "center", "m").reshape(-1)
        if c.size != grid.ndim:
            raise InvalidShape(
                f"`center` must have {grid.ndim} coordinates (m), one per grid axis, got {c.size}.")
        if not np.all(np.isfinite(c)):
            raise InvalidArgument(f"`center` must be finite (m), got {c.tolist()}.")
    dist2 = sum((x - ci) ** 2 for x, ci in zip(_coords(grid), c))
    return _finish(np.where(dist2 <= r * r, vd, vb), grid, dtype)


# --------------------------------------------------------------------------------------------------
# smoothing


def _gaussian_kernel(sigma_nodes: float, truncate: float = 4.0) -> np.ndarray:
    radius = max(1, int(math.ceil(truncate * sigma_nodes)))
    k = np.arange(-radius, radius + 1, dtype=float)
    w = np.exp(-0.5 * (k / sigma_nodes) ** 2)
    return w / w.sum()


def _convolve_axis(a: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    """Centred convolution with the symmetric kernel `w` along `axis`, edge-replicated borders."""
    r = (w.size - 1) // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    p = np.pad(a, pad, mode="edge")
    n = a.shape[axis]
    out = np.zeros_like(a)
    for j, wj in enumerate(w):
        out += wj * np.take(p, np.arange(j, j + n), axis=axis)
    return out


def smooth(vp, sigma_m: float | Sequence[float] = 100.0, grid=None, *,
           dtype=np.float32) -> np.ndarray:
    """Gaussian smoothing with a standard deviation given in metres (a starting model for FWI).

    Separable convolution with a normalised Gaussian truncated at 4 sigma; the borders are extended
    by replicating the edge values, so a constant model stays exactly constant and the mean does not
    drift near the edges. Pure NumPy, computed in float64.

    **Arguments:**

    - `vp`: the array to smooth (any quantity; usually velocity in km/s), 2D or 3D.
    - `sigma_m`: the standard deviation in metres (>= 0), one value for every axis or one per axis
      (e.g. `(200.0, 50.0)` smooths more laterally than in depth). `0` leaves that axis untouched.
    - `grid`: a `Grid` of `vp.shape`, or the node spacing in metres (a scalar or one per axis). It
      is required because `sigma_m` is in metres.

    **Returns:** a smoothed copy of `vp` (the input is not modified).
    """
    a = _floats(vp, "vp", "km/s")
    if a.ndim not in (2, 3):
        raise InvalidShape(f"`vp` must be a 2D or 3D array, got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise InvalidArgument("`vp` must be finite; it contains NaN or inf.")
    if grid is None:
        raise InvalidArgument(
            "`grid` is required: pass the jaxseis.Grid of `vp` or its spacing in metres, because "
            "`sigma_m` is in metres.")
    if isinstance(grid, Grid):
        if grid.shape != a.shape:
            raise InvalidShape(f"`vp` has shape {a.shape} but `grid` has shape {grid.shape}.")
        spacing = np.asarray(grid.spacing, dtype=float)
    else:
        spacing = _floats(grid, "grid", "spacing in m").reshape(-1)
        if spacing.size == 1:
            spacing = np.repeat(spacing, a.ndim)
        if spacing.size != a.ndim or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise InvalidArgument(
                f"`grid` as a spacing must be {a.ndim} positive numbers (m), got "
                f"{np.asarray(grid).tolist()}.")
    sig = _floats(sigma_m, "sigma_m", "m").reshape(-1)
    if sig.size == 1:
        sig = np.repeat(sig, a.ndim)
    if sig.size != a.ndim:
        raise InvalidShape(
            f"`sigma_m` must be a scalar or have {a.ndim} entries (m), got {sig.size}.")
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise InvalidArgument(f"`sigma_m` must be >= 0 and finite (m), got {sig.tolist()}.")
    out = a.copy()
    for axis in range(a.ndim):
        s = sig[axis] / spacing[axis]
        if s > 0:
            out = _convolve_axis(out, _gaussian_kernel(s), axis)
    return out.astype(dtype)


# --------------------------------------------------------------------------------------------------
# random training models


def _make_rng(key_or_seed) -> np.random.Generator:
    if isinstance(key_or_seed, np.random.Generator):
        return key_or_seed
    if isinstance(key_or_seed, (bool, np.bool_)):
        raise InvalidType(
            "`key_or_seed` must be an int seed, a numpy Generator or a JAX PRNG key, got bool.")
    if isinstance(key_or_seed, (int, np.integer)):
        if key_or_seed < 0:
            raise InvalidArgument(
                f"`key_or_seed` must be a non-negative integer seed, got {key_or_seed}.")
        return np.random.default_rng(int(key_or_seed))
    # A JAX PRNG key: typed (jax.random.key) or raw uint32 (jax.random.PRNGKey).
    try:
        import jax

        data = key_or_seed
        if jax.dtypes.issubdtype(getattr(key_or_seed, "dtype", None), jax.dtypes.prng_key):
            data = jax.random.key_data(key_or_seed)
        arr = np.asarray(data)
    except Exception:  # noqa: BLE001 - anything that is not a key gets the message below
        arr = None
    if arr is None or arr.dtype.kind not in "ui" or arr.ndim != 1:
        raise InvalidType(
            "`key_or_seed` must be an int seed, a numpy Generator or a single JAX PRNG key, got "
            f"{type(key_or_seed).__name__}.")
    return np.random.default_rng([int(v) for v in arr.astype(np.uint64)])


def _n_layers_range(n_layers) -> tuple[int, int]:
    if isinstance(n_layers, (int, np.integer)):
        lo = hi = int(n_layers)
    else:
        try:
            lo, hi = (int(v) for v in n_layers)
        except (TypeError, ValueError):
            raise InvalidArgument(
                "`n_layers` must be an int or a (min, max) pair of ints, got "
                f"{n_layers!r}.") from None
    if lo < 1 or hi < lo:
        raise InvalidArgument(f"`n_layers` must satisfy 1 <= min <= max, got ({lo}, {hi}).")
    return lo, hi


def random_model(key_or_seed, grid: Grid, vmin: float = 1.5, vmax: float = 3.5,
                 n_layers: int | tuple[int, int] = (3, 8), fold: bool = True, fault: bool = True, *,
                 dtype=np.float32) -> np.ndarray:
    """A random layered model, optionally folded and faulted, for training sets.

    The model is drawn with NumPy from `key_or_seed`, so the same seed always gives the same model
    (and different seeds different models). Construction:

    1. `n` layers (`n` uniform in `n_layers`); velocities uniform in `[vmin, vmax]`, sorted to
       increase with depth, then with probability 1/3 two adjacent layers are swapped (a velocity
       inversion).
    2. `n - 1` interface depths uniform in the upper 5 to 95 % of the depth extent, at least a grid
       cell apart.
    3. `fold`: every interface is displaced by the same sinusoid `A sin(2 pi (k . h) + phi)` of the
       horizontal coordinates `h` (amplitude up to 10 % of the depth extent, wavelength 0.5 to 2
       times the horizontal extent, random direction in 3D).
    4. `fault`: a plane through a random point of the model, dipping 55 to 85 degrees; the structure
       on its hanging-wall side is moved vertically by a throw of 5 to 20 % of the depth extent
       (either sign).

    The model is piecewise constant, so every value lies in `[vmin, vmax]`.

    **Arguments:**

    - `key_or_seed`: an int seed, a `numpy.random.Generator` (advanced by the call), or a JAX PRNG
      key.
    - `grid`: the `Grid` (2D or 3D); the last axis is depth.
    - `vmin`, `vmax`: velocity bounds in km/s, `0 < vmin <= vmax`.
    - `n_layers`: the number of layers, an int or an inclusive `(min, max)` range.
    - `fold`, `fault`: whether to fold and fault the layers.

    **Returns:** a velocity array (km/s) of `grid.shape`.
    """
    grid = _check_grid(grid)
    vmin = _positive(vmin, "vmin")
    vmax = _positive(vmax, "vmax")
    if vmax < vmin:
        raise InvalidArgument(f"`vmax` must be >= `vmin` (km/s), got vmin={vmin} and vmax={vmax}.")
    lo, hi = _n_layers_range(n_layers)
    rng = _make_rng(key_or_seed)

    coords = _coords(grid)
    horiz, z = coords[:-1], coords[-1]
    z0, zext = grid.bounds[-1][0], grid.extent[-1]
    hext = [max(e, grid.spacing[i]) for i, e in enumerate(grid.extent[:-1])]
    hmid = [0.5 * (a + b) for a, b in grid.bounds[:-1]]

    n = int(rng.integers(lo, hi + 1))
    vel = np.sort(rng.uniform(vmin, vmax, size=n))
    if n > 1 and rng.random() < 1.0 / 3.0:
        i = int(rng.integers(0, n - 1))
        vel[i], vel[i + 1] = vel[i + 1], vel[i]
    depths = np.sort(z0 + zext * rng.uniform(0.05, 0.95, size=n - 1))
    depths = depths + grid.spacing[-1] * np.arange(n - 1)  # keep consecutive interfaces apart

    # Vertical shift of the interfaces at each horizontal position (folding).
    shift = 0.0
    if fold:
        amp = rng.uniform(0.02, 0.10) * zext
        direction = rng.normal(size=len(horiz))
        direction /= np.linalg.norm(direction)
        wavelength = rng.uniform(0.5, 2.0) * float(np.dot(np.abs(direction), hext))
        phase = rng.uniform(0.0, 2.0 * np.pi)
        proj = sum(d * (h - m) for d, h, m in zip(direction, horiz, hmid))
        shift = amp * np.sin(2.0 * np.pi * proj / wavelength + phase)

    # Depth at which to read the layer stack: z, moved by the throw on the hanging wall.
    zread = z + 0.0 * sum(horiz)
    if fault:
        dip = np.deg2rad(rng.uniform(55.0, 85.0))
        strike_normal = rng.normal(size=len(horiz))
        strike_normal /= np.linalg.norm(strike_normal)
        point = [rng.uniform(0.3, 0.7) * e + a for e, (a, _) in zip(hext, grid.bounds[:-1])]
        zp = z0 + rng.uniform(0.3, 0.7) * zext
        # Plane through (point, zp): horizontal distance along the normal, rising with tan(dip).
        dist = sum(d * (h - p) for d, h, p in zip(strike_normal, horiz, point))
        side = (z - zp) - np.tan(dip) * dist
        throw = rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.20) * zext
        zread = np.where(side > 0, z - throw, z)

    # Layer index: number of (folded) interfaces above the read depth.
    layer = np.zeros(np.broadcast_shapes(np.shape(zread), np.shape(shift)), dtype=np.int64)
    for d in depths:
        layer += (zread >= d + shift).astype(np.int64)
    return _finish(vel[layer], grid, dtype)


# --------------------------------------------------------------------------------------------------
# conversions


def to_slowness2(vp, *, dtype=np.float32) -> np.ndarray:
    """Squared slowness `m = 1 / vp**2` in s^2/km^2 from a velocity in km/s (all values > 0)."""
    a = _floats(vp, "vp", "km/s")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise InvalidArgument(
            f"`vp` must be positive and finite (km/s), got values in [{np.nanmin(a)}, "
            f"{np.nanmax(a)}].")
    return (1.0 / a**2).astype(dtype)


def to_velocity(m, *, dtype=np.float32) -> np.ndarray:
    """Velocity `vp = 1 / sqrt(m)` in km/s from a squared slowness in s^2/km^2 (all values > 0)."""
    a = _floats(m, "m", "s^2/km^2")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise InvalidArgument(
            f"`m` must be positive and finite (s^2/km^2), got values in [{np.nanmin(a)}, "
            f"{np.nanmax(a)}].")
    return (1.0 / np.sqrt(a)).astype(dtype)


# --------------------------------------------------------------------------------------------------
# Marmousi-II (package data)

_MARMOUSI_FILE = "marmousi2_vp.npz"
_MARMOUSI_SPACING = 7.5


def _marmousi_raw() -> np.ndarray:
    """The shipped Marmousi-II velocity at 7.5 m, float64 km/s, `[x, z]` (1601, 401)."""
    from importlib import resources

    with resources.files("jaxseis").joinpath("data", _MARMOUSI_FILE).open("rb") as fh:
        with np.load(fh) as z:
            return z["vp_m_per_s"].astype(float) / 1000.0


def _interp_axis(a: np.ndarray, x_old: np.ndarray, x_new: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of `a` along `axis` from nodes `x_old` to `x_new` (inside them)."""
    i = np.clip(np.searchsorted(x_old, x_new, side="right") - 1, 0, x_old.size - 2)
    w = (x_new - x_old[i]) / (x_old[i + 1] - x_old[i])
    shape = [1] * a.ndim
    shape[axis] = x_new.size
    w = w.reshape(shape)
    return np.take(a, i, axis=axis) * (1.0 - w) + np.take(a, i + 1, axis=axis) * w


def marmousi(spacing: float | Sequence[float] = 30.0, *, antialias: bool = True,
             dtype=np.float32) -> tuple[np.ndarray, Grid]:
    """The Marmousi-II P-wave velocity model (2D, 12 km x 3 km), shipped with jaxseis.

    **Arguments:**

    - `spacing`: the node spacing in metres of the returned model, one value for both axes or
      `(dx, dz)`; each must be >= 7.5 m, the sampling of the shipped copy (jaxseis does not invent
      detail by interpolating to a finer grid: a finer spacing raises `jaxseis.InvalidArgument`).
    - `antialias`: when coarser than 7.5 m, smooth each axis first with a Gaussian of standard
      deviation `0.5 * sqrt(h**2 - 7.5**2)` metres (`h` the new spacing along that axis; the
      variance a box average over one new cell adds beyond the original one), then interpolate
      linearly at the new nodes. `False` interpolates the original samples without smoothing
      (aliased when much coarser).

    **Returns:** `(vp, grid)`: `vp` in km/s, `[x, z]`, of `grid.shape`; `grid` a `Grid` with origin
    `(0, 0)`, `floor(12000 / dx) + 1` by `floor(3000 / dz) + 1` nodes (401 x 101 at the default
    30 m).
    Values lie in 1.028 to 4.7 km/s; the top of the model is water (1.5 km/s, about 200 m deep), the
    depth axis starts at the sea surface.

    **Provenance:** the Marmousi-II model (Allied Geophysics Laboratory, University of Houston) as
    the 1601 x 401, 7.5 m raw file `vp_marmousi_bi` of the devitocodes/data repository, which
    Devito's examples read; shipped in `jaxseis/data/marmousi2_vp.npz` rounded to 1 m/s. Copyright
    and terms (free for research and publication): `jaxseis/data/marmousi_copyright.txt`.
    """
    h = _floats(spacing, "spacing", "m").reshape(-1)
    if h.size == 1:
        h = np.repeat(h, 2)
    if h.size != 2:
        raise InvalidShape(
            f"`spacing` must be one number or a (dx, dz) pair in metres, got {h.size} values.")
    if not np.all(np.isfinite(h)) or np.any(h < _MARMOUSI_SPACING):
        raise InvalidArgument(
            f"`spacing` must be >= {_MARMOUSI_SPACING} m (the sampling of the shipped Marmousi-II "
            f"copy; a finer grid would only interpolate it), got {h.tolist()}.")
    vp = _marmousi_raw()
    h0 = _MARMOUSI_SPACING
    if antialias and np.any(h > h0):
        sigma = 0.5 * np.sqrt(np.maximum(h**2 - h0**2, 0.0))
        vp = smooth(vp, sigma, (h0, h0), dtype=np.float64)
    shape = []
    for axis in range(2):
        x_old = h0 * np.arange(vp.shape[axis])
        n = int(np.floor(x_old[-1] / h[axis] + 1e-9)) + 1
        shape.append(n)
        if h[axis] != h0:
            vp = _interp_axis(vp, x_old, h[axis] * np.arange(n), axis)
    grid = Grid(shape=tuple(shape), spacing=tuple(float(v) for v in h))
    return np.ascontiguousarray(vp, dtype=dtype), grid
