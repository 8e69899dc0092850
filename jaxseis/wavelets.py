"""Source wavelets (time in ms, frequency in kHz)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._errors import InvalidArgument, InvalidType
from ._geometry import TimeAxis

__all__ = ["ricker"]


def ricker(time: TimeAxis, f0: float, t_peak: float | None = None):
    """Ricker wavelet `(1 - 2 a) exp(-a)`, `a = (pi f0 (t - t_peak))^2`, with unit peak at `t_peak`.

    **Arguments:**

    - `time`: the `TimeAxis` (ms) whose samples the wavelet is evaluated at.
    - `f0`: peak frequency in kHz (10 Hz is `0.010`).
    - `t_peak`: time of the peak in ms; defaults to `1 / f0`.

    **Returns:** a jnp array of shape `(time.nt,)` (float32, or float64 when x64 is enabled).
    """
    if not isinstance(time, TimeAxis):
        raise InvalidType(f"`time` must be a jaxseis.TimeAxis, got {type(time).__name__}.")
    f0 = float(f0)
    if not (np.isfinite(f0) and f0 > 0):
        raise InvalidArgument(f"`f0` must be a positive frequency in kHz, got {f0}.")
    tp = 1.0 / f0 if t_peak is None else float(t_peak)
    a = (np.pi * f0 * (time.values - tp)) ** 2
    return jnp.asarray((1.0 - 2.0 * a) * np.exp(-a))
