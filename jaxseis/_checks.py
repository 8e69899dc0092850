"""Value checks on concrete (NumPy) inputs, shared by eager calls and host callbacks.

Shape checks happen at trace time in `_operator.py`; these need values: every model parameter
finite and in its valid range (`Parameter`), the physics' own constraints, the stability limit for
the model's fastest speed, positions inside the physical domain, and the dispersion warning. Each raises a `ValueError` subclass whose message opens with the reason and names the argument.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._errors import DispersionWarning, InvalidArgument, UnstableTimeStep

_warned: set = set()


def stable_dt_message(op, label, vmax, dtc):
    """The text of an unstable-dt error."""
    return (f"`dt` = {op.time.dt:g} ms is above the stability limit for `{label}`: the "
            f"{op.speed_name} {vmax:.4g} km/s allows dt <= {dtc:.6g} ms (critical_dt with "
            f"space_order={op.space_order}). Use a smaller TimeAxis dt, or a model with a lower "
            f"{op.speed_name}.")


def check_model(op, model: dict, label: str):
    """Every parameter of `model` (a NumPy dict) finite and in its valid range, the physics'
    cross-parameter constraints, and `op.time.dt` stable for the model's fastest speed.

    `label` is the model argument's name (`m`/`m0` for Acoustic, `model`/`model0` otherwise)."""
    for p in op.parameters:
        x = np.asarray(model[p.name])
        if p.holds(x):  # the usual case: two passes over the array, no temporaries
            continue
        name, where = (label, "") if op.single_array else (p.name, f" in `{label}`")
        nonfinite = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        if nonfinite:
            raise InvalidArgument(
                f"`{name}`{where} must be finite: it has {nonfinite} NaN or infinite values.")
        bad = p.outside(x, np)
        if np.any(bad):
            vals = x[bad]
            lo_side = p.lower is not None and bool(np.any(
                vals <= p.lower if p.lower_open else vals < p.lower))
            worst = float(vals.min() if lo_side else vals.max())
            if p.lower == 0 and p.lower_open and p.upper is None:
                want = "positive everywhere"
            else:
                want = f"{p.valid_range} everywhere"
            raise InvalidArgument(
                f"`{name}`{where} ({p.meaning}, {p.unit}) must be {want}: {int(bad.sum())} of "
                f"{bad.size} cells are not, got {'minimum' if lo_side else 'maximum'} {worst:g}.")
    op.constraints(model, label)
    if op._certainly_stable(model, op.time.dt):
        return
    dtc = op.critical_dt(model)
    if op.time.dt > dtc:
        raise UnstableTimeStep(stable_dt_message(op, label, float(op.max_speed(model)), dtc))


def check_positions(op, x, name):
    """Points `(npoint, ndim)` in metres inside the physical domain `op.grid.bounds`."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InvalidArgument(f"`{name}` positions must be finite (metres).")
    for axis, (lo, hi) in enumerate(op.grid.bounds):
        tol = 1e-6 * max(1.0, abs(hi - lo))
        out = (x[:, axis] < lo - tol) | (x[:, axis] > hi + tol)
        if np.any(out):
            i = int(np.flatnonzero(out)[0])
            raise InvalidArgument(
                f"`{name}` position {i} is outside the physical domain: {x[i].tolist()} m, but axis "
                f"{axis} spans [{lo:g}, {hi:g}] m ({int(out.sum())} of {len(x)} points are outside).")


def _all_finite(x):
    """Whether every value of `x` is finite, from its extrema (NaN propagates into `min`)."""
    x = np.asarray(x)
    if x.size == 0:
        return True
    if not np.issubdtype(x.dtype, np.inexact):
        return True
    if np.iscomplexobj(x):
        return bool(np.all(np.isfinite(x)))
    return bool(np.isfinite(np.min(x)) and np.isfinite(np.max(x)))


def check_finite(x, name):
    if not _all_finite(x):
        raise InvalidArgument(f"`{name}` must be finite: it contains NaN or infinite values.")


def peak_frequency(wavelet, dt):
    """Frequency (kHz) of the largest amplitude spectrum value of `wavelet` (time samples first)."""
    w = np.asarray(wavelet, dtype=np.float64).reshape(len(wavelet), -1)
    spec = np.abs(np.fft.rfft(w, axis=0)).sum(axis=1)
    if not np.any(spec > 0):
        return 0.0
    return float(np.fft.rfftfreq(w.shape[0], d=dt)[int(np.argmax(spec))])


def warn_dispersion(op, model, wavelet):
    """Warn (once per configuration) below about 4 grid points per minimum wavelength at the peak
    frequency of `wavelet` (physics without a `min_speed` are not checked)."""
    f = peak_frequency(wavelet, op.time.dt)
    vmin = op.min_speed(model)
    if f <= 0 or vmin is None:
        return
    vmin = float(vmin)
    ppw = vmin / f / max(op.grid.spacing)
    key = (op, round(ppw, 1))
    if ppw < 4 and key not in _warned:
        _warned.add(key)
        warnings.warn(
            f"only {ppw:.2f} grid points per minimum wavelength (vmin {vmin:.3g} km/s, peak frequency "
            f"{f:.3g} kHz, spacing {max(op.grid.spacing):g} m): expect numerical dispersion; use a finer "
            f"grid or a lower frequency (about 4 or more points per wavelength).",
            DispersionWarning, stacklevel=3)


def check_unperturbed(op, name, value):
    """A nonzero Born perturbation of a parameter without derivatives is refused by name."""
    if np.any(value != 0):
        raise NotImplementedError(
            f"{type(op).__name__}.born does not implement perturbations of `{name}` "
            f"(dmodel['{name}'] must be zero; only {', '.join(map(repr, op.differentiable))} have "
            f"derivatives).")
