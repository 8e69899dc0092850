"""`jaxseis.Viscoacoustic`: exact adjoints, gradients in `m` and `rho`, the refusal of `qp`
derivatives, the reduction to `VariableDensityAcoustic` and the attenuation it models.

- Dot tests of the three linear pairs (forward/adjoint, born/born_adjoint in `{dm, drho, dqp=0}`,
  forward_extended/adjoint_extended): float32 <= 1e-4, float64 <= 1e-11, with and without a free
  surface; a tiny 3D case in float64.
- Taylor tests of `jax.grad` w.r.t. `m`, `rho` and both; `born` against central differences; FWI
  gradient = `born_adjoint` of the residual; `qp` derivatives refused by name.
- `qp = 1e6` equals `VariableDensityAcoustic` (relative L2 <= 1e-2).
- Physics: on a homogeneous model the spectral ratio between two distances (against the same ratio
  without attenuation) gives back `qp` near the reference frequency within 20 %; lower `qp`, lower
  amplitudes.
- Storage strategies (Checkpointed = FullStorage to round-off: the memory variable is restored),
  jit/vmap/grad, nn layers, bad inputs (qp <= 0, NaN, a qp too small for dt).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from helpers import (bandlimited_wavelets, check_dot, check_rates, report_taylor,
                     smooth_random)
from jaxseis.testing import dot_test, taylor_test

F32_TOL = 1e-4
F64_TOL = 1e-11
SRC2 = np.array([[150.0, 25.0], [263.0, 37.0]])


def visco_problem(dtype=jnp.float32, free_surface=False, tn=350.0):
    grid = js.Grid((41, 31), (10.0, 10.0))
    time = js.TimeAxis(0.0, tn, 1.0)
    op = js.Viscoacoustic(grid, time, space_order=4, nbl=10, free_surface=free_surface,
                          dtype=dtype, reference_frequency=0.015)
    x = grid.coordinates(0)[:, None]
    z = grid.coordinates(1)[None, :]
    vp = 1.8 + 0.5 * np.exp(-((x - 200) ** 2 + (z - 180) ** 2) / (2 * 60.0**2)) + 0 * z
    rho = np.clip(1.0 + 1.5 / (1 + np.exp(-(z - 150) / 25)) + 0.2 * np.sin(x / 70), 1.0, 2.5)
    # a gas-like low-Q blob in a Q ~ 40 background
    qp = 40.0 + 10 * np.sin(x / 90) - 30.0 * np.exp(-((x - 250) ** 2 + (z - 120) ** 2)
                                                    / (2 * 50.0**2))
    dt = np.dtype(dtype)
    model = {"m": (1.0 / vp**2).astype(dt), "rho": rho.astype(dt), "qp": qp.astype(dt)}
    src = np.array([[205.0, 20.0]])
    rec = np.stack([np.linspace(20.0, 380.0, 19), np.full(19, 30.0)], axis=1)
    wavelet = np.asarray(js.ricker(time, 0.015), dtype=dt)
    return {"op": op, "model": model, "src": src, "rec": rec, "wavelet": wavelet, "vp": vp,
            "rho": rho, "qp": qp}


@pytest.fixture(scope="session")
def vq32():
    return visco_problem()


@pytest.fixture(scope="session")
def vq32_fs():
    return visco_problem(free_surface=True)


@pytest.fixture(scope="session")
def vq64():
    with jax.enable_x64(True):
        return visco_problem(jnp.float64)


@pytest.fixture(scope="session")
def vq64_fs():
    with jax.enable_x64(True):
        return visco_problem(jnp.float64, free_surface=True)


@pytest.fixture(params=["f32", "f32-fs", "f64", "f64-fs"])
def case(request):
    name = {"f32": "vq32", "f32-fs": "vq32_fs", "f64": "vq64", "f64-fs": "vq64_fs"}[request.param]
    p = request.getfixturevalue(name)
    if p["op"].dtype == np.float64:
        with jax.enable_x64(True):
            yield p, F64_TOL
    else:
        yield p, F32_TOL


def _perturbation(p, rng, scale=0.05):
    op, model = p["op"], p["model"]
    d = {k: (scale * np.mean(model[k]) * smooth_random(rng, op.grid.shape)).astype(op.dtype)
         for k in ("m", "rho")}
    d["qp"] = np.zeros(op.grid.shape, op.dtype)
    return d


def _fixed_qp(model):
    """The model as a function of (m, rho) with qp held fixed (qp has no derivative)."""
    return lambda mr: {"m": mr["m"], "rho": mr["rho"], "qp": model["qp"]}


# ------------------------------------------------------------------------------------ dot tests
def test_dot_forward_adjoint(case):
    p, tol = case
    op = p["op"]
    check_dot("forward/adjoint", p, tol, SRC2, _perturbation, f"visco {op.dtype.name} fs={op.free_surface}")


def test_dot_born(case):
    p, tol = case
    op = p["op"]
    check_dot("born/born_adjoint", p, tol, SRC2, _perturbation, f"visco {op.dtype.name} fs={op.free_surface}")


def test_dot_extended(case):
    p, tol = case
    op = p["op"]
    check_dot("extended", p, tol, SRC2, _perturbation, f"visco {op.dtype.name} fs={op.free_surface}")


def test_dot_tests_3d(x64):
    grid = js.Grid((21, 21, 21), 10.0)
    time = js.TimeAxis(0.0, 120.0, 1.0)
    op = js.Viscoacoustic(grid, time, space_order=4, nbl=4, dtype=jnp.float64)
    z = grid.coordinates(2)[None, None, :]
    model = {"m": np.broadcast_to(1 / 2.0**2 + 0.02 * z / 200, grid.shape).copy(),
             "rho": np.broadcast_to(1.5 + 0.5 * z / 200, grid.shape).copy(),
             "qp": np.full(grid.shape, 15.0)}
    src = np.array([[100.0, 100.0, 40.0]])
    rec = np.array([[40.0 + 12 * i, 60.0 + 9 * i, 30.0] for i in range(10)])
    w = js.ricker(time, 0.03).astype(jnp.float64)
    rng = np.random.default_rng(8)
    y = rng.standard_normal(op.data_shape(10))
    errs = [dot_test(lambda q: op.forward(model, q, src, rec),
                     lambda d: op.adjoint(model, d, src, rec),
                     bandlimited_wavelets(rng, np.asarray(w), 1), y)[0]]
    dx = {"m": 0.01 * smooth_random(rng, grid.shape), "rho": 0.1 * smooth_random(rng, grid.shape),
          "qp": np.zeros(grid.shape)}
    errs.append(dot_test(lambda dm: op.born(model, dm, w, src, rec),
                         lambda d: op.born_adjoint(model, d, w, src, rec), dx, y)[0])
    print(f"\n[visco 3D dot tests float64] forward/adjoint {errs[0]:.2e}, born {errs[1]:.2e}")
    assert max(errs) <= F64_TOL


# ------------------------------------------------------------------------------------ gradients
def _bumps(op, amplitude, centre=(130.0, 170.0)):
    x = op.grid.coordinates(0)[:, None]
    z = op.grid.coordinates(1)[None, :]
    return amplitude * (np.exp(-((x - centre[0]) ** 2 + (z - centre[1]) ** 2) / (2 * 30.0**2))
                        - 0.7 * np.exp(-((x - 280.0) ** 2 + (z - 200.0) ** 2) / (2 * 30.0**2)))


def _directions(p, which):
    op, model = p["op"], p["model"]
    dm = {"m": _bumps(op, 0.03) * model["m"], "rho": _bumps(op, 0.05, (260.0, 120.0)) * model["rho"]}
    return {k: (dm[k] if k in which else np.zeros(op.grid.shape)).astype(op.dtype) for k in dm}


@pytest.mark.parametrize("which", [("m",), ("rho",), ("m", "rho")], ids=["m", "rho", "both"])
def test_taylor(vq64, x64, which):
    p = vq64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    full = _fixed_qp(model)
    dx = _directions(p, which)
    a = 5.0
    d_obs = op.forward(full({k: model[k] - a * dx[k] for k in dx}), w, src, rec)

    def loss(mr):
        return 0.5 * jnp.sum((op.forward(full(mr), w, src, rec) - d_obs) ** 2)

    x0 = {k: jnp.asarray(model[k]) for k in dx}
    res = taylor_test(loss, x0, {k: jnp.asarray(v) for k, v in dx.items()}, h0=1.0, n=5)
    report_taylor(f"viscoacoustic wrt {'+'.join(which)}, float64", res)
    check_rates(res)


def test_taylor_float32_free_surface(vq32_fs):
    p = vq32_fs
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    full = _fixed_qp(model)
    dx = _directions(p, ("m", "rho"))
    d_obs = op.forward(full({k: model[k] - 5.0 * dx[k] for k in dx}), w, src, rec)

    def loss(mr):
        return 0.5 * jnp.sum((op.forward(full(mr), w, src, rec) - d_obs) ** 2)

    res = taylor_test(loss, {k: model[k] for k in dx}, dx, h0=2.0, n=4)
    report_taylor("viscoacoustic wrt m+rho, float32, free surface", res)
    check_rates(res)


@pytest.mark.parametrize("key", ["m", "rho"])
def test_born_is_the_derivative(vq64, x64, key):
    """Central differences of `forward` converge to `born` at second order (ratio 4 per halving)."""
    p = vq64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    full = _fixed_qp(model)
    dx = _directions(p, (key,))
    jd = np.asarray(op.born(model, {**dx, "qp": np.zeros(op.grid.shape)}, w, src, rec))
    errs = []
    for h in (1.0, 0.5, 0.25):
        fp = op.forward(full({k: model[k] + h * dx[k] for k in dx}), w, src, rec)
        fm = op.forward(full({k: model[k] - h * dx[k] for k in dx}), w, src, rec)
        cd = (np.asarray(fp) - np.asarray(fm)) / (2 * h)
        errs.append(np.linalg.norm(cd - jd) / np.linalg.norm(jd))
    ratios = [errs[i] / errs[i + 1] for i in range(2)]
    print(f"\n[visco born vs central differences in {key}] errors {errs}, ratios {ratios}")
    assert all(3.8 < r < 4.2 for r in ratios)


def test_fwi_gradient_is_born_adjoint_of_residual(vq64, x64):
    p = vq64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    full = _fixed_qp(model)
    m0 = {k: model[k] * (1 - 0.02 * _bumps(op, 1.0)) for k in ("m", "rho")}
    d_obs = op.forward(model, w, src, rec)
    g = jax.grad(lambda mr: 0.5 * jnp.sum((op.forward(full(mr), w, src, rec) - d_obs) ** 2))(m0)
    img = op.born_adjoint(full(m0), op.forward(full(m0), w, src, rec) - d_obs, w, src, rec)
    assert set(g) == {"m", "rho"} and set(img) == {"m", "rho", "qp"}
    assert not np.any(np.asarray(img["qp"]))  # the exact adjoint of born on dqp = 0
    for k in g:
        rel = float(jnp.max(jnp.abs(g[k] - img[k])) / jnp.max(jnp.abs(img[k])))
        print(f"  grad[{k}] vs born_adjoint: {rel:.2e}")
        assert rel < 1e-12


def test_qp_derivatives_are_refused_by_name(vq32):
    p = vq32
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    d_obs = op.forward(model, w, src, rec)

    def loss(mm):
        return 0.5 * jnp.sum((op.forward(mm, w, src, rec) - d_obs) ** 2)

    with pytest.raises(NotImplementedError, match="`qp`"):
        jax.grad(loss)(model)
    with pytest.raises(NotImplementedError, match="`qp`"):
        jax.grad(lambda q: loss({**model, "qp": q}))(model["qp"])
    with pytest.raises(NotImplementedError, match="`qp`"):
        jax.jvp(lambda q: op.forward({**model, "qp": q}, w, src, rec), (model["qp"],),
                (jnp.ones_like(model["qp"]),))
    # stop_gradient on qp: the gradient w.r.t. m and rho of the full dict
    g = jax.grad(lambda mm: loss({**mm, "qp": jax.lax.stop_gradient(mm["qp"])}))(
        {**model, "m": model["m"] * 1.01})
    assert float(jnp.max(jnp.abs(g["m"]))) > 0 and not np.any(np.asarray(g["qp"]))
    # born: a nonzero dqp is refused eagerly and under jit (checked on the host)
    dm = {"m": 0.01 * model["m"], "rho": 0 * model["rho"], "qp": 0 * model["qp"]}
    assert float(jnp.max(jnp.abs(op.born(model, dm, w, src, rec)))) > 0
    bad = {**dm, "qp": jnp.ones_like(model["qp"])}
    with pytest.raises(NotImplementedError, match=r"dmodel\['qp'\] must be zero"):
        op.born(model, bad, w, src, rec)
    with pytest.raises(Exception, match=r"dmodel\['qp'\] must be zero"):
        jax.jit(lambda d: op.born(model, d, w, src, rec))(bad)
    np.testing.assert_array_equal(
        np.asarray(jax.jit(lambda d: op.born(model, d, w, src, rec))(dm)),
        np.asarray(op.born(model, dm, w, src, rec)))


# ------------------------------------------------------------------------------------ physics
@pytest.mark.parametrize("fs", [False, True], ids=["absorbing", "free-surface"])
def test_large_qp_reduces_to_variable_density(fs):
    p = visco_problem(free_surface=fs)
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    vd = js.VariableDensityAcoustic(op.grid, op.time, space_order=op.space_order, nbl=op.nbl,
                                    free_surface=fs)
    d_vd = np.asarray(vd.forward({"m": model["m"], "rho": model["rho"]}, w, src, rec))
    d = np.asarray(op.forward({**model, "qp": np.full_like(model["qp"], 1e6)}, w, src, rec))
    d_q = np.asarray(op.forward(model, w, src, rec))
    err = np.linalg.norm(d - d_vd) / np.linalg.norm(d_vd)
    err_q = np.linalg.norm(d_q - d_vd) / np.linalg.norm(d_vd)
    print(f"\n[visco qp=1e6 vs VariableDensityAcoustic fs={fs}] rel L2 {err:.3e} "
          f"(qp ~ 10..50: {err_q:.3f})")
    assert err <= 1e-2
    assert err_q > 10 * err  # attenuation is visible at these qp


@pytest.fixture(scope="module")
def q_line():
    """Homogeneous medium (vp 2 km/s, rho 1), source and two receivers on a line; records for
    several qp (one vmapped call) and without attenuation."""
    grid = js.Grid((131, 41), 10.0)
    time = js.TimeAxis(0.0, 900.0, 1.0)
    f0 = 0.015
    op = js.Viscoacoustic(grid, time, space_order=8, nbl=40, reference_frequency=f0)
    src = np.array([[150.0, 200.0]])
    rec = np.array([[450.0, 200.0], [1150.0, 200.0]])
    qps = np.array([10.0, 20.0, 60.0, 1e6])
    shape = grid.shape
    models = {"m": np.full((len(qps),) + shape, 0.25, np.float32),
              "rho": np.ones((len(qps),) + shape, np.float32),
              "qp": (np.ones((len(qps),) + shape) * qps[:, None, None]).astype(np.float32)}
    w = js.ricker(time, f0)
    d = np.asarray(jax.vmap(op.forward, in_axes=(0, None, None, None))(models, w, src, rec))
    return {"op": op, "qps": qps, "data": d, "f0": f0, "dist": (300.0, 1000.0), "vp": 2.0}


def test_spectral_ratio_recovers_qp(q_line):
    """ln(A2/A1) against the same ratio without attenuation is -pi f (r2 - r1) / (vp Q): the
    least-squares 1/Q over 0.6 f0 .. 1.6 f0 (a range where the SLS Q(f) stays within 12 % of qp)."""
    p = q_line
    dt = p["op"].time.dt
    nt = p["data"].shape[1]
    freqs = np.fft.rfftfreq(4 * nt, d=dt)
    spec = np.abs(np.fft.rfft(p["data"], n=4 * nt, axis=1))  # (nq, nf, 2)
    band = (freqs >= 0.6 * p["f0"]) & (freqs <= 1.6 * p["f0"])
    ratio_ref = spec[-1, :, 1] / spec[-1, :, 0]
    dtt = (p["dist"][1] - p["dist"][0]) / p["vp"]
    out = {}
    for i, q in enumerate(p["qps"][:-1]):
        y = np.log(spec[i, band, 1] / spec[i, band, 0] / ratio_ref[band])
        x = -np.pi * freqs[band] * dtt
        inv_q = float(np.sum(x * y) / np.sum(x * x))
        out[float(q)] = 1.0 / inv_q
    print(f"\n[visco spectral ratio] recovered Q {out}")
    for q, qr in out.items():
        assert abs(qr / q - 1) < 0.2, (q, qr)


def test_lower_qp_gives_lower_amplitudes(q_line):
    p = q_line
    peaks = np.abs(p["data"]).max(axis=1)  # (nq, 2)
    print(f"\n[visco peak amplitudes] qp {p['qps'].tolist()}: near {peaks[:, 0].tolist()}, "
          f"far {peaks[:, 1].tolist()}")
    for j in range(2):
        assert np.all(np.diff(peaks[:, j]) > 0)
    # the far receiver loses more than the near one
    assert peaks[0, 1] / peaks[-1, 1] < peaks[0, 0] / peaks[-1, 0]


# ------------------------------------------------------------------------------------ transforms
def test_jit_vmap_grad_over_dict_models_match_loops(vq32):
    p = vq32
    op, model, rec, w = p["op"], p["model"], p["rec"], p["wavelet"]
    srcs = jnp.array([[[120.0, 20.0]], [[205.0, 20.0]], [[300.0, 20.0]]])
    models = {k: np.stack([v, v * 1.01, v * 0.99]) for k, v in model.items()}
    batched = jax.jit(jax.vmap(op.forward, in_axes=(0, None, 0, None)))(models, w, srcs, rec)
    with js.executor("threads", workers=2):  # the shots of one batch run concurrently
        threaded = jax.vmap(op.forward, in_axes=(0, None, 0, None))(models, w, srcs, rec)
    np.testing.assert_array_equal(np.asarray(threaded), np.asarray(batched))
    for i in range(3):
        one = op.forward({k: v[i] for k, v in models.items()}, w, srcs[i], rec)
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(one), rtol=0, atol=1e-6)
    d_obs = jax.vmap(op.forward, in_axes=(None, None, 0, None))(model, w, srcs, rec)
    full = _fixed_qp(model)
    m0 = {"m": model["m"] * 1.02, "rho": model["rho"] * 0.98}

    def loss(mr):
        d = jax.vmap(op.forward, in_axes=(None, None, 0, None))(full(mr), w, srcs, rec)
        return 0.5 * jnp.sum((d - d_obs) ** 2)

    g = jax.jit(jax.grad(loss))(m0)
    looped = [jax.grad(lambda mr, s=s, d=d: 0.5 * jnp.sum(
        (op.forward(full(mr), w, s, rec) - d) ** 2))(m0) for s, d in zip(srcs, d_obs)]
    for k in ("m", "rho"):
        ref = sum(np.asarray(gi[k], np.float64) for gi in looped)
        np.testing.assert_allclose(np.asarray(g[k]), ref, rtol=0,
                                   atol=2e-5 * np.max(np.abs(ref)))


# ------------------------------------------------------------------------------------ storage
def test_storage_strategies(vq64, x64):
    """The memory variable is part of the checkpointed state: Checkpointed gives the FullStorage
    gradient to round-off (also with blocks that do not start at a memory-variable slot 0)."""
    p = vq64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    # checkpoints keep 3 levels per block start: u at k and k - 1, and the memory variable r
    assert op.solver.layout().levels == 3 and op.solver.ctx.specs["r"].role == "state"
    d_obs = op.forward(model, w, src, rec)
    full = _fixed_qp(model)
    m0 = {"m": model["m"] * 1.02, "rho": model["rho"] * 0.97}

    def grad(o):
        return jax.grad(lambda mr: 0.5 * jnp.sum((o.forward(full(mr), w, src, rec) - d_obs) ** 2))(
            m0)

    ref = grad(op)
    for storage in (js.Checkpointed(), js.Checkpointed(2, block_steps=12)):
        g = grad(dataclasses.replace(op, storage=storage))
        for k in ref:
            diff = float(jnp.max(jnp.abs(g[k] - ref[k])) / jnp.max(jnp.abs(ref[k])))
            print(f"  {storage!r} grad[{k}] vs FullStorage: {diff:.1e}")
            assert diff < 1e-12
    g = grad(dataclasses.replace(op, storage=js.Subsampled(2)))
    for k in ref:
        rel = float(jnp.linalg.norm(g[k] - ref[k]) / jnp.linalg.norm(ref[k]))
        print(f"  Subsampled(2) grad[{k}] vs FullStorage: rel L2 {rel:.2e}")
        assert rel < 0.05


def test_nn_layers_take_dict_models(vq32):
    p = vq32
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    born = js.nn.Born(op, model, w, src, rec)
    rng = np.random.default_rng(7)
    dx = _perturbation(p, rng)
    y = rng.standard_normal(born.data_shape).astype(np.float32)
    err, _, _ = dot_test(born, born.T, dx, y)
    assert err < F32_TOL
    assert set(born.T(y)) == {"m", "rho", "qp"}


def test_shot_tasks_pickle_for_dask(vq32):
    """What a Dask worker receives (the per-shot task with its operator) survives pickling, with
    the physics option, and solves the same shot."""
    import pickle

    from jaxseis.devito import _tasks

    p = vq32
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    task = pickle.loads(pickle.dumps(_tasks.ForwardShot(op, "point", False, False)))
    assert task.op == op and task.op.reference_frequency == 0.015
    q = np.broadcast_to(np.asarray(w)[:, None], (op.time.nt, 1))
    item = (*[model[k] for k in op.names], q, src, rec)
    np.testing.assert_array_equal(task(item)[0], np.asarray(op.forward(model, w, src, rec)))


# ------------------------------------------------------------------------------------ errors
def test_bad_models(vq32):
    p = vq32
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    cases = {
        "missing qp": ({k: model[k] for k in ("m", "rho")}, js.InvalidArgument,
                       ["missing 'qp'", "'qp' (1)"]),
        "qp zero": ({**model, "qp": np.where(np.arange(41)[:, None] == 3, 0.0, model["qp"])},
                    js.InvalidArgument, ["`qp`", "quality factor", "positive", "31 of 1271"]),
        "qp negative": ({**model, "qp": -model["qp"]}, js.InvalidArgument, ["`qp`", "positive"]),
        "qp NaN": ({**model, "qp": np.full(op.grid.shape, np.nan, np.float32)},
                   js.InvalidArgument, ["`qp`", "finite"]),
        "qp inf": ({**model, "qp": np.full(op.grid.shape, np.inf, np.float32)},
                   js.InvalidArgument, ["`qp`", "finite"]),
        "rho NaN": ({**model, "rho": np.full(op.grid.shape, np.nan, np.float32)},
                    js.InvalidArgument, ["`rho`", "finite"]),
        "fast": ({**model, "m": model["m"] * 0.01}, js.UnstableTimeStep, ["`dt`", "stability"]),
    }
    for name, (bad, err, fragments) in cases.items():
        with pytest.raises(err) as info:
            op.forward(bad, w, src, rec)
        msg = str(info.value)
        print(f"  {name}: {msg}")
        assert isinstance(info.value, js.JaxseisError)
        for frag in fragments:
            assert frag in msg, (name, msg)
    for f0 in (0.0, -1.0, float("nan"), "10"):
        with pytest.raises(js.InvalidArgument, match="reference_frequency"):
            js.Viscoacoustic(op.grid, op.time, reference_frequency=f0)


def test_small_qp_is_refused_for_dt_or_stable(vq32):
    """A qp too small for dt raises UnstableTimeStep naming qp and the smallest stable qp; just
    above that value (and at the critical dt of a very small qp) the data stay bounded."""
    p = vq32
    op, model, src, rec = p["op"], p["model"], p["src"], p["rec"]
    time = js.TimeAxis(0.0, 1200.0, 0.97 * op.critical_dt({k: model[k] for k in model}
                                                          | {"qp": np.full(op.grid.shape, 1e6)}))
    op2 = dataclasses.replace(op, time=time)
    w = js.ricker(time, 0.015)
    base = {"m": model["m"], "rho": model["rho"]}
    with pytest.raises(js.UnstableTimeStep) as info:
        op2.forward({**base, "qp": np.full(op.grid.shape, 2.0, np.float32)}, w, src, rec)
    msg = str(info.value)
    print(f"\n  {msg}")
    assert "`qp`" in msg and "qp >= " in msg
    qmin = float(msg.split("qp >= ")[1].split()[0])
    assert 2.0 < qmin < 50
    d = op2.forward({**base, "qp": np.full(op.grid.shape, 1.01 * qmin, np.float32)}, w, src, rec)
    assert bool(jnp.all(jnp.isfinite(d)))
    assert float(jnp.max(jnp.abs(d[-200:]))) < float(jnp.max(jnp.abs(d)))
    # a very small qp at its own critical dt is stable too
    tiny = {**base, "qp": np.full(op.grid.shape, 0.5, np.float32)}
    dtc = op.critical_dt(tiny)
    assert dtc < 0.5 * op.critical_dt({**base, "qp": np.full(op.grid.shape, 1e6)})
    time3 = js.TimeAxis(0.0, 1200.0, 0.99 * dtc)
    op3 = dataclasses.replace(op, time=time3)
    d = op3.forward(tiny, js.ricker(time3, 0.015), src, rec)
    assert bool(jnp.all(jnp.isfinite(d)))


def test_quick_stability_certificate_bounds_the_limit():
    """The extrema-only certificate (`eigen_bound_max` times the smallest qp's `1 + tau`) never
    certifies a dt above `critical_dt`, and certifies a homogeneous medium just below it."""
    shape = (23, 19)
    grid = js.Grid(shape, (10.0, 10.0))
    op = js.Viscoacoustic(grid, js.TimeAxis(0.0, 100.0, 1.0), space_order=4, nbl=4)
    rng = np.random.default_rng(5)
    for _ in range(6):
        model = {"m": 1 / rng.uniform(1.5, 4.5, shape) ** 2, "rho": rng.uniform(1.0, 3.0, shape),
                 "qp": rng.uniform(0.5, 100.0, shape)}
        assert not op._certainly_stable(model, 1.0001 * op.critical_dt(model))
    hom = {"m": np.full(shape, 0.16), "rho": np.full(shape, 2.0), "qp": np.full(shape, 3.0)}
    assert op._certainly_stable(hom, 0.999 * op.critical_dt(hom))
    assert not op._certainly_stable(hom, 1.001 * op.critical_dt(hom))
