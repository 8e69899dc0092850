"""The `jaxseis` command line.

    jaxseis fwi [--model camembert|layered|random] [--shots N] [--iters N] [--out DIR] [--resume]
    jaxseis model --config FILE [--set KEY=VALUE ...] [--out DIR]
    jaxseis rtm   --config FILE [--set KEY=VALUE ...] [--out DIR]
    jaxseis fwi   --config FILE [--set KEY=VALUE ...] [--out DIR] [--resume]

`jaxseis fwi` without `--config` runs a multi-shot full-waveform inversion on a built-in synthetic
model (see `jaxseis.fwi`): figures, `metrics.json` and the resumable state go to `--out`. With a
TOML configuration (`jaxseis._config`, keys listed by `--help`) the three commands run
`jaxseis.workflow.model`, `rtm` and `fwi` on model and data files. Ctrl-C saves the state of the
last finished iteration and exits with status 130; `--resume` continues from it.
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


def _config_options(p, resumable: bool):
    """Options of the configuration-driven commands."""
    g = p.add_argument_group("configuration (see the keys below)")
    g.add_argument("--config", metavar="FILE", default=None,
                   help="TOML configuration file (relative paths in it are relative to it)")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key, e.g. --set stages.0.iterations=3 or --set "
                        "physics.name=VariableDensityAcoustic (TOML values; repeatable)")
    g.add_argument("--executor", choices=("auto", "serial", "threads", "dask"), default=None,
                   help="where shots run (key executor.kind)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address (key executor.address; implies --executor dask)")
    if not resumable:
        p.add_argument("--out", default=None, metavar="DIR",
                       help="output directory (key output.directory)")
        p.add_argument("--no-figures", action="store_true", help="do not write PNG figures")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from ._config import describe
    from .fwi import GEOMETRIES, MODELS, FWIConfig

    d = FWIConfig()
    keys = describe()
    parser = argparse.ArgumentParser(
        prog="jaxseis", description="Differentiable wave physics for JAX (Devito solvers).")
    parser.add_argument("--version", action="version", version=f"jaxseis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    raw = argparse.RawDescriptionHelpFormatter
    model = sub.add_parser(
        "model", help="synthetic shot gathers (SEG-Y) from a model and an acquisition",
        formatter_class=raw, epilog=keys,
        description=(
            "Model the shot gathers of the true model of a configuration ([model]) over its\n"
            "acquisition ([acquisition]) with a Ricker wavelet (wavelet.f0) and write them as\n"
            "SEG-Y (data.files, default <output.directory>/shots.sgy). Units: m, ms, km/s, kHz."))
    model.set_defaults(subparser=model)
    _config_options(model, resumable=False)
    rtm = sub.add_parser(
        "rtm", help="reverse-time migration image (SEG-Y, PNG) of shot gathers",
        formatter_class=raw, epilog=keys,
        description=(
            "Migrate the data (data.files) in the starting model ([start]): the image of the\n"
            "residual data (observed minus starting-model data) is written as image.sgy,\n"
            "image.npy and image.png into output.directory."))
    rtm.set_defaults(subparser=rtm)
    _config_options(rtm, resumable=False)

    fwi = sub.add_parser(
        "fwi", help="full-waveform inversion: of a built-in synthetic model, or of files "
                    "(--config)",
        formatter_class=raw, epilog=keys,
        description=(
            "Without --config: multi-shot full-waveform inversion with optax (Adam on the\n"
            "velocity, projected onto [vmin, vmax]) of a built-in synthetic model, from a\n"
            "smoothed starting model. All shots are modelled in one batched, jitted value-and-\n"
            "gradient per iteration. Writes figures (models.png, shots.png, misfit.png),\n"
            "metrics.json and the resumable state (state.npz, saved after every iteration) into\n"
            "--out. Ctrl-C saves and exits (status 130); --resume continues.\n\n"
            "With --config FILE (and/or --set): multi-stage FWI of the data files of the\n"
            "configuration (jaxseis.workflow.fwi): per stage the model (SEG-Y, .npy), then\n"
            "figures and metrics.json; resumable the same way. Units: m, ms, km/s, kHz."))
    fwi.set_defaults(subparser=fwi)
    _config_options(fwi, resumable=True)
    fwi.add_argument("--model", choices=MODELS, default=None,
                     help=f"true model (default: {d.model})")
    fwi.add_argument("--shots", type=_positive_int, default=None,
                     help=f"number of shots (default: {d.shots})")
    fwi.add_argument("--iters", type=_nonnegative_int, default=None,
                     help=f"total number of iterations; with --resume, the new total "
                          f"(default: {d.iters})")
    fwi.add_argument("--out", default=None, metavar="DIR",
                     help="output directory (default: fwi-out; with --config: output.directory)")
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


_TOY_OPTIONS = ("model", "shots", "iters", "seed", "geometry", "lr", "vmin", "vmax", "nx", "nz",
                "spacing", "f0", "tn", "sigma", "space_order", "nbl")


def _workflow(args, parser) -> int:
    """`jaxseis model|rtm|fwi --config FILE`: the configuration-driven commands."""
    import matplotlib

    matplotlib.use("Agg")
    from . import workflow
    from ._config import load_config
    from ._errors import JaxseisError
    from .fwi import FWIInterrupted

    cmd = args.command
    if cmd == "fwi":
        toy = [f"--{k.replace('_', '-')}" for k in _TOY_OPTIONS if getattr(args, k) is not None]
        if args.small:
            toy.append("--small")
        if toy:
            parser.error(f"{', '.join(toy)} apply to the built-in problem only, not with "
                         "--config/--set; set configuration keys with --set section.key=value.")
    overrides = list(args.overrides)
    if args.out is not None:
        overrides.append(f"output.directory={json.dumps(args.out)}")
    if args.no_figures:
        overrides.append("output.figures=false")
    if args.scheduler is not None:
        overrides += ["executor.kind=\"dask\"", f"executor.address={json.dumps(args.scheduler)}"]
    elif args.executor is not None:
        overrides.append(f"executor.kind={json.dumps(args.executor)}")
    log = lambda msg: print(msg if msg.startswith("jaxseis") else f"jaxseis {cmd}: {msg}",  # noqa: E731
                            file=sys.stderr)
    try:
        cfg = load_config(args.config, overrides)
        if cmd == "model":
            result = workflow.model(cfg, log=log)
        elif cmd == "rtm":
            result = workflow.rtm(cfg, log=log)
        else:
            interrupt = _GracefulInterrupt(log)
            try:
                with interrupt.installed():
                    result = workflow.fwi(cfg, resume=args.resume, overwrite=args.overwrite,
                                          progress=not args.no_progress,
                                          callback=getattr(args, "_callback", None),
                                          stop=interrupt, log=log)
            except FWIInterrupted as e:
                log(str(e))
                return 130
            except KeyboardInterrupt:
                log("interrupted before the first iteration finished; nothing saved")
                return 130
            keys = ("iterations", "initial_model_error", "final_model_error", "seconds")
            result = {k: result[k] for k in keys} | {
                "stages": [{k: s[k] for k in ("stage", "max_frequency_khz", "misfit_last",
                                              "model_error")} for s in result["stages"]]}
    except (JaxseisError, FileNotFoundError) as e:
        parser.error(str(e))
    print(json.dumps(result))
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
        if args.config is not None or args.overrides or args.executor or args.scheduler:
            return _workflow(args, args.subparser)
        if args.out is None:
            args.out = "fwi-out"
        return _fwi(args, args.subparser)
    if args.command in ("model", "rtm"):
        return _workflow(args, args.subparser)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks first


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
