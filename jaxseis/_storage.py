"""How the forward wavefield reaches the gradient: `Acoustic(..., storage=...)` (any physics).

Strategy objects in the style of diffrax's adjoints: pick one by passing an instance.

- `FullStorage()` (default): every time level of the forward wavefield is kept on the host; a
  gradient costs two PDE solves. Memory: `(nt + 2)` padded grids per shot.
- `Checkpointed(n_checkpoints=None, block_steps=None)`: Revolve (binomial) checkpointing over blocks
  of time steps. The forward keeps the two time levels at the start of at most `n_checkpoints`
  blocks; the backward pass follows Griewank & Walther's optimal schedule (`jaxseis._revolve`): it
  re-advances from checkpoints as the schedule says and reverses one block at a time (recompute the
  block into a one-block buffer, then run the adjoint over it). Gradients equal `FullStorage`'s to
  round-off. Memory: `2 n_checkpoints + block_steps + 2` grids per shot.
  Time: with `n` checkpoints over `L` blocks and `r` the smallest integer with
  `C(n + 1 + r, r) >= L`, the schedule advances each block at most `r` times (`r = 1` for the
  default), plus once inside its reversal; and when the first sweep (which runs on to the end of
  the record for the data) passed the first block to reverse without storing its state, the
  backward re-advances to it once from the last checkpoint before it.
  The default `n_checkpoints = ceil(sqrt(nt / 2))`, with blocks of about `nt / n_checkpoints`
  steps, is the least memory for which one recomputation suffices (memory about `2.8 sqrt(nt)`
  grids; time 1.5x to 1.8x `FullStorage`'s, measured in benchmarks/bench_memory.py); fewer
  checkpoints cost more recomputation. Blocks are multiples of 3 steps (Devito's 3-level buffers
  line up) and at least `MIN_BLOCK_STEPS` long unless given, since each block costs two Devito
  calls (~1.6 ms of overhead each, measured on S2: about 20 time steps of work).
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

from . import _revolve
from ._errors import InvalidArgument

__all__ = ["FullStorage", "Checkpointed", "Subsampled", "Layout"]


@dataclass(frozen=True)
class Layout:
    """What a physics' state looks like to a storage strategy (counts of padded grids):

    - `saved`: fields a full history keeps every time level of (one for acoustic `u`);
    - `levels`: time levels a checkpoint keeps to restart (two for one second-order field);
    - `sub`: fields `Subsampled` keeps every `factor`-th step;
    - `multiple`: checkpoint blocks are multiples of this many steps (the circular buffers of the
      state and adjoint fields line up: 3 for second-order fields, 2 for first-order ones).
    """

    saved: int = 1
    levels: int = 2
    sub: int = 1
    multiple: int = 3


ACOUSTIC = Layout()


@dataclass(frozen=True)
class FullStorage:
    """Keep the whole forward wavefield (two PDE solves per gradient)."""

    def n_fields(self, nt: int, layout: Layout = ACOUSTIC) -> int:
        return layout.saved * (nt + 2)


MIN_BLOCK_STEPS = 24


@dataclass(frozen=True)
class Checkpointed:
    """Revolve checkpointing: at most `n_checkpoints` stored states (two time levels each) at block
    starts, blocks of `block_steps` time steps (rounded up to a multiple of 3); memory about
    `2 n_checkpoints + block_steps` grids per shot. `None` picks them (see the module docstring)."""

    n_checkpoints: int | None = None
    block_steps: int | None = None

    def __post_init__(self):
        for name in ("n_checkpoints", "block_steps"):
            n = getattr(self, name)
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
                raise InvalidArgument(f"`{name}` must be a positive integer or None, got {n!r}.")

    def snapshots(self, nt: int) -> int:
        """The checkpoint budget for `nt` time steps."""
        return self.n_checkpoints or math.ceil(math.sqrt(nt / 2))

    def block_length(self, nt: int, multiple: int = 3) -> int:
        if self.block_steps is not None:
            b = self.block_steps
        else:
            s = self.snapshots(nt)
            b = max(MIN_BLOCK_STEPS, min(2 * s, math.ceil(nt / (s + 1))))
        return min(multiple * math.ceil(b / multiple), multiple * math.ceil(nt / multiple))

    def segments(self, nt: int, multiple: int = 3) -> list[tuple[int, int]]:
        """Devito time-iteration ranges `(k0, k1)` (1-based, inclusive) of the blocks. Their lengths
        are multiples of `multiple` (3 for second-order fields) so that every block starts on the
        same slot of Devito's circular time buffers."""
        length = self.block_length(nt, multiple)
        return [(k0, min(k0 + length - 1, nt)) for k0 in range(1, nt + 1, length)]

    def schedule(self, nt: int, multiple: int = 3) -> list[tuple]:
        """The Revolve action list over the blocks (see `jaxseis._revolve.schedule`)."""
        return _revolve.schedule(len(self.segments(nt, multiple)), self.snapshots(nt))

    def n_stored(self, nt: int, multiple: int = 3) -> int:
        """Checkpoints actually held at the peak (at most `n_checkpoints`, at most blocks - 1)."""
        return min(self.snapshots(nt), len(self.segments(nt, multiple)) - 1)

    def n_fields(self, nt: int, layout: Layout = ACOUSTIC) -> int:
        return (layout.levels * self.n_stored(nt, layout.multiple)
                + layout.saved * (self.block_length(nt, layout.multiple) + 2))


@dataclass(frozen=True)
class Subsampled:
    """Keep the forward wavefield's second time difference every `factor` steps (memory / factor)."""

    factor: int = 4

    def __post_init__(self):
        if not isinstance(self.factor, int) or self.factor < 1:
            raise InvalidArgument(f"`factor` must be a positive integer, got {self.factor!r}.")

    def n_fields(self, nt: int, layout: Layout = ACOUSTIC) -> int:
        return layout.sub * (nt // self.factor + 2)
