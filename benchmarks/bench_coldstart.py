"""Cold start: the first forward and gradient in a fresh process, with Devito's disk cache warm vs
cold, on S2 (benchmarks/README.md).

Every new process pays for `import jax, jaxseis`, the JAX trace/compile of the jitted function, and
for each Devito operator its symbolic build (lowering to C, in-process, every time) and its C
compile. Devito caches compiled objects on disk under `tempfile.gettempdir()`
(devito/arch/compiler.py: `get_jit_dir()` = `make_tempdir('jitcache')` and `get_codepy_dir()` =
`make_tempdir('codepy')`, i.e. `$TMPDIR/devito-jitcache-uid<uid>` and `$TMPDIR/devito-codepy-uid<uid>`,
devito/tools/os_helper.py), so a process with `TMPDIR` pointing at a fresh empty directory compiles
everything (cold) while the default temp dir, filled by an earlier run, skips the C compiler (warm).
JAX's persistent compilation cache is off by default, so JAX compiles in both.

Each round starts one cold and one warm process (alternating order); each reports seconds for:
`import` (jax + jaxseis), `first forward` (jit(op.forward): JAX trace + Devito build/compile of the
forward operator + solve), `first value_and_grad` (its own trace + the saving forward and adjoint
operators + the two solves), then `warm forward` / `warm value_and_grad` (medians of repeats in the
same process), and `process` (wall time of the whole child, interpreter start-up included).

Run: `python benchmarks/bench_coldstart.py` (S2), `--quick` (small grid), `--rounds N`,
`--json PATH`. OMP_NUM_THREADS defaults to 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time as _time
from pathlib import Path

_T_START = _time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (numpy only; sets OMP_NUM_THREADS)

PHASES = ["import", "first forward", "first value_and_grad", "warm forward", "warm value_and_grad"]


def child(quick, repeats):
    t0 = _time.perf_counter()
    import jax
    import jax.numpy as jnp

    import jaxseis  # noqa: F401
    t_import = _time.perf_counter() - t0

    P = C.s2_arrays(quick)
    op = C.jaxseis_op(P)
    m0, mt = jnp.asarray(P["m0"]), jnp.asarray(P["m_true"])
    w, src, rec = (jnp.asarray(P[k]) for k in ("wavelet", "src", "rec"))
    fwd = jax.jit(op.forward)
    vg = jax.jit(jax.value_and_grad(C.misfit_fn(lambda m: op.forward(m, w, src, rec))))

    t_fwd, d_obs = C.timed(lambda: fwd(mt, w, src, rec).block_until_ready())
    builds_after_fwd = op.solver.builds
    t_vg, _ = C.timed(lambda: jax.block_until_ready(vg(m0, d_obs)))
    builds = op.solver.builds
    warm = C.interleaved({"fwd": lambda: fwd(mt, w, src, rec).block_until_ready(),
                          "vg": lambda: jax.block_until_ready(vg(m0, d_obs))}, repeats,
                         warmup=False)
    C.emit_child_result({
        "import": t_import, "first forward": t_fwd, "first value_and_grad": t_vg,
        "warm forward": warm["fwd"]["median_s"], "warm value_and_grad": warm["vg"]["median_s"],
        "devito_builds_after_forward": builds_after_fwd, "devito_builds": builds,
        "tempdir": tempfile.gettempdir(), "in_process_s": _time.perf_counter() - _T_START,
        "peak_rss_mb": C.peak_rss_mb(), "problem": P["name"]})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small grid (smoke test, seconds)")
    p.add_argument("--rounds", type=int, default=3, help="cold + warm processes per round")
    p.add_argument("--repeats", type=int, default=3, help="warm calls inside each process")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    extra = (["--quick"] if a.quick else []) + ["--repeats", str(a.repeats)]
    if a.child:
        return child(a.quick, a.repeats)

    print(f"load average at start: {C.load_average()}; OMP_NUM_THREADS="
          f"{os.environ['OMP_NUM_THREADS']}", flush=True)
    # make sure the default cache holds this problem's operators
    prime = C.run_child([__file__, "--child", *extra])
    if "error" in prime:
        print("priming run failed:", prime["error"], prime.get("stderr", "")[-2000:])
        return
    print(f"priming (warm-cache) run: {prime['process_wall_s']:.1f} s, tempdir {prime['tempdir']}",
          flush=True)

    runs = {"cold": [], "warm": []}
    scratch = tempfile.mkdtemp(prefix="jaxseis-coldstart-")
    for r in range(a.rounds):
        order = ("cold", "warm") if r % 2 == 0 else ("warm", "cold")
        for kind in order:
            env = None
            if kind == "cold":
                fresh = os.path.join(scratch, f"round{r}")
                os.makedirs(fresh)
                env = {"TMPDIR": fresh}
            out = C.run_child([__file__, "--child", *extra], env=env)
            if "error" in out:
                print(f"{kind} run failed: {out['error']} {out.get('stderr', '')[-2000:]}")
                continue
            runs[kind].append(out)
            print(f"  round {r} {kind}: " + ", ".join(f"{k} {out[k]:.2f}" for k in PHASES)
                  + f", process {out['process_wall_s']:.2f} s (builds {out['devito_builds']}, "
                  f"tempdir {out['tempdir']})", flush=True)

    shutil.rmtree(scratch, ignore_errors=True)
    med = {kind: {k: statistics.median(o[k] for o in rs) for k in PHASES + ["process_wall_s"]}
           for kind, rs in runs.items() if rs}
    name = (runs["cold"] or runs["warm"])[0]["problem"]
    print(f"\n{name}: medians over {a.rounds} fresh processes each; load average now "
          f"{C.load_average()}")
    headers = ["Devito disk cache"] + [f"{k} s" for k in PHASES] + ["whole process s"]
    C.print_table(headers, [[kind] + [C.fmt(m[k], ".2f") for k in PHASES + ["process_wall_s"]]
                            for kind, m in med.items()])
    spreads = {kind: {k: C.spread([o[k] for o in rs]) for k in PHASES + ["process_wall_s"]}
               for kind, rs in runs.items() if rs}
    print("\nthe spread over the processes (min / p90 / max s):")
    C.print_table(headers, [[kind] + [C.spread_cell(sp[k], ".2f")
                                      for k in PHASES + ["process_wall_s"]]
                            for kind, sp in spreads.items()])
    C.write_json("bench_coldstart", dict(problem=name, quick=a.quick, rounds=a.rounds,
                                         repeats=a.repeats, medians=med, spreads=spreads,
                                         runs=runs, priming=prime,
                                         load_average_end=C.load_average()), a.json)


if __name__ == "__main__":
    main()
