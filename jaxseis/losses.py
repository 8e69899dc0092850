"""Data misfits for inversion: least squares and normalised cross-correlation (pure `jax.numpy`).

Both are scalar functions of `pred` (the modelled data) and `obs` (the observed data), work under
`jit`, `vmap` and `grad`, and take data in the jaxseis layout: `(nt, nrec)` per shot, with any batch
axes in front, e.g. `(nshots, nt, nrec)`. A *trace* is a time series along the time axis
(`time_axis`, the second-to-last axis by default).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._errors import InvalidArgument, InvalidShape

__all__ = ["l2", "ncc"]


def _pair(pred, obs):
    pred = jnp.asarray(pred)
    obs = jnp.asarray(obs, dtype=pred.dtype)
    if pred.shape != obs.shape:
        raise InvalidShape(
            f"`pred` and `obs` must have the same shape, got {pred.shape} and {obs.shape}.")
    return pred, obs


def l2(pred, obs):
    """Least-squares misfit `0.5 * sum((pred - obs)**2)` over all samples.

    **Arguments:**

    - `pred`: modelled data, any shape.
    - `obs`: observed data of the same shape.

    **Returns:** a scalar. Its gradient with respect to `pred` is the residual `pred - obs`, the
    adjoint source of classic FWI.
    """
    pred, obs = _pair(pred, obs)
    r = pred - obs
    return 0.5 * jnp.sum(r * r)


def ncc(pred, obs, eps: float = 1e-12, time_axis: int = -2):
    """Normalised cross-correlation misfit, `sum over traces of 1 - <p, o> / (|p| |o|)`.

    Each trace contributes between 0 (`pred` a positive multiple of `obs`) and 2 (a negative
    multiple). The misfit ignores the amplitude of each predicted trace, so it is insensitive to the
    source scaling and to amplitude errors of the physics; only the shape of the traces matters
    (see e.g. Choi & Alkhalifah 2012, "Application of multi-source waveform inversion to marine
    streamer data using the global correlation norm").

    To keep the value and the gradient finite for all-zero traces, each norm is
    `|x| = sqrt(<x, x> + eps * E)` where `E` is the mean trace energy of that array (held constant
    for differentiation; a dead trace then contributes exactly 1 and a zero gradient). Because `E`
    scales like `<x, x>`, the misfit is invariant to multiplying `pred` (or `obs`) by a positive
    constant (exactly, up to rounding); for traces of typical energy the `eps` term is below float32
    resolution.

    **Arguments:**

    - `pred`: modelled data, e.g. `(nt, nrec)` or `(nshots, nt, nrec)`; a 1D array is one trace.
    - `obs`: observed data of the same shape.
    - `eps`: the relative regularisation of the norms (>= 0).
    - `time_axis`: the axis along which traces run (time); the default `-2` matches `(..., nt,
      nrec)`.

    **Returns:** a scalar, the sum over traces (and shots).
    """
    if isinstance(eps, (int, float)) and not eps >= 0:
        raise InvalidArgument(f"`eps` must be >= 0, got {eps}.")
    pred, obs = _pair(pred, obs)
    axis = 0 if pred.ndim == 1 else time_axis
    tiny = jnp.finfo(pred.dtype).tiny

    def norm(x):
        energy = jnp.sum(x * x, axis=axis)
        floor = jax.lax.stop_gradient(eps * jnp.mean(energy) + tiny)
        return jnp.sqrt(energy + floor)

    corr = jnp.sum(pred * obs, axis=axis) / (norm(pred) * norm(obs))
    return jnp.sum(1.0 - corr)
