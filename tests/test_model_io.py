"""jaxseis.io.read_model / write_model: round trips in every format, foreign layouts (Devito raw,
SEP / Fortran, JUDI HDF5 written by hand in Julia's convention), and clear errors on bad files."""

import os

import h5py
import numpy as np
import pytest
import segyio

import jaxseis as js
from jaxseis import io

G2 = js.Grid(shape=(7, 5), spacing=(12.5, 7.5), origin=(100.0, 3.0))
G3 = js.Grid(shape=(4, 3, 5), spacing=(10.0, 20.0, 5.0), origin=(-50.0, 25.0, 0.0))


def _model(grid, seed=0):
    return np.random.default_rng(seed).uniform(1.5, 4.5, grid.shape).astype(np.float32)


@pytest.mark.parametrize("grid", [G2, G3], ids=["2d", "3d"])
@pytest.mark.parametrize("ext", [".sgy", ".npz", ".h5", ".npy", ".bin"])
def test_roundtrip(tmp_path, grid, ext):
    a = _model(grid)
    path = tmp_path / f"model{ext}"
    io.write_model(path, a, grid)
    stored = ext in (".sgy", ".npz", ".h5")  # npy and raw carry no grid
    kw = {} if stored else dict(spacing=grid.spacing, origin=grid.origin)
    if ext == ".bin":
        kw["shape"] = grid.shape
    b, g = io.read_model(path, **kw)
    assert b.dtype == np.float32 and b.shape == grid.shape
    np.testing.assert_array_equal(b, a)
    assert g == grid
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".jaxseis-")]  # no temp files


def test_segy_headers_for_other_readers(tmp_path):
    """Without jaxseis's textual header the grid comes from the trace headers."""
    grid = js.Grid(shape=(6, 4), spacing=(25.0, 7.5), origin=(1000.0, 15.0))
    a = _model(grid)
    path = tmp_path / "m.sgy"
    io.write_model(path, a, grid)
    tf = segyio.TraceField
    with segyio.open(path, ignore_geometry=True) as f:
        assert f.bin[segyio.BinField.Interval] == 7500  # depth spacing in millimetres
        h = f.header[2]
        assert h[tf.GroupX] / -h[tf.SourceGroupScalar] == pytest.approx(1050.0)
        assert h[tf.DelayRecordingTime] == 15
        np.testing.assert_array_equal(f.trace[2], a[2])
    with segyio.open(path, "r+", ignore_geometry=True) as f:  # wipe the jaxseis lines
        f.text[0] = segyio.tools.create_text_header({1: "someone else's model"})
    b, g = io.read_model(path)
    np.testing.assert_array_equal(b, a)
    assert g.shape == grid.shape
    np.testing.assert_allclose(g.spacing, grid.spacing)
    np.testing.assert_allclose(g.origin, grid.origin)
    b, g = io.read_model(path, spacing=(5.0, 2.0))  # keywords override the headers
    assert g.spacing == (5.0, 2.0) and g.origin == (1000.0, 15.0)


def test_segy_3d_foreign_order(tmp_path):
    """A 3D SEG-Y written by segyio directly, traces crossline-major: sorted by inline/crossline."""
    nx, ny, nz = 3, 2, 4
    a = np.arange(nx * ny * nz, dtype=np.float32).reshape(nx, ny, nz)
    spec = segyio.spec()
    spec.samples = np.arange(nz) * 2.0
    spec.tracecount = nx * ny
    spec.format = 5
    tf = segyio.TraceField
    path = tmp_path / "cube.segy"
    with segyio.create(path, spec) as f:
        f.bin.update({segyio.BinField.Interval: 2000})
        k = 0
        for j in range(ny):
            for i in range(nx):
                f.header[k] = {tf.INLINE_3D: 10 + i, tf.CROSSLINE_3D: 5 + j,
                               tf.SourceGroupScalar: -100, tf.CDP_X: 100 * (20 * i),
                               tf.CDP_Y: 100 * (500 + 40 * j)}
                f.trace[k] = a[i, j]
                k += 1
    b, g = io.read_model(path)
    np.testing.assert_array_equal(b, a)
    assert g.shape == (3, 2, 4) and g.spacing == (20.0, 40.0, 2.0)
    assert g.origin == (0.0, 500.0, 0.0)


def test_raw_layouts_devito_and_sep(tmp_path):
    """Devito's vp_marmousi_bi layout (x slow, depth fast) and the equivalent SEP/Fortran and
    depth-major descriptions."""
    nx, nz = 6, 4
    a = (np.arange(nx)[:, None] * 10 + np.arange(nz)[None, :]).astype(np.float32)  # a[x, z]
    devito = tmp_path / "vp_bi"  # no extension: raw because shape= is given
    a.astype("<f4").tofile(devito)
    b, g = io.read_model(devito, shape=(nx, nz), spacing=7.5)
    np.testing.assert_array_equal(b, a)
    assert g.spacing == (7.5, 7.5)
    # The same bytes described as Fortran (nz, nx) with depth first (SEP n1 = depth).
    b, _ = io.read_model(devito, shape=(nz, nx), order="F", axes=("z", "x"), spacing=7.5)
    np.testing.assert_array_equal(b, a)
    # Depth-major: one depth slice after the other, big-endian float64.
    dm = tmp_path / "depth_major.bin"
    np.ascontiguousarray(a.T).astype(">f8").tofile(dm)
    b, _ = io.read_model(dm, shape=(nz, nx), axes=("z", "x"), file_dtype=">f8", spacing=5.0)
    np.testing.assert_array_equal(b, a)
    io.write_model(tmp_path / "w.bin", a, js.Grid((nx, nz), 5.0), axes=("z", "x"),
                   file_dtype=">f8")
    assert (tmp_path / "w.bin").read_bytes() == dm.read_bytes()
    # 3D Fortran order with the default axes: x fastest.
    a3 = _model(G3)
    p3 = tmp_path / "c.raw"
    a3.ravel(order="F").astype("<f4").tofile(p3)
    b, _ = io.read_model(p3, shape=G3.shape, order="F", spacing=G3.spacing)
    np.testing.assert_array_equal(b, a3)


def test_judi_hdf5_written_by_hand(tmp_path):
    """A file as JUDI writes it from Julia (`h5write` of n, d, o, m, m0): the Julia (nx, nz)
    array appears as (nz, nx) in h5py; `m` is squared slowness and stays so."""
    nx, nz = 5, 3
    vp = 1.5 + np.arange(nx)[:, None] * 0.1 + np.arange(nz)[None, :] * 0.5  # [x, z]
    m, m0 = 1.0 / vp**2, np.full((nx, nz), 1.0 / 1.5**2)
    path = tmp_path / "judi_model.h5"
    with h5py.File(path, "w") as f:
        f["n"] = np.array([nx, nz], dtype=np.int64)
        f["d"] = np.array([12.5, 10.0])
        f["o"] = np.array([0.0, 5.0])
        f["m"] = m.T  # column-major Julia array, C-order on disk: (nz, nx)
        f["m0"] = m0.T
    b, g = io.read_model(path, key="m")
    assert b.shape == (nx, nz)
    np.testing.assert_allclose(b, m, rtol=1e-6)  # still squared slowness, in [x, z]
    assert g == js.Grid((nx, nz), (12.5, 10.0), (0.0, 5.0))
    b0, _ = io.read_model(path, key="m0", dtype=np.float64)
    np.testing.assert_array_equal(b0, m0)
    with pytest.raises(js.InvalidArgument, match=r"judi_model.h5.*several.*'m'.*'m0'.*`key=`"):
        io.read_model(path)
    with pytest.raises(js.InvalidArgument, match=r"judi_model.h5.*no dataset 'vp'.*'m', 'm0'"):
        io.read_model(path, key="vp")
    with pytest.raises(js.InvalidShape, match=r"order='C'.*\(3, 5\).*`n` says \(5, 3\)"):
        io.read_model(path, key="m", order="C")
    # jaxseis writes the same layout.
    io.write_model(tmp_path / "w.h5", m.astype(np.float32), g)
    with h5py.File(tmp_path / "w.h5") as f:
        assert f["m"].shape == (nz, nx) and list(f["n"][()]) == [nx, nz]
        np.testing.assert_allclose(f["m"][()], m.T, rtol=1e-6)


def test_npz_keys_and_missing_spacing(tmp_path):
    a = _model(G2)
    path = tmp_path / "two.npz"
    np.savez(path, vp=a, rho=a * 0.5)
    with pytest.raises(js.InvalidArgument,
                       match=r"^`.*two.npz` holds several arrays \('vp', 'rho'\)"):
        io.read_model(path, spacing=10.0)
    with pytest.raises(js.InvalidArgument, match=r"two.npz.*no grid spacing.*`spacing=`"):
        io.read_model(path, key="rho")
    b, g = io.read_model(path, key="rho", spacing=(1.0, 2.0))
    np.testing.assert_array_equal(b, a * 0.5)
    assert g.spacing == (1.0, 2.0) and g.origin == (0.0, 0.0)
    np.save(tmp_path / "a.npy", a)
    with pytest.raises(js.InvalidArgument, match=r"^`.*a.npy` holds no grid spacing"):
        io.read_model(tmp_path / "a.npy")


def test_bad_files(tmp_path):
    a = _model(G2)
    raw = tmp_path / "m.bin"
    a.tofile(raw)
    with pytest.raises(js.InvalidArgument,
                       match=r"^`.*m.bin` has 140 bytes but shape \(7, 6\) of <f4 .* needs 168"):
        io.read_model(raw, shape=(7, 6), spacing=1.0)
    with pytest.raises(js.InvalidArgument, match=r"m.bin.*needs `shape=`"):
        io.read_model(raw)
    with pytest.raises(js.InvalidArgument, match=r"`axes`.*\('z', 'x'\)"):
        io.read_model(raw, shape=(7, 5), axes=("x", "y"), spacing=1.0)
    # Truncated SEG-Y.
    sgy = tmp_path / "m.sgy"
    io.write_model(sgy, a, G2)
    size = os.path.getsize(sgy)
    with open(sgy, "r+b") as fh:
        fh.truncate(size - 7)
    with pytest.raises(js.InvalidArgument, match=r"^`.*m.sgy` is truncated or corrupt.*6 complete"):
        io.read_model(sgy)
    with open(sgy, "r+b") as fh:  # at a trace boundary: the textual header tells
        fh.truncate(3600 + 3 * (240 + 4 * 5))
    with pytest.raises(js.InvalidArgument, match=r"m.sgy.*truncated.*shape \(7, 5\).*found 3"):
        io.read_model(sgy)
    # SEG-Y with no coordinates.
    spec = segyio.spec()
    spec.samples, spec.tracecount, spec.format = np.arange(5.0), 3, 5
    bare = tmp_path / "bare.sgy"
    with segyio.create(bare, spec) as f:
        f.trace.raw[:] = np.zeros((3, 5), np.float32)
    with pytest.raises(js.InvalidArgument, match=r"^`.*bare.sgy` holds no grid spacing.*axis x"):
        io.read_model(bare)
    b, g = io.read_model(bare, spacing=10.0)
    assert b.shape == (3, 5) and g.spacing == (10.0, 10.0)
    # Missing JUDI spacing, unknown format, missing file, not an HDF5 file.
    with h5py.File(tmp_path / "nod.h5", "w") as f:
        f["n"], f["m"] = np.array([7, 5]), a.T
    with pytest.raises(js.InvalidArgument, match=r"nod.h5.*no dataset 'd'.*`spacing=`"):
        io.read_model(tmp_path / "nod.h5")
    with pytest.raises(js.InvalidArgument, match=r"^`.*model.xyz`: cannot tell the format"):
        io.read_model(tmp_path / "model.xyz")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        io.read_model(tmp_path / "missing.npy")
    (tmp_path / "fake.h5").write_text("hello")
    with pytest.raises(js.InvalidArgument, match=r"fake.h5.*not a readable HDF5"):
        io.read_model(tmp_path / "fake.h5")
    with pytest.raises(js.InvalidShape, match=r"^`array` has shape \(7, 5\) but `grid`"):
        io.write_model(tmp_path / "x.npy", a, G3)


def test_readme_files_example(tmp_path, monkeypatch):
    """The README's "Files" example runs as written."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                 if "read_model" in b)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["vp"].shape == (401, 101) and namespace["data"].shape == (401, 121)
    np.testing.assert_array_equal(namespace["src"], [[500.0, 20.0]])
