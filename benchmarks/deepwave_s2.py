"""deepwave (PyTorch, optional) on the S2 problem, for bench_baselines.py.

`deepwave.scalar` with accuracy 8 and a PML of `nbl` cells (deepwave pads the PML, plus accuracy/2
halo cells, OUTSIDE the model it is given, replicating the edge values: deepwave/_common.py
setup_propagator / extract_models; so the given model is S2's 301 x 301 interior and the simulated
grid is 389 x 389). SI units: velocity m/s (1 / sqrt(m) km/s * 1000), spacing m, dt s; sources and
receivers at their nearest grid indices (S2's lie on grid nodes); source amplitudes [shot, source,
time] = the jaxseis Ricker. `pml_freq` (the wavelet's 10 Hz) and `max_vel` (the models' maximum) are
pinned so that the true and the starting model get the same discretisation.

Time step: deepwave sub-steps when dt * vmax * sqrt(sum 1/h^2) exceeds its Courant number (default
0.6). S2's dt (1.483 ms, Courant 0.734) would then run 2 internal steps per sample plus FFT
resampling of sources and receivers. `courant="match"` (the default here) passes S2's own Courant
number (below deepwave's critical 0.784 at accuracy 8; above it, deepwave's default is kept), so
deepwave takes exactly S2's nt steps like jaxseis; `courant="default"` keeps deepwave's default.

Threads: deepwave's C kernels use its own bundled libgomp with `torch.get_num_threads()` threads
(deepwave/_engine.py), hence torch.set_num_threads(OMP_NUM_THREADS).

Conventions: deepwave injects -v^2 dt^2 f (scalar.py), jaxseis (Devito) +dt^2 / m q, so the two
gathers have opposite polarity and another scale (about 1/h^2 on S2): `gather_correlation`
normalises by the signed extreme sample. Its receiver samples come one time step later than
jaxseis's (best lag +1 sample).

Imports only NumPy, torch and deepwave (no jax, devito), so that a memory child started as
`python benchmarks/deepwave_s2.py --child NAME --arrays FILE.npz` measures deepwave alone.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets OMP_NUM_THREADS)

import numpy as np  # noqa: E402

FORWARD = "deepwave forward"
GRADIENT = "deepwave forward+backward"
CONFIGS = (FORWARD, GRADIENT)
NOT_INSTALLED = "deepwave not installed: skipped (pip install deepwave)"
ARRAY_KEYS = ("m_true", "m0", "wavelet", "src", "rec", "spacing", "origin", "dt_ms", "nbl")


def block_import():
    """Make `import torch` and `import deepwave` fail in this process (simulates no deepwave)."""
    sys.modules["deepwave"] = None
    sys.modules["torch"] = None


def import_error():
    """None if torch and deepwave import, else the error text."""
    try:
        import deepwave  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        return f"{type(e).__name__}: {e}"
    return None


def arrays_from_problem(P) -> dict:
    """The NumPy arrays deepwave needs from a bench_baselines problem dict (for an .npz)."""
    return dict(m_true=np.asarray(P["m_true"]), m0=np.asarray(P["m0"]),
                wavelet=np.asarray(P["wavelet"]), src=np.asarray(P["src"]),
                rec=np.asarray(P["rec"]), spacing=np.asarray(P["grid"].spacing, np.float64),
                origin=np.asarray(P["grid"].origin or (0.0,) * len(P["grid"].spacing), np.float64),
                dt_ms=np.float64(P["time"].dt), nbl=np.int64(P["nbl"]))


def nearest_indices(pos, spacing, origin):
    """Positions (n, ndim) in metres -> nearest grid indices, and the largest offset (m)."""
    pos = np.asarray(pos, np.float64) - np.asarray(origin, np.float64)
    h = np.asarray(spacing, np.float64)
    idx = np.rint(pos / h).astype(np.int64)
    return idx, float(np.max(np.abs(idx * h - pos))) if pos.size else 0.0


class DeepwaveS2:
    """deepwave.scalar set up on one S2 problem (arrays as from `arrays_from_problem`)."""

    def __init__(self, A, courant="match", threads=None):
        import deepwave
        import torch

        self.torch, self.deepwave = torch, deepwave
        torch.set_num_threads(int(threads or os.environ["OMP_NUM_THREADS"]))
        h = [float(s) for s in np.asarray(A["spacing"])]
        self.h, self.dt = h, float(A["dt_ms"]) * 1e-3                       # m, s
        vp_true = 1000.0 / np.sqrt(np.asarray(A["m_true"], np.float64))    # m/s
        vp0 = 1000.0 / np.sqrt(np.asarray(A["m0"], np.float64))
        self.v_true = torch.tensor(vp_true, dtype=torch.float32)
        self.v0 = torch.tensor(vp0, dtype=torch.float32)
        self.max_vel = float(max(self.v_true.max(), self.v0.max()))  # float32 values, exactly
        s_idx, s_off = nearest_indices(A["src"], h, A["origin"])
        r_idx, r_off = nearest_indices(A["rec"], h, A["origin"])
        self.offgrid_m = max(s_off, r_off)
        self.src_loc = torch.tensor(s_idx, dtype=torch.long)[None]         # [1, nsrc, 2]
        self.rec_loc = torch.tensor(r_idx, dtype=torch.long)[None]         # [1, nrec, 2]
        w = np.asarray(A["wavelet"], np.float32)
        w = w[:, None] if w.ndim == 1 else w                               # (nt, nsrc)
        self.src_amp = torch.tensor(np.ascontiguousarray(w.T))[None]       # [1, nsrc, nt]
        self.nbl = int(A["nbl"])
        self.accuracy = 8
        self.courant_s2 = self.dt * self.max_vel * math.sqrt(sum(1.0 / x**2 for x in h))
        crit = deepwave.discretisation.critical_courant_number(self.accuracy, propagator="scalar")
        if courant == "match" and self.courant_s2 <= crit:
            self.courant_number = self.courant_s2 * (1 + 1e-6)
        elif courant in ("match", "default"):
            self.courant_number = None            # deepwave's default (0.6), sub-steps if needed
        else:
            self.courant_number = float(courant)
        self.courant_mode = courant
        self.critical_courant = crit
        self.d_obs = None
        self.step_ratio = None

    def _run(self, v):
        out = self.deepwave.scalar(
            v, self.h, self.dt, source_amplitudes=self.src_amp, source_locations=self.src_loc,
            receiver_locations=self.rec_loc, accuracy=self.accuracy, pml_width=self.nbl,
            pml_freq=10.0, max_vel=self.max_vel, courant_number=self.courant_number)
        if self.step_ratio is None:
            self.step_ratio = int(out.info.step_ratio)
        return out.receiver_amplitudes                                     # [1, nrec, nt]

    def forward(self, v=None):
        with self.torch.no_grad():
            return self._run(self.v_true if v is None else v)

    def shot_gather(self):
        """Data on the true model as a NumPy (nt, nrec) array, the jaxseis layout."""
        return self.forward()[0].numpy().T.copy()

    def value_and_grad(self):
        """0.5 ||d(v0) - d_obs||^2 and its gradient wrt v (m/s), d_obs from the true model."""
        if self.d_obs is None:
            self.d_obs = self.forward()
        v = self.v0.detach().clone().requires_grad_(True)
        r = self._run(v) - self.d_obs
        loss = 0.5 * (r * r).sum()
        loss.backward()
        return loss.detach(), v.grad

    def callables(self):
        """{config name: zero-argument callable running it to completion}."""
        if self.d_obs is None:
            self.d_obs = self.forward()
        return {FORWARD: self.forward, GRADIENT: self.value_and_grad}

    def describe(self) -> dict:
        return dict(deepwave=self.deepwave.__version__, torch=self.torch.__version__,
                    torch_threads=self.torch.get_num_threads(), accuracy=self.accuracy,
                    pml_width=self.nbl, courant_mode=self.courant_mode,
                    courant_number=self.courant_number, courant_s2=self.courant_s2,
                    critical_courant=self.critical_courant, step_ratio=self.step_ratio,
                    max_vel_m_s=self.max_vel, offgrid_max_m=self.offgrid_m,
                    simulated_shape=[n + 2 * (self.nbl + self.accuracy // 2)
                                     for n in self.v_true.shape])


def gather_correlation(d_a, d_b, max_lag=5):
    """Normalised correlation of two (nt, nrec) gathers after dividing each by its extreme value
    (the sample of largest magnitude, with its sign: this removes source scaling and polarity;
    `polarity` is the sign of the ratio of the two extremes). Also the best correlation over time
    shifts of -max_lag..max_lag samples (`a[t + lag]` against `b[t]`)."""
    a = np.asarray(d_a, np.float64)
    b = np.asarray(d_b, np.float64)
    ea, eb = a.flat[np.argmax(np.abs(a))], b.flat[np.argmax(np.abs(b))]
    a, b = a / ea, b / eb

    def corr(x, y):
        return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))

    best = (corr(a, b), 0)
    for lag in range(-max_lag, max_lag + 1):
        if lag > 0:
            c = corr(a[lag:], b[:-lag])
        elif lag < 0:
            c = corr(a[:lag], b[-lag:])
        else:
            continue
        if c > best[0]:
            best = (c, lag)
    return dict(correlation=corr(a, b), polarity=int(np.sign(ea * eb)),
                amplitude_ratio=float(ea / eb), best_correlation=best[0], best_lag_samples=best[1],
                max_abs_diff_normalised=float(np.max(np.abs(a - b))))


# ---------------------------------------------------------------------------------- child
def child(name, arrays, repeats, courant):
    """Fresh process: run one deepwave configuration (warm-up + `repeats`), report peak RSS."""
    with np.load(arrays) as f:
        A = {k: f[k] for k in ARRAY_KEYS}
    dw = DeepwaveS2(A, courant=courant)
    fn = dw.callables()[name]  # computes d_obs first, as the jaxseis children have theirs
    C.run_and_emit(name, fn, repeats, step_ratio=dw.step_ratio)


def main(argv=None):
    p = argparse.ArgumentParser(description="deepwave memory child for bench_baselines.py")
    p.add_argument("--child", required=True, choices=CONFIGS)
    p.add_argument("--arrays", required=True)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--courant", default="match")
    a = p.parse_args(argv)
    child(a.child, a.arrays, a.repeats, a.courant)


if __name__ == "__main__":
    main()
