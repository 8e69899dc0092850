"""The differentiable primitives every physics shares: `jax.custom_vjp`s around host solves.

Each primitive calls `_bridge.host_call` (a `pure_callback`), so it works under `jit`, `vmap` and
reverse-mode AD, and cotangents go to adjoint PDE solves, never through time steps. The model is a
dict `{parameter: array}` (the physics' `parameters`, in order); gradients and Born images come back
as the same dict. Three primitives do all the work:

| primitive | computes | linear in | VJP |
|---|---|---|---|
| `fwd(op, kind, model, s1, s2, rec)` | data | s1 | s1, model: `sweep` (one adjoint solve for both) |
| `born(op, kind, model, dmodel, s1, s2, rec)` | J(model) dmodel | dmodel | dmodel: `sweep("grad")` |
| `sweep(op, kind, outs, wrt, model, data, s1, s2, rec)` | adjoint outputs `outs` | data | data: `fwd` / `born` |

`kind` is "point" (`s1` = source time functions `(nt, nsrc)`, `s2` = source positions) or "extended"
(`s1` = weights on the grid, `s2` = wavelet `(nt,)`). `outs` names what the adjoint sweep returns:
"src" (adjoint wavefield at the sources), "weights" (extended-source adjoint) and "grad" (imaging
conditions with the forward wavefield: the FWI gradient / Born adjoint, a dict over the parameters
`wrt`). Because every bwd is built of these primitives, the adjoints are themselves differentiable
(Gauss-Newton products compose).

With `symbolic_zeros=True` the fwd rules know which inputs are perturbed: the forward saves its
wavefield only when a model parameter is, the adjoint images only the perturbed parameters, and a
perturbed input whose derivative is not implemented (positions, a parameter the physics does not
differentiate, a second derivative in the model) raises `NotImplementedError` naming it, never a
silent zero.
"""

from __future__ import annotations

import functools as ft
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from . import _bridge
from .devito import _tasks

__all__ = ["fwd", "born", "sweep"]


def _no_token():
    return jnp.zeros((), jnp.int32)


@jax.tree_util.register_static
@dataclass(frozen=True)
class _Flags:
    """Static facts the fwd rules pass to the bwd rules (which inputs were perturbed)."""

    wrt: tuple = ()
    s1: bool = False


def _refuse(arg, name, what):
    if arg is not None and arg.perturbed:
        raise NotImplementedError(
            f"jaxseis does not implement the derivative of {what} with respect to `{name}`; "
            f"stop gradients through it (jax.lax.stop_gradient) or differentiate another argument.")


def _refuse_model(op, model, arg, what, allowed=()):
    """Refuse a perturbed model parameter (not in `allowed`), naming it as the user knows it."""
    for k, v in model.items():
        if k not in allowed:
            _refuse(v, op._label(arg) if op.single_array else f"{k}` in `{arg}", what)


def _values(*args):
    return tuple(None if a is None else a.value for a in args)


def _mvalues(model):
    return {k: v.value for k, v in model.items()}


def _s_names(kind):
    return ("wavelet", "src") if kind == "point" else ("weights", "wavelet")


def _spec(op, shape, dtype=None):
    return jax.ShapeDtypeStruct(tuple(shape), dtype or op.dtype)


def _leaves(op, model, names=None):
    return [model[k] for k in (op.names if names is None else names)]


def _zero_filled(op, part: dict, names):
    """`part` with zeros for the names it lacks or holds as symbolic zeros (None if all zero)."""
    vals = {k: v for k, v in part.items()
            if v is not None and not isinstance(v, jax.custom_derivatives.SymbolicZero)}
    if not vals:
        return None
    return {k: vals[k] if k in vals else jnp.zeros(op.grid.shape, op.dtype) for k in names}


# ---------------------------------------------------------------------------------- forward
def _fwd_call(op, kind, save, model, s1, s2, rec):
    specs = [_spec(op, op.data_shape(rec.shape[0]))] + ([_spec(op, (), jnp.int32)] if save else [])
    task = _tasks.Batch("forward", op, kind, save, False)
    return _bridge.host_call(task, specs, *_leaves(op, model), s1, s2, rec)


@ft.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def fwd(op, kind, model, s1, s2, rec):
    return _fwd_call(op, kind, False, model, s1, s2, rec)[0]


def _fwd_fwd(op, kind, model, s1, s2, rec):
    what = "forward" if kind == "point" else "forward_extended"
    _refuse(s2, _s_names(kind)[1], what)
    _refuse(rec, "rec", what)
    _refuse_model(op, model, "model", what, allowed=op.differentiable)
    wrt = tuple(k for k in op.differentiable if model[k].perturbed)
    mv, (s1v, s2v, recv) = _mvalues(model), _values(s1, s2, rec)
    if wrt:
        _tasks.check_memory(op, 1)
        data, token = _fwd_saved(op, kind, mv, s1v, s2v, recv)
    else:
        data, token = _fwd_call(op, kind, False, mv, s1v, s2v, recv)[0], _no_token()
    return data, (mv, s1v, s2v, recv, token, _Flags(wrt=wrt, s1=s1.perturbed))


def _fwd_bwd(op, kind, res, ct):
    m, s1, s2, rec, token, flags = res
    if isinstance(ct, jax.custom_derivatives.SymbolicZero):
        return None, None, None, None
    outs = (("grad",) if flags.wrt else ()) + (("src" if kind == "point" else "weights",)
                                               if flags.s1 else ())
    if not outs:
        return None, None, None, None
    got = dict(zip(outs, _sweep(op, kind, outs, flags.wrt, m, ct, s1, s2, rec, token)))
    grad = got.get("grad")
    if grad is not None:
        grad = {k: grad.get(k) for k in op.names}
    return grad, got.get("src", got.get("weights")), None, None


fwd.defvjp(_fwd_fwd, _fwd_bwd, symbolic_zeros=True)


@ft.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fwd_saved(op, kind, model, s1, s2, rec):
    """The forward that keeps its wavefield for a gradient (returns data and a token). Only ever
    differentiated when someone asks for a second derivative, which is refused by name."""
    return tuple(_fwd_call(op, kind, True, model, s1, s2, rec))


def _fwd_saved_fwd(op, kind, model, s1, s2, rec):
    what = "the FWI gradient (second derivatives of forward are not implemented)"
    _refuse_model(op, model, "model", what)
    for arg, name in zip((s1, s2), _s_names(kind)):
        _refuse(arg, name, what)
    _refuse(rec, "rec", what)
    return _fwd_saved(op, kind, _mvalues(model), *_values(s1, s2, rec)), None


_fwd_saved.defvjp(_fwd_saved_fwd, lambda op, kind, res, ct: (None,) * 4, symbolic_zeros=True)


# ---------------------------------------------------------------------------------- born
@ft.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def born(op, kind, model, dmodel, s1, s2, rec):
    task = _tasks.Batch("forward", op, kind, False, True)
    return _bridge.host_call(task, [_spec(op, op.data_shape(rec.shape[0]))],
                             *_leaves(op, model), s1, s2, rec,
                             *_leaves(op, dmodel))[0]


def _born_fwd(op, kind, model, dmodel, s1, s2, rec):
    _refuse_model(op, model, "model0", "born (second derivatives of forward are not implemented)")
    for arg, name in zip((s1, s2), _s_names(kind)):
        _refuse(arg, name, "born")
    _refuse(rec, "rec", "born")
    mv, dmv = _mvalues(model), _mvalues(dmodel)
    s1v, s2v, recv = _values(s1, s2, rec)
    return born(op, kind, mv, dmv, s1v, s2v, recv), (mv, s1v, s2v, recv)


def _born_bwd(op, kind, res, ct):
    m, s1, s2, rec = res
    if isinstance(ct, jax.custom_derivatives.SymbolicZero):
        return None, None, None, None, None
    g = _sweep(op, kind, ("grad",), op.differentiable, m, ct, s1, s2, rec, _no_token())[0]
    return None, {k: g.get(k) for k in op.names}, None, None, None


born.defvjp(_born_fwd, _born_bwd, symbolic_zeros=True)


# ---------------------------------------------------------------------------------- adjoint sweep
def _sweep_specs(op, kind, outs, wrt, s2):
    specs = []
    for name in outs:
        if name == "grad":
            specs += [_spec(op, op.grid.shape) for _ in wrt]
        elif name == "weights":
            specs.append(_spec(op, op.grid.shape))
        else:  # "src"
            specs.append(_spec(op, (op.time.nt, s2.shape[0])))
    return specs


def sweep(op, kind, outs, wrt, model, data, s1, s2, rec):
    """The adjoint sweep's outputs `outs` ("grad" as a dict over `wrt`), in order."""
    return _sweep(op, kind, outs, tuple(wrt), model, data, s1, s2, rec, _no_token())


@ft.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _sweep(op, kind, outs, wrt, model, data, s1, s2, rec, token):
    task = _tasks.Batch("sweep", op, kind, outs, wrt)
    flat = _bridge.host_call(task, _sweep_specs(op, kind, outs, wrt, s2), *_leaves(op, model),
                             data, s1, s2, rec, token)
    res, i = [], 0
    for name in outs:
        if name == "grad":
            res.append(dict(zip(wrt, flat[i:i + len(wrt)])))
            i += len(wrt)
        else:
            res.append(flat[i])
            i += 1
    return tuple(res)


def _sweep_fwd(op, kind, outs, wrt, model, data, s1, s2, rec, token):
    what = {"src": "adjoint", "weights": "adjoint_extended", "grad": "born_adjoint (and of the "
            "FWI gradient: second derivatives are not implemented)"}
    for name in outs:
        _refuse_model(op, model, "model", what[name])
        if s1 is not None:
            _refuse(s1, _s_names(kind)[0], what[name])
        _refuse(s2, _s_names(kind)[1], what[name])
        _refuse(rec, "rec", what[name])
    mv = _mvalues(model)
    datav, s1v, s2v, recv, tokv = _values(data, s1, s2, rec, token)
    return _sweep(op, kind, outs, wrt, mv, datav, s1v, s2v, recv, tokv), (mv, s1v, s2v, recv)


def _sweep_bwd(op, kind, outs, wrt, res, cts):
    m, s1, s2, rec = res
    total = None
    for name, ct in zip(outs, cts):
        if name == "grad":
            dm = (None if isinstance(ct, jax.custom_derivatives.SymbolicZero)
                  else _zero_filled(op, ct, op.names))
            part = None if dm is None else born(op, kind, m, dm, s1, s2, rec)
        elif isinstance(ct, jax.custom_derivatives.SymbolicZero):
            part = None
        elif name == "src":
            part = fwd(op, "point", m, ct, s2, rec)
        else:  # "weights"
            part = fwd(op, "extended", m, ct, s2, rec)
        if part is not None:
            total = part if total is None else total + part
    return None, total, None, None, None, None


_sweep.defvjp(_sweep_fwd, _sweep_bwd, symbolic_zeros=True)
