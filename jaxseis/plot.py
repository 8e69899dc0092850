"""Matplotlib figures for models, shot records, images and loss curves, with units on every axis.

Every function returns the `matplotlib.figure.Figure` it drew on and accepts an existing `ax` to
draw into (then the figure is `ax.figure`). Nothing calls `plt.show()`: in a notebook the returned
figure is displayed, in a script call `fig.savefig(...)`; works with the non-interactive Agg
backend.

Conventions: x (m) runs left to right and depth (m) downwards; time (ms) runs downwards in shot
records; velocities in km/s, squared slowness in s^2/km^2.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ._errors import InvalidArgument, InvalidShape, InvalidType
from ._geometry import Grid, TimeAxis

__all__ = ["plot_image", "plot_loss", "plot_model", "plot_models", "plot_shot"]

_MODEL_KINDS = {
    "velocity": ("Velocity (km/s)", "viridis"),
    "slowness2": ("Squared slowness (s$^2$/km$^2$)", "viridis_r"),
}


def _new_axes(ax, ncols=1, figsize=None):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(1, ncols, figsize=figsize, constrained_layout=True, squeeze=False)
    return fig, ax[0, 0] if ncols == 1 else ax[0]


def _section_axes(grid: Grid, shape: tuple[int, ...]) -> tuple[int, int]:
    """Which grid axes a 2D array of `shape` spans: (x, depth) of a 2D grid, or an x-z section."""
    if not isinstance(grid, Grid):
        raise InvalidType(f"`grid` must be a jaxseis.Grid, got {type(grid).__name__}.")
    if len(shape) != 2:
        raise InvalidShape(
            f"the array to plot must be 2D (nx, nz), got shape {shape}; for a 3D model pass a "
            "section, e.g. `vp[:, iy, :]`.")
    axes = (0, grid.ndim - 1)
    want = tuple(grid.shape[a] for a in axes)
    if shape != want:
        raise InvalidShape(
            f"the array to plot has shape {shape} but `grid` gives {want} (x, depth).")
    return axes


def _extent(grid: Grid, axes) -> list[float]:
    """imshow extent with nodes at pixel centres: [x_left, x_right, z_bottom, z_top]."""
    ax, az = axes
    x = grid.coordinates(ax)
    z = grid.coordinates(az)
    hx, hz = grid.spacing[ax] / 2, grid.spacing[az] / 2
    return [x[0] - hx, x[-1] + hx, z[-1] + hz, z[0] - hz]


def _markers(ax, src, rec):
    if rec is not None:
        r = np.atleast_2d(np.asarray(rec, dtype=float))
        ax.plot(r[:, 0], r[:, -1], "v", color="w", markeredgecolor="k", markersize=4, ls="none",
                label="receivers")
    if src is not None:
        s = np.atleast_2d(np.asarray(src, dtype=float))
        ax.plot(s[:, 0], s[:, -1], "*", color="r", markeredgecolor="k", markersize=11, ls="none",
                label="sources")


def _draw_section(ax, array, grid, cmap, vmin, vmax, label, title, src, rec, colorbar, aspect):
    axes = _section_axes(grid, np.shape(array))
    extent = _extent(grid, axes)
    im = ax.imshow(np.asarray(array, dtype=float).T, extent=extent, origin="upper", cmap=cmap,
                   vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
    _markers(ax, src, rec)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x (m)")
    ax.set_ylabel("Depth (m)")
    if title is not None:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label=label, shrink=0.9)
    return im


def plot_model(vp_or_m, grid: Grid, ax=None, title: str | None = None, kind: str = "velocity", *,
               src=None, rec=None, cmap: str | None = None, vmin: float | None = None,
               vmax: float | None = None, colorbar: bool = True, aspect="equal"):
    """Plot a 2D model: x (m) across, depth (m) down, with a colour bar in physical units.

    **Arguments:**

    - `vp_or_m`: a `(nx, nz)` array: velocity (km/s) if `kind="velocity"`, squared slowness
      (s^2/km^2) if `kind="slowness2"`. The values are shown as given; to show an `m` as velocity,
      pass `jaxseis.models.to_velocity(m)`. With a 3D `grid`, an x-z section `(nx, nz)`.
    - `grid`: the `Grid` giving coordinates (m).
    - `ax`: an existing Axes to draw into; a new figure is made if `None`.
    - `title`: the axes title.
    - `kind`: `"velocity"` or `"slowness2"`; sets the colour bar label and default colour map.
    - `src`, `rec`: optional source (red stars) and receiver (triangles) positions `(n, ndim)` in m.
    - `cmap`, `vmin`, `vmax`: colour map and limits (default: the data range).
    - `colorbar`: draw a colour bar.
    - `aspect`: `"equal"` (true proportions) or `"auto"`.

    **Returns:** the `Figure`.
    """
    if kind not in _MODEL_KINDS:
        raise InvalidArgument(f"`kind` must be one of {sorted(_MODEL_KINDS)}, got {kind!r}.")
    label, default_cmap = _MODEL_KINDS[kind]
    fig, ax = _new_axes(ax)
    _draw_section(ax, vp_or_m, grid, cmap or default_cmap, vmin, vmax, label, title, src, rec,
                  colorbar, aspect)
    return fig


def plot_image(image, grid: Grid, ax=None, title: str | None = None, *, clip: float = 99.0,
               cmap: str = "gray", label: str = "Amplitude", src=None, rec=None,
               colorbar: bool = True, aspect="equal"):
    """Plot an RTM image, a gradient or a model perturbation with colour limits symmetric about 0.

    **Arguments:**

    - `image`: a `(nx, nz)` array (x, depth).
    - `grid`: the `Grid` giving coordinates (m).
    - `ax`, `title`: as in `plot_model`.
    - `clip`: the colour limits are `+-` this percentile (0-100] of `|image|`; strong near-source
      artefacts would otherwise wash out the image.
    - `cmap`: colour map, e.g. `"gray"` or `"seismic"`.
    - `label`: the colour bar label (an image is in arbitrary units; give them if known).
    - `src`, `rec`, `colorbar`, `aspect`: as in `plot_model`.

    **Returns:** the `Figure`.
    """
    a = np.asarray(image, dtype=float)
    vmax = _clip_value(a, clip)
    fig, ax = _new_axes(ax)
    _draw_section(ax, a, grid, cmap, -vmax, vmax, label, title, src, rec, colorbar, aspect)
    return fig


def _clip_value(a: np.ndarray, clip: float) -> float:
    clip = float(clip)
    if not 0.0 < clip <= 100.0:
        raise InvalidArgument(f"`clip` must be a percentile in (0, 100], got {clip}.")
    finite = np.abs(a[np.isfinite(a)])
    v = float(np.percentile(finite, clip)) if finite.size else 0.0
    if v == 0.0:
        v = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return v


def plot_shot(data, time, rec=None, ax=None, title: str | None = None, *, src=None,
              clip: float = 99.0, cmap: str = "gray", colorbar: bool = False, aspect="auto"):
    """Plot one shot record: receivers across, time (ms) down, symmetric clipped colour limits.

    **Arguments:**

    - `data`: a `(nt, nrec)` record.
    - `time`: its `TimeAxis` (ms), or the `(nt,)` sample times in ms.
    - `rec`: receiver positions `(nrec, ndim)` in m; the horizontal axis is then receiver x (m), or
      the offset `x_rec - x_src` (m) if `src` is also given. Without `rec`, the trace index.
    - `ax`, `title`: as in `plot_model`.
    - `src`: the source position `(ndim,)` or `(1, ndim)` in m (for offsets).
    - `clip`: colour limits are `+-` this percentile of `|data|` (`100` shows the full range).
    - `cmap`: `"gray"` (default) or `"seismic"`, or any matplotlib colour map.
    - `colorbar`: draw an amplitude colour bar.

    **Returns:** the `Figure`.
    """
    d = np.asarray(data, dtype=float)
    if d.ndim != 2:
        raise InvalidShape(f"`data` must be one record (nt, nrec), got shape {d.shape}; "
                           "for a batch pass `data[i]`.")
    nt, nrec = d.shape
    t = time.values if isinstance(time, TimeAxis) else np.asarray(time, dtype=float).reshape(-1)
    if t.size != nt:
        raise InvalidShape(f"`time` has {t.size} samples but `data` has nt={nt}.")
    if rec is None:
        x, xlabel = np.arange(nrec, dtype=float), "Trace index"
    else:
        r = np.asarray(rec, dtype=float)
        if r.ndim != 2 or r.shape[0] != nrec:
            raise InvalidShape(f"`rec` must have shape (nrec={nrec}, ndim), got {r.shape}.")
        x, xlabel = r[:, 0], "Receiver x (m)"
        if src is not None:
            s = np.asarray(src, dtype=float).reshape(-1, r.shape[1])
            if s.shape[0] != 1:
                raise InvalidShape(
                    f"`src` must be one position (ndim,) or (1, ndim), got {np.shape(src)}.")
            x, xlabel = x - s[0, 0], "Offset (m)"
    vmax = _clip_value(d, clip)
    fig, ax = _new_axes(ax)
    order = np.argsort(x, kind="stable")
    xs, ds = x[order], d[:, order]
    step = np.diff(xs)
    uniform = nrec == 1 or (step.min() > 0 and np.allclose(step, step[0], rtol=1e-6))
    if uniform:
        hx = step[0] / 2 if nrec > 1 else 0.5
        ht = (t[1] - t[0]) / 2 if nt > 1 else 0.5
        im = ax.imshow(ds, extent=[xs[0] - hx, xs[-1] + hx, t[-1] + ht, t[0] - ht], origin="upper",
                       cmap=cmap, vmin=-vmax, vmax=vmax, aspect=aspect, interpolation="nearest")
    else:
        im = ax.pcolormesh(xs, t, ds, shading="nearest", cmap=cmap, vmin=-vmax, vmax=vmax)
        ax.set_ylim(t[-1], t[0])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Time (ms)")
    if title is not None:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(im, ax=ax, label="Amplitude")
    return fig


def plot_loss(history, log: bool = True, ax=None, title: str | None = None, *,
              normalize: bool = False, xlabel: str = "Iteration", ylabel: str = "Loss"):
    """Plot a loss history.

    **Arguments:**

    - `history`: a sequence of loss values, or a mapping `{label: sequence}` for several curves.
    - `log`: logarithmic y axis; falls back to linear (with a warning) if a value is not positive.
    - `ax`, `title`: as in `plot_model`.
    - `normalize`: divide each curve by its first value (the label then says "relative").
    - `xlabel`, `ylabel`: axis labels.

    **Returns:** the `Figure`.
    """
    curves = dict(history) if isinstance(history, Mapping) else {None: history}
    arrays = {}
    for name, h in curves.items():
        a = np.asarray(h, dtype=float).reshape(-1)
        if a.size == 0:
            raise InvalidArgument(f"`history`{'' if name is None else f'[{name!r}]'} is empty.")
        if normalize:
            if a[0] == 0:
                raise InvalidArgument("`normalize=True` needs a nonzero first loss value.")
            a = a / a[0]
        arrays[name] = a
    fig, ax = _new_axes(ax)
    for name, a in arrays.items():
        ax.plot(np.arange(a.size), a, marker="." if a.size < 50 else None, label=name)
    values = np.concatenate(list(arrays.values()))
    if log:
        if np.all(values[np.isfinite(values)] > 0):
            ax.set_yscale("log")
        else:
            warnings.warn(
                "plot_loss: `history` has values <= 0; using a linear y axis.", stacklevel=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (relative)" if normalize else ylabel)
    if any(name is not None for name in arrays):
        ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    if title is not None:
        ax.set_title(title)
    return fig


def plot_models(models: Sequence[tuple[str, np.ndarray]], grid: Grid, axes=None, *,
                kind: str = "velocity", src=None, rec=None, cmap: str | None = None,
                vmin: float | None = None, vmax: float | None = None, aspect="equal"):
    """Plot several models side by side with shared colour limits and one colour bar.

    **Arguments:**

    - `models`: a sequence of `(title, array)`, e.g. `[("true", vp), ("initial", vp0), ("FWI",
      vp1)]`, arrays as in `plot_model`; a mapping `{title: array}` also works.
    - `grid`: the `Grid` giving coordinates (m).
    - `axes`: existing Axes, one per model; a new figure is made if `None`.
    - `kind`, `src`, `rec`, `cmap`, `aspect`: as in `plot_model`.
    - `vmin`, `vmax`: shared colour limits (default: the range over all models).

    **Returns:** the `Figure`.
    """
    if kind not in _MODEL_KINDS:
        raise InvalidArgument(f"`kind` must be one of {sorted(_MODEL_KINDS)}, got {kind!r}.")
    items = list(models.items()) if isinstance(models, Mapping) else list(models)
    if not items:
        raise InvalidArgument("`models` must hold at least one (title, array) pair.")
    try:
        titles = [str(t) for t, _ in items]
        arrays = [np.asarray(a, dtype=float) for _, a in items]
    except (TypeError, ValueError):
        raise InvalidArgument("`models` must be a sequence of (title, array) pairs.") from None
    for a in arrays:
        _section_axes(grid, a.shape)
    lo = min(float(np.nanmin(a)) for a in arrays) if vmin is None else vmin
    hi = max(float(np.nanmax(a)) for a in arrays) if vmax is None else vmax
    label, default_cmap = _MODEL_KINDS[kind]
    if axes is None:
        ratio = grid.extent[0] / max(grid.extent[-1], 1e-9)
        width = 3.2 * len(items) * min(max(ratio, 0.6), 2.5) + 1.0
        fig, axes = _new_axes(None, ncols=len(items), figsize=(width, 3.4))
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(items):
            raise InvalidArgument(
                f"`axes` must hold one Axes per model ({len(items)}), got {len(axes)}.")
        fig = axes[0].figure
    ims = []
    for ax, title, a in zip(axes, titles, arrays):
        ims.append(_draw_section(ax, a, grid, cmap or default_cmap, lo, hi, label, title, src, rec,
                                 False, aspect))
    for ax in list(axes)[1:]:
        ax.set_ylabel("")
    fig.colorbar(ims[-1], ax=list(axes), label=label, shrink=0.9)
    return fig
