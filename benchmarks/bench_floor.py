"""The memory floor of a full-storage gradient: how fast this machine streams a saved history.

Why: issue 13 asks for value_and_grad <= 2.5x the forward on S2. The forward keeps its working set
(three wavefield levels, m, damp: ~3 MB) in the two cores' caches and is bound by arithmetic; a
gradient with `FullStorage` also writes the history (one level per step, 1001 x 389^2 floats =
606 MB with the halo) and reads it back in the adjoint. This script measures, with a small C
program compiled by the same gcc and flags family Devito uses (`-O3 -march=native -fopenmp`, two
threads, contiguous static slabs like jaxseis's operators):

- `write`: the forward's extra traffic, one level stored per step (`hist[t] = u`, `u` in cache);
- `read`: the history read back, one level per step, summed into a cached accumulator;
- `imaging`: the acoustic imaging pass as the adjoint runs it, `g -= hist[t] * (v1 - 2 v2 + v3)`
  with the three adjoint levels and `g` cache-resident and `hist` streamed from DRAM, backwards
  in time;
- `cache`: the same imaging loop over a history of two levels only (everything in cache): the
  arithmetic alone.

Printed: seconds per sweep of 1001 steps (median of `--repeats`), GB/s, and what they imply for
S2's value_and_grad / forward ratio given a measured forward time (`--forward S`, default the
README's 0.0645 s through jaxseis): forward + write + adjoint (taken as one forward) + imaging.

Run: `python benchmarks/bench_floor.py` (seconds; quiet machine).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402,F401  (sets OMP_NUM_THREADS=2)

import numpy as np  # noqa: E402

SRC = r"""
#include <stddef.h>
void write_hist(float *restrict hist, const float *restrict u, long n, long nt) {
  for (long t = 0; t < nt; t++) {
    float *restrict h = hist + t * n;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) h[i] = u[i] + (float)t;
  }
}
double read_hist(const float *restrict hist, float *restrict acc, long n, long nt) {
  for (long t = nt - 1; t >= 0; t--) {
    const float *restrict h = hist + t * n;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) acc[i] += h[i];
  }
  return acc[n / 2];
}
void imaging(const float *restrict hist, long levels, float *restrict g, const float *restrict v1,
             const float *restrict v2, const float *restrict v3, long n, long nt) {
  for (long t = nt - 1; t >= 0; t--) {
    const float *restrict h = hist + (t % levels) * n;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) g[i] -= h[i] * (v1[i] - 2.0f * v2[i] + v3[i]);
  }
}
"""


def build():
    d = tempfile.mkdtemp(prefix="jaxseis-floor-")
    c, so = os.path.join(d, "floor.c"), os.path.join(d, "floor.so")
    with open(c, "w") as f:
        f.write(SRC)
    subprocess.check_call(["gcc", "-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC",
                           "-shared", c, "-o", so])
    lib = ctypes.CDLL(so)
    fp = ctypes.POINTER(ctypes.c_float)
    L = ctypes.c_long
    lib.write_hist.argtypes = [fp, fp, L, L]
    lib.read_hist.argtypes = [fp, fp, L, L]
    lib.read_hist.restype = ctypes.c_double
    lib.imaging.argtypes = [fp, L, fp, fp, fp, fp, L, L]
    return lib


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=389, help="padded grid side with halo (S2: 389)")
    p.add_argument("--nt", type=int, default=1001)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--forward", type=float, default=0.0645,
                   help="S2 forward time (s) to turn the sweeps into a ratio")
    a = p.parse_args(argv)
    lib = build()
    n, nt = a.n * a.n, a.nt
    hist = np.ones((nt, n), np.float32)          # touched once, before timing
    small = np.ones((2, n), np.float32)
    u, acc, g, v1, v2, v3 = (np.ones(n, np.float32) for _ in range(6))
    P = lambda x: x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))  # noqa: E731
    runs = {
        "write": lambda: lib.write_hist(P(hist), P(u), n, nt),
        "read": lambda: lib.read_hist(P(hist), P(acc), n, nt),
        "imaging": lambda: lib.imaging(P(hist), nt, P(g), P(v1), P(v2), P(v3), n, nt),
        "cache": lambda: lib.imaging(P(small), 2, P(g), P(v1), P(v2), P(v3), n, nt),
    }
    times = {k: [] for k in runs}
    run = C.on_openmp_master(lambda f: f())
    for _ in range(a.repeats + 1):             # first round: warm-up, dropped
        for k, f in runs.items():
            t0 = time.perf_counter()
            run(f)
            times[k].append(time.perf_counter() - t0)
    hist_gb = nt * n * 4 / 1e9
    print(f"history {nt} x {a.n}^2 float32 = {hist_gb * 1e3:.0f} MB, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {a.repeats} rounds")
    print("| sweep | min s | median s | GB/s (history bytes / median) |")
    print("|---|---|---|---|")
    med = {}
    for k, t in times.items():
        t = np.asarray(t[1:])
        med[k] = float(np.median(t))
        gbs = hist_gb / med[k] if k != "cache" else float("nan")
        print(f"| {k} | {t.min():.4f} | {med[k]:.4f} | {gbs:.1f} |")
    f = a.forward
    floor = f + med["write"] + f + med["imaging"]
    print(f"\nvalue_and_grad floor with FullStorage ~ forward {f:.4f} + history write "
          f"{med['write']:.4f} + adjoint {f:.4f} + imaging pass {med['imaging']:.4f} = "
          f"{floor:.4f} s = {floor / f:.2f}x the forward (if nothing overlaps); the imaging "
          f"arithmetic alone (cache) {med['cache']:.4f} s")


if __name__ == "__main__":
    main()
