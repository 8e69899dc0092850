"""Binomial (Revolve) checkpointing schedules, after Griewank & Walther, "Algorithm 799: revolve"
(ACM TOMS 26, 2000).

The time axis is cut into `n_steps` steps (for jaxseis: blocks of time steps, see
`jaxseis.Checkpointed`). State `i` is the wavefield at the start of step `i`; state 0 (the zero
initial state) is always available. To *reverse* step `i` its state must be at hand; with `c`
checkpoints (counting the initial state), the schedule that needs the fewest forward steps
(*advances*) is binomial: with `r` the smallest integer such that `beta(c, r) = C(c + r, c) >= L`,
reversing `L` steps costs

    t(L, c) = r L - beta(c + 1, r - 1)

advances (`r` is how often a step is recomputed at most), besides the one recomputation of each
step inside its own reversal. The schedule is generated recursively: advance `m` steps,
checkpoint, reverse the right part with one checkpoint fewer, then the left part; any `m` in
Revolve's optimal range keeps `t` minimal (tests/test_revolve.py checks every schedule against a
brute-force dynamic programme).

No Devito or JAX here: a schedule is a list of actions for `jaxseis.devito._solver` to run.

- `("advance", i, j)`: run the forward from state `i` (current, stored, or 0) to state `j`;
- `("store", i)`: keep the current state `i` as a checkpoint;
- `("drop", i)`: free the checkpoint of state `i`;
- `("reverse", i)`: recompute step `i` from its state and run the adjoint over it.
"""

from __future__ import annotations

from math import comb

from ._errors import InvalidArgument

__all__ = ["beta", "n_advances", "schedule"]


def beta(c: int, r: int) -> int:
    """How many steps `c` checkpoints reverse with at most `r` recomputations: `C(c + r, c)`."""
    return comb(c + r, c) if r >= 0 else 0


def _repetitions(n_steps: int, c: int) -> int:
    r = 0
    while beta(c, r) < n_steps:
        r += 1
    return r


def n_advances(n_steps: int, c: int) -> int:
    """Forward steps of the optimal schedule for `n_steps` steps with `c >= 1` checkpoints (counting
    the initial state), not counting the recomputation inside each reversal."""
    if n_steps <= 1:
        return 0
    if c <= 1:
        return n_steps * (n_steps - 1) // 2
    r = _repetitions(n_steps, c)
    return r * n_steps - beta(c + 1, r - 1)


def _split(n_steps: int, c: int) -> int:
    """The first checkpoint position: the low end of Revolve's optimal range
    `[max(L - beta(c-1, r), beta(c, r-2)), min(beta(c, r-1), L - beta(c-1, r-1))]`."""
    r = _repetitions(n_steps, c)
    return max(1, n_steps - beta(c - 1, r), beta(c, r - 2))


def schedule(n_steps: int, n_snapshots: int) -> list[tuple]:
    """The optimal action list reversing `n_steps` steps with `n_snapshots` stored states (besides
    the initial one). At most `n_snapshots` checkpoints are stored at any time."""
    if n_steps < 1:
        raise InvalidArgument(f"n_steps must be >= 1, got {n_steps}")
    if n_snapshots < 0:
        raise InvalidArgument(f"n_snapshots must be >= 0, got {n_snapshots}")
    actions: list[tuple] = []
    # The recursion "advance m, store, reverse the right part with one checkpoint fewer, drop,
    # reverse the left part" on an explicit stack (its depth grows with the checkpoints).
    todo: list[tuple] = [("reverse", 0, n_steps, n_snapshots)]
    while todo:
        task = todo.pop()
        if task[0] == "drop":
            actions.append(task)
            continue
        _, lo, hi, free = task  # state `lo` is available (current, stored or initial)
        while hi - lo > 1 and free == 0:
            actions.append(("advance", lo, hi - 1))
            actions.append(("reverse", hi - 1))
            hi -= 1
        if hi - lo == 1:
            actions.append(("reverse", lo))
            continue
        m = _split(hi - lo, free + 1)
        actions.append(("advance", lo, lo + m))
        actions.append(("store", lo + m))
        todo += [("reverse", lo, lo + m, free), ("drop", lo + m), ("reverse", lo + m, hi, free - 1)]
    return actions
