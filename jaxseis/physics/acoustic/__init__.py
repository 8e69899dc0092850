"""Constant-density isotropic acoustics: `jaxseis.Acoustic` (its model is the bare array `m`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._operator import WaveOperator
from ..._physics import Parameter

__all__ = ["Acoustic"]


@dataclass(frozen=True, repr=False)
class Acoustic(WaveOperator):
    """Constant-density isotropic acoustic wave equation `m u_tt - lap(u) + damp u_t = q`.

    A hashable, static description: use it as a static argument of `jax.jit` or a static field of an
    `equinox.Module`. Its methods are the operators; shapes are for one shot (use `jax.vmap` for
    several): `m` is squared slowness `1/vp**2` in s^2/km^2 with shape `grid.shape`; `src` is
    `(nsrc, ndim)` and `rec` `(nrec, ndim)` positions in metres; `wavelet` is `(nt,)` (the same for
    every source point) or `(nt, nsrc)`; `data` is `(nt, nrec)`.

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

    parameters = (Parameter("m", "s^2/km^2", "squared slowness 1/vp^2", lower=0.0,
                            lower_open=True),)
    single_array = True

    @classmethod
    def devito_kernel(cls):
        from ._devito import AcousticKernel

        return AcousticKernel

    def max_speed(self, model, xp=np):
        return 1.0 / xp.sqrt(xp.min(model["m"]))

    def min_speed(self, model, xp=np):
        return 1.0 / xp.sqrt(xp.max(model["m"]))

    # The methods keep the argument names Acoustic has always had (`m`, `m0`, `dm`).
    def forward(self, m, wavelet, src, rec):
        """Data `(nt, nrec)` of point sources at `src` fired with `wavelet`, recorded at `rec`.

        Linear in `wavelet`. Gradients: w.r.t. `m` the adjoint-state FWI gradient (two PDE solves,
        the forward wavefield kept on the host), w.r.t. `wavelet` the adjoint wavefield at `src`.
        """
        return super().forward(m, wavelet, src, rec)

    def adjoint(self, m, data, src, rec):
        """Adjoint of `forward` in its wavelet: `data` at `rec` back-propagated and sampled at `src`,
        shape `(nt, nsrc)`. Linear in `data`; its VJP is `forward`."""
        return super().adjoint(m, data, src, rec)

    def born(self, m0, dm, wavelet, src, rec):
        """Linearized (Born) data `J(m0) dm`, shape `(nt, nrec)`: the exact derivative of `forward`
        w.r.t. `m` for the discrete scheme. Linear in `dm`; its VJP is `born_adjoint`."""
        return super().born(m0, dm, wavelet, src, rec)

    def born_adjoint(self, m0, data, wavelet, src, rec):
        """Image `J(m0)^T data` on `grid.shape` (reverse-time migration; the FWI gradient of a
        residual). Linear in `data`; its VJP is `born`."""
        return super().born_adjoint(m0, data, wavelet, src, rec)

    def forward_extended(self, m, weights, wavelet, rec):
        """Data `(nt, nrec)` of the extended source `weights(x) * wavelet(t)` (a source density on
        the grid, JUDI4Flux's ExtendedQForward). Linear in `weights`; gradients w.r.t. `weights`
        (`adjoint_extended`) and `m` (FWI gradient)."""
        return super().forward_extended(m, weights, wavelet, rec)

    def adjoint_extended(self, m, data, wavelet, rec):
        """Adjoint of `forward_extended` in its weights, shape `grid.shape`. Linear in `data`; its
        VJP is `forward_extended`."""
        return super().adjoint_extended(m, data, wavelet, rec)
