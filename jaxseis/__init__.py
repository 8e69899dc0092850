"""jaxseis: differentiable wave physics for JAX, with Devito-generated finite-difference solvers.

Units: metres, milliseconds, km/s, kHz, g/cm^3, radians; squared slowness `m = 1/vp**2` in s^2/km^2;
the last axis is depth; float32 by default. Each physics is a class in `jaxseis/physics/<name>/`.
"""

import importlib.metadata as _md
import os as _os

# Devito prints a line per operator run at INFO level; keep it quiet unless the user asked for it.
if "DEVITO_LOGGING" not in _os.environ:
    _os.environ["DEVITO_LOGGING"] = "WARNING"

from .physics.acoustic import Acoustic as Acoustic
from .physics.variable_density import VariableDensityAcoustic as VariableDensityAcoustic
from .physics.viscoacoustic import Viscoacoustic as Viscoacoustic
from .physics.elastic import Elastic as Elastic
from .physics.tti import TTIAcoustic as TTIAcoustic
from ._errors import (
    DispersionWarning as DispersionWarning,
    InsufficientMemory as InsufficientMemory,
    InvalidArgument as InvalidArgument,
    InvalidShape as InvalidShape,
    InvalidType as InvalidType,
    JaxseisError as JaxseisError,
    JaxseisWarning as JaxseisWarning,
    UnstableTimeStep as UnstableTimeStep,
)
from ._config import ConfigError as ConfigError
from ._executor import (
    AutoExecutor as AutoExecutor,
    ClusterUnavailable as ClusterUnavailable,
    DaskExecutor as DaskExecutor,
    SerialExecutor as SerialExecutor,
    ThreadExecutor as ThreadExecutor,
    current_executor as current_executor,
    executor as executor,
)
from ._storage import (
    Checkpointed as Checkpointed,
    FullStorage as FullStorage,
    Subsampled as Subsampled,
)
from ._geometry import Grid as Grid, TimeAxis as TimeAxis, critical_dt as critical_dt
from .wavelets import ricker as ricker
from . import io as io, losses as losses, models as models, nn as nn, plot as plot, testing as testing
from . import workflow as workflow
from .workflow import estimate_wavelet as estimate_wavelet

try:
    __version__ = _md.version("jaxseis")
except _md.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
