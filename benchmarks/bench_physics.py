"""jaxseis against the same Devito operators called directly (and deepwave, optional), per physics.

`--physics vda` (default: `jaxseis.VariableDensityAcoustic`), `--physics acoustic`
(`jaxseis.Acoustic`), `--physics visco` (`jaxseis.Viscoacoustic`, `qp = 20 vp^2` of the same vp,
reference frequency 0.010 kHz; the gradient is w.r.t. `m` and `rho`, `qp` held fixed),
`--physics elastic` (`jaxseis.Elastic`, vs = vp / 1.8, explosive source, pressure recorded; deepwave
side `deepwave.elastic` with the same stress rate as a pressure-rate source, `DeepwaveElastic`),
`--physics tti` (`jaxseis.TTIAcoustic` with the S2 vp, a smooth anisotropy field, epsilon 0.10 ->
0.20 and delta 0.05 -> 0.10 with depth, and a tilt varying from -30 to +30 degrees across the
section; deepwave 0.1.0's `acoustic_vti` has no tilt, so no counterpart), `--physics vti` (VTI:
`TTIAcoustic(tilt=False)` with the same epsilon and delta, no angles, against `deepwave.acoustic_vti`, the first-order velocity-stress pseudo-acoustic VTI
of Duveneck et al. 2008 on a staggered grid: see `DeepwaveVTI`) or `--physics tti3d` (the tti
fields, plus azimuth 30 degrees, on a small 3D problem, `problem_arrays_3d`: 41^3, quick 25^3).
Another physics is one entry in `PHYSICS` (its class and how to build its model dict from vp and
rho; a deepwave counterpart is optional).

Problem (S2 geometry with density, dt = 1 ms): interior 301 x 301 at 10 m, space order 8, 40-cell
damping layer, one source at (1500, 20) m, 301 receivers at (10 i, 0) m, Ricker f0 = 0.010 kHz
peaking at 100 ms, 0..1000 ms with dt = 1.0 ms (nt 1001); vp(x, z) = 1.5 + 2.0 z / 3000 km/s minus
a Gaussian anomaly 0.5 exp(-((x - 1500)^2 + (z - 1500)^2) / (2 * 250^2)); density from Gardner's
law rho = 0.31 (1000 vp)^0.25 g/cm^3 (of the same vp, so it has the anomaly too). Misfit
0.5 ||d(model) - d_obs||^2, d_obs from the true model, `model` the one without the anomaly.
`--quick`: the same layout on 101 x 101 (nbl 20, 400 ms, anomaly scaled with the grid): seconds.

One process, one OpenMP team: the direct side's Devito solves and deepwave's torch kernels run on
jaxseis's OpenMP master thread, like jaxseis's own solves (GNU OpenMP, shared by Devito and torch,
sleeps at every barrier once two threads have opened teams on 2 cores: every side would be 2-5x
slower; see jaxseis/devito/_openmp.py).

Sides (one process, interleaved: every round runs each side once, the order rotating; medians of
`--repeats` rounds after one untimed warm-up, each timed call after 0.2 s idle, as
`_common.interleaved`):

- jaxseis: `jax.jit(op.forward)` on the true model; `jax.jit(jax.value_and_grad(loss))`.
- Devito direct: the SAME compiled operators (`op.solver.operator("forward", source="point",
  save=False|True, born=False)`, `op.solver.operator("adjoint", grad=True)`) applied to Devito
  objects made ONCE outside the timed region (`op.solver.ctx.specs[name].make(...)` for each name
  in the Devito Operator's `parameters`; the saved wavefield `make(save=nt + 2)`). Per call: the
  model padded and mapped to the coefficient Functions (`kernel.coefficients`, the physics' host
  map, e.g. the harmonic density averages of `vda`), the wavefields zeroed, the forward wavefield
  saved, the residual and misfit in NumPy, the adjoint with imaging, the coefficient images mapped
  back to the parameters (`kernel.transpose`) and the physical-grid gradient cropped (padding
  summed back onto the edge, `unpad_model_adjoint`).
- deepwave 0.1.0 (optional; `pip install torch==2.13.0 deepwave==0.1.0`): `vda` ->
  `deepwave.acoustic(v, rho, ...)` (velocity-pressure staggered grid, variable density),
  `acoustic` -> `deepwave.scalar` (benchmarks/deepwave_s2.py), `visco` ->
  `deepwave.viscoacoustic(v, rho, q, q_freq=0.010)` (the same single standard linear solid and
  Q map; pressure-rate source amplitudes are the volume-rate ones times `rho v^2` at the source;
  `max_vel` the unrelaxed speed and deepwave's own Courant number). Same grid, dt, source and receiver
  nodes, accuracy 8, `pml_width = nbl` (deepwave pads its PML outside the model, like jaxseis),
  units km/s, m, ms, g/cm^3 (consistent: km/s = m/ms), `pml_freq` 0.010 (kHz), `max_vel` pinned
  over both models. The volume-rate source amplitudes are `cumsum(q) dt / (rho_src h^2)`, so that
  deepwave's pressure is jaxseis's `u` (`m u_tt - rho div(grad u / rho) = q delta / h^2` is the
  second-order form of deepwave's `p_t = -K div(v) + K s`, `rho v_t = -grad p`). "deepwave
  forward" runs under `torch.no_grad`; "deepwave forward+backward" is `loss.backward()` w.r.t.
  `v` and `rho` of the same misfit (d_obs from deepwave on the true model). Skipped with a
  message when torch or deepwave does not import (`--no-deepwave` simulates that).

Checks (printed): jaxseis vs direct data, misfit and gradient (max |a - b| / max |b| per
parameter: the work must be the same); deepwave's gather against jaxseis's (shape, normalised
correlation, amplitude ratio, best lag).

Reported per side: min / median / p90 / max seconds, median / jaxseis median, the median of the
per-round ratios (paired), GPts/s = (padded grid points (n + 2 nbl)^2) x nt / median s (the same
work count for every side), and peak RSS: each configuration again in its own fresh process
(`--child`; deepwave's children import neither jax nor devito), VmHWM at the end and the increment
over the RSS before its first call (`_common.run_and_emit`). JSON to
`results/bench_physics_<physics>[_quick].json`.

Run: `python benchmarks/bench_physics.py --physics vda` (minutes, quiet machine),
`--quick` (seconds), `--repeats N`, `--no-memory`, `--no-deepwave`, `--json PATH`.
OMP_NUM_THREADS defaults to 2.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets OMP_NUM_THREADS before jax/devito load)

import numpy as np  # noqa: E402

import deepwave_s2 as DW  # noqa: E402  (NumPy only; torch and deepwave are imported on use)

FWD = "forward"
GRAD = "value_and_grad"
SIDES = ("jaxseis", "direct", "deepwave")
LABEL = {("jaxseis", FWD): "jaxseis forward", ("jaxseis", GRAD): "jaxseis value_and_grad",
         ("direct", FWD): "Devito direct forward", ("direct", GRAD): "Devito direct value_and_grad",
         ("deepwave", FWD): DW.FORWARD, ("deepwave", GRAD): DW.GRADIENT}
ARRAY_KEYS = ("vp_true", "vp0", "rho_true", "rho0", "wavelet", "src", "rec", "spacing", "dt_ms",
              "nbl")


# ---------------------------------------------------------------------------------- physics
@dataclass(frozen=True)
class Physics:
    """One benchmarked physics: its jaxseis class (by attribute name), the model from vp (km/s)
    and rho (g/cm^3) arrays, and optionally its deepwave counterpart (a class with the interface
    of `DeepwaveAcoustic`)."""

    cls: str
    model: Callable
    deepwave: Callable | None = None
    description: str = ""
    #: the series the operator injects for a wavelet (NumPy, `(wavelet, dt)`), for the direct side
    source_series: Callable | None = None
    problem: Callable | None = None   # (quick) -> (arrays, name); default `problem_arrays`
    options: tuple = ()   # (name, value) pairs of physics options for the constructor


def _m(vp):
    return (1.0 / np.asarray(vp, np.float64) ** 2).astype(np.float32)


def _deepwave_scalar(A, courant="match"):
    """deepwave.scalar (constant density) via benchmarks/deepwave_s2.py."""
    dw = DW.DeepwaveS2(dict(m_true=_m(A["vp_true"]), m0=_m(A["vp0"]), wavelet=A["wavelet"],
                            src=A["src"], rec=A["rec"], spacing=A["spacing"],
                            origin=np.zeros(len(A["spacing"])), dt_ms=A["dt_ms"], nbl=A["nbl"]),
                       courant=courant)
    return dw


class DeepwaveAcoustic:
    """deepwave.acoustic (variable density, velocity-pressure staggered grid) on the problem
    arrays `A` (see ARRAY_KEYS), in km/s, m, ms, g/cm^3."""

    def __init__(self, A, courant="match", threads=None):
        import deepwave
        import torch

        self.torch, self.deepwave = torch, deepwave
        torch.set_num_threads(int(threads or os.environ["OMP_NUM_THREADS"]))
        h = [float(s) for s in np.asarray(A["spacing"])]
        self.h, self.dt = h, float(A["dt_ms"])
        t = lambda a: torch.tensor(np.asarray(a, np.float32))  # noqa: E731
        self.v_true, self.rho_true = t(A["vp_true"]), t(A["rho_true"])
        self.v0, self.rho0 = t(A["vp0"]), t(A["rho0"])
        self.max_vel = float(max(self.v_true.max(), self.v0.max()))
        origin = np.zeros(len(h))
        s_idx, s_off = DW.nearest_indices(A["src"], h, origin)
        r_idx, r_off = DW.nearest_indices(A["rec"], h, origin)
        self.offgrid_m = max(s_off, r_off)
        self.src_loc = torch.tensor(s_idx, dtype=torch.long)[None]
        self.rec_loc = torch.tensor(r_idx, dtype=torch.long)[None]
        q = np.asarray(A["wavelet"], np.float64)
        q = q[:, None] if q.ndim == 1 else q                                # (nt, nsrc)
        rho_src = np.asarray(A["rho0"], np.float64)[tuple(s_idx.T)]          # (nsrc,)
        s = np.cumsum(q, axis=0) * self.dt / (rho_src[None, :] * float(np.prod(h)))
        self.src_amp = torch.tensor(np.ascontiguousarray(s.T, np.float32))[None]  # [1, nsrc, nt]
        self.nbl, self.accuracy = int(A["nbl"]), 8
        self.courant_problem = self.dt * self.max_vel * math.sqrt(sum(1.0 / x**2 for x in h))
        crit = deepwave.discretisation.critical_courant_number(self.accuracy,
                                                               propagator="acoustic")
        self.critical_courant = crit
        self.courant_mode = courant
        self.courant_number = (self.courant_problem * (1 + 1e-6)
                               if courant == "match" and self.courant_problem <= crit else None)
        self.d_obs = None
        self.step_ratio = None

    def _run(self, v, rho):
        out = self.deepwave.acoustic(
            v, rho, self.h, self.dt, source_amplitudes_volume_rate=self.src_amp,
            source_locations_volume_rate=self.src_loc, receiver_locations_p=self.rec_loc,
            accuracy=self.accuracy, pml_width=self.nbl, pml_freq=0.010,
            max_vel=self.max_vel if self.courant_number is not None else None,
            courant_number=self.courant_number)
        if self.step_ratio is None:
            self.step_ratio = int(out.info.step_ratio)
        return out.receiver_amplitudes_p                                 # [1, nrec, nt]

    def forward(self):
        with self.torch.no_grad():
            return self._run(self.v_true, self.rho_true)

    def shot_gather(self):
        return self.forward()[0].numpy().T.copy()                         # (nt, nrec)

    def value_and_grad(self):
        if self.d_obs is None:
            self.d_obs = self.forward()
        v = self.v0.detach().clone().requires_grad_(True)
        rho = self.rho0.detach().clone().requires_grad_(True)
        r = self._run(v, rho) - self.d_obs
        loss = 0.5 * (r * r).sum()
        loss.backward()
        return loss.detach(), v.grad, rho.grad

    def callables(self):
        if self.d_obs is None:
            self.d_obs = self.forward()
        return {DW.FORWARD: self.forward, DW.GRADIENT: self.value_and_grad}

    def describe(self):
        return dict(deepwave=self.deepwave.__version__, torch=self.torch.__version__,
                    propagator="deepwave.acoustic", torch_threads=self.torch.get_num_threads(),
                    accuracy=self.accuracy, pml_width=self.nbl, max_vel=self.max_vel,
                    courant_mode=self.courant_mode, courant_number=self.courant_number,
                    courant_problem=self.courant_problem, critical_courant=self.critical_courant,
                    step_ratio=self.step_ratio, offgrid_max_m=self.offgrid_m)


def _qp(vp):
    """The benchmark's attenuation model: `qp = 20 vp^2` (vp in km/s; slow rock attenuates more:
    about 45 at the top, 245 at the bottom, 80 in the anomaly of the true model)."""
    return (20.0 * np.asarray(vp, np.float64) ** 2).astype(np.float32)


class DeepwaveVisco(DeepwaveAcoustic):
    """deepwave.viscoacoustic (one standard linear solid on the velocity-pressure staggered grid):
    the same SLS and `Q -> (tau_sigma, tau_epsilon)` map at `q_freq` as jaxseis.Viscoacoustic's
    `reference_frequency` (0.010 kHz here), `qp` from `_qp(v)`. Its pressure-rate source adds
    `dt * amplitude` to the pressure, so the amplitudes are the volume-rate ones times the relaxed
    modulus `K = rho v^2` at the source. `max_vel` is the unrelaxed (fastest) speed."""

    def __init__(self, A, courant="match", threads=None):
        super().__init__(A, courant=courant, threads=threads)
        torch = self.torch
        t = lambda a: torch.tensor(np.asarray(a, np.float32))  # noqa: E731
        self.q_true, self.q0 = t(_qp(A["vp_true"])), t(_qp(A["vp0"]))
        h = self.h
        origin = np.zeros(len(h))
        s_idx, _ = DW.nearest_indices(A["src"], h, origin)
        idx = tuple(s_idx.T)
        k_src = (np.asarray(A["rho0"], np.float64)[idx] * np.asarray(A["vp0"], np.float64)[idx] ** 2)
        self.src_amp = self.src_amp * torch.tensor(k_src.astype(np.float32))[None, :, None]
        y = 1.0 / np.minimum(_qp(A["vp_true"]).min(), _qp(A["vp0"]).min())
        self.max_vel = float(self.max_vel * (math.sqrt(1.0 + y * y) + y))
        self.courant_problem = self.dt * self.max_vel * math.sqrt(sum(1.0 / x**2 for x in h))
        self.courant_number = None  # deepwave's own choice for the unrelaxed speed (step_ratio)

    def _run(self, v, rho, q=None):
        q = self.q_true if q is None else q
        out = self.deepwave.viscoacoustic(
            v, rho, q, self.h, self.dt, source_amplitudes_pressure_rate=self.src_amp,
            source_locations_pressure_rate=self.src_loc, receiver_locations_p=self.rec_loc,
            accuracy=self.accuracy, pml_width=self.nbl, pml_freq=0.010, q_freq=0.010,
            max_vel=self.max_vel, courant_number=self.courant_number)
        if self.step_ratio is None:
            self.step_ratio = int(out.info.step_ratio)
        return out.receiver_amplitudes_p

    def value_and_grad(self):
        if self.d_obs is None:
            self.d_obs = self.forward()
        v = self.v0.detach().clone().requires_grad_(True)
        rho = self.rho0.detach().clone().requires_grad_(True)
        r = self._run(v, rho, self.q0) - self.d_obs
        loss = 0.5 * (r * r).sum()
        loss.backward()
        return loss.detach(), v.grad, rho.grad

    def describe(self):
        return {**super().describe(), "propagator": "deepwave.viscoacoustic", "q_freq": 0.010}


class DeepwaveElastic(DeepwaveAcoustic):
    """deepwave.elastic (velocity-stress staggered grid) on the problem arrays `A`, vs = vp / 1.8:
    a pressure-rate source of amplitude `s / h^2` (`s` the stress rate jaxseis.Elastic's explosive
    source injects, its wavelet's running integral) and pressure receivers, accuracy 8; the
    gradient w.r.t. lamb, mu and buoyancy (the same backward work as any parametrisation)."""

    def __init__(self, A, courant="match", threads=None):
        super().__init__(A, courant=courant, threads=threads)
        torch = self.torch
        q = np.asarray(A["wavelet"], np.float64)
        q = q[:, None] if q.ndim == 1 else q
        s = _elastic_series(q.astype(np.float32), self.dt) / float(np.prod(self.h))
        self.src_amp = torch.tensor(np.ascontiguousarray(np.asarray(s).T, np.float32))[None]
        crit = self.deepwave.discretisation.critical_courant_number(self.accuracy,
                                                                    propagator="elastic")
        self.critical_courant = crit
        self.courant_number = (self.courant_problem * (1 + 1e-6)
                               if courant == "match" and self.courant_problem <= crit else None)

    def _lame(self, v, rho):
        vs = v / 1.8
        return rho * (v**2 - 2 * vs**2), rho * vs**2, 1.0 / rho

    def _run(self, v, rho):
        lamb, mu, b = self._lame(v, rho)
        out = self.deepwave.elastic(
            lamb, mu, b, self.h, self.dt, source_amplitudes_pressure_rate=self.src_amp,
            source_locations_pressure_rate=self.src_loc, receiver_locations_p=self.rec_loc,
            accuracy=self.accuracy, pml_width=self.nbl, pml_freq=0.010,
            max_vel=self.max_vel if self.courant_number is not None else None,
            courant_number=self.courant_number)
        if self.step_ratio is None:
            self.step_ratio = int(out.info.step_ratio)
        return out.receiver_amplitudes_p                                 # [1, nrec, nt]

    def describe(self):
        return {**super().describe(), "propagator": "deepwave.elastic (vs = vp / 1.8)"}


class DeepwaveVTI(DeepwaveAcoustic):
    """deepwave.acoustic_vti (Duveneck et al. 2008 first-order pseudo-acoustic VTI, staggered
    grid) on the problem arrays, for the `vti` entry (theta = 0, density 1 g/cm^3): stiffnesses
    `c33 = vp^2`, `c11 = c33 (1 + 2 epsilon)`, `c13 = c33 sqrt(1 + 2 delta)`, buoyancy 1. deepwave
    wants the symmetry axis (depth) first, so the arrays are transposed and locations are
    (z, x) indices. The source is a pressure-rate source (both normal stresses) of amplitude
    `cumsum(q) dt vp_src^2 / h^2` (with `p_t = -c div v + s`, `m p_tt - lap p = m s_t`); the
    receivers record the pressure. The gradient is w.r.t. c11, c13 and c33. Measured on S2-quick:
    raw correlation 0.973 with jaxseis's gather, norm ratio 0.95 (the extreme-normalised
    correlation reads -0.97 because the two gathers' largest samples sit on different lobes of
    the near-source wavelet)."""

    def __init__(self, A, courant="match", threads=None):
        import deepwave
        import torch

        self.torch, self.deepwave = torch, deepwave
        torch.set_num_threads(int(threads or os.environ["OMP_NUM_THREADS"]))
        h = [float(x) for x in np.asarray(A["spacing"])]
        self.h, self.dt = h[::-1], float(A["dt_ms"])
        t = lambda a: torch.tensor(np.ascontiguousarray(np.asarray(a, np.float32).T))  # noqa: E731

        def cij(vp, rho):
            mod = _tti(vp, rho, tilt=False)
            c33 = 1.0 / mod["m"].astype(np.float64)
            return (t(c33 * (1 + 2 * mod["epsilon"])), t(c33 * np.sqrt(1 + 2 * mod["delta"])),
                    t(c33), np.sqrt(np.max(c33 * (1 + 2 * mod["epsilon"]))))

        *self.c_true, v1 = cij(A["vp_true"], A["rho_true"])
        *self.c0, v2 = cij(A["vp0"], A["rho0"])
        self.buoyancy = torch.ones_like(self.c_true[0])
        # On the full S2 field deepwave 0.1.0 refuses dt = 1 ms at this max_vel (it reports a
        # "conservative maximum wave speed" 0.6 % above it, and 0.6 % above any max_vel given
        # with the matching Courant number): there `--deepwave-courant default` lets deepwave
        # choose its bound and its internal step (its step ratio is printed).
        self.max_vel = float(max(v1, v2))
        origin = np.zeros(len(h))
        s_idx, s_off = DW.nearest_indices(A["src"], h, origin)
        r_idx, r_off = DW.nearest_indices(A["rec"], h, origin)
        self.offgrid_m = max(s_off, r_off)
        self.src_loc = torch.tensor(s_idx[:, ::-1].copy(), dtype=torch.long)[None]
        self.rec_loc = torch.tensor(r_idx[:, ::-1].copy(), dtype=torch.long)[None]
        q = np.asarray(A["wavelet"], np.float64)
        q = q[:, None] if q.ndim == 1 else q
        vp_src = np.asarray(A["vp0"], np.float64)[tuple(s_idx.T)]
        s = np.cumsum(q, axis=0) * self.dt * vp_src[None, :] ** 2 / float(np.prod(h))
        self.src_amp = torch.tensor(np.ascontiguousarray(s.T, np.float32))[None]
        self.nbl, self.accuracy = int(A["nbl"]), 8
        self.courant_problem = self.dt * self.max_vel * math.sqrt(sum(1.0 / x**2 for x in h))
        crit = deepwave.discretisation.critical_courant_number(self.accuracy,
                                                               propagator="acoustic_vti")
        self.critical_courant = crit
        self.courant_mode = courant
        self.courant_number = (self.courant_problem * (1 + 1e-6)
                               if courant == "match" and self.courant_problem <= crit else None)
        self.d_obs = None
        self.step_ratio = None

    def _run(self, c11, c13, c33):
        out = self.deepwave.acoustic_vti(
            c11, c13, c33, self.buoyancy, self.h, self.dt,
            source_amplitudes_pressure_rate=self.src_amp,
            source_locations_pressure_rate=self.src_loc, receiver_locations_p=self.rec_loc,
            accuracy=self.accuracy, pml_width=self.nbl, pml_freq=0.010,
            max_vel=self.max_vel if self.courant_number is not None else None,
            courant_number=self.courant_number)
        if self.step_ratio is None:
            self.step_ratio = int(out.info.step_ratio)
        return out.receiver_amplitudes_p

    def forward(self):
        with self.torch.no_grad():
            return self._run(*self.c_true)

    def value_and_grad(self):
        if self.d_obs is None:
            self.d_obs = self.forward()
        c = [x.detach().clone().requires_grad_(True) for x in self.c0]
        r = self._run(*c) - self.d_obs
        loss = 0.5 * (r * r).sum()
        loss.backward()
        return (loss.detach(), *[x.grad for x in c])

    def describe(self):
        return {**super().describe(), "propagator": "deepwave.acoustic_vti"}


def _tti(vp, rho, tilt=True):
    """TTIAcoustic's model on the S2 grid (density unused): a smooth anisotropy field, epsilon
    0.10 -> 0.20 and delta 0.05 -> 0.10 with depth, and (with `tilt`) a tilt varying smoothly
    from -30 to +30 degrees across the section."""
    vp = np.asarray(vp, np.float64)
    nd = vp.ndim
    depth = [1] * nd
    depth[-1] = vp.shape[-1]
    across = [1] * nd
    across[0] = vp.shape[0]
    s = np.linspace(0.0, 1.0, vp.shape[-1]).reshape(depth) + 0 * vp
    xi = np.linspace(-1.0, 1.0, vp.shape[0]).reshape(across) + 0 * vp
    theta = np.deg2rad(30.0) * np.sin(0.5 * np.pi * xi)
    f = lambda a: np.asarray(a, np.float32)  # noqa: E731
    out = {"m": _m(vp), "epsilon": f(0.10 + 0.10 * s), "delta": f(0.05 + 0.05 * s)}
    if tilt:
        out["theta"] = f(theta)
        if nd == 3:  # azimuth 30 degrees from x
            out["phi"] = f(np.deg2rad(30.0) + 0 * vp)
    return out


def problem_arrays_3d(quick):
    """A small 3D problem: n^3 at 10 m (n = 41, nbl 10, 400 ms; quick: n = 25, nbl 6, 200 ms),
    dt 1 ms, vp = 1.5 + 2 z / 3000 minus a Gaussian anomaly at the centre (sigma L / 12), one source
    at the centre 20 m deep, a cross of 2 n receivers at the surface."""
    import jaxseis as js

    n, nbl, tn = (25, 6, 200.0) if quick else (41, 10, 400.0)
    h, dt = 10.0, 1.0
    L = (n - 1) * h
    time = js.TimeAxis(0.0, tn, dt)
    c = np.arange(n) * h
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    background = 1.5 + 2.0 * z / 3000.0
    anomaly = 0.5 * np.exp(-((x - L / 2) ** 2 + (y - L / 2) ** 2 + (z - L / 2) ** 2)
                           / (2 * (L / 12) ** 2))
    vp_true, vp0 = (background - anomaly).astype(np.float32), background.astype(np.float32)
    rec = np.concatenate([np.stack([c, np.full(n, L / 2), np.zeros(n)], 1),
                          np.stack([np.full(n, L / 2), c, np.zeros(n)], 1)]).astype(np.float32)
    A = dict(vp_true=vp_true, vp0=vp0, rho_true=np.ones_like(vp0), rho0=np.ones_like(vp0),
             wavelet=np.asarray(js.ricker(time, 0.015), np.float32),
             src=np.array([[L / 2, L / 2, 20.0]], np.float32), rec=rec,
             spacing=np.array([h, h, h]), dt_ms=np.float64(dt), nbl=np.int64(nbl))
    return A, f"3D {n}^3 at {h:g} m, nbl {nbl}, 0..{tn:g} ms, dt {dt:g} ms, nt {time.nt}"


PHYSICS = {
    "vda": Physics("VariableDensityAcoustic",
                   lambda vp, rho: {"m": _m(vp), "rho": np.asarray(rho, np.float32)},
                   DeepwaveAcoustic, "variable-density acoustic (m, rho)"),
    "visco": Physics("Viscoacoustic",
                     lambda vp, rho: {"m": _m(vp), "rho": np.asarray(rho, np.float32),
                                      "qp": _qp(vp)},
                     DeepwaveVisco, "viscoacoustic (m, rho; qp = 20 vp^2 fixed, no gradient)"),
    "acoustic": Physics("Acoustic", lambda vp, rho: _m(vp), _deepwave_scalar,
                        "constant-density acoustic (m); density unused"),
    # Elastic: vs = vp / 1.8, explosive source (its stress rate is the wavelet's trapezoidal
    # running integral, as jaxseis.Elastic computes it in JAX), pressure recorded; deepwave.elastic
    # with the same stress rate as a pressure-rate source.
    "elastic": Physics("Elastic",
                       lambda vp, rho: {"vp": np.asarray(vp, np.float32),
                                        "vs": (np.asarray(vp, np.float32) / 1.8).astype(np.float32),
                                        "rho": np.asarray(rho, np.float32)},
                       DeepwaveElastic,
                       "isotropic elastic velocity-stress (vp, vs = vp / 1.8, rho)",
                       lambda w, dt: _elastic_series(w, dt)),
    "tti": Physics("TTIAcoustic", _tti, None,
                   "pseudo-acoustic TTI (m, epsilon, delta, theta), smooth anisotropy and tilt; "
                   "density unused"),
    "tti3d": Physics("TTIAcoustic", _tti, None,
                     "pseudo-acoustic TTI in 3D (tilt and azimuth), small grid",
                     problem=problem_arrays_3d),
    "vti": Physics("TTIAcoustic", lambda vp, rho: _tti(vp, rho, tilt=False), DeepwaveVTI,
                   "VTI, TTIAcoustic(tilt=False) (m, epsilon, delta of the tti model), against "
                   "deepwave.acoustic_vti", options=(("tilt", False),)),
}


def _elastic_series(w, dt):
    """The stress rate jaxseis.Elastic injects for an explosive wavelet, computed by the same JAX
    function (so that the direct side gets the same float32 series, bit for bit)."""
    import jax.numpy as jnp

    from jaxseis.physics.elastic import _integrate

    w = jnp.asarray(w)
    return np.asarray(_integrate(w[:, None] if w.ndim == 1 else w, dt))


# ---------------------------------------------------------------------------------- problem
def problem_arrays(quick):
    """NumPy arrays of the problem (see the module docstring); needs jaxseis for the wavelet."""
    import jaxseis as js

    n, nbl, tn = (101, 20, 400.0) if quick else (301, 40, 1000.0)
    h, dt = 10.0, 1.0
    L = (n - 1) * h
    time = js.TimeAxis(0.0, tn, dt)
    x, z = np.arange(n) * h, np.arange(n) * h
    sig = 250.0 * L / 3000.0
    background = 1.5 + 2.0 * z[None, :] / 3000.0 + 0.0 * x[:, None]
    anomaly = 0.5 * np.exp(-((x[:, None] - L / 2) ** 2 + (z[None, :] - L / 2) ** 2) / (2 * sig**2))
    gardner = lambda vp: (0.31 * (vp * 1000.0) ** 0.25).astype(np.float32)  # noqa: E731
    vp_true = (background - anomaly).astype(np.float32)
    vp0 = background.astype(np.float32)
    A = dict(vp_true=vp_true, vp0=vp0, rho_true=gardner(vp_true), rho0=gardner(vp0),
             wavelet=np.asarray(js.ricker(time, 0.010, t_peak=100.0), np.float32),
             src=np.array([[L / 2, 20.0]], np.float32),
             rec=np.stack([x, np.zeros(n)], axis=1).astype(np.float32),
             spacing=np.array([h, h]), dt_ms=np.float64(dt), nbl=np.int64(nbl))
    name = (f"{'S2-quick' if quick else 'S2'} with density ({n}x{n} at {h:g} m, nbl {nbl}, "
            f"0..{tn:g} ms, dt {dt:g} ms, nt {time.nt})")
    return A, name


def setup(physics, quick):
    """The jaxseis operator, models and arrays (d_obs from jaxseis on the true model)."""
    import jax.numpy as jnp

    import jaxseis as js

    ph = PHYSICS[physics]
    A, name = (ph.problem or problem_arrays)(quick)
    n = A["vp_true"].shape
    grid = js.Grid(n, tuple(float(s) for s in A["spacing"]))
    nt = A["wavelet"].shape[0]
    time = js.TimeAxis(0.0, (nt - 1) * float(A["dt_ms"]), float(A["dt_ms"]))
    op = getattr(js, ph.cls)(grid, time, space_order=8, nbl=int(A["nbl"]), **dict(ph.options))
    S = dict(physics=physics, A=A, name=name, op=op,
             model_true=ph.model(A["vp_true"], A["rho_true"]), model0=ph.model(A["vp0"], A["rho0"]))
    crit = op.critical_dt(S["model_true"])
    if crit < time.dt:
        raise SystemExit(f"dt {time.dt} ms exceeds the critical dt {crit:.3f} ms of {ph.cls}")
    S["critical_dt"] = crit
    S["d_obs"] = np.asarray(op.forward(S["model_true"], A["wavelet"], A["src"], A["rec"]))
    S["jnp"] = jnp
    return S


# ---------------------------------------------------------------------------------- sides
def jaxseis_callables(S):
    import jax
    import jax.numpy as jnp

    op, A = S["op"], S["A"]
    w, src, rec = (jnp.asarray(A[k]) for k in ("wavelet", "src", "rec"))
    mt = jax.tree_util.tree_map(jnp.asarray, S["model_true"])
    m0 = jax.tree_util.tree_map(jnp.asarray, S["model0"])
    d_obs = jnp.asarray(S["d_obs"])

    # Parameters without derivatives (Viscoacoustic's qp) are held fixed, not differentiated.
    diff = op.differentiable if isinstance(m0, dict) else None
    fixed = {k: v for k, v in m0.items() if k not in diff} if diff else {}

    def loss(model, d):
        r = op.forward({**model, **fixed} if diff else model, w, src, rec) - d
        return 0.5 * jnp.sum(r * r)

    fwd = jax.jit(op.forward)
    vg = jax.jit(jax.value_and_grad(loss))
    x0 = {k: m0[k] for k in diff} if diff else m0
    return {FWD: lambda: jax.block_until_ready(fwd(mt, w, src, rec)),
            GRAD: lambda: jax.block_until_ready(vg(x0, d_obs))}


class Direct:
    """The jaxseis Solver's compiled operators applied to Devito objects made once.

    Every Devito function an operator takes (`Operator.parameters`) is made here from its spec
    (`op.solver.ctx.specs[name].make(...)`); per call only what must be is refilled or zeroed.
    `aligned=False`: every function in Devito's default layout (rows not padded to cache lines,
    jaxseis/devito/_layout.py), for `bench_tuning.py`'s `static+unpadded`."""

    def __init__(self, op, src, rec, wavelet, aligned=None):
        from jaxseis.devito._kernel import components

        self.components = components
        self.s = s = op.solver
        self.nt, self.dt = op.time.nt, op.time.dt
        nt = self.nt
        self.ops = {"fwd": s.operator("forward", source="point", save=False, born=False),
                    "fwd_save": s.operator("forward", source="point", save=True, born=False),
                    "grad": s.operator("adjoint", grad=True)}
        specs = s.ctx.specs
        self.needs = tuple(s.kernel.needs(s.parameters))
        names = {k: [p.name for p in o.parameters
                     if getattr(p, "is_DiscreteFunction", False) and p.name in specs]
                 for k, o in self.ops.items()}
        src = np.asarray(src, s.dtype).reshape(-1, len(s.cfg.shape))
        rec = np.asarray(rec, s.dtype).reshape(-1, len(s.cfg.shape))
        q = np.asarray(wavelet, s.dtype).reshape(nt, -1)
        q = np.broadcast_to(q, (nt, src.shape[0]))

        def sparse(name, coords, series=None):
            sp = specs[name].make(aligned=aligned, npoint=coords.shape[0], nt=nt + 2)
            sp.coordinates.data[:] = coords
            sp.data[:] = 0
            if series is not None:
                sp.data[1:nt + 1] = series
            return sp

        objs, self.coef = {}, {}
        for name in sorted(set().union(*names.values())):
            role = specs[name].role
            if name == "damp":
                objs[name] = s.damp
                if aligned is False:
                    objs[name] = specs[name].make(aligned=False)
                    objs[name].data[:] = s.damp.data
            elif name == "src":
                objs[name] = sparse("src", src, q)
            elif name in s.ctx.receivers:
                objs[name] = sparse(name, rec)
            elif role in ("coef", "state", "adjoint", "aux", "grad"):
                objs[name] = specs[name].make(aligned=aligned)
                if role == "coef":
                    self.coef[name] = objs[name]
            else:
                raise NotImplementedError(f"Direct: no rule for {name!r} (role {role!r})")
        self.resid = {name: sparse(name, rec) for name in s.ctx.receivers}   # adjoint sources
        self.saved = {name: specs[name].make(aligned=aligned, save=nt + 2)
                      for name in s.kernel.saved}
        for f in self.saved.values():  # touch the saved wavefield once, outside the timings
            for c in components(f):
                c.data_with_halo[:] = 0
        self.kw = {}
        for k, ns in names.items():
            kw = {n: objs[n] for n in ns}
            if k != "fwd":
                kw.update({n: self.saved[n] for n in ns if n in self.saved})
            if k == "grad":
                kw.update({n: self.resid[n] for n in ns if n in self.resid})
            self.kw[k] = kw
        self.state = [objs[n] for n in objs if specs[n].role == "state"]
        self.adjoint = [objs[n] for n in objs if specs[n].role == "adjoint"]
        self.grads = {n: objs[n] for n in objs if specs[n].role == "grad"}
        self.rec = [objs[n] for n in s.ctx.receivers]

    def _zero(self, objs):
        for f in objs:
            for c in self.components(f):
                c.data_with_halo[:] = 0

    def _apply(self, which):
        # On jaxseis's OpenMP master thread, like jaxseis's own solves (C.on_openmp_master).
        C.on_openmp_master(self.ops[which].apply)(
            time_m=1, time_M=self.nt, dt=self.s.dtype.type(self.dt), **self.kw[which])

    def _set_model(self, model):
        s = self.s
        padded = {k: s.pad_model(np.asarray(v)) for k, v in s._as_model(model).items()}
        for name, arr in s.kernel.coefficients(padded).items():
            if name in self.coef:
                self.coef[name].data[:] = arr
        return padded

    def _data(self):
        traces = [np.array(r.data[1:self.nt + 1]) for r in self.rec]
        return np.stack(traces, -1) if self.s.kernel.component_axis else traces[0]

    def forward(self, model):
        self._set_model(model)
        self._zero(self.state)
        self._apply("fwd")
        return self._data()

    def value_and_grad(self, model, d_obs):
        s, nt = self.s, self.nt
        padded = self._set_model(model)
        for f in self.saved.values():      # zero initial states; later slots written before read
            for c in self.components(f):
                c.data_with_halo[:2] = 0
        self._zero([f for f in self.state if f.name not in self.saved])
        self._apply("fwd_save")
        resid = self._data() - d_obs
        f = 0.5 * float(np.sum(resid.astype(np.float64) ** 2))
        for i, name in enumerate(s.ctx.receivers):
            self.resid[name].data[1:nt + 1] = resid[..., i] if s.kernel.component_axis else resid
        self._zero(self.adjoint)
        self._zero(self.grads.values())
        self._apply("grad")
        coef_grads = {c: (np.asarray(self.grads["g_" + c].data, np.float64) if c in self.needs
                          else np.zeros(s.padded_shape)) for c in self.coef if c != "imask"}
        par = s.kernel.transpose(padded, coef_grads)
        g = {k: s.unpad_model_adjoint(par[k]) for k in s.parameters if k in par}
        return f, (g if isinstance(model, dict) else g[s.parameters[0]])


def direct_callables(S, aligned=None):
    A = S["A"]
    series = PHYSICS[S["physics"]].source_series
    w = A["wavelet"] if series is None else series(A["wavelet"], float(A["dt_ms"]))
    d = Direct(S["op"], A["src"], A["rec"], w, aligned=aligned)
    d_obs = np.asarray(S["d_obs"])
    return {FWD: lambda: d.forward(S["model_true"]),
            GRAD: lambda: d.value_and_grad(S["model0"], d_obs)}, d


def deepwave_runner(physics, A, courant="match"):
    make = PHYSICS[physics].deepwave
    return None if make is None else make(A, courant=courant)


# ---------------------------------------------------------------------------------- numbers


def _flat(tree):
    if isinstance(tree, dict):
        return {k: np.asarray(v) for k, v in tree.items()}
    return {"m": np.asarray(tree)}


def agreement(S, js_out, dir_out):
    """jaxseis vs direct: data, misfit and every gradient (max |a - b| / max |b|)."""
    out = {"forward data": C.rel_diff(js_out[FWD], dir_out[FWD])}
    (fj, gj), (fd, gd) = js_out[GRAD], dir_out[GRAD]
    out["misfit"] = abs(float(fj) - fd) / max(abs(fd), 1e-300)
    gj, gd = _flat(gj), _flat(gd)
    for k in gd:
        out[f"gradient {k}"] = C.rel_diff(gj[k], gd[k])
    return out


# ---------------------------------------------------------------------------------- child
def child(physics, name, quick, repeats, arrays, courant):
    """Fresh process: one configuration (warm-up + `repeats`), its peak RSS."""
    side, kind = next(k for k, v in LABEL.items() if v == name)
    if side == "deepwave":
        with np.load(arrays) as f:
            A = {k: f[k] for k in ARRAY_KEYS}
        dw = deepwave_runner(physics, A, courant)
        fn = dw.callables()[name]
        return C.run_and_emit(name, fn, repeats, step_ratio=dw.step_ratio)
    S = setup(physics, quick)
    fns = jaxseis_callables(S) if side == "jaxseis" else direct_callables(S)[0]
    C.run_and_emit(name, fns[kind], repeats)


# ---------------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--physics", default="vda", choices=sorted(PHYSICS))
    p.add_argument("--quick", action="store_true", help="small grid (smoke test, seconds)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--no-memory", action="store_true", help="skip the per-process memory runs")
    p.add_argument("--no-deepwave", action="store_true",
                   help="behave as if deepwave were not installed")
    p.add_argument("--deepwave-courant", default="match", choices=["match", "default"])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--arrays", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a.physics, a.child, a.quick, a.repeats, a.arrays, a.deepwave_courant)

    if a.no_deepwave:
        DW.block_import()
    dw_error = DW.import_error()
    if PHYSICS[a.physics].deepwave is None:
        dw_error = f"no deepwave counterpart registered for {a.physics!r}"
    if dw_error is not None:
        print(f"deepwave skipped: {dw_error}" + (" (pip install torch==2.13.0 deepwave==0.1.0)"
                                                 if "import" in dw_error.lower()
                                                 or "module" in dw_error.lower() else ""),
              flush=True)
    sides = [s for s in SIDES if s != "deepwave" or dw_error is None]
    print(f"load average at start: {C.load_average()}", flush=True)

    S = setup(a.physics, a.quick)
    op, A = S["op"], S["A"]
    nt = op.time.nt
    padded_points = int(np.prod(op.solver.padded_shape))
    print(f"\n{type(op).__name__} on {S['name']}: padded grid "
          f"{'x'.join(map(str, op.solver.padded_shape))}, critical dt {S['critical_dt']:.3f} ms, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, repeats {a.repeats}", flush=True)

    fns = {"jaxseis": jaxseis_callables(S)}
    fns["direct"], _ = direct_callables(S)
    dw = None
    if "deepwave" in sides:
        # torch's CPU kernels use the same GNU OpenMP runtime as Devito's: run them on jaxseis's
        # OpenMP master thread too, so that the process has one OpenMP team (a second master
        # makes every solve of both libraries several times slower: jaxseis/devito/_openmp.py).
        dw = C.on_openmp_master(deepwave_runner)(a.physics, A, a.deepwave_courant)
        c = C.on_openmp_master(dw.callables)()
        fns["deepwave"] = {FWD: C.on_openmp_master(c[DW.FORWARD]),
                           GRAD: C.on_openmp_master(c[DW.GRADIENT])}

    timing = {}
    for kind in (FWD, GRAD):
        r = C.interleaved({LABEL[s, kind]: fns[s][kind] for s in sides}, a.repeats)
        timing.update(r)
        print(f"  {kind} timed", flush=True)

    agree = agreement(S, {k: timing[LABEL["jaxseis", k]]["out"] for k in (FWD, GRAD)},
                      {k: timing[LABEL["direct", k]]["out"] for k in (FWD, GRAD)})
    print("  jaxseis vs Devito direct (max |a - b| / max |b|): "
          + ", ".join(f"{k} {v:.1e}" for k, v in agree.items()))
    deepwave_info = dict(status="benchmarked" if dw is not None else "skipped", reason=dw_error)
    if dw is not None:
        gather = np.asarray(timing[DW.FORWARD]["out"][0].numpy().T)        # (nt, nrec)
        d_js = np.asarray(timing[LABEL["jaxseis", FWD]]["out"])
        if d_js.ndim == gather.ndim + 1:  # a component axis: the first (elastic records p only)
            d_js = d_js[..., 0]
        shape_ok = gather.shape == d_js.shape
        corr = DW.gather_correlation(gather, d_js) if shape_ok else {}
        if shape_ok:  # without the normalisation by the extremes (which may sit on other lobes)
            g64, d64 = gather.astype(np.float64), d_js.astype(np.float64)
            corr["raw_correlation"] = float(np.sum(g64 * d64) / np.sqrt(np.sum(g64**2)
                                                                         * np.sum(d64**2)))
            corr["norm_ratio"] = float(np.linalg.norm(g64) / np.linalg.norm(d64))
        deepwave_info.update(dw.describe(), gather_shape=list(gather.shape),
                             jaxseis_shape=list(d_js.shape), shape_ok=shape_ok, gather_check=corr)
        if shape_ok:
            print(f"  deepwave vs jaxseis gather: shape {gather.shape} ok, correlation "
                  f"{corr['correlation']:.4f} ({'ok' if corr['correlation'] > 0.9 else 'LOW'}, "
                  f"expect > 0.9), amplitude ratio {corr['amplitude_ratio']:.3g}, polarity "
                  f"{corr['polarity']:+d}, best {corr['best_correlation']:.4f} at lag "
                  f"{corr['best_lag_samples']:+d}; raw correlation {corr['raw_correlation']:.4f}, norm "
                  f"ratio {corr['norm_ratio']:.3g}; step ratio {dw.step_ratio}", flush=True)
        else:
            print(f"  deepwave gather shape {gather.shape} != jaxseis {d_js.shape}: MISMATCH")

    memory = {}
    with tempfile.TemporaryDirectory(prefix="bench_physics_") as tmp:
        arrays = os.path.join(tmp, "arrays.npz")
        np.savez(arrays, **A)
        for s in [] if a.no_memory else sides:
            for kind in (FWD, GRAD):
                name = LABEL[s, kind]
                argv_c = [__file__, "--physics", a.physics, "--child", name, "--repeats", "2",
                          "--arrays", arrays, "--deepwave-courant", a.deepwave_courant]
                argv_c += ["--quick"] if a.quick else []
                mm = memory[name] = C.run_child(argv_c)
                print(f"  memory child {name}: " + (
                    f"peak {mm['peak_rss_mb']:.0f} MB, increment {mm['increment_mb']:.0f} MB"
                    if "error" not in mm else f"ERROR {mm['error']} {mm.get('stderr', '')[-800:]}"),
                      flush=True)

    rows, table = [], []
    for kind in (FWD, GRAD):
        base = timing[LABEL["jaxseis", kind]]
        for s in sides:
            name = LABEL[s, kind]
            t = timing[name]
            st = C.spread(t["times_s"])
            paired = statistics.median(x / y for x, y in zip(t["times_s"], base["times_s"]))
            mm = memory.get(name, {})
            gpts = padded_points * nt / st["median_s"] / 1e9
            row = dict(config=name, side=s, op=kind, **st, times_s=t["times_s"],
                       ratio_vs_jaxseis=st["median_s"] / base["median_s"],
                       paired_ratio_vs_jaxseis=paired, gpts_per_s=gpts,
                       peak_rss_mb=mm.get("peak_rss_mb"), increment_mb=mm.get("increment_mb"),
                       child_median_s=mm.get("median_s"), child_error=mm.get("error"))
            rows.append(row)
            table.append([name, C.fmt(st["min_s"], ".4f"), C.fmt(st["median_s"], ".4f"),
                          C.fmt(st["p90_s"], ".4f"), C.fmt(st["max_s"], ".4f"),
                          C.fmt(row["ratio_vs_jaxseis"], ".3f"), C.fmt(paired, ".3f"),
                          C.fmt(gpts, ".3g"), C.fmt(mm.get("peak_rss_mb"), ".0f"),
                          C.fmt(mm.get("increment_mb"), ".0f")])
    print(f"\n{type(op).__name__}, {S['name']}, load average now {C.load_average()}")
    C.print_table(["config", "min s", "median s", "p90 s", "max s", "median / jaxseis",
                   "paired ratio", "GPts/s", "peak RSS MB (own process)", "RSS increment MB"],
                  table)
    print(f"GPts/s = {padded_points} padded grid points x {nt} steps / median s / 1e9 (the same "
          "work count for every side; value_and_grad does a forward and an adjoint sweep)")

    default = f"bench_physics_{a.physics}" + ("_quick" if a.quick else "")
    C.write_json(default, dict(
        physics=a.physics, operator=type(op).__name__, problem=S["name"], quick=a.quick,
        repeats=a.repeats, padded_shape=list(op.solver.padded_shape), nt=nt,
        critical_dt_ms=S["critical_dt"], agreement=agree, results=rows, deepwave=deepwave_info,
        memory_children=memory, load_average_end=C.load_average()), a.json)


if __name__ == "__main__":
    main()
