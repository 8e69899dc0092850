"""Public checks for linear pairs and gradients: users validate their own compositions with them.

- `dot_test(f, ft, x, y)`: `<f(x), y>` against `<x, ft(y)>` (adjointness), relative mismatch.
- `taylor_test(loss, x, dx)`: remainders of the first and second order Taylor expansions of `loss`
  at `x` along `dx` for halving steps; a correct gradient gives convergence rates near 1 and 2
  (Devito's tests/test_gradient.py, JUDI's grad_test).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from ._errors import InvalidArgument

__all__ = ["dot_test", "taylor_test", "TaylorResult"]


def _vdot(a, b):
    """`<a, b>` in float64 for arrays or matching pytrees (dicts of arrays: summed over leaves)."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        raise InvalidArgument(f"the two sides have different structures: {len(la)} and {len(lb)} "
                         f"arrays ({jax.tree_util.tree_structure(a)} vs "
                         f"{jax.tree_util.tree_structure(b)}).")
    return float(sum(np.vdot(np.asarray(u, dtype=np.float64).ravel(),
                             np.asarray(v, dtype=np.float64).ravel()) for u, v in zip(la, lb)))


def dot_test(f, ft, x, y):
    """Relative mismatch `|<f(x), y> - <x, ft(y)>| / max(|<f(x), y>|, |<x, ft(y)>|)`.

    `x` and `y` may be arrays or pytrees (a model dict, say): the inner products sum over leaves.
    Returns `(mismatch, lhs, rhs)`. Exact discrete adjoints reach round-off: about 1e-6 in float32
    and 1e-13 in float64.
    """
    lhs = _vdot(f(x), y)
    rhs = _vdot(x, ft(y))
    return abs(lhs - rhs) / max(abs(lhs), abs(rhs), np.finfo(float).tiny), lhs, rhs


@dataclass(frozen=True)
class TaylorResult:
    steps: np.ndarray
    first_order: np.ndarray   # |f(x + h dx) - f(x)|
    second_order: np.ndarray  # |f(x + h dx) - f(x) - h <g, dx>|

    @property
    def rate1(self) -> float:
        """Fitted convergence rate of the first-order remainder (about 1)."""
        return float(np.polyfit(np.log(self.steps), np.log(self.first_order), 1)[0])

    @property
    def rate2(self) -> float:
        """Fitted convergence rate of the second-order remainder (about 2)."""
        return float(np.polyfit(np.log(self.steps), np.log(self.second_order), 1)[0])

    def __repr__(self):
        rows = "\n".join(f"  h={h:9.3e}  |r1|={a:10.4e}  |r2|={b:10.4e}"
                         for h, a, b in zip(self.steps, self.first_order, self.second_order))
        return f"TaylorResult(rate1={self.rate1:.3f}, rate2={self.rate2:.3f})\n{rows}"


def taylor_test(loss, x, dx, h0=1.0, n=5, grad=None):
    """Taylor remainders of scalar `loss` at `x` along `dx` (arrays or matching pytrees, e.g. model
    dicts), steps `h0 / 2**k`.

    `grad` defaults to `jax.grad(loss)(x)`. Returns a `TaylorResult` with `.rate1` (about 1) and
    `.rate2` (about 2 when the gradient is right).
    """
    g = jax.grad(loss)(x) if grad is None else grad
    f0 = float(loss(x))
    gdx = _vdot(g, dx)
    steps, r1, r2 = [], [], []
    for k in range(n):
        h = h0 / 2**k
        xh = jax.tree_util.tree_map(lambda a, b: a + h * b, x, dx)
        fh = float(loss(xh))
        steps.append(h)
        r1.append(abs(fh - f0))
        r2.append(abs(fh - f0 - h * gdx))
    return TaylorResult(np.array(steps), np.array(r1), np.array(r2))
