"""jaxseis against the same Devito operators called directly, on S2 and S3 (see benchmarks/README.md).

Both sides use the *same* host `Solver` (jaxseis/devito/_solver.py), hence the same compiled Devito
operators; what differs is everything around `Operator.apply`. The direct side is what a careful
Devito user writes: Devito Functions allocated once and reused (the saved wavefield too), only the
buffers that must be reset zeroed per call, the model padded into its Function and the gradient
cropped back to the physical grid on every call (an FWI loop needs both). The jaxseis side is the
public API under `jax.jit`.

Compared (medians of repeated warm runs after one untimed warm-up, jaxseis and direct runs
alternated so that machine noise hits both alike):

- forward: `jax.jit(op.forward)` vs the forward operator applied to preallocated Functions;
- value_and_grad of `0.5 ||forward(m) - d_obs||^2` (d_obs from the true model, m without the
  anomaly): `jax.jit(jax.value_and_grad(loss))` vs direct forward with a saved wavefield, residual
  and misfit in NumPy, and the adjoint gradient operator;
- born: `jax.jit(op.born)` vs the Born operator applied to preallocated Functions (m0 the model
  without the anomaly, dm = m_true - m0).

Each pair is checked to agree (max |a - b| / max |b| printed), so the comparison is of equal work.

Problems (`--problem`, arrays from `_common.s2_arrays` / `_common.s3_arrays`; space order 8):

- s2 (default): 301 x 301 at 10 m, nbl 40, 0..1000 ms, dt 1.483 ms (nt 676); true model with a
  Gaussian anomaly of -0.5 km/s (sigma 250 m) at the centre. `--quick`: 101 x 101, nbl 20, 400 ms.
- s3: 101 x 101 x 101 at 10 m, nbl 20 (padded 141^3), vp = 1.5 + 1.5 z / 1000 km/s, one source at
  (500, 500, 20), 101 x 101 receivers on z = 0 every 10 m, Ricker 0.010 kHz peaking at 100 ms,
  0..600 ms with dt = 1.5 ms (`jaxseis.critical_dt` = 1.5095 ms for vmax 3 km/s, rounded down to a
  multiple of 0.5 ms; nt 401). True model: the background minus a Gaussian anomaly of 0.3 km/s,
  sigma 150 m, at the centre (500, 500, 500); background (m0) without it. `--quick`: 41^3, nbl 10,
  300 ms, dt 2.0 ms (nt 151), the anomaly's sigma scaled to 60 m.

Memory: the gradient keeps the full forward wavefield, `(nt + 2) * prod(padded + 2 * halo) * 4`
bytes (S2: 391 MB; S3: 403 * 149^3 * 4 = 5.3 GB), and this script holds two of them (the direct
side's buffer and the one in the jaxseis wavefield store): 9.9 GiB for S3, whose measured peak
RSS is 12.7 GiB (building the 3D operators takes about 1 GB more on each side). The estimate is
printed before anything is allocated, and the script stops if the two wavefields exceed
MemAvailable (`--skip-memory-check` to run anyway).

Run: `python benchmarks/bench_core.py` (S2, a few minutes), `--problem s3` (~10 minutes,
~13 GB), `--quick` (small grid, seconds), `--repeats N`, `--json PATH` (default
results/bench_core.json for s2, results/bench_core_s3.json for s3), `--profile` (break the
jaxseis forward and gradient into pieces). OMP_NUM_THREADS defaults to 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time as _time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("DEVITO_LOGGING", "WARNING")

import devito  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from devito import Function, TimeFunction  # noqa: E402
from jaxseis.devito._layout import aligned_rows  # noqa: E402


sys.path.insert(0, str(Path(__file__).parent))
import _common  # noqa: E402

TARGETS = {"forward": 1.05, "value_and_grad": 1.10}
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_core.json"
DEFAULT_JSON_BY_PROBLEM = {"s2": DEFAULT_JSON,
                           "s3": DEFAULT_JSON.with_name("bench_core_s3.json")}


# ---------------------------------------------------------------------------------- problem
def make_problem(quick: bool, problem: str = "s2"):
    """S2 or S3; with `quick` a small version of it (S2: 101 x 101, nbl 20, 400 ms; S3: 41^3,
    nbl 10, 300 ms) that runs in seconds."""
    P = {"s2": _common.s2_arrays, "s3": _common.s3_arrays}[problem](quick)
    op = _common.jaxseis_op(P)
    return dict(op=op, m_true=P["m_true"], m0=P["m0"], dm=P["m_true"] - P["m0"], src=P["src"],
                rec=P["rec"], wavelet=P["wavelet"], name=P["name"])


# ---------------------------------------------------------------------------------- direct Devito
class Direct:
    """The jaxseis Solver's compiled operators applied to Functions allocated once.

    Mirrors Solver.forward / Solver.adjoint (same names, same time-row convention: Devito row k is
    sample k - 1, time_m=1, time_M=nt) but reuses every buffer, zeroing only what must be zero."""

    def __init__(self, op, src, rec, wavelet):
        self.s = s = op.solver
        self.nt, self.dt = op.time.nt, op.time.dt
        so, g, nt = s.cfg.space_order, s.grid, self.nt
        self.op_fwd = s.operator("forward", source="point", save=False, born=False)
        self.op_fwd_save = s.operator("forward", source="point", save=True, born=False)
        self.op_born = s.operator("forward", source="point", save=False, born=True)
        self.op_grad = s.operator("adjoint", srca=False, ext=False, grad=True)
        q = np.asarray(wavelet, dtype=s.dtype).reshape(nt, 1)
        # jaxseis's layout (rows padded to whole cache lines, jaxseis/devito/_layout.py): the ratio
        # to jaxseis is then its own overhead, not a difference in layout
        with aligned_rows():
            self.m = Function(name="m", grid=g, space_order=so)
            self.dm = Function(name="dm", grid=g, space_order=so)
            self.src = s._sparse("src", src, q, nt)
            self.rec = s._sparse("rec", rec, None, nt)      # recorded data (forward / Born)
            self.resid = s._sparse("rec", rec, None, nt)    # injected residual (adjoint)
            self.u = TimeFunction(name="u", grid=g, time_order=2, space_order=so)
            self.du = TimeFunction(name="du", grid=g, time_order=2, space_order=so)
            self.v = TimeFunction(name="v", grid=g, time_order=2, space_order=so)
            self.grad = Function(name="g_m", grid=g, space_order=so)  # imaging of coefficient m
            self.usave = TimeFunction(name="u", grid=g, time_order=2, space_order=so, save=nt + 2)
        self.usave.data_with_halo[:] = 0  # touch it (S2 0.4 GB, S3 5.3 GB) once, outside timings
        # the kernel's scratch Functions (the Leapfrog step's coefficients, computed by each apply)
        self.aux = {sp.kwargs["name"]: sp.make() for sp in s.ctx.fields("aux")}

    def _apply(self, op, **fields):
        _common.on_openmp_master(op.apply)(time_m=1, time_M=self.nt,
                                           dt=self.s.dtype.type(self.dt),
                                           damp=self.s.damp, **self.aux, **fields)

    def _data(self):
        return np.array(self.rec.data[1:self.nt + 1])

    def forward(self, m):
        self.m.data[:] = self.s.pad_model(m)
        self.u.data_with_halo[:] = 0
        self._apply(self.op_fwd, m=self.m, src=self.src, rec=self.rec, u=self.u)
        return self._data()

    def born(self, m0, dm):
        self.m.data[:] = self.s.pad_model(m0)
        self.dm.data[:] = self.s.pad_model(dm)
        self.u.data_with_halo[:] = 0
        self.du.data_with_halo[:] = 0
        self._apply(self.op_born, m=self.m, dm=self.dm, src=self.src, rec=self.rec, u=self.u,
                    du=self.du)
        return self._data()

    def value_and_grad(self, m, d_obs):
        self.m.data[:] = self.s.pad_model(m)
        self.usave.data_with_halo[:2] = 0  # zero initial states; later slots written before read
        self._apply(self.op_fwd_save, m=self.m, src=self.src, rec=self.rec, u=self.usave)
        resid = self.rec.data[1:self.nt + 1] - d_obs
        f = 0.5 * float(np.sum(resid.astype(np.float64) ** 2))
        self.resid.data[1:self.nt + 1] = resid
        self.v.data_with_halo[:] = 0
        self.grad.data_with_halo[:] = 0
        self._apply(self.op_grad, m=self.m, rec=self.resid, v=self.v, u=self.usave,
                    g_m=self.grad)
        return f, self.s.unpad_model_adjoint(self.grad.data)


# ---------------------------------------------------------------------------------- jaxseis
def jaxseis_fns(op):
    def loss(m, d_obs, wavelet, src, rec):
        r = op.forward(m, wavelet, src, rec) - d_obs
        return 0.5 * jnp.sum(r * r)

    return dict(forward=jax.jit(op.forward), value_and_grad=jax.jit(jax.value_and_grad(loss)),
                born=jax.jit(op.born))


# ---------------------------------------------------------------------------------- timing
def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_estimate(op):
    """Bytes of the two full saved wavefields this script holds (direct side + jaxseis store), the
    rest of the buffers being small next to them, and MemAvailable (None if unknown)."""
    one = op.wavefield_bytes()
    try:
        with open("/proc/meminfo") as f:
            avail = next(int(line.split()[1]) * 1024 for line in f
                         if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        avail = None
    return one, 2 * one, avail


def rel_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def timed(fn):
    t0 = _time.perf_counter()
    out = fn()
    return _time.perf_counter() - t0, out


def compare(name, direct_fn, jax_fn, repeats, agree):
    """One untimed warm-up each, then `repeats` alternated pairs (the order flips every pair)."""
    d_out = direct_fn()
    j_out = jax_fn()
    diff = agree(d_out, j_out)
    td, tj = [], []
    for r in range(repeats):
        order = (("d", direct_fn), ("j", jax_fn)) if r % 2 == 0 else (("j", jax_fn), ("d", direct_fn))
        for who, fn in order:
            t, _ = timed(fn)
            (td if who == "d" else tj).append(t)
    md, mj = statistics.median(td), statistics.median(tj)
    # Each pair ran back to back, so its ratio sees similar machine load: the median of the
    # per-pair ratios is the steadier number on a shared machine.
    paired = statistics.median(j / d for j, d in zip(tj, td))
    row = dict(op=name, direct_median_s=md, jaxseis_median_s=mj, ratio=mj / md,
               paired_ratio=paired,
               direct=_common.spread(td), jaxseis=_common.spread(tj),
               direct_times_s=td, jaxseis_times_s=tj, max_rel_diff=diff,
               peak_rss_mb_after=peak_rss_mb())
    if name in TARGETS:
        row["target_ratio"] = TARGETS[name]
        row["meets_target"] = bool(mj / md <= TARGETS[name])  # on the ratio of medians
    print(f"  {name:15s} direct {md:.4f} s  jaxseis {mj:.4f} s  ratio {mj / md:.3f} (paired {paired:.3f})  "
          f"max rel diff {diff:.2e}  peak RSS {row['peak_rss_mb_after']:.0f} MB", flush=True)
    return row


def paired_gradient_ratio(fwd_fn, vg_fn, repeats):
    """value_and_grad / forward of jaxseis measured in pairs (a forward and a gradient back to back,
    the order flipping every pair): the host's speed changes on a scale of minutes, so the ratio
    of two medians timed minutes apart can land anywhere between ~1.9 and ~3.2 on this machine;
    the median of per-pair ratios is the issue-13 figure."""
    fwd_fn(), vg_fn()
    tf, tg = [], []
    for r in range(repeats):
        pair = ((tf, fwd_fn), (tg, vg_fn)) if r % 2 == 0 else ((tg, vg_fn), (tf, fwd_fn))
        for acc, fn in pair:
            acc.append(timed(fn)[0])
    ratios = [g / f for g, f in zip(tg, tf)]
    out = dict(forward=_common.spread(tf), value_and_grad=_common.spread(tg),
               ratios=_common.spread(ratios), forward_times_s=tf, value_and_grad_times_s=tg)
    print(f"  value_and_grad / forward in {repeats} back-to-back pairs: median "
          f"{out['ratios']['median_s']:.2f} (min / p90 / max {_common.spread_cell(out['ratios'], '.2f')}); "
          f"forward median {out['forward']['median_s']:.4f} s, value_and_grad "
          f"{out['value_and_grad']['median_s']:.4f} s (issue 13 target <= 2.5)", flush=True)
    return out


# ---------------------------------------------------------------------------------- profile
def profile(P, fns, repeats):
    """Where jaxseis spends its time beyond Operator.apply: the pieces of Solver.forward, the host
    checks, and the pure_callback / XLA overhead."""
    from jaxseis.devito import _tasks

    op, s = P["op"], P["op"].solver
    nt, dt = op.time.nt, op.time.dt
    m, src, rec = P["m0"], P["src"], P["rec"]
    q = P["wavelet"].reshape(nt, 1)
    so, g = s.cfg.space_order, s.grid
    op_fwd = s.operator("forward", source="point", save=False, born=False)

    def med(fn, n=repeats):
        fn()
        return statistics.median(timed(fn)[0] for _ in range(n))

    pieces = {}
    pieces["np.pad (pad_model)"] = med(lambda: s.pad_model(m))
    pieces["Function m (create+fill)"] = med(lambda: s._function("m", s.pad_model(m)))
    pieces["SparseTimeFunction rec"] = med(lambda: s._sparse("rec", rec, None, nt))
    pieces["SparseTimeFunction src (+q)"] = med(lambda: s._sparse("src", src, q, nt))
    pieces["TimeFunction u (buffered)"] = med(
        lambda: TimeFunction(name="u", grid=g, time_order=2, space_order=so))
    fm = s._function("m", s.pad_model(m))
    frec = s._sparse("rec", rec, None, nt)
    fsrc = s._sparse("src", src, q, nt)
    fu = TimeFunction(name="u", grid=g, time_order=2, space_order=so)
    aux = s._aux()  # the kernel's scratch Functions (the Leapfrog step's coefficients)

    def reuse_apply():
        fu.data_with_halo[:] = 0
        s._apply(op_fwd, nt, dt, m=fm, rec=frec, src=fsrc, u=fu, **aux)

    def fresh_apply():
        u = TimeFunction(name="u", grid=g, time_order=2, space_order=so)
        s._apply(op_fwd, nt, dt, m=fm, rec=frec, src=fsrc, u=u, **aux)

    def fresh_all_apply():
        s._apply(op_fwd, nt, dt, m=s._function("m", s.pad_model(m)),
                 rec=s._sparse("rec", rec, None, nt), src=s._sparse("src", src, q, nt),
                 u=TimeFunction(name="u", grid=g, time_order=2, space_order=so), **s._aux())

    pieces["apply, reused Functions"] = med(reuse_apply)
    pieces["apply, fresh u only"] = med(fresh_apply)
    pieces["apply, all Functions fresh"] = med(fresh_all_apply)
    pieces["Solver.forward (whole)"] = med(lambda: s.forward(m, dt, nt, rec, src=src, q=q))
    pieces["_tasks.validate (host checks)"] = med(
        lambda: _tasks.validate(op, "point", m, q, src, rec))
    pieces["_tasks.forward (validate+solve)"] = med(
        lambda: _tasks.forward(op, "point", False, False, [(m, q, src, rec)]))
    jm, jw, js_, jr = (jnp.asarray(a) for a in (m, P["wavelet"], src, rec))
    pieces["jit(op.forward) (whole)"] = med(
        lambda: fns["forward"](jm, jw, js_, jr).block_until_ready())
    noop = jax.jit(lambda x: jax.pure_callback(lambda a: a, jax.ShapeDtypeStruct(x.shape, x.dtype),
                                               x, vmap_method="expand_dims"))
    jd = jnp.zeros((nt, rec.shape[0]), jnp.float32)
    pieces["jit(pure_callback identity), data-sized"] = med(lambda: noop(jd).block_until_ready())

    # value_and_grad pieces: saved forward (store acquire), adjoint with grad, the store itself
    store = s.store
    pieces["store entries / free after runs"] = None
    pieces["Solver.forward(save=True) (whole)"] = med(
        lambda: store.release(s.forward(m, dt, nt, rec, src=src, q=q, save=True)[1]))
    _, u = s.forward(m, dt, nt, rec, src=src, q=q, save=True)
    d = np.zeros((nt, rec.shape[0]), np.float32)
    pieces["Solver.adjoint(grad) (whole)"] = med(lambda: s.adjoint(m, dt, nt, rec, d, u=u))
    pieces["unpad_model_adjoint"] = med(lambda: s.unpad_model_adjoint(np.zeros(s.padded_shape,
                                                                               np.float32)))
    store.release(u)
    n_entries, n_free = len(store._entries), len(store._free)
    pieces["store entries / free after runs"] = f"{n_entries} / {n_free}"
    print("\nprofile (median s of warm runs; jaxseis internals):")
    for k, v in pieces.items():
        print(f"  {k:42s} {v if isinstance(v, str) else f'{v:.4f}'}")
    return pieces


# ---------------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="small grid (smoke test, seconds)")
    p.add_argument("--problem", choices=["s2", "s3"], default="s2",
                   help="S2 (2D, default) or S3 (3D, ~13 GB) described in benchmarks/README.md")
    p.add_argument("--json", type=Path, default=None,
                   help="default results/bench_core.json (s2) or results/bench_core_s3.json (s3)")
    p.add_argument("--skip-memory-check", action="store_true",
                   help="run even if the saved wavefields exceed MemAvailable")
    p.add_argument("--profile", action="store_true", help="time the pieces of the jaxseis path")
    p.add_argument("--only", nargs="*", choices=["forward", "value_and_grad", "born"],
                   default=["forward", "value_and_grad", "born"])
    a = p.parse_args(argv)
    if a.json is None:
        a.json = DEFAULT_JSON_BY_PROBLEM[a.problem]

    P = make_problem(a.quick, a.problem)
    op = P["op"]
    load0 = _common.load_average()
    print(f"{P['name']}: padded {op.solver.padded_shape}, nt {op.time.nt}, dt {op.time.dt:g} ms "
          f"(critical {op.critical_dt(P['m_true']):.4f} ms), space order "
          f"{op.space_order}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"{os.cpu_count()} cores, repeats {a.repeats}, load average {load0}", flush=True)
    one, total, avail = memory_estimate(op)
    halo = op.space_order // 2
    dims = " x ".join(str(n + 2 * halo) for n in op.solver.padded_shape)
    print(f"  memory estimate: one saved wavefield (nt + 2) * ({dims}) * 4 B = "
          f"{one / 2**30:.2f} GiB; two held (direct + jaxseis store) = {total / 2**30:.2f} GiB; "
          f"MemAvailable {'?' if avail is None else f'{avail / 2**30:.1f} GiB'}", flush=True)
    if avail is not None and total > avail and not a.skip_memory_check:
        sys.exit(f"bench_core: needs ~{total / 2**30:.1f} GiB for saved wavefields, only "
                 f"{avail / 2**30:.1f} GiB available (--skip-memory-check to run anyway)")

    t_build, direct = timed(lambda: Direct(op, P["src"], P["rec"], P["wavelet"]))
    print(f"  build/compile of 4 Devito operators + buffers: {t_build:.1f} s", flush=True)
    fns = jaxseis_fns(op)
    jm0, jmt, jdm = (jnp.asarray(P[k]) for k in ("m0", "m_true", "dm"))
    jw, jsrc, jrec = (jnp.asarray(P[k]) for k in ("wavelet", "src", "rec"))
    d_obs = direct.forward(P["m_true"])
    jd_obs = jnp.asarray(d_obs)
    d_max = float(np.max(np.abs(d_obs)))
    print(f"  d_obs: max |d| {d_max:.3e}, finite {bool(np.all(np.isfinite(d_obs)))}; misfit at m0 "
          f"{0.5 * float(np.sum((direct.forward(P['m0']).astype(np.float64) - d_obs) ** 2)):.3e}",
          flush=True)

    rows = []
    if "forward" in a.only:
        rows.append(compare(
            "forward", lambda: direct.forward(P["m_true"]),
            lambda: fns["forward"](jmt, jw, jsrc, jrec).block_until_ready(), a.repeats,
            lambda d, j: rel_diff(j, d)))
    if "value_and_grad" in a.only:
        def agree_vg(d, j):
            return max(abs(float(j[0]) - d[0]) / abs(d[0]), rel_diff(j[1], d[1]))
        rows.append(compare(
            "value_and_grad", lambda: direct.value_and_grad(P["m0"], d_obs),
            lambda: jax.block_until_ready(fns["value_and_grad"](jm0, jd_obs, jw, jsrc, jrec)),
            a.repeats, agree_vg))
    if "born" in a.only:
        rows.append(compare(
            "born", lambda: direct.born(P["m0"], P["dm"]),
            lambda: fns["born"](jm0, jdm, jw, jsrc, jrec).block_until_ready(), a.repeats,
            lambda d, j: rel_diff(j, d)))

    pairs = None
    if "forward" in a.only and "value_and_grad" in a.only:
        pairs = paired_gradient_ratio(
            lambda: fns["forward"](jmt, jw, jsrc, jrec).block_until_ready(),
            lambda: jax.block_until_ready(fns["value_and_grad"](jm0, jd_obs, jw, jsrc, jrec)),
            max(a.repeats, 9))

    store = op.solver.store
    points = int(np.prod(op.solver.padded_shape)) * op.time.nt
    print("\n| op | direct median s | direct min / p90 / max s | jaxseis median s | "
          "jaxseis min / p90 / max s | jaxseis GPts/s | ratio | paired ratio | target | "
          "max rel diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tgt = f"<= {r['target_ratio']:.2f}x " + ("ok" if r["meets_target"] else "MISSED") \
            if "target_ratio" in r else "-"
        r["jaxseis_gpts_per_s"] = points / r["jaxseis_median_s"] / 1e9
        print(f"| {r['op']} | {r['direct_median_s']:.4f} | "
              f"{_common.spread_cell(r['direct'], '.4f')} | {r['jaxseis_median_s']:.4f} | "
              f"{_common.spread_cell(r['jaxseis'], '.4f')} | {r['jaxseis_gpts_per_s']:.2f} | "
              f"{r['ratio']:.3f} | {r['paired_ratio']:.3f} | {tgt} | {r['max_rel_diff']:.1e} |")
    print(f"GPts/s = {points // op.time.nt} padded grid points x {op.time.nt} steps / median s / 1e9 "
          "(for value_and_grad and born: forward-equivalent points per second)")
    by_op = {r["op"]: r for r in rows}
    if "forward" in by_op and "value_and_grad" in by_op:
        print(f"value_and_grad / forward (jaxseis medians of the two blocks above, timed minutes "
              f"apart): "
              f"{by_op['value_and_grad']['jaxseis_median_s'] / by_op['forward']['jaxseis_median_s']:.2f}"
              f"; in back-to-back pairs: {pairs['ratios']['median_s']:.2f} (issue 13 target <= 2.5)")
    print(f"\npeak RSS {peak_rss_mb():.0f} MB (whole process); wavefield store: "
          f"{len(store._entries)} saved entries, {len(store._free)} free buffers, "
          f"{op.wavefield_bytes() / 2**20:.0f} MB each")

    prof = profile(P, fns, a.repeats) if a.profile else None
    load1 = _common.load_average()
    print(f"load average at start {load0}, at end {load1}")

    out = dict(
        benchmark="bench_core", problem=P["name"], quick=a.quick, repeats=a.repeats,
        padded_shape=list(op.solver.padded_shape), nt=op.time.nt, dt_ms=op.time.dt,
        space_order=op.space_order,
        wavefield_bytes_estimate=dict(one=one, held=total, mem_available=avail),
        machine=dict(cores=os.cpu_count(), omp_num_threads=os.environ["OMP_NUM_THREADS"],
                     platform=platform.platform(), python=sys.version.split()[0],
                     jax=jax.__version__, devito=devito.__version__, numpy=np.__version__,
                     load_average_start=load0, load_average_end=load1),
        build_s=t_build, peak_rss_mb=peak_rss_mb(), results=rows, targets=TARGETS,
        gradient_forward_pairs=pairs,
        store=dict(entries=len(store._entries), free=len(store._free),
                   wavefield_mb=op.wavefield_bytes() / 2**20),
        profile=prof)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(out, indent=1))
    print(f"wrote {a.json}")
    return out


if __name__ == "__main__":
    main()
