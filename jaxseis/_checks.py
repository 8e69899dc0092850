"""Value checks on concrete (NumPy) inputs, shared by eager calls and host callbacks.

Shape checks happen at trace time in `_acoustic.py`; these need values: a finite positive model,
the CFL limit for its maximum velocity, positions inside the physical domain, and the dispersion
warning. Each raises a `ValueError` subclass whose message opens with the reason and names the argument.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._errors import DispersionWarning, InvalidArgument, UnstableTimeStep
from ._geometry import critical_dt

_warned: set = set()


def check_model(op, m, name="m"):
    """`m` (s^2/km^2) finite and positive; `op.time.dt` stable for its maximum velocity."""
    m = np.asarray(m)
    if not np.all(np.isfinite(m)):
        bad = int(np.size(m) - np.count_nonzero(np.isfinite(m)))
        raise InvalidArgument(f"`{name}` must be finite: it has {bad} NaN or infinite values.")
    mmin = float(m.min())
    if mmin <= 0:
        raise InvalidArgument(
            f"`{name}` (squared slowness, s^2/km^2) must be positive everywhere, got minimum {mmin:g}.")
    vmax = 1.0 / np.sqrt(mmin)
    dtc = critical_dt(op.grid, vmax, op.space_order)
    if op.time.dt > dtc:
        raise UnstableTimeStep(
            f"`dt` = {op.time.dt:g} ms is above the stability limit for `{name}`: the maximum velocity "
            f"{vmax:.4g} km/s allows dt <= {dtc:.6g} ms (critical_dt with space_order="
            f"{op.space_order}). Use a smaller TimeAxis dt, or a model with lower maximum velocity.")


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


def check_finite(x, name):
    if not np.all(np.isfinite(np.asarray(x))):
        raise InvalidArgument(f"`{name}` must be finite: it contains NaN or infinite values.")


def peak_frequency(wavelet, dt):
    """Frequency (kHz) of the largest amplitude spectrum value of `wavelet` (time samples first)."""
    w = np.asarray(wavelet, dtype=np.float64).reshape(len(wavelet), -1)
    spec = np.abs(np.fft.rfft(w, axis=0)).sum(axis=1)
    if not np.any(spec > 0):
        return 0.0
    return float(np.fft.rfftfreq(w.shape[0], d=dt)[int(np.argmax(spec))])


def warn_dispersion(op, m, wavelet):
    """Warn (once per configuration) below about 4 grid points per minimum wavelength at the peak
    frequency of `wavelet`."""
    f = peak_frequency(wavelet, op.time.dt)
    if f <= 0:
        return
    vmin = 1.0 / np.sqrt(float(np.max(m)))
    ppw = vmin / f / max(op.grid.spacing)
    key = (op, round(ppw, 1))
    if ppw < 4 and key not in _warned:
        _warned.add(key)
        warnings.warn(
            f"only {ppw:.2f} grid points per minimum wavelength (vmin {vmin:.3g} km/s, peak frequency "
            f"{f:.3g} kHz, spacing {max(op.grid.spacing):g} m): expect numerical dispersion; use a finer "
            f"grid or a lower frequency (about 4 or more points per wavelength).",
            DispersionWarning, stacklevel=3)
