"""jaxseis.models: presets, smoothing, random training models, conversions."""

import math

import numpy as np
import pytest

import jaxseis as js
from jaxseis import models

GRID = js.Grid((41, 31), (10.0, 10.0))


def _total_variation(a):
    return sum(np.abs(np.diff(a, axis=k)).sum() for k in range(a.ndim))


def test_constant():
    vp = models.constant(GRID, 2.0)
    assert vp.shape == GRID.shape and vp.dtype == np.float32
    assert np.all(vp == np.float32(2.0))
    with pytest.raises(js.InvalidArgument, match="`vp`"):
        models.constant(GRID, -1.0)
    with pytest.raises(js.InvalidType, match="`grid`"):  # also a TypeError
        models.constant((41, 31), 2.0)


def test_layered_interfaces():
    vels = (1.5, 2.0, 3.0)
    vp = models.layered(GRID, vels, depths=(95.0, 200.0))
    z = GRID.coordinates(1)
    expected = np.where(z < 95.0, 1.5, np.where(z < 200.0, 2.0, 3.0))
    np.testing.assert_array_equal(vp, np.broadcast_to(expected.astype(np.float32), GRID.shape))
    # A node exactly on an interface belongs to the layer below.
    assert models.layered(GRID, vels, depths=(100.0, 200.0))[0, 10] == np.float32(2.0)
    # Default: equal thickness layers, laterally invariant, top and bottom velocities present.
    vd = models.layered(GRID)
    assert np.all(vd == vd[:1]) and vd[0, 0] == np.float32(1.5) and vd[0, -1] == np.float32(3.0)
    assert np.all(np.diff(vd[0]) >= 0) and len(np.unique(vd)) == 4
    with pytest.raises(js.InvalidShape, match="`depths`.*2 interface"):
        models.layered(GRID, vels, depths=(100.0,))
    with pytest.raises(js.InvalidArgument, match="strictly increasing"):
        models.layered(GRID, vels, depths=(200.0, 100.0))
    with pytest.raises(js.InvalidArgument, match=r"velocities\[1\]"):
        models.layered(GRID, (1.5, 0.0, 2.0))


def test_camembert_disc_and_sphere():
    vp = models.camembert(GRID, vp_background=2.5, vp_disc=3.0, radius=80.0, center=(200.0, 150.0))
    x, z = np.meshgrid(GRID.coordinates(0), GRID.coordinates(1), indexing="ij")
    r = np.hypot(x - 200.0, z - 150.0)
    assert np.all(vp[r <= 80.0] == np.float32(3.0))
    assert np.all(vp[r > 80.0] == np.float32(2.5))
    assert (r <= 80.0).sum() > 150  # the disc covers ~pi * 8^2 nodes
    # Default centre is the grid centre, so the model is symmetric.
    vd = models.camembert(GRID)
    np.testing.assert_array_equal(vd, vd[::-1, ::-1])
    g3 = js.Grid((21, 19, 17), 10.0)
    v3 = models.camembert(g3, radius=50.0)
    assert v3.shape == g3.shape
    assert v3[10, 9, 8] == np.float32(3.0) and v3[0, 0, 0] == np.float32(2.5)
    inside = (v3 == np.float32(3.0)).sum()
    assert abs(inside - 4 / 3 * np.pi * 5**3) / inside < 0.1  # a sphere of radius 5 nodes
    with pytest.raises(js.InvalidArgument, match="`radius`"):
        models.camembert(GRID, radius=0.0)
    with pytest.raises(js.InvalidShape, match="`center`"):
        models.camembert(GRID, center=(1.0, 2.0, 3.0))


def test_smooth():
    c = models.constant(GRID, 2.3)
    np.testing.assert_allclose(models.smooth(c, 50.0, GRID), c, rtol=1e-6)
    vp = models.camembert(GRID, radius=60.0)
    sm = models.smooth(vp, 30.0, GRID)
    assert sm.shape == vp.shape and sm.dtype == np.float32
    assert _total_variation(sm) < 0.8 * _total_variation(vp)
    # A weighted average stays within the range.
    assert vp.min() <= sm.min() and sm.max() <= vp.max()
    assert np.array_equal(vp, models.camembert(GRID, radius=60.0))  # input untouched
    # sigma in metres: the same physical sigma on a grid twice as fine gives the same profile.
    fine = js.Grid((81, 61), (5.0, 5.0))
    smf = models.smooth(models.camembert(fine, radius=60.0), 30.0, fine)
    np.testing.assert_allclose(smf[::2, ::2], sm, atol=0.02)
    # Per-axis sigma and the spacing form of `grid`: sigma 0 leaves that axis alone.
    lay = models.layered(GRID)
    np.testing.assert_allclose(models.smooth(lay, (100.0, 0.0), 10.0), lay, rtol=1e-6)
    # A smoothed step follows the erf profile centred between the nodes at 150 m and 160 m.
    step = models.smooth(models.layered(GRID, (1.0, 3.0), depths=(155.0,)), (0.0, 20.0), GRID)
    z = GRID.coordinates(1)
    erf = np.vectorize(math.erf)
    erf_profile = 1.0 + 2.0 * 0.5 * (1.0 + erf((z - 155.0) / (20.0 * math.sqrt(2))))
    np.testing.assert_allclose(step[0, 5:26], erf_profile[5:26], atol=0.01)
    with pytest.raises(js.InvalidArgument, match="`grid` is required"):
        models.smooth(vp, 30.0)
    with pytest.raises(js.InvalidArgument, match="`sigma_m`"):
        models.smooth(vp, -1.0, GRID)
    with pytest.raises(js.InvalidShape, match="`grid` has shape"):
        models.smooth(vp, 10.0, js.Grid((40, 31), 10.0))


def test_random_model_deterministic_bounded_varied():
    grid = js.Grid((61, 41), (10.0, 10.0))
    a = models.random_model(7, grid, vmin=1.6, vmax=3.2)
    b = models.random_model(7, grid, vmin=1.6, vmax=3.2)
    c = models.random_model(8, grid, vmin=1.6, vmax=3.2)
    assert a.shape == grid.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert models.random_model(np.random.default_rng(7), grid).shape == grid.shape
    for seed in range(20):
        v = models.random_model(seed, grid, vmin=1.6, vmax=3.2, n_layers=(3, 6))
        assert v.min() >= np.float32(1.6) and v.max() <= np.float32(3.2)
        assert 1 <= len(np.unique(v)) <= 6
    # A JAX key works and is deterministic too.
    import jax

    k = jax.random.PRNGKey(3)
    np.testing.assert_array_equal(models.random_model(k, grid), models.random_model(k, grid))
    np.testing.assert_array_equal(models.random_model(jax.random.key(3), grid),
                                  models.random_model(k, grid))


def test_random_model_structure():
    grid = js.Grid((61, 41), (10.0, 10.0))
    # Without fold and fault the layers are flat: every column is identical.
    flat = models.random_model(5, grid, fold=False, fault=False, n_layers=4)
    assert np.all(flat == flat[:1])
    assert len(np.unique(flat)) <= 4
    # With folding the interfaces move laterally in most models.
    folded = [models.random_model(s, grid, fault=False) for s in range(10)]
    lateral = [np.any(v != v[:1]) for v in folded]
    assert sum(lateral) >= 8
    # 3D works.
    g3 = js.Grid((15, 13, 11), 10.0)
    v3 = models.random_model(0, g3)
    assert v3.shape == g3.shape and 1.5 <= v3.min() and v3.max() <= 3.5
    with pytest.raises(js.InvalidArgument, match="`vmax` must be >= `vmin`"):
        models.random_model(0, grid, vmin=3.0, vmax=2.0)
    with pytest.raises(js.InvalidArgument, match="`n_layers`"):
        models.random_model(0, grid, n_layers=(5, 2))


def test_conversions_roundtrip():
    vp = models.random_model(1, GRID)
    m = models.to_slowness2(vp)
    np.testing.assert_allclose(m, 1.0 / vp.astype(float) ** 2, rtol=1e-6)
    np.testing.assert_allclose(models.to_velocity(m), vp, rtol=1e-6)
    assert m.dtype == np.float32
    assert models.to_slowness2(vp, dtype=np.float64).dtype == np.float64
    with pytest.raises(js.InvalidArgument, match="`vp`"):
        models.to_slowness2(np.array([1.0, 0.0]))
    with pytest.raises(js.InvalidArgument, match="`m`"):
        models.to_velocity(np.array([0.4, np.nan]))


def test_bad_types_are_jaxseis_errors():
    for call, name in [(lambda: models.layered(GRID, ("fast", "slow")), "`velocities`"),
                       (lambda: models.smooth("abc", 10.0, GRID), "`vp`"),
                       (lambda: models.to_velocity([["x"]]), "`m`"),
                       (lambda: models.random_model(True, GRID), "`key_or_seed`"),
                       (lambda: models.random_model("seed", GRID), "`key_or_seed`")]:
        with pytest.raises(js.InvalidType) as e:
            call()
        assert isinstance(e.value, TypeError) and str(e.value).startswith(name), e.value


def test_marmousi():
    vp, grid = models.marmousi()  # 30 m
    assert isinstance(grid, js.Grid) and grid.spacing == (30.0, 30.0) and grid.origin == (0.0, 0.0)
    assert vp.shape == grid.shape == (401, 101) and vp.dtype == np.float32
    assert grid.extent == (12000.0, 3000.0)
    assert 1.0 <= vp.min() and vp.max() <= 4.7 + 1e-6
    np.testing.assert_allclose(vp[:, :5], 1.5, atol=1e-6)  # water on top (about 200 m)
    assert vp[:, -1].mean() > 3.5  # fast at depth
    full, g = models.marmousi(7.5)  # the shipped sampling, to 1 m/s
    assert full.shape == (1601, 401) and g.spacing == (7.5, 7.5)
    assert full.min() == pytest.approx(1.028, abs=1e-6) and full.max() == pytest.approx(4.7)
    np.testing.assert_allclose(vp.mean(), full.mean(), rtol=2e-3)  # smoothing keeps the mean
    v2, g2 = models.marmousi((15.0, 25.0), antialias=False, dtype=np.float64)
    assert g2.shape == (801, 121) and v2.dtype == np.float64
    np.testing.assert_allclose(v2[:, ::3], full[::2, ::10], atol=1e-12)  # common nodes: exact
    with pytest.raises(js.InvalidArgument, match=r"^`spacing` must be >= 7.5 m"):
        models.marmousi(5.0)
    with pytest.raises(js.InvalidShape, match="`spacing`"):
        models.marmousi((30.0, 30.0, 30.0))
