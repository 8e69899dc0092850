"""`jaxseis.VariableDensityAcoustic`: exact adjoints, gradients in `m` and `rho`, the reductions and
the physics of density.

- Dot tests of the three linear pairs (forward/adjoint in the wavelet, born/born_adjoint in the
  joint perturbation `{dm, drho}`, forward_extended/adjoint_extended in the weights): float32
  <= 1e-4, float64 <= 1e-11, with and without a free surface.
- Taylor tests of `jax.grad` w.r.t. `m`, `rho` and both; `born` against central differences in each
  parameter; FWI gradient = `born_adjoint` of the residual.
- Constant density equals `Acoustic` (relative L2 <= 1e-2); a pure density contrast reflects with
  `(rho2 - rho1) / (rho2 + rho1)` at every angle (the reflected field is that coefficient times the
  field of a mirror-image source).
- jit/vmap/grad over dict models against loops; user parametrisations (vp, rho) and
  (impedance, rho) composed in JAX; storage strategies; nn layers; bad inputs.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js
from helpers import check_dot, check_rates, report_taylor, smooth_random
from jaxseis.testing import dot_test, taylor_test

F32_TOL = 1e-4
F64_TOL = 1e-11
SRC2 = np.array([[150.0, 25.0], [263.0, 37.0]])


def vd_problem(dtype=jnp.float32, free_surface=False, tn=350.0):
    grid = js.Grid((41, 31), (10.0, 10.0))
    time = js.TimeAxis(0.0, tn, 1.0)
    op = js.VariableDensityAcoustic(grid, time, space_order=4, nbl=10, free_surface=free_surface,
                                    dtype=dtype)
    x = grid.coordinates(0)[:, None]
    z = grid.coordinates(1)[None, :]
    vp = 1.8 + 0.5 * np.exp(-((x - 200) ** 2 + (z - 180) ** 2) / (2 * 60.0**2)) + 0 * z
    rho = np.clip(1.0 + 1.5 / (1 + np.exp(-(z - 150) / 25)) + 0.2 * np.sin(x / 70), 1.0, 2.5)
    dt = np.dtype(dtype)
    model = {"m": (1.0 / vp**2).astype(dt), "rho": rho.astype(dt)}
    src = np.array([[205.0, 20.0]])
    rec = np.stack([np.linspace(20.0, 380.0, 19), np.full(19, 30.0)], axis=1)
    wavelet = np.asarray(js.ricker(time, 0.015), dtype=dt)
    return dict(op=op, model=model, src=src, rec=rec, wavelet=wavelet, vp=vp, rho=rho)


@pytest.fixture(scope="session")
def vd32():
    return vd_problem()


@pytest.fixture(scope="session")
def vd32_fs():
    return vd_problem(free_surface=True)


@pytest.fixture(scope="session")
def vd64():
    with jax.enable_x64(True):
        return vd_problem(jnp.float64)


@pytest.fixture(scope="session")
def vd64_fs():
    with jax.enable_x64(True):
        return vd_problem(jnp.float64, free_surface=True)


@pytest.fixture(params=["f32", "f32-fs", "f64", "f64-fs"])
def case(request):
    name = {"f32": "vd32", "f32-fs": "vd32_fs", "f64": "vd64", "f64-fs": "vd64_fs"}[request.param]
    p = request.getfixturevalue(name)
    if p["op"].dtype == np.float64:
        with jax.enable_x64(True):
            yield p, F64_TOL
    else:
        yield p, F32_TOL


def _perturbation(p, rng, scale=0.05):
    op, model = p["op"], p["model"]
    return {k: (scale * np.mean(model[k]) * smooth_random(rng, op.grid.shape)).astype(op.dtype)
            for k in ("m", "rho")}


# ------------------------------------------------------------------------------------ dot tests
def test_dot_forward_adjoint(case):
    p, tol = case
    op = p["op"]
    check_dot("forward/adjoint", p, tol, SRC2, _perturbation, f"vd {op.dtype.name} fs={op.free_surface}")


def test_dot_born(case):
    p, tol = case
    op = p["op"]
    check_dot("born/born_adjoint", p, tol, SRC2, _perturbation, f"vd {op.dtype.name} fs={op.free_surface}")


def test_dot_extended(case):
    p, tol = case
    op = p["op"]
    check_dot("extended", p, tol, SRC2, _perturbation, f"vd {op.dtype.name} fs={op.free_surface}")


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
def test_taylor(vd64, x64, which):
    p = vd64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    dx = _directions(p, which)
    a = 5.0  # observed data from model - a dx (see tests/test_gradient.py)
    d_obs = op.forward({k: model[k] - a * dx[k] for k in model}, w, src, rec)

    def loss(mm):
        return 0.5 * jnp.sum((op.forward(mm, w, src, rec) - d_obs) ** 2)

    x0 = {k: jnp.asarray(v) for k, v in model.items()}
    res = taylor_test(loss, x0, {k: jnp.asarray(v) for k, v in dx.items()}, h0=1.0, n=5)
    report_taylor(f"variable density wrt {'+'.join(which)}, float64", res)
    check_rates(res)


def test_taylor_float32_free_surface(vd32_fs):
    p = vd32_fs
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    dx = _directions(p, ("m", "rho"))
    d_obs = op.forward({k: model[k] - 5.0 * dx[k] for k in model}, w, src, rec)

    def loss(mm):
        return 0.5 * jnp.sum((op.forward(mm, w, src, rec) - d_obs) ** 2)

    # float32: steps 2 .. 0.25 keep the second-order remainder above the loss's round-off
    res = taylor_test(loss, model, dx, h0=2.0, n=4)
    report_taylor("variable density wrt m+rho, float32, free surface", res)
    check_rates(res)


@pytest.mark.parametrize("key", ["m", "rho"])
def test_born_is_the_derivative(vd64, x64, key):
    """Central differences of `forward` converge to `born` at second order (ratio 4 per halving)."""
    p = vd64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    dx = _directions(p, (key,))
    jd = np.asarray(op.born(model, dx, w, src, rec))
    errs = []
    for h in (1.0, 0.5, 0.25):
        fp = op.forward({k: model[k] + h * dx[k] for k in model}, w, src, rec)
        fm = op.forward({k: model[k] - h * dx[k] for k in model}, w, src, rec)
        cd = (np.asarray(fp) - np.asarray(fm)) / (2 * h)
        errs.append(np.linalg.norm(cd - jd) / np.linalg.norm(jd))
    ratios = [errs[i] / errs[i + 1] for i in range(2)]
    print(f"\n[vd born vs central differences in {key}] errors {errs}, ratios {ratios}")
    assert all(3.8 < r < 4.2 for r in ratios)


def test_fwi_gradient_is_born_adjoint_of_residual(vd64, x64):
    p = vd64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    m0 = {k: v * (1 - 0.02 * _bumps(op, 1.0)) for k, v in model.items()}
    d_obs = op.forward(model, w, src, rec)
    g = jax.grad(lambda mm: 0.5 * jnp.sum((op.forward(mm, w, src, rec) - d_obs) ** 2))(m0)
    img = op.born_adjoint(m0, op.forward(m0, w, src, rec) - d_obs, w, src, rec)
    assert set(g) == set(img) == {"m", "rho"}
    for k in g:
        rel = float(jnp.max(jnp.abs(g[k] - img[k])) / jnp.max(jnp.abs(img[k])))
        print(f"  grad[{k}] vs born_adjoint: {rel:.2e}")
        assert rel < 1e-12


@pytest.mark.parametrize("name, tol", [("vd32", 5e-6), ("vd64", 1e-12)])
def test_gradient_of_one_parameter_images_only_it(request, name, tol):
    """jax.grad w.r.t. `m` alone (rho held fixed by closure) returns the m-gradient of the joint
    gradient. The two come from two adjoint operators compiled separately (one images m only), and
    Devito may order their float32 sums differently: 1.1e-6 of the maximum measured in float32
    (hence 5e-6), 0 in float64 (held to 1e-12)."""
    p = request.getfixturevalue(name)
    with jax.enable_x64(name == "vd64"):
        op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
        d_obs = op.forward({"m": model["m"] * 1.02, "rho": model["rho"]}, w, src, rec)

        def loss(mm):
            return 0.5 * jnp.sum((op.forward(mm, w, src, rec) - d_obs) ** 2)

        joint = jax.grad(loss)(model)
        only_m = jax.grad(lambda m: loss({"m": m, "rho": model["rho"]}))(model["m"])
        np.testing.assert_allclose(np.asarray(only_m), np.asarray(joint["m"]), rtol=0,
                                   atol=tol * float(jnp.max(jnp.abs(joint["m"]))))


# ------------------------------------------------------------------------------------ physics
@pytest.mark.parametrize("fs", [False, True], ids=["absorbing", "free-surface"])
def test_constant_density_reduces_to_acoustic(fs):
    p = vd_problem(free_surface=fs)
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    ac = js.Acoustic(op.grid, op.time, space_order=op.space_order, nbl=op.nbl, free_surface=fs)
    d_ac = np.asarray(ac.forward(model["m"], w, src, rec))
    errs = []
    for r in (1.0, 1.7):
        d = np.asarray(op.forward({"m": model["m"], "rho": np.full_like(model["rho"], r)}, w, src,
                                  rec))
        errs.append(np.linalg.norm(d - d_ac) / np.linalg.norm(d_ac))
    print(f"\n[vd constant rho vs Acoustic fs={fs}] rel L2 rho=1.0 {errs[0]:.3e} rho=1.7 {errs[1]:.3e}")
    assert max(errs) <= 1e-2
    assert abs(errs[0] - errs[1]) < 1e-5  # a constant density cancels


def test_density_contrast_reflection_coefficient():
    """Same velocity on both sides of a horizontal interface: the reflection is angle-independent
    with coefficient (rho2 - rho1) / (rho2 + rho1): the reflected field equals that coefficient times
    the field of the mirror-image source."""
    grid = js.Grid((121, 71), 10.0)
    time = js.TimeAxis(0.0, 519.0, 1.0)
    op = js.VariableDensityAcoustic(grid, time, space_order=4, nbl=40)
    iz = 35  # rho1 at rows <= iz, rho2 below: the interface is at (iz + 1/2) h
    zi = (iz + 0.5) * 10.0
    zsrc, zrec = 205.0, 155.0
    rec = np.stack([np.linspace(100, 1100, 51), np.full(51, zrec)], axis=1)
    rho1, rho2 = 1.0, 2.5
    coeff = (rho2 - rho1) / (rho2 + rho1)
    m = np.full(grid.shape, 1 / 2.0**2, np.float32)
    rho = np.full(grid.shape, rho1, np.float32)
    rho[:, iz + 1:] = rho2
    w = js.ricker(time, 0.012)
    hom = {"m": m, "rho": np.full(grid.shape, rho1, np.float32)}
    fwd = jax.jit(jax.vmap(op.forward, in_axes=(0, None, 0, None)))
    models = {k: np.stack([v, hom[k], hom[k]]) for k, v in {"m": m, "rho": rho}.items()}
    srcs = np.array([[[600.0, zsrc]], [[600.0, zsrc]], [[600.0, 2 * zi - zsrc]]])
    d_int, d_hom, d_img = np.asarray(fwd(models, w, srcs, rec))
    refl = d_int - d_hom
    err = np.linalg.norm(refl - coeff * d_img) / np.linalg.norm(coeff * d_img)
    r_trace = np.sum(refl * d_img, 0) / np.sum(d_img**2, 0)
    offsets = rec[:, 0] - 600.0
    angles = np.degrees(np.arctan2(np.abs(offsets), (zi - zsrc) + (zi - zrec)))
    print(f"\n[density reflection] R={coeff:.4f}: rel L2 error {err:.3e}; least-squares R per "
          f"trace {r_trace.min():.4f}..{r_trace.max():.4f} over angles 0..{angles.max():.0f} deg")
    assert err < 0.1
    assert np.all(np.abs(r_trace / coeff - 1) < 0.02)


# ------------------------------------------------------------------------------------ transforms
def test_jit_vmap_grad_over_dict_models_match_loops(vd32):
    p = vd32
    op, model, rec, w = p["op"], p["model"], p["rec"], p["wavelet"]
    srcs = jnp.array([[[120.0, 20.0]], [[205.0, 20.0]], [[300.0, 20.0]]])
    models = {k: np.stack([v, v * 1.01, v * 0.99]) for k, v in model.items()}
    batched = jax.jit(jax.vmap(op.forward, in_axes=(0, None, 0, None)))(models, w, srcs, rec)
    for i in range(3):
        one = op.forward({k: v[i] for k, v in models.items()}, w, srcs[i], rec)
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(one), rtol=0, atol=1e-6)
    d_obs = jax.vmap(op.forward, in_axes=(None, None, 0, None))(model, w, srcs, rec)
    m0 = {"m": model["m"] * 1.02, "rho": model["rho"] * 0.98}

    def loss(mm):
        d = jax.vmap(op.forward, in_axes=(None, None, 0, None))(mm, w, srcs, rec)
        return 0.5 * jnp.sum((d - d_obs) ** 2)

    g = jax.jit(jax.grad(loss))(m0)
    looped = [jax.grad(lambda mm, s=s, d=d: 0.5 * jnp.sum((op.forward(mm, w, s, rec) - d) ** 2))(m0)
              for s, d in zip(srcs, d_obs)]
    for k in ("m", "rho"):
        ref = sum(np.asarray(gi[k], np.float64) for gi in looped)
        np.testing.assert_allclose(np.asarray(g[k]), ref, rtol=0,
                                   atol=2e-5 * np.max(np.abs(ref)))


@pytest.mark.parametrize("param", ["vp", "impedance"])
def test_user_parametrisations_compose(vd64, x64, param):
    """(vp, rho) or (impedance, rho) -> (m, rho) in JAX: jax.grad applies the chain rule to the
    adjoint-state gradient, and a Taylor test in the user's parameters passes."""
    p = vd64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    vp, rho = jnp.asarray(p["vp"]), jnp.asarray(p["rho"])
    if param == "vp":
        to_model = lambda a, r: {"m": 1.0 / a**2, "rho": r}  # noqa: E731
        x0 = (vp, rho)
    else:
        to_model = lambda z, r: {"m": (r / z) ** 2, "rho": r}  # noqa: E731
        x0 = (vp * rho, rho)
    d_obs = op.forward(model, w, src, rec)
    x0 = (x0[0] * (1 + 0.03 * _bumps(op, 1.0)), x0[1] * (1 - 0.03 * _bumps(op, 1.0, (260, 120))))

    def loss(x):
        return 0.5 * jnp.sum((op.forward(to_model(*x), w, src, rec) - d_obs) ** 2)

    g = jax.grad(loss)(x0)
    gm = jax.grad(lambda mm: 0.5 * jnp.sum((op.forward(mm, w, src, rec) - d_obs) ** 2))(
        to_model(*x0))
    _, vjp = jax.vjp(to_model, *x0)
    ref = vjp(gm)
    for a, b in zip(g, ref):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12,
                                   atol=1e-12 * float(jnp.max(jnp.abs(b))))
    dx = (0.02 * x0[0] * _bumps(op, 1.0, (200, 150)), 0.02 * x0[1] * _bumps(op, 1.0, (150, 200)))
    res = taylor_test(loss, x0, dx, h0=1.0, n=4)
    report_taylor(f"({param}, rho) parametrisation", res)
    assert abs(res.rate2 - 2.0) < 0.2


# ------------------------------------------------------------------------------------ storage
def test_storage_strategies(vd64, x64):
    p = vd64
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    d_obs = op.forward(model, w, src, rec)
    m0 = {"m": model["m"] * 1.02, "rho": model["rho"] * 0.97}

    def grad(o):
        return jax.grad(lambda mm: 0.5 * jnp.sum((o.forward(mm, w, src, rec) - d_obs) ** 2))(m0)

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
    assert op.gradient_bytes(js.Checkpointed()) < op.gradient_bytes() / 3


# ------------------------------------------------------------------------------------ layers
def test_nn_layers_take_dict_models(vd32):
    p = vd32
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    fwd = js.nn.Forward(op, w, src, rec)
    np.testing.assert_array_equal(np.asarray(fwd(model)), np.asarray(op.forward(model, w, src, rec)))
    born = js.nn.Born(op, model, w, src, rec)
    rng = np.random.default_rng(7)
    dx = _perturbation(p, rng)
    y = rng.standard_normal(born.data_shape).astype(np.float32)
    err, _, _ = dot_test(born, born.T, dx, y)
    assert err < F32_TOL
    assert set(born.T(y)) == {"m", "rho"}
    assert "rho" in repr(born)


# ------------------------------------------------------------------------------------ errors
def test_bad_models(vd32):
    p = vd32
    op, model, src, rec, w = p["op"], p["model"], p["src"], p["rec"], p["wavelet"]
    cases = {
        "missing rho": ({"m": model["m"]}, js.InvalidArgument, ["missing 'rho'", "'m'", "'rho'"]),
        "extra key": ({**model, "vs": model["m"]}, js.InvalidArgument, ["unknown 'vs'"]),
        "array": (model["m"], js.InvalidType, ["dict", "'rho'"]),
        "rho zero": ({**model, "rho": np.where(np.arange(41)[:, None] == 3, 0.0, model["rho"])},
                     js.InvalidArgument, ["`rho`", "positive", "31 of 1271 cells"]),
        "rho NaN": ({**model, "rho": np.full(op.grid.shape, np.nan, np.float32)},
                    js.InvalidArgument, ["`rho`", "finite"]),
        "rho shape": ({**model, "rho": model["rho"][:-1]}, js.InvalidShape, ["rho", "(41, 31)"]),
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
    with pytest.raises(js.InvalidArgument, match="dmodel"):
        op.born(model, {"m": model["m"]}, w, src, rec)


def test_stability_limit_is_respected(vd32):
    """At the reported critical dt a strong density contrast stays bounded; the limit is below
    the homogeneous one there (the effective speed of the staggered operator)."""
    p = vd32
    op, model = p["op"], p["model"]
    sharp = {"m": model["m"], "rho": np.where(np.arange(31)[None, :] > 15, 2.5, 1.0) + 0 * model["m"]}
    dtc = op.critical_dt(sharp)
    dth = js.critical_dt(op.grid, float(1 / np.sqrt(model["m"].min())), op.space_order)
    print(f"\n  critical dt: sharp density contrast {dtc:.4f} ms, homogeneous formula {dth:.4f} ms")
    assert dtc < dth * 1.0
    time = js.TimeAxis(0.0, 1500.0, 0.99 * dtc)
    op2 = dataclasses.replace(op, time=time)
    d = op2.forward({k: v.astype(np.float32) for k, v in sharp.items()},
                    js.ricker(time, 0.015), p["src"], p["rec"])
    assert bool(jnp.all(jnp.isfinite(d))) and float(jnp.max(jnp.abs(d[-100:]))) < 10 * float(
        jnp.max(jnp.abs(d)))


@pytest.mark.parametrize("shape", [(23, 19), (9, 8, 7)])
def test_quick_stability_certificate_bounds_the_limit(shape):
    """`check_model` skips the per-node Gershgorin bound when `eigen_bound_max` (extrema of
    `rho / m` and `rho` alone) already shows dt stable: that bound is never below the per-node
    one (strong contrasts and near-homogeneous media), equals it in a homogeneous medium, and a
    dt just above the limit is not certified."""
    from jaxseis.physics.variable_density import eigen_bound, eigen_bound_max

    grid = js.Grid(shape, (10.0,) * len(shape))
    op = js.VariableDensityAcoustic(grid, js.TimeAxis(0.0, 100.0, 1.0), space_order=4, nbl=4)
    rng = np.random.default_rng(len(shape))
    for k in range(8):
        if k < 4:
            model = {"m": 1 / rng.uniform(1.5, 4.5, shape) ** 2, "rho": rng.uniform(1.0, 3.0, shape)}
        else:
            model = {"m": 0.16 * (1 + 0.01 * rng.standard_normal(shape)),
                     "rho": 2.0 * (1 + 0.01 * rng.standard_normal(shape))}
        full = eigen_bound(grid.spacing, 4, model).max()
        assert eigen_bound_max(grid.spacing, 4, model) >= full * (1 - 1e-12)
        assert not op._certainly_stable(model, 1.0001 * op.critical_dt(model))
    hom = {"m": np.full(shape, 0.16), "rho": np.full(shape, 2.0)}
    assert eigen_bound_max(grid.spacing, 4, hom) == pytest.approx(
        eigen_bound(grid.spacing, 4, hom).max(), rel=1e-12)
    assert op._certainly_stable(hom, 0.999 * op.critical_dt(hom))
