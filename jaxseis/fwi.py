"""Multi-shot full-waveform inversion (FWI) with optax: the driver behind `jaxseis fwi`.

`run(config, out)` builds a synthetic problem (a built-in true model, a smoothed starting model,
point sources and receivers), models the observed data with the true model, then minimises the
relative least-squares misfit `||d(vp) - d_obs||^2 / ||d_obs||^2` over the velocity `vp` (km/s)
with Adam (`optimizer`: the gradient is smoothed and scaled to a unit maximum first). All shots
are evaluated together: `jaxseis.nn.Forward` vmaps over the shot axis inside
one jitted `value_and_grad`, so the host receives the whole batch in one call. After every update
the velocity is projected onto `[vmin, vmax]` (box constraint), which also keeps the time step
stable (the time axis is chosen for `vmax`).

The state (iteration, velocity, optimiser state, histories) is written to `out/state.npz` after
every iteration, atomically (a temporary file, then `os.replace`), so an interrupted run loses at
most the iteration in progress and `run(..., resume=True)` continues exactly where it stopped.

Units: metres, milliseconds, km/s, kHz.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import models
from .physics.acoustic import Acoustic
from ._errors import InvalidArgument
from ._geometry import Grid, TimeAxis, critical_dt
from .nn import Forward
from .wavelets import ricker

__all__ = ["FWIConfig", "Problem", "FWIInterrupted", "setup", "run", "load_state", "optimizer",
           "smooth_gradient", "scale_by_max", "STATE_FILE", "METRICS_FILE", "MODELS", "GEOMETRIES"]

STATE_FILE = "state.npz"
METRICS_FILE = "metrics.json"
MODELS = ("camembert", "layered", "random")
GEOMETRIES = ("crosswell", "surface", "ring")


@dataclass(frozen=True)
class FWIConfig:
    """Everything that defines an FWI run (units: m, ms, km/s, kHz).

    - `model`: the true model, one of `MODELS`.
    - `shots`: number of shots (one point source each).
    - `iters`: total number of Adam iterations.
    - `lr`: Adam learning rate, in km/s (about the largest velocity change per iteration).
    - `nx`, `nz`, `spacing`: grid nodes and spacing (m).
    - `f0`: Ricker peak frequency (kHz).
    - `tn`: record length (ms); `None` picks one long enough for the farthest receiver.
    - `vmin`, `vmax`: velocity bounds (km/s) of the projection; the time step is stable for `vmax`.
    - `sigma`: standard deviation (m) of the Gaussian that smooths the true model into the start.
    - `geometry`: `"crosswell"` (sources down a well near the left edge, receivers down a well near
      the right edge and along the surface), `"surface"` (sources and receivers near the top) or
      `"ring"` (both all around the model).
    - `seed`: seed of the random model (and of nothing else: runs are deterministic).
    - `smooth_grad`: standard deviation (m) of the Gaussian applied to the gradient (0: none).
    - `eps`: Adam's epsilon relative to the largest gradient value (see `optimizer`).
    - `space_order`, `nbl`: finite-difference order and absorbing-layer width (cells).
    """

    model: str = "camembert"
    shots: int = 8
    iters: int = 25
    lr: float = 0.04
    nx: int = 101
    nz: int = 51
    spacing: float = 10.0
    f0: float = 0.012
    tn: float | None = None
    vmin: float = 1.4
    vmax: float = 4.0
    sigma: float = 100.0
    geometry: str = "crosswell"
    seed: int = 0
    smooth_grad: float = 20.0
    eps: float = 0.05
    space_order: int = 4
    nbl: int = 20

    def __post_init__(self):
        if self.model not in MODELS:
            raise InvalidArgument(
                f"`model` must be one of {', '.join(MODELS)}, got {self.model!r}.")
        if self.geometry not in GEOMETRIES:
            raise InvalidArgument(
                f"`geometry` must be one of {', '.join(GEOMETRIES)}, got {self.geometry!r}.")
        for name in ("shots", "nx", "nz"):
            if int(getattr(self, name)) < (1 if name == "shots" else 5):
                raise InvalidArgument(f"`{name}` is too small: {getattr(self, name)}.")
        if int(self.iters) < 0:
            raise InvalidArgument(f"`iters` must be >= 0, got {self.iters}.")
        for name in ("lr", "spacing", "f0", "vmin", "vmax"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise InvalidArgument(f"`{name}` must be a positive number, got {v}.")
        if self.vmax <= self.vmin:
            raise InvalidArgument(
                f"`vmax` must exceed `vmin`, got {self.vmin} and {self.vmax} km/s.")
        if self.tn is not None and not (math.isfinite(self.tn) and self.tn > 0):
            raise InvalidArgument(f"`tn` must be a positive record length in ms, got {self.tn}.")
        for name in ("sigma", "smooth_grad", "eps"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0):
                raise InvalidArgument(f"`{name}` must be >= 0, got {v}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FWIConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def problem_dict(self) -> dict:
        """The fields that define the problem (all but `iters`): a resumed run must match them."""
        d = self.to_dict()
        d.pop("iters")
        return d


@dataclass(frozen=True)
class Problem:
    """A synthetic FWI problem: operator, models (km/s), acquisition and observed data."""

    config: FWIConfig
    op: Acoustic
    vp_true: np.ndarray
    vp_start: np.ndarray
    src: np.ndarray        # (nshots, 1, 2) m
    rec: np.ndarray        # (nrec, 2) m
    wavelet: np.ndarray    # (nt,)
    layer: Forward
    observed: np.ndarray   # (nshots, nt, nrec)


class FWIInterrupted(Exception):
    """Raised by `run` on Ctrl-C, after saving the state of the last finished iteration."""

    def __init__(self, iteration, path):
        super().__init__(f"interrupted after {iteration} finished iteration(s); the state is saved "
                         f"in {path} (continue with --resume)")
        self.iteration = iteration
        self.path = path


def _true_model(cfg: FWIConfig, grid: Grid) -> np.ndarray:
    if cfg.model == "camembert":
        return models.camembert(grid, vp_background=2.5, vp_disc=3.0)
    if cfg.model == "layered":
        return models.layered(grid, velocities=(1.5, 2.0, 2.5, 3.0))
    return models.random_model(cfg.seed, grid, vmin=1.5, vmax=3.5)


def _perimeter(grid: Grid, n: int, inset: float) -> np.ndarray:
    """`n` points evenly spaced along the rectangle `inset` metres inside the grid's edges."""
    (x0, x1), (z0, z1) = grid.bounds
    a, b, c, e = x0 + inset, x1 - inset, z0 + inset, z1 - inset
    corners = np.array([(a, c), (b, c), (b, e), (a, e), (a, c)])
    seg = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    s = (np.arange(n) + 0.5) * seg.sum() / n
    k = np.minimum(np.searchsorted(np.cumsum(seg), s, side="right"), 3)
    frac = (s - np.concatenate([[0.0], np.cumsum(seg)])[k]) / seg[k]
    return corners[k] + frac[:, None] * (corners[k + 1] - corners[k])


def _acquisition(cfg: FWIConfig, grid: Grid):
    """Source positions `(shots, 1, 2)` and receiver positions `(nrec, 2)` in metres."""
    (x0, x1), (z0, z1) = grid.bounds
    dx, dz = grid.spacing
    xr, zr = grid.coordinates(0), grid.coordinates(1)
    surface = np.stack([xr, np.full(xr.size, z0 + 2 * dz)], axis=1)
    if cfg.geometry == "crosswell":
        # Sources down a well near the left edge; receivers down a well near the right edge and
        # along the surface (transmitted and refracted waves cross the model at many angles).
        zs = (np.linspace(z0 + 2 * dz, z1 - 5 * dz, cfg.shots) if cfg.shots > 1
              else [0.5 * (z0 + z1)])
        src = np.stack([np.full(cfg.shots, x0 + 2 * dx), zs], axis=1)
        well = np.stack([np.full(zr.size, x1 - 2 * dx), zr], axis=1)
        rec = np.concatenate([surface, well[zr > z0 + 2 * dz]])
    elif cfg.geometry == "surface":
        xs = np.linspace(x0 + 0.05 * (x1 - x0), x1 - 0.05 * (x1 - x0), cfg.shots) \
            if cfg.shots > 1 else [0.5 * (x0 + x1)]
        src = np.stack([xs, np.full(cfg.shots, z0 + 2 * dz)], axis=1)
        rec = surface
    else:  # ring: sources and receivers surround the model (transmission tomography)
        inset = 2 * max(dx, dz)
        src = _perimeter(grid, cfg.shots, inset)
        nrec = int(round(2 * ((x1 - x0) + (z1 - z0) - 4 * inset) / min(dx, dz)))
        rec = _perimeter(grid, nrec, inset)
    return np.asarray(src, np.float64)[:, None, :], rec


def setup(cfg: FWIConfig) -> Problem:
    """Build the problem of `cfg` and model its observed data (one batched forward solve)."""
    grid = Grid((cfg.nx, cfg.nz), (cfg.spacing, cfg.spacing))
    vp_true = _true_model(cfg, grid)
    vp_start = models.smooth(vp_true, cfg.sigma, grid) if cfg.sigma > 0 else vp_true.copy()
    vp_start = np.clip(vp_start, cfg.vmin, cfg.vmax).astype(np.float32)
    if vp_true.min() < cfg.vmin or vp_true.max() > cfg.vmax:
        raise InvalidArgument(
            f"the true model spans [{vp_true.min():.3g}, {vp_true.max():.3g}] km/s, outside the "
            f"bounds [vmin, vmax] = [{cfg.vmin:g}, {cfg.vmax:g}] km/s; widen them.")
    src, rec = _acquisition(cfg, grid)
    # A stable step for the fastest velocity the projection allows, rounded down to 0.05 ms.
    dt = math.floor(0.9 * critical_dt(grid, cfg.vmax, cfg.space_order) / 0.05) * 0.05
    tn = cfg.tn
    if tn is None:
        # Direct arrival at the farthest receiver at the slowest true velocity, plus the wavelet
        # (and, at the surface, the reflection from the bottom of the model).
        dist = np.max(np.linalg.norm(src[:, 0, None, :] - rec[None, :, :], axis=-1))
        if cfg.geometry == "surface":
            dist = math.hypot(dist, 2 * grid.extent[1])
        tn = math.ceil((1.1 * dist / float(vp_true.min()) + 2.0 / cfg.f0) / 50.0) * 50.0
    time_axis = TimeAxis(0.0, tn, dt)
    op = Acoustic(grid, time_axis, space_order=cfg.space_order, nbl=cfg.nbl)
    wavelet = np.asarray(ricker(time_axis, cfg.f0), dtype=np.float32)
    layer = Forward(op, wavelet, src, rec)
    observed = np.asarray(jax.jit(layer)(jnp.asarray(models.to_slowness2(vp_true))))
    return Problem(cfg, op, vp_true, vp_start, src, rec, wavelet, layer, observed)


def _relative_error(vp, vp_true):
    return float(np.linalg.norm(np.asarray(vp, np.float64) - vp_true) / np.linalg.norm(vp_true))


def smooth_gradient(sigma_m: float, grid: Grid) -> optax.GradientTransformation:
    """Gaussian smoothing (standard deviation `sigma_m` metres) of a gradient on `grid`.

    A stateless optax transformation; a classic FWI preconditioner that removes the sub-wavelength
    noise and source/receiver imprints of the gradient.
    """
    kernels = []
    for h in grid.spacing:
        s = sigma_m / h
        r = max(1, int(math.ceil(3.0 * s)))
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / max(s, 1e-12)) ** 2)
        kernels.append(jnp.asarray(k / k.sum(), jnp.float32))

    def smooth(g):
        if sigma_m <= 0:
            return g
        for axis, k in enumerate(kernels):
            g = jnp.apply_along_axis(lambda v, k=k: jnp.convolve(v, k.astype(v.dtype), mode="same"),
                                     axis, g)
        return g

    return optax.stateless(lambda updates, params=None: jax.tree_util.tree_map(smooth, updates))


def scale_by_max() -> optax.GradientTransformation:
    """Divide the gradient by its largest absolute value (stateless)."""
    def scale(g):
        return g / jnp.maximum(jnp.max(jnp.abs(g)), jnp.finfo(g.dtype).tiny)

    return optax.stateless(lambda updates, params=None: jax.tree_util.tree_map(scale, updates))


def optimizer(cfg: FWIConfig, grid: Grid) -> optax.GradientTransformation:
    """The optimiser of the run: smoothed gradient, scaled to a unit maximum, then Adam.

    With the gradient scaled to `max |g| = 1`, Adam's `eps` is relative: cells whose gradient is
    well above `eps` step by about `lr` km/s, while poorly illuminated cells (gradient below `eps`)
    move in proportion to their gradient, instead of by a full sign-like step as plain Adam does
    there (which leaves flat plateaus with sharp edges in the model).
    """
    return optax.chain(smooth_gradient(cfg.smooth_grad, grid), scale_by_max(),
                       optax.adam(cfg.lr, eps=cfg.eps))


def _make_step(problem: Problem, optimizer):
    cfg, layer = problem.config, problem.layer
    obs = jnp.asarray(problem.observed)
    norm = float(np.sum(problem.observed.astype(np.float64) ** 2))

    def misfit(vp):
        pred = layer(1.0 / vp**2)
        return jnp.sum((pred - obs) ** 2) / norm

    @jax.jit
    def step(vp, opt_state):
        loss, grad = jax.value_and_grad(misfit)(vp)
        updates, opt_state = optimizer.update(grad, opt_state, vp)
        vp = jnp.clip(optax.apply_updates(vp, updates), cfg.vmin, cfg.vmax)
        return vp, opt_state, loss

    return step, jax.jit(misfit)


# ------------------------------------------------------------------------------------------ state
def _state_arrays(cfg, iteration, vp, opt_state, history, errors, seconds):
    leaves = jax.tree_util.tree_leaves(opt_state)
    arrays = {f"opt_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays.update(
        iteration=np.int64(iteration), vp=np.asarray(vp), history=np.asarray(history, np.float64),
        model_error=np.asarray(errors, np.float64), seconds=np.float64(seconds),
        n_opt=np.int64(len(leaves)), config=np.asarray(json.dumps(cfg.to_dict())))
    return arrays


def _save_state(path: Path, arrays: dict):
    """Write `arrays` to `path` atomically: readers see the old file or the new one, not a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_state(out) -> dict | None:
    """The saved state of the run in directory `out` as a dict, or `None` if there is none."""
    path = Path(out) / STATE_FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    state["config"] = FWIConfig.from_dict(json.loads(str(state["config"])))
    state["iteration"] = int(state["iteration"])
    state["opt_leaves"] = [state.pop(f"opt_{i}") for i in range(int(state.pop("n_opt")))]
    return state


# ------------------------------------------------------------------------------------------ outputs
def save_figures(problem: Problem, vp_final, history, errors, out: Path,
                 pred_start=None, pred_final=None) -> list[str]:
    """Write the PNG figures of a run into `out` and return their file names."""
    import matplotlib.pyplot as plt

    from . import plot

    grid, names = problem.op.grid, []
    src = problem.src[:, 0, :]

    def save(fig, name):
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)

    # True, starting and inverted velocity side by side, one colour scale (km/s).
    save(plot.plot_models([("True", problem.vp_true), ("Starting", problem.vp_start),
                           ("Inverted", vp_final)], grid, src=src, rec=problem.rec), "models.png")
    # Observed record of the middle shot and the residuals of the starting and inverted models.
    i = problem.observed.shape[0] // 2
    panels = [("Observed", problem.observed[i])]
    if pred_start is not None:
        panels.append(("Start - observed", pred_start[i] - problem.observed[i]))
    if pred_final is not None:
        panels.append(("Inverted - observed", pred_final[i] - problem.observed[i]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 0.5, 4.2),
                             constrained_layout=True, squeeze=False)
    clip = float(np.percentile(np.abs(problem.observed[i]), 99.0)) or 1.0
    for ax, (title, d) in zip(axes[0], panels):
        plot.plot_shot(d, problem.op.time, ax=ax, title=f"{title} (shot {i})")
        ax.images[-1].set_clim(-clip, clip)  # one colour scale: residuals comparable to the data
    save(fig, "shots.png")
    # Misfit and model error per iteration.
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    plot.plot_loss(history, ax=axes[0], ylabel="Relative misfit", title="Data misfit")
    plot.plot_loss(errors, ax=axes[1], log=False, ylabel="Relative model error",
                   title="Velocity error vs true")
    save(fig, "misfit.png")
    return names


def _write_json(path: Path, obj):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ driver
def run(cfg: FWIConfig, out, *, resume: bool = False, overwrite: bool = False,
        progress: bool = True, figures: bool = True, callback=None, stop=None, log=print) -> dict:
    """Run (or continue) the FWI of `cfg`, writing state, figures and metrics into `out`.

    **Arguments:**

    - `cfg`: the `FWIConfig`. With `resume=True` and a saved state, its problem fields must equal
      the saved ones (only `iters`, the total number of iterations, may change).
    - `out`: the output directory (created if missing).
    - `resume`: continue the saved run in `out` (a fresh start if there is none).
    - `overwrite`: start afresh even if `out` holds a saved run.
    - `progress`: show a tqdm progress bar with the current misfit.
    - `figures`: write the PNG figures.
    - `callback`: `callback(iteration, misfit, vp)` called after each iteration has been saved
      (`iteration` counts finished iterations); raising `KeyboardInterrupt` in it acts as Ctrl-C.
    - `stop`: `stop() -> bool` checked before each iteration; True stops the run as an
      interrupt does (the command line sets it on the first Ctrl-C, so the iteration in progress
      finishes instead of being torn down inside a solver callback).
    - `log`: where one-line messages go.

    **Returns:** the metrics dict (also written to `out/metrics.json`). Raises `FWIInterrupted` on
    Ctrl-C after saving the state of the last finished iteration.
    """
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    state = None
    if overwrite:  # a new run: nothing of the old one may be mistaken for it
        for name in (STATE_FILE, METRICS_FILE):
            (out / name).unlink(missing_ok=True)
    if state_path.exists():
        try:
            state = load_state(out)
        except Exception as e:  # truncated by hand, or not ours: say so instead of a traceback
            raise InvalidArgument(f"cannot read the saved run {state_path} ({type(e).__name__}: "
                                  f"{e}); use --overwrite to start again.") from e
    if state is not None and not resume:
        raise InvalidArgument(
            f"{out} already holds an FWI run ({state['iteration']} iterations, {state_path.name}): "
            f"continue it with --resume, start again with --overwrite, or choose another --out.")
    if state is not None and resume:
        saved = state["config"].problem_dict()
        diff = {k: (v, saved[k]) for k, v in cfg.problem_dict().items() if saved[k] != v}
        if diff:
            what = ", ".join(f"{k}={a!r} (saved {b!r})" for k, (a, b) in diff.items())
            raise InvalidArgument(
                f"cannot resume {out}: the options differ from the saved run: {what}.")
    if state is None or not resume:
        state = None
        if resume:
            log(f"no saved run in {out}: starting a new one")

    problem = setup(cfg)
    opt = optimizer(cfg, problem.op.grid)
    step, misfit = _make_step(problem, opt)
    vp = jnp.asarray(problem.vp_start)
    opt_state = opt.init(vp)
    history, errors, seconds_before = (), (), 0.0
    if state is not None:
        treedef = jax.tree_util.tree_structure(opt_state)
        opt_state = jax.tree_util.tree_unflatten(
            treedef, [jnp.asarray(a) for a in state["opt_leaves"]])
        vp = jnp.asarray(state["vp"])
        history, errors = tuple(state["history"]), tuple(state["model_error"])
        seconds_before = float(state["seconds"])
        log(f"resuming {out} after iteration {len(history)} of {cfg.iters}")
    # The committed state (velocity, optimiser state, misfits, model errors) is replaced by one
    # assignment, so an interrupt never sees half an iteration.
    cur = (vp, opt_state, history, errors)

    def save(cur):
        vp, opt_state, history, errors = cur
        _save_state(state_path, _state_arrays(cfg, len(history), vp, opt_state, history, errors,
                                              seconds_before + time.perf_counter() - t_start))

    start = len(history)
    bar = None
    if progress and start < cfg.iters:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.iters, initial=start, desc=f"FWI {cfg.model}", unit="it",
                   dynamic_ncols=True)
    try:
        for _ in range(start, cfg.iters):
            if stop is not None and stop():
                raise KeyboardInterrupt
            vp, opt_state, history, errors = cur
            err = _relative_error(vp, problem.vp_true)
            new_vp, new_opt_state, loss = step(vp, opt_state)
            loss = float(loss)
            if not math.isfinite(loss):
                raise FloatingPointError(f"the misfit became {loss} at iteration {len(history)}.")
            cur = (new_vp, new_opt_state, history + (loss,), errors + (err,))
            save(cur)  # what is on disk is always a finished iteration
            if bar is not None:
                bar.set_postfix(misfit=f"{loss:.4g}", model_error=f"{err:.4f}")
                bar.update(1)
            if callback is not None:
                callback(len(cur[2]), loss, np.asarray(new_vp))
    except KeyboardInterrupt:
        save(cur)
        raise FWIInterrupted(len(cur[2]), state_path) from None
    finally:
        if bar is not None:
            bar.close()
    vp, opt_state, history, errors = cur
    if start >= cfg.iters and state is not None:
        log(f"{out} already has {len(history)} iterations (--iters {cfg.iters}): nothing to do")

    vp_final = np.asarray(vp)
    final_misfit = float(misfit(vp))
    pred_final = np.asarray(jax.jit(problem.layer)(1.0 / vp**2))
    pred_start = np.asarray(jax.jit(problem.layer)(jnp.asarray(1.0 / problem.vp_start**2)))
    initial_misfit = history[0] if history else final_misfit
    metrics = dict(
        model=cfg.model, geometry=cfg.geometry, shots=cfg.shots, grid=[cfg.nx, cfg.nz],
        spacing_m=cfg.spacing, nt=problem.op.time.nt, dt_ms=problem.op.time.dt,
        tn_ms=problem.op.time.tn, f0_khz=cfg.f0, lr=cfg.lr,
        iterations=len(history),
        initial_misfit=initial_misfit, final_misfit=final_misfit,
        initial_model_error=_relative_error(problem.vp_start, problem.vp_true),
        final_model_error=_relative_error(vp_final, problem.vp_true),
        misfit_history=[float(h) for h in history],
        model_error_history=[float(e) for e in errors],
    )
    metrics["model_error_reduction"] = 1.0 - metrics["final_model_error"] / max(
        metrics["initial_model_error"], 1e-30)
    np.save(out / "vp_inverted.npy", vp_final)
    if figures:
        # The curves end with the final model (after the last update).
        metrics["figures"] = save_figures(problem, vp_final, list(history) + [final_misfit],
                                          list(errors) + [metrics["final_model_error"]], out,
                                          pred_start=pred_start, pred_final=pred_final)
    # Wall time of this invocation (setup, Devito compilation, iterations, figures) and of the
    # whole run over every resumed invocation.
    metrics["seconds"] = time.perf_counter() - t_start
    metrics["seconds_total"] = seconds_before + metrics["seconds"]
    _write_json(out / METRICS_FILE, metrics)
    return metrics
