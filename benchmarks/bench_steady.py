"""Steadiness of back-to-back calls: the per-call time series of the S2 forward (and optionally
value_and_grad), jaxseis against the same Devito operators called directly, in one process.

Why: measured as a user would (one process, `jax.jit` forward on S2 called back to back), the
forward was seen to be bimodal (phases of dozens of calls at 65-80 ms alternating with phases at
145-180 ms). A median hides that; this script prints the whole distribution and the phases.

Problem: `bench_physics.py`'s (S2 with density, dt = 1 ms, nt 1001; `--quick`: 101 x 101, 400 ms)
for `--physics acoustic | vda | ...` (any entry of `bench_physics.PHYSICS`).

Sides, alternating in blocks of `--block` calls (default 50; so a slow phase that lasts longer than
a block shows up in both sides' series if it comes from the machine, in one only if it comes from
one side's buffers or code):

- jaxseis: `jax.jit(op.forward)` on the true model, called back to back (no idle gap);
- direct: the same compiled Devito operator applied to Devito objects made once
  (`bench_physics.Direct`).

Variations (one at a time, each a flag): `--gap S` idle seconds between calls; `--grad` times
value_and_grad instead of the forward; `--fresh-direct` makes the direct side's Devito objects
anew every call (fresh allocation versus reuse); OMP_NUM_THREADS / OMP_PROC_BIND / OMP_WAIT_POLICY
are read from the environment and printed.

Printed per side: min / median / p90 / max, p90 / median (target <= 1.2), the fraction of calls
slower than 1.5 x the minimum, the slow phases (runs of >= 5 consecutive slow calls) and GPts/s
(padded grid points x nt / median). JSON with every time to `results/bench_steady[_quick].json`.

Run: `python benchmarks/bench_steady.py` (minutes; quiet machine), `--quick`, `--calls N`.
"""

from __future__ import annotations

import argparse
import os
import time

import _common as C  # noqa: E402  (sets OMP_NUM_THREADS=2 and quiets Devito first)
import numpy as np

import bench_physics as BP


def series_stats(t, fast=None):
    t = np.asarray(t, dtype=np.float64)
    fast = float(t.min()) if fast is None else fast
    slow = t > 1.5 * fast
    runs, start = [], None
    for i, s in enumerate(np.append(slow, False)):
        if s and start is None:
            start = i
        elif not s and start is not None:
            if i - start >= 5:
                runs.append((start, i - start))
            start = None
    med = float(np.median(t))
    return dict(n=int(t.size), **C.spread(t),
                p90_over_median=float(np.percentile(t, 90) / med),
                slow_fraction=float(slow.mean()), slow_phases=runs)


def sparkline(t, width=100):
    """One character per call group: the group's median relative to the series minimum."""
    t = np.asarray(t)
    groups = np.array_split(t, min(width, t.size))
    lo = t.min()
    chars = " .:-=+*#%@"
    out = []
    for g in groups:
        r = np.median(g) / lo
        out.append(chars[min(len(chars) - 1, int((r - 1.0) / 0.15))])
    return "".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--physics", default="acoustic", choices=sorted(BP.PHYSICS))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--calls", type=int, default=300, help="timed calls per side")
    p.add_argument("--block", type=int, default=50, help="calls per side before switching")
    p.add_argument("--gap", type=float, default=0.0, help="idle seconds between calls")
    p.add_argument("--grad", action="store_true", help="time value_and_grad, not the forward")
    p.add_argument("--fresh-direct", action="store_true",
                   help="direct side: new Devito objects every call")
    p.add_argument("--sides", default="jaxseis,direct")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)

    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_WAIT_POLICY",
                                           "OMP_PLACES")}
    try:
        thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip()
    except OSError:
        thp = "unknown"
    S = BP.setup(a.physics, a.quick)
    kind = BP.GRAD if a.grad else BP.FWD
    fns = {}
    sides = a.sides.split(",")
    if "jaxseis" in sides:
        fns["jaxseis"] = BP.jaxseis_callables(S)[kind]
    if "direct" in sides:
        if a.fresh_direct:
            A = S["A"]

            def fresh():
                d = BP.Direct(S["op"], A["src"], A["rec"], A["wavelet"])
                return (d.forward(S["model_true"]) if not a.grad
                        else d.value_and_grad(S["model0"], np.asarray(S["d_obs"])))
            fns["direct"] = fresh
        else:
            fns["direct"] = BP.direct_callables(S)[0][kind]
    for f in fns.values():  # warm-up (compile, pools)
        f()
        f()
    times = {k: [] for k in fns}
    order = []
    while min(len(v) for v in times.values()) < a.calls:
        for k, f in fns.items():
            for _ in range(min(a.block, a.calls - len(times[k]))):
                if a.gap:
                    time.sleep(a.gap)
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
                order.append(k)
    op = S["op"]
    pts = int(np.prod(op.solver.padded_shape)) * op.time.nt
    fast = min(min(v) for v in times.values())
    print(f"{S['name']}, physics {a.physics}, {'value_and_grad' if a.grad else 'forward'}, "
          f"{a.calls} calls per side in blocks of {a.block}, gap {a.gap} s")
    print(f"env {env}, THP {thp}, load {C.load_average()}")
    rows, out = [], {}
    for k, t in times.items():
        s = series_stats(t, fast)
        s["gpts_per_s"] = pts / s["median_s"] / 1e9
        out[k] = dict(stats=s, times_s=t)
        rows.append([k, C.fmt(s["min_s"]), C.fmt(s["median_s"]), C.fmt(s["p90_s"]),
                     C.fmt(s["max_s"]), C.fmt(s["p90_over_median"], ".2f"),
                     C.fmt(s["slow_fraction"], ".2f"), str(len(s["slow_phases"])),
                     C.fmt(s["gpts_per_s"], ".2f")])
    C.print_table(["side", "min s", "median s", "p90 s", "max s", "p90/med", "slow frac",
                   "slow phases", "GPts/s"], rows)
    for k, t in times.items():
        print(f"{k:>8} |{sparkline(t)}|  (' ' = min, each step +15%)")
    payload = dict(problem=S["name"], physics=a.physics, grad=a.grad, calls=a.calls,
                   block=a.block, gap_s=a.gap, fresh_direct=a.fresh_direct, env=env, thp=thp,
                   load=C.load_average(), sides=out)
    C.write_json("bench_steady" + ("_quick" if a.quick else ""), payload,
                 None if a.json is None else C.Path(a.json))


if __name__ == "__main__":
    main()
