"""A pure-JAX `lax.scan` propagator with jaxseis's discretisation: the baseline for bench_baselines.

Same scheme as jaxseis/devito/_operators.py, written in jax.numpy so that gradients come from JAX's
reverse-mode AD through the time loop (what j-Wave / seistorch-style codes do), not from an adjoint
PDE solve:

    D u^{n+1} = dt^2 (lap u^n + q^n) + m (2 u^n - u^{n-1}) + damp * dt * u^n,   D = m + damp * dt

on the padded grid (model edge-replicated into `nbl` damping cells per side, zero outside the
padded grid like Devito's halo), the centred Laplacian of `jaxseis._geometry.fd_weights(space_order)`,
the damping profile of `jaxseis.devito._solver._damp_profile`, point sources injected into u^{n+1}
with bi/tri-linear weights times `dt^2 / (D cell_volume)`, receivers recording `d^n = R u^n`
(bi/tri-linear interpolation), u^{-1} = u^0 = 0, n = 0 .. nt - 1. The reciprocal `1 / D` is
precomputed (Devito hoists the same time-invariant).

`checkpoint`: None (JAX saves the scan residuals of every step), "step" (`jax.checkpoint` on the
step: only the carry is saved per step, the step is recomputed in the backward pass) or "segments"
(two-level: an outer scan over ~sqrt(nt) segments, each an inner scan under `jax.checkpoint`, so
only segment-start carries are kept and one segment at a time is recomputed).

`python benchmarks/jax_stencil.py` checks it against jaxseis forward (and gradient) on a small grid
with off-grid source and receivers.
"""

from __future__ import annotations

import itertools as it
import math

import numpy as np


def _linear_weights(points, origin, spacing, shape):
    """Corner indices `(npts, 2^nd, nd)` and weights `(npts, 2^nd)` of multi-linear interpolation,
    as Devito computes them (lower corner floor((x - o) / h), weights 1 - frac and frac)."""
    points = np.asarray(points, np.float64).reshape(-1, len(shape))
    pos = (points - np.asarray(origin)) / np.asarray(spacing)
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    idx, wts = [], []
    for corner in it.product((0, 1), repeat=len(shape)):
        c = np.asarray(corner)
        idx.append(np.clip(lo + c, 0, np.asarray(shape) - 1))
        wts.append(np.prod(np.where(c == 1, frac, 1.0 - frac), axis=1))
    return np.stack(idx, axis=1), np.stack(wts, axis=1)


def make_forward(grid, time, src, rec, space_order=8, nbl=40, checkpoint=None, dtype=None):
    """`forward(m, wavelet) -> data (nt, nrec)` for fixed source / receiver positions (metres).

    `m` has `grid.shape` (s^2/km^2); `wavelet` is `(nt,)` or `(nt, nsrc)`. Pure JAX: jit it, and
    differentiate it with jax.grad (AD through the scan)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from jaxseis._geometry import fd_weights
    from jaxseis.devito._solver import _damp_profile

    dtype = jnp.float32 if dtype is None else dtype
    nd = grid.ndim
    shape = tuple(grid.shape)
    h = tuple(grid.spacing)
    padded = tuple(n + 2 * nbl for n in shape)
    origin_p = tuple(o - nbl * hh for o, hh in zip(grid.origin, h))
    cell_volume = float(np.prod(h))
    dt, nt = float(time.dt), int(time.nt)
    damp_dt = np.asarray(_damp_profile(padded, nbl, h, (nbl,) * nd, False) * dt)
    w = np.asarray(fd_weights(space_order))
    k = space_order // 2
    center = float(sum(w[k] / hh**2 for hh in h))

    s_idx, s_w = _linear_weights(src, origin_p, h, padded)   # (nsrc, nc, nd), (nsrc, nc)
    r_idx, r_w = _linear_weights(rec, origin_p, h, padded)
    nsrc = s_idx.shape[0]
    s_flat = tuple(jnp.asarray(s_idx[..., d].reshape(-1)) for d in range(nd))
    r_tup = tuple(jnp.asarray(r_idx[..., d]) for d in range(nd))
    r_w = jnp.asarray(r_w, dtype)
    dt2 = dtype(dt * dt)

    def laplacian(u):
        up = jnp.pad(u, k)
        out = center * u
        for d in range(nd):
            for j in range(-k, k + 1):
                if j == 0:
                    continue
                sl = [slice(k, k + n) for n in padded]
                sl[d] = slice(k + j, k + j + padded[d])
                out = out + (w[j + k] / h[d] ** 2) * up[tuple(sl)]
        return out

    def forward(m, wavelet):
        mp = jnp.pad(jnp.asarray(m, dtype), nbl, mode="edge")
        dd = jnp.asarray(damp_dt, dtype)
        inv_d = 1.0 / (mp + dd)
        # per source corner: weight * dt^2 / (cell_volume * D[corner])
        inj = jnp.asarray(s_w, dtype) * (dt2 / cell_volume) * inv_d[s_flat].reshape(s_w.shape)
        q = jnp.asarray(wavelet, dtype)
        q = jnp.broadcast_to(q[:, None], (nt, nsrc)) if q.ndim == 1 else q

        def step(carry, qn):
            u_prev, u = carry
            d = jnp.sum(u[r_tup] * r_w, axis=1)
            un = (dt2 * laplacian(u) + mp * (2 * u - u_prev) + dd * u) * inv_d
            un = un.at[s_flat].add((inj * qn[:, None]).reshape(-1))
            return (u, un), d

        zero = jnp.zeros(padded, dtype)
        if checkpoint is None:
            _, data = lax.scan(step, (zero, zero), q)
        elif checkpoint == "step":
            _, data = lax.scan(jax.checkpoint(step, prevent_cse=False), (zero, zero), q)
        elif checkpoint == "segments":
            nseg = max(1, round(math.sqrt(nt)))
            seg = -(-nt // nseg)
            qp = jnp.concatenate([q, jnp.zeros((nseg * seg - nt, nsrc), dtype)])
            qp = qp.reshape(nseg, seg, nsrc)

            @jax.checkpoint
            def segment(carry, qs):
                return lax.scan(step, carry, qs)

            _, data = lax.scan(segment, (zero, zero), qp)
            data = data.reshape(nseg * seg, -1)[:nt]
        else:
            raise ValueError(f"checkpoint must be None, 'step' or 'segments', got {checkpoint!r}")
        return data

    return forward


def verify(space_order=8, verbose=True):
    """Small grid, off-grid source and receivers: pure-JAX data and gradient vs jaxseis.
    Returns dict of relative differences."""
    import jax
    import jax.numpy as jnp

    import jaxseis as js

    grid = js.Grid((61, 51), (10.0, 10.0))
    time = js.TimeAxis(0.0, 400.0, 1.0)
    nbl = 10
    x = grid.coordinates(0)
    zz = grid.coordinates(1)
    vp = (1.5 + 1.0 * zz[None, :] / zz[-1] + 0.0 * x[:, None]).astype(np.float32)
    vp_true = vp + 0.3 * np.exp(-((x[:, None] - 300) ** 2 + (zz[None, :] - 250) ** 2)
                                / (2 * 60.0**2))
    m0 = (1 / vp**2).astype(np.float32)
    mt = (1 / vp_true**2).astype(np.float32)
    src = np.array([[303.7, 27.3]], np.float32)
    rec = np.stack([np.linspace(5.0, 595.0, 40), np.full(40, 13.0)], axis=1).astype(np.float32)
    wav = np.asarray(js.ricker(time, 0.015, t_peak=80.0), np.float32)
    op = js.Acoustic(grid, time, space_order=space_order, nbl=nbl)
    fwd = make_forward(grid, time, src, rec, space_order=space_order, nbl=nbl)
    d_js = np.asarray(op.forward(mt, wav, src, rec))
    d_jx = np.asarray(jax.jit(fwd)(mt, wav))
    out = dict(data_max_rel=_rel(d_jx, d_js))

    d_obs = jnp.asarray(d_js)

    def loss_js(m):
        r = op.forward(m, wav, src, rec) - d_obs
        return 0.5 * jnp.sum(r * r)

    def loss_jx(m):
        r = fwd(m, wav) - d_obs
        return 0.5 * jnp.sum(r * r)

    f_js, g_js = jax.value_and_grad(loss_js)(jnp.asarray(m0))
    f_jx, g_jx = jax.jit(jax.value_and_grad(loss_jx))(jnp.asarray(m0))
    out["loss_rel"] = abs(float(f_jx) - float(f_js)) / abs(float(f_js))
    out["grad_max_rel"] = _rel(g_jx, g_js)
    out["grad_l2_rel"] = float(np.linalg.norm(np.asarray(g_jx, np.float64) - np.asarray(g_js))
                               / np.linalg.norm(np.asarray(g_js, np.float64)))
    for ck in ("step", "segments"):
        fck = make_forward(grid, time, src, rec, space_order=space_order, nbl=nbl, checkpoint=ck)
        g_ck = jax.jit(jax.grad(lambda m: 0.5 * jnp.sum((fck(m, wav) - d_obs) ** 2)))(m0)
        out[f"grad_{ck}_vs_plain_max_rel"] = _rel(g_ck, g_jx)
    if verbose:
        print(f"pure-JAX stencil vs jaxseis ({grid.shape}, nbl {nbl}, so {space_order}, nt "
              f"{time.nt}, off-grid src/rec):")
        for key, v in out.items():
            print(f"  {key:32s} {v:.2e}")
    return out


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _common  # noqa: F401  (OMP_NUM_THREADS default)

    verify(8)
    verify(4)
