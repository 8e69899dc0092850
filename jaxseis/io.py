"""Shot records to and from SEG-Y files (with segyio); gridded models with `read_model` and
`write_model` (SEG-Y, NPY, NPZ, HDF5 as JUDI writes it, raw binary: see `jaxseis._model_io`).

Shot records:

`write_shots` stores one trace per (shot, receiver), shot-major: trace `i * nrec + j` is receiver
`j` of shot `i`. Samples are 4-byte IEEE floats (format 5), big-endian, SEG-Y revision 1.

Header mapping (byte positions of SEG-Y rev 1):

| quantity | trace header field (bytes) | stored as |
|---|---|---|
| shot number | `FieldRecord` (9-12), `EnergySourcePoint` (17-20) | `i + 1` |
| receiver number | `TraceNumber` (13-16) | `j + 1` |
| trace number | `TRACE_SEQUENCE_LINE`, `TRACE_SEQUENCE_FILE` (1-8) | `i * nrec + j + 1` |
| source x, y (m) | `SourceX`, `SourceY` (73-80) | `x * s`, `SourceGroupScalar = -s` |
| receiver x, y (m) | `GroupX`, `GroupY` (81-88) | `x * s`, same scalar |
| source depth (m, down) | `SourceDepth` (49-52) | `z * s`, `ElevationScalar = -s` |
| receiver depth (m, down) | `ReceiverGroupElevation` (41-44) | `-z * s` (elevation is up) |
| offset (m) | `offset` (37-40) | rounded; informative only |
| samples per trace | `TRACE_SAMPLE_COUNT` (115-116) | `nt` |
| sample interval | `TRACE_SAMPLE_INTERVAL` (117-118) | `round(dt_ms * 1000)` us |
| first sample time | `DelayRecordingTime` (109-110) | `round(t0_ms)` ms |

The binary header holds the sample interval in microseconds (`Interval`, bytes 3217-3218), `nt`
(`Samples`), format 5 and revision 1.

`s` is the largest of 10000, 1000, 100, 10, 1 for which every scaled coordinate fits the 32-bit
field, so coordinates keep 0.1 mm (typical surveys) to 1 m (coordinates beyond 214 km) resolution;
negative SEG-Y scalars mean "divide by". 2D coordinates are `(x, depth)` and `SourceY = GroupY = 0`;
3D coordinates are `(x, y, depth)`.

The exact `t0` and `dt` in ms (SEG-Y only holds integer microseconds and integer milliseconds), the
array layout and the trace count are also written on line C39 of the textual header, e.g.
`C39 JAXSEIS v1 nshots=4 nrec=21 nt=401 ndim=2 single=0 t0_ms=0.0 dt_ms=0.5`; `read_shots` uses it
when present and checks the file against it. Files written by other software are read from their
headers: traces grouped into shots by `FieldRecord` (every shot must have the same number of
traces), 3D when any `SourceY`/`GroupY` is nonzero.
"""

from __future__ import annotations

import os
import re

import numpy as np

from ._errors import InvalidArgument, InvalidShape
from ._geometry import TimeAxis

from ._model_io import read_model, write_model

__all__ = ["read_model", "read_shots", "write_model", "write_shots"]

_MAGIC = "JAXSEIS v1"
_INT32_MAX = 2**31 - 1


def _segyio():
    try:
        import segyio
    except ImportError as err:  # pragma: no cover - segyio is a dependency
        raise ImportError("jaxseis.io needs segyio: `pip install segyio`.") from err
    return segyio


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


def _scalar_for(values: np.ndarray) -> int:
    big = float(np.max(np.abs(values))) if values.size else 0.0
    for s in (10000, 1000, 100, 10, 1):
        if big * s <= _INT32_MAX:
            return s
    raise InvalidArgument(f"coordinates up to {big} m do not fit SEG-Y 32-bit coordinate fields.")


def write_shots(path, data, time, src, rec) -> None:
    """Write shot records and their acquisition geometry to a SEG-Y file.

    **Arguments:**

    - `path`: the file to create (overwritten if it exists).
    - `data`: `(nshots, nt, nrec)` records, or one record `(nt, nrec)`; stored as float32.
    - `time`: the `TimeAxis` (ms) of the records, or their uniformly spaced sample times in ms.
    - `src`: source positions in metres, `(nshots, ndim)` (one source per shot), or `(ndim,)` /
      `(1, ndim)` for one record; `ndim` is 2 (`x, depth`) or 3 (`x, y, depth`).
    - `rec`: receiver positions in metres, `(nrec, ndim)` shared by every shot, or
      `(nshots, nrec, ndim)`.

    The header mapping is in the module docstring: coordinates go to `SourceX/Y`, `GroupX/Y`
    with a `SourceGroupScalar`, depths to `SourceDepth` and (negated) `ReceiverGroupElevation` with
    an `ElevationScalar`, the sample interval to the binary header in microseconds.
    """
    segyio = _segyio()
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
    sc_xy, sc_z = _scalar_for(horiz), _scalar_for(depth)

    def q(v, scale):
        return int(np.rint(v * scale))

    spec = segyio.spec()
    spec.samples = t.values
    spec.tracecount = nshots * nrec
    spec.format = 5
    spec.endian = "big"
    tf = segyio.TraceField
    text = {
        1: "jaxseis shot records (metres, milliseconds)",
        2: f"{nshots} shots x {nrec} receivers, {nt} samples, dt = {t.dt:g} ms, t0 = {t.t0:g} ms",
        3: "shot-major traces: FieldRecord = shot, TraceNumber = receiver (1-based)",
        4: "SourceX/Y, GroupX/Y (m) scaled by SourceGroupScalar (negative = divide)",
        5: "SourceDepth = source depth, ReceiverGroupElevation = -receiver depth (m)",
        6: "depths scaled by ElevationScalar; sample interval in microseconds",
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
    with segyio.create(os.fspath(path), spec) as f:
        f.text[0] = segyio.tools.create_text_header(text)
        f.bin.update({segyio.BinField.Interval: dt_us, segyio.BinField.Samples: nt,
                      segyio.BinField.Format: 5, segyio.BinField.SEGYRevision: 1,
                      segyio.BinField.Traces: nrec, segyio.BinField.SortingCode: 1})
        for i in range(nshots):
            sx = s[i]
            for j in range(nrec):
                k = i * nrec + j
                gx = r[i, j]
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
                    tf.SourceDepth: q(sx[-1], sc_z),
                    tf.ReceiverGroupElevation: -q(gx[-1], sc_z),
                    tf.DelayRecordingTime: delay,
                    tf.TRACE_SAMPLE_COUNT: nt,
                    tf.TRACE_SAMPLE_INTERVAL: dt_us,
                }
            f.trace.raw[i * nrec:(i + 1) * nrec] = np.ascontiguousarray(d[i].T)


def _unscale(values: np.ndarray, scalar: np.ndarray) -> np.ndarray:
    """Apply SEG-Y coordinate scalars: positive multiplies, negative divides, 0 means 1."""
    sc = scalar.astype(float)
    factor = np.ones_like(sc)
    factor[sc > 0] = sc[sc > 0]
    factor[sc < 0] = 1.0 / -sc[sc < 0]
    return values.astype(float) * factor


def _diagnose(path: str, size: int) -> str:
    """Explain why segyio could not open a file whose size does not match its headers."""
    with open(path, "rb") as fh:
        head = fh.read(3600)
    ns = int.from_bytes(head[3220:3222], "big", signed=True)
    fmt = int.from_bytes(head[3224:3226], "big", signed=True)
    nbytes = {1: 4, 2: 4, 3: 2, 5: 4, 6: 8, 8: 1, 9: 8, 10: 4, 11: 2, 12: 8, 16: 1}.get(fmt)
    if ns <= 0 or nbytes is None:
        return (f"{path!r} is not a SEG-Y file: its binary header says {ns} samples per trace in "
                f"format {fmt}.")
    tsize = 240 + ns * nbytes
    full, rest = divmod(size - 3600, tsize)
    meta = _parse_meta(head[:3200].decode("cp500", errors="replace"))
    if meta is None:
        meta = _parse_meta(head[:3200].decode("ascii", errors="replace"))
    expected = ""
    if meta is not None and "nshots" in meta and "nrec" in meta:
        try:
            expected = f"expected {int(meta['nshots']) * int(meta['nrec'])} traces, "
        except ValueError:
            pass
    return (f"{path!r} is truncated or corrupt: {expected}found {full} complete traces of "
            f"{tsize} bytes (240-byte header + {ns} samples x {nbytes} bytes) and {rest} bytes of "
            "an incomplete one after the 3600-byte file header.")


def _parse_meta(text: str) -> dict | None:
    m = re.search(re.escape(_MAGIC) + r"((?:\s+\w+=\S+)+)", text)
    if m is None:
        return None
    return dict(kv.split("=", 1) for kv in m.group(1).split())


def read_shots(path):
    """Read shot records written by `write_shots` (or any SEG-Y file in the same layout).

    **Arguments:**

    - `path`: the SEG-Y file.

    **Returns:** `(data, time, src, rec)`:

    - `data`: float32 `(nshots, nt, nrec)`, or `(nt, nrec)` if a single record was written as 2D;
    - `time`: a `TimeAxis` (ms);
    - `src`: `(nshots, ndim)` source positions (m); `(1, ndim)` for a single record, as
      `Acoustic.forward` takes it;
    - `rec`: `(nrec, ndim)` receiver positions (m) when every shot has the same receivers, else
      `(nshots, nrec, ndim)`.

    **Raises:** `FileNotFoundError` if `path` does not exist; `jaxseis.InvalidArgument` naming the
    file and what is wrong if it is not a readable SEG-Y file, is truncated, or its headers are
    inconsistent.
    """
    segyio = _segyio()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SEG-Y file not found: {path!r}.")
    size = os.path.getsize(path)
    if size < 3600:
        raise InvalidArgument(
            f"{path!r} is not a SEG-Y file: it has {size} bytes, fewer than the 3600-byte SEG-Y "
            "file header.")
    try:
        f = segyio.open(path, "r", ignore_geometry=True)
    except RuntimeError:
        raise InvalidArgument(_diagnose(path, size)) from None
    except (OSError, ValueError) as err:
        raise InvalidArgument(f"{_diagnose(path, size)} (segyio: {err})") from None
    with f:
        ntr = f.tracecount
        ns = len(f.samples)
        if ns == 0 or ntr == 0:
            raise InvalidArgument(
                f"{path!r} is not a SEG-Y file with data: {ntr} traces of {ns} samples.")
        try:
            text = bytes(f.text[0]).decode("ascii", errors="replace")
        except Exception:  # noqa: BLE001 - a broken textual header just means "foreign file"
            text = ""
        meta = _parse_meta(text)
        tf = segyio.TraceField
        try:
            fields = [tf.FieldRecord, tf.SourceGroupScalar, tf.ElevationScalar, tf.SourceX,
                      tf.SourceY, tf.GroupX, tf.GroupY, tf.SourceDepth, tf.ReceiverGroupElevation,
                      tf.DelayRecordingTime]
            h = {k: np.asarray(f.attributes(k)[:]) for k in fields}
            raw = np.asarray(f.trace.raw[:], dtype=np.float32)
            interval_us = f.bin[segyio.BinField.Interval] or f.header[0][tf.TRACE_SAMPLE_INTERVAL]
        except (RuntimeError, OSError) as err:
            raise InvalidArgument(f"{path!r}: cannot read the traces ({err}).") from None

    if raw.shape != (ntr, ns):
        raise InvalidArgument(f"{path!r}: expected {ntr} traces of {ns} samples, read {raw.shape}.")
    if meta is not None:
        try:
            nshots, nrec, nt, ndim = (int(meta[k]) for k in ("nshots", "nrec", "nt", "ndim"))
            single = meta.get("single", "0") == "1"
            t0, dt = float(meta["t0_ms"]), float(meta["dt_ms"])
        except (KeyError, ValueError):
            raise InvalidArgument(
                f"{path!r}: malformed jaxseis line in the textual header: {meta}.") from None
        if ntr != nshots * nrec:
            raise InvalidArgument(
                f"{path!r} is truncated or corrupt: expected {nshots * nrec} traces ({nshots} "
                f"shots x {nrec} receivers, as its textual header says), found {ntr}.")
        if ns != nt:
            raise InvalidArgument(
                f"{path!r} is corrupt: expected {nt} samples per trace (textual header), found "
                f"{ns}.")
        if ndim not in (2, 3):
            raise InvalidArgument(
                f"{path!r}: ndim in the textual header must be 2 or 3, got {ndim}.")
        fr = h[tf.FieldRecord].reshape(nshots, nrec)
        if not np.all(fr == np.arange(1, nshots + 1)[:, None]):
            raise InvalidArgument(
                f"{path!r} is corrupt: FieldRecord headers do not number the shots 1..{nshots}.")
        order = np.arange(ntr)
    else:
        if not interval_us or interval_us <= 0:
            raise InvalidArgument(
                f"{path!r}: the sample interval in the binary header is {interval_us}.")
        dt = interval_us / 1000.0
        t0 = float(h[tf.DelayRecordingTime][0])
        nt = ns
        single = False
        fr = h[tf.FieldRecord]
        shots, counts = np.unique(fr, return_counts=True)
        if np.any(counts != counts[0]):
            raise InvalidArgument(
                f"{path!r}: shots (FieldRecord) have different numbers of traces "
                f"({counts.min()} to {counts.max()}); read it with segyio directly.")
        nshots, nrec = shots.size, int(counts[0])
        order = np.argsort(fr, kind="stable")
        ndim = 3 if (np.any(h[tf.SourceY] != 0) or np.any(h[tf.GroupY] != 0)) else 2

    sxy = lambda k: _unscale(h[k][order], h[tf.SourceGroupScalar][order])  # noqa: E731
    sz = lambda k: _unscale(h[k][order], h[tf.ElevationScalar][order])  # noqa: E731
    src_cols = [sxy(tf.SourceX)] + ([sxy(tf.SourceY)] if ndim == 3 else []) + [sz(tf.SourceDepth)]
    rec_cols = ([sxy(tf.GroupX)] + ([sxy(tf.GroupY)] if ndim == 3 else [])
                + [-sz(tf.ReceiverGroupElevation)])
    src_all = np.stack(src_cols, axis=-1).reshape(nshots, nrec, ndim)
    rec_all = np.stack(rec_cols, axis=-1).reshape(nshots, nrec, ndim)
    if not np.all(src_all == src_all[:, :1]):
        raise InvalidArgument(f"{path!r}: the source position changes within a shot (FieldRecord).")
    src = src_all[:, 0]
    rec = rec_all[0] if np.all(rec_all == rec_all[:1]) else rec_all
    data = raw[order].reshape(nshots, nrec, nt).transpose(0, 2, 1).copy()
    time = TimeAxis(t0, t0 + dt * (nt - 1), dt)
    if single:
        return data[0], time, src, rec
    return data, time, src, rec
