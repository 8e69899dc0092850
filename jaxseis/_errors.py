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
