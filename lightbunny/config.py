"""Typed, validated configurations of the pipeline (``lightbunny run CONFIG``).

A configuration is a TOML file (or a dict) with a top-level ``version`` and one table per stage:
``[pipeline]``, ``[simulate]``, ``[sources]``, ``[dataset]``, ``[train]``, ``[evaluate]``,
``[apply]``. :func:`load_config` checks all of it before anything runs:

* unknown sections and keys are refused, with the allowed ones and a "did you mean";
* values are converted only where nothing is lost (``2.0`` for an int, ``10`` for a list of
  floats, ``"Cz"`` for a list of channel names); anything else (``1.9`` epochs, ``"10"`` as a
  list of SNRs, ``nan``) is refused, naming the key, the value and what is allowed;
* ranges and choices are checked (``epochs >= 1``, ``orientation`` in normal/free_sum, ...);
* the free-form tables ``[dataset]``, ``[evaluate] dataset``, ``[train] model_config`` and
  ``[train] options`` are checked against the signatures of the functions they are passed to
  (:class:`lightbunny.dataset.SyntheticEEGDataset`, the model class,
  :func:`lightbunny.train.train`), and the model is built once on torch's ``meta`` device, so
  a bad hyperparameter fails here and not after an hour of simulation.

The result is a frozen :class:`Config` of frozen section dataclasses.

Examples
--------
>>> cfg = load_config({"train": {"epochs": 2.0}, "evaluate": {"snrs": 10}})
>>> cfg.train.epochs, cfg.evaluate.snrs
(2, (10.0,))
>>> load_config({"train": {"epoch": 3}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
lightbunny.config.ConfigError: Unknown option 'epoch' in [train]. Did you mean 'epochs'? ...
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Version of the configuration format (the top-level ``version`` key).
CONFIG_VERSION = 1
#: Shipped configurations (``lightbunny/configs/<name>.toml``).
CONFIGS = ("quickstart", "seed994", "deepsif75")


class ConfigError(ValueError):
    """An invalid configuration; the message names the section, key, value and what is allowed."""


# ----------------------------------------------------------------------------------- fields
def _opt(default, kind: str, **meta):
    """A dataclass field with its validation ``kind`` and limits in the metadata."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default),
                     metadata={"kind": kind, **meta})
    return field(default=default, metadata={"kind": kind, **meta})


def _choices(module: str, name: str):
    """Allowed values read from the module that uses them (so the two never disagree)."""
    import importlib

    return tuple(getattr(importlib.import_module(f"lightbunny.{module}"), name))


@dataclass(frozen=True)
class PipelineConfig:
    """``[pipeline]``: where outputs go and what every stage shares."""

    out: str = _opt("source/run", "str")
    atlas: str = _opt("tvb76", "str", choices=lambda: _choices("atlas", "ATLAS_NAMES"))
    data_dir: str | None = _opt(None, "opt_str")
    montage: Any = _opt("standard_1020_64", "montage")
    orientation: str = _opt("normal", "str", choices=lambda: ("normal", "free_sum"))
    head_model: str | None = _opt(None, "opt_str",
                                  choices=lambda: _choices("leadfield", "HEAD_MODELS"))
    seed: int = _opt(0, "int", low=0)
    device: str = _opt("auto", "device")
    threads: int | None = _opt(None, "opt_int", low=1)


@dataclass(frozen=True)
class SimulateConfig:
    """``[simulate]``: the neural-mass simulation and spike bank."""

    duration: float = _opt(20.0, "float", low=0.0, low_open=True)
    batch_size: int = _opt(38, "int", low=1)
    backend: str = _opt("torch", "str", choices=lambda: _choices("simulate", "BACKENDS"))
    regions: Any = _opt(None, "regions")
    scheduler: str | None = _opt(None, "opt_str")


@dataclass(frozen=True)
class SourcesConfig:
    """``[sources]``: synthetic source patches of the train, val and test splits."""

    n_sources: int = _opt(2, "int", low=1)
    n_iter_train: int | None = _opt(None, "opt_int", low=1)
    n_iter_val: int | None = _opt(None, "opt_int", low=1)
    n_iter_test: int | None = _opt(None, "opt_int", low=1)
    half_distance: Any = _opt((40.0, 60.0), "half_distance")


@dataclass(frozen=True)
class TrainConfig:
    """``[train]``: the network and how it is trained."""

    model: str = _opt("lightbunny", "str", choices=lambda: tuple(_choices("models", "MODELS")))
    model_config: dict = _opt({}, "dict")
    epochs: int = _opt(20, "int", low=1)
    batch_size: int = _opt(32, "int", low=1)
    recipe: str = _opt("lightbunny", "str",
                       choices=lambda: tuple(_choices("train", "TRAIN_RECIPES")))
    options: dict = _opt({}, "dict")


@dataclass(frozen=True)
class EvaluateConfig:
    """``[evaluate]``: classical methods and the network on identical test samples."""

    methods: tuple = _opt(("sloreta", "eloreta", "mne", "dspm"), "strs",
                          choices=lambda: _choices("evaluate", "CLASSICAL_METHODS"))
    snrs: tuple = _opt((5.0, 10.0, 15.0, 20.0), "floats", allow_inf=True, nonempty=True)
    n_samples: int | None = _opt(200, "opt_int", low=1)
    dataset: dict = _opt({}, "dict")


@dataclass(frozen=True)
class ApplyConfig:
    """``[apply]``: a simulated EDF recording imaged through the real-EEG path."""

    enabled: bool = _opt(True, "bool")
    region: Any = _opt(None, "region")
    sfreq: float = _opt(256.0, "float", low=0.0, low_open=True)
    missing: tuple = _opt(("Cz", "O1", "FC3"), "strs")


SECTIONS = {"pipeline": PipelineConfig, "simulate": SimulateConfig, "sources": SourcesConfig,
            "dataset": None, "train": TrainConfig, "evaluate": EvaluateConfig,
            "apply": ApplyConfig}


@dataclass(frozen=True)
class Config:
    """A validated pipeline configuration (see the module docstring)."""

    version: int = CONFIG_VERSION
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    dataset: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    apply: ApplyConfig = field(default_factory=ApplyConfig)

    def __getitem__(self, section: str) -> dict:
        """``cfg["train"]`` is the ``[train]`` table as a plain dict."""
        return self.to_dict()[section]

    def to_dict(self) -> dict:
        """Plain, JSON-ready dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    def replace(self, section: str, **values) -> Config:
        """A copy with ``values`` set in ``section``, validated again."""
        d = self.to_dict()
        d[section].update(values)
        return load_config(d)


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------- loading
def config_path(name: str) -> Path:
    """Path of a shipped configuration (``quickstart``, ``seed994``, ``deepsif75``)."""
    from .utils import check_option

    check_option("config", name, CONFIGS)
    return Path(__file__).parent / "configs" / f"{name}.toml"


def _toml():
    """``tomllib`` (Python >= 3.11) or its backport ``tomli`` (a dependency on 3.10)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    return tomllib


def read_toml(path) -> dict:
    """Read a TOML file; a syntax error becomes a :class:`ConfigError` naming the file."""
    tomllib = _toml()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No configuration file at {path} (shipped ones: "
                                f"{', '.join(CONFIGS)})")
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML (not UTF-8 text): {err}") from None


def load_config(config=None, *, check_model: bool = True) -> Config:
    """Validate a configuration: a TOML path, a shipped name, a dict or a :class:`Config`.

    Parameters
    ----------
    config : path | str | dict | Config | None
        None gives the defaults.
    check_model : bool
        Build the model once on torch's ``meta`` device (no memory, no computation) to check
        ``[train] model_config`` beyond types (e.g. ``chunk_size`` must divide 500).

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        On unknown sections or keys, wrong types, out-of-range values or options the model,
        dataset or trainer does not take; the message names all of them.
    FileNotFoundError
        When a path is given and no file is there.
    """
    if isinstance(config, Config):
        return config
    config = _as_mapping(config)
    errors: list[str] = []
    version = _check_version(config.get("version", CONFIG_VERSION), errors)
    sections = _known_sections(config, errors)
    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        values = sections.get(name, {})
        if cls is None:
            built[name] = _check_kwargs(f"[{name}]", values, **_DATASET_SIGNATURE(), errors=errors)
        else:
            built[name] = _section_kwargs(name, cls, values, errors)
    _check_free_tables(built, errors, check_model)
    if errors:
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{len(errors)} problems in the configuration:\n  - "
                          + "\n  - ".join(errors))
    return Config(version=version, dataset=built.pop("dataset"),
                  **{k: SECTIONS[k](**v) for k, v in built.items()})


def _as_mapping(config) -> Mapping:
    """The table of sections of ``config``: a shipped name or TOML path is read, None is {}."""
    if isinstance(config, (str, Path)) and str(config) in CONFIGS:
        config = config_path(str(config))
    if isinstance(config, (str, Path)):
        config = read_toml(config)
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"A configuration must be a table of sections, got {_show(config)}.")
    return config


def _check_version(version, errors: list) -> int:
    """The configuration's ``version`` as an int (problems appended to ``errors``)."""
    if isinstance(version, bool) or not isinstance(version, int):
        errors.append(f"version must be an integer, got {_show(version)}.")
        return CONFIG_VERSION
    if version > CONFIG_VERSION or version < 1:
        errors.append(f"version {version} is not supported: this lightbunny reads configuration "
                      f"version {CONFIG_VERSION}.")
    return int(version)


def _known_sections(config: Mapping, errors: list) -> dict:
    """Section name -> its table, for the known sections that are tables."""
    sections: dict[str, Any] = {}
    for name, values in config.items():
        if name == "version":
            continue
        if name not in SECTIONS:
            errors.append(_unknown(f"configuration section [{name}]", name,
                                   ["version", *SECTIONS]))
        elif not isinstance(values, Mapping):
            errors.append(f"[{name}] must be a table of options, got {_show(values)}.")
        else:
            sections[name] = values
    return sections


def _section_kwargs(name: str, cls, values: Mapping, errors: list) -> dict:
    """``values`` of section ``name`` checked against the fields of its dataclass ``cls``."""
    kwargs = {}
    known = [f.name for f in dataclasses.fields(cls)]
    for key, value in values.items():
        if key not in known:
            errors.append(_unknown(f"option {key!r} in [{name}]", key, known))
            continue
        meta = cls.__dataclass_fields__[key].metadata
        try:
            kwargs[key] = _coerce(f"[{name}] {key}", value, meta)
        except ConfigError as err:
            errors.append(str(err))
    return kwargs


def _check_free_tables(built: dict, errors: list, check_model: bool) -> None:
    """The free-form tables checked in place against the real signatures."""
    tr = built["train"]
    model = tr.get("model", TrainConfig.model)
    if "model_config" in tr:
        tr["model_config"] = _check_model_config(model, tr["model_config"], errors, check_model)
    if "options" in tr:
        tr["options"] = _check_kwargs("[train] options", tr["options"], **_TRAIN_SIGNATURE(),
                                      errors=errors)
    if "dataset" in built["evaluate"]:
        built["evaluate"]["dataset"] = _check_kwargs("[evaluate] dataset",
                                                     built["evaluate"]["dataset"],
                                                     **_DATASET_SIGNATURE(), errors=errors)


# ----------------------------------------------------------------------------------- checks
def _show(value) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _unknown(what: str, key, allowed) -> str:
    allowed = [str(a) for a in allowed]
    msg = f"Unknown {what}."
    close = difflib.get_close_matches(str(key), allowed, n=2, cutoff=0.6)
    if close:
        msg += f" Did you mean {' or '.join(repr(c) for c in close)}?"
    return msg + f" Allowed: {', '.join(allowed)}."


def _number(where: str, value, *, integer: bool, meta: Mapping) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be {'an integer' if integer else 'a number'}, "
                          f"got {_show(value)}.")
    if math.isnan(value) or (math.isinf(value) and not meta.get("allow_inf")):
        raise ConfigError(f"{where} must be a finite number, got {value!r}.")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where} must be a whole number, got {value!r}.")
        value = int(value)
    else:
        value = float(value)
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta.get("low_open") and value == low)):
        raise ConfigError(f"{where} must be {'>' if meta.get('low_open') else '>='} {low}, "
                          f"got {value!r}.")
    if high is not None and (value > high or (meta.get("high_open") and value == high)):
        raise ConfigError(f"{where} must be {'<' if meta.get('high_open') else '<='} {high}, "
                          f"got {value!r}.")
    return value


def _choice(where: str, value, meta: Mapping):
    choices = meta.get("choices")
    if choices is None:
        return value
    allowed = tuple(choices() if callable(choices) else choices)
    if value not in allowed:
        msg = f"{where}: invalid value {value!r}."
        close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=2, cutoff=0.6)
        if close:
            msg += f" Did you mean {' or '.join(repr(c) for c in close)}?"
        raise ConfigError(msg + f" Allowed: {', '.join(map(str, allowed))}.")
    return value


def _coerce(where: str, value, meta: Mapping):
    """Check ``value`` against the field ``meta`` (kind, limits, choices); return it converted.

    A kind ``opt_<kind>`` also takes None; the others are checked by :data:`_KINDS`.
    """
    kind = meta["kind"]
    if kind.startswith("opt_"):
        if value is None:
            return None
        return _coerce(where, value, {**meta, "kind": kind[4:]})
    if kind not in _KINDS:  # pragma: no cover
        raise AssertionError(f"unknown field kind {kind!r}")
    return _KINDS[kind](where, value, meta)


def _coerce_bool(where, value, meta):
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {_show(value)}.")
    return value


def _coerce_str(where, value, meta):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {_show(value)}.")
    return _choice(where, value, meta)


def _coerce_strs(where, value, meta):
    if isinstance(value, str):
        value = [value]  # one name is a list of one name, never a list of its letters
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of names, got {_show(value)}.")
    return tuple(_choice(where, v.lower() if meta.get("choices") else v, meta) for v in value)


def _coerce_floats(where, value, meta):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a number or a list of numbers, got {_show(value)}.")
    if meta.get("nonempty") and not value:
        raise ConfigError(f"{where} must list at least one value.")
    return tuple(_number(f"{where}[{i}]", v, integer=False, meta=meta)
                 for i, v in enumerate(value))


def _coerce_dict(where, value, meta):
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table of options, got {_show(value)}.")
    return dict(value)


def _coerce_device(where, value, meta):
    from .utils import check_device

    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a device name, got {_show(value)}.")
    try:
        return check_device(value)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _coerce_montage(where, value, meta):
    if isinstance(value, str) and value:
        return value
    if (isinstance(value, (list, tuple)) and value
            and all(isinstance(v, str) and v for v in value)):
        return tuple(value)
    raise ConfigError(f"{where} must be a montage name or a list of channel names, "
                      f"got {_show(value)}.")


def _coerce_half_distance(where, value, meta):
    positive = {"low": 0.0, "low_open": True}
    if not isinstance(value, (list, tuple)):
        return _number(where, value, integer=False, meta=positive)
    if len(value) not in (1, 2):
        raise ConfigError(f"{where} must be a distance in mm or a [low, high] range, "
                          f"got {_show(value)}.")
    lo_hi = tuple(_number(f"{where}[{i}]", v, integer=False, meta=positive)
                  for i, v in enumerate(value))
    if len(lo_hi) == 2 and lo_hi[0] > lo_hi[1]:
        raise ConfigError(f"{where}: low {lo_hi[0]} exceeds high {lo_hi[1]}.")
    return lo_hi if len(lo_hi) == 2 else lo_hi[0]


def _coerce_regions(where, value, meta):
    if value is None:
        return None
    if isinstance(value, str):
        from .simulate.bank import parse_regions

        try:  # syntax only: the range is checked against the atlas when it is loaded
            parse_regions(value, 10**9)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        return value
    if (isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        return tuple(value)
    raise ConfigError(f"{where} must be 'START:END', '3,7,9' or a list of region indices "
                      f">= 0, got {_show(value)}.")


def _coerce_region(where, value, meta):
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"{where} must be a region index (>= 0) or a region name, "
                      f"got {_show(value)}.")


# ---------------------------------------------------------------- options checked by signature
def _kind_of(param: inspect.Parameter) -> str | None:
    """Validation kind from a parameter's annotation (a string under postponed evaluation)."""
    ann = param.annotation if isinstance(param.annotation, str) else getattr(
        param.annotation, "__name__", "")
    ann = ann.replace(" ", "")
    optional = ann.endswith("|None") or ann.startswith("None|")
    base = ann.replace("|None", "").replace("None|", "")
    if base in ("int", "float", "bool", "str"):
        return ("opt_" if optional else "") + base
    default = param.default
    if isinstance(default, bool):
        return "bool"
    for t, k in ((int, "int"), (float, "float"), (str, "str")):
        if isinstance(default, t):
            return k
    return None


def _check_kwargs(where: str, values, *, func, exclude, specs, errors: list) -> dict:
    """Check ``values`` as keyword arguments of ``func`` (minus ``exclude``); return them converted.

    ``specs`` overrides the kind/limits/choices of some parameters; the others take the kind of
    their annotation or default.
    """
    if not isinstance(values, Mapping):
        errors.append(f"{where} must be a table of options, got {_show(values)}.")
        return {}
    params = {n: p for n, p in inspect.signature(func).parameters.items()
              if n not in exclude and n != "self"
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    out = {}
    for key, value in values.items():
        if key not in params:
            errors.append(_unknown(f"option {key!r} in {where}", key, params))
            continue
        meta = specs.get(key) or {"kind": _kind_of(params[key])}
        if meta["kind"] is None:  # pragma: no cover - every parameter has a kind or a spec
            errors.append(f"{where} {key} cannot be set from a configuration file.")
            continue
        try:
            out[key] = _coerce(f"{where} {key}", value, meta)
        except ConfigError as err:
            errors.append(str(err))
    return out


def _DATASET_SIGNATURE() -> dict:
    from .dataset import SyntheticEEGDataset

    return {
        "func": SyntheticEEGDataset.__init__,
        # given by the pipeline (data, seed, device), or arrays that a TOML file cannot hold
        "exclude": ("sources", "bank", "leadfield", "atlas_name", "seed", "device",
                    "realistic_noise", "leadfields"),
        "specs": {
            "recipe": {"kind": "str", "choices": lambda: _choices("dataset", "RECIPES")},
            "snr_db": {"kind": "snr_db"},
            "noise_scope": {"kind": "str", "choices": lambda: _choices("dataset", "NOISE_SCOPES")},
            "realistic_ratio": {"kind": "floats", "low": 0.0, "high": 1.0, "nonempty": True},
            "background": {"kind": "str", "choices": lambda: _choices("dataset", "BACKGROUNDS")},
            "sbr_db": {"kind": "opt_floats", "nonempty": True},
            "clip_fractions": {"kind": "floats", "low": 0.0, "high": 1.0, "nonempty": True},
            "clip_seed": {"kind": "int", "low": 0},
            "clip_split": {"kind": "opt_str", "choices": lambda: ("train", "val", "test")},
            "missing_clips": {"kind": "str", "choices": lambda: ("neighbour", "raise", "skip")},
            "rng": {"kind": "str", "choices": lambda: _choices("dataset", "RNGS")},
            "randomise": {"kind": "randomise"},
        },
    }


def _TRAIN_SIGNATURE() -> dict:
    from .train import train

    return {
        "func": train,
        # set by [train] itself, [pipeline] or the pipeline
        "exclude": ("model", "train_set", "val_set", "out_dir", "epochs", "batch_size", "seed",
                    "device", "resume", "recipe", "progress", "meta"),
        "specs": {
            "lr": {"kind": "opt_float", "low": 0.0, "low_open": True},
            "loss": {"kind": "opt_str", "choices": lambda: _choices("train", "ALL_LOSSES")},
            "patience": {"kind": "opt_int", "low": 0},
            "amp": {"kind": "str", "choices": lambda: _choices("train", "AMP_MODES")},
            "val_batch_size": {"kind": "opt_int", "low": 1},
            "cosine_weight": {"kind": "opt_float", "low": 0.0},
            "warmup_epochs": {"kind": "opt_float", "low": 0.0},
            "lr_schedule": {"kind": "opt_str",
                            "choices": lambda: _choices("train", "LR_SCHEDULES")},
            "min_lr_ratio": {"kind": "opt_float", "low": 0.0, "high": 1.0},
            "grad_clip": {"kind": "opt_float", "low": 0.0},
        },
    }


_MODEL_SIZES = ("n_chans", "n_times", "n_sources")


def _check_model_config(model: str, values, errors: list, build: bool) -> dict:
    """Check ``[train] model_config`` against the constructor of ``model``."""
    from .models import MODELS

    if model not in MODELS:  # already reported as an invalid [train] model
        return dict(values)
    cls = MODELS[model]
    specs = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        kind = _kind_of(p)
        if kind in ("int", "opt_int"):
            specs[name] = {"kind": kind, "low": 1}
        elif name == "dropout":
            specs[name] = {"kind": kind, "low": 0.0, "high": 1.0, "high_open": True}
    n_before = len(errors)
    out = _check_kwargs(f"[train] model_config ({model})", values, func=cls.__init__,
                        exclude=_MODEL_SIZES, specs=specs, errors=errors)
    if build and len(errors) == n_before:
        import torch

        try:  # the meta device allocates nothing: this checks the arguments' consistency only
            with torch.device("meta"):
                cls(n_chans=8, n_times=500, n_sources=8, **out)
        except (ValueError, TypeError, RuntimeError) as err:
            errors.append(f"[train] model_config ({model}): {err} (clips have 500 samples)")
    return out


def _coerce_randomise(where, value):
    """``"none"``, ``"default"``, true/false or a table of
    :class:`~lightbunny.randomise.Randomisation` fields (defaults for the fields left out);
    returned as plain data (``None`` or a dict)."""
    from .randomise import resolve_randomisation

    if isinstance(value, str) and value not in ("none", "default"):
        raise ConfigError(f"{where} must be 'none', 'default', true, false or a table of "
                          f"randomisation options, got {_show(value)}.")
    try:
        spec = resolve_randomisation(dict(value) if isinstance(value, Mapping) else value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None
    return None if spec is None else spec.to_dict()


def _coerce_snr_db(where, value, meta):
    """``"auto"``, ``"none"`` (no sensor noise), a number or a list of numbers (dB)."""
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, str):
        if value != "auto":
            raise ConfigError(f"{where} must be 'auto', 'none', a number or a list of numbers "
                              f"(dB), got {_show(value)}.")
        return value
    return _coerce(where, value, {"kind": "floats", "nonempty": True})


#: Field kind -> its checker ``(where, value, meta) -> converted value``; ``opt_<kind>`` also
#: takes None (see :func:`_coerce`).
_KINDS = {
    "int": lambda where, value, meta: _number(where, value, integer=True, meta=meta),
    "float": lambda where, value, meta: _number(where, value, integer=False, meta=meta),
    "bool": _coerce_bool,
    "str": _coerce_str,
    "strs": _coerce_strs,
    "floats": _coerce_floats,
    "dict": _coerce_dict,
    "device": _coerce_device,
    "montage": _coerce_montage,
    "half_distance": _coerce_half_distance,
    "regions": _coerce_regions,
    "region": _coerce_region,
    "snr_db": _coerce_snr_db,
    "randomise": lambda where, value, meta: _coerce_randomise(where, value),
}
