"""Where the shots of one batched call run.

`run(fn, items)` applies `fn(item, nthreads=None)` to every shot of a batch and returns the results in
order. The default runs them one after the other, each with all OpenMP threads.
"""

from __future__ import annotations

__all__ = ["run"]


def run(fn, items):
    return [fn(item) for item in items]
