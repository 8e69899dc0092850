"""S2-shots: where the shots of a batched call run (see benchmarks/README.md, problem S2-shots).

Compares, for `forward` and `value_and_grad` of the summed least-squares misfit over 8 shots:

- `loop`: 8 single-shot jitted calls in a Python loop (the baseline: in-process, serial),
- `vmap`: one jitted call of `jax.vmap` over the 8 shots (one host callback with all of them),

each under the executors `serial` (one shot after another, all OpenMP threads each), `threads`
(`cores` shots at once, `1` thread each on 2 cores) and `dask` (a LocalCluster of 2 worker processes
with 1 thread each on loopback; the `loop` row sends one shot at a time). Timing: one untimed warm-up
per case, then `--reps` rounds in which every case runs once (interleaved, so drift from other
processes on the machine hits every case alike); medians and ratios to `loop/serial`.

    python benchmarks/bench_shots.py            # S2-shots (301 x 301, space order 8, 676 steps)
    python benchmarks/bench_shots.py --quick    # a small smoke version
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxseis as js
from jaxseis import _executor as ex

sys.path.insert(0, str(Path(__file__).parent))
import _common  # noqa: E402  (the timing spread every table reports)

GAP_S = 0.2  # seconds of idle before every timed call (see _common.interleaved)


def s2_shots(quick=False):
    if quick:
        n, h, so, nbl, tn, dt, f0 = 101, 10.0, 4, 20, 400.0, 1.0, 0.015
    else:
        n, h, so, nbl, tn, dt, f0 = 301, 10.0, 8, 40, 1000.0, 1.483, 0.010
    grid = js.Grid((n, n), (h, h))
    time_axis = js.TimeAxis(0.0, tn, dt)
    op = js.Acoustic(grid, time_axis, space_order=so, nbl=nbl)
    L = (n - 1) * h
    x = np.arange(n) * h
    z = x[None, :]
    xx = x[:, None]
    v = 1.5 + 2.0 * z / L + 0.0 * xx
    anomaly = 0.5 * np.exp(-((xx - L / 2) ** 2 + (z - L / 2) ** 2) / (2 * (L / 12) ** 2))
    m_true = (1.0 / (v - anomaly) ** 2).astype(np.float32)
    m0 = (1.0 / v**2).astype(np.float32)
    rec = np.stack([x, np.zeros(n)], axis=1)
    xs = np.linspace(0.05 * L, 0.75 * L, 8)  # S2: 150, 450, ..., 2250 m
    srcs = np.stack([xs, np.full(8, 20.0)], axis=1)[:, None, :]
    wavelet = np.asarray(js.ricker(time_axis, f0, 1.0 / f0), np.float32)
    return op, jnp.asarray(m_true), jnp.asarray(m0), jnp.asarray(srcs), jnp.asarray(rec), \
        jnp.asarray(wavelet)


def build_cases(op, m_true, m0, srcs, rec, w):
    fwd1 = jax.jit(op.forward)
    fwdv = jax.jit(jax.vmap(op.forward, in_axes=(None, None, 0, None)))
    d_obs = jax.block_until_ready(fwdv(m_true, w, srcs, rec))

    def loss1(m, s, d):
        return 0.5 * jnp.sum((op.forward(m, w, s, rec) - d) ** 2)

    vg1 = jax.jit(jax.value_and_grad(loss1))

    @jax.jit
    @jax.value_and_grad
    def vgv(m):
        return 0.5 * jnp.sum((jax.vmap(op.forward, in_axes=(None, None, 0, None))(m, w, srcs, rec)
                              - d_obs) ** 2)

    def forward_loop():
        return [fwd1(m0, w, s, rec) for s in srcs]

    def forward_vmap():
        return fwdv(m0, w, srcs, rec)

    def vg_loop():
        out = [vg1(m0, s, d) for s, d in zip(srcs, d_obs)]
        return sum(o[0] for o in out), sum(o[1] for o in out)

    def vg_vmap():
        return vgv(m0)

    return {("forward", "loop"): forward_loop, ("forward", "vmap"): forward_vmap,
            ("value_and_grad", "loop"): vg_loop, ("value_and_grad", "vmap"): vg_vmap}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke version")
    ap.add_argument("--reps", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask executor")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_shots.json"))
    args = ap.parse_args(argv)

    op, m_true, m0, srcs, rec, w = s2_shots(args.quick)
    print(f"{'quick' if args.quick else 'S2-shots'}: grid {op.grid.shape}, space order "
          f"{op.space_order}, nbl {op.nbl}, nt {op.time.nt}, 8 shots; cores {ex._cores()}; "
          f"load average {os.getloadavg()}", flush=True)
    cases = build_cases(op, m_true, m0, srcs, rec, w)

    executors = {"serial": ex.SerialExecutor(), "threads": ex.ThreadExecutor(),
                 "auto": ex.AutoExecutor()}
    client = cluster = None
    if not args.no_dask:
        import distributed

        t0 = time.perf_counter()
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
        client = distributed.Client(cluster)
        executors["dask"] = ex.DaskExecutor(client)
        print(f"dask LocalCluster (2 processes x 1 thread) up in {time.perf_counter() - t0:.1f} s",
              flush=True)

    plan = []
    for (opname, how), fn in cases.items():
        for exname in executors:
            if how == "loop" and exname == "threads":
                continue  # single-shot calls: threads has nothing to overlap (same as serial)
            plan.append((opname, how, exname, fn))

    def clear_stores():
        # Saved wavefields of earlier cases stay in the stores (this process's and every worker's),
        # and the gradient's memory check counts only free memory; on a shared machine 8 S2 shots
        # (3 GB) then get refused. Every gradient case therefore starts from empty stores (each pays
        # the first touch of its wavefield buffers alike).
        def clear():
            import gc

            op.solver.store.clear()
            gc.collect()

        clear()
        if client is not None:
            client.run(clear)

    def timed(exname, fn):
        # Steady state, as in a training loop: saved-wavefield buffers of the previous call are
        # reused (the store counts them as available memory), so no case pays first touch of fresh
        # wavefields on every call. Stores are cleared once between cases of different shape.
        with ex.executor(executors[exname]):
            time.sleep(GAP_S)  # start from an idle machine, as _common.interleaved does
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            return time.perf_counter() - t0

    results = {}
    for opname, how, exname, fn in plan:  # warm-up: compiles, builds operators (also on workers)
        clear_stores()
        t = timed(exname, fn)
        print(f"  warm-up {opname:15s} {how:5s} {exname:8s} {t:7.2f} s", flush=True)
        results[(opname, how, exname)] = []
    for r in range(args.reps):
        for opname, how, exname, fn in plan:
            timed(exname, fn)  # untimed: brings this case's buffers back after the other cases
            results[(opname, how, exname)].append(timed(exname, fn))
        print(f"  round {r + 1}/{args.reps} done, load average {os.getloadavg()}", flush=True)

    rows = []
    print("\n| op | how | executor | median s | min / p90 / max s | vs loop/serial |\n"
          "|---|---|---|---|---|---|")
    for opname, how, exname, _ in plan:
        ts = results[(opname, how, exname)]
        base = statistics.median(results[(opname, "loop", "serial")])
        med = statistics.median(ts)
        dist = _common.spread(ts)
        rows.append(dict(op=opname, how=how, executor=exname, **dist, times_s=ts,
                         ratio_vs_loop_serial=med / base))
        print(f"| {opname} | {how} | {exname} | {med:.3f} | {_common.spread_cell(dist)} | "
              f"{med / base:.2f} |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process {rss:.0f} MB; load average at end {os.getloadavg()}")

    out = dict(problem="quick" if args.quick else "S2-shots", grid=list(op.grid.shape),
               space_order=op.space_order, nbl=op.nbl, nt=op.time.nt, shots=8, reps=args.reps,
               cores=ex._cores(), machine=platform.processor() or platform.machine(),
               python=sys.version.split()[0], jax=jax.__version__, peak_rss_mb=rss,
               load_average_end=os.getloadavg(), rows=rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    if client is not None:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
