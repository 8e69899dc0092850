"""Where the acoustic gradient's time goes, per Devito loop nest: the adjoint with the imaging
fused into its stencil (jaxseis) against a separate imaging loop nest (jaxseis before 2026-12-03).

Why: issue 13 asks for value_and_grad <= 2.5x the forward on S2. The forward keeps its working set
in cache; the gradient also writes the saved history and, in the adjoint, streams it back through
the imaging `g_m -= u[k] (v[k+1] - 2 v[k] + v[k-1])`, which needs the level `v[k-1]` after the
residual's injection. jaxseis (physics/acoustic/_devito.py) splits that level into the stencil's
value `S` and the injected residual `I`:

    -u[k] (v[k+1] - 2 v[k] + S)   in the stencil's own loop nest (Devito fuses it: same point)
    -u[k] I                        injected into g_m at the receivers' points, in the residual's
                                   sparse loop (`rec.inject(field=(v, g_m), expr=(...))`)

The "split" variant measured against it is the former form: the imaging as a loop nest of its own
after the injection (it re-reads three levels of `v` and streams `u[k]` in a pass of its own),
built here by replacing `AcousticKernel.adjoint_eqs` in this process only. The same sum in another
rounding order (the script prints how far the two gradients are apart).

Printed, from Devito's own section timers of `Operator.apply` (medians of interleaved runs, and
min / p90 / max of the wall time): the forward, the forward with the saved history, the adjoint
without imaging, and the adjoint with imaging fused and split, on the same Devito Functions.
`section0` computes the step's coefficients (`Leapfrog`: one pass before the time loop),
`section1` is the stencil loop nest, then the sparse loops (source, receivers) and, split, the
imaging pass. The wall time includes `Operator.apply`'s Python bookkeeping (~5 ms per call, which
jaxseis skips with its call cache), so on small grids compare the section sums.

Run: `python benchmarks/bench_imaging.py` (S2, about a minute), `--quick`, `--repeats N`,
`--json PATH`. OMP_NUM_THREADS defaults to 2. Results: benchmarks/README.md ("bench_imaging").
"""

from __future__ import annotations

import argparse
import sys
import time as _time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _common  # noqa: E402  (sets OMP_NUM_THREADS=2 unless set)

import numpy as np  # noqa: E402


def split_adjoint_eqs(original):
    """`AcousticKernel.adjoint_eqs` with the full-storage imaging as a loop nest of its own after
    the residual's injection (the form jaxseis used before 2026-12-03)."""
    from devito import Inc

    from jaxseis.devito._kernel import mirror

    def adjoint_eqs(self, srca, ext, grad, sub):
        if not grad or sub or srca or ext:
            return original(self, srca, ext, grad, sub)
        c, v = self.ctx, self.v
        nxt, eq = self.lf.step(v, v.laplace, forward=False)
        eqs = self.lf.eqs + [eq]
        eqs += self.rec.inject(field=nxt, expr=self.rec * self.lf.inv_D)
        eqs += mirror(c, nxt)
        eqs += [Inc(self.grad, -c.saved(self.u) * (v.forward - 2 * v + v.backward))]
        return eqs, "AdjointGradSplit"

    return adjoint_eqs


class Case:
    """One S2 solver of its own (operators are cached per solver) and bench_core's direct-side
    Functions, allocated once; `run` applies one operator and returns Devito's section timers."""

    def __init__(self, P, split):
        import bench_core

        from jaxseis.devito import _solver
        from jaxseis.physics.acoustic import _devito as ad

        original = ad.AcousticKernel.adjoint_eqs
        _solver._SOLVERS.clear()
        if split:
            ad.AcousticKernel.adjoint_eqs = split_adjoint_eqs(original)
        try:  # the operators are built here, while the kernel is (or is not) replaced
            op = _common.jaxseis_op(P)
            d = self.d = bench_core.Direct(op, P["src"], P["rec"], P["wavelet"])
            self.op_adjoint = d.s.operator("adjoint")
        finally:
            ad.AcousticKernel.adjoint_eqs = original
            _solver._SOLVERS.clear()
        self.kw = dict(time_m=1, time_M=d.nt, dt=d.s.dtype.type(d.dt), damp=d.s.damp, **d.aux)
        d.m.data[:] = d.s.pad_model(P["m0"])
        self.run("forward_save")
        rng = np.random.default_rng(0)
        d.resid.data[:] = rng.standard_normal(d.resid.data.shape).astype(d.s.dtype)

    def run(self, which):
        d = self.d
        if which == "forward":
            d.u.data_with_halo[:] = 0
            op, f = d.op_fwd, dict(m=d.m, src=d.src, rec=d.rec, u=d.u)
        elif which == "forward_save":
            d.usave.data_with_halo[:2] = 0
            op, f = d.op_fwd_save, dict(m=d.m, src=d.src, rec=d.rec, u=d.usave)
        elif which == "adjoint":
            d.v.data_with_halo[:] = 0
            op, f = self.op_adjoint, dict(m=d.m, rec=d.resid, v=d.v)
        else:
            d.v.data_with_halo[:] = 0
            d.grad.data_with_halo[:] = 0
            op, f = d.op_grad, dict(m=d.m, rec=d.resid, u=d.usave, v=d.v, g_m=d.grad)
        t0 = _time.perf_counter()
        summary = _common.on_openmp_master(op.apply)(**f, **self.kw)
        wall = _time.perf_counter() - t0
        return wall, {k.name: float(v.time) for k, v in summary.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="S2-quick (101^2): seconds")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    P = _common.s2_arrays(a.quick)
    fused, split = Case(P, False), Case(P, True)
    runs = {"forward": (fused, "forward"), "forward with history": (fused, "forward_save"),
            "adjoint, no imaging": (fused, "adjoint"),
            "adjoint + imaging, fused (jaxseis)": (fused, "adjoint_grad"),
            "adjoint + imaging, split (before)": (split, "adjoint_grad")}
    for case in (split, fused):
        case.run("adjoint_grad")
    ga, gb = np.array(fused.d.grad.data), np.array(split.d.grad.data)
    diff = float(np.abs(ga - gb).max() / np.abs(ga).max())
    res = {k: [] for k in runs}
    for r in range(a.repeats + 1):  # the first round is a warm-up, dropped
        for k, (case, which) in runs.items():
            res[k].append(case.run(which))
    for k in res:
        res[k] = res[k][1:]
    print(f"{P['name']}, OMP_NUM_THREADS={_common.os.environ.get('OMP_NUM_THREADS')}, "
          f"{a.repeats} interleaved rounds, load average {_common.load_average()}")
    print(f"gradients fused vs split: max |a - b| / max |a| = {diff:.1e}")
    print("| run | wall min | wall median | wall p90 | wall max | Devito sections (medians) |")
    print("|---|---|---|---|---|---|")
    out = {}
    for k, rows in res.items():
        w = np.array([r[0] for r in rows])
        secs = {s: float(np.median([r[1][s] for r in rows])) for s in rows[0][1]}
        out[k] = {"wall_s": w.tolist(), "sections_median_s": secs}
        sec = ", ".join(f"{s} {t:.4f}" for s, t in secs.items()) + f" (sum {sum(secs.values()):.4f})"
        print(f"| {k} | {w.min():.4f} | {np.median(w):.4f} | {np.percentile(w, 90):.4f} | "
              f"{w.max():.4f} | {sec} |")
    med = {k: sum(v["sections_median_s"].values()) for k, v in out.items()}
    f = med["forward"]
    for side in ("fused (jaxseis)", "split (before)"):
        g = med["forward with history"] + med[f"adjoint + imaging, {side}"]
        print(f"forward with history + adjoint with imaging, {side}: {g:.4f} s = {g / f:.2f}x "
              f"the forward (section sums: solves only)")
    if a.json:
        _common.write_json("bench_imaging", {"problem": P["name"], "grad_rel_diff": diff,
                                             "runs": out},
                           a.json)


if __name__ == "__main__":
    main()
