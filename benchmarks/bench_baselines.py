"""jaxseis against baselines on S2 (../shared/BENCHMARKS.md): a pure-JAX `lax.scan` propagator with the
same discretisation (benchmarks/jax_stencil.py), differentiated by JAX's reverse-mode AD, and deepwave
when it is installed.

1. The pure-JAX propagator is first checked against jaxseis forward (and gradient) on a small grid
   with off-grid source and receivers (printed; the data should agree to float32 round-off).
2. Time: forward and value_and_grad of 0.5 ||d(m) - d_obs||^2 (d_obs from the true model, m without
   the anomaly), all under jax.jit; medians of repeated warm runs after one untimed warm-up, the
   configurations interleaved in one process (ratios are against jaxseis measured in the same run).
3. Peak memory: each configuration again in its own fresh process (peak RSS never goes down within a
   process): its peak RSS at the end (VmHWM: see _common.peak_rss_mb for why not ru_maxrss), and
   the increment over the RSS just before its first call.

Target (S2): jaxseis value_and_grad >= 4x faster than the pure-JAX AD baseline, with less peak memory.

Run: `python benchmarks/bench_baselines.py` (S2, several minutes), `--quick` (small grid, seconds),
`--repeats N`, `--checkpoint step segments` (also time pure-JAX AD with jax.checkpoint),
`--no-memory`, `--json PATH`. OMP_NUM_THREADS defaults to 2.
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

import jax_stencil  # noqa: E402

TARGET_SPEEDUP = 4.0


def configs(checkpoints):
    out = ["jaxseis forward", "pure-JAX forward", "jaxseis value_and_grad",
           "pure-JAX AD value_and_grad"]
    out += [f"pure-JAX AD value_and_grad (checkpoint={c})" for c in checkpoints]
    return out


def build(P, name):
    """A zero-argument callable running configuration `name` to completion (jitted)."""
    m0, mt = jnp.asarray(P["m0"]), jnp.asarray(P["m_true"])
    w, src, rec = (jnp.asarray(P[k]) for k in ("wavelet", "src", "rec"))
    d_obs = P["d_obs"]
    if name.startswith("jaxseis"):
        op = C.jaxseis_op(P)
        fwd = lambda m: op.forward(m, w, src, rec)  # noqa: E731
    else:
        ck = None
        if "checkpoint=" in name:
            ck = name.split("checkpoint=")[1].rstrip(")")
        f = jax_stencil.make_forward(P["grid"], P["time"], P["src"], P["rec"], space_order=8,
                                     nbl=P["nbl"], checkpoint=ck)
        fwd = lambda m: f(m, w)  # noqa: E731
    if "forward" in name:
        jf = jax.jit(fwd)
        return lambda: jf(mt).block_until_ready()
    vg = jax.jit(jax.value_and_grad(C.misfit_fn(fwd)))
    return lambda: jax.block_until_ready(vg(m0, d_obs))


def problem(quick):
    P = C.s2_arrays(quick)
    op = C.jaxseis_op(P)
    P["d_obs"] = jnp.asarray(op.forward(P["m_true"], P["wavelet"], P["src"], P["rec"]))
    return P


# ---------------------------------------------------------------------------------- child
def child(name, quick, repeats):
    """Fresh process: run one configuration (warm-up + `repeats`), report peak RSS."""
    P = problem(quick)
    fn = build(P, name)
    rss0 = C.current_rss_mb()
    peak0 = C.peak_rss_mb()
    r = C.interleaved({name: fn}, repeats)
    peak = C.peak_rss_mb()
    C.emit_child_result(dict(config=name, rss_before_mb=rss0, peak_before_mb=peak0, peak_rss_mb=peak,
                             increment_mb=peak - rss0, median_s=r[name]["median_s"],
                             ru_maxrss_mb=C.ru_maxrss_mb()))


# ---------------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small grid (smoke test, seconds)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--checkpoint", nargs="*", default=[], choices=["step", "segments"])
    p.add_argument("--no-memory", action="store_true", help="skip the per-process peak memory runs")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a.child, a.quick, a.repeats)

    print(f"load average at start: {C.load_average()}", flush=True)
    check = jax_stencil.verify(8)
    P = problem(a.quick)
    names = configs(a.checkpoint)
    print(f"\n{P['name']}: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, repeats {a.repeats}",
          flush=True)
    fns = {n: build(P, n) for n in names}

    # agreement on the benchmark problem itself
    jx_fwd = jax_stencil.make_forward(P["grid"], P["time"], P["src"], P["rec"], nbl=P["nbl"])
    d_jx = jax.jit(jx_fwd)(jnp.asarray(P["m_true"]), jnp.asarray(P["wavelet"]))
    agree = {"data_max_rel (pure-JAX vs jaxseis)": C.rel_diff(d_jx, P["d_obs"])}

    fwd_names = [n for n in names if "forward" in n]
    vg_names = [n for n in names if "value_and_grad" in n]
    timing = {}
    timing.update(C.interleaved({n: fns[n] for n in fwd_names}, a.repeats))
    print("  forward timed", flush=True)
    timing.update(C.interleaved({n: fns[n] for n in vg_names}, a.repeats))
    print("  value_and_grad timed", flush=True)
    f_js, g_js = timing["jaxseis value_and_grad"]["out"]
    for n in vg_names[1:]:
        f_x, g_x = timing[n]["out"]
        agree[f"grad_max_rel ({n} vs jaxseis)"] = C.rel_diff(g_x, g_js)
        agree[f"grad_l2_rel ({n} vs jaxseis)"] = C.rel_l2(g_x, g_js)
        agree[f"loss_rel ({n} vs jaxseis)"] = abs(float(f_x) - float(f_js)) / abs(float(f_js))
    for k, v in agree.items():
        print(f"  {k:70s} {v:.2e}")

    memory = {}
    if not a.no_memory:
        for n in names:
            argv_c = [__file__, "--child", n, "--repeats", "2"] + (["--quick"] if a.quick else [])
            memory[n] = C.run_child(argv_c)
            mm = memory[n]
            print(f"  memory child {n}: " + (f"peak {mm['peak_rss_mb']:.0f} MB, increment "
                                             f"{mm['increment_mb']:.0f} MB" if "error" not in mm
                                             else f"ERROR {mm['error']} {mm.get('stderr', '')[-500:]}"),
                  flush=True)

    try:
        import deepwave  # noqa: F401
        deepwave_status = "installed (not benchmarked by this script yet)"
    except ImportError:
        deepwave_status = "deepwave not installed: skipped"
    print(deepwave_status)

    rows, table = [], []
    for n in names:
        base = "jaxseis forward" if "forward" in n else "jaxseis value_and_grad"
        t, tb = timing[n]["median_s"], timing[base]["median_s"]
        mm = memory.get(n, {})
        row = dict(config=n, median_s=t, times_s=timing[n]["times_s"], ratio_vs_jaxseis=t / tb,
                   peak_rss_mb=mm.get("peak_rss_mb"), increment_mb=mm.get("increment_mb"),
                   child_median_s=mm.get("median_s"), child_error=mm.get("error"))
        rows.append(row)
        table.append([n, C.fmt(t, ".3f"), C.fmt(t / tb, ".2f"), C.fmt(mm.get("peak_rss_mb"), ".0f"),
                      C.fmt(mm.get("increment_mb"), ".0f")])
    print(f"\n{P['name']}, load average now {C.load_average()}")
    C.print_table(["config", "median s", "time / jaxseis", "peak RSS MB (own process)",
                   "RSS increment MB"], table)

    t_js = timing["jaxseis value_and_grad"]["median_s"]
    t_ad = timing["pure-JAX AD value_and_grad"]["median_s"]
    speedup = t_ad / t_js
    targets = dict(speedup_vs_pure_jax_ad=speedup, speedup_target=TARGET_SPEEDUP,
                   speedup_met=bool(speedup >= TARGET_SPEEDUP))
    if memory:
        pk_js = memory["jaxseis value_and_grad"].get("peak_rss_mb")
        pk_ad = memory["pure-JAX AD value_and_grad"].get("peak_rss_mb")
        if pk_js and pk_ad:
            targets.update(peak_js_mb=pk_js, peak_ad_mb=pk_ad, less_memory_met=bool(pk_js < pk_ad))
    print(f"\njaxseis value_and_grad is {speedup:.2f}x faster than pure-JAX AD (target >= "
          f"{TARGET_SPEEDUP:g}x: {'ok' if targets['speedup_met'] else 'MISSED'})"
          + (f"; peak RSS {targets['peak_js_mb']:.0f} vs {targets['peak_ad_mb']:.0f} MB ("
             f"{'ok' if targets['less_memory_met'] else 'MISSED'})" if "peak_js_mb" in targets
             else ""))

    C.write_json("bench_baselines", dict(
        problem=P["name"], quick=a.quick, repeats=a.repeats, small_grid_check=check,
        agreement=agree, results=rows, targets=targets, deepwave=deepwave_status,
        memory_children=memory, load_average_end=C.load_average()), a.json)


if __name__ == "__main__":
    main()
