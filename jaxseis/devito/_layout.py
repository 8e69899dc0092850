"""How jaxseis lays out the data of its Devito functions: rows padded to whole cache lines.

A Devito function on the padded grid stores its innermost (depth) axis with the halo on both
sides: S2's 381 points plus 2 x 8 halo points make rows of 397 floats (1588 bytes). That is not a
multiple of the 64-byte cache line, so every row starts at another offset within a line. The
compiled stencils load 8 floats (32 bytes) at a time, and any such load that spans two lines costs
two. With rows of 397 floats, about 7 of every 16 loads do, on every row.

Devito's `autopadding` adds a few unused points at the end of each row: 3 on S2, making rows of
400 floats, 1600 bytes, exactly 25 cache lines. Every row then starts on a line, and the domain
starts half a line in, behind the 8-point halo. The stencil's loads along the rows (the centre
point, the neighbouring rows, the coefficients, the previous level) and its store are then
32-byte aligned, and only the loads shifted along depth still cross lines. The compiled code is
the same, since Devito passes each function's allocated row length at run time. Only the padding
points are new, and no loop reads or writes them. Results are bit-identical.

Measured on S2, acoustic forward, the same compiled operator applied to padded and unpadded
functions in interleaved rounds (2026-12-04): the stencil's loop nest took 0.0634 s against 0.0705 s
(median of 21), 0.0497 against 0.0579 s (fastest). A standalone C copy of the loop showed the same.
`benchmarks/bench_tuning.py --configs static static+unpadded` measures it for every physics.
Memory: S2's rows grow from 397 to 400 points (0.8 %), S3's from 157 to 160 (2 %).

Devito has no per-function switch; its `padding=` argument is ignored. `autopadding` is read when
a function is created, from the process-wide configuration. `aligned_rows()` sets it while jaxseis
creates its own functions, under a lock, and then restores the previous value. Building an
operator (`_build.build_operator`) takes the same lock, so a build in one thread never sees the
setting another thread holds while it allocates (Devito may pad an operator's temporaries too).
Other Devito code in the process that creates functions from another thread at the same moment
could see jaxseis's value; code in the same thread, or not running concurrently, keeps its own
setting. Set `JAXSEIS_ALIGNED_ROWS=0` to allocate without padding, for comparison.

The unit is the node's largest memory transaction, counted in elements of the function's own
dtype: 64 bytes on a CPU node (16 float32 or 8 float64 points per row). On a node that also holds
a GPU, Devito pads to that device's transaction size (128 or 256 bytes), a few more points per
row: still whole cache lines, still bit-identical.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
from devito import configuration

__all__ = ["aligned_rows", "enabled", "lock"]

_LOCK = threading.RLock()


def lock():
    """The lock under which jaxseis changes Devito's `autopadding` (re-entrant): hold it to create
    Devito objects or build operators with the process's own setting."""
    return _LOCK


def enabled() -> bool:
    """Whether jaxseis pads its functions' rows (`JAXSEIS_ALIGNED_ROWS`, default on; "0",
    "false", "no" or "off" turn it off)."""
    return os.environ.get("JAXSEIS_ALIGNED_ROWS", "1").strip().lower() not in (
        "0", "false", "no", "off")


@contextlib.contextmanager
def aligned_rows(on=None, dtype=np.float32):
    """While active, the Devito functions created have their innermost axis padded to whole
    64-byte cache lines (`on=True`; Devito's `autopadding`, counted in items of `dtype`), or not
    padded at all (`on=False`); `on=None` follows `enabled()`. Functions with no spatial axis
    (time series) and sparse functions are never padded by Devito. Devito's previous setting is
    restored on exit, also on error."""
    on = enabled() if on is None else bool(on)
    value = np.dtype(dtype).type if on else False
    with _LOCK:
        previous = configuration["autopadding"]
        configuration["autopadding"] = value
        try:
            yield
        finally:
            configuration["autopadding"] = previous
