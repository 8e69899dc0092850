"""Shot records to and from SEG-Y files (with segyio); gridded models with `read_model` and
`write_model` (SEG-Y, NPY, NPZ, HDF5 as JUDI writes it, raw binary: "Gridded models" below).

**Shot records.** `write_shots` stores one trace per (shot, receiver), shot-major: trace
`i * nrec + j` is receiver `j` of shot `i`. Samples are 4-byte IEEE floats (format 5), big-endian,
SEG-Y revision 1. The file is written to a temporary file next to `path` and moved onto it, so it
is never left half-written.

Header mapping (byte positions of SEG-Y rev 1):

| quantity | trace header field (bytes) | stored as |
|---|---|---|
| shot number | `FieldRecord` (9-12), `EnergySourcePoint` (17-20) | `i + 1` |
| receiver number | `TraceNumber` (13-16) | `j + 1` |
| trace number | `TRACE_SEQUENCE_LINE`, `TRACE_SEQUENCE_FILE` (1-8) | `i * nrec + j + 1` |
| source x, y (m) | `SourceX`, `SourceY` (73-80) | `x * s`, `SourceGroupScalar = -s` |
| receiver x, y (m) | `GroupX`, `GroupY` (81-88) | `x * s`, same scalar |
| source, receiver depth (m) | see "depth conventions" | scaled by `ElevationScalar = -s` (69-70) |
| offset (m) | `offset` (37-40) | rounded; informative only |
| samples per trace | `TRACE_SAMPLE_COUNT` (115-116) | `nt` |
| sample interval | `TRACE_SAMPLE_INTERVAL` (117-118) | `round(dt_ms * 1000)` us |
| first sample time | `DelayRecordingTime` (109-110) | `round(t0_ms)` ms |

The binary header holds the sample interval in microseconds (`Interval`, bytes 3217-3218), `nt`
(`Samples`), format 5 and revision 1. `s` is the largest of 10000, 1000, 100, 10, 1 for which every
scaled coordinate fits the 32-bit field (0.1 mm resolution for typical surveys; negative SEG-Y
scalars mean "divide by"), so positions with at most four decimals (in metres) round-trip exactly.
2D coordinates are `(x, depth)` and `SourceY = GroupY = 0`; 3D coordinates are `(x, y, depth)`.

**Depth conventions** (the `depth_convention` keyword of `read_shots` and `write_shots`). jaxseis
depths are positive down from the top of the model (the surface, depth 0). Let `sdepth` =
`SourceDepth` (bytes 49-52), `selev` = `SourceSurfaceElevation` (45-48), `gelev` =
`ReceiverGroupElevation` (41-44), `sdel`/`gdel` = `SourceDatumElevation`/`ReceiverDatumElevation`
(61-64 / 57-60), all scaled by `ElevationScalar`:

| convention | source depth | receiver depth | written by |
|---|---|---|---|
| `"su"` | `sdepth + sdel - selev` | `gdel - gelev` | Seismic Unix, `write_shots` (default) |
| `"judi"` | `selev` | `gelev` | JUDI / SegyIO.jl, `write_shots(..., "judi")` |

Seismic Unix: `sdepth` is the source depth below the surface, elevations are positive up, relative
to the datum. `write_shots` in `"su"` writes `sdepth = z_src`, `gelev = -z_rec`, `selev = sdel =
gdel = 0`. JUDI stores the depths positive down in the elevation fields and leaves `sdepth = 0`;
`write_shots` in `"judi"` writes `selev = z_src`, `gelev = z_rec`, `sdepth = 0`.

`"auto"` (the default of `read_shots`) uses the convention recorded by `write_shots` in the textual
header when present; otherwise it takes the convention under which every source and receiver lies at
or below the surface (depth >= 0; inside `grid` when one is given): positive elevations with a zero
datum (and `sdepth = 0`) can only be JUDI's depths, negative elevations only SU elevations below
the datum. When both conventions are possible and give different depths (e.g. a nonzero datum) the
headers are ambiguous, and when neither is (mixed signs) they are inconsistent: both raise an
error naming the file; pass `depth_convention="su"` or `"judi"` to decide.

The exact `t0` and `dt` in ms (SEG-Y only holds integer microseconds and integer milliseconds), the
array layout and the trace count are also written on line C39 of the textual header, e.g.
`C39 JAXSEIS v1 nshots=4 nrec=21 nt=401 ndim=2 single=0 t0_ms=0.0 dt_ms=0.5`, and the depth
convention on C38 (`C38 JAXSEIS v1 depth=su`);
`read_shots` uses it when present and checks the file against it. Files written by other software
are read from their headers: the traces of all the files are grouped into shots by source position
(shots ordered by file, then `FieldRecord`, then first trace; every shot must have the same number
of traces), 3D when any `SourceY`/`GroupY` is nonzero, the time axis from the binary header (or the
first trace header).
"""

from __future__ import annotations

import os
import re

import numpy as np

from . import _model_io, _segy
from ._errors import InvalidArgument, InvalidShape, InvalidType
from ._geometry import Grid, TimeAxis
from ._model_io import _atomic_write, read_model, write_model

__doc__ = (__doc__ or "") + "\n**Gridded models.** " + (_model_io.__doc__ or "")

__all__ = ["read_model", "read_shots", "resample", "write_model", "write_shots"]

_MAGIC = "JAXSEIS v1"
_CONVENTIONS = ("su", "judi")


def _convention(value, allow_auto: bool) -> str:
    ok = (("auto",) if allow_auto else ()) + _CONVENTIONS
    v = str(value).lower()
    if v == "jaxseis":  # what write_shots writes by default
        v = "su"
    if v not in ok:
        raise InvalidArgument(
            f"`depth_convention` must be one of {', '.join(map(repr, ok))}, got {value!r}.")
    return v


def _time_axis(time, nt: int) -> TimeAxis:
    if isinstance(time, TimeAxis):
        t = time
    else:
        v = np.asarray(time, dtype=float).reshape(-1)
        if v.size < 2 or not np.all(np.isfinite(v)):
            raise InvalidArgument(
                "`time` must be a jaxseis.TimeAxis or >= 2 finite sample times (ms).")
        dt = (v[-1] - v[0]) / (v.size - 1)
        if dt <= 0 or not np.allclose(np.diff(v), dt, rtol=1e-6, atol=0.0):
            raise InvalidArgument("`time` must be uniformly increasing sample times (ms).")
        t = TimeAxis(v[0], v[-1], dt)
    if t.nt != nt:
        raise InvalidShape(f"`time` has nt={t.nt} samples but `data` has {nt} time samples.")
    if not 0.5 <= t.dt * 1000.0 <= 32767.0:
        raise InvalidArgument(
            "`time.dt` must be between 0.0005 and 32.767 ms to fit the SEG-Y sample interval "
            f"(microseconds, 16 bits), got {t.dt} ms.")
    if nt > 32767:
        raise InvalidArgument(
            f"SEG-Y rev 1 holds at most 32767 samples per trace, `data` has {nt}.")
    return t


def _coords(a, name: str, lead: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.ndim == 0 or a.shape[:-1] != lead or a.shape[-1] not in (2, 3):
        want = ", ".join(str(n) for n in lead)
        raise InvalidShape(
            f"`{name}` must have shape ({want}{', ' if want else ''}ndim) with ndim 2 (x, depth) "
            f"or 3 (x, y, depth), in metres, got {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise InvalidArgument(f"`{name}` must be finite (m).")
    return a


def write_shots(path, data, time, src, rec, *, depth_convention: str = "su") -> None:
    """Write shot records and their acquisition geometry to a SEG-Y file.

    **Arguments:**

    - `path`: the file to create (replaced if it exists; never left half-written).
    - `data`: `(nshots, nt, nrec)` records, or one record `(nt, nrec)`; stored as float32.
    - `time`: the `TimeAxis` (ms) of the records, or their uniformly spaced sample times in ms.
    - `src`: source positions in metres, `(nshots, ndim)` (one source per shot), or `(ndim,)` /
      `(1, ndim)` for one record; `ndim` is 2 (`x, depth`) or 3 (`x, y, depth`).
    - `rec`: receiver positions in metres, `(nrec, ndim)` shared by every shot, or
      `(nshots, nrec, ndim)`.
    - `depth_convention`: how depths go into the headers (module docstring): `"su"` (default,
      standard SEG-Y / Seismic Unix: `SourceDepth` = source depth, `ReceiverGroupElevation` =
      -receiver depth) or `"judi"` (JUDI's: `SourceSurfaceElevation` = source depth,
      `ReceiverGroupElevation` = receiver depth, so JUDI reads the file directly). `read_shots`
      recognises either from the textual header.

    The header mapping is in the module docstring: coordinates go to `SourceX/Y`, `GroupX/Y`
    with a `SourceGroupScalar`, depths with an `ElevationScalar`, the sample interval to the binary
    header in microseconds.
    """
    segyio = _segy.segyio_module()
    conv = _convention(depth_convention, allow_auto=False)
    d = np.asarray(data)
    if d.ndim not in (2, 3):
        raise InvalidShape(
            f"`data` must have shape (nshots, nt, nrec) or (nt, nrec), got {d.shape}.")
    single = d.ndim == 2
    if single:
        d = d[None]
    if not np.all(np.isfinite(d)):
        raise InvalidArgument("`data` must be finite; it contains NaN or inf.")
    d = d.astype(np.float32)
    nshots, nt, nrec = d.shape
    if nshots == 0 or nt == 0 or nrec == 0:
        raise InvalidShape(f"`data` must not be empty, got shape {d.shape}.")
    t = _time_axis(time, nt)

    s = np.asarray(src, dtype=float)
    if single and s.ndim == 1:
        s = s[None]
    s = _coords(s, "src", (nshots,))
    ndim = s.shape[-1]
    r = np.asarray(rec, dtype=float)
    r = _coords(r, "rec", (nrec,) if r.ndim == 2 else (nshots, nrec))
    if r.shape[-1] != ndim:
        raise InvalidShape(
            f"`src` and `rec` must have the same ndim, got {ndim} and {r.shape[-1]}.")
    if r.ndim == 2:
        r = np.broadcast_to(r, (nshots, nrec, ndim))

    horiz = np.concatenate([s[..., :-1].ravel(), r[..., :-1].ravel()])
    depth = np.concatenate([s[..., -1].ravel(), r[..., -1].ravel()])
    sc_xy, sc_z = _segy.scalar_for(horiz), _segy.scalar_for(depth)

    def q(v, scale):
        return int(np.rint(v * scale))

    spec = segyio.spec()
    spec.samples = t.values
    spec.tracecount = nshots * nrec
    spec.format = 5
    spec.endian = "big"
    tf = segyio.TraceField
    depth_lines = {
        "su": ("SourceDepth = source depth, ReceiverGroupElevation = -receiver depth (m),",
               "datum 0 (Seismic Unix convention); scaled by ElevationScalar"),
        "judi": ("SourceSurfaceElevation = source depth, ReceiverGroupElevation = receiver",
                 "depth (m, positive down: JUDI's convention); scaled by ElevationScalar"),
    }[conv]
    text = {
        1: "jaxseis shot records (metres, milliseconds)",
        2: f"{nshots} shots x {nrec} receivers, {nt} samples, dt = {t.dt:g} ms, t0 = {t.t0:g} ms",
        3: "shot-major traces: FieldRecord = shot, TraceNumber = receiver (1-based)",
        4: "SourceX/Y, GroupX/Y (m) scaled by SourceGroupScalar (negative = divide)",
        5: depth_lines[0],
        6: depth_lines[1],
        7: "sample interval in microseconds",
        38: f"{_MAGIC} depth={conv}",
        39: (f"{_MAGIC} nshots={nshots} nrec={nrec} nt={nt} ndim={ndim} single={int(single)} "
             f"t0_ms={t.t0!r} dt_ms={t.dt!r}"),
        40: "END TEXTUAL HEADER",
    }
    if len(text[39]) > 76:  # pragma: no cover - only with absurdly long float reprs
        text[39] = (f"{_MAGIC} nshots={nshots} nrec={nrec} nt={nt} ndim={ndim} "
                    f"single={int(single)} t0_ms={t.t0:.9g} dt_ms={t.dt:.9g}")
    dt_us = int(round(t.dt * 1000.0))
    delay = int(round(t.t0))
    if not -32768 <= delay <= 32767:
        raise InvalidArgument(f"`time.t0` must fit a 16-bit number of ms, got {t.t0} ms.")

    def write(tmp):
        with segyio.create(tmp, spec) as f:
            f.text[0] = segyio.tools.create_text_header(text)
            f.bin.update({segyio.BinField.Interval: dt_us, segyio.BinField.Samples: nt,
                          segyio.BinField.Format: 5, segyio.BinField.SEGYRevision: 1,
                          segyio.BinField.Traces: nrec, segyio.BinField.SortingCode: 1})
            for i in range(nshots):
                sx = s[i]
                for j in range(nrec):
                    k = i * nrec + j
                    gx = r[i, j]
                    if conv == "su":
                        zfields = {tf.SourceDepth: q(sx[-1], sc_z), tf.SourceSurfaceElevation: 0,
                                   tf.ReceiverGroupElevation: -q(gx[-1], sc_z)}
                    else:
                        zfields = {tf.SourceDepth: 0, tf.SourceSurfaceElevation: q(sx[-1], sc_z),
                                   tf.ReceiverGroupElevation: q(gx[-1], sc_z)}
                    f.header[k] = {
                        tf.TRACE_SEQUENCE_LINE: k + 1,
                        tf.TRACE_SEQUENCE_FILE: k + 1,
                        tf.FieldRecord: i + 1,
                        tf.TraceNumber: j + 1,
                        tf.EnergySourcePoint: i + 1,
                        tf.offset: int(np.rint(np.linalg.norm(gx[:-1] - sx[:-1]))),
                        tf.SourceGroupScalar: -sc_xy,
                        tf.ElevationScalar: -sc_z,
                        tf.SourceX: q(sx[0], sc_xy),
                        tf.SourceY: q(sx[1], sc_xy) if ndim == 3 else 0,
                        tf.GroupX: q(gx[0], sc_xy),
                        tf.GroupY: q(gx[1], sc_xy) if ndim == 3 else 0,
                        **zfields,
                        tf.DelayRecordingTime: delay,
                        tf.TRACE_SAMPLE_COUNT: nt,
                        tf.TRACE_SAMPLE_INTERVAL: dt_us,
                    }
                f.trace.raw[i * nrec:(i + 1) * nrec] = np.ascontiguousarray(d[i].T)

    _atomic_write(os.fspath(path), write)


# --------------------------------------------------------------------------------------------------
# reading


def _expected_traces(head: bytes) -> int | None:
    """The trace count the jaxseis line of a 3600-byte file header promises, if any."""
    meta = _parse_meta(head[:3200].decode("cp500", errors="replace"))
    if meta is None:
        meta = _parse_meta(head[:3200].decode("ascii", errors="replace"))
    try:
        return int(meta["nshots"]) * int(meta["nrec"]) if meta is not None else None
    except (KeyError, ValueError):
        return None


def _parse_meta(text: str) -> dict | None:
    """The `key=value` pairs of the jaxseis lines (80-character card images) of a textual header."""
    out = {}
    for i in range(0, len(text), 80):
        m = re.search(re.escape(_MAGIC) + r"((?:\s+\w+=\S+)+)", text[i:i + 80])
        if m is not None:
            out.update(kv.split("=", 1) for kv in m.group(1).split())
    return out if "nshots" in out else None


_FIELDS = ("FieldRecord", "SourceGroupScalar", "ElevationScalar", "SourceX", "SourceY", "GroupX",
           "GroupY", "SourceDepth", "SourceSurfaceElevation", "ReceiverGroupElevation",
           "SourceDatumElevation", "ReceiverDatumElevation", "DelayRecordingTime")


def _depths(h: dict, conv: str) -> tuple[np.ndarray, np.ndarray]:
    """(source depth, receiver depth) per trace, positive down, under convention `conv`."""
    z = {k: _segy.unscale(h[k], h["ElevationScalar"]) for k in
         ("SourceDepth", "SourceSurfaceElevation", "ReceiverGroupElevation",
          "SourceDatumElevation", "ReceiverDatumElevation")}
    if conv == "judi":
        return z["SourceSurfaceElevation"], z["ReceiverGroupElevation"]
    return (z["SourceDepth"] + z["SourceDatumElevation"] - z["SourceSurfaceElevation"],
            z["ReceiverDatumElevation"] - z["ReceiverGroupElevation"])


def _inside(pos: np.ndarray, grid: Grid | None) -> np.ndarray:
    """Per row of `pos` (..., ndim): at or below the surface, and inside `grid` if given."""
    if grid is None:
        return pos[..., -1] >= 0
    lo = np.array([b[0] for b in grid.bounds])
    hi = np.array([b[1] for b in grid.bounds])
    tol = 1e-6 * np.maximum(1.0, np.abs(hi))
    return np.all((pos >= lo - tol) & (pos <= hi + tol), axis=-1)


def _read_file(path: str, depth_convention: str, grid: Grid | None) -> dict:
    """Every trace of one SEG-Y file with its positions (m), in file order."""
    segyio = _segy.segyio_module()
    f = _segy.open_segy(path, "SEG-Y file", _expected_traces)
    with f:
        ntr = f.tracecount
        ns = len(f.samples)
        if ns == 0 or ntr == 0:
            raise InvalidArgument(
                f"`{path}` is not a SEG-Y file with data: {ntr} traces of {ns} samples.")
        try:
            text = bytes(f.text[0]).decode("ascii", errors="replace")
        except Exception:  # noqa: BLE001 - a broken textual header just means "foreign file"
            text = ""
        meta = _parse_meta(text)
        tf = segyio.TraceField
        try:
            h = {k: np.asarray(f.attributes(getattr(tf, k))[:]) for k in _FIELDS}
            raw = np.asarray(f.trace.raw[:], dtype=np.float32)
            interval_us = f.bin[segyio.BinField.Interval] or f.header[0][tf.TRACE_SAMPLE_INTERVAL]
        except (RuntimeError, OSError) as err:
            raise InvalidArgument(f"`{path}`: cannot read the traces ({err}).") from None
    if raw.shape != (ntr, ns):
        raise InvalidArgument(f"`{path}`: expected {ntr} traces of {ns} samples, read {raw.shape}.")

    out = dict(path=path, raw=raw, fr=h["FieldRecord"], single=False, meta=meta is not None)
    conv = depth_convention
    if meta is not None:
        try:
            nshots, nrec, nt, ndim = (int(meta[k]) for k in ("nshots", "nrec", "nt", "ndim"))
            single = meta.get("single", "0") == "1"
            t0, dt = float(meta["t0_ms"]), float(meta["dt_ms"])
            written = _convention(meta.get("depth", "su"), allow_auto=False)
        except (KeyError, ValueError):
            raise InvalidArgument(
                f"`{path}`: malformed jaxseis line in the textual header: {meta}.") from None
        if ntr != nshots * nrec:
            raise InvalidArgument(
                f"`{path}` is truncated or corrupt: expected {nshots * nrec} traces ({nshots} "
                f"shots x {nrec} receivers, as its textual header says), found {ntr}.")
        if ns != nt:
            raise InvalidArgument(
                f"`{path}` is corrupt: expected {nt} samples per trace (textual header), found "
                f"{ns}.")
        if ndim not in (2, 3):
            raise InvalidArgument(
                f"`{path}`: ndim in the textual header must be 2 or 3, got {ndim}.")
        fr = h["FieldRecord"].reshape(nshots, nrec)
        if not np.all(fr == np.arange(1, nshots + 1)[:, None]):
            raise InvalidArgument(
                f"`{path}` is corrupt: FieldRecord headers do not number the shots 1..{nshots}.")
        out.update(single=single, nshots=nshots)
        if conv == "auto":
            conv = written
    else:
        if not interval_us or interval_us <= 0:
            raise InvalidArgument(
                f"`{path}`: the sample interval in the binary and first trace headers is "
                f"{interval_us} us; a shot record needs a positive one.")
        dt = interval_us / 1000.0
        t0 = float(h["DelayRecordingTime"][0])
        ndim = 3 if (np.any(h["SourceY"] != 0) or np.any(h["GroupY"] != 0)) else 2
        if ntr > 1 and not any(np.any(h[k] != 0) for k in ("SourceX", "SourceY", "GroupX",
                                                           "GroupY")):
            raise InvalidArgument(
                f"`{path}` has no source or receiver coordinates: SourceX, SourceY, GroupX and "
                f"GroupY are 0 in all {ntr} traces.")
    out.update(t0=t0, dt=dt, nt=ns, ndim=ndim)

    sxy = lambda k: _segy.unscale(h[k], h["SourceGroupScalar"])  # noqa: E731
    horiz_s = np.stack([sxy("SourceX"), sxy("SourceY")], axis=-1)
    horiz_r = np.stack([sxy("GroupX"), sxy("GroupY")], axis=-1)

    def positions(c):
        zs, zr = _depths(h, c)
        s = np.concatenate([horiz_s, zs[:, None]], axis=-1)
        r = np.concatenate([horiz_r, zr[:, None]], axis=-1)
        if ndim == 2:
            s, r = s[:, [0, 2]], r[:, [0, 2]]
        return s, r

    def fits(c, g):
        if c == "judi" and np.any(h["SourceDepth"] != 0):
            return False  # JUDI never writes SourceDepth
        s, r = positions(c)
        return bool(np.all(_inside(s, g)) and np.all(_inside(r, g)))

    if conv == "auto":
        ok = [c for c in _CONVENTIONS if fits(c, grid)]
        if not ok and grid is not None:
            below = [c for c in _CONVENTIONS if fits(c, None)]
            if len(below) == 1:  # clear headers; the positions outside `grid` are reported below
                ok = below
        where = "inside `grid`" if grid is not None else "at or below the surface (depth >= 0)"
        if not ok:
            raise InvalidArgument(
                f"`{path}`: inconsistent depth headers: under neither the SU convention "
                "(SourceDepth down, elevations up from the datum) nor JUDI's (depths positive in "
                f"SourceSurfaceElevation / ReceiverGroupElevation) are all sources and receivers "
                f"{where}; {_depth_summary(h)}. Pass `depth_convention=` ('su' or 'judi') to "
                "decide.")
        if len(ok) == 2:
            (s1, r1), (s2, r2) = positions("su"), positions("judi")
            if np.array_equal(s1, s2) and np.array_equal(r1, r2):
                ok = ["su"]
            else:
                raise InvalidArgument(
                    f"`{path}`: ambiguous depth headers: both the SU convention (source depth "
                    f"{s1[0, -1]:g} m, receiver depth {r1[0, -1]:g} m for the first trace) and "
                    f"JUDI's ({s2[0, -1]:g} m, {r2[0, -1]:g} m) put every source and receiver "
                    f"{where}; {_depth_summary(h)}. Pass depth_convention='su' or 'judi'.")
        conv = ok[0]
    out["src"], out["rec"] = positions(conv)
    out["convention"] = conv
    if grid is not None:
        for name, pos in (("source", out["src"]), ("receiver", out["rec"])):
            bad = ~_inside(pos, grid)
            if np.any(bad):
                i = int(np.argmax(bad))
                raise InvalidArgument(
                    f"`{path}`: {int(bad.sum())} traces have their {name} outside `grid` "
                    f"(bounds {grid.bounds} m), e.g. trace {i + 1} at {pos[i].tolist()} m "
                    f"(depth convention {conv!r}).")
    return out


def _depth_summary(h: dict) -> str:
    parts = []
    for k in ("SourceDepth", "SourceSurfaceElevation", "ReceiverGroupElevation",
              "SourceDatumElevation", "ReceiverDatumElevation"):
        v = _segy.unscale(h[k], h["ElevationScalar"])
        if np.any(v != 0):
            parts.append(f"{k} {v.min():g} to {v.max():g} m")
    return "headers: " + (", ".join(parts) if parts else "all depth and elevation fields are 0")


def _sinc_resample(x: np.ndarray, t_old: TimeAxis, t_new: TimeAxis,
                           half_width: int = 16) -> np.ndarray:
    """Windowed-sinc (Kaiser, beta 8) band-limited resampling of `x` (..., nt_old) along its last
    axis onto `t_new`; anti-aliased (cut-off at the new Nyquist frequency) when coarser."""
    c = min(1.0, t_old.dt / t_new.dt)  # cut-off as a fraction of the old Nyquist frequency
    w = int(np.ceil(half_width / c))
    pos = (t_new.values - t_old.t0) / t_old.dt  # fractional old-sample index of each new sample
    base = np.floor(pos).astype(np.int64)
    k = base[:, None] + np.arange(-w + 1, w + 1)[None, :]  # (nt_new, 2w)
    u = pos[:, None] - k
    window = np.i0(8.0 * np.sqrt(np.clip(1.0 - (u / w) ** 2, 0.0, 1.0))) / np.i0(8.0)
    weights = c * np.sinc(c * u) * window
    weights[(k < 0) | (k >= t_old.nt)] = 0.0  # zero outside the record
    kc = np.clip(k, 0, t_old.nt - 1)
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty((flat.shape[0], t_new.nt), dtype=np.float64)
    for i0 in range(0, flat.shape[0], 64):
        out[i0:i0 + 64] = np.einsum("tw,ntw->nt", weights, flat[i0:i0 + 64][:, kc])
    return out.reshape(x.shape[:-1] + (t_new.nt,))


def resample(data, time: TimeAxis, dt) -> tuple[np.ndarray, TimeAxis]:
    """Band-limited resampling of records along their time axis (the second-to-last axis,
    `(..., nt, nrec)`, as `read_shots` returns them) with a Kaiser-windowed sinc (16 lobes).

    **Arguments:**

    - `data`: `(nt, nrec)` or `(nshots, nt, nrec)` records on `time`.
    - `time`: their `TimeAxis` (ms).
    - `dt`: the new sample interval in ms (the new axis starts at `time.t0` and ends at or before
      `time.tn`), or a `TimeAxis` to resample onto exactly (samples outside the record are 0).

    When the new sampling is coarser, frequencies above its Nyquist frequency are removed
    (anti-aliasing); below it the signal is kept (about 1e-5 relative error for well-sampled
    wavelets, more within a few samples of the ends of the record).

    **Returns:** `(data, time)` on the new axis (float32).
    """
    if not isinstance(time, TimeAxis):
        raise InvalidType(f"`time` must be a jaxseis.TimeAxis, got {type(time).__name__}.")
    if isinstance(dt, TimeAxis):
        t_new = dt
    else:
        try:
            dt = float(dt)
        except (TypeError, ValueError):
            raise InvalidType(
                f"`dt` must be a sample interval in ms or a TimeAxis, got {dt!r:.60}.") from None
        if not (np.isfinite(dt) and dt > 0):
            raise InvalidArgument(f"`dt` must be a positive sample interval in ms, got {dt}.")
        n = int(np.floor((time.tn - time.t0) / dt + 1e-9)) + 1
        t_new = TimeAxis(time.t0, time.t0 + dt * (n - 1), dt)
    d = np.asarray(data, dtype=np.float64)
    if d.ndim < 2 or d.shape[-2] != time.nt:
        raise InvalidShape(
            f"`data` must have shape (..., nt, nrec) with nt = {time.nt} (`time`), got {d.shape}.")
    if t_new == time:
        return d.astype(np.float32), time
    out = _sinc_resample(np.swapaxes(d, -1, -2), time, t_new)
    return np.swapaxes(out, -1, -2).astype(np.float32), t_new


def _paths(paths) -> list[str]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        return [os.fsdecode(os.fspath(paths))]
    try:
        out = [os.fsdecode(os.fspath(p)) for p in paths]
    except TypeError:
        raise InvalidType(
            f"`path` must be a file path or a sequence of paths, got {type(paths).__name__}.") \
            from None
    if not out:
        raise InvalidArgument("`path` is an empty sequence; give at least one SEG-Y file.")
    return out


def read_shots(path, *, depth_convention: str = "auto", dt=None, grid: Grid | None = None):
    """Read shot records from one or several SEG-Y files (`write_shots`', JUDI's, Seismic Unix's).

    **Arguments:**

    - `path`: a SEG-Y file, or a sequence of them (their traces are pooled and grouped into shots
      by source position; every file must have the same sample interval, number of samples and
      start time).
    - `depth_convention`: `"auto"` (default), `"su"` or `"judi"`: how source and receiver depths are
      stored in the headers; see the module docstring ("depth conventions"). `"auto"` raises
      `jaxseis.InvalidArgument` naming the file when the headers are ambiguous or inconsistent.
    - `dt`: resample the records to this sample interval in ms (or onto this `TimeAxis`, e.g. the
      modelling one) with band-limited windowed-sinc interpolation (`jaxseis.io.resample`);
      `None` keeps the file's sampling.
    - `grid`: a `Grid`; every source and receiver must lie inside it (an error names the file and a
      position outside), and `"auto"` picks the convention that puts them inside it.

    **Returns:** `(data, time, src, rec)`:

    - `data`: float32 `(nshots, nt, nrec)`, or `(nt, nrec)` if a single record was written as 2D;
    - `time`: a `TimeAxis` (ms);
    - `src`: `(nshots, ndim)` source positions (m, depth positive down); `(1, ndim)` for a single
      record, as `Acoustic.forward` takes it;
    - `rec`: `(nrec, ndim)` receiver positions (m) when every shot has the same receivers, else
      `(nshots, nrec, ndim)`.

    **Raises:** `FileNotFoundError` if a file does not exist; `jaxseis.InvalidArgument` naming the
    file and what is wrong if it is not a readable SEG-Y file, is truncated, its headers are
    inconsistent or ambiguous, its sampling differs from the other files', or positions fall
    outside `grid`.
    """
    conv = _convention(depth_convention, allow_auto=True)
    if grid is not None and not isinstance(grid, Grid):
        raise InvalidType(f"`grid` must be a jaxseis.Grid or None, got {type(grid).__name__}.")
    files = [_read_file(p, conv, grid) for p in _paths(path)]
    first = files[0]
    for f in files[1:]:
        for k, what, unit in (("dt", "sample interval", " ms"), ("nt", "number of samples", ""),
                              ("t0", "start time", " ms")):
            if f[k] != first[k]:
                raise InvalidArgument(
                    f"`{f['path']}` has {what} {f[k]}{unit} but `{first['path']}` has "
                    f"{first[k]}{unit}: files read together must share their time axis (read them "
                    "separately and resample with jaxseis.io.resample).")
    ndim = max(f["ndim"] for f in files)
    if any(f["ndim"] != ndim for f in files):
        f2 = next(f for f in files if f["ndim"] != ndim)
        raise InvalidArgument(
            f"`{f2['path']}` is {f2['ndim']}D but other files are {ndim}D (nonzero "
            "SourceY/GroupY).")
    raw = np.concatenate([f["raw"] for f in files])
    src = np.concatenate([f["src"] for f in files])
    rec = np.concatenate([f["rec"] for f in files])
    fr = np.concatenate([f["fr"] for f in files])
    fidx = np.concatenate([np.full(f["raw"].shape[0], i) for i, f in enumerate(files)])

    # Group the traces into shots by source position; order by file, FieldRecord, first trace.
    if len(files) == 1 and first["meta"]:
        shot = fr - 1  # write_shots' layout: FieldRecord numbers the shots
        nshots = first["nshots"]
    else:
        _, shot = np.unique(src, axis=0, return_inverse=True)
        shot = shot.reshape(-1)
        nshots = int(shot.max()) + 1
        _, first_tr = np.unique(shot, return_index=True)  # first trace of each shot
        fr_min = np.full(nshots, np.iinfo(np.int64).max)
        np.minimum.at(fr_min, shot, fr.astype(np.int64))
        rank = np.empty(nshots, dtype=np.int64)
        rank[np.lexsort((first_tr, fr_min, fidx[first_tr]))] = np.arange(nshots)
        shot = rank[shot]
    counts = np.bincount(shot, minlength=nshots)
    if np.any(counts != counts[0]):
        where = first["path"] if len(files) == 1 else f"{first['path']} (and {len(files) - 1} more)"
        raise InvalidArgument(
            f"`{where}`: shots (traces grouped by source position) have different numbers of "
            f"traces ({counts.min()} to {counts.max()}); read them with segyio directly.")
    nrec = int(counts[0])
    order = np.argsort(shot, kind="stable")
    src_all = src[order].reshape(nshots, nrec, ndim)
    rec_all = rec[order].reshape(nshots, nrec, ndim)
    if not np.all(src_all == src_all[:, :1]):
        raise InvalidArgument(
            f"`{first['path']}`: the source position changes within a shot (FieldRecord).")
    src_out = src_all[:, 0]
    rec_out = rec_all[0] if np.all(rec_all == rec_all[:1]) else rec_all
    nt = first["nt"]
    data = raw[order].reshape(nshots, nrec, nt).transpose(0, 2, 1).copy()
    t0, dt0 = first["t0"], first["dt"]
    time = TimeAxis(t0, t0 + dt0 * (nt - 1), dt0)
    if dt is not None:
        data, time = resample(data, time, dt)
    if len(files) == 1 and first["single"]:
        return data[0], time, src_out, rec_out
    return data, time, src_out, rec_out
