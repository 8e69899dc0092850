"""Memory of the gradient on the long-record case (S2 with tn = 4000 ms, see benchmarks/README.md):
jaxseis value_and_grad with FullStorage() vs Checkpointed() (Revolve with the default budget: one
recomputation) vs Checkpointed(6) (Revolve with 6 checkpoints: less memory, more recomputation) vs
Subsampled(4).

- time: medians of repeated warm runs after one untimed warm-up, the strategies interleaved in
  one process (ratios against FullStorage from the same run);
- peak memory: each strategy (and a forward-only reference) in its own fresh process: peak RSS
  (VmHWM) at the end and its increment over the RSS just before the first call;
- accuracy: the gradient of each strategy against FullStorage's (max and l2 relative difference).

Targets: Checkpointed peak memory <= 1/4 of FullStorage's, time <= 2.5x FullStorage's.

Run: `python benchmarks/bench_memory.py` (S2 at 4000 ms; minutes), `--quick` (101 x 101 at 1600 ms,
seconds), `--repeats N`, `--no-memory`, `--json PATH`. OMP_NUM_THREADS defaults to 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets OMP_NUM_THREADS before jax/devito load)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

STRATEGIES = ["full", "checkpointed", "checkpointed:6", "subsampled:4"]
TARGET_MEMORY_FRACTION = 0.25
TARGET_TIME_RATIO = 2.5


def problem(quick):
    P = C.s2_arrays(quick, tn=1600.0 if quick else 4000.0)
    op = C.jaxseis_op(P)
    P["d_obs"] = jnp.asarray(op.forward(P["m_true"], P["wavelet"], P["src"], P["rec"]))
    return P


def build(P, config):
    m0, mt = jnp.asarray(P["m0"]), jnp.asarray(P["m_true"])
    w, src, rec = (jnp.asarray(P[k]) for k in ("wavelet", "src", "rec"))
    if config == "forward":
        op = C.jaxseis_op(P)
        f = jax.jit(op.forward)
        return lambda: f(mt, w, src, rec).block_until_ready()
    op = C.jaxseis_op(P, storage=C.storage_from_name(config))
    vg = jax.jit(jax.value_and_grad(C.misfit_fn(lambda m: op.forward(m, w, src, rec))))
    return lambda: jax.block_until_ready(vg(m0, P["d_obs"]))


def child(config, quick, repeats):
    C.run_and_emit(config, build(problem(quick), config), repeats)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small grid (smoke test, seconds)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a.child, a.quick, a.repeats)

    print(f"load average at start: {C.load_average()}", flush=True)
    P = problem(a.quick)
    op = C.jaxseis_op(P)
    est = {s: op.gradient_bytes(C.storage_from_name(s)) / 2**20 for s in STRATEGIES}
    print(f"{P['name']}: padded {op.solver.padded_shape}, OMP_NUM_THREADS="
          f"{os.environ['OMP_NUM_THREADS']}, repeats {a.repeats}; estimated saved bytes per shot: "
          + ", ".join(f"{s} {v:.0f} MB" for s, v in est.items()), flush=True)
    nt = P["time"].nt
    revolve = {}
    for s in STRATEGIES:
        st = C.storage_from_name(s)
        if s.startswith("checkpointed"):
            acts = st.schedule(nt)
            revolve[s] = dict(blocks=len(st.segments(nt)), block_steps=st.block_length(nt),
                              checkpoints=st.n_stored(nt),
                              block_advances=sum(a[2] - a[1] for a in acts if a[0] == "advance"))
            print(f"  {st}: {revolve[s]['blocks']} blocks of {revolve[s]['block_steps']} steps, "
                  f"{revolve[s]['checkpoints']} checkpoints, Revolve re-advances "
                  f"{revolve[s]['block_advances']} blocks", flush=True)
    seg = C.storage_from_name("checkpointed").segments(nt)

    fns = {s: build(P, s) for s in STRATEGIES}
    timing = C.interleaved(fns, a.repeats)
    g_full = timing["full"]["out"][1]
    acc = {}
    for s in STRATEGIES:
        g = timing[s]["out"][1]
        acc[s] = dict(grad_max_rel=C.rel_diff(g, g_full), grad_l2_rel=C.rel_l2(g, g_full),
                      loss_rel=abs(float(timing[s]["out"][0]) - float(timing["full"]["out"][0]))
                      / abs(float(timing["full"]["out"][0])))
    print("  timed", flush=True)

    memory = {}
    if not a.no_memory:
        for s in ["forward"] + STRATEGIES:
            argv_c = [__file__, "--child", s, "--repeats", "1"] + (["--quick"] if a.quick else [])
            memory[s] = mm = C.run_child(argv_c)
            print(f"  memory child {s}: " + (f"peak {mm['peak_rss_mb']:.0f} MB, increment "
                                             f"{mm['increment_mb']:.0f} MB" if "error" not in mm
                                             else f"ERROR {mm['error']} {mm.get('stderr', '')[-800:]}"),
                  flush=True)

    t_full = timing["full"]["median_s"]
    rows, table = [], []
    for s in STRATEGIES:
        t = timing[s]["median_s"]
        mm = memory.get(s, {})
        row = dict(storage=s, **{k: timing[s][k] for k in ("min_s", "median_s", "p90_s", "max_s")},
                   times_s=timing[s]["times_s"], time_ratio=t / t_full,
                   estimated_saved_mb=est[s], peak_rss_mb=mm.get("peak_rss_mb"),
                   increment_mb=mm.get("increment_mb"), child_median_s=mm.get("median_s"),
                   child_error=mm.get("error"), **acc[s])
        rows.append(row)
        table.append([s, C.fmt(t), C.spread_cell(timing[s]), C.fmt(t / t_full, ".2f"),
                      C.fmt(est[s], ".0f"),
                      C.fmt(mm.get("peak_rss_mb"), ".0f"), C.fmt(mm.get("increment_mb"), ".0f"),
                      C.fmt(acc[s]["grad_max_rel"], ".1e"), C.fmt(acc[s]["grad_l2_rel"], ".1e")])
    if "forward" in memory and "error" not in memory["forward"]:
        mm = memory["forward"]
        table.append(["(forward only, reference)", "-", "-", "-", "-", C.fmt(mm["peak_rss_mb"], ".0f"),
                      C.fmt(mm["increment_mb"], ".0f"), "-", "-"])
    print(f"\n{P['name']}, value_and_grad; load average now {C.load_average()}")
    C.print_table(["storage", "median s", "min / p90 / max s", "time / full", "saved MB (estimate)",
                   "peak RSS MB (own process)", "RSS increment MB", "grad max rel diff vs full",
                   "grad l2 rel diff vs full"], table)

    targets = dict(time_ratio_checkpointed=timing["checkpointed"]["median_s"] / t_full,
                   time_target=TARGET_TIME_RATIO)
    targets["time_met"] = bool(targets["time_ratio_checkpointed"] <= TARGET_TIME_RATIO)
    if memory and all("error" not in memory[s] for s in ("full", "checkpointed")):
        for key in ("peak_rss_mb", "increment_mb"):
            frac = memory["checkpointed"][key] / memory["full"][key]
            targets[f"memory_fraction_{key}"] = frac
        targets["memory_target"] = TARGET_MEMORY_FRACTION
        targets["memory_met_peak"] = bool(targets["memory_fraction_peak_rss_mb"]
                                          <= TARGET_MEMORY_FRACTION)
        print(f"\nCheckpointed / FullStorage: peak RSS {targets['memory_fraction_peak_rss_mb']:.2f}"
              f" (increment {targets['memory_fraction_increment_mb']:.2f}; target <= "
              f"{TARGET_MEMORY_FRACTION}: {'ok' if targets['memory_met_peak'] else 'MISSED'}), "
              f"time {targets['time_ratio_checkpointed']:.2f}x (target <= {TARGET_TIME_RATIO}x: "
              f"{'ok' if targets['time_met'] else 'MISSED'})")
    C.write_json("bench_memory", dict(problem=P["name"], quick=a.quick, repeats=a.repeats,
                                      checkpoint_segments=len(seg), revolve=revolve, results=rows, targets=targets,
                                      memory_children=memory, load_average_end=C.load_average()),
                 a.json)


if __name__ == "__main__":
    main()
