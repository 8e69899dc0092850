"""The `jaxseis` command line.

    jaxseis fwi [--model camembert|layered|random] [--shots N] [--iters N] [--out DIR] [--resume]

`jaxseis fwi` runs a multi-shot full-waveform inversion on a built-in synthetic model (see
`jaxseis.fwi`): figures, `metrics.json` and the resumable state go to `--out`. Ctrl-C saves the
state of the last finished iteration and exits with status 130; `--resume` continues from it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading

from ._errors import InvalidArgument

__all__ = ["main", "build_parser"]

# Problem options: default None so that an option given explicitly can be told apart from one left
# to the preset (or, with --resume, to the saved run).
_PRESETS = {
    "default": {},
    # A tiny problem for smoke tests: seconds, not minutes.
    "small": dict(nx=41, nz=31, shots=2, iters=3, f0=0.015, sigma=60.0, nbl=10, lr=0.04),
}


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def _nonnegative_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def _nonnegative_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not (v >= 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .fwi import GEOMETRIES, MODELS, FWIConfig

    d = FWIConfig()
    parser = argparse.ArgumentParser(
        prog="jaxseis", description="Differentiable wave physics for JAX (Devito solvers).")
    parser.add_argument("--version", action="version", version=f"jaxseis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    fwi = sub.add_parser(
        "fwi", help="multi-shot full-waveform inversion of a built-in synthetic model",
        description=(
            "Multi-shot full-waveform inversion with optax (Adam on the velocity, projected onto "
            "[vmin, vmax]) of a built-in synthetic model, from a smoothed starting model. All "
            "shots are modelled in one batched, jitted value-and-gradient per iteration. Writes "
            "figures (models.png, shots.png, misfit.png), metrics.json and the resumable state "
            "(state.npz, saved after every iteration) into --out. Ctrl-C saves and exits (status "
            "130); --resume continues. Units: m, ms, km/s, kHz."))
    fwi.set_defaults(subparser=fwi)
    fwi.add_argument("--model", choices=MODELS, default=None,
                     help=f"true model (default: {d.model})")
    fwi.add_argument("--shots", type=_positive_int, default=None,
                     help=f"number of shots (default: {d.shots})")
    fwi.add_argument("--iters", type=_nonnegative_int, default=None,
                     help=f"total number of iterations; with --resume, the new total "
                          f"(default: {d.iters})")
    fwi.add_argument("--out", default="fwi-out", metavar="DIR",
                     help="output directory (default: fwi-out)")
    fwi.add_argument("--resume", action="store_true",
                     help="continue the run saved in --out (its options are reused)")
    fwi.add_argument("--overwrite", action="store_true",
                     help="start a new run even if --out holds one")
    fwi.add_argument("--seed", type=_nonnegative_int, default=None,
                     help=f"seed of the random model (default: {d.seed})")
    fwi.add_argument("--geometry", choices=GEOMETRIES, default=None,
                     help=f"acquisition geometry (default: {d.geometry})")
    fwi.add_argument("--lr", type=_positive_float, default=None,
                     help=f"Adam learning rate in km/s per iteration (default: {d.lr})")
    fwi.add_argument("--vmin", type=_positive_float, default=None,
                     help=f"lower velocity bound in km/s (default: {d.vmin})")
    fwi.add_argument("--vmax", type=_positive_float, default=None,
                     help=f"upper velocity bound in km/s (default: {d.vmax})")
    fwi.add_argument("--no-progress", action="store_true", help="no progress bar")
    fwi.add_argument("--no-figures", action="store_true", help="do not write PNG figures")
    adv = fwi.add_argument_group("problem size (advanced)")
    adv.add_argument("--small", action="store_true",
                     help="a tiny problem for smoke tests (41x31 grid, 2 shots, 3 iterations)")
    adv.add_argument("--nx", type=_positive_int, default=None,
                     help=f"grid nodes along x (default: {d.nx})")
    adv.add_argument("--nz", type=_positive_int, default=None,
                     help=f"grid nodes in depth (default: {d.nz})")
    adv.add_argument("--spacing", type=_positive_float, default=None,
                     help=f"grid spacing in m (default: {d.spacing})")
    adv.add_argument("--f0", type=_positive_float, default=None,
                     help=f"Ricker peak frequency in kHz (default: {d.f0})")
    adv.add_argument("--tn", type=_positive_float, default=None,
                     help="record length in ms (default: long enough for the farthest receiver)")
    adv.add_argument("--sigma", type=_nonnegative_float, default=None,
                     help=f"smoothing (m) of the true model into the starting model "
                          f"(default: {d.sigma})")
    adv.add_argument("--space-order", dest="space_order", type=_positive_int, default=None,
                     help=f"finite-difference order (default: {d.space_order})")
    adv.add_argument("--nbl", type=_nonnegative_int, default=None,
                     help=f"absorbing layer width in cells (default: {d.nbl})")
    return parser


def _config(args, parser):
    """The FWIConfig of the command line: saved run (with --resume) < preset < explicit options."""
    from .fwi import FWIConfig, load_state

    fields = [f.name for f in dataclasses.fields(FWIConfig)]
    explicit = {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
    if args.small:
        explicit = {**_PRESETS["small"], **explicit}
    base = FWIConfig().to_dict()
    if args.resume and not args.overwrite:
        try:
            state = load_state(args.out)
        except Exception as e:  # a corrupt or foreign state file
            parser.error(f"cannot read the saved run in {args.out} ({type(e).__name__}: {e}); use "
                         f"--overwrite to start again.")
        if state is not None:
            base = state["config"].to_dict()
    try:
        return FWIConfig(**{**base, **explicit})
    except InvalidArgument as e:
        parser.error(str(e))


class _GracefulInterrupt:
    """First Ctrl-C: ask the run to stop after the iteration in progress (which is then saved).
    Second Ctrl-C: the usual KeyboardInterrupt, at once.

    Stopping between iterations rather than wherever the signal lands keeps the interrupt out of
    the solver callbacks (an exception raised inside a `jax.pure_callback` reaches the caller as a
    JAX runtime error, not as a KeyboardInterrupt)."""

    def __init__(self, log):
        self.requested = False
        self.log = log

    def __call__(self):
        return self.requested

    def _handler(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        self.log("Ctrl-C: stopping after the current iteration (press Ctrl-C again to abort now)")

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self  # signal handlers can only be set from the main thread
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def _fwi(args, parser) -> int:
    import matplotlib

    matplotlib.use("Agg")  # a command line tool writes files; never needs a display
    from .fwi import FWIInterrupted, run

    cfg = _config(args, parser)
    log = lambda msg: print(f"jaxseis fwi: {msg}", file=sys.stderr)  # noqa: E731
    interrupt = _GracefulInterrupt(log)
    try:
        with interrupt.installed():
            metrics = run(cfg, args.out, resume=args.resume, overwrite=args.overwrite,
                          progress=not args.no_progress, figures=not args.no_figures,
                          callback=getattr(args, "_callback", None), stop=interrupt, log=log)
    except FWIInterrupted as e:
        log(str(e))
        return 130
    except KeyboardInterrupt:
        log("interrupted before the first iteration finished; nothing saved")
        return 130
    except InvalidArgument as e:
        parser.error(str(e))
    keys = ("iterations", "initial_misfit", "final_misfit", "initial_model_error",
            "final_model_error", "seconds")
    print(json.dumps({k: metrics[k] for k in keys}))
    print(f"jaxseis fwi: wrote {', '.join(metrics.get('figures', []) + ['metrics.json'])} "
          f"to {args.out}", file=sys.stderr)
    return 0


def main(argv=None, *, callback=None) -> int:
    """Entry point of the `jaxseis` console script; returns the exit status.

    `callback(iteration, misfit, vp)` (for tests and notebooks) is called after every saved
    iteration of `jaxseis fwi`; raising `KeyboardInterrupt` in it acts like Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args._callback = callback
    if args.command == "fwi":
        return _fwi(args, args.subparser)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks first


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
