"""SEG-Y helpers shared by the shot-record (`jaxseis.io`) and gridded-model (`_model_io`) readers
and writers: importing segyio, choosing coordinate scalars, applying them, opening a file with an
error that says what is wrong with it."""

from __future__ import annotations

import os

import numpy as np

from ._errors import InvalidArgument

__all__ = ["open_segy", "scalar_for", "segyio_module", "size_problem", "unscale"]

_INT32_MAX = 2**31 - 1
# Bytes per sample of the SEG-Y sample formats (binary header bytes 3225-3226).
_FORMAT_BYTES = {1: 4, 2: 4, 3: 2, 5: 4, 6: 8, 8: 1, 9: 8, 10: 4, 11: 2, 12: 8, 16: 1}


def segyio_module():
    """The segyio module (a dependency of jaxseis)."""
    try:
        import segyio
    except ImportError as err:  # pragma: no cover - segyio is a dependency
        raise ImportError("jaxseis.io needs segyio: `pip install segyio`.") from err
    return segyio


def scalar_for(values: np.ndarray) -> int:
    """The largest of 10000, 1000, 100, 10, 1 for which every `values * s` fits 32 bits."""
    big = float(np.max(np.abs(values))) if np.size(values) else 0.0
    for s in (10000, 1000, 100, 10, 1):
        if big * s <= _INT32_MAX:
            return s
    raise InvalidArgument(f"coordinates up to {big} m do not fit SEG-Y 32-bit coordinate fields.")


def unscale(values: np.ndarray, scalar: np.ndarray) -> np.ndarray:
    """Apply SEG-Y coordinate scalars: positive multiplies, negative divides, 0 means 1."""
    sc = np.broadcast_to(np.asarray(scalar).astype(float), np.shape(values))
    v = np.asarray(values).astype(float)
    out = v.copy()
    out[sc > 0] = v[sc > 0] * sc[sc > 0]
    out[sc < 0] = v[sc < 0] / -sc[sc < 0]  # divide (not multiply by 1/s): exact decimal round trips
    return out


def size_problem(path: str, size: int, expected_traces: int | None = None) -> str:
    """Explain why segyio cannot open `path`, from the sizes its binary header gives."""
    with open(path, "rb") as fh:
        head = fh.read(3600)
    ns = int.from_bytes(head[3220:3222], "big", signed=False)
    fmt = int.from_bytes(head[3224:3226], "big", signed=True)
    nbytes = _FORMAT_BYTES.get(fmt)
    if ns <= 0 or nbytes is None:
        return (f"`{path}` is not a SEG-Y file: its binary header says {ns} samples per trace in "
                f"format {fmt}.")
    tsize = 240 + ns * nbytes
    full, rest = divmod(size - 3600, tsize)
    expected = f"expected {expected_traces} traces, " if expected_traces is not None else ""
    return (f"`{path}` is truncated or corrupt: {expected}found {full} complete traces of {tsize} "
            f"bytes (240-byte header + {ns} samples x {nbytes} bytes) and {rest} bytes of an "
            f"incomplete one after the 3600-byte file header ({size} bytes in all).")


def open_segy(path: str, what: str = "SEG-Y file", expected_traces=None):
    """segyio handle of `path` (ignore_geometry), or an error naming the file and what is wrong.

    `what` names the file in the not-found message; `expected_traces(head)` (optional) returns the
    trace count the file's 3600-byte header promises, for the message about a truncated file.
    """
    segyio = segyio_module()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`{path}`: {what} not found.")
    size = os.path.getsize(path)
    if size < 3600:
        raise InvalidArgument(
            f"`{path}` is not a SEG-Y file: it has {size} bytes, fewer than the 3600-byte SEG-Y "
            "file header.")
    try:
        return segyio.open(path, "r", ignore_geometry=True)
    except (RuntimeError, OSError, ValueError) as err:
        n = None
        if expected_traces is not None:
            with open(path, "rb") as fh:
                n = expected_traces(fh.read(3600))
        raise InvalidArgument(f"{size_problem(path, size, n)} (segyio: {err})") from None
