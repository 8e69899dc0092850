"""Exceptions raised by jaxseis.

Every error a user can cause by passing bad input is a `ValueError` (or `TypeError`) *and* a
`JaxseisError`, so ``except ValueError`` works as usual and ``except JaxseisError`` catches only ours
(the trick of ``devito/exceptions.py``). Messages open with the reason and name the argument.
"""

from __future__ import annotations


class JaxseisError(Exception):
    """Base class of every exception raised by jaxseis."""


class InvalidArgument(ValueError, JaxseisError):
    """An argument has a wrong value: out of range, non-finite, outside the domain, ..."""


class InvalidType(TypeError, JaxseisError):
    """An argument has the wrong type (for example a tuple where a `TimeAxis` is expected)."""


class InvalidShape(InvalidArgument):
    """An array argument has the wrong shape, ndim or length."""


class UnstableTimeStep(InvalidArgument):
    """``dt`` exceeds the CFL stability limit for the model's maximum velocity."""


class InsufficientMemory(InvalidArgument):
    """A saved forward wavefield would not fit in the memory available on this machine."""


class JaxseisWarning(UserWarning):
    """Base class of jaxseis warnings (for example, too few grid points per wavelength)."""


class DispersionWarning(JaxseisWarning):
    """The grid has fewer than about 4 points per minimum wavelength at the peak frequency."""


# ---------------------------------------------------------------------------------- under jax.jit
# A value error found by a host callback under `jax.jit` reaches the user inside JAX's
# `JaxRuntimeError`, whose text opens with "INTERNAL: CpuCallback error calling callback:" and a
# stack dump, our message being its last line; JAX also logs the callback's traceback to stderr.
# That wrapper cannot be changed from Python (the text is made by the XLA runtime; `eqx.error_if`
# under `jax.jit` gives the same wrapper). So jaxseis (1) keeps JAX's callback logger quiet about
# our own errors (no traceback spam) and (2) when such an error ends a script or a notebook cell,
# prints our message first, then the user's frames, instead of the stack dump. Set
# JAXSEIS_EXCEPTHOOK=0 to leave Python's and IPython's exception display alone.

import logging as _logging
import os as _os
import re as _re
import sys as _sys

_LINE = _re.compile(r"^(?:jaxseis\.[\w.]*\.)?(\w+): (.*)$")
_RAISED: dict = {}  # "Class: message" of jaxseis errors raised in host callbacks (bounded)


def record_callback_error(exc):
    """Remember a jaxseis error raised inside a host callback, so that the display hook reformats
    exactly ours (and nothing that only looks like it)."""
    _RAISED[f"{type(exc).__name__}: {exc}"] = None
    while len(_RAISED) > 256:
        _RAISED.pop(next(iter(_RAISED)))


class _QuietOwnErrors(_logging.Filter):
    """Drop JAX's "pure_callback failed" log records for jaxseis's own input errors."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, JaxseisError)


def jit_error_message(exc):
    """`(class name, message)` of the jaxseis error a `JaxRuntimeError` carries (its last line, a
    message one of our callbacks raised), or None."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return None
    match = _LINE.match(lines[-1].strip())
    if match and f"{match.group(1)}: {match.group(2)}" in _RAISED:
        return match.group(1), match.group(2)
    return None


def _is_jax_runtime_error(exc):
    try:
        import jax

        return isinstance(exc, jax.errors.JaxRuntimeError)
    except Exception:  # pragma: no cover - jax is a dependency
        return False


def _format(etype, value, tb):
    import traceback

    found = jit_error_message(value) if _is_jax_runtime_error(value) else None
    if found is None:
        return None
    name, msg = found
    frames = "".join(traceback.format_tb(tb)) if tb is not None else ""
    return (f"jaxseis.{name} (raised inside a jitted computation): {msg}\n"
            f"Traceback (most recent call last):\n{frames}"
            f"{etype.__module__}.{etype.__qualname__}: jaxseis.{name}: {msg}\n")


def _install():
    _logging.getLogger("jax._src.callback").addFilter(_QuietOwnErrors())
    if _os.environ.get("JAXSEIS_EXCEPTHOOK", "1") == "0":
        return
    previous = _sys.excepthook

    def hook(etype, value, tb):
        text = _format(etype, value, tb)
        if text is None:
            return previous(etype, value, tb)
        _sys.stderr.write(text)

    if not getattr(_sys.excepthook, "_jaxseis", False):
        hook._jaxseis = True
        _sys.excepthook = hook
    try:  # inside IPython / Jupyter: the same for a cell that ends with such an error
        from IPython import get_ipython

        ip = get_ipython()
    except Exception:
        ip = None
    # Only when no other custom handler is registered (IPython has one slot).
    if ip is not None and not getattr(ip, "custom_exceptions", ()):
        import jax

        def handler(shell, etype, value, tb, tb_offset=None):
            text = _format(etype, value, tb)
            if text is None:
                return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            _sys.last_type, _sys.last_value, _sys.last_traceback = etype, value, tb
            shell._showtraceback(etype, value, text.rstrip("\n").splitlines())
            return None

        ip.set_custom_exc((jax.errors.JaxRuntimeError,), handler)


_install()
