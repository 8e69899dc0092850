"""jaxseis against baselines on S2 (benchmarks/README.md): a pure-JAX `lax.scan` propagator with
the same discretisation (benchmarks/jax_stencil.py), differentiated by JAX's reverse-mode AD, and
deepwave (PyTorch, optional) when it is installed.

1. The pure-JAX propagator is first checked against jaxseis forward (and gradient) on a small grid
   with off-grid source and receivers (printed; the data should agree to float32 round-off). On S2
   itself: the forward data, and value_and_grad of 0.5 ||d(m0)||^2 (d_obs = 0), pure-JAX AD against
   jaxseis (one extra untimed call each). Not the benchmark misfit: on S2, d(m0) - d_obs is float32
   round-off (the anomaly at 1500 m depth sends nothing back within 1000 ms), so its gradients
   compare noise.
2. Time: forward and value_and_grad of 0.5 ||d(m) - d_obs||^2 (d_obs from the true model, m without
   the anomaly), all under jax.jit; medians of repeated warm runs after one untimed warm-up, the
   configurations interleaved in one process (forward configurations together, gradient ones
   together; ratios are against jaxseis measured in the same run).
3. Peak memory: each configuration again in its own fresh process (peak RSS never goes down within a
   process): its peak RSS at the end (VmHWM: see _common.peak_rss_mb for why not ru_maxrss), and
   the increment over the RSS just before its first call.

deepwave (benchmarks/deepwave_s2.py): `deepwave.scalar` on the same S2 arrays, accuracy 8,
pml_width = nbl (deepwave pads its PML outside the model it is given, like jaxseis's nbl), SI units,
source and receivers at their nearest grid indices (S2's are on grid nodes), torch threads =
OMP_NUM_THREADS. "deepwave forward" runs under torch.no_grad on the true model; "deepwave
forward+backward" is loss.backward() of 0.5 sum((d(v0) - d_obs)^2), d_obs from deepwave on the
true model, v0 = 1/sqrt(m0) in m/s. By default deepwave is given S2's own Courant number, so it
takes S2's nt steps like jaxseis (its default Courant number, 0.6, would sub-step S2's dt twice:
`--deepwave-courant default`). Its memory child (`deepwave_s2.py --child`) imports torch and
deepwave but not jax or devito. A sanity check prints the normalised correlation of deepwave's S2
shot gather with jaxseis's (each divided by its extreme sample: deepwave's source term has the
opposite sign and another scale). Install with `pip install deepwave` (it requires torch); when
torch or deepwave does not import, the script prints "deepwave not installed: skipped (pip install
deepwave)" and runs the rest unchanged (`--no-deepwave` simulates that).

Targets (S2): jaxseis value_and_grad >= 4x faster than the pure-JAX AD baseline, with less peak
memory; with deepwave: jaxseis value_and_grad >= 5x faster than deepwave forward+backward and with a
lower peak RSS, jaxseis forward >= 1.4x faster than deepwave forward.

Run: `python benchmarks/bench_baselines.py` (S2, several minutes), `--quick` (small grid, seconds),
`--repeats N`, `--checkpoint step segments` (also time pure-JAX AD with jax.checkpoint),
`--no-memory`, `--no-deepwave`, `--deepwave-courant match|default`, `--json PATH`. OMP_NUM_THREADS
defaults to 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets OMP_NUM_THREADS before jax/devito load)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import deepwave_s2 as DW  # noqa: E402  (NumPy only; torch and deepwave are imported on use)
import jax_stencil  # noqa: E402

TARGET_SPEEDUP = 4.0
TARGET_SPEEDUP_DEEPWAVE_GRAD = 5.0
TARGET_SPEEDUP_DEEPWAVE_FWD = 1.4


def configs(checkpoints, deepwave=False):
    out = ["jaxseis forward", "pure-JAX forward"] + ([DW.FORWARD] if deepwave else [])
    out += ["jaxseis value_and_grad", "pure-JAX AD value_and_grad"]
    out += [f"pure-JAX AD value_and_grad (checkpoint={c})" for c in checkpoints]
    out += [DW.GRADIENT] if deepwave else []
    return out


def is_gradient(name):
    """Gradient configurations are timed together (and against jaxseis value_and_grad)."""
    return "value_and_grad" in name or "backward" in name


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
    if not is_gradient(name):
        jf = jax.jit(fwd)
        return lambda: jf(mt).block_until_ready()
    vg = jax.jit(jax.value_and_grad(C.misfit_fn(fwd)))

    def run():
        return jax.block_until_ready(vg(m0, d_obs))

    run.value_and_grad = vg  # the jitted (m, d_obs) -> (loss, grad), for the agreement check
    return run


def problem(quick):
    P = C.s2_arrays(quick)
    op = C.jaxseis_op(P)
    P["d_obs"] = jnp.asarray(op.forward(P["m_true"], P["wavelet"], P["src"], P["rec"]))
    return P


# ---------------------------------------------------------------------------------- child
def child(name, quick, repeats):
    """Fresh process: run one configuration (warm-up + `repeats`), report peak RSS."""
    P = problem(quick)
    C.run_and_emit(name, build(P, name), repeats)


# ---------------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small grid (smoke test, seconds)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--checkpoint", nargs="*", default=[], choices=["step", "segments"])
    p.add_argument("--no-memory", action="store_true", help="skip the per-process peak memory runs")
    p.add_argument("--no-deepwave", action="store_true",
                   help="behave as if deepwave were not installed")
    p.add_argument("--deepwave-courant", default="match", choices=["match", "default"],
                   help="match: deepwave steps with S2's dt (its nt); default: deepwave's own "
                        "Courant number 0.6 (sub-steps S2's dt twice)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a.child, a.quick, a.repeats)

    if a.no_deepwave:
        DW.block_import()
    dw_error = DW.import_error()
    deepwave_info = dict(status="benchmarked" if dw_error is None else DW.NOT_INSTALLED,
                         import_error=dw_error)
    if dw_error is not None:
        print(DW.NOT_INSTALLED, flush=True)

    print(f"load average at start: {C.load_average()}", flush=True)
    check = jax_stencil.verify(8)
    P = problem(a.quick)
    names = configs(a.checkpoint, deepwave=dw_error is None)
    print(f"\n{P['name']}: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, repeats {a.repeats}",
          flush=True)
    fns = {n: build(P, n) for n in names if not n.startswith("deepwave")}
    if dw_error is None:
        # torch's kernels on jaxseis's OpenMP master thread: one OpenMP team per process
        dw = C.on_openmp_master(DW.DeepwaveS2)(DW.arrays_from_problem(P),
                                                courant=a.deepwave_courant)
        fns.update({k: C.on_openmp_master(f)
                    for k, f in C.on_openmp_master(dw.callables)().items()})
        fns = {n: fns[n] for n in names}

    # agreement on the benchmark problem itself
    jx_fwd = jax_stencil.make_forward(P["grid"], P["time"], P["src"], P["rec"], nbl=P["nbl"])
    d_jx = jax.jit(jx_fwd)(jnp.asarray(P["m_true"]), jnp.asarray(P["wavelet"]))
    agree = {"data_max_rel (pure-JAX vs jaxseis)": C.rel_diff(d_jx, P["d_obs"])}

    fwd_names = [n for n in names if not is_gradient(n)]
    vg_names = [n for n in names if is_gradient(n)]
    timing = {}
    timing.update(C.interleaved({n: fns[n] for n in fwd_names}, a.repeats))
    print("  forward timed", flush=True)
    timing.update(C.interleaved({n: fns[n] for n in vg_names}, a.repeats))
    print("  value_and_grad timed", flush=True)

    # gradient agreement (untimed): 0.5 ||d(m0)||^2, since d(m0) - d_obs is round-off on S2
    m0 = jnp.asarray(P["m0"])
    d_m0 = C.jaxseis_op(P).forward(m0, jnp.asarray(P["wavelet"]), jnp.asarray(P["src"]),
                                   jnp.asarray(P["rec"]))
    residual_rel = C.rel_diff(d_m0, P["d_obs"])  # max |d(m0) - d_obs| / max |d_obs|
    zeros = jnp.zeros_like(P["d_obs"])
    f_js, g_js = fns["jaxseis value_and_grad"].value_and_grad(m0, zeros)
    for n in vg_names:
        if n == "jaxseis value_and_grad" or n.startswith("deepwave"):
            continue
        f_x, g_x = fns[n].value_and_grad(m0, zeros)
        agree[f"grad_max_rel ({n} vs jaxseis, d_obs=0)"] = C.rel_diff(g_x, g_js)
        agree[f"grad_l2_rel ({n} vs jaxseis, d_obs=0)"] = C.rel_l2(g_x, g_js)
        agree[f"loss_rel ({n} vs jaxseis, d_obs=0)"] = (abs(float(f_x) - float(f_js))
                                                        / abs(float(f_js)))
    agree["benchmark residual max|d(m0) - d_obs| / max|d_obs|"] = residual_rel
    print(f"  note: max|d(m0) - d_obs| / max|d_obs| is {residual_rel:.1e} (the anomaly sends next "
          "to nothing back within the record), so the misfit's gradient is round-off: gradients are "
          "compared on 0.5 ||d(m0)||^2; the timing keeps the S2 misfit")
    for k, v in agree.items():
        print(f"  {k:70s} {v:.2e}")

    if dw_error is None:
        gather = timing[DW.FORWARD]["out"][0].numpy().T            # (nt, nrec), as jaxseis
        corr = DW.gather_correlation(gather, P["d_obs"])
        deepwave_info.update(dw.describe(), gather_check=corr)
        print(f"  deepwave vs jaxseis S2 shot gather: correlation {corr['correlation']:.4f} "
              f"({'ok' if corr['correlation'] > 0.9 else 'LOW'}, expect > 0.9; each gather divided "
              f"by its extreme sample: polarity {corr['polarity']:+d}, amplitude ratio "
              f"{corr['amplitude_ratio']:.3g}; best over +-5 samples "
              f"{corr['best_correlation']:.4f} at deepwave lag {corr['best_lag_samples']:+d})")
        print(f"  deepwave {dw.deepwave.__version__}: accuracy {dw.accuracy}, pml_width {dw.nbl} "
              f"(simulated grid {'x'.join(map(str, deepwave_info['simulated_shape']))}), "
              f"Courant number {C.fmt(dw.courant_number, '.4f') if dw.courant_number else 'default'}"
              f" (--deepwave-courant {a.deepwave_courant}; S2's {dw.courant_s2:.4f}, critical "
              f"{dw.critical_courant:.4f}), internal "
              f"steps per sample {dw.step_ratio}, torch threads {dw.torch.get_num_threads()}",
              flush=True)

    memory = {}
    with tempfile.TemporaryDirectory(prefix="bench_baselines_") as tmp:
        arrays = os.path.join(tmp, "s2_arrays.npz")   # the deepwave children's S2 arrays
        if dw_error is None and not a.no_memory:
            np.savez(arrays, **DW.arrays_from_problem(P))
        for n in [] if a.no_memory else names:
            if n.startswith("deepwave"):
                argv_c = [DW.__file__, "--child", n, "--arrays", arrays, "--repeats", "2",
                          "--courant", a.deepwave_courant]
            else:
                argv_c = [__file__, "--child", n, "--repeats", "2"]
                argv_c += ["--quick"] if a.quick else []
            memory[n] = C.run_child(argv_c)
            mm = memory[n]
            print(f"  memory child {n}: " + (f"peak {mm['peak_rss_mb']:.0f} MB, increment "
                                             f"{mm['increment_mb']:.0f} MB" if "error" not in mm
                                             else f"ERROR {mm['error']} {mm.get('stderr', '')[-500:]}"),
                  flush=True)

    rows, table = [], []
    for n in names:
        base = "jaxseis value_and_grad" if is_gradient(n) else "jaxseis forward"
        t, tb = timing[n]["median_s"], timing[base]["median_s"]
        mm = memory.get(n, {})
        row = dict(config=n, **{k: timing[n][k] for k in ("min_s", "median_s", "p90_s", "max_s")},
                   times_s=timing[n]["times_s"], ratio_vs_jaxseis=t / tb,
                   peak_rss_mb=mm.get("peak_rss_mb"), increment_mb=mm.get("increment_mb"),
                   child_median_s=mm.get("median_s"), child_error=mm.get("error"))
        rows.append(row)
        table.append([n, C.fmt(t, ".3f"), C.spread_cell(timing[n]), C.fmt(t / tb, ".2f"),
                      C.fmt(mm.get("peak_rss_mb"), ".0f"),
                      C.fmt(mm.get("increment_mb"), ".0f")])
    print(f"\n{P['name']}, load average now {C.load_average()}")
    C.print_table(["config", "median s", "min / p90 / max s", "time / jaxseis",
                   "peak RSS MB (own process)",
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

    if dw_error is None:
        for key, js_name, dw_name, goal in (
                ("deepwave_grad", "jaxseis value_and_grad", DW.GRADIENT,
                 TARGET_SPEEDUP_DEEPWAVE_GRAD),
                ("deepwave_fwd", "jaxseis forward", DW.FORWARD, TARGET_SPEEDUP_DEEPWAVE_FWD)):
            sp = timing[dw_name]["median_s"] / timing[js_name]["median_s"]
            met = bool(sp >= goal)
            targets.update({f"speedup_vs_{key}": sp, f"speedup_vs_{key}_target": goal,
                            f"speedup_vs_{key}_met": met})
            print(f"{js_name} is {sp:.2f}x faster than {dw_name} (target >= {goal:g}x: "
                  f"{'ok' if met else 'MISSED'})")
        pk_js = memory.get("jaxseis value_and_grad", {}).get("peak_rss_mb")
        pk_dw = memory.get(DW.GRADIENT, {}).get("peak_rss_mb")
        if pk_js and pk_dw:
            met = bool(pk_js < pk_dw)
            targets.update(peak_js_mb=pk_js, peak_deepwave_grad_mb=pk_dw,
                           less_memory_than_deepwave_met=met)
            print(f"jaxseis value_and_grad peak RSS {pk_js:.0f} MB vs {DW.GRADIENT} {pk_dw:.0f} MB "
                  f"(target less: {'ok' if met else 'MISSED'})")

    C.write_json("bench_baselines", dict(
        problem=P["name"], quick=a.quick, repeats=a.repeats, small_grid_check=check,
        agreement=agree, results=rows, targets=targets, deepwave=deepwave_info,
        memory_children=memory, load_average_end=C.load_average()), a.json)


if __name__ == "__main__":
    main()
