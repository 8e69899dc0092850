"""From files to a model: the functions behind `jaxseis model`, `jaxseis rtm` and `jaxseis fwi
--config`, shared by the command line and notebooks.

- `model(config)`: synthetic shot gathers (SEG-Y) of the true model over the acquisition.
- `rtm(config)`: reverse-time migration of the data (minus the data of the starting model, which
  removes the direct wave) in the starting model: image SEG-Y, `.npy` and PNG.
- `fwi(config)`: multi-stage full-waveform inversion with frequency continuation (data and
  wavelet low-pass filtered per stage), any optax optimiser, box bounds, gradient preconditioning
  (water-layer mute, depth scaling, smoothing), random shot subsets; the model after each stage
  (SEG-Y and `.npy`), figures and `metrics.json`; a progress bar per stage; the state is saved
  after every iteration, so `fwi(config, resume=True)` after an interruption loses nothing
  finished.
- `estimate_wavelet(op, model, data, src, rec)`: damped least-squares wavelet estimate (forward is
  linear in the wavelet).
- `lowpass(data, time, fmax)`: zero-phase Butterworth low-pass along time.

`config` is a `jaxseis._config.Config` (from `load_config(path, overrides)`), a path to a TOML
file, or a dict of sections. Any physics class jaxseis exports can be selected (`physics.name`);
its model keys come from its `parameters`. Units: m, ms, km/s, kHz.
"""

from __future__ import annotations

import json
import math
import os
import time as _time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import io, models
from ._config import Config, ConfigError, check, load_config, physics_classes
from ._errors import InvalidArgument, InvalidShape, InvalidType
from ._geometry import Grid, TimeAxis
from ._operator import WaveOperator
from ._physics import parameters_for
from .fwi import _save_state  # atomic write of the resume state, as `jaxseis fwi` does
from .wavelets import ricker

__all__ = ["build_problem", "estimate_wavelet", "fwi", "load_config", "lowpass", "model", "rtm",
           "simulate"]

STATE_FILE = "workflow_state.npz"
METRICS_FILE = "metrics.json"
VP_ALIAS = "vp"


# ------------------------------------------------------------------------------------ config
def _config(config) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    if isinstance(config, dict):
        return check(config)
    raise InvalidType(f"`config` must be a Config, a TOML file path or a dict, got "
                      f"{type(config).__name__}.")


def _physics(cfg):
    return physics_classes()[cfg["physics"]["name"]]


def _alias(cls) -> bool:
    """Whether `vp` stands for the squared slowness `m` (physics with `m` and no `vp` key)."""
    names = [p.name for p in cls.parameters]
    return "m" in names and VP_ALIAS not in names


# ------------------------------------------------------------------------------------ models
def _read(path: str, cfg, key: str, where: str, vp: bool):
    ext = os.path.splitext(path)[1].lower()
    kw = {}
    if ext in (".npy", ".bin", ".raw", ".dat"):
        kw["spacing"] = cfg["model"]["spacing"]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where}: model file `{path}` not found.")
    a, grid = io.read_model(path, **kw)
    a = np.asarray(a, np.float64)
    if vp:
        unit = cfg["model"]["vp_unit"]
        if unit == "m/s" or (unit == "auto" and np.nanmax(a) > 100.0):
            a = a / 1000.0
    return a, grid


def _builtin(cfg):
    mc = cfg["model"]
    name = mc["builtin"]
    if name == "none":
        return None, None
    if name == "marmousi":
        vp, grid = models.marmousi(spacing=mc["spacing"])
        return np.asarray(vp, np.float64), grid
    nx, nz = (int(v) for v in mc["shape"])
    if nx < 5 or nz < 5:
        raise ConfigError(f"{cfg.where('model.shape')}: got {[nx, nz]}; must be >= 5 nodes each.")
    grid = Grid((nx, nz), (mc["spacing"], mc["spacing"]))
    if name == "camembert":
        vp = models.camembert(grid, vp_background=2.5, vp_disc=3.0)
    elif name == "layered":
        vp = models.layered(grid, velocities=(1.5, 2.0, 2.5, 3.0))
    else:
        vp = models.random_model(mc["seed"], grid, vmin=1.5, vmax=3.5)
    return np.asarray(vp, np.float64), grid


def _same_grid(grid, other, where):
    if grid is not None and other is not None and other.shape != grid.shape:
        raise ConfigError(f"{where}: the model file has shape {other.shape}; the other model "
                          f"arrays have {grid.shape}.")
    return grid if grid is not None else other


def _assemble(cfg, section: str, cls, grid, fallback):
    """The model dict {key: array} of `section` ('model' or 'start'): files, then values, then
    `fallback(key, grid)`."""
    options = cfg["physics"]["options"]
    names = [p.name for p in parameters_for(cls, len(grid.shape) if grid is not None else None,
                                            options)]
    alias = _alias(cls)
    files, values = cfg[section]["files"], cfg[section]["values"]
    valid = names + ([VP_ALIAS] if alias else [])
    for k in list(files) + list(values):
        if k not in valid:
            key = f"{section}.files.{k}" if k in files else f"{section}.values.{k}"
            raise ConfigError(f"{cfg.where(key)}: `{k}` is not a parameter of {cls.__name__}; "
                              f"valid keys: {', '.join(map(repr, valid))}.")
    out = {}
    for k in names:
        src = None
        if k in files:
            src = (files[k], False, k)
        elif k == "m" and alias and VP_ALIAS in files:
            src = (files[VP_ALIAS], True, VP_ALIAS)
        if src is not None:
            a, g = _read(src[0], cfg, k, cfg.where(f"{section}.files.{src[2]}"),
                         vp=src[1] or k == VP_ALIAS)
            grid = _same_grid(grid, g, cfg.where(f"{section}.files.{src[2]}"))
            out[k] = 1.0 / a**2 if src[1] else a
    if grid is not None:  # parameters of the grid's dimension only (a 3D-only azimuth)
        names = [p.name for p in parameters_for(cls, len(grid.shape), options)]
        out = {k: v for k, v in out.items() if k in names}
    for k in names:
        if k in out:
            continue
        if k in values or (k == "m" and alias and VP_ALIAS in values):
            if grid is None:
                raise ConfigError(f"{cfg.where(section)}: constant values need a grid: give a "
                                  "model file or a built-in model.")
            v = values[k] if k in values else 1.0 / values[VP_ALIAS] ** 2
            out[k] = np.full(grid.shape, float(v))
            continue
        a = fallback(k, grid)
        if a is None:
            hint = f" or {section}.files.vp" if (k == "m" and alias) else ""
            raise ConfigError(
                f"{cfg.where(section)}: no values for parameter `{k}` of {cls.__name__} "
                f"({next(p for p in cls.parameters if p.name == k)}): give {section}.files.{k}"
                f"{hint} or {section}.values.{k}.")
        out[k] = a
    return out, grid


def true_model(cfg):
    """`(model dict, grid)` of the true model, or `(None, None)` if the configuration has none."""
    cfg = _config(cfg)
    cls = _physics(cfg)
    vp, grid = _builtin(cfg)
    if vp is None and not cfg["model"]["files"]:
        return None, None

    def fallback(k, grid):
        if vp is None:
            return None
        if k == "m" and _alias(cls):
            return 1.0 / vp**2
        if k == VP_ALIAS:
            return vp
        return None

    return _assemble(cfg, "model", cls, grid, fallback)


def start_model(cfg, true=None, grid=None):
    """`(model dict, grid)` of the starting model: files/values of `[start]`, else the true model
    smoothed by `start.smooth` metres (as velocity for `m`), with the true values kept above
    `preconditioning.water_depth` when `start.keep_water`."""
    cfg = _config(cfg)
    cls = _physics(cfg)
    sigma = cfg["start"]["smooth"]
    zw = cfg["preconditioning"]["water_depth"]

    def fallback(k, g):
        if true is None:
            return None
        a = true[k]
        as_vp = k == "m" and _alias(cls)
        x = 1.0 / np.sqrt(a) if as_vp else a
        s = models.smooth(x, sigma, g, dtype=np.float64) if sigma > 0 else x.copy()
        if cfg["start"]["keep_water"] and zw > 0:
            water = g.coordinates(g.ndim - 1) < zw
            s[..., water] = x[..., water]
        return 1.0 / s**2 if as_vp else s

    return _assemble(cfg, "start", cls, grid, fallback)


# ------------------------------------------------------------------------------------ problem
def _operator(cfg, grid, time):
    cls = _physics(cfg)
    p = cfg["physics"]
    try:
        return cls(grid, time, space_order=p["space_order"], nbl=p["nbl"],
                   free_surface=p["free_surface"], **p["options"])
    except (InvalidArgument, TypeError) as err:
        raise ConfigError(f"{cfg.where('physics')}: {cls.__name__} refuses the options: {err}") \
            from None


def _model_arg(op, model):
    """What the operator methods take: the bare array of single-array physics, else the dict."""
    if op.single_array:
        return model[op.names[0]]
    return model


def _stable_dt(cfg, op, models_):
    dt = cfg["acquisition"]["dt"]
    limit = min(op.critical_dt({k: np.asarray(v) for k, v in m.items()} if not op.single_array
                               else m[op.names[0]]) for m in models_)
    if dt > 0:
        if dt > limit:
            raise ConfigError(f"{cfg.where('acquisition.dt')}: got {dt} ms; the stability limit "
                              f"of the model (and bounds) is {limit:.4g} ms.")
        return dt
    return math.floor(0.9 * limit / 0.01) * 0.01 if limit > 0.02 else 0.9 * limit


def _geometry(cfg, grid):
    """Sources `(nshots, 1, ndim)` and receivers `(nrec, ndim)` (m) of `[acquisition]`."""
    a = cfg["acquisition"]
    if grid.ndim != 2:
        raise ConfigError(f"{cfg.where('acquisition')}: generated acquisitions are 2D; for 3D "
                          "give data files (data.files) with the geometry in their headers.")
    (x0, x1), (z0, z1) = grid.bounds
    dx, dz = grid.spacing
    zs = a["source_depth"] if a["source_depth"] >= 0 else z0 + 2 * dz
    zr = a["receiver_depth"] if a["receiver_depth"] >= 0 else z0 + 2 * dz
    for k, z in (("source_depth", zs), ("receiver_depth", zr)):
        if not z0 <= z <= z1:
            raise ConfigError(f"{cfg.where('acquisition.' + k)}: {z} m is outside the model "
                              f"depths [{z0:g}, {z1:g}] m.")
    n = a["shots"]
    if a["source_x"]:
        s0, s1 = a["source_x"]
        if not (x0 <= s0 <= x1 and x0 <= s1 <= x1):
            raise ConfigError(f"{cfg.where('acquisition.source_x')}: {a['source_x']} m is outside "
                              f"the model [{x0:g}, {x1:g}] m.")
    else:
        s0, s1 = x0 + 0.05 * (x1 - x0), x1 - 0.05 * (x1 - x0)
    xs = np.linspace(s0, s1, n) if n > 1 else np.array([0.5 * (s0 + s1)])
    src = np.stack([xs, np.full(n, zs)], axis=1)[:, None, :]
    h = a["receiver_spacing"] or dx
    nrec = int(math.floor((x1 - x0) / h + 1e-9)) + 1
    rec = np.stack([x0 + h * np.arange(nrec), np.full(nrec, zr)], axis=1)
    return src.astype(np.float64), rec.astype(np.float64)


def _speeds(op, model):
    m = _model_arg(op, {k: np.asarray(v) for k, v in model.items()})
    host = op._host_model(m)
    return float(op.max_speed(host)), op.min_speed(host)


# ------------------------------------------------------------------------------------ solves
_SIM_CACHE: dict = {}


def _record(op, d):
    if op.data_components is None:
        return d
    if len(op.data_components) == 1:
        return d[..., 0]
    raise ConfigError(
        f"physics.options: {type(op).__name__} records {len(op.data_components)} components "
        f"{op.data_components}; SEG-Y gathers hold one: record a single component.")


def _sim_fn(op, rec_batched):
    key = (op, rec_batched)
    if key not in _SIM_CACHE:
        def f(model, wavelet, src, rec):
            one = lambda s, r: op.forward(_model_arg(op, model), wavelet, s, r)  # noqa: E731
            return jax.vmap(one, in_axes=(0, 0 if rec_batched else None))(src, rec)
        _SIM_CACHE[key] = jax.jit(f)
    return _SIM_CACHE[key]


def _src3(src, grid):
    s = np.asarray(src, np.float64)
    if s.ndim == 2:
        s = s[:, None, :]
    if s.ndim != 3 or s.shape[-1] != grid.ndim:
        raise InvalidShape(f"`src` must have shape (nshots, {grid.ndim}) or (nshots, nsrc, "
                           f"{grid.ndim}) in metres, got {np.shape(src)}.")
    return s


def simulate(op: WaveOperator, model, wavelet, src, rec) -> np.ndarray:
    """Shot gathers `(nshots, nt, nrec)` of every shot (one batched, jitted call).

    - `model`: the physics' model (array for `Acoustic`, dict for the others).
    - `wavelet`: `(nt,)` shared by every shot.
    - `src`: `(nshots, ndim)` or `(nshots, nsrc, ndim)` (m); `rec`: `(nrec, ndim)` or
      `(nshots, nrec, ndim)` (m).
    """
    if not isinstance(op, WaveOperator):
        raise InvalidType(f"`op` must be a jaxseis physics operator, got {type(op).__name__}.")
    s = _src3(src, op.grid)
    r = np.asarray(rec, np.float64)
    mdict = op._model(model)
    d = _sim_fn(op, r.ndim == 3)(mdict, jnp.asarray(wavelet, op.dtype), jnp.asarray(s, op.dtype),
                                  jnp.asarray(r, op.dtype))
    return np.asarray(_record(op, d))


def lowpass(data, time: TimeAxis, fmax: float, axis: int = -2, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth low-pass (scipy `sosfiltfilt`) of `data` along its time `axis`.

    - `time`: the `TimeAxis` (ms) of `data`; `fmax`: the corner frequency in kHz (0 or above the
      Nyquist frequency: `data` is returned unfiltered); `order`: the filter order (applied
      forwards and backwards, so the amplitude response is squared and the phase is zero).
    """
    from scipy import signal

    d = np.asarray(data, np.float64)
    nyq = 0.5 / time.dt
    if fmax is None or fmax <= 0 or fmax >= nyq:
        return d.astype(np.float32)
    sos = signal.butter(order // 2, fmax, btype="low", fs=1.0 / time.dt, output="sos")
    return signal.sosfiltfilt(sos, d, axis=axis).astype(np.float32)


def estimate_wavelet(op: WaveOperator, model, data, src, rec, *, reference=None,
                     damping: float = 1e-3, max_offset: float | None = None) -> np.ndarray:
    """Least-squares source wavelet from observed data, in the frequency domain.

    `forward` is linear in the wavelet: at each frequency the data are `D_ij(f) = G_ij(f) W(f)`
    (shot `i`, receiver `j`). With synthetics `S_ij = G_ij W_ref` of a reference wavelet in
    `model` (one batched forward solve), the damped least-squares estimate is

        W(f) = W_ref(f) sum_ij conj(S_ij) D_ij / (sum_ij |S_ij|^2 + eps),
        eps = damping * max_f sum_ij |S_ij|^2,

    on a zero-padded (2 nt) FFT; the result is its first `nt` samples. Frequencies where the
    reference has little energy are damped: the default reference is a Ricker peaking at 1.5 times
    the peak frequency of the data's mean amplitude spectrum (at most a third of the Nyquist
    frequency), broader than the data. Grid dispersion does not bias the estimate: the reference
    and the data see the same discrete scheme.

    **Arguments:**

    - `op`: the operator (any physics); `model`: the model the data are explained in (the
      starting model; accurate near the sources, e.g. the water layer, for field data).
    - `data`: `(nshots, nt, nrec)` observed gathers on `op.time`.
    - `src`: `(nshots, ndim)` or `(nshots, nsrc, ndim)` (m); `rec`: `(nrec, ndim)` or
      `(nshots, nrec, ndim)` (m).
    - `reference`: `(nt,)` reference wavelet (default above); `damping`: > 0, relative.
    - `max_offset`: use only traces with a horizontal source-receiver distance <= this (m); e.g.
      the direct wave at near offsets, where the starting model is right.

    **Returns:** the wavelet `(nt,)` (float32) in the data's amplitude units.
    """
    if not isinstance(op, WaveOperator):
        raise InvalidType(f"`op` must be a jaxseis physics operator, got {type(op).__name__}.")
    d = np.asarray(data, np.float64)
    nt = op.time.nt
    s = _src3(src, op.grid)
    if d.ndim != 3 or d.shape[0] != s.shape[0] or d.shape[1] != nt:
        raise InvalidShape(f"`data` must have shape (nshots={s.shape[0]}, nt={nt}, nrec), got "
                           f"{d.shape}.")
    if not (np.isfinite(damping) and damping > 0):
        raise InvalidArgument(f"`damping` must be a positive number, got {damping}.")
    if reference is None:
        # Broader than the data: a Ricker peaking at 1.5 x the peak of the data's mean amplitude
        # spectrum (below a third of the Nyquist frequency).
        spec = np.mean(np.abs(np.fft.rfft(d, axis=1)), axis=(0, 2))
        freqs = np.fft.rfftfreq(nt, op.time.dt)
        f_peak = float(freqs[1:][np.argmax(spec[1:])]) if nt > 2 else freqs[-1]
        reference = ricker(op.time, min(1.5 * f_peak, freqs[-1] / 3.0))
    w0 = np.asarray(reference, np.float64)
    if w0.shape != (nt,):
        raise InvalidShape(f"`reference` must have shape ({nt},), got {w0.shape}.")
    import warnings

    from ._errors import DispersionWarning

    with warnings.catch_warnings():
        # the reference and the data see the same discrete scheme: dispersion does not matter
        warnings.simplefilter("ignore", DispersionWarning)
        syn = simulate(op, model, w0, s, rec).astype(np.float64)
    if syn.shape != d.shape:
        raise InvalidShape(f"`data` has shape {d.shape} but `rec` gives gathers {syn.shape}.")
    if max_offset is not None and max_offset > 0:
        r = np.asarray(rec, np.float64)
        r = np.broadcast_to(r, (s.shape[0],) + r.shape[-2:]) if r.ndim == 2 else r
        off = np.linalg.norm(r[:, :, :-1] - s[:, :1, :-1], axis=-1)  # (nshots, nrec)
        keep = (off <= max_offset)[:, None, :]
        if not keep.any():
            raise InvalidArgument(f"`max_offset` = {max_offset} m keeps no trace.")
        syn, d = syn * keep, d * keep
    n = 2 * nt
    S = np.fft.rfft(syn, n, axis=1)
    D = np.fft.rfft(d, n, axis=1)
    num = np.sum(np.conj(S) * D, axis=(0, 2))
    den = np.sum(np.abs(S) ** 2, axis=(0, 2))
    W = np.fft.rfft(w0, n) * num / (den + damping * den.max())
    return np.fft.irfft(W, n)[:nt].astype(np.float32)


# ------------------------------------------------------------------------------------ helpers
class _Executor:
    def __init__(self, cfg):
        self.cfg = cfg

    def __enter__(self):
        from ._executor import DaskExecutor, executor

        e = self.cfg["executor"]
        if e["kind"] == "dask":
            if not e["address"]:
                raise ConfigError(f"{self.cfg.where('executor.address')}: kind 'dask' needs the "
                                  "scheduler address, e.g. tcp://host:8786.")
            self.ctx = executor(DaskExecutor(e["address"]))
        elif e["kind"] == "threads":
            self.ctx = executor("threads", workers=e["workers"] or None)
        else:
            self.ctx = executor(e["kind"])
        return self.ctx.__enter__()

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc)


def _outdir(cfg) -> Path:
    out = Path(cfg["output"]["directory"])
    out.mkdir(parents=True, exist_ok=True)
    return out


def _data_paths(cfg) -> list[str]:
    files = cfg["data"]["files"]
    return files if files else [str(Path(cfg["output"]["directory"]) / "shots.sgy")]


def _write_json(path: Path, obj):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg",) and "inline" not in \
            matplotlib.get_backend().lower():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Problem(dict):
    """What `build_problem` returns: keys `op`, `grid`, `time`, `true` (model dict or None),
    `start` (model dict), `src`, `rec`, `observed`, `wavelet`, `data_time`."""


def build_problem(config, *, log=print) -> Problem:
    """Read the models and data of `config` and build the operator (used by rtm and fwi).

    The modelling time axis has the data's length and a step stable for the bounds
    (`acquisition.dt`, or 0.9 x the limit); the data are resampled onto it (band-limited). With
    `wavelet.kind = "estimate"` the wavelet is estimated from the data in the starting model.
    """
    cfg = _config(config)
    true, grid = true_model(cfg)
    start, grid = start_model(cfg, true, grid)
    if grid is None:
        raise ConfigError("no model: give model.builtin, model.files or start.files.")
    paths = _data_paths(cfg)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ConfigError(f"{cfg.where('data.files')}: data file `{missing[0]}` not found (run "
                          "`jaxseis model` with this configuration first to make synthetic "
                          "data, or give data.files).")
    data, t_file, src, rec = io.read_shots(paths, depth_convention=cfg["data"]["depth_convention"],
                                           grid=grid)
    if data.ndim == 2:
        data, src = data[None], src[:1]
    tn = cfg["acquisition"]["record_length"] or t_file.tn
    tmp_op = _operator(cfg, grid, TimeAxis(0.0, 1.0, 1.0))
    bounded = _bounded_models(cfg, tmp_op, start)
    dt = _stable_dt(cfg, tmp_op, [start] + ([true] if true is not None else []) + bounded)
    nt = int(math.floor((tn - t_file.t0) / dt + 1e-9)) + 1
    time = TimeAxis(t_file.t0, t_file.t0 + dt * (nt - 1), dt)
    observed, _ = io.resample(data, t_file, time)
    op = _operator(cfg, grid, time)
    src = _src3(src, grid)
    w = cfg["wavelet"]
    if w["kind"] == "ricker":
        wavelet = np.asarray(ricker(time, w["f0"]), np.float32)
    else:
        wavelet = estimate_wavelet(op, _model_arg(op, start), observed, src, rec,
                                   damping=w["damping"], max_offset=w["max_offset"] or None)
    return Problem(op=op, grid=grid, time=time, true=true, start=start, src=src, rec=rec,
                   observed=observed, wavelet=wavelet, data_time=t_file, config=cfg)


# ------------------------------------------------------------------------------------ model
def model(config, *, log=print) -> dict:
    """Write synthetic shot gathers (SEG-Y, SU depth convention) of the true model of `config`.

    Sources and receivers from `[acquisition]`, a Ricker wavelet of peak `wavelet.f0`, every shot
    in one batched solve (on `[executor]`). Writes `data.files[0]` (default
    `<output.directory>/shots.sgy`), and `shot.png` (the middle shot) with figures on.

    **Returns:** `{"data": path, "shots": n, "nt": nt, "dt_ms": dt, "seconds": s}`.
    """
    cfg = _config(config)
    t0 = _time.perf_counter()
    true, grid = true_model(cfg)
    if true is None:
        raise ConfigError(f"{cfg.where('model')}: `jaxseis model` needs a true model: "
                          "model.builtin or model.files.")
    tmp = _operator(cfg, grid, TimeAxis(0.0, 1.0, 1.0))
    vmax, vmin = _speeds(tmp, true)
    src, rec = _geometry(cfg, grid)
    tn = cfg["acquisition"]["record_length"]
    if tn <= 0:
        v = vmin if vmin is not None else 1.5
        tn = math.ceil((2.0 * max(grid.extent[-1], 0.5 * grid.extent[0]) / float(v)
                        + 2.0 / cfg["wavelet"]["f0"]) / 10.0) * 10.0
    dt = _stable_dt(cfg, tmp, [true])
    nt = int(math.floor(tn / dt + 1e-9)) + 1
    time = TimeAxis(0.0, dt * (nt - 1), dt)
    op = _operator(cfg, grid, time)
    wavelet = np.asarray(ricker(time, cfg["wavelet"]["f0"]), np.float32)
    with _Executor(cfg):
        data = simulate(op, _model_arg(op, true), wavelet, src, rec)
    path = _data_paths(cfg)[0]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    io.write_shots(path, data, time, src[:, 0, :], rec)
    out = {"data": str(path), "shots": int(data.shape[0]), "receivers": int(data.shape[2]),
           "nt": int(time.nt), "dt_ms": float(time.dt), "tn_ms": float(time.tn)}
    if cfg["output"]["figures"]:
        from . import plot

        plt = _plt()
        fig = plot.plot_shot(data[data.shape[0] // 2], time, rec=rec,
                             title=f"Shot {data.shape[0] // 2 + 1} of {data.shape[0]}")
        png = _outdir(cfg) / "shot.png"
        fig.savefig(png, dpi=110)
        plt.close(fig)
        out["figure"] = str(png)
    out["seconds"] = _time.perf_counter() - t0
    log(f"jaxseis model: wrote {data.shape[0]} shots x {data.shape[2]} receivers x {time.nt} "
        f"samples (dt {time.dt:g} ms) to {path}")
    return out


def _model_if_missing(cfg, log):
    """rtm and fwi without data.files and without the default data file: model it first when
    there is a true model (a synthetic study in one command)."""
    if cfg["data"]["files"]:
        return
    path = _data_paths(cfg)[0]
    if os.path.isfile(path):
        return
    true, _ = true_model(cfg)
    if true is None:
        return
    log(f"no data file {path} (data.files not set): modelling the synthetic data of the true "
        "model first, as `jaxseis model` does")
    model(cfg, log=log)


# ------------------------------------------------------------------------------ preconditioning
def _precondition(cfg, grid):
    """Gradient transformation: water mute, depth scaling, smoothing (per array)."""
    pc = cfg["preconditioning"]
    z = grid.coordinates(grid.ndim - 1)
    scale = np.ones(z.size)
    if pc["depth_power"] > 0:
        zr = np.maximum(z - z[0] + grid.spacing[-1], grid.spacing[-1])
        scale = (zr / zr.max()) ** pc["depth_power"]
    scale = np.where(z < pc["water_depth"], 0.0, scale)
    scale_j = jnp.asarray(scale, jnp.float32)

    def apply(g):
        return g * scale_j.astype(g.dtype)

    from .fwi import smooth_gradient

    return optax.chain(
        optax.stateless(lambda u, params=None: jax.tree_util.tree_map(apply, u)),
        smooth_gradient(cfg["optimizer"]["smooth_gradient"], grid)), scale


# ------------------------------------------------------------------------------------ rtm
def rtm(config, *, log=print) -> dict:
    """Reverse-time migration of the data of `config` in its starting model.

    The image is `born_adjoint(start, d_obs - d_start)` summed over shots, for the first
    parameter of the physics (squared slowness for the acoustic physics): subtracting the
    starting model's data removes the direct wave. The water mute and depth scaling of
    `[preconditioning]` are applied. Writes `image.sgy`, `image.npy` and `image.png` into
    `output.directory`.

    **Returns:** `{"image": path, "png": path, "seconds": s, ...}`.
    """
    cfg = _config(config)
    t0 = _time.perf_counter()
    _model_if_missing(cfg, log)
    p = build_problem(cfg, log=log)
    op, grid = p["op"], p["grid"]
    start = {k: jnp.asarray(v, op.dtype) for k, v in p["start"].items()}
    src, rec = p["src"], np.asarray(p["rec"])
    with _Executor(cfg):
        pred = simulate(op, _model_arg(op, start), p["wavelet"], src, rec)
        resid = jnp.asarray(p["observed"] - pred, op.dtype)
        rb = rec.ndim == 3

        def one(s, r, d):
            return op.born_adjoint(_model_arg(op, start), d, jnp.asarray(p["wavelet"], op.dtype),
                                   s, r)

        img = jax.jit(lambda s, r, d: jax.tree_util.tree_map(
            lambda a: a.sum(0), jax.vmap(one, in_axes=(0, 0 if rb else None, 0))(s, r, d)))(
            jnp.asarray(src, op.dtype), jnp.asarray(rec, op.dtype), resid)
    name = op.differentiable[0]
    image = np.asarray(img if op.single_array else img[name], np.float64)
    _, scale = _precondition(cfg, grid)
    image = (image * scale).astype(np.float32)
    out_dir = _outdir(cfg)
    io.write_model(out_dir / "image.sgy", image, grid)
    np.save(out_dir / "image.npy", image)
    out = {"image": str(out_dir / "image.sgy"), "npy": str(out_dir / "image.npy"),
           "parameter": name, "shots": int(src.shape[0])}
    if cfg["output"]["figures"] and grid.ndim == 2:  # (3D: files only)
        from . import plot

        plt = _plt()
        fig = plot.plot_image(image, grid, title=f"RTM image ({name})")
        fig.savefig(out_dir / "image.png", dpi=110)
        plt.close(fig)
        out["png"] = str(out_dir / "image.png")
    out["seconds"] = _time.perf_counter() - t0
    log(f"jaxseis rtm: wrote {out['image']}")
    return out


# ------------------------------------------------------------------------------------ fwi
def _variables(cfg, cls):
    params = parameters_for(cls, None, cfg["physics"]["options"])
    names = [p.name for p in params]
    alias = _alias(cls)
    valid = [p.name for p in params if p.differentiable] + ([VP_ALIAS] if alias else [])
    inv = cfg["inversion"]["parameters"]
    if not inv:
        raise ConfigError(f"{cfg.where('inversion.parameters')}: empty; valid: "
                          f"{', '.join(map(repr, valid))}.")
    for v in inv:
        if v not in valid:
            raise ConfigError(f"{cfg.where('inversion.parameters')}: `{v}` cannot be inverted "
                              f"with {cls.__name__}; valid: {', '.join(map(repr, valid))}.")
    if alias and VP_ALIAS in inv and "m" in inv:
        raise ConfigError(f"{cfg.where('inversion.parameters')}: invert `vp` or `m`, not both.")
    for b in cfg["bounds"]:
        if b not in inv:
            raise ConfigError(f"{cfg.where('bounds.' + b)}: `{b}` is not inverted "
                              f"(inversion.parameters = {inv}).")
    del names
    return list(inv)


def _to_var(name, model, alias):
    return 1.0 / np.sqrt(model["m"]) if (name == VP_ALIAS and alias) else np.asarray(model[name])


def _bounds_for(cfg, inv, start, alias):
    out = {}
    for v in inv:
        if v in cfg["bounds"]:
            out[v] = tuple(cfg["bounds"][v])
        else:
            x = _to_var(v, start, alias)
            lo, hi = float(np.min(x)), float(np.max(x))
            pad = 0.25 * max(hi - lo, 0.1 * max(abs(hi), 1e-3))
            lo2 = lo - pad
            if lo > 0 and lo2 <= 0:
                lo2 = 0.5 * lo
            out[v] = (lo2, hi + pad)
    return out


def _bounded_models(cfg, op, start):
    """The starting model with every inverted parameter at each of its bounds (for the time
    step: the fastest model the projection allows)."""
    cls = type(op)
    alias = _alias(cls)
    inv = _variables(cfg, cls)
    bounds = _bounds_for(cfg, inv, start, alias)
    out = []
    for corner in (0, 1):
        m = dict(start)
        for v in inv:
            b = bounds[v][corner]
            if v == VP_ALIAS and alias:
                m["m"] = np.full(op.grid.shape, 1.0 / b**2)
            else:
                m[v] = np.full(op.grid.shape, b)
        try:
            op.max_speed(op._host_model(_model_arg(op, m)))
            out.append(m)
        except Exception:  # noqa: BLE001 - a corner the physics cannot evaluate is skipped
            pass
    return out


def _error(x, x_true):
    x_true = np.asarray(x_true, np.float64)
    return float(np.linalg.norm(np.asarray(x, np.float64) - x_true) / np.linalg.norm(x_true))


def _problem_key(cfg) -> str:
    d = {k: v for k, v in cfg.items() if k not in ("executor", "output")}
    d["stages"] = [{"max_frequency": s["max_frequency"]} for s in cfg["stages"]]
    return json.dumps(d, sort_keys=True, default=str)


def load_state(out) -> dict | None:
    """The saved state of the workflow FWI in directory `out` (or None)."""
    path = Path(out) / STATE_FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        s = {k: z[k] for k in z.files}
    s["meta"] = json.loads(str(s["meta"]))
    return s


def fwi(config, *, resume: bool = False, overwrite: bool = False, progress: bool = True,
        callback=None, stop=None, log=print) -> dict:
    """Multi-stage FWI of the data of `config` from its starting model (see the module docstring).

    Per stage `k` (`[[stages]]`): the observed data and the wavelet are low-pass filtered below
    `max_frequency` (`lowpass`), a fresh optimiser (`optax.<optimizer.name>(learning_rate)`
    after preconditioning and scaling the gradient to a unit maximum) runs `iterations` steps on
    the relative misfit `||d - d_obs||^2 / ||d_obs||^2` of `inversion.shots_per_iteration` random
    shots (all by default), and every inverted parameter is projected onto its bounds. `vp`
    stands for the squared slowness `m = 1/vp^2` of the acoustic physics.

    Writes into `output.directory`: `stage<k>_<name>.sgy` / `.npy` after each stage,
    `<name>_inverted.sgy` / `.npy`, `wavelet.npy`, `models.png`, `misfit.png`, `metrics.json`
    (misfit per iteration, model error per stage when a true model is known); the state after
    every iteration (`workflow_state.npz`, atomically).

    **Arguments:** `resume` continues a saved run (the configuration must match, except
    `[executor]`, `[output]` and the stages' iteration counts); `overwrite` starts afresh;
    `progress` shows a tqdm bar per stage; `callback(iteration, misfit, variables)` after each
    saved iteration (`KeyboardInterrupt` in it acts as Ctrl-C); `stop() -> bool` checked before
    each iteration; `log` for messages.

    **Returns:** the metrics dict. Raises `jaxseis.fwi.FWIInterrupted` after saving on Ctrl-C.
    """
    from .fwi import FWIInterrupted, scale_by_max

    cfg = _config(config)
    t_start = _time.perf_counter()
    _variables(cfg, _physics(cfg))  # bad inversion keys: before any file is read
    out = _outdir(cfg)
    state_path = out / STATE_FILE
    if overwrite:
        state_path.unlink(missing_ok=True)
        (out / METRICS_FILE).unlink(missing_ok=True)
    state = None
    if state_path.exists():
        try:
            state = load_state(out)
        except Exception as e:  # noqa: BLE001 - truncated or foreign: say so
            raise InvalidArgument(f"cannot read the saved run {state_path} ({type(e).__name__}: "
                                  f"{e}); use --overwrite to start again.") from e
        if not resume:
            raise InvalidArgument(
                f"{out} already holds an FWI run (stage {int(state['stage']) + 1}, "
                f"{len(state['history'])} iterations): continue it with --resume, start again "
                "with --overwrite, or choose another output directory.")
        if state["meta"]["problem"] != _problem_key(cfg):
            saved, now = json.loads(state["meta"]["problem"]), json.loads(_problem_key(cfg))
            diff = []
            for sec, val in now.items():
                old = saved.get(sec)
                if isinstance(val, dict) and isinstance(old, dict):
                    diff += [f"{sec}.{k}" for k in val if val[k] != old.get(k)]
                elif val != old:
                    diff.append(sec)
            raise InvalidArgument(f"cannot resume {out}: the configuration differs from the "
                                  f"saved run in {', '.join(diff) or 'its stages'}.")
    elif resume:
        log(f"no saved run in {out}: starting a new one")

    _model_if_missing(cfg, log)
    p = build_problem(cfg, log=log)
    op, grid, time = p["op"], p["grid"], p["time"]
    cls = type(op)
    alias = _alias(cls)
    inv = _variables(cfg, cls)
    bounds = _bounds_for(cfg, inv, p["start"], alias)
    fixed = {k: jnp.asarray(v, op.dtype) for k, v in p["start"].items()}
    true = p["true"]
    true_vars = {v: _to_var(v, true, alias) for v in inv} if true is not None else None
    start_vars = {v: _to_var(v, p["start"], alias).astype(np.float32) for v in inv}
    for v in inv:
        lo, hi = bounds[v]
        if np.min(start_vars[v]) < lo or np.max(start_vars[v]) > hi:
            raise ConfigError(f"{cfg.where('bounds.' + v)}: the starting `{v}` spans "
                              f"[{np.min(start_vars[v]):.4g}, {np.max(start_vars[v]):.4g}], "
                              f"outside the bounds {list(bounds[v])}.")
    np.save(out / "wavelet.npy", p["wavelet"])

    src = jnp.asarray(p["src"], op.dtype)
    rec_np = np.asarray(p["rec"])
    rb = rec_np.ndim == 3
    rec = jnp.asarray(rec_np, op.dtype)
    nshots = src.shape[0]
    k_shots = cfg["inversion"]["shots_per_iteration"] or nshots
    k_shots = min(k_shots, nshots)
    lr = cfg["optimizer"]["learning_rate"]
    pre, _ = _precondition(cfg, grid)
    lo_j = {v: bounds[v][0] for v in inv}
    hi_j = {v: bounds[v][1] for v in inv}

    def to_model(x):
        m = dict(fixed)
        for v in inv:
            if v == VP_ALIAS and alias:
                m["m"] = 1.0 / x[v] ** 2
            else:
                m[v] = x[v]
        return _model_arg(op, m)

    opt = optax.chain(pre, scale_by_max(), getattr(optax, cfg["optimizer"]["name"])(lr))

    def misfit(x, w, s, r, d):
        mm = to_model(x)
        one = lambda s1, r1: op.forward(mm, w, s1, r1)  # noqa: E731
        pred = _record(op, jax.vmap(one, in_axes=(0, 0 if rb else None))(s, r))
        return jnp.sum((pred - d) ** 2) / jnp.sum(d**2)

    @jax.jit
    def step(x, opt_state, w, s, r, d):
        loss, g = jax.value_and_grad(misfit)(x, w, s, r, d)
        updates, opt_state = opt.update(g, opt_state, x)
        x = optax.apply_updates(x, updates)
        x = {v: jnp.clip(x[v], lo_j[v], hi_j[v]) for v in inv}
        return x, opt_state, loss

    stages = cfg["stages"]
    # --- state
    x = {v: jnp.asarray(start_vars[v]) for v in inv}
    opt_state = opt.init(x)
    stage, it = 0, 0
    history, hist_stage = [], []
    stage_results: list[dict] = []
    seconds_before = 0.0
    if state is not None and resume:
        stage, it = int(state["stage"]), int(state["iteration"])
        x = {v: jnp.asarray(state[f"var_{v}"]) for v in inv}
        n_opt = int(state["n_opt"])
        if n_opt:
            treedef = jax.tree_util.tree_structure(opt_state)
            opt_state = jax.tree_util.tree_unflatten(
                treedef, [jnp.asarray(state[f"opt_{i}"]) for i in range(n_opt)])
        else:
            opt_state = opt.init(x)
        history = [float(h) for h in state["history"]]
        hist_stage = [int(h) for h in state["history_stage"]]
        stage_results = state["meta"]["stages"]
        seconds_before = float(state["meta"]["seconds"])
        log(f"resuming {out} at stage {stage + 1} of {len(stages)}, after iteration {it}")

    def save(stage, it, x, opt_state, history, hist_stage, stage_results, fresh=False):
        leaves = [] if fresh else jax.tree_util.tree_leaves(opt_state)
        arrays = {f"opt_{i}": np.asarray(a) for i, a in enumerate(leaves)}
        arrays.update({f"var_{v}": np.asarray(x[v]) for v in inv})
        meta = {"problem": _problem_key(cfg), "stages": stage_results,
                "seconds": seconds_before + _time.perf_counter() - t_start}
        arrays.update(stage=np.int64(stage), iteration=np.int64(it), n_opt=np.int64(len(leaves)),
                      history=np.asarray(history, np.float64),
                      history_stage=np.asarray(hist_stage, np.int64),
                      meta=np.asarray(json.dumps(meta)))
        _save_state(state_path, arrays)

    def errors_of(xv):
        if true_vars is None:
            return None
        return {v: _error(xv[v], true_vars[v]) for v in inv}

    initial_errors = errors_of(start_vars)
    obs_full, w_full = p["observed"], p["wavelet"]
    try:
        with _Executor(cfg):
            while stage < len(stages):
                st = stages[stage]
                fmax = st["max_frequency"]
                d_all = jnp.asarray(lowpass(obs_full, time, fmax, axis=1), op.dtype)
                w = jnp.asarray(lowpass(w_full, time, fmax, axis=0), op.dtype)
                n_it = st["iterations"]
                bar = None
                if progress and it < n_it:
                    from tqdm.auto import tqdm

                    fdesc = f"{fmax * 1000:g} Hz" if fmax > 0 else "full band"
                    bar = tqdm(total=n_it, initial=it, unit="it", dynamic_ncols=True,
                               desc=f"FWI stage {stage + 1}/{len(stages)} ({fdesc})")
                try:
                    while it < n_it:
                        if stop is not None and stop():
                            raise KeyboardInterrupt
                        if k_shots < nshots:
                            rng = np.random.default_rng(
                                [cfg["inversion"]["seed"], stage, it])
                            idx = np.sort(rng.choice(nshots, k_shots, replace=False))
                        else:
                            idx = np.arange(nshots)
                        ij = jnp.asarray(idx)
                        x_new, os_new, loss = step(x, opt_state, w, src[ij],
                                                   rec[ij] if rb else rec, d_all[ij])
                        loss = float(loss)
                        if not math.isfinite(loss):
                            raise FloatingPointError(
                                f"the misfit became {loss} at stage {stage + 1}, iteration "
                                f"{it + 1}.")
                        x, opt_state, it = x_new, os_new, it + 1
                        history, hist_stage = history + [loss], hist_stage + [stage]
                        save(stage, it, x, opt_state, history, hist_stage, stage_results)
                        if bar is not None:
                            post = {"misfit": f"{loss:.4g}"}
                            if true_vars is not None:
                                e = errors_of(x)
                                post.update({f"err_{k}": f"{v:.4f}" for k, v in e.items()})
                            bar.set_postfix(post)
                            bar.update(1)
                        if callback is not None:
                            callback(len(history), loss, {v: np.asarray(x[v]) for v in inv})
                finally:
                    if bar is not None:
                        bar.close()
                # the stage is finished: its model, then the state of the next stage
                names = []
                for v in inv:
                    a = np.asarray(x[v], np.float32)
                    base = out / f"stage{stage + 1}_{v}"
                    io.write_model(f"{base}.sgy", a, grid)
                    np.save(f"{base}.npy", a)
                    names += [f"{base.name}.sgy", f"{base.name}.npy"]
                sm = [h for h, s in zip(history, hist_stage) if s == stage]
                stage_results = stage_results + [{
                    "stage": stage + 1, "max_frequency_khz": fmax, "iterations": n_it,
                    "misfit_first": sm[0] if sm else None, "misfit_last": sm[-1] if sm else None,
                    "model_error": errors_of({v: np.asarray(x[v]) for v in inv}),
                    "files": names}]
                stage, it = stage + 1, 0
                opt_state = opt.init(x)  # a fresh optimiser state for the next stage
                save(stage, it, x, opt_state, history, hist_stage, stage_results, fresh=True)
    except KeyboardInterrupt:
        raise FWIInterrupted(len(history), state_path) from None

    final = {v: np.asarray(x[v], np.float32) for v in inv}
    files = []
    for v in inv:
        io.write_model(out / f"{v}_inverted.sgy", final[v], grid)
        np.save(out / f"{v}_inverted.npy", final[v])
        files += [f"{v}_inverted.sgy", f"{v}_inverted.npy"]
    metrics = {
        "physics": cls.__name__, "parameters": inv, "grid": list(grid.shape),
        "spacing_m": list(grid.spacing), "shots": int(nshots), "shots_per_iteration": k_shots,
        "nt": time.nt, "dt_ms": time.dt, "tn_ms": time.tn, "wavelet": cfg["wavelet"]["kind"],
        "bounds": {v: list(bounds[v]) for v in inv}, "iterations": len(history),
        "misfit_history": history, "misfit_stage": hist_stage,
        "initial_model_error": initial_errors, "stages": stage_results,
        "final_model_error": errors_of(final), "files": files,
    }
    if cfg["output"]["figures"] and grid.ndim == 2:  # (3D: files only)
        metrics["figures"] = _fwi_figures(out, grid, inv, start_vars, true_vars, stage_results,
                                          history, hist_stage, initial_errors)
    metrics["seconds"] = _time.perf_counter() - t_start
    metrics["seconds_total"] = seconds_before + metrics["seconds"]
    _write_json(out / METRICS_FILE, metrics)
    return metrics


def _fwi_figures(out, grid, inv, start_vars, true_vars, stage_results, history, hist_stage,
                 initial_errors):
    from . import plot

    plt = _plt()
    names = []
    for v in inv:
        panels = ([("True", true_vars[v])] if true_vars is not None else []) + \
            [("Starting", start_vars[v])]
        for r in stage_results:
            a = np.load(out / f"stage{r['stage']}_{v}.npy")
            err = f", error {r['model_error'][v]:.4f}" if r["model_error"] else ""
            f = r["max_frequency_khz"]
            panels.append((f"Stage {r['stage']} ({f * 1000:g} Hz{err})" if f else
                           f"Stage {r['stage']} (full band{err})", a))
        ratio = grid.extent[0] / max(grid.extent[-1], 1e-9)
        wide = ratio > 2.0
        n = len(panels)
        if wide:
            fig, axes = plt.subplots(n, 1, figsize=(8.5, 0.4 + n * 8.0 / ratio + 0.5 * n),
                                     constrained_layout=True, squeeze=False)
        else:
            fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 1.0, 3.6),
                                     constrained_layout=True, squeeze=False)
        kind = "velocity" if v in (VP_ALIAS, "vs") else None
        axs = list(axes.ravel())
        if kind:
            plot.plot_models(panels, grid, axes=axs, kind=kind)
        else:
            lo = min(float(np.min(a)) for _, a in panels)
            hi = max(float(np.max(a)) for _, a in panels)
            for ax, (t, a) in zip(axs, panels):
                plot.plot_image(a, grid, ax=ax, title=t)
                ax.images[-1].set_clim(lo, hi)
                ax.images[-1].set_cmap("viridis")
        if wide:
            for ax in axs:
                ax.set_ylabel("Depth (m)")
        name = f"models_{v}.png" if len(inv) > 1 else "models.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)
    fig, axes = plt.subplots(1, 2 if initial_errors else 1, figsize=(9.5, 3.4),
                             constrained_layout=True, squeeze=False)
    ax = axes[0, 0]
    ax.semilogy(np.arange(1, len(history) + 1), history, "-o", ms=3)
    for s in range(1, max(hist_stage, default=0) + 1):
        first = hist_stage.index(s) if s in hist_stage else None
        if first is not None:
            ax.axvline(first + 0.5, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("Iteration")
    ax.set_ylabel("Relative misfit (stage band)")
    ax.set_title("Data misfit (dashed: new stage)")
    if initial_errors:
        ax = axes[0, 1]
        for v in inv:
            e = [initial_errors[v]] + [r["model_error"][v] for r in stage_results]
            ax.plot(np.arange(len(e)), e, "-o", label=v)
        ax.set_xticks(range(len(stage_results) + 1))
        ax.set_xticklabels(["start"] + [str(r["stage"]) for r in stage_results])
        ax.set_xlabel("Stage")
        ax.set_ylabel("Relative model error")
        ax.set_title("Model error vs true")
        ax.legend()
    fig.savefig(out / "misfit.png", dpi=110)
    plt.close(fig)
    names.append("misfit.png")
    return names
