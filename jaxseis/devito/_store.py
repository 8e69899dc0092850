"""Saved forward wavefields on the host: `History` (what one forward kept for its gradient) and the
`WavefieldStore` that holds histories between the forward and the backward pass of a gradient.

Only an integer token crosses into JAX; a gradient whose token is gone (evicted, or JAX re-ran a
callback) recomputes its forward, so a stale token costs time, never correctness.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

__all__ = ["History", "WavefieldStore", "nbytes_of"]


def nbytes_of(f):
    """Bytes a Devito function allocates (halo and row padding included)."""
    return math.prod(f.shape_allocated) * np.dtype(f.dtype).itemsize


@dataclass
class History:
    """What a forward run kept for a later gradient (see `jaxseis._storage`)."""

    kind: str                     # "full", "sub" or "checkpoints"
    fields: dict = field(default_factory=dict)  # name -> saved (full) or subsampled (sub) field
    nbytes: int = 0
    factor: int = 1
    snapshots: dict | None = None   # checkpoints: block -> {component: (level k0, k0 - 1, ...)}
    segments: list | None = None    # checkpoints: the blocks' Devito time ranges (k0, k1)
    schedule: list | None = None    # checkpoints: Revolve actions left for the backward pass

    @property
    def field(self):
        """The single saved field of a one-field history (kept for older callers)."""
        return next(iter(self.fields.values())) if len(self.fields) == 1 else None


# Histories whose buffers a later forward may reuse (full and subsampled wavefields): a fresh
# multi-hundred-MB buffer per gradient costs its first touch, which on a VM can take seconds
# (measured here: 3.9 s to fill a fresh 400 MB array with transparent huge pages, 0.16 s without,
# 0.08 s reused; Subsampled(4) on the long record took 1.5-8 s instead of about 0.5 s while it
# allocated its subsampled field anew on every call).
_REUSABLE = ("full", "sub")


def _key(f):
    return (f.name, f.save)


class WavefieldStore:
    """Saved forward wavefields keyed by a token, within a byte budget.

    A gradient that has used its wavefield marks it *consumed*: it stays valid (a VJP closure may
    be pulled again) but its buffers are the first the next forward reuses, so a training loop keeps
    reusing the same memory instead of touching a fresh wavefield per gradient (first touch of new
    memory costs more than the solve itself). Beyond the budget the least recently used entries are
    evicted. A token that is gone makes the gradient recompute its forward.
    """

    def __init__(self, budget_bytes):
        self.budget = int(budget_bytes)
        self._entries: OrderedDict[int, History] = OrderedDict()
        self._consumed: set[int] = set()
        self._free: list = []
        self._lock = threading.Lock()

    def nbytes(self):
        return sum(h.nbytes for h in self._entries.values()) + sum(nbytes_of(f) for f in self._free)

    def __len__(self):
        return len(self._entries)

    def _pop(self, token):
        h = self._entries.pop(token)
        self._consumed.discard(token)
        return h

    def _take_free(self, key):
        for i, f in enumerate(self._free):
            if _key(f) == key:
                return self._free.pop(i)
        return None

    def acquire(self, key, make, nbytes):
        """A full-wavefield field with `key = (name, save)`: a free one, one of a consumed
        history, one of an evicted history, or a new one."""
        with self._lock:
            f = self._take_free(key)
            if f is not None:
                return f
            for token in list(self._entries):
                h = self._entries[token]
                if token in self._consumed and h.kind in _REUSABLE and any(
                        _key(g) == key for g in h.fields.values()):
                    self._free.extend(self._pop(token).fields.values())
                    return self._take_free(key)
            while self._entries and self.nbytes() + nbytes > self.budget:
                h = self._pop(next(iter(self._entries)))
                if h.kind in _REUSABLE:
                    self._free.extend(h.fields.values())
                    f = self._take_free(key)
                    if f is not None:
                        return f
                while self._free and self.nbytes() + nbytes > self.budget:
                    self._free.pop(0)
        return make()

    def put(self, token, history):
        with self._lock:
            self._entries[int(token)] = history
            while self._free and self.nbytes() > self.budget:
                self._free.pop(0)
            while len(self._entries) > 1 and self.nbytes() > self.budget:
                h = self._pop(next(iter(self._entries)))
                if h.kind in _REUSABLE:
                    self._free.extend(h.fields.values())
                while self._free and self.nbytes() > self.budget:
                    self._free.pop(0)

    def get(self, token):
        with self._lock:
            h = self._entries.get(int(token))
            if h is not None:
                self._entries.move_to_end(int(token))
            return h

    def consume(self, token):
        """The gradient of `token` is done: a full or subsampled wavefield's buffers may be reused
        by the next forward (and stay valid until then); checkpoints have no reusable buffer and
        are dropped, so a second pull of the same VJP recomputes them."""
        with self._lock:
            h = self._entries.get(int(token))
            if h is None:
                return
            if h.kind in _REUSABLE:
                self._consumed.add(int(token))
            else:
                self._pop(int(token))

    def release(self, history):
        """Return a history's full-wavefield buffers for reuse (after a one-off gradient)."""
        if history.kind in _REUSABLE:
            with self._lock:
                self._free.extend(history.fields.values())

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._consumed.clear()
            self._free.clear()
