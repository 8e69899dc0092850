"""The one mechanism by which JAX calls the host-side Devito solvers.

`host_call(task, out_specs, *args)` is a `jax.pure_callback` with `vmap_method="expand_dims"`: under
any number of nested `jax.vmap`s the host receives *one* call with the whole batch (unbatched arguments
carry size-1 axes), broadcasts the leading batch axes, and hands the list of per-shot argument tuples
to `task`, which returns one output tuple per shot. So a batch of shots reaches the host together and
can be scheduled together. The callback takes and returns NumPy only: no JAX inside (callbacks may run
on a runtime thread, where JAX calls can deadlock: jax-ml/jax#24255).

Errors raised by `task` reach the user inside JAX's `JaxRuntimeError` under `jit`, with our message as
the last line; eager calls are validated before the callback (see `_acoustic.py`) and raise our
`ValueError`s directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import numpy as np

__all__ = ["host_call"]


def host_call(task: Callable[[list], list], out_specs: Sequence[jax.ShapeDtypeStruct], *args):
    """Run `task` on the host for every element of the (possibly vmapped) batch.

    **Arguments:**

    - `task`: `task(items) -> results`; `items` is a list with one tuple of NumPy arrays (or `None`
      where the argument is `None`) per batch element, `results` a list with one tuple of arrays per
      element, shaped like `out_specs`.
    - `out_specs`: the per-element output shapes and dtypes.
    - `args`: JAX arrays with their per-element (core) shapes, or `None`.

    **Returns:** a tuple of arrays shaped like `out_specs` (plus the vmapped axes).
    """
    present = [i for i, a in enumerate(args) if a is not None]
    core_ndims = [args[i].ndim for i in present]
    out_specs = tuple(out_specs)

    def callback(*arrays):
        arrays = [np.asarray(a) for a in arrays]
        leads = [a.shape[: a.ndim - nd] for a, nd in zip(arrays, core_ndims)]
        lead = np.broadcast_shapes(*leads) if leads else ()
        n = math.prod(lead)
        flat = []
        for a, nd in zip(arrays, core_ndims):
            core = a.shape[a.ndim - nd:]
            flat.append(np.broadcast_to(a, lead + core).reshape((n,) + core))
        items = []
        for b in range(n):
            item = [None] * len(args)
            for i, f in zip(present, flat):
                item[i] = f[b]
            items.append(tuple(item))
        results = task(items) if n else []
        outs = []
        for j, spec in enumerate(out_specs):
            if n == 1:  # one shot: no stacking copy of an array the task made for this call
                a = np.asarray(results[0][j])
                stacked = (a if a.flags.owndata else np.array(a))[None]
            elif n:
                stacked = np.stack([np.asarray(r[j]) for r in results])
            else:
                stacked = np.zeros((0,) + tuple(spec.shape))
            outs.append(np.asarray(stacked, dtype=spec.dtype).reshape(lead + tuple(spec.shape)))
        return tuple(outs)

    return jax.pure_callback(callback, out_specs, *[args[i] for i in present],
                             vmap_method="expand_dims")
