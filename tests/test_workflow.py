"""The configuration-driven workflow: `jaxseis model|rtm|fwi --config`, `jaxseis.workflow`.

Config errors name the key, its line and the valid choices; `--set` overrides; a tiny model -> fwi
run from a config file through the console script; resume after a real kill; wavelet estimation;
rtm outputs; SEG-Y files written with segyio (not jaxseis) read back with the right geometry.
Grids are tiny (41 x 31 at 10 m, nbl 10, ~200 time steps).
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

import jaxseis as js
from jaxseis import cli, workflow
from jaxseis._config import ConfigError, describe, load_config, physics_classes

TINY = """\
[physics]
name = "Acoustic"
space_order = 4
nbl = 10

[model]
builtin = "camembert"
shape = [41, 31]
spacing = 10.0

[start]
smooth = 60.0

[acquisition]
shots = 3
record_length = 400.0

[wavelet]
kind = "ricker"
f0 = 0.015

[[stages]]
max_frequency = 0.010
iterations = 2

[[stages]]
max_frequency = 0.0
iterations = 2

[optimizer]
learning_rate = 0.04

[bounds]
vp = [1.4, 4.0]

[data]
files = ["data/shots.sgy"]

[output]
directory = "out"
"""


def line_of(text, start):
    """1-based line of the first line of `text` starting with `start`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def console_script():
    """The `jaxseis` console script installed beside this Python (falls back to -m)."""
    exe = Path(sys.executable).parent / "jaxseis"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jaxseis.cli"]


def run_script(*args, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(console_script() + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny configuration file and its synthetic data (made by `jaxseis model` in a
    subprocess)."""
    d = tmp_path_factory.mktemp("wf")
    path = d / "tiny.toml"
    path.write_text(TINY)
    t = time.perf_counter()
    r = run_script("model", "--config", str(path))
    print(f"\n[jaxseis model, subprocess] {time.perf_counter() - t:.1f} s")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["shots"] == 3 and Path(out["data"]) == d / "data" / "shots.sgy"
    return path


# ----------------------------------------------------------------------------- config
def test_config_unknown_key_names_line_and_valid_keys():
    text = TINY.replace("iterations = 2\n\n[optimizer]", "itrations = 2\n\n[optimizer]")
    line = text.splitlines().index("itrations = 2") + 1
    with pytest.raises(ConfigError, match=rf"`stages.1.itrations` \(line {line}\): unknown key; "
                                          r"valid keys here: 'max_frequency', 'iterations'"):
        load_config(text=text)
    with pytest.raises(ConfigError, match=r"`optimiser` \(line 1\): unknown key; valid keys "
                                          r"here: 'physics'.*'optimizer'"):
        load_config(text="[optimiser]\nname = 'adam'\n")


def test_config_bad_values_name_choices(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace('name = "Acoustic"', 'name = "Acoustc"'))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert f"`physics.name` ({path}, line 2): got 'Acoustc'; must be one of" in msg
    for name in physics_classes():  # every exported physics class, found generically
        assert repr(name) in msg
    assert {"Acoustic", "VariableDensityAcoustic"} <= set(physics_classes())
    cases = [
        (TINY.replace('kind = "ricker"', 'kind = "ricer"'),
         rf"`wavelet.kind` \(line {line_of(TINY, 'kind')}\): got 'ricer'; must be one of "
         r"'ricker', 'estimate'"),
        (TINY.replace("nbl = 10", "nbl = -1"),
         rf"`physics.nbl` \(line {line_of(TINY, 'nbl')}\).*an integer >= 0"),
        (TINY.replace("space_order = 4", "space_order = 5"), r"`physics.space_order`.*even"),
        (TINY.replace("shots = 3", 'shots = "3"'), r"`acquisition.shots`.*an integer >= 1"),
        (TINY.replace("vp = [1.4, 4.0]", "vp = [4.0, 1.4]"),
         rf"`bounds.vp` \(line {line_of(TINY, 'vp =')}\).*low < high"),
        (TINY + "\n[executor]\nkind = 'mpi'\n", r"`executor.kind`.*'serial', 'threads', 'dask'"),
        (TINY.replace("[optimizer]", "[optimizer]\nname = 'adamm'"), r"`optimizer.name`.*optax"),
        (TINY.replace("nbl = 10", "nbl = 10\noptions = {speed = 2}"),
         r"`physics.options.speed`.*unknown option of Acoustic"),
        ("[stages]\niterations = 3\n", r"`stages` \(line 1\): must be one or more \[\[stages\]\]"),
        ("[physics\n", r"not valid TOML"),
    ]
    for text, pattern in cases:
        with pytest.raises(ConfigError, match=pattern):
            load_config(text=text)
    assert issubclass(ConfigError, js.JaxseisError) and issubclass(ConfigError, ValueError)
    with pytest.raises(FileNotFoundError, match="configuration file not found"):
        load_config(tmp_path / "missing.toml")


def test_config_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(TINY)
    cfg = load_config(path, ["stages.0.iterations=7", "optimizer.learning_rate=0.1",
                             "stages.2.max_frequency=0.02", "output.directory=elsewhere",
                             "physics.name=VariableDensityAcoustic"])
    assert [s["iterations"] for s in cfg["stages"]] == [7, 2, 10]  # index 2 appends a stage
    assert cfg["stages"][2]["max_frequency"] == 0.02
    assert cfg["optimizer"]["learning_rate"] == 0.1 and cfg["optimizer"]["name"] == "adam"
    assert cfg["physics"]["name"] == "VariableDensityAcoustic"
    assert cfg["output"]["directory"] == "elsewhere"  # an override: relative to the cwd
    assert load_config(path)["output"]["directory"] == str(tmp_path / "out")  # to the file
    assert cfg["inversion"]["parameters"] == ["vp"] and cfg["executor"]["kind"] == "auto"
    with pytest.raises(ConfigError, match=r"`stages.0.iterations` \(set on the command line\): "
                                          r"got -3"):
        load_config(path, ["stages.0.iterations=-3"])
    with pytest.raises(ConfigError, match="there are 2 stages; index 5"):
        load_config(path, ["stages.5.iterations=1"])
    with pytest.raises(ConfigError, match="must be key=value"):
        load_config(path, ["stages.0.iterations"])
    with pytest.raises(ConfigError, match=r"`wavelet.f00`.*valid keys here: 'kind', 'f0'"):
        load_config(path, ["wavelet.f00=0.01"])


def test_help_lists_every_key(capsys):
    from jaxseis._config import SCHEMA, STAGE

    for cmd in ("model", "rtm", "fwi"):
        with pytest.raises(SystemExit) as e:
            cli.main([cmd, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        for section, keys in SCHEMA.items():
            assert (f"[{section}]" in text) or section == "stages", (cmd, section)
            for k in keys:
                assert f"  {k} = " in text, (cmd, section, k)
        assert "[[stages]]" in text and all(f"  {k} = " in text for k in STAGE)
        assert "[kHz]" in text and "[m]" in text and "--set" in text and "--config" in text
    assert "VariableDensityAcoustic" in describe()


def test_cli_config_errors(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(TINY.replace("f0 = 0.015", "f0 = -1"))
    cases = [
        (["model", "--config", str(path)],
         f"`wavelet.f0` ({path}, line {line_of(TINY, 'f0')}): got -1.0; must be a number > 0"),
        (["fwi", "--config", str(path), "--shots", "3"], "--shots apply to the built-in problem "
         "only"),
        (["rtm", "--config", str(tmp_path / "none.toml")], "configuration file not found"),
        (["model", "--set", "model.builtin=marmousi", "--set", "acquisition.shots=0"],
         "`acquisition.shots` (set on the command line): got 0; must be an integer >= 1"),
        (["fwi", "--config", str(path), "--set", "wavelet.f0=0.01", "--set",
          "inversion.parameters=['rho']", "--out", str(tmp_path / "o")],
         "`rho` cannot be inverted with Acoustic; valid: 'm', 'vp'"),
        (["rtm", "--config", str(path), "--set", "wavelet.f0=0.01", "--set",
          "data.files=['missing.sgy']"], "data file `missing.sgy` not found"),
        (["fwi", "--config", str(path), "--set", "wavelet.f0=0.01", "--executor", "dask"],
         "executor.kind 'dask' needs the scheduler address"),
        (["model", "--config", str(path), "--set", "wavelet.f0=0.01", "--set",
          "model.builtin='none'"], "`jaxseis model` needs a true model"),
        (["model", "--config", str(path), "--set", "wavelet.f0=0.01", "--set",
          "acquisition.source_x=[0, 9000]"],
         "`acquisition.source_x` (set on the command line): [0.0, 9000.0] m is outside"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)


# ----------------------------------------------------------------------------- runs
def test_model_then_fwi_through_the_console_script(tiny, tmp_path):
    out = tmp_path / "fwi"
    t = time.perf_counter()
    r = run_script("fwi", "--config", str(tiny), "--out", str(out), "--no-progress",
                   "--executor", "serial", "--set", "stages.1.iterations=3")
    print(f"\n[jaxseis fwi --config, subprocess] {time.perf_counter() - t:.1f} s")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    print(f"[fwi tiny] model error {m['initial_model_error']['vp']:.4f} -> "
          + " -> ".join(f"{s['model_error']['vp']:.4f}" for s in m["stages"]))
    assert m["iterations"] == 5 and m["misfit_stage"] == [0, 0, 1, 1, 1]
    assert [s["iterations"] for s in m["stages"]] == [2, 3]
    assert m["final_model_error"]["vp"] < m["initial_model_error"]["vp"]
    stage2 = [h for h, s in zip(m["misfit_history"], m["misfit_stage"]) if s == 1]
    assert stage2[-1] < stage2[0]
    for name in ("stage1_vp.sgy", "stage1_vp.npy", "stage2_vp.sgy", "vp_inverted.sgy",
                 "models.png", "misfit.png", "wavelet.npy"):
        assert (out / name).stat().st_size > 0, name
    vp, grid = js.io.read_model(out / "stage2_vp.sgy")
    assert grid == js.Grid((41, 31), (10.0, 10.0))
    np.testing.assert_array_equal(vp, np.load(out / "stage2_vp.npy"))
    np.testing.assert_array_equal(vp, np.load(out / "vp_inverted.npy"))
    assert 1.4 <= vp.min() and vp.max() <= 4.0


def _iterations_in_state(out):
    try:
        s = workflow.load_state(out)
    except Exception:  # noqa: BLE001 - being replaced (atomically) right now
        return 0
    return 0 if s is None else len(s["history"])


@pytest.mark.slow
def test_resume_after_a_real_kill(tiny, tmp_path, capsys):
    """SIGKILL mid-run (no chance to clean up): the restarted run keeps every finished
    iteration and continues."""
    out = tmp_path / "killed"
    argv = console_script() + ["fwi", "--config", str(tiny), "--out", str(out), "--no-progress",
                               "--set", "stages.0.iterations=200"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 300
        while _iterations_in_state(out) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "fewer than 2 iterations after 300 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    state = workflow.load_state(out)
    done = len(state["history"])
    assert 2 <= done < 200 and int(state["stage"]) == 0 and int(state["iteration"]) == done
    before = [float(h) for h in state["history"]]
    # Without --resume an existing run is never overwritten...
    with pytest.raises(SystemExit):
        cli.main(["fwi", "--config", str(tiny), "--out", str(out), "--no-progress"])
    # ...with it, the run continues: the first stage now ends one iteration later.
    assert cli.main(["fwi", "--config", str(tiny), "--out", str(out), "--no-progress",
                     "--resume", "--set", f"stages.0.iterations={done + 1}"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["iterations"] == done + 1 + 2
    assert m["misfit_history"][:done] == before  # finished iterations kept, not recomputed
    assert m["misfit_stage"] == [0] * (done + 1) + [1, 1]
    # A different problem cannot resume it.
    with pytest.raises(SystemExit):
        cli.main(["fwi", "--config", str(tiny), "--out", str(out), "--resume",
                  "--set", "optimizer.learning_rate=0.5"])
    assert "the configuration differs from the saved run in optimizer.learning_rate" in \
        capsys.readouterr().err


def test_interrupt_in_process_then_resume_matches_uninterrupted(tiny, tmp_path):
    """Ctrl-C after 3 iterations (inside stage 2), resume: the same run as without it, with a
    random pair of the 3 shots per iteration (seeded per stage and iteration); the reference
    runs on the threads executor, the interrupted one on the default: the same numbers."""
    opts = ["output.figures=false", "inversion.shots_per_iteration=2"]
    cfg = load_config(tiny, [f"output.directory={json.dumps(str(tmp_path / 'a'))}", *opts,
                             "executor.kind='threads'", "executor.workers=2"])
    full = workflow.fwi(cfg, progress=False, log=lambda s: None)
    cfg_b = load_config(tiny, [f"output.directory={json.dumps(str(tmp_path / 'b'))}", *opts])

    def ctrl_c_after_three(i, misfit, variables):
        if i == 3:
            raise KeyboardInterrupt

    from jaxseis.fwi import FWIInterrupted

    with pytest.raises(FWIInterrupted, match="after 3 finished"):
        workflow.fwi(cfg_b, progress=False, callback=ctrl_c_after_three, log=lambda s: None)
    assert int(workflow.load_state(tmp_path / "b")["stage"]) == 1
    resumed = workflow.fwi(cfg_b, resume=True, progress=False, log=lambda s: None)
    assert full["shots_per_iteration"] == 2 and resumed["iterations"] == 4
    np.testing.assert_allclose(resumed["misfit_history"], full["misfit_history"], rtol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "b" / "vp_inverted.npy"),
                               np.load(tmp_path / "a" / "vp_inverted.npy"), rtol=1e-5)


def test_rtm_outputs(tiny, tmp_path):
    cfg = load_config(tiny, [f"output.directory={json.dumps(str(tmp_path))}",
                             "preconditioning.water_depth=50"])
    r = workflow.rtm(cfg, log=lambda s: None)
    image, grid = js.io.read_model(r["image"])
    assert grid.shape == (41, 31) and r["parameter"] == "m"
    np.testing.assert_array_equal(image, np.load(r["npy"]))
    assert (tmp_path / "image.png").read_bytes()[:4] == b"\x89PNG"
    # Muted above 50 m; below, the largest |image| is at the top of the disc (x 200 m, depth
    # 75-80 m: the reflector right under the sources).
    assert np.all(image[:, :5] == 0) and np.all(np.isfinite(image))
    ix, iz = np.unravel_index(np.argmax(np.abs(image)), image.shape)
    assert 14 <= ix <= 26 and 5 <= iz <= 9, (ix, iz)


def test_estimate_wavelet_recovers_a_known_wavelet():
    grid = js.Grid((41, 31), (10.0, 10.0))
    t = js.TimeAxis(0.0, 400.0, 1.0)
    op = js.Acoustic(grid, t, space_order=4, nbl=10)
    vp = js.models.camembert(grid, vp_background=2.0, vp_disc=2.5)
    m = 1.0 / vp**2
    src = np.array([[100.0, 20.0], [300.0, 20.0]])
    rec = np.stack([np.linspace(0.0, 400.0, 41), np.full(41, 20.0)], axis=1)
    # A wavelet no Ricker family member equals: two Rickers, scaled and delayed.
    w = 3.0 * np.asarray(js.ricker(t, 0.012, t_peak=110.0)) \
        - 1.5 * np.asarray(js.ricker(t, 0.02, t_peak=140.0))
    d = workflow.simulate(op, m, w, src, rec)
    est = js.estimate_wavelet(op, m, d, src, rec)
    corr = np.corrcoef(w, est)[0, 1]
    rel = np.linalg.norm(est - w) / np.linalg.norm(w)
    print(f"\n[estimate_wavelet] correlation {corr:.5f}, relative error {rel:.4f}")
    assert corr >= 0.99 and rel < 0.1
    near = js.estimate_wavelet(op, m, d, src, rec, max_offset=100.0)
    assert np.corrcoef(w, near)[0, 1] >= 0.99
    # It is the data that decide: the estimate from data of another wavelet is that one.
    w2 = np.asarray(js.ricker(t, 0.01, t_peak=150.0))
    est2 = js.estimate_wavelet(op, m, workflow.simulate(op, m, w2, src, rec), src, rec)
    assert np.corrcoef(w2, est2)[0, 1] >= 0.99 and np.corrcoef(w, est2)[0, 1] < 0.9
    with pytest.raises(js.InvalidArgument, match="`damping`"):
        js.estimate_wavelet(op, m, d, src, rec, damping=0.0)
    with pytest.raises(js.InvalidShape, match="`data` must have shape"):
        js.estimate_wavelet(op, m, d[:, :10], src, rec)


def test_lowpass_removes_high_frequencies():
    t = js.TimeAxis(0.0, 1000.0, 1.0)
    x = t.values
    low, high = np.sin(2 * np.pi * 0.005 * x), np.sin(2 * np.pi * 0.05 * x)
    y = workflow.lowpass((low + high)[:, None], t, 0.02)[:, 0]
    inner = slice(200, 800)
    assert np.max(np.abs(y[inner] - low[inner])) < 0.02
    np.testing.assert_array_equal(workflow.lowpass(high[:, None], t, 0.0)[:, 0],
                                  high.astype(np.float32))


# ----------------------------------------------------------------------------- foreign files
def _segyio_shots(path, data, dt_ms, src, rec):
    """Write shot gathers the way JUDI does (depths positive in the elevation fields, scalar
    -100) with segyio directly."""
    import segyio

    nshots, nt, nrec = data.shape
    spec = segyio.spec()
    spec.samples = np.arange(nt) * dt_ms
    spec.tracecount = nshots * nrec
    spec.format = 5
    tf = segyio.TraceField
    with segyio.create(str(path), spec) as f:
        f.bin.update({segyio.BinField.Interval: int(round(dt_ms * 1000)),
                      segyio.BinField.Samples: nt})
        for i in range(nshots):
            for j in range(nrec):
                k = i * nrec + j
                f.header[k] = {
                    tf.FieldRecord: i + 1, tf.TraceNumber: j + 1,
                    tf.SourceGroupScalar: -100, tf.ElevationScalar: -100,
                    tf.SourceX: int(round(src[i, 0] * 100)), tf.GroupX: int(round(rec[j, 0] * 100)),
                    tf.SourceSurfaceElevation: int(round(src[i, 1] * 100)),
                    tf.ReceiverGroupElevation: int(round(rec[j, 1] * 100)),
                    tf.TRACE_SAMPLE_INTERVAL: int(round(dt_ms * 1000)),
                    tf.TRACE_SAMPLE_COUNT: nt,
                }
                f.trace[k] = np.ascontiguousarray(data[i, :, j], dtype=np.float32)


def _segyio_model(path, vp_m_per_s, dx, dz):
    """A velocity model in m/s as the Marmousi-II SEG-Y stores one: a trace per x node with
    GroupX (scalar -10), the depth step in millimetres in the sample interval."""
    import segyio

    nx, nz = vp_m_per_s.shape
    spec = segyio.spec()
    spec.samples = np.arange(nz) * dz
    spec.tracecount = nx
    spec.format = 5
    tf = segyio.TraceField
    with segyio.create(str(path), spec) as f:
        f.bin.update({segyio.BinField.Interval: int(round(dz * 1000)),
                      segyio.BinField.Samples: nz})
        for i in range(nx):
            f.header[i] = {tf.SourceGroupScalar: -10, tf.GroupX: int(round(i * dx * 10)),
                           tf.SourceX: int(round(i * dx * 10)), tf.TRACE_SAMPLE_COUNT: nz,
                           tf.TRACE_SAMPLE_INTERVAL: int(round(dz * 1000))}
            f.trace[i] = np.ascontiguousarray(vp_m_per_s[i], dtype=np.float32)


def test_foreign_segy_files_read_with_the_right_geometry(tiny, tmp_path):
    """Model and shots written with segyio (JUDI's depth convention, m/s velocities) are read by
    the workflow with the right grid, units and positions; their rtm runs."""
    grid = js.Grid((41, 31), (10.0, 10.0))
    vp = js.models.camembert(grid, vp_background=2.5, vp_disc=3.0)
    _segyio_model(tmp_path / "vp.sgy", 1000.0 * vp, 10.0, 10.0)
    data, t, src, rec = js.io.read_shots(tiny.parent / "data" / "shots.sgy")
    _segyio_shots(tmp_path / "judi.sgy", data, t.dt, src, rec)
    text = (TINY.replace('builtin = "camembert"', 'files = { vp = "vp.sgy" }')
            .replace('[output]\ndirectory = "out"', '[output]\ndirectory = "rtm"')
            .replace("data/shots.sgy", "judi.sgy"))
    (tmp_path / "foreign.toml").write_text(text)
    cfg = load_config(tmp_path / "foreign.toml")
    true, g = workflow.true_model(cfg)
    assert g == grid  # from GroupX, the scalar and the millimetre sample interval
    np.testing.assert_allclose(1.0 / np.sqrt(true["m"]), vp, rtol=1e-6)  # m/s -> km/s -> m
    p = workflow.build_problem(cfg)
    np.testing.assert_allclose(p["src"][:, 0, :], src, atol=1e-6)  # depths below the surface
    np.testing.assert_allclose(p["rec"], rec, atol=1e-6)
    assert src[0, 1] > 0 and rec[0, 1] > 0
    r = workflow.rtm(cfg, log=lambda s: None)
    assert (tmp_path / "rtm" / "image.sgy").exists() and r["shots"] == 3


def test_other_physics_selected_by_name(tmp_path):
    """VariableDensityAcoustic from the config: model keys from its parameters, rho from
    model.values; `model` writes its data."""
    text = (TINY.replace('name = "Acoustic"', 'name = "VariableDensityAcoustic"')
            .replace('spacing = 10.0\n', 'spacing = 10.0\nvalues = { rho = 2.0 }\n', 1)
            .replace("shots = 3", "shots = 1"))
    (tmp_path / "vd.toml").write_text(text)
    cfg = load_config(tmp_path / "vd.toml")
    true, _ = workflow.true_model(cfg)
    assert set(true) == {"m", "rho"} and np.all(true["rho"] == 2.0)
    r = workflow.model(cfg, log=lambda s: None)
    d, _, _, _ = js.io.read_shots(r["data"])
    assert np.all(np.isfinite(d)) and np.abs(d).max() > 0
    with pytest.raises(ConfigError, match=r"no values for parameter `rho`.*model.values.rho"):
        workflow.true_model(load_config(text=text.replace("values = { rho = 2.0 }\n", "")))
    with pytest.raises(ConfigError, match=r"`model.values.qp`.*not a parameter of "
                                          r"VariableDensityAcoustic; valid keys: 'm', 'rho', 'vp'"):
        workflow.true_model(load_config(text=text.replace("rho = 2.0", "rho = 2.0, qp = 3")))


@pytest.mark.parametrize("name, values, keys", [
    ("TTIAcoustic", "epsilon = 0.1, delta = 0.05, theta = 0.3", {"m", "epsilon", "delta", "theta"}),
    ("TTIAcoustic tilt=false", "epsilon = 0.1, delta = 0.05", {"m", "epsilon", "delta"}),
    ("Viscoacoustic", "rho = 1.0, qp = 50.0", {"m", "rho", "qp"}),
    ("Elastic", "vs = 0.0, rho = 1.0", {"vp", "vs", "rho"}),
])
def test_every_physics_models_from_a_config(tmp_path, name, values, keys):
    """Each exported physics from the config: the model has the keys of the grid's dimension
    (TTIAcoustic's 3D-only azimuth is left out in 2D), `model` writes finite, nonzero data."""
    name, _, option = name.partition(" ")
    opts = f"options = {{ {option.replace('=', ' = ')} }}\n" if option else ""
    text = (TINY.replace('name = "Acoustic"\n', f'name = "{name}"\n{opts}')
            .replace('spacing = 10.0\n', f'spacing = 10.0\nvalues = {{ {values} }}\n', 1)
            .replace("shots = 3", "shots = 1"))
    cfg = load_config(text=text)
    true, _ = workflow.true_model(cfg)
    assert set(true) == keys
    cfg = load_config(text=text.replace('files = ["data/shots.sgy"]',
                                        f'files = ["{tmp_path / "shots.sgy"}"]')
                      .replace('directory = "out"', f'directory = "{tmp_path / "out"}"'))
    r = workflow.model(cfg, log=lambda s: None)
    d, _, _, _ = js.io.read_shots(r["data"])
    assert np.all(np.isfinite(d)) and np.abs(d).max() > 0
