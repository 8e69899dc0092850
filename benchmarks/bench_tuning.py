"""Devito tuning per physics: the same equations compiled with different Devito options, applied
to the same Devito objects in one process (the `bench_physics.Direct` harness), forward and
value_and_grad (forward with the saved history, then the adjoint with the imaging conditions).

Configurations (each builds its own operators; results must be bit-identical to `devito`):

- `devito`: Devito's defaults (`opt=("advanced", {"openmp": True})`: the outer grid loop of each
  step `schedule(dynamic,1)`, rows or blocks dealt out to alternating threads);
- `devito-1thread`: the same operators with `nthreads=1` (is the second thread worth anything?);
- `static1`: every affine loop `schedule(static,1)` (Devito's `par-dynamic-work` above any cost);
- `static`: jaxseis's default (`jaxseis/devito/_build.py`): contiguous `schedule(static)` slabs;
- `static+blockrelax+autotune` (`--extra`): Devito's loop blocking forced on (`blockrelax`) with
  block shapes from `autotune="aggressive"`, on top of the static schedule;
- `static+linearize` (`--extra`): Devito's index linearisation (`opt` option `linearize`: flat
  offsets instead of multi-dimensional array indexing) on top of the static schedule;
- `static+quotient`: the static schedule with the damped leapfrog step in its quotient form
  `f^{n+1} = (dt^2 r + m (2 f - f^{n-1}) + dt damp f) / D` (a division per point and step, reading
  `m` and `damp`), as jaxseis evaluated it before `Leapfrog` (jaxseis/devito/_kernel.py), which
  evaluates the same scheme as `a r + f + b (f - f^{n-1})` with `a = dt^2 / D`, `b = m / D` computed
  once per apply. For the physics that use `Leapfrog` (acoustic, vda, visco, tti, vti); the two
  forms agree to rounding (so `identical` shows the relative difference).
- `static+unpadded`: the `static` operators applied to functions in Devito's default layout,
  their rows not padded to whole 64-byte cache lines (jaxseis pads them since 2026-12-04,
  jaxseis/devito/_layout.py; every other configuration here uses the padded layout). Bit-identical
  results.
- `static+devito-laplace`: the static schedule with Devito's own `f.laplace` in the acoustic
  equations, as jaxseis wrote them before 2026-12-04 (now `jaxseis.devito._kernel.laplacian`: one
  set of exact weights for all axes on equal spacing, fewer operations per point). Acoustic only;
  the two agree to rounding (Devito also rounds its weights to 9 digits).

Printed per physics and operator: min / median / p90 / max seconds over `--repeats` calls
(interleaved rounds, every other one in reverse order), the speedup of each configuration over
the first (`devito`, or the first of `--configs`) by median and `paired` (the median over rounds
of the two calls' ratio within a round, which the host's slow phases affect less), GPts/s (padded
grid points x nt / median: the forward's point updates per second; for value_and_grad the same
count, so the two are comparable) and whether the output equals `devito`'s bit for bit.
JSON to `results/bench_tuning[_quick].json`.

Run: `python benchmarks/bench_tuning.py` (every physics, minutes, quiet machine),
`--physics acoustic vda`, `--quick`, `--repeats N`, `--extra`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets OMP_NUM_THREADS before jax/devito load)

import numpy as np  # noqa: E402

import bench_physics as BP  # noqa: E402

CONFIGS = ("devito", "devito-1thread", "static1", "static")
EXTRA = ("static+blockrelax+autotune", "static+linearize")


def quotient_leapfrog():
    """A `Leapfrog` that writes the quotient form of the step (jaxseis before 2026-12-03)."""
    from devito import Eq

    from jaxseis.devito._kernel import Leapfrog

    class QuotientLeapfrog(Leapfrog):
        def __init__(self, ctx, m):
            self.ctx, self.m = ctx, m
            self.D = m + ctx.dt * ctx.damp
            self.a, self.b, self.eqs = ctx.dt**2 / self.D, m / self.D, []

        def step(self, f, rhs, forward=True):
            nxt, prv = (f.forward, f.backward) if forward else (f.backward, f.forward)
            dt, damp = self.ctx.dt, self.ctx.damp
            return nxt, Eq(nxt, (dt**2 * rhs + self.m * (2 * f - prv) + dt * damp * f) / self.D)

    return QuotientLeapfrog


def build(d, config):
    """The forward, forward-with-history and gradient operators of `Direct` `d` for `config`."""
    from devito import Operator

    from jaxseis.devito._build import DEVITO_DEFAULT_KWARGS, build_operator

    k = d.s.kernel
    lf = getattr(k, "lf", None)
    import jaxseis.physics.acoustic._devito as acoustic_devito

    own_laplacian = acoustic_devito.laplacian
    if config == "static+devito-laplace":
        if not type(k).__module__.endswith("acoustic._devito"):
            raise SystemExit(f"{type(k).__name__} does not use `laplacian`: acoustic only")
        acoustic_devito.laplacian = lambda f: f.laplace
    if config == "static+quotient":
        if lf is None:
            raise SystemExit(f"{type(k).__name__} has no Leapfrog step: no quotient form")
        k.lf = quotient_leapfrog()(lf.ctx, lf.m)
    try:
        eqs = {"fwd": k.forward_eqs(source="point", save=False, born=False, sub=0),
               "fwd_save": k.forward_eqs(source="point", save=True, born=False, sub=0),
               "grad": k.adjoint_eqs(srca=False, ext=False, grad=d.needs, sub=0)}
    finally:
        acoustic_devito.laplacian = own_laplacian
        if lf is not None:
            k.lf = lf
    out = {}
    for which, (e, name) in eqs.items():
        if config in ("devito", "devito-1thread"):
            out[which] = build_operator(e, name, mode="devito")
        elif config == "static1":
            out[which] = Operator(e, name=name, language="openmp",
                                  opt=("advanced", {**DEVITO_DEFAULT_KWARGS["opt"][1],
                                                    "par-dynamic-work": 2**62}))
        elif config in ("static", "static+quotient", "static+devito-laplace", "static+unpadded"):
            tag = {"static": "", "static+quotient": "Quot", "static+devito-laplace": "DLap",
                   "static+unpadded": ""}
            out[which] = build_operator(e, name + tag[config], mode="static")
        elif config == "static+blockrelax+autotune":
            import jaxseis.devito._build as B

            with B._LOCK, B._contiguous_static():
                out[which] = Operator(e, name=name, language="openmp",
                                      opt=("advanced", {**B.OPERATOR_KWARGS["opt"][1],
                                                        "blockrelax": True}))
        elif config == "static+linearize":
            import jaxseis.devito._build as B

            with B._LOCK, B._contiguous_static():
                out[which] = Operator(e, name=name, language="openmp",
                                      opt=("advanced", {**B.OPERATOR_KWARGS["opt"][1],
                                                        "linearize": True}))
        else:
            raise SystemExit(f"unknown configuration {config!r}")
    return out


class Runner:
    def __init__(self, d, config, unpadded=None):
        if config == "static+unpadded":
            d = unpadded()
        self.d, self.config = d, config
        self.ops = build(d, config)
        self.extra = ({"nthreads": 1, "nthreads_nonaffine": 1} if config == "devito-1thread"
                      else {})
        if config.endswith("autotune"):
            self.extra = {"autotune": "aggressive"}
        self.first = True
        self.d_obs = None
        # per operator, only the Functions this variant reads (the quotient form has no `lf_a`,
        # `lf_b`), chosen once here rather than in every timed call
        self.kw = {w: {k: v for k, v in d.kw[w].items()
                       if k in {a.name for a in op.parameters}} for w, op in self.ops.items()}

    def __call__(self, which, S):
        d = self.d
        d.ops = self.ops
        orig = d._apply
        extra = self.extra

        def apply(w):
            # one-thread runs stay on this thread (they open no OpenMP team), others on the master
            run = d.ops[w].apply if extra.get("nthreads") == 1 else C.on_openmp_master(
                d.ops[w].apply)
            run(time_m=1, time_M=d.nt, dt=d.s.dtype.type(d.dt), **self.kw[w], **extra)

        d._apply = apply
        try:
            if which == "forward":
                return d.forward(S["model_true"])
            if self.d_obs is None:
                # the observed data from this variant's own forward: a variant that rounds
                # differently (`static+quotient`) would otherwise fit float32 rounding noise
                # (on S2 as large as the residual of the model without the anomaly)
                self.d_obs = np.array(d.forward(S["model_true"]))
            return d.value_and_grad(S["model0"], self.d_obs)
        finally:
            d._apply = orig
            if self.first and extra.get("autotune"):
                self.extra = {}          # autotune once; later calls reuse the tuned blocks
            self.first = False


def flat(x):
    if isinstance(x, tuple):
        f, g = x
        leaves = [np.atleast_1d(np.float64(f))] + [np.ravel(g[k]) for k in sorted(g)] \
            if isinstance(g, dict) else [np.atleast_1d(np.float64(f)), np.ravel(g)]
        return np.concatenate([np.asarray(v, np.float64) for v in leaves])
    return np.ravel(np.asarray(x, np.float64))


def run_physics(physics, quick, repeats, configs):
    S = BP.setup(physics, quick)
    _, d = BP.direct_callables(S)
    runners = {c: Runner(d, c, unpadded=lambda: BP.direct_callables(S, aligned=False)[1])
               for c in configs}
    npts = float(np.prod(d.s.padded_shape)) * d.nt
    rows = []
    for which in ("forward", "value_and_grad"):
        ref = flat(runners[configs[0]](which, S))
        same = {}
        for c in list(configs):               # warm-up (compile, autotune) and identity check
            try:
                out = flat(runners[c](which, S))
            except Exception as e:            # noqa: BLE001  (Devito cannot build this variant)
                print(f"{physics} {which} {c}: failed ({type(e).__name__}: {e}); left out")
                configs = tuple(x for x in configs if x != c)
                continue
            same[c] = bool(np.array_equal(out, ref))
            if not same[c]:
                same[c] = float(np.max(np.abs(out - ref)) / max(np.max(np.abs(ref)), 1e-30))
        times = {c: [] for c in configs}
        for i in range(repeats):               # interleaved rounds, every other one reversed
            for c in (configs if i % 2 == 0 else configs[::-1]):
                t0 = time.perf_counter()
                runners[c](which, S)
                times[c].append(time.perf_counter() - t0)
        base = float(np.median(times[configs[0]]))
        for c in configs:
            t = np.asarray(times[c])
            med = float(np.median(t))
            # the speedup within each round (the host's slow phases hit both calls of a round)
            paired = float(np.median(np.asarray(times[configs[0]]) / t))
            rows.append(dict(physics=physics, problem=S["name"], op=which, config=c,
                             **C.spread(t), paired_speedup=paired,
                             speedup=base / med, gpts=npts / med / 1e9, identical=same[c],
                             times=t.tolist()))
    return rows


def print_rows(rows):
    head = (f"{'physics':9s} {'op':15s} {'configuration':28s} {'min':>7s} {'median':>7s} "
            f"{'p90':>7s} {'max':>7s} {'speedup':>8s} {'paired':>7s} {'GPts/s':>7s}  identical")
    print(head)
    print("-" * len(head))
    for r in rows:
        ident = "yes" if r["identical"] is True else f"no ({r['identical']:.1e})"
        print(f"{r['physics']:9s} {r['op']:15s} {r['config']:28s} {r['min_s']:7.3f} "
              f"{r['median_s']:7.3f} {r['p90_s']:7.3f} {r['max_s']:7.3f} {r['speedup']:7.2f}x "
              f"{r.get('paired_speedup', float('nan')):6.2f}x "
              f"{r['gpts']:7.2f}  {ident}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--physics", nargs="*", default=list(BP.PHYSICS))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--extra", action="store_true", help="also the EXTRA configurations")
    p.add_argument("--configs", nargs="*", default=None,
                   help="only these configurations (the first is the reference of `speedup` and "
                        "`identical`)")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    repeats = a.repeats or (3 if a.quick else 7)
    configs = tuple(a.configs) if a.configs else CONFIGS + (EXTRA if a.extra else ())
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {repeats} interleaved rounds")
    rows = []
    for ph in a.physics:
        r = run_physics(ph, a.quick, repeats, configs)
        print_rows(r)
        print(flush=True)
        rows += r
    print("All physics:")
    print_rows(rows)
    path = a.json or C.RESULTS / f"bench_tuning{'_quick' if a.quick else ''}.json"
    C.RESULTS.mkdir(exist_ok=True)
    import json

    with open(path, "w") as f:
        json.dump(dict(omp_num_threads=os.environ.get("OMP_NUM_THREADS"), repeats=repeats,
                       rows=rows), f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
