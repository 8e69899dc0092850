"""The TOML configuration of `jaxseis model`, `jaxseis rtm` and `jaxseis fwi` (`jaxseis.workflow`).

`load_config(path, overrides=())` reads a file, applies `section.key=value` overrides (values in
TOML syntax; `stages.0.iterations=3` addresses the first `[[stages]]` table), checks every key and
value against `SCHEMA` and returns a `Config`: a plain nested dict with every default filled in.
A bad key or value raises `ConfigError` naming the key, its line in the file and the valid choices.
`describe()` is the key reference that `jaxseis <command> --help` prints.

Relative paths in the file are relative to the file's directory; paths given as overrides (on the
command line) are relative to the current directory. Units: m, ms, km/s, kHz, g/cm^3.
"""

from __future__ import annotations

import copy
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidArgument

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["SCHEMA", "Config", "ConfigError", "Key", "describe", "load_config", "physics_classes"]


class ConfigError(InvalidArgument):
    """A configuration key or value is not valid; the message names the key, its line and the
    valid choices."""


def physics_classes() -> dict[str, type]:
    """Every physics class `jaxseis` exports (subclasses of `WaveOperator`), by class name."""
    import jaxseis

    from ._operator import WaveOperator

    out = {}
    for name in dir(jaxseis):
        obj = getattr(jaxseis, name)
        if isinstance(obj, type) and issubclass(obj, WaveOperator) and obj is not WaveOperator:
            out[obj.__name__] = obj
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Key:
    """One configuration key: its kind, default, unit and meaning (and valid choices or range).

    `kind` is one of "str", "int", "float", "bool", "path", "paths" (a list of paths), "floats" (a
    list of numbers), "strs" (a list of strings), "table" (a free table: keys checked by the
    workflow). `choices` may be a callable returning them (physics names). `low`/`high` bound
    numbers (`low_open`: the bound itself is excluded)."""

    kind: str
    default: Any
    unit: str = ""
    doc: str = ""
    choices: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    length: int | None = None

    def valid(self) -> str:
        ch = self.choices() if callable(self.choices) else self.choices
        if ch is not None:
            return "one of " + ", ".join(repr(c) for c in ch)
        kind = {"int": "an integer", "float": "a number", "bool": "true or false",
                "str": "a string", "path": "a file path (string)",
                "paths": "a list of file paths", "floats": "a list of numbers",
                "strs": "a list of strings", "table": "a table"}[self.kind]
        if self.length:
            kind += f" of length {self.length}"
        if self.low is not None:
            kind += f" {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            kind += f" <= {self.high:g}"
        return kind


def _physics_names():
    return tuple(physics_classes())


_BUILTIN = ("none", "marmousi", "camembert", "layered", "random")

# Section -> key -> Key. `stages` is an array of tables with the keys of STAGE.
SCHEMA: dict[str, dict[str, Key]] = {
    "physics": {
        "name": Key("str", "Acoustic", "", "the wave equation: a physics class of jaxseis",
                    choices=_physics_names),
        "space_order": Key("int", 8, "", "finite-difference order (even)", low=2),
        "nbl": Key("int", 40, "cells", "absorbing layer width on every side", low=0),
        "free_surface": Key("bool", False, "", "zero-pressure surface at the first depth sample"),
        "options": Key("table", {}, "", "further constructor options of the physics class, e.g. "
                       "reference_frequency (kHz) of Viscoacoustic"),
    },
    "model": {
        "builtin": Key("str", "none", "", "the true model: a built-in one, or 'none' (files or "
                       "no true model)", choices=_BUILTIN),
        "spacing": Key("float", 30.0, "m", "grid spacing of a built-in model (Marmousi is "
                       "decimated from 7.5 m); also the spacing of .npy/raw model files",
                       low=0.0, low_open=True),
        "shape": Key("floats", [101, 51], "nodes", "[nx, nz] of the toy models camembert, "
                     "layered, random", length=2),
        "seed": Key("int", 0, "", "seed of the 'random' model", low=0),
        "files": Key("table", {}, "", "model files per parameter key (SEG-Y, .npy, .npz, .h5), "
                     "e.g. {vp = 'vp.sgy'} (km/s or m/s, see vp_unit) or {m = 'm.h5'} (s^2/km^2);"
                     " they override the built-in model"),
        "values": Key("table", {}, "", "constant values of parameters neither built in nor in "
                      "files, e.g. {rho = 1.0} (g/cm^3)"),
        "vp_unit": Key("str", "auto", "", "unit of velocity files: 'auto' (m/s if above 100)",
                       choices=("auto", "km/s", "m/s")),
    },
    "start": {
        "files": Key("table", {}, "", "starting-model files per parameter key (as model.files); "
                     "parameters without one start from the smoothed true model"),
        "values": Key("table", {}, "", "constant starting values per parameter key"),
        "smooth": Key("float", 300.0, "m", "standard deviation of the Gaussian that smooths the "
                      "true model into the starting model", low=0.0),
        "keep_water": Key("bool", True, "", "above preconditioning.water_depth the starting "
                          "model keeps the true values (a known water layer)"),
    },
    "acquisition": {
        "shots": Key("int", 8, "", "number of shots `jaxseis model` fires (evenly spaced)",
                     low=1),
        "source_x": Key("floats", [], "m", "[first, last] source x; [] = 5% inside the model",
                        length=None),
        "source_depth": Key("float", -1.0, "m", "source depth; < 0: two grid cells"),
        "receiver_depth": Key("float", -1.0, "m", "receiver depth; < 0: two grid cells"),
        "receiver_spacing": Key("float", 0.0, "m", "receiver interval along the whole surface; "
                                "0: the grid spacing", low=0.0),
        "record_length": Key("float", 0.0, "ms", "record length; 0: twice the time to cross "
                             "the model at its slowest velocity (model), or the data's", low=0.0),
        "dt": Key("float", 0.0, "ms", "modelling time step; 0: 0.9 x the stability limit of the "
                  "fastest velocity the bounds allow", low=0.0),
    },
    "data": {
        "files": Key("paths", [], "", "observed shot gathers (SEG-Y); `jaxseis model` writes the "
                     "first (default: <output.directory>/shots.sgy), rtm and fwi read them all"),
        "depth_convention": Key("str", "auto", "", "depth headers of the data files (see "
                                "jaxseis.io.read_shots)", choices=("auto", "su", "judi")),
    },
    "wavelet": {
        "kind": Key("str", "ricker", "", "'ricker' (peak frequency f0) or 'estimate' (damped "
                    "least squares from the data and the starting model)",
                    choices=("ricker", "estimate")),
        "f0": Key("float", 0.008, "kHz", "Ricker peak frequency (kind 'ricker'; always the "
                  "wavelet `jaxseis model` fires)", low=0.0, low_open=True),
        "damping": Key("float", 1e-3, "", "damping of the estimate, relative to the largest "
                       "power of the modelled spectrum", low=0.0, low_open=True),
        "max_offset": Key("float", 0.0, "m", "estimate from traces within this offset only; 0: "
                          "all", low=0.0),
    },
    "stages": {},  # array of tables, keys in STAGE
    "optimizer": {
        "name": Key("str", "adam", "", "an optax optimiser called as optax.<name>(learning_rate)"
                    , choices=None),
        "learning_rate": Key("float", 0.05, "units of the parameter", "step size; the gradient "
                             "is scaled to a unit maximum first, so with adam about the largest "
                             "change per iteration (km/s for vp)", low=0.0, low_open=True),
        "smooth_gradient": Key("float", 0.0, "m", "Gaussian smoothing of the gradient", low=0.0),
    },
    "bounds": {},  # parameter -> [low, high] (checked by the workflow)
    "preconditioning": {
        "water_depth": Key("float", 0.0, "m", "the gradient is zero above this depth", low=0.0),
        "depth_power": Key("float", 0.0, "", "the gradient is multiplied by (depth / max "
                           "depth)^power (compensates geometrical spreading)", low=0.0),
    },
    "inversion": {
        "parameters": Key("strs", ["vp"], "", "parameters inverted: model keys of the physics, or "
                          "'vp' for the squared slowness m (inverted as velocity)"),
        "shots_per_iteration": Key("int", 0, "", "random shots per iteration; 0: all", low=0),
        "seed": Key("int", 0, "", "seed of the shot selection", low=0),
    },
    "executor": {
        "kind": Key("str", "auto", "", "where the shots of an iteration run",
                    choices=("auto", "serial", "threads", "dask")),
        "workers": Key("int", 0, "", "threads: shots at once (0: the number of cores)", low=0),
        "address": Key("str", "", "", "dask: scheduler address, e.g. tcp://host:8786"),
    },
    "output": {
        "directory": Key("path", "jaxseis-out", "", "where results go (created)"),
        "figures": Key("bool", True, "", "write PNG figures"),
    },
}

STAGE: dict[str, Key] = {
    "max_frequency": Key("float", 0.0, "kHz", "data and wavelet low-pass filtered below this "
                         "frequency (0: unfiltered)", low=0.0),
    "iterations": Key("int", 10, "", "iterations of the stage", low=0),
}
_DEFAULT_STAGES = [{"max_frequency": 0.0, "iterations": 10}]
_SECTION_DOC = {
    "physics": "which wave equation, and its options",
    "model": "the true model (data of `jaxseis model`; model errors of `fwi`)",
    "start": "the starting model of rtm and fwi",
    "acquisition": "sources, receivers and time axis of `jaxseis model`",
    "data": "shot gathers written by `model`, read by rtm and fwi",
    "wavelet": "the source time function",
    "stages": "[[stages]]: frequency continuation, one table per stage, in order",
    "optimizer": "the optax optimiser of fwi",
    "bounds": "box constraints per inverted parameter, e.g. vp = [1.4, 4.8] (km/s); default: the "
              "starting model's range widened by 25%",
    "preconditioning": "gradient preconditioning",
    "inversion": "what fwi inverts",
    "executor": "where shots run",
    "output": "results",
}


class Config(dict):
    """A checked configuration: `{section: {key: value}}` with every default filled in, plus
    `stages` (a list of `{max_frequency, iterations}`) and `bounds` (`{name: [low, high]}`).
    `source` is the file it came from (or None) and `lines` maps dotted keys to line numbers."""

    source: str | None = None
    lines: dict = {}

    overridden: frozenset = frozenset()

    def where(self, path: str) -> str:
        """`path` with its line in the file (or "command line"), for error messages."""
        return _where(path, self.lines, self.source, self.overridden)


def _where(path: str, lines: dict, source, overridden=frozenset()) -> str:
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in overridden:
            return f"`{path}` (set on the command line)"
    for n in range(len(parts), 0, -1):
        k = ".".join(parts[:n])
        if k in lines:
            return f"`{path}` ({source}, line {lines[k]})" if source else \
                f"`{path}` (line {lines[k]})"
    if source:
        return f"`{path}` ({source})"
    return f"`{path}`"


# ----------------------------------------------------------------------------- line numbers
_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEYLINE = re.compile(r'^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
                      r'(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\'))*)\s*=')


def _split_key(k: str) -> list[str]:
    return [p.strip().strip("\"'") for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', k)]


def key_lines(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line for every table header and `key =` line of a TOML text (array
    tables get their index: `stages.0.iterations`)."""
    out: dict[str, int] = {}
    counts: dict[str, int] = {}
    prefix: list[str] = []
    depth = 0  # inside a multi-line array or inline table: skip nested `key =` lines
    for i, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if depth == 0 and stripped.startswith("["):
            m = _TABLE.match(line)
            if m:
                name = ".".join(_split_key(m.group(1)))
                if stripped.startswith("[["):
                    idx = counts.get(name, 0)
                    counts[name] = idx + 1
                    prefix = name.split(".") + [str(idx)]
                else:
                    prefix = name.split(".")
                out.setdefault(".".join(prefix), i)
                continue
        if depth == 0:
            m = _KEYLINE.match(line)
            if m:
                key = ".".join(prefix + _split_key(m.group(1)))
                out.setdefault(key, i)
                value = line[m.end():]
                # keys of an inline table on the same line
                im = re.match(r"\s*\{(.*)\}\s*(#.*)?$", value)
                if im:
                    for part in im.group(1).split(","):
                        km = _KEYLINE.match(part)
                        if km:
                            out.setdefault(key + "." + ".".join(_split_key(km.group(1))), i)
        code = re.sub(r'"[^"]*"|\'[^\']*\'|#.*$', "", line)
        depth += code.count("[") + code.count("{") - code.count("]") - code.count("}")
        depth = max(depth, 0)
    return out


# ----------------------------------------------------------------------------- checking
def _check_value(path: str, key: Key, value, where) -> Any:
    def bad(extra=""):
        raise ConfigError(f"{where(path)}: got {value!r}; must be {key.valid()}{extra}.")

    k = key.kind
    if k == "bool":
        if not isinstance(value, bool):
            bad()
        return value
    if k == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                bad()
    elif k == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad()
        value = float(value)
        if not math.isfinite(value):
            bad()
    elif k in ("str", "path"):
        if not isinstance(value, str):
            bad()
    elif k in ("paths", "strs"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            bad()
        return list(value)
    elif k == "floats":
        if not isinstance(value, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            bad()
        if key.length is not None and len(value) != key.length:
            bad()
        return [float(v) for v in value]
    elif k == "table":
        if not isinstance(value, dict):
            bad()
        return dict(value)
    if k in ("int", "float"):
        if key.low is not None and (value < key.low or (key.low_open and value <= key.low)):
            bad()
        if key.high is not None and value > key.high:
            bad()
    ch = key.choices() if callable(key.choices) else key.choices
    if ch is not None and value not in ch:
        bad()
    return value


def _unknown(path: str, valid, where):
    return ConfigError(f"{where(path)}: unknown key; valid keys here: "
                       f"{', '.join(map(repr, valid))}.")


def check(raw: dict, lines: dict | None = None, source: str | None = None,
          overridden=frozenset()) -> Config:
    """Check a parsed configuration dict and fill in the defaults (see `load_config`);
    `overridden`: the dotted keys set on the command line (their paths are relative to the
    current directory, their errors say so)."""
    lines = lines or {}
    overridden = frozenset(overridden)

    def where(p):
        return _where(p, lines, source, overridden)

    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a table of sections.")
    cfg = Config()
    cfg.source, cfg.lines, cfg.overridden = source, dict(lines), overridden
    for section in raw:
        if section not in SCHEMA:
            raise _unknown(section, list(SCHEMA), where)
    for section, keys in SCHEMA.items():
        given = raw.get(section, None)
        if section == "stages":
            stages = given if given is not None else copy.deepcopy(_DEFAULT_STAGES)
            if not isinstance(stages, list) or not stages or not all(
                    isinstance(s, dict) for s in stages):
                raise ConfigError(f"{where('stages')}: must be one or more [[stages]] tables "
                                  "with keys " + ", ".join(STAGE) + ".")
            out = []
            for i, st in enumerate(stages):
                for k in st:
                    if k not in STAGE:
                        raise _unknown(f"stages.{i}.{k}", list(STAGE), where)
                out.append({k: _check_value(f"stages.{i}.{k}", spec, st[k], where)
                            if k in st else spec.default for k, spec in STAGE.items()})
            cfg["stages"] = out
            continue
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise ConfigError(f"{where(section)}: must be a table [{section}].")
        if section == "bounds":
            b = {}
            for name, v in given.items():
                ok = (isinstance(v, list) and len(v) == 2 and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                    and math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1])
                if not ok:
                    raise ConfigError(f"{where('bounds.' + name)}: got {v!r}; must be "
                                      "[low, high] with low < high (units of the parameter).")
                b[name] = [float(v[0]), float(v[1])]
            cfg["bounds"] = b
            continue
        sec = {}
        for k in given:
            if k not in keys:
                raise _unknown(f"{section}.{k}", list(keys), where)
        for k, spec in keys.items():
            sec[k] = (_check_value(f"{section}.{k}", spec, given[k], where) if k in given
                      else copy.deepcopy(spec.default))
        cfg[section] = sec
    # cross-key checks that need no model
    so = cfg["physics"]["space_order"]
    if so % 2:
        raise ConfigError(f"{where('physics.space_order')}: got {so}; must be an even integer "
                          ">= 2.")
    if cfg["acquisition"]["source_x"] and len(cfg["acquisition"]["source_x"]) != 2:
        raise ConfigError(f"{where('acquisition.source_x')}: got "
                          f"{cfg['acquisition']['source_x']!r}; must be [] or [first, last] (m).")
    if cfg["executor"]["kind"] == "dask" and not cfg["executor"]["address"]:
        raise ConfigError(f"{where('executor.address')}: executor.kind 'dask' needs the "
                          "scheduler address, e.g. tcp://host:8786 (--scheduler ADDRESS).")
    _check_optimizer(cfg, where)
    _check_physics_options(cfg, where)
    # relative file paths: relative to the configuration file
    base = os.path.dirname(os.path.abspath(source)) if source else None
    if base is not None:
        def rel(p, key):
            if key in overridden or os.path.isabs(p):
                return p
            return os.path.join(base, p)

        for sec in ("model", "start"):
            cfg[sec]["files"] = {k: rel(v, f"{sec}.files.{k}") if isinstance(v, str) else v
                                 for k, v in cfg[sec]["files"].items()}
        cfg["data"]["files"] = [rel(p, "data.files") for p in cfg["data"]["files"]]
        cfg["output"]["directory"] = rel(cfg["output"]["directory"], "output.directory")
    for sec in ("model", "start"):
        for k, v in cfg[sec]["files"].items():
            if not isinstance(v, str):
                raise ConfigError(f"{where(f'{sec}.files.{k}')}: got {v!r}; must be a file path.")
        for k, v in cfg[sec]["values"].items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{where(f'{sec}.values.{k}')}: got {v!r}; must be a number.")
    return cfg


def _check_optimizer(cfg, where):
    import optax

    name = cfg["optimizer"]["name"]
    fn = getattr(optax, name, None) if not name.startswith("_") else None
    common = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "lbfgs", "lion", "nadam", "adabelief")
    if not callable(fn):
        raise ConfigError(f"{where('optimizer.name')}: got {name!r}; must be the name of an optax "
                          f"optimiser, e.g. one of {', '.join(map(repr, common))}.")


def _check_physics_options(cfg, where):
    from dataclasses import fields

    from ._operator import WaveOperator

    cls = physics_classes()[cfg["physics"]["name"]]
    common = {f.name for f in fields(WaveOperator)}
    valid = [f.name for f in fields(cls) if f.name not in common]
    for k in cfg["physics"]["options"]:
        if k not in valid:
            raise ConfigError(
                f"{where('physics.options.' + k)}: unknown option of {cls.__name__}; valid "
                f"options: {', '.join(map(repr, valid)) or 'none'}.")


# ----------------------------------------------------------------------------- overrides
def _parse_override(item: str):
    if "=" not in item:
        raise ConfigError(f"override {item!r}: must be key=value, e.g. stages.0.iterations=3.")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r}: empty key.")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # a bare string: paths, names
    return key.split("."), value


def apply_override(raw: dict, item: str, overridden: set | None = None) -> None:
    """Set `section.key=value` (TOML value; `stages.<i>.<key>` for a stage) in `raw`; the dotted
    key is added to `overridden`."""
    parts, value = _parse_override(item)
    node = raw
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            try:
                idx = int(p)
            except ValueError:
                raise ConfigError(f"override {item!r}: `{p}` must be a stage index.") from None
            if not 0 <= idx <= len(node):
                raise ConfigError(f"override {item!r}: there are {len(node)} stages; index "
                                  f"{idx} is not one of them (or the next).")
            if idx == len(node):
                node.append({})
            node = node[idx]
            continue
        if p not in node:
            if p == "stages":
                node[p] = copy.deepcopy(_DEFAULT_STAGES)
            else:
                node[p] = [] if nxt.isdigit() else {}
        node = node[p]
    last = parts[-1]
    if isinstance(node, list):
        raise ConfigError(f"override {item!r}: give a key of the stage, e.g. "
                          f"{'.'.join(parts)}.iterations=3.")
    node[last] = value
    if overridden is not None:
        overridden.add(".".join(parts))
        if parts[0] in ("model", "start") and len(parts) >= 2 and parts[1] == "files":
            for k in (value if isinstance(value, dict) and len(parts) == 2 else {}):
                overridden.add(f"{parts[0]}.files.{k}")


def load_config(path=None, overrides=(), text: str | None = None) -> Config:
    """Read, override and check a configuration.

    **Arguments:**

    - `path`: the TOML file (or None: every default, then the overrides).
    - `overrides`: `"section.key=value"` strings (TOML values; a bare word is a string), applied
      in order; `stages.<i>.<key>` addresses stage `i` (0-based; `i` = the number of stages adds
      one).
    - `text`: TOML text instead of a file (for tests and notebooks).

    **Returns:** a `Config`. **Raises:** `ConfigError` (an `InvalidArgument`) naming the key, its
    line and the valid choices; `FileNotFoundError` for a missing file.
    """
    source = None
    if path is not None:
        source = os.fspath(path)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"`{source}`: configuration file not found.")
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    text = text or ""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source or 'configuration'}: not valid TOML: {err}.") from None
    lines = key_lines(text)
    overridden: set = set()
    for item in overrides:
        apply_override(raw, item, overridden)
    return check(raw, lines, source, overridden)


# ----------------------------------------------------------------------------- documentation
def describe() -> str:
    """Every section and key with its default, unit and meaning (for `--help`)."""
    out = ["Configuration keys (TOML; `--set section.key=value` overrides one; units in "
           "brackets):"]
    for section, keys in SCHEMA.items():
        out.append(f"\n[{section}]  {_SECTION_DOC[section]}")
        items = STAGE.items() if section == "stages" else keys.items()
        if section == "stages":
            out[-1] = f"\n[[stages]]  {_SECTION_DOC[section].split(': ', 1)[1]}"
        for k, spec in items:
            unit = f" [{spec.unit}]" if spec.unit else ""
            ch = spec.choices() if callable(spec.choices) else spec.choices
            choices = f" ({' | '.join(ch)})" if ch else ""
            default = spec.default
            if isinstance(default, str):
                default = f"'{default}'"
            elif isinstance(default, bool):
                default = str(default).lower()
            out.append(f"  {k} = {default}{unit}{choices}: {spec.doc}")
    out.append("\nRelative paths in a file are relative to its directory.")
    return "\n".join(out)
