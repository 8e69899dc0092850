"""Rows padded to whole cache lines (jaxseis/devito/_layout.py).

jaxseis's Devito functions are allocated with their innermost axis padded to a multiple of 64
bytes. This changes where rows start in memory and nothing else: the tests check the layout, that
forward data and gradients are bit-identical to the unpadded layout (acoustic and the staggered
elastic fields, 2D and 3D), that the memory estimates count the padding, and that Devito's
process-wide setting is restored, even on error.
"""

import numpy as np
import pytest
from devito import Grid, TimeFunction, configuration

import jaxseis as js
from jaxseis._storage import Checkpointed, Subsampled
from jaxseis.devito import _layout
from jaxseis.devito._kernel import components
from jaxseis.devito._solver import Solver
from jaxseis.devito._store import nbytes_of


def _op(physics, ndim, dtype, free_surface=False):
    shape = (23, 19) if ndim == 2 else (11, 10, 9)
    grid = js.Grid(shape, (10.0,) * ndim)
    time = js.TimeAxis(0.0, 60.0, 1.0)
    if physics == "acoustic":
        op = js.Acoustic(grid, time, space_order=8, nbl=5, dtype=dtype)
        model = np.full(shape, 1 / 2.0**2)
        model[..., shape[-1] // 2:] = 1 / 2.5**2
    elif physics == "visco":
        op = js.Viscoacoustic(grid, time, space_order=4, nbl=5, dtype=dtype,
                              free_surface=free_surface)
        model = {"m": np.full(shape, 1 / 2.0**2), "rho": np.full(shape, 1.8),
                 "qp": np.full(shape, 30.0)}
        model["m"][..., shape[-1] // 2:] = 1 / 2.5**2
    else:
        op = js.Elastic(grid, time, space_order=4, nbl=5, dtype=dtype, free_surface=free_surface)
        model = {"vp": np.full(shape, 2.0), "vs": np.full(shape, 1.1),
                 "rho": np.full(shape, 1.8)}
        model["vp"][..., shape[-1] // 2:] = 2.5
    return op, model


def _grid_functions(solver):
    """Every pooled runtime function of a solver with a spatial axis (not the sparse ones)."""
    out = []
    for objs in solver._pool.values():
        for f in objs:
            for c in getattr(f, "values", lambda: [f])():
                if getattr(c, "grid", None) is not None and not c.is_SparseFunction \
                        and len(c.shape_allocated) >= 2:
                    out.append(c)
    return out


def _run(op, model, monkeypatch, aligned, storage=None):
    monkeypatch.setenv("JAXSEIS_ALIGNED_ROWS", "1" if aligned else "0")
    s = Solver(op.solver_config)
    ext = [(n - 1) * 10.0 for n in op.grid.shape]
    src = np.array([[e / 2 for e in ext[:-1]] + [20.0]])
    rec = np.array([[0.37 * ext[0] * (1 + i)] + [e / 3 for e in ext[1:-1]] + [10.0]
                    for i in range(2)])
    nt = op.time.nt
    q = np.asarray(js.ricker(op.time, 0.03), dtype=s.dtype).reshape(nt, 1)
    d = s.forward(model, op.time.dt, nt, rec, src=src, q=q)
    save = True if storage is None else storage
    d_save, hist = s.forward(model, op.time.dt, nt, rec, src=src, q=q, save=save)
    np.testing.assert_array_equal(np.asarray(d_save), np.asarray(d))
    checkpointed = isinstance(storage, Checkpointed)
    # the snapshots, counted before the backward sweep consumes them
    held = sum(a.nbytes for snap in (hist.snapshots or {}).values() for levels in snap.values()
               for a in levels)
    assert (held > 0) == checkpointed
    source = dict(src=src, q=q) if checkpointed else None
    wrt = ("m", "rho") if "qp" in s.parameters else None  # qp has no gradient
    g = s.adjoint(model, op.time.dt, nt, rec, d_save, u=hist, source=source, wrt=wrt)["grad"]
    # the memory estimate (`wavefield_bytes`, `gradient_bytes`, the store's budget) is what the
    # history allocates, row padding included, as NumPy really holds it: a checkpointed history
    # holds its snapshots and, while a block is reversed, that block's saved fields (back in the
    # solver's pool after the sweep)
    if checkpointed:
        fields = [c for key, objs in s._pool.items() if key[0] == "useg" for f in objs
                  for c in components(f)]
    else:
        fields = [c for f in hist.fields.values() for c in components(f)]
    assert fields
    for c in fields:
        assert c._data_allocated.nbytes == nbytes_of(c), c.name
    held += sum(c._data_allocated.nbytes for c in fields)
    assert held == s.saved_bytes(nt, storage) == hist.nbytes
    s.store.release(hist)
    return s, d, g


def _assert_same_results(d1, g1, d0, g0):
    """Bit-identical, non-zero data and gradients (a bare gradient array is `m`'s)."""
    assert np.abs(np.asarray(d1)).max() > 0
    np.testing.assert_array_equal(np.asarray(d1), np.asarray(d0))
    g1 = g1 if isinstance(g1, dict) else {"m": g1}
    g0 = g0 if isinstance(g0, dict) else {"m": g0}
    assert g1.keys() == g0.keys()
    for k in g1:
        assert np.abs(g1[k]).max() > 0, k
        np.testing.assert_array_equal(g1[k], g0[k])


@pytest.mark.parametrize("physics,ndim,dtype", [
    ("acoustic", 2, np.float32), ("acoustic", 3, np.float64), ("elastic", 2, np.float32)])
def test_padded_rows_change_no_result(physics, ndim, dtype, monkeypatch):
    op, model = _op(physics, ndim, dtype)
    s1, d1, g1 = _run(op, model, monkeypatch, aligned=True)
    s0, d0, g0 = _run(op, model, monkeypatch, aligned=False)
    # the two solvers really hold different layouts: rows of whole cache lines, and Devito's own
    padded, plain = _grid_functions(s1), _grid_functions(s0)
    assert padded and plain
    itemsize = np.dtype(dtype).itemsize
    for f in padded:
        row = f.shape_allocated[-1] * itemsize
        # whole cache lines, by no more than one line (float64 rows counted in float64 items)
        assert row % 64 == 0 and row - f.shape_with_halo[-1] * itemsize < 64, f.name
        assert f._data_allocated.nbytes == nbytes_of(f), f.name
    assert any(f.shape_allocated[-1] * itemsize % 64 for f in plain)
    _assert_same_results(d1, g1, d0, g0)


@pytest.mark.parametrize("physics,free_surface,storage", [
    ("acoustic", False, Checkpointed(n_checkpoints=2, block_steps=24)),
    ("acoustic", False, Subsampled(4)),
    ("visco", True, None),
    ("elastic", True, None)])
def test_padded_rows_storages_and_free_surface(physics, free_surface, storage, monkeypatch):
    """Checkpointed and subsampled histories, and a free surface (its own boundary loops), in
    both layouts: the same data and gradients, and the memory estimates what each allocates."""
    op, model = _op(physics, 2, np.float32, free_surface=free_surface)
    _, d1, g1 = _run(op, model, monkeypatch, aligned=True, storage=storage)
    _, d0, g0 = _run(op, model, monkeypatch, aligned=False, storage=storage)
    _assert_same_results(d1, g1, d0, g0)


def test_aligned_rows_false_forces_devitos_layout():
    """`aligned_rows(False)` allocates unpadded even where the process pads by default, and puts
    that default back."""
    grid = Grid(shape=(13, 11))
    before = configuration["autopadding"]
    try:
        configuration["autopadding"] = True
        with _layout.aligned_rows(False):
            f = TimeFunction(name="lay_off", grid=grid, space_order=4)
        assert f.shape_allocated == f.shape_with_halo
        assert configuration["autopadding"] is np.float32  # Devito's spelling of True
        with _layout.aligned_rows(True, dtype=np.float64):
            g = TimeFunction(name="lay_f64", grid=grid, space_order=4, dtype=np.float64)
        assert g.shape_allocated[-1] * 8 % 64 == 0
        assert g.shape_allocated[-1] - g.shape_with_halo[-1] < 8
    finally:
        configuration["autopadding"] = before


def test_aligned_rows_restores_devitos_setting(monkeypatch):
    monkeypatch.setenv("JAXSEIS_ALIGNED_ROWS", "1")
    grid = Grid(shape=(13, 11))
    before = configuration["autopadding"]
    with _layout.aligned_rows():
        f = TimeFunction(name="lay_u", grid=grid, space_order=4)
    assert configuration["autopadding"] == before
    assert f.shape_allocated[-1] * 4 % 64 == 0 and f.shape[-1] == 11
    plain = TimeFunction(name="lay_v", grid=grid, space_order=4)  # outside: Devito's default
    assert plain.shape_allocated == plain.shape_with_halo
    with pytest.raises(RuntimeError):
        with _layout.aligned_rows():
            raise RuntimeError("boom")
    assert configuration["autopadding"] == before
    monkeypatch.setenv("JAXSEIS_ALIGNED_ROWS", "0")
    assert not _layout.enabled()
    with _layout.aligned_rows():
        off = TimeFunction(name="lay_w", grid=grid, space_order=4)
    assert off.shape_allocated == off.shape_with_halo
