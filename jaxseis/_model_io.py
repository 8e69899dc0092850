"""Gridded models (velocity, squared slowness, density, ...) to and from files.

`read_model(path, ...)` returns `(array, Grid)` with the array in jaxseis order `[x, (y,) z]`
(last axis depth) and *the quantity the file stores* (no unit or velocity/slowness conversion);
`write_model(path, array, grid, ...)` writes one. The format comes from the extension, or from
`format=`:

| format | extensions | grid (spacing, origin) |
|---|---|---|
| `"segy"` | `.sgy`, `.segy` | trace headers (see below) or the jaxseis textual-header lines |
| `"npy"` | `.npy` | not stored: pass `spacing=` (and `origin=`) to `read_model` |
| `"npz"` | `.npz` | arrays `spacing` and `origin` beside the model array |
| `"hdf5"` | `.h5`, `.hdf5`, `.hdf` | JUDI's datasets `n`, `d`, `o` |
| `"raw"` | `.bin`, `.raw`, `.dat`, any other name with `shape=` | not stored: `spacing=` |

`spacing=` and `origin=` (metres, jaxseis axis order) given to `read_model` override what the file
says; a file without spacing information and no `spacing=` is an error naming the file.

**SEG-Y** (`write_model` writes this; other files are read the same way): one trace per horizontal
node, samples along depth. 2D: trace `i` is `x` node `i`. 3D: traces are x-major (trace
`i * ny + j` is node `(i, j)`), `INLINE_3D` (bytes 189-192) = `i + 1` numbers the x nodes and
`CROSSLINE_3D` (193-196) = `j + 1` the y nodes; a file is read as 3D when both take more than one
value (traces are sorted by inline then crossline). Horizontal positions: `SourceX`/`GroupX`
(73-76, 81-84), `SourceY`/`GroupY` (77-80, 85-88) and `CDP_X`/`CDP_Y` (181-188), scaled by
`SourceGroupScalar` (71-72; negative divides); the reader takes `GroupX`/`GroupY`, else `SourceX`/
`SourceY`, else `CDP_X`/`CDP_Y` (the first that varies), and the spacing from their (uniform) steps.
Depth: the sample interval (binary header bytes 3217-3218, trace bytes 117-118) holds the depth
spacing in **millimetres** (`dz_m = interval / 1000`: the "microseconds" field read as if the
samples were milliseconds of metres; the convention of the Marmousi-II SEG-Y, whose 1.25 m depth
sampling is stored as 1250; values up to 65535, i.e. 65.535 m, read unsigned), and
`DelayRecordingTime` (109-110) the depth of the first sample in whole metres. `write_model` also
writes the exact shape, spacing and origin on textual-header lines C37-C39
(`JAXSEIS-MODEL shape=...`, `spacing=...`, `origin=...`) and `read_model` prefers them, so round
trips are exact for any spacing; samples are big-endian IEEE float32 (format 5).

**Raw binary**: `shape` is the shape of the array *as stored*, `axes` names its axes (default
`("x", "z")` / `("x", "y", "z")`), `order` how it is laid out: `"C"` (the last index of `shape`
varies fastest) or `"F"` (the first fastest), `file_dtype` the stored sample type (default `"<f4"`,
little-endian float32). The file must hold exactly `prod(shape) * itemsize` bytes. Common layouts:

- Devito's examples (`vp_marmousi_bi`): x slow, depth fast: `shape=(nx, nz)` (defaults:
  `order="C"`, `axes=("x", "z")`).
- SEP / Madagascar / Fortran programs with `n1` = depth (depth fastest), `n2` = x: the *same bytes*
  as Devito's layout, so `shape=(nx, nz)` works, as does the Fortran description
  `shape=(nz, nx), order="F", axes=("z", "x")`.
- Depth-major files (one depth slice after another, x fastest): `shape=(nz, nx), axes=("z", "x")`.

**HDF5** (needs `h5py`): the layout JUDI (Julia) writes: datasets `n` (the number of nodes per
axis), `d` (spacing, m), `o` (origin, m) and the model under a name such as `m` (squared slowness,
s^2/km^2) or `m0` (the starting model); `key=` picks one when there are several. Julia is
column-major, so a Julia `(nx, nz)` array appears in HDF5 (and h5py) with its axes reversed,
`(nz, nx)`: `order="F"` (the default for HDF5) reverses the axes back to `[x, z]`; `order="C"`
reads a file whose datasets are already in C order `[x, z]`. The shape is checked against `n`.
`write_model` writes the same layout (the model transposed, `n`, `d`, `o` as given by the grid), so
JUDI reads the file directly.

**NPZ**: the model under `key` (default `"model"`), plus float64 arrays `spacing` and `origin`;
when reading, `key=` picks the array if the file holds several (other than `spacing`, `origin`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np

from . import _segy
from ._errors import InvalidArgument, InvalidShape, InvalidType
from ._geometry import Grid

__all__ = ["read_model", "write_model"]

_EXT = {".sgy": "segy", ".segy": "segy", ".npy": "npy", ".npz": "npz", ".h5": "hdf5",
        ".hdf5": "hdf5", ".hdf": "hdf5", ".bin": "raw", ".raw": "raw", ".dat": "raw"}
_FORMATS = ("segy", "npy", "npz", "hdf5", "raw")
_META = "JAXSEIS-MODEL"
_GRID_KEYS = ("spacing", "origin")
_JUDI_KEYS = ("n", "d", "o")


# --------------------------------------------------------------------------------------------------
# helpers


def _format_of(path: str, fmt, shape) -> str:
    if fmt is not None:
        f = str(fmt).lower().replace("-", "")
        f = {"sgy": "segy", "h5": "hdf5", "hdf": "hdf5", "bin": "raw", "binary": "raw"}.get(f, f)
        if f not in _FORMATS:
            raise InvalidArgument(
                f"`format` must be one of {', '.join(map(repr, _FORMATS))}, got {fmt!r}.")
        return f
    ext = os.path.splitext(path)[1].lower()
    if ext in _EXT:
        return _EXT[ext]
    if shape is not None:
        return "raw"
    raise InvalidArgument(
        f"`{path}`: cannot tell the format from the extension {ext!r}; use one of "
        f"{', '.join(sorted(_EXT))}, pass `format=` ({', '.join(_FORMATS)}), or `shape=` for a "
        "raw binary file.")


def _vector(value, name: str, ndim: int, positive: bool = False) -> tuple[float, ...]:
    try:
        v = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidType(f"`{name}` must be numbers in metres, got {value!r:.60}.") from None
    if v.size == 1:
        v = np.repeat(v, ndim)
    if v.size != ndim:
        raise InvalidShape(
            f"`{name}` must have {ndim} entries (metres, one per axis [x, (y,) z]), got {v.size}.")
    if not np.all(np.isfinite(v)) or (positive and np.any(v <= 0)):
        raise InvalidArgument(
            f"`{name}` must be {'positive and ' if positive else ''}finite (m), got {v.tolist()}.")
    return tuple(float(x) for x in v)


def _make_grid(path: str, shape, spacing, origin, file_spacing=None, file_origin=None) -> Grid:
    ndim = len(shape)
    if ndim not in (2, 3):
        raise InvalidShape(f"`{path}` holds a {ndim}D array of shape {tuple(shape)}; a model is 2D "
                           "[x, z] or 3D [x, y, z].")
    if spacing is None:
        spacing = file_spacing
    if spacing is None:
        raise InvalidArgument(
            f"`{path}` holds no grid spacing information: pass `spacing=` (metres, one value or "
            "one per axis [x, (y,) z]) to read_model.")
    if origin is None:
        origin = file_origin if file_origin is not None else 0.0
    return Grid(shape=tuple(int(n) for n in shape), spacing=_vector(spacing, "spacing", ndim, True),
                origin=_vector(origin, "origin", ndim))


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`{path}`: model file not found.")


def _atomic_write(path: str, write) -> None:
    """Call `write(tmp_path)`, then move the temporary file onto `path` (never half-written)."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".jaxseis-", suffix=os.path.splitext(path)[1], dir=d)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions open() would give, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _pick_key(path: str, keys: list[str], key, what: str) -> str:
    if key is not None:
        if key not in keys:
            raise InvalidArgument(
                f"`{path}` has no {what} {key!r} (the `key` argument); it holds "
                f"{', '.join(map(repr, keys)) or 'none'}.")
        return key
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise InvalidArgument(f"`{path}` holds no model array.")
    raise InvalidArgument(
        f"`{path}` holds several arrays ({', '.join(map(repr, keys))}): pick one with `key=`.")


def _axes_perm(axes, ndim: int, path: str) -> list[int] | None:
    """Permutation taking the stored axes `axes` to jaxseis order (x, (y,) z)."""
    want = ("x", "z") if ndim == 2 else ("x", "y", "z")
    if axes is None:
        return None
    names = tuple(str(a).lower() for a in axes)
    if sorted(names) != sorted(want):
        raise InvalidArgument(
            f"`axes` must name the {ndim} stored axes of `{path}` with {', '.join(want)} (each "
            "once), "
            f"e.g. {tuple(reversed(want))!r} for a depth-major file, got {tuple(axes)!r}.")
    return [names.index(a) for a in want]


def _order(order) -> str:
    o = str(order).upper()
    if o not in ("C", "F"):
        raise InvalidArgument(
            f"`order` must be 'C' (last index fastest) or 'F' (first index fastest), got "
            f"{order!r}.")
    return o


def _finish(a: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


# --------------------------------------------------------------------------------------------------
# SEG-Y


def open_segy(path: str):
    """segyio handle of `path` (ignore_geometry), or an `InvalidArgument` naming the file."""
    return _segy.open_segy(path, what="model file")


def _write_segy(path: str, a: np.ndarray, grid: Grid) -> None:
    segyio = _segy.segyio_module()
    tf = segyio.TraceField
    ndim = a.ndim
    nz = a.shape[-1]
    horiz = a.reshape(-1, nz).astype(np.float32)  # x-major, then y
    ntr = horiz.shape[0]
    xs = grid.coordinates(0)
    ys = grid.coordinates(1) if ndim == 3 else np.zeros(1)
    ix, iy = np.divmod(np.arange(ntr), ys.size)
    x, y = xs[ix], ys[iy]
    sc = _segy.scalar_for(np.concatenate([x, y]))
    dz_mm = int(round(grid.spacing[-1] * 1000.0))
    interval = dz_mm if 1 <= dz_mm <= 65535 else 0
    interval16 = interval - 65536 if interval > 32767 else interval  # segyio stores int16
    delay = int(round(grid.origin[-1]))
    delay = delay if -32768 <= delay <= 32767 else 0
    if nz > 65535:
        raise InvalidShape(f"`array` has {nz} depth samples; SEG-Y holds at most 65535 per trace.")

    def fmt(v):
        return ",".join(repr(float(t)) for t in v)

    lines = {37: f"{_META} shape={','.join(str(n) for n in a.shape)}",
             38: f"{_META} spacing={fmt(grid.spacing)}",
             39: f"{_META} origin={fmt(grid.origin)}"}
    for k in (38, 39):
        if len(lines[k]) > 76:  # pragma: no cover - only with very long float reprs
            key, vals = ("spacing", grid.spacing) if k == 38 else ("origin", grid.origin)
            lines[k] = f"{_META} {key}={','.join(f'{float(t):.9g}' for t in vals)}"
    text = {
        1: "jaxseis gridded model: one trace per horizontal node, samples along depth",
        2: f"shape {a.shape} [x, (y,) z]; spacing {grid.spacing} m; origin {grid.origin} m",
        3: "traces x-major (then y); INLINE_3D = x index + 1, CROSSLINE_3D = y index + 1",
        4: "x, y (m) in SourceX/Y, GroupX/Y, CDP_X/Y scaled by SourceGroupScalar",
        5: "sample interval = depth spacing in millimetres (dz_m = interval / 1000)",
        6: "DelayRecordingTime = depth of the first sample (m)",
        **lines, 40: "END TEXTUAL HEADER"}
    spec = segyio.spec()
    spec.samples = grid.coordinates(ndim - 1)
    spec.tracecount = ntr
    spec.format = 5
    spec.endian = "big"
    with segyio.create(path, spec) as f:
        f.text[0] = segyio.tools.create_text_header(text)
        f.bin.update({segyio.BinField.Interval: interval16, segyio.BinField.Samples: nz,
                      segyio.BinField.Format: 5, segyio.BinField.SEGYRevision: 1})
        for k in range(ntr):
            qx, qy = int(np.rint(x[k] * sc)), int(np.rint(y[k] * sc))
            f.header[k] = {
                tf.TRACE_SEQUENCE_LINE: k + 1, tf.TRACE_SEQUENCE_FILE: k + 1,
                tf.CDP: k + 1, tf.INLINE_3D: int(ix[k]) + 1, tf.CROSSLINE_3D: int(iy[k]) + 1,
                tf.SourceGroupScalar: -sc, tf.SourceX: qx, tf.SourceY: qy, tf.GroupX: qx,
                tf.GroupY: qy, tf.CDP_X: qx, tf.CDP_Y: qy, tf.DelayRecordingTime: delay,
                tf.TRACE_SAMPLE_COUNT: nz, tf.TRACE_SAMPLE_INTERVAL: interval16,
            }
        f.trace.raw[:] = horiz


def _segy_meta(text: str) -> dict:
    """The `JAXSEIS-MODEL key=value` lines of a 3200-character textual header."""
    out = {}
    for i in range(0, len(text), 80):
        line = text[i:i + 80]
        if _META in line:
            body = line[line.index(_META) + len(_META):].split()
            if body and "=" in body[0]:
                k, v = body[0].split("=", 1)
                out[k] = v
    return out


def _uniform_step(path: str, c: np.ndarray, what: str):
    """(origin, step) of equally spaced coordinates `c`, or None if they do not vary."""
    if c.size < 2 or np.all(c == c[0]):
        return None
    step = (c[-1] - c[0]) / (c.size - 1)
    if step <= 0 or not np.allclose(np.diff(c), step, rtol=1e-4, atol=1e-3):
        raise InvalidArgument(
            f"`{path}`: the {what} coordinates of the traces are not equally spaced and increasing "
            f"(from {c[0]} to {c[-1]} m, steps {np.min(np.diff(c))} to {np.max(np.diff(c))} m); "
            "pass `spacing=` and `origin=` to use the traces as a regular grid anyway.")
    return float(c[0]), float(step)


def _read_segy(path: str, spacing, origin, dtype):
    segyio = _segy.segyio_module()
    tf = segyio.TraceField
    with open_segy(path) as f:
        ntr, ns = f.tracecount, len(f.samples)
        if ntr == 0 or ns == 0:
            raise InvalidArgument(f"`{path}` holds no data: {ntr} traces of {ns} samples.")
        try:
            text = bytes(f.text[0]).decode("ascii", errors="replace")
        except Exception:  # noqa: BLE001 - a broken textual header only loses the jaxseis lines
            text = ""
        try:
            names = ["SourceGroupScalar", "SourceX", "SourceY", "GroupX", "GroupY", "CDP_X",
                     "CDP_Y", "INLINE_3D", "CROSSLINE_3D", "DelayRecordingTime",
                     "TRACE_SAMPLE_INTERVAL"]
            h = {k: np.asarray(f.attributes(getattr(tf, k))[:]) for k in names}
            raw = np.asarray(f.trace.raw[:], dtype=np.float64)
            interval = int(f.bin[segyio.BinField.Interval]) or int(h["TRACE_SAMPLE_INTERVAL"][0])
        except (RuntimeError, OSError) as err:
            raise InvalidArgument(f"`{path}`: cannot read the traces ({err}).") from None
    if raw.shape != (ntr, ns):
        raise InvalidArgument(f"`{path}`: expected {ntr} traces of {ns} samples, read {raw.shape}.")
    meta = _segy_meta(text)
    il, xl = h["INLINE_3D"], h["CROSSLINE_3D"]
    nil, nxl = np.unique(il).size, np.unique(xl).size
    if "shape" in meta:
        try:
            shape = tuple(int(v) for v in meta["shape"].split(","))
        except ValueError:
            raise InvalidArgument(f"`{path}`: malformed {_META} shape line {meta['shape']!r}.") \
                from None
        if int(np.prod(shape[:-1])) != ntr or shape[-1] != ns:
            raise InvalidArgument(
                f"`{path}` is truncated or corrupt: its textual header says shape {shape} "
                f"({int(np.prod(shape[:-1]))} traces of {shape[-1]} samples), found {ntr} traces "
                f"of {ns} samples.")
        three_d = len(shape) == 3
    else:
        three_d = nil > 1 and nxl > 1
    if three_d:
        order = np.lexsort((xl, il))
        nx, ny = np.unique(il).size, np.unique(xl).size
        ok = nx * ny == ntr
        if ok:
            il_s, xl_s = il[order].reshape(nx, ny), xl[order].reshape(nx, ny)
            ok = bool(np.all(il_s == il_s[:, :1]) and np.all(xl_s == xl_s[:1, :]))
        if not ok:
            raise InvalidArgument(
                f"`{path}`: {ntr} traces with {nx} inline and {ny} crossline numbers do not form a "
                "complete regular 3D grid (one trace per inline/crossline pair).")
        shape = (nx, ny, ns)
    else:
        order = np.arange(ntr)
        shape = (ntr, ns)
    a = raw[order].reshape(shape)

    file_spacing = file_origin = None
    if "spacing" in meta:
        try:
            file_spacing = tuple(float(v) for v in meta["spacing"].split(","))
            file_origin = tuple(float(v) for v in meta.get("origin", "").split(",")) \
                if meta.get("origin") else None
        except ValueError:
            raise InvalidArgument(f"`{path}`: malformed {_META} lines {meta}.") from None
    elif spacing is None or origin is None:
        scal = h["SourceGroupScalar"][order]
        coords = {k: _segy.unscale(h[k][order], scal) for k in
                  ("SourceX", "SourceY", "GroupX", "GroupY", "CDP_X", "CDP_Y")}

        def axis(name: str, along: np.ndarray):
            for k in (f"Group{name}", f"Source{name}", f"CDP_{name}"):
                c = coords[k].reshape(shape[:-1])
                step = _uniform_step(path, along(c), name.lower())
                if step is not None:
                    return step
            return None

        steps = [axis("X", (lambda c: c[:, 0]) if three_d else (lambda c: c))]
        if three_d:
            steps.append(axis("Y", lambda c: c[0, :]))
        if interval < 0:
            interval += 65536  # the 16-bit field read unsigned
        dz = interval / 1000.0 if interval > 0 else None
        z0 = float(h["DelayRecordingTime"][0])
        if all(s is not None for s in steps) and dz is not None:
            file_spacing = tuple(s[1] for s in steps) + (dz,)
            file_origin = tuple(s[0] for s in steps) + (z0,)
        elif spacing is None:
            missing = [n for n, s in zip("xy", steps) if s is None] + ([] if dz else ["z"])
            raise InvalidArgument(
                f"`{path}` holds no grid spacing information for axis {', '.join(missing)} (trace "
                "coordinates SourceX/GroupX/CDP_X (and Y) do not vary, or the sample interval is "
                "0): pass `spacing=` (metres, one per axis [x, (y,) z]) and `origin=`.")
    return _finish(a, dtype), _make_grid(path, a.shape, spacing, origin, file_spacing, file_origin)


# --------------------------------------------------------------------------------------------------
# HDF5


def _h5py(path: str):
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - h5py is a dependency
        raise ImportError(f"`{path}`: reading HDF5 needs h5py: `pip install h5py`.") from err
    return h5py


def _read_hdf5(path: str, key, order: str, spacing, origin, dtype):
    h5py = _h5py(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise InvalidArgument(f"`{path}` is not a readable HDF5 file ({err}).") from None
    with fh:
        keys = [k for k in fh.keys() if isinstance(fh[k], h5py.Dataset)]
        data_keys = [k for k in keys if k not in _JUDI_KEYS]
        k = _pick_key(path, data_keys, key, "dataset")
        a = np.asarray(fh[k][()])
        meta = {n: np.asarray(fh[n][()]).reshape(-1) for n in _JUDI_KEYS if n in keys}
    if a.ndim not in (2, 3):
        raise InvalidShape(f"`{path}`: dataset {k!r} has shape {a.shape}; a model is 2D or 3D.")
    if order == "F":
        a = a.T  # Julia column-major: HDF5 shows the axes reversed
    if "n" in meta:
        n = tuple(int(v) for v in meta["n"])
        if n != a.shape:
            other = "C" if order == "F" else "F"
            hint = (f"; with order={other!r} it would be {a.T.shape}" if a.T.shape == n else "")
            raise InvalidShape(
                f"`{path}`: dataset {k!r} read with order={order!r} has shape {a.shape} but `n` "
                f"says {n}{hint}.")
    missing = [n for n in ("d", "o") if n not in meta]
    if spacing is None and "d" in missing:
        raise InvalidArgument(
            f"`{path}` has no dataset 'd' (the grid spacing, m; it holds "
            f"{', '.join(map(repr, keys))}): pass `spacing=` to read_model.")
    return _finish(a, dtype), _make_grid(path, a.shape, spacing, origin, meta.get("d"),
                                         meta.get("o"))


def _write_hdf5(path: str, a: np.ndarray, grid: Grid, key: str, order: str) -> None:
    h5py = _h5py(path)
    with h5py.File(path, "w") as fh:
        fh["n"] = np.asarray(grid.shape, dtype=np.int64)
        fh["d"] = np.asarray(grid.spacing, dtype=np.float64)
        fh["o"] = np.asarray(grid.origin, dtype=np.float64)
        fh[key] = np.ascontiguousarray(a.T if order == "F" else a)


# --------------------------------------------------------------------------------------------------
# public API


def read_model(path, *, format: str | None = None, key: str | None = None,
               spacing: float | Sequence[float] | None = None,
               origin: float | Sequence[float] | None = None,
               shape: Sequence[int] | None = None, file_dtype="<f4", order: str | None = None,
               axes: Sequence[str] | None = None, dtype=np.float32) -> tuple[np.ndarray, Grid]:
    """Read a 2D or 3D gridded model from SEG-Y, NPY, NPZ, HDF5 (JUDI) or raw binary.

    **Arguments:**

    - `path`: the file; its extension picks the format (`.sgy`/`.segy`, `.npy`, `.npz`,
      `.h5`/`.hdf5`, `.bin`/`.raw`/`.dat`; layouts in the `jaxseis.io` module docstring).
    - `format`: `"segy"`, `"npy"`, `"npz"`, `"hdf5"` or `"raw"`, overriding the extension.
    - `key`: the array to read from an NPZ or HDF5 file holding several (e.g. JUDI's `"m"` or
      `"m0"`); an error lists the keys when it is needed and missing.
    - `spacing`, `origin`: the grid in metres, jaxseis axis order `[x, (y,) z]`; override the file.
      Required for NPY and raw files (origin defaults to zeros).
    - `shape`, `file_dtype`, `order`, `axes`: raw files only: the stored shape, sample type
      (default little-endian float32), layout `"C"` (last index fastest, default) or `"F"` (first
      index fastest) and axis names (default `("x", "z")`/`("x", "y", "z")`, e.g. `("z", "x")`
      for depth-major files). `order` also applies to HDF5: `"F"` (default) for Julia/JUDI files.
    - `dtype`: the returned array's dtype (float32; `None` keeps the stored one).

    **Returns:** `(array, grid)`: the stored quantity as it is in the file (JUDI's `m` stays squared
    slowness), in jaxseis order `[x, (y,) z]`, and its `Grid`.

    **Raises:** `FileNotFoundError`; `jaxseis.InvalidArgument` (or `InvalidShape`) naming the file
    for a wrong size, a truncated or malformed file, missing keys, or no spacing information.
    """
    path = os.fspath(path)
    fmt = _format_of(path, format, shape)
    _check_file(path)
    if fmt == "segy":
        return _read_segy(path, spacing, origin, dtype)
    if fmt == "hdf5":
        return _read_hdf5(path, key, _order(order or "F"), spacing, origin, dtype)
    if fmt == "npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InvalidArgument(f"`{path}` is not a readable .npy file ({err}).") from None
        return _finish(a, dtype), _make_grid(path, a.shape, spacing, origin)
    if fmt == "npz":
        try:
            z = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InvalidArgument(f"`{path}` is not a readable .npz file ({err}).") from None
        with z:
            keys = [k for k in z.files if k not in _GRID_KEYS]
            k = _pick_key(path, keys, key, "array")
            a = z[k]
            fs = z["spacing"] if "spacing" in z.files else None
            fo = z["origin"] if "origin" in z.files else None
        return _finish(a, dtype), _make_grid(path, a.shape, spacing, origin, fs, fo)
    # raw binary
    if shape is None:
        raise InvalidArgument(
            f"`{path}`: a raw binary file needs `shape=` (the stored shape, e.g. (nx, nz)), "
            "`spacing=` and, if not the defaults, `file_dtype=`, `order=` and `axes=`.")
    try:
        shp = tuple(int(n) for n in shape)
        fdt = np.dtype(file_dtype)
    except (TypeError, ValueError):
        raise InvalidType(
            f"`shape` must be integers and `file_dtype` a NumPy dtype for `{path}`, got {shape!r} "
            f"and {file_dtype!r}.") from None
    if len(shp) not in (2, 3) or min(shp) < 1:
        raise InvalidShape(f"`shape` must be 2 or 3 positive sizes for `{path}`, got {shp}.")
    perm = _axes_perm(axes, len(shp), path)
    o = _order(order or "C")
    size, expected = os.path.getsize(path), int(np.prod(shp)) * fdt.itemsize
    if size != expected:
        raise InvalidArgument(
            f"`{path}` has {size} bytes but shape {shp} of {fdt.str} ({fdt.itemsize} bytes each) "
            f"needs {expected} bytes.")
    a = np.fromfile(path, dtype=fdt).reshape(shp, order=o)
    if perm is not None:
        a = a.transpose(perm)
    return _finish(a, dtype), _make_grid(path, a.shape, spacing, origin)


def write_model(path, array, grid: Grid, *, format: str | None = None, key: str | None = None,
                file_dtype="<f4", order: str | None = None,
                axes: Sequence[str] | None = None) -> None:
    """Write a 2D or 3D gridded model, in the layouts `read_model` reads back exactly.

    **Arguments:**

    - `path`: the file to create (replaced if it exists; written to a temporary file first, so it
      is never left half-written). The extension picks the format, or `format=`.
    - `array`: the model `[x, (y,) z]` (any quantity; stored as float32 in SEG-Y and raw files
      unless `file_dtype` says otherwise, as given in NPY/NPZ/HDF5).
    - `grid`: its `Grid` (spacing and origin are stored in SEG-Y, NPZ and HDF5; not in NPY and raw).
    - `key`: the array name in NPZ (default `"model"`) and HDF5 (default `"m"`, JUDI's name).
    - `file_dtype`, `order`, `axes`: raw layout (as in `read_model`); `order` `"F"` (default) or
      `"C"` also for HDF5.
    """
    path = os.fspath(path)
    if not isinstance(grid, Grid):
        raise InvalidType(f"`grid` must be a jaxseis.Grid, got {type(grid).__name__}.")
    try:
        a = np.asarray(array)
    except Exception:  # noqa: BLE001
        raise InvalidType(f"`array` must be an array, got {type(array).__name__}.") from None
    if a.shape != grid.shape:
        raise InvalidShape(f"`array` has shape {a.shape} but `grid` has shape {grid.shape}.")
    if a.dtype.kind not in "fiu":
        raise InvalidType(f"`array` must hold real numbers, got dtype {a.dtype}.")
    fmt = _format_of(path, format, grid.shape)  # unknown extension: raw
    if fmt == "segy":
        _atomic_write(path, lambda p: _write_segy(p, a, grid))
    elif fmt == "hdf5":
        _atomic_write(path, lambda p: _write_hdf5(p, a, grid, key or "m", _order(order or "F")))
    elif fmt == "npy":
        def w(p):
            with open(p, "wb") as fh:
                np.save(fh, a, allow_pickle=False)
        _atomic_write(path, w)
    elif fmt == "npz":
        k = key or "model"
        if k in _GRID_KEYS:
            raise InvalidArgument(f"`key` must not be {k!r}: that name holds the grid.")

        def w(p):
            with open(p, "wb") as fh:
                np.savez(fh, **{k: a, "spacing": np.asarray(grid.spacing),
                                "origin": np.asarray(grid.origin)})
        _atomic_write(path, w)
    else:
        perm = _axes_perm(axes, a.ndim, path)
        stored = a if perm is None else a.transpose(np.argsort(perm))
        o = _order(order or "C")
        data = np.asarray(stored, dtype=np.dtype(file_dtype))

        def w(p):
            with open(p, "wb") as fh:
                fh.write(data.tobytes(order=o))
        _atomic_write(path, w)
