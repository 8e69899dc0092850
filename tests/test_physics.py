"""Physics checks of the acoustic solver against known solutions.

(a) The 2D Green's function of `(1/c^2) u_tt - lap u = q(t) delta(x)` in a homogeneous medium:
    u(r, t) = (1/(2 pi)) int_{r/c}^{t} q(t - tau) / sqrt(tau^2 - r^2/c^2) dtau
    (G = c / (2 pi) H(ct - r) / sqrt(c^2 t^2 - r^2)). The substitution tau = (r/c) cosh(s) removes
    the inverse square-root singularity:
    u(r, t) = (1/(2 pi)) int_0^{acosh(ct/r)} q(t - (r/c) cosh s) ds,
    a smooth integral evaluated by quadrature. When scipy is installed the reference is
    cross-checked against the frequency-domain form G_hat = (i/4) H0^(1)(omega r/c). Units: c in
    km/s = m/ms, t in ms, r in m, so m = 1/c^2 in s^2/km^2 = ms^2/m^2 and no unit factor appears.
    This checks the unit-strength point source (injection divided by the cell volume), the time
    alignment and the amplitude, and the error must shrink under grid refinement.
(b) Free surface: the surface ghost is the direct wave of the image source with reversed polarity,
    and pressure recorded on the surface is zero.
(c) Born: `forward(m + dm) - forward(m)` approaches `born(m, dm)` to first order in dm.
"""

import time as _time

import numpy as np

import jaxseis as js

C = 2.0  # km/s = m/ms
F0 = 0.015  # kHz (15 Hz)
T_PEAK = 1.5 / F0  # ms: the Ricker starts at exp(-(1.5 pi)^2) ~ 2e-10 of its peak
OFFSET = 300.0  # m


def ricker(t):
    """The continuous Ricker that `js.ricker(time, F0, T_PEAK)` samples."""
    a = (np.pi * F0 * (t - T_PEAK)) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def green_2d(r, t, c=C, nquad=4000):
    """Analytic 2D response at distance `r` (m) to a unit point source with time function
    `ricker`: (1/(2 pi)) int_0^{acosh(ct/r)} q(t - (r/c) cosh s) ds (trapezoid rule)."""
    t = np.asarray(t, dtype=np.float64)
    out = np.zeros_like(t)
    t0 = r / c
    late = t > t0
    smax = np.arccosh(t[late] / t0)
    frac = np.linspace(0.0, 1.0, nquad + 1)
    s = smax[:, None] * frac[None, :]
    vals = ricker(t[late][:, None] - t0 * np.cosh(s))
    ds = smax / nquad
    out[late] = (vals.sum(axis=1) - 0.5 * (vals[:, 0] + vals[:, -1])) * ds / (2.0 * np.pi)
    return out


def green_2d_hankel(r, t, c=C, pad=16):
    """The same response from G_hat(omega) = (i/4) H0^(1)(omega r / c) (time dependence
    exp(-i omega t)); numpy's forward FFT uses exp(-i omega t), so with its sign convention the
    transfer function is the conjugate, -(i/4) H0^(2)(omega r/c). Long zero padding keeps the
    slowly decaying 2D tail from wrapping around."""
    from scipy.special import hankel2

    dt = t[1] - t[0]
    n = len(t) * pad
    q = np.fft.rfft(ricker(np.arange(n) * dt))
    omega = 2.0 * np.pi * np.fft.rfftfreq(n, dt)
    g = np.zeros_like(q)
    g[1:] = -0.25j * hankel2(0, omega[1:] * r / c)  # the Ricker has no DC component
    return np.fft.irfft(q * g, n)[: len(t)]


def simulate_green(h, tn=360.0, nbl=50, half_width=560.0):
    """Point source and one receiver OFFSET metres apart at mid-depth of a homogeneous model with
    spacing `h`; dt = h / (4c) (about a fifth of the CFL limit, refined with h so the time error
    shrinks too). The model extends `half_width` either side so that waves reflected by the damping
    layers (already small) arrive after `tn`."""
    nx = int(round(2 * half_width / h)) + 1
    nz = int(round(1.3 * half_width / h)) + 1
    grid = js.Grid((nx, nz), (h, h))
    time = js.TimeAxis(0.0, tn, h / (4.0 * C))
    op = js.Acoustic(grid, time, space_order=8, nbl=nbl)
    m = np.full(grid.shape, 1.0 / C**2, np.float32)
    xs = round((half_width - OFFSET / 2) / h) * h
    zs = (nz // 2) * h
    src = np.array([[xs, zs]])
    rec = np.array([[xs + OFFSET, zs]])
    d = np.asarray(op.forward(m, js.ricker(time, F0, T_PEAK), src, rec), dtype=np.float64)[:, 0]
    return time.values, d


def test_green_function_2d():
    start = _time.perf_counter()
    errors = {}
    for h in (10.0, 5.0):
        t, d = simulate_green(h)
        ref = green_2d(OFFSET, t)
        errors[h] = np.linalg.norm(d - ref) / np.linalg.norm(ref)
        peak = np.abs(ref).max()
        print(f"\n[green 2D] h={h:g} m dt={t[1] - t[0]:.4g} ms nt={len(t)}: rel L2 error "
              f"{errors[h]:.3e}; peak sim {np.abs(d).max():.5f} vs analytic {peak:.5f}")
        try:
            ref_hankel = green_2d_hankel(OFFSET, t)
        except ImportError:
            ref_hankel = None
        if ref_hankel is not None:
            xcheck = np.linalg.norm(ref_hankel - ref) / np.linalg.norm(ref)
            print(f"  reference cross-check: quadrature vs Hankel-transform rel diff {xcheck:.2e}")
            assert xcheck < 1e-3
    print(f"  error ratio 10 m / 5 m: {errors[10.0] / errors[5.0]:.2f}; "
          f"test time {_time.perf_counter() - start:.1f} s")
    assert errors[10.0] < 0.05
    assert errors[5.0] < 0.02
    # Refinement (h and dt halved) must reduce the error markedly (second order in time: ~4x).
    assert errors[5.0] < 0.5 * errors[10.0]


# ------------------------------------------------------------------------------------ free surface
def test_free_surface_ghost_and_zero_pressure():
    grid = js.Grid((81, 61), (10.0, 10.0))
    time = js.TimeAxis(0.0, 400.0, 1.0)
    w = js.ricker(time, F0, T_PEAK)
    m = np.full(grid.shape, 1.0 / C**2, np.float32)
    zs = zr = 50.0
    src = np.array([[200.0, zs]])
    rec = np.array([
        [400.0, zr],  # receiver near the top
        [400.0, zs + (zs + zr)],  # no free surface: direct wave over the image-source distance
        [400.0, 0.0],  # on the surface
    ])
    data = {}
    for fs in (False, True):
        op = js.Acoustic(grid, time, space_order=8, nbl=40, free_surface=fs)
        data[fs] = np.asarray(op.forward(m, w, src, rec), dtype=np.float64)
    direct = data[False][:, 0]
    ghost = data[True][:, 0] - data[False][:, 0]  # what the free surface adds
    image = data[False][:, 1]  # direct wave at the distance of the image source
    rel = np.linalg.norm(ghost + image) / np.linalg.norm(image)
    corr = ghost @ image / (np.linalg.norm(ghost) * np.linalg.norm(image))
    i_g, i_d = np.argmax(np.abs(ghost)), np.argmax(np.abs(direct))
    t_ghost = np.hypot(200.0, zs + zr) / C
    print(f"\n[free surface] |ghost + image wave| / |image wave| = {rel:.3e}, "
          f"correlation {corr:.5f}; ghost extremum {ghost[i_g]:+.4f} at {time.values[i_g]:g} ms "
          f"(onset {t_ghost:.0f} ms), "
          f"direct extremum {direct[i_d]:+.4f} at {time.values[i_d]:g} ms")
    # The ghost is the image source's direct wave with reversed polarity.
    assert corr < -0.99
    assert rel < 0.1
    assert np.sign(ghost[i_g]) == -np.sign(direct[i_d])
    assert time.values[i_g] > time.values[i_d]
    # Zero pressure on the surface (and not so without the free surface).
    surf_fs, surf_abs = np.abs(data[True][:, 2]).max(), np.abs(data[False][:, 2]).max()
    print(f"  max |p| at z=0: free surface {surf_fs:.3e}, absorbing top {surf_abs:.3e}, "
          f"direct at z={zr:g} m {np.abs(direct).max():.3e}")
    assert surf_fs < 1e-5 * np.abs(direct).max()
    assert surf_abs > 0.1 * np.abs(direct).max()


# ------------------------------------------------------------------------------------ Born
def test_born_approximates_forward_difference(problem):
    op, src, rec, w = problem["op"], problem["src"], problem["rec"], problem["wavelet"]
    z = op.grid.coordinates(1)
    x = op.grid.coordinates(0)
    m0 = np.broadcast_to(1.0 / (1.5 + z / 300.0)[None, :] ** 2, op.grid.shape).astype(np.float32)
    bump = np.exp(-((x[:, None] - 220.0) ** 2 + (z[None, :] - 200.0) ** 2) / (2 * 40.0**2))
    d0 = np.asarray(op.forward(m0, w, src, rec), dtype=np.float64)
    errs = []
    for eps in (0.02, 0.01):
        dm = (eps * m0 * bump).astype(np.float32)
        diff = np.asarray(op.forward(m0 + dm, w, src, rec), dtype=np.float64) - d0
        lin = np.asarray(op.born(m0, dm, w, src, rec), dtype=np.float64)
        errs.append(np.linalg.norm(diff - lin) / np.linalg.norm(lin))
        print(f"\n[born vs forward difference] dm = {eps:.0%} bump: |diff|/|d0| = "
              f"{np.linalg.norm(diff) / np.linalg.norm(d0):.3e}, rel err {errs[-1]:.3e}")
    print(f"  error ratio per halving of dm: {errs[0] / errs[1]:.2f}")
    assert errs[0] < 0.05
    # The linearization error is second order: the relative error halves with dm.
    assert 1.6 <= errs[0] / errs[1] <= 2.4


def test_green_function_3d():
    """3D: `u(r, t) = q(t - r/c) / (4 pi r)` for `(1/c^2) u_tt - lap u = q(t) delta(x)`. A small
    grid at 20 m and 10 m (15 Hz, c = 2 km/s: 6.7 and 13 points per wavelength), receiver 200 m
    away along a diagonal (off-grid positions on the coarse grid); the error must be small and
    shrink under refinement."""
    errors = {}
    for h in (20.0, 10.0):
        n = int(round(400.0 / h)) + 1
        grid = js.Grid((n, n, n), h)
        dt = 0.25 * h / C
        time = js.TimeAxis(0.0, 290.0, dt)
        op = js.Acoustic(grid, time, space_order=8, nbl=int(160 / h))
        m = np.full(grid.shape, 1.0 / C**2, np.float32)
        xs = np.array([[150.0, 150.0, 150.0]])
        d = 200.0 / np.sqrt(3.0)
        xr = xs + d
        wavelet = js.ricker(time, F0, T_PEAK)
        data = np.asarray(op.forward(m, wavelet, xs, xr))[:, 0]
        t = time.values
        ref = ricker(t - 200.0 / C) / (4.0 * np.pi * 200.0)
        errors[h] = float(np.linalg.norm(data - ref) / np.linalg.norm(ref))
        print(f"3D Green's function, h={h:g} m: relative L2 error {errors[h]:.3e}, "
              f"peak {np.abs(data).max():.5f} vs {np.abs(ref).max():.5f}")
    assert errors[10.0] < 0.05
    assert errors[10.0] < 0.6 * errors[20.0]
