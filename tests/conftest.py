"""Shared fixtures: small problems whose operators are built once per test session.

Sizes are chosen so the whole suite runs in minutes on 2 cores: a 41 x 31 grid (10 m) with a thin
damping layer, 0.3 to 0.6 s records.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseis as js


def small_problem(dtype=jnp.float32, free_surface=False, space_order=4, nbl=10, tn=400.0):
    grid = js.Grid((41, 31), (10.0, 10.0))
    time = js.TimeAxis(0.0, tn, 1.0)
    op = js.Acoustic(grid, time, space_order=space_order, nbl=nbl, free_surface=free_surface,
                     dtype=dtype)
    x = np.arange(41) * 10.0
    z = np.arange(31) * 10.0
    vp = 1.5 + 1.0 * z[None, :] / 300.0 + 0.0 * x[:, None]
    vp = vp + 0.3 * np.exp(-((x[:, None] - 200) ** 2 + (z[None, :] - 180) ** 2) / (2 * 40.0**2))
    m = (1.0 / vp**2).astype(np.dtype(dtype))
    src = np.array([[200.0, 25.0]])
    rec = np.stack([np.linspace(5.0, 395.0, 21), np.full(21, 15.0)], axis=1)
    wavelet = np.asarray(js.ricker(time, 0.02), dtype=np.dtype(dtype))
    return dict(op=op, m=m, src=src, rec=rec, wavelet=wavelet, vp=vp)


@pytest.fixture(scope="session")
def problem():
    """float32, absorbing on all sides."""
    return small_problem()


@pytest.fixture(scope="session")
def problem_fs():
    """float32 with a free surface on top."""
    return small_problem(free_surface=True)


@pytest.fixture(scope="session")
def problem64():
    """float64, absorbing on all sides (build inside 64-bit mode; use with `x64`)."""
    with jax.enable_x64(True):
        return small_problem(dtype=jnp.float64)


@pytest.fixture(scope="session")
def problem64_fs():
    """float64 with a free surface on top."""
    with jax.enable_x64(True):
        return small_problem(dtype=jnp.float64, free_surface=True)


@pytest.fixture
def x64():
    """Run the test with 64-bit JAX arrays (for float64 dot tests)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(1234)
