"""How the forward wavefield reaches the gradient: `Acoustic(..., storage=...)`.

Strategy objects in the style of diffrax's adjoints: pick one by passing an instance.

- `FullStorage()` (default): every time level of the forward wavefield is kept on the host; a
  gradient costs two PDE solves. Memory: `(nt + 2)` padded grids per shot.
- `Checkpointed(n_checkpoints=None)`: the forward keeps only the two time levels at the start of
  each of `n_checkpoints` equal segments; the backward pass recomputes one segment at a time from its
  checkpoint (into a buffer of one segment) and runs the adjoint over it. Gradients equal
  `FullStorage`'s to round-off; three PDE solves per gradient; memory
  `2 * n_checkpoints + nt / n_checkpoints + 2` grids. The default `n_checkpoints ~ sqrt(nt) / 3`
  keeps memory near `3.7 sqrt(nt)` grids (`2.8 sqrt(nt)` is the minimum, at `sqrt(nt / 2)`) with
  fewer segments, since every segment costs two Devito calls of ~20 ms overhead. This is uniform two-level checkpointing, not Revolve's binomial schedule:
  one recomputation (time ~1.5x), at the cost of O(sqrt(nt)) rather than O(log) checkpoints.
- `Subsampled(factor)`: keeps the second time difference of the forward wavefield every `factor`-th
  step and evaluates the imaging condition only there (each sample weighted by `factor`): memory
  `nt / factor` grids, two solves. Accuracy: the imaging sum is a rectangle-rule quadrature of the
  time integral with step `factor * dt`; as long as `factor * dt` is well below the Nyquist period
  of the data (`1 / (2 f_max)`, about `1 / (6 f0)` for a Ricker wavelet of peak `f0`), the gradient
  stays within a few percent of `FullStorage`'s (tests/test_storage.py measures it: see there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._errors import InvalidArgument

__all__ = ["FullStorage", "Checkpointed", "Subsampled"]


@dataclass(frozen=True)
class FullStorage:
    """Keep the whole forward wavefield (two PDE solves per gradient)."""

    def n_fields(self, nt: int) -> int:
        return nt + 2


@dataclass(frozen=True)
class Checkpointed:
    """Checkpoint the forward wavefield at `n_checkpoints` segment starts and recompute segments in
    the backward pass (three solves per gradient, memory ~ `2 n + nt / n` grids)."""

    n_checkpoints: int | None = None

    def __post_init__(self):
        n = self.n_checkpoints
        if n is not None and (not isinstance(n, int) or n < 1):
            raise InvalidArgument(f"`n_checkpoints` must be a positive integer or None, got {n!r}.")

    def segments(self, nt: int) -> list[tuple[int, int]]:
        """Devito time-iteration ranges `(k0, k1)` (1-based, inclusive) of the segments. Their
        lengths are multiples of 3 so that every segment starts on the same slot of Devito's
        3-level circular time buffer."""
        n = self.n_checkpoints or max(1, round(math.sqrt(nt) / 3))
        n = min(n, nt)
        length = 3 * math.ceil(math.ceil(nt / n) / 3)
        return [(k0, min(k0 + length - 1, nt)) for k0 in range(1, nt + 1, length)]

    def n_fields(self, nt: int) -> int:
        segs = self.segments(nt)
        return 2 * len(segs) + max(k1 - k0 + 1 for k0, k1 in segs) + 2


@dataclass(frozen=True)
class Subsampled:
    """Keep the forward wavefield's second time difference every `factor` steps (memory / factor)."""

    factor: int = 4

    def __post_init__(self):
        if not isinstance(self.factor, int) or self.factor < 1:
            raise InvalidArgument(f"`factor` must be a positive integer, got {self.factor!r}.")

    def n_fields(self, nt: int) -> int:
        return nt // self.factor + 2
