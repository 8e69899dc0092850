"""The `jaxseis fwi` command: outputs, resume, interruption and argument errors.

Runs `jaxseis.cli.main` in-process with the `--small` preset (41 x 31 grid, 2 shots), so the Devito
operators are compiled once for the whole module. Runs are deterministic, so a resumed run must
reproduce the misfit history of an uninterrupted one.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxseis import cli
from jaxseis.fwi import FWIConfig, load_state

SMALL = ["fwi", "--small", "--no-progress"]
METRIC_KEYS = {"initial_misfit", "final_misfit", "initial_model_error", "final_model_error",
               "iterations", "seconds"}
FIGURES = ["models.png", "shots.png", "misfit.png"]


def fwi(out, *args, callback=None):
    return cli.main(SMALL + ["--out", str(out), *args], callback=callback)


def metrics(out):
    return json.loads((Path(out) / "metrics.json").read_text())


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted 4-iteration run: the reference for resumed and interrupted ones."""
    out = tmp_path_factory.mktemp("fwi") / "full"
    t = time.perf_counter()
    assert fwi(out, "--iters", "4") == 0
    print(f"\n[fwi --small --iters 4] {time.perf_counter() - t:.1f} s (with Devito compilation)")
    return out


def test_outputs_and_misfit_decrease(full_run):
    m = metrics(full_run)
    assert METRIC_KEYS <= set(m)
    print(f"\n[fwi --small] misfit {m['initial_misfit']:.4g} -> {m['final_misfit']:.4g}, model "
          f"error {m['initial_model_error']:.4f} -> {m['final_model_error']:.4f}, "
          f"{m['seconds']:.1f} s")
    assert m["iterations"] == 4 and len(m["misfit_history"]) == 4
    assert m["final_misfit"] < 0.7 * m["initial_misfit"]
    assert m["final_model_error"] < m["initial_model_error"]
    assert m["initial_misfit"] == m["misfit_history"][0]
    for name in FIGURES:
        path = full_run / name
        assert path.stat().st_size > 5000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert sorted(m["figures"]) == sorted(FIGURES)
    vp = np.load(full_run / "vp_inverted.npy")
    cfg = FWIConfig()
    assert vp.shape == (41, 31) and cfg.vmin <= vp.min() and vp.max() <= cfg.vmax
    state = load_state(full_run)
    assert state["iteration"] == 4 and np.array_equal(state["vp"], vp)
    assert not [p for p in full_run.iterdir() if p.name.endswith(".tmp")]  # no temp file left


def test_resume_continues_without_losing_iterations(full_run, tmp_path):
    out = tmp_path / "resumed"
    assert fwi(out, "--iters", "2") == 0
    first = metrics(out)["misfit_history"]
    assert len(first) == 2
    assert cli.main(["fwi", "--resume", "--iters", "4", "--no-progress", "--out", str(out)]) == 0
    m = metrics(out)
    assert m["iterations"] == 4 and len(m["misfit_history"]) == 4
    assert m["misfit_history"][:2] == first  # finished iterations are kept, not recomputed
    # Adam's state was restored: the continuation is the uninterrupted run.
    np.testing.assert_allclose(m["misfit_history"], metrics(full_run)["misfit_history"], rtol=1e-5)
    np.testing.assert_allclose(np.load(out / "vp_inverted.npy"),
                               np.load(full_run / "vp_inverted.npy"), rtol=1e-5)


def test_interrupt_saves_and_resume_continues(full_run, tmp_path):
    out = tmp_path / "interrupted"
    seen = []

    def ctrl_c_after_two(iteration, misfit, vp):
        seen.append(iteration)
        if iteration == 2:
            raise KeyboardInterrupt

    assert fwi(out, "--iters", "4", callback=ctrl_c_after_two) == 130
    assert seen == [1, 2]
    state = load_state(out)
    assert state["iteration"] == 2 and len(state["history"]) == 2
    assert not (out / "metrics.json").exists()
    assert cli.main(["fwi", "--resume", "--no-progress", "--out", str(out)]) == 0  # iters saved
    m = metrics(out)
    assert m["iterations"] == 4
    np.testing.assert_allclose(m["misfit_history"], metrics(full_run)["misfit_history"], rtol=1e-5)


@pytest.mark.parametrize("model,geometry", [("layered", "surface"), ("random", "ring")])
def test_other_models_and_geometries(tmp_path, model, geometry):
    assert fwi(tmp_path, "--model", model, "--geometry", geometry, "--iters", "2", "--seed", "7",
               "--no-figures") == 0
    m = metrics(tmp_path)
    print(f"\n[fwi --small {model} {geometry}] misfit {m['misfit_history']} -> "
          f"{m['final_misfit']:.4g}")
    assert m["model"] == model and m["geometry"] == geometry and m["iterations"] == 2
    assert m["final_misfit"] < m["initial_misfit"]
    assert load_state(tmp_path)["config"].seed == 7


def test_graceful_stop_flag(tmp_path):
    """The first Ctrl-C of the command sets a flag: the run stops before the next iteration."""
    from jaxseis.fwi import FWIInterrupted, run

    calls = []
    cfg = FWIConfig(**{**FWIConfig().to_dict(), **cli._PRESETS["small"], "iters": 3})
    with pytest.raises(FWIInterrupted, match="after 1 finished iteration"):
        run(cfg, tmp_path, progress=False, figures=False, log=lambda s: None,
            callback=lambda *a: calls.append(a[0]), stop=lambda: len(calls) >= 1)
    assert load_state(tmp_path)["iteration"] == 1


def test_argument_errors(full_run, tmp_path, capsys):
    cases = [
        (["fwi", "--shots", "0"], "--shots: must be a positive integer"),
        (["fwi", "--iters", "-1"], "--iters: must be an integer >= 0"),
        (["fwi", "--model", "marmousi"], "invalid choice: 'marmousi'"),
        (["fwi", "--lr", "nan"], "--lr: must be a positive number"),
        (["fwi", "--vmin", "3", "--vmax", "2"], "`vmax` must exceed `vmin`"),
        (["fwi", "--vmin", "2.6", "--out", str(tmp_path / "x")], "outside the bounds"),
        # An existing run is never overwritten by accident...
        (SMALL + ["--out", str(full_run)], "continue it with --resume"),
        # ...and a resumed run must be the same problem.
        (["fwi", "--resume", "--shots", "3", "--out", str(full_run)], "shots=3 (saved 2)"),
        ([], "required"),
        # A state file that is not one: a clear message, not a traceback.
        (SMALL + ["--out", str(tmp_path / "corrupt")], "cannot read the saved run"),
        (SMALL + ["--resume", "--out", str(tmp_path / "corrupt")], "cannot read the saved run"),
    ]
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "state.npz").write_bytes(b"not a state file")
    for argv, message in cases:
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
    assert not (tmp_path / "x" / "state.npz").exists()


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["fwi", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--model", "--shots", "--iters", "--out", "--resume", "--seed", "camembert"):
        assert option in text


def test_console_script_entry_point():
    from importlib.metadata import entry_points

    (ep,) = (e for e in entry_points(group="console_scripts") if e.name == "jaxseis")
    assert ep.value == "jaxseis.cli:main" and ep.load() is cli.main


@pytest.mark.slow
def test_sigint_subprocess_then_resume(tmp_path):
    """A real Ctrl-C (SIGINT) to `python -m jaxseis.cli fwi`: exit status 130, a saved state, and
    `--resume` continues from it."""
    out = tmp_path / "sigint"
    argv = [sys.executable, "-m", "jaxseis.cli", *SMALL, "--no-figures", "--iters", "200",
            "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 300
        while not (out / "state.npz").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no state file after 300 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Ctrl-C: stopping after the current iteration" in err and "--resume" in err
    done = load_state(out)["iteration"]
    assert 1 <= done < 200
    before = list(load_state(out)["history"])
    assert cli.main(["fwi", "--resume", "--iters", str(done + 1), "--no-progress", "--no-figures",
                     "--out", str(out)]) == 0
    m = metrics(out)
    assert m["iterations"] == done + 1 and m["misfit_history"][:done] == before
