"""jaxseis.io: SEG-Y round trips of shot records and geometry, and clear errors on bad files."""

import os

import numpy as np
import pytest
import segyio

import jaxseis as js
from jaxseis import io


@pytest.fixture(scope="module")
def shots():
    rng = np.random.default_rng(0)
    nshots, nt, nrec = 3, 151, 9
    data = rng.normal(size=(nshots, nt, nrec)).astype(np.float32)
    time = js.TimeAxis(0.0, 150 * 0.873, 0.873)  # a critical-dt-like, non-round step
    src = np.stack([np.array([10.125, 200.5, 390.0]), np.array([5.25, 5.25, 7.5])], axis=1)
    rec = np.stack([np.linspace(0.0, 400.0, nrec) + 0.0625, np.full(nrec, 12.3456)], axis=1)
    return data, time, src, rec


def test_roundtrip_2d(tmp_path, shots):
    data, time, src, rec = shots
    path = tmp_path / "shots.sgy"
    io.write_shots(path, data, time, src, rec)
    assert os.path.getsize(path) == 3600 + data.shape[0] * data.shape[2] * (240 + 4 * data.shape[1])
    d, t, s, r = io.read_shots(path)
    np.testing.assert_array_equal(d, data)
    assert t.nt == time.nt and t.dt == time.dt and t.t0 == time.t0
    assert s.shape == src.shape and r.shape == rec.shape
    np.testing.assert_allclose(s, src, atol=1e-4)  # 0.1 mm resolution
    np.testing.assert_allclose(r, rec, atol=1e-4)


def test_headers_follow_segy_conventions(tmp_path, shots):
    """Other software must see the geometry: read the raw headers with segyio."""
    data, time, src, rec = shots
    path = tmp_path / "shots.sgy"
    io.write_shots(path, data, time, src, rec)
    tf = segyio.TraceField
    with segyio.open(path, ignore_geometry=True) as f:
        assert f.tracecount == 27 and len(f.samples) == 151
        assert f.bin[segyio.BinField.Interval] == 873  # microseconds
        assert f.bin[segyio.BinField.Format] == 5
        h = f.header[1 * 9 + 4]  # shot 1, receiver 4
        assert h[tf.FieldRecord] == 2 and h[tf.TraceNumber] == 5
        xy = -h[tf.SourceGroupScalar]
        zs = -h[tf.ElevationScalar]
        assert xy > 1 and zs > 1  # sub-metre coordinates are scaled, not rounded away
        assert h[tf.SourceX] / xy == pytest.approx(src[1, 0], abs=1e-4)
        assert h[tf.GroupX] / xy == pytest.approx(rec[4, 0], abs=1e-4)
        assert h[tf.SourceDepth] / zs == pytest.approx(src[1, 1], abs=1e-4)
        assert -h[tf.ReceiverGroupElevation] / zs == pytest.approx(rec[4, 1], abs=1e-4)
        assert h[tf.SourceY] == 0 and h[tf.GroupY] == 0
        np.testing.assert_array_equal(f.trace[13], data[1, :, 4])


def test_roundtrip_single_record_and_3d(tmp_path):
    rng = np.random.default_rng(1)
    time = js.TimeAxis(0.0, 99.0, 1.0)
    rec = np.stack([np.arange(6) * 10.0, np.full(6, 20.0)], axis=1)
    one = rng.normal(size=(100, 6)).astype(np.float32)
    io.write_shots(tmp_path / "one.sgy", one, time, np.array([25.0, 10.0]), rec)
    d, t, s, r = io.read_shots(tmp_path / "one.sgy")
    assert d.shape == (100, 6) and s.shape == (1, 2)
    np.testing.assert_array_equal(d, one)
    np.testing.assert_allclose(s[0], [25.0, 10.0])
    # 3D geometry with different receivers per shot.
    src3 = np.array([[1.5, 2.5, 3.5], [100.0, 200.0, 5.0]])
    rec3 = rng.uniform(0, 500, size=(2, 4, 3))
    data3 = rng.normal(size=(2, 100, 4)).astype(np.float32)
    io.write_shots(tmp_path / "three.sgy", data3, time.values, src3, rec3)
    d, t, s, r = io.read_shots(tmp_path / "three.sgy")
    np.testing.assert_array_equal(d, data3)
    np.testing.assert_allclose(s, src3, atol=1e-4)
    np.testing.assert_allclose(r, rec3, atol=1e-4)
    assert t.dt == 1.0


def test_reads_foreign_segy(tmp_path):
    """A file without the jaxseis textual header: geometry from the trace headers, dt from the
    binary header."""
    path = tmp_path / "foreign.sgy"
    spec = segyio.spec()
    spec.samples = np.arange(50) * 2.0
    spec.tracecount = 6
    spec.format = 1  # IBM floats
    tf = segyio.TraceField
    traces = np.arange(6 * 50, dtype=np.float32).reshape(6, 50)
    with segyio.create(path, spec) as f:
        f.bin.update({segyio.BinField.Interval: 2000})
        for k in range(6):
            shot = 2 - k // 3  # shots stored in reverse order
            f.header[k] = {tf.FieldRecord: shot, tf.SourceX: 1000 * shot, tf.SourceGroupScalar: 10,
                           tf.GroupX: 5 * (k % 3), tf.SourceDepth: 3, tf.ElevationScalar: 1,
                           tf.ReceiverGroupElevation: -7}
            f.trace[k] = traces[k]
    d, t, s, r = io.read_shots(path)
    assert d.shape == (2, 50, 3) and t.dt == 2.0
    np.testing.assert_allclose(d[0], traces[3:].T)  # shot 1 first
    np.testing.assert_allclose(s, [[10000.0, 3.0], [20000.0, 3.0]])
    np.testing.assert_allclose(r, [[0.0, 7.0], [50.0, 7.0], [100.0, 7.0]])


def test_truncated_file_errors(tmp_path, shots):
    data, time, src, rec = shots
    path = tmp_path / "cut.sgy"
    io.write_shots(path, data, time, src, rec)
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:  # cut in the middle of the last trace
        fh.truncate(size - 100)
    msg = r"truncated.*expected 27 traces, found 26 complete"
    with pytest.raises(js.InvalidArgument, match=msg) as e:
        io.read_shots(path)
    assert str(path) in str(e.value)
    print(e.value)
    with open(path, "r+b") as fh:  # cut exactly at a trace boundary: only the header can tell
        fh.truncate(3600 + 20 * (240 + 4 * 151))
    with pytest.raises(js.InvalidArgument, match=r"truncated.*expected 27 traces.*found 20") as e:
        io.read_shots(path)
    print(e.value)


def test_not_segy_errors(tmp_path):
    small = tmp_path / "notes.txt"
    small.write_text("not a seismic file\n" * 10)
    with pytest.raises(js.InvalidArgument, match="not a SEG-Y file.*3600-byte") as e:
        io.read_shots(small)
    assert "notes.txt" in str(e.value)
    big = tmp_path / "big.txt"
    big.write_text("hello world, this is text\n" * 400)
    msg = "big.txt.*(not a SEG-Y|truncated or corrupt)"
    with pytest.raises(js.InvalidArgument, match=msg) as e:
        io.read_shots(big)
    print(e.value)
    zeros = tmp_path / "zeros.bin"
    zeros.write_bytes(bytes(5000))
    with pytest.raises(js.InvalidArgument, match="0 samples per trace"):
        io.read_shots(zeros)
    with pytest.raises(FileNotFoundError, match="missing.sgy"):
        io.read_shots(tmp_path / "missing.sgy")


def test_write_validation(tmp_path, shots):
    data, time, src, rec = shots
    p = tmp_path / "x.sgy"
    with pytest.raises(js.InvalidShape, match="`time`"):
        io.write_shots(p, data, js.TimeAxis(0.0, 10.0, 1.0), src, rec)
    with pytest.raises(js.InvalidShape, match="`src`"):
        io.write_shots(p, data, time, src[:2], rec)
    with pytest.raises(js.InvalidShape, match="`rec`"):
        io.write_shots(p, data, time, src, rec[:4])
    with pytest.raises(js.InvalidShape, match="`data`"):
        io.write_shots(p, data[0, 0], time, src, rec)
    with pytest.raises(js.InvalidArgument, match="`data` must be finite"):
        io.write_shots(p, np.full_like(data, np.nan), time, src, rec)


# ------------------------------------------------------------------------- depth conventions
def _foreign(path, n_rec=4, nt=60, dt_us=1000, src_x=500.0, scalar=-100, rec_x0=0.0,
             **depth_fields):
    """One shot written with segyio directly (not jaxseis): source at `src_x` m, receivers every
    100 m, coordinates in centimetres (SourceGroupScalar = ElevationScalar = -100); the depth
    fields are given in metres."""
    spec = segyio.spec()
    spec.samples = np.arange(nt) * dt_us / 1000.0
    spec.tracecount = n_rec
    spec.format = 5
    tf = segyio.TraceField
    traces = np.random.default_rng(3).normal(size=(n_rec, nt)).astype(np.float32)
    with segyio.create(path, spec) as f:
        f.bin.update({segyio.BinField.Interval: dt_us})
        for k in range(n_rec):
            h = {tf.FieldRecord: 1, tf.TraceNumber: k + 1, tf.SourceGroupScalar: scalar,
                 tf.ElevationScalar: scalar, tf.SourceX: int(round(src_x * 100)),
                 tf.GroupX: int(round(100 * (rec_x0 + 100 * k))), tf.TRACE_SAMPLE_INTERVAL: dt_us}
            for name, metres in depth_fields.items():
                h[getattr(tf, name)] = int(round(metres * 100))
            f.header[k] = h
            f.trace[k] = traces[k]
    return traces


def test_judi_convention_written_by_segyio(tmp_path):
    """JUDI stores depths positive in the elevation fields: source 20 m, receivers 50 m deep."""
    path = tmp_path / "judi_shot.segy"
    traces = _foreign(path, SourceSurfaceElevation=20.0, ReceiverGroupElevation=50.0)
    d, t, s, r = io.read_shots(path)
    assert d.shape == (1, 60, 4) and t.dt == 1.0
    np.testing.assert_array_equal(s, [[500.0, 20.0]])
    np.testing.assert_array_equal(r, [[0.0, 50.0], [100.0, 50.0], [200.0, 50.0], [300.0, 50.0]])
    np.testing.assert_array_equal(d[0], traces.T)
    s2 = io.read_shots(path, depth_convention="judi")[2]
    np.testing.assert_array_equal(s2, s)


def test_su_convention_written_by_segyio(tmp_path):
    """Seismic Unix: sdepth positive down, gelev an elevation (negative below the surface)."""
    path = tmp_path / "su_shot.sgy"
    _foreign(path, SourceDepth=20.0, ReceiverGroupElevation=-50.0)
    _, _, s, r = io.read_shots(path)
    np.testing.assert_array_equal(s, [[500.0, 20.0]])
    np.testing.assert_array_equal(r[:, 1], 50.0)
    # A datum: sources 20 m below a surface at elevation 80 m over a datum at 100 m.
    path = tmp_path / "datum.sgy"
    _foreign(path, SourceDepth=0.0, SourceSurfaceElevation=80.0, ReceiverGroupElevation=50.0,
             SourceDatumElevation=100.0, ReceiverDatumElevation=100.0)
    with pytest.raises(js.InvalidArgument, match=r"^`.*datum.sgy`: ambiguous depth headers.*"
                       r"SU.*source depth 20 m, receiver depth 50 m.*JUDI's \(80 m, 50 m\)") as e:
        io.read_shots(path)
    print(e.value)
    np.testing.assert_array_equal(io.read_shots(path, depth_convention="su")[2], [[500.0, 20.0]])
    np.testing.assert_array_equal(io.read_shots(path, depth_convention="judi")[2], [[500.0, 80.0]])
    # A model 60 m deep tells them apart: only SU puts the source (20 m, not 80 m) inside it.
    grid = js.Grid((61, 7), 10.0)
    np.testing.assert_array_equal(io.read_shots(path, grid=grid)[2], [[500.0, 20.0]])


def test_inconsistent_depths_and_grid_errors(tmp_path):
    path = tmp_path / "mixed.sgy"  # source elevation up, receiver elevation down: neither fits
    _foreign(path, SourceSurfaceElevation=20.0, ReceiverGroupElevation=-50.0)
    with pytest.raises(js.InvalidArgument, match=r"^`.*mixed.sgy`: inconsistent depth headers.*"
                       r"SourceSurfaceElevation 20 to 20 m.*depth_convention=") as e:
        io.read_shots(path)
    print(e.value)
    with pytest.raises(js.InvalidArgument, match="`depth_convention` must be one of"):
        io.read_shots(path, depth_convention="segy")
    ok = tmp_path / "judi.sgy"
    _foreign(ok, SourceSurfaceElevation=20.0, ReceiverGroupElevation=50.0)
    small = js.Grid((26, 11), 10.0, origin=(250.0, 0.0))  # receivers at 0, 100, 200 m outside
    for conv in ("auto", "judi"):
        with pytest.raises(js.InvalidArgument, match=r"^`.*judi.sgy`: 3 traces have their receiver "
                           r"outside `grid` \(bounds .*trace 1 at \[0.0, 50.0\] m"):
            io.read_shots(ok, grid=small, depth_convention=conv)
    with pytest.raises(js.InvalidArgument, match=r"^`.*mixed.sgy`.*inconsistent.*inside `grid`"):
        io.read_shots(path, grid=small)
    bare = tmp_path / "nocoords.sgy"
    _foreign(bare, src_x=0.0, scalar=0)
    with segyio.open(bare, "r+", ignore_geometry=True) as f:
        for k in range(f.tracecount):
            f.header[k] = {segyio.TraceField.GroupX: 0}
    with pytest.raises(js.InvalidArgument, match=r"^`.*nocoords.sgy` has no source or receiver"):
        io.read_shots(bare)


@pytest.mark.parametrize("convention", ["su", "judi"])
def test_roundtrip_exact_both_conventions(tmp_path, shots, convention):
    data, time, src, rec = shots
    path = tmp_path / f"{convention}.sgy"
    io.write_shots(path, data, time, src, rec, depth_convention=convention)
    tf = segyio.TraceField
    with segyio.open(path, ignore_geometry=True) as f:
        h = f.header[4]
        zs = -h[tf.ElevationScalar]
        if convention == "judi":  # what JUDI reads
            assert h[tf.SourceSurfaceElevation] / zs == src[0, 1] and h[tf.SourceDepth] == 0
            assert h[tf.ReceiverGroupElevation] / zs == rec[4, 1]
        else:
            assert h[tf.SourceDepth] / zs == src[0, 1] and h[tf.SourceSurfaceElevation] == 0
            assert h[tf.ReceiverGroupElevation] / zs == -rec[4, 1]
    d, t, s, r = io.read_shots(path)
    np.testing.assert_array_equal(d, data)
    assert t == time
    np.testing.assert_array_equal(s, src)  # <= 4 decimals: exact
    np.testing.assert_array_equal(r, rec)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".jaxseis-")]


def test_many_files_grouped_by_source(tmp_path):
    a, b, c = tmp_path / "a.sgy", tmp_path / "b.sgy", tmp_path / "c.sgy"
    ta = _foreign(a, src_x=700.0, SourceSurfaceElevation=20.0, ReceiverGroupElevation=50.0)
    tb = _foreign(b, src_x=300.0, SourceSurfaceElevation=20.0, ReceiverGroupElevation=50.0)
    d, t, s, r = io.read_shots([a, b])
    assert d.shape == (2, 60, 4)
    np.testing.assert_array_equal(s, [[700.0, 20.0], [300.0, 20.0]])  # file order
    np.testing.assert_array_equal(d[1], tb.T)
    np.testing.assert_array_equal(d[0], ta.T)
    assert r.shape == (4, 2)
    _foreign(c, dt_us=2000, SourceSurfaceElevation=20.0, ReceiverGroupElevation=50.0)
    with pytest.raises(js.InvalidArgument, match=r"^`.*c.sgy` has sample interval 2.0 ms but "
                       r"`.*a.sgy` has 1.0 ms"):
        io.read_shots([a, c])
    with pytest.raises(FileNotFoundError, match="nope.sgy"):
        io.read_shots([a, tmp_path / "nope.sgy"])
    # One shot split over two files (receivers 0-300 m and 400-700 m): merged by source position.
    a2 = tmp_path / "a2.sgy"
    ta2 = _foreign(a2, src_x=700.0, rec_x0=400.0, SourceSurfaceElevation=20.0,
                   ReceiverGroupElevation=50.0)
    d, t, s, r = io.read_shots([a, a2])
    assert d.shape == (1, 60, 8)
    np.testing.assert_array_equal(r[:, 0], np.arange(8) * 100.0)
    np.testing.assert_array_equal(d[0], np.concatenate([ta, ta2]).T)
    with pytest.raises(js.InvalidArgument, match=r"different numbers of traces \(4 to 8\)"):
        io.read_shots([a, a2, b])


def test_resample_ricker(tmp_path):
    """Band-limited resampling of a 15 Hz Ricker from 0.5 ms to 2 ms and to 0.3 ms."""
    fine = js.TimeAxis(0.0, 300.0, 0.5)
    w = np.asarray(js.ricker(fine, 0.015, 100.0), dtype=np.float64)  # ~0 at both ends
    data = np.stack([w, -2.0 * w], axis=1)[None]  # (1, nt, 2)
    for dt in (2.0, 0.3):
        out, t = io.resample(data, fine, dt)
        assert t.dt == dt and t.t0 == 0.0 and t.tn <= 300.0 and out.shape == (1, t.nt, 2)
        exact = np.asarray(js.ricker(t, 0.015, 100.0))
        np.testing.assert_allclose(out[0, :, 0], exact, atol=5e-5)
        np.testing.assert_allclose(out[0, :, 1], -2.0 * exact, atol=1e-4)
    # Through read_shots, onto a modelling TimeAxis.
    path = tmp_path / "ricker.sgy"
    io.write_shots(path, data, fine, [[500.0, 20.0]], [[0.0, 50.0], [100.0, 50.0]])
    model_time = js.TimeAxis(0.0, 250.0, 0.75)
    d, t, _, _ = io.read_shots(path, dt=model_time)
    assert t == model_time and d.shape == (1, model_time.nt, 2)
    np.testing.assert_allclose(d[0, :, 0], np.asarray(js.ricker(model_time, 0.015, 100.0)),
                               atol=2e-4)
    # Above the new Nyquist frequency the signal is removed (anti-aliasing): 400 Hz at 2 ms.
    tone = np.sin(2 * np.pi * 0.4 * fine.values)[:, None]
    out, _ = io.resample(tone, fine, 2.0)
    assert np.max(np.abs(out[20:-20])) < 1e-2


def test_failed_write_leaves_old_file(tmp_path, shots, monkeypatch):
    """write_shots / write_model write a temporary file and move it: a failure midway keeps the
    previous file and leaves no temporary behind."""
    data, time, src, rec = shots
    path = tmp_path / "keep.sgy"
    io.write_shots(path, data, time, src, rec)
    before = path.read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # as open() gives, not mkstemp's 0600

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(segyio.tools, "create_text_header", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        io.write_shots(path, 2 * data, time, src, rec)
    with pytest.raises(RuntimeError, match="disk full"):
        io.write_model(path, np.ones((3, 4), np.float32), js.Grid((3, 4), 10.0))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.sgy"]
