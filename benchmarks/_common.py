"""Shared helpers of the benchmark scripts: the S2 and S3 problems (benchmarks/README.md),
interleaved timing, peak RSS, subprocess isolation for memory, tables and JSON output.

Importing this module sets OMP_NUM_THREADS=2 (unless already set) and quiets Devito; import it
before jax / devito / jaxseis. Run benchmarks on a quiet machine.

OMP_WAIT_POLICY: with libgomp's default (spin, then sleep) Devito's two OpenMP threads meet at a
barrier every time step. On an oversubscribed machine a descheduled team member then costs a time
slice per step (S2 forward, load average ~5: 0.25 to 43 s per call; with OMP_WAIT_POLICY=passive
0.20 s steady). On a quiet machine passive is much slower (quick S2 forward 0.036 s vs 0.008 s), so
it is not set here: export OMP_WAIT_POLICY=passive yourself only when the machine is shared.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time as _time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("DEVITO_LOGGING", "WARNING")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


# ---------------------------------------------------------------------------------- problem
def s2_arrays(quick: bool = False, tn: float | None = None):
    """The S2 problem as NumPy arrays (no operator): dict with grid, time, m_true, m0, src, rec,
    wavelet, nbl, name.

    S2: 301 x 301 at 10 m, nbl 40, 0..1000 ms at dt 1.483 ms, vp = 1.5 + 2 z / 3000 minus a
    Gaussian anomaly (0.5 km/s, sigma 250 m) at the centre; source (1500, 20); 301 receivers at
    z = 0. `quick`: the same layout on 101 x 101 (nbl 20, 400 ms, anomaly scaled with the grid), as
    in bench_core.py. `tn` overrides the record length (the long-record case uses 4000 ms).
    """
    import jaxseis as js

    n, nbl, tn_default = (101, 20, 400.0) if quick else (301, 40, 1000.0)
    tn = tn_default if tn is None else float(tn)
    h = 10.0
    L = (n - 1) * h
    grid = js.Grid((n, n), (h, h))
    time = js.TimeAxis(0.0, tn, 1.483)
    x = np.arange(n) * h
    z = np.arange(n) * h
    xc, zc, sig = L / 2, L / 2, 250.0 * L / 3000.0
    background = 1.5 + 2.0 * z[None, :] / 3000.0 + 0.0 * x[:, None]
    anomaly = 0.5 * np.exp(-((x[:, None] - xc) ** 2 + (z[None, :] - zc) ** 2) / (2 * sig**2))
    m_true = (1.0 / (background - anomaly) ** 2).astype(np.float32)
    m0 = (1.0 / background**2).astype(np.float32)
    src = np.array([[L / 2, 20.0]], dtype=np.float32)
    rec = np.stack([x, np.zeros(n)], axis=1).astype(np.float32)
    wavelet = np.asarray(js.ricker(time, 0.010, t_peak=100.0), dtype=np.float32)
    name = (f"S2-quick ({n}x{n}, nbl {nbl}, {tn:g} ms, nt {time.nt})" if quick
            else f"S2 ({n}x{n}, nbl {nbl}, {tn:g} ms, nt {time.nt})")
    return dict(grid=grid, time=time, nbl=nbl, m_true=m_true, m0=m0, src=src, rec=rec,
                wavelet=wavelet, name=name)


def s3_arrays(quick: bool = False):
    """The S3 problem (3D) as NumPy arrays (no operator): the same keys as `s2_arrays` (grid, time,
    m_true, m0, src, rec, wavelet, nbl, name).

    S3: 101 x 101 x 101 at 10 m, nbl 20, 0..600 ms; background vp = 1.5 + 1.5 z / 1000 km/s (z
    depth, the last axis; 1.5 to 3.0 km/s); the true model subtracts a Gaussian anomaly of
    0.3 km/s, sigma 150 m, at the centre (500, 500, 500) m (vp 1.95 instead of 2.25 there); m0 is
    the background.
    One source at (500, 500, 20); 101 x 101 = 10201 receivers on z = 0 every 10 m (receiver
    i * n + j at (10 i, 10 j, 0)); Ricker f0 = 0.010 kHz peaking at 100 ms (as in S2).
    dt: `jaxseis.critical_dt(grid, vmax, space_order=8)` rounded down to a multiple of 0.5 ms:
    1.5095 -> 1.5 ms, nt 401 (stable for space order <= 8).
    `quick`: the same layout on 41 x 41 x 41 (nbl 10, 300 ms, same vp(z) law, so vmax 2.1 km/s and
    dt 2.156 -> 2.0 ms, nt 151; anomaly sigma scaled with the grid to 60 m at the centre).
    """
    import jaxseis as js

    n, nbl, tn = (41, 10, 300.0) if quick else (101, 20, 600.0)
    h = 10.0
    L = (n - 1) * h
    grid = js.Grid((n, n, n), (h, h, h))
    x = np.arange(n) * h
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    background = 1.5 + 1.5 * Z / 1000.0
    c, sig = L / 2, 150.0 * L / 1000.0
    anomaly = 0.3 * np.exp(-((X - c) ** 2 + (Y - c) ** 2 + (Z - c) ** 2) / (2 * sig**2))
    m_true = (1.0 / (background - anomaly) ** 2).astype(np.float32)
    m0 = (1.0 / background**2).astype(np.float32)
    dt = float(np.floor(js.critical_dt(grid, float(background.max()), 8) / 0.5) * 0.5)
    time = js.TimeAxis(0.0, tn, dt)
    src = np.array([[c, c, 20.0]], dtype=np.float32)
    rec = np.stack([X[:, :, 0].ravel(), Y[:, :, 0].ravel(), np.zeros(n * n)],
                   axis=1).astype(np.float32)
    wavelet = np.asarray(js.ricker(time, 0.010, t_peak=100.0), dtype=np.float32)
    name = (f"S3{'-quick' if quick else ''} ({n}x{n}x{n}, nbl {nbl}, {tn:g} ms, dt {dt:g} ms, "
            f"nt {time.nt})")
    return dict(grid=grid, time=time, nbl=nbl, m_true=m_true, m0=m0, src=src, rec=rec,
                wavelet=wavelet, name=name)


def jaxseis_op(P, space_order=8, storage=None):
    import jaxseis as js

    kw = {} if storage is None else {"storage": storage}
    return js.Acoustic(P["grid"], P["time"], space_order=space_order, nbl=P["nbl"], **kw)


def misfit_fn(forward):
    """0.5 ||forward(m) - d_obs||^2 for a `forward(m) -> data`."""
    import jax.numpy as jnp

    def loss(m, d_obs):
        r = forward(m) - d_obs
        return 0.5 * jnp.sum(r * r)

    return loss


def storage_from_name(name: str):
    """"full" | "checkpointed" | "checkpointed:N" | "subsampled:F" -> a jaxseis storage object."""
    import jaxseis as js

    kind, _, arg = name.partition(":")
    if kind == "full":
        return js.FullStorage()
    if kind == "checkpointed":
        return js.Checkpointed(int(arg) if arg else None)
    if kind == "subsampled":
        return js.Subsampled(int(arg) if arg else 4)
    raise ValueError(f"unknown storage {name!r}")


# ---------------------------------------------------------------------------------- numbers
def rel_diff(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def rel_l2(a, b):
    """||a - b|| / ||b||."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _proc_status_mb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb():
    """Peak resident set size of this process so far, MB.

    Linux's VmHWM (high-water mark of this address space). Not `getrusage().ru_maxrss`: that one
    survives execve, so a child started by `subprocess` (fork + exec) reports at least the RSS of
    the parent at fork time (measured: every child of a 590 MB parent reported 592 MB)."""
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ru_maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb():
    v = _proc_status_mb("VmRSS")
    return float("nan") if v is None else v


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def on_openmp_master(fn):
    """`fn` (any arguments) run on jaxseis's OpenMP master thread, where jaxseis runs its own
    solves: the Devito-direct and deepwave (torch) sides of a benchmark share the process's GNU
    OpenMP runtime with jaxseis, and a second thread opening OpenMP teams would make every side
    several times slower (jaxseis/devito/_openmp.py)."""
    def run(*args, **kwargs):
        from jaxseis.devito import _openmp

        return _openmp.run(lambda: fn(*args, **kwargs))
    return run


def timed(fn):
    t0 = _time.perf_counter()
    out = fn()
    return _time.perf_counter() - t0, out


GAP_S = 0.2


def spread(times) -> dict:
    """The distribution every timing table reports (issue 13): min, median, 90th percentile and
    max of `times` (seconds)."""
    t = np.asarray(times, dtype=float)
    return dict(min_s=float(t.min()), median_s=float(np.median(t)),
                p90_s=float(np.percentile(t, 90)), max_s=float(t.max()))


def spread_cell(d: dict, spec=".3f") -> str:
    """`min / p90 / max` of a `spread` dict as one table cell (the median has its own column)."""
    return " / ".join(format(d[k], spec) for k in ("min_s", "p90_s", "max_s"))


def interleaved(fns: dict, repeats: int, warmup: bool = True, gap_s: float = GAP_S):
    """Time several callables alternately: one untimed warm-up each, then `repeats` rounds in which
    every callable runs once (the order rotates each round, so machine noise hits all alike).
    Returns {name: {"min_s", "median_s", "p90_s", "max_s", "times_s", "out" (of the warm-up)}}.

    Every timed call starts after `gap_s` seconds of idle. Without it a call pays for the previous
    configuration's left-over work: measured on S2, jaxseis value_and_grad takes 0.22 s right
    after the pure-JAX AD baseline (XLA's threads are still busy, presumably releasing its ~1 GB
    of buffers) and 0.18 s after a 0.1 s pause, while the pure-JAX time is the same either way
    (0.75 s). The pause applies to every configuration alike."""
    names = list(fns)
    outs = {k: fns[k]() for k in names} if warmup else {k: None for k in names}
    times = {k: [] for k in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        if r % 2:
            order = order[::-1]
        for k in order:
            if gap_s:
                _time.sleep(gap_s)
            t, _ = timed(fns[k])
            times[k].append(t)
    return {k: dict(spread(times[k]), times_s=times[k], out=outs[k]) for k in names}


# ---------------------------------------------------------------------------------- subprocesses
RESULT_TAG = "@@RESULT@@ "


def run_and_emit(name: str, fn, repeats: int, **extra):
    """In a memory child: time `fn` (warm-up + `repeats`), then emit its peak RSS (VmHWM), the
    increment over the RSS just before the first call, and the median time (plus `extra`)."""
    rss0, peak0 = current_rss_mb(), peak_rss_mb()
    r = interleaved({name: fn}, repeats)
    peak = peak_rss_mb()
    emit_child_result(dict(config=name, rss_before_mb=rss0, peak_before_mb=peak0,
                           peak_rss_mb=peak, increment_mb=peak - rss0,
                           median_s=r[name]["median_s"], ru_maxrss_mb=ru_maxrss_mb(), **extra))


def emit_child_result(payload: dict):
    """A child process's last stdout line: a tagged JSON payload for `run_child`."""
    print(RESULT_TAG + json.dumps(payload), flush=True)


def run_child(argv: list[str], env: dict | None = None, timeout: float = 3600.0):
    """Run `python argv...` in a fresh process; return its tagged JSON payload (or an error dict)
    and the wall time of the whole process."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    t0 = _time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=str(HERE.parent))
    wall = _time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            out = json.loads(line[len(RESULT_TAG):])
            out["process_wall_s"] = wall
            return out
    return dict(error=f"child exited {proc.returncode}", stderr=proc.stderr[-3000:],
                stdout=proc.stdout[-2000:], process_wall_s=wall)


# ---------------------------------------------------------------------------------- output
def fmt(v, spec=".3f"):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and not np.isfinite(v):
        return "nan"
    return format(v, spec)


def print_table(headers: list[str], rows: list[list]):
    """A Markdown table (cells already formatted as strings or formatted with `fmt`)."""
    cells = [[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for r in cells:
        print("| " + " | ".join(r) + " |")
    sys.stdout.flush()


def machine_info():
    import devito
    import jax

    return dict(cores=os.cpu_count(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
                platform=platform.platform(), python=sys.version.split()[0], jax=jax.__version__,
                devito=devito.__version__, numpy=np.__version__, load_average=load_average())


def write_json(name: str, payload: dict, path: Path | None = None):
    path = Path(path) if path else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(benchmark=name, machine=machine_info(), **payload)
    path.write_text(json.dumps(payload, indent=1, default=_jsonable))
    print(f"wrote {path}")
    return path


def _jsonable(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return repr(o)
