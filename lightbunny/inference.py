"""Inference: what a trained network needs to run on new EEG, apart from training.

This module imports nothing from :mod:`lightbunny.train` or :mod:`lightbunny.dataset`, so
:mod:`lightbunny.apply` and :mod:`lightbunny.evaluate` run a saved model without the training
code. It holds

* the **input normalisation** every network input goes through, synthetic or real, by name and
  version (:data:`NORMALISATIONS`); a checkpoint records the name in
  ``meta['preprocessing']['eeg']['normalisation']`` (checkpoints written before the name
  existed record the import path ``'lightbunny.dataset.normalise_eeg'``, which maps to
  ``'avgref-centre-maxabs/1'``, see :func:`checkpoint_normalisation`);
* the **checkpoint reader** (:func:`load_checkpoint`, :func:`load_model`, :func:`check_meta`):
  checkpoints are plain dicts of tensors, numbers, strings, lists and dicts, read with
  ``torch.load(..., weights_only=True)``, so loading one never runs code;
* **named models** with model cards (:func:`list_models`, :func:`model_card`,
  :func:`resolve_checkpoint`, :func:`export_model`): a folder (:func:`models_dir`) of
  ``NAME.pt`` checkpoints (weights in float16 to stay small; :func:`load_model` casts them to
  float32) each described by ``NAME.json``. Wherever a checkpoint path is accepted
  (``lightbunny apply/evaluate/benchmark --checkpoint``), such a name is accepted too.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .utils import _json_default, atomic_path, sha256_file, write_json

if TYPE_CHECKING:  # imported where needed: `import lightbunny.apply` does not load torch
    import torch

CHECKPOINT_FORMAT = "lightbunny-checkpoint"
CHECKPOINT_VERSION = 1
_REQUIRED_KEYS = ("format", "format_version", "model_name", "model_config", "model_state",
                  "epoch", "meta")
#: the keys of a checkpoint :func:`export_model` keeps (what inference and a model card need)
_INFERENCE_KEYS = (*_REQUIRED_KEYS, "metrics", "best_epoch", "best_val_loss", "run_args",
                   "versions", "saved_at")


# ------------------------------------------------------------------------------ normalisation
def _is_tensor(x) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch: if it is not imported yet,
    ``x`` cannot be one, and numpy-only callers do not pay for the import)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _ref_centre(x):
    """Average reference then centre in time, over the last two axes (..., n_times, n_chans)."""
    if _is_tensor(x):
        x = x - x.mean(dim=-1, keepdim=True)
        return x - x.mean(dim=-2, keepdim=True)
    x = np.asarray(x)
    x = x - x.mean(axis=-1, keepdims=True)
    return x - x.mean(axis=-2, keepdims=True)


def normalise_eeg(eeg, *, return_scale: bool = False):
    """The EEG scaling applied to every network input, synthetic or real.

    Average reference (subtract the mean over channels), centre in time (subtract each channel's
    mean over time), then divide by the maximum absolute value of the sample. Its name is
    ``'avgref-centre-maxabs/1'`` (:data:`NORMALISATIONS`).

    Parameters
    ----------
    eeg : ndarray or torch.Tensor, shape (..., n_times, n_chans)
        Any unit (V, uV, mV); leading axes are independent samples.
    return_scale : bool
        Also return the divisor (in the input's unit), shape (..., 1, 1).

    Returns
    -------
    eeg : same type as the input, shape (..., n_times, n_chans)
        Dimensionless, in [-1, 1] (an all-zero sample stays zero).
    scale : same type, shape (..., 1, 1)
        Only with ``return_scale``.

    Examples
    --------
    >>> x = np.array([[1.0, 3.0], [3.0, 5.0]])
    >>> normalise_eeg(x).tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    >>> normalise_eeg(np.array([[2.0, 0.0], [0.0, 2.0]])).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
    """
    x = _ref_centre(eeg)
    if _is_tensor(x):
        import torch

        scale = x.abs().amax(dim=(-2, -1), keepdim=True)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    else:
        scale = np.abs(x).max(axis=(-2, -1), keepdims=True)
        scale = np.where(scale > 0, scale, 1.0)
    out = x / scale
    return (out, scale) if return_scale else out


#: the name (and version, after the slash) of the input normalisation of new checkpoints
NORMALISATION = "avgref-centre-maxabs/1"
#: input normalisations by name: ``fn(eeg, return_scale=False)``, eeg (..., n_times, n_chans).
#: A changed scaling gets a new name or version, never the old one: a checkpoint keeps the
#: inputs it was trained on.
NORMALISATIONS = {NORMALISATION: normalise_eeg}
#: names checkpoints recorded before :data:`NORMALISATIONS` existed (the function's import path)
LEGACY_NORMALISATIONS = {"lightbunny.dataset.normalise_eeg": NORMALISATION}


def checkpoint_normalisation(meta: dict | None) -> str:
    """The name of the input normalisation a checkpoint's ``meta`` records.

    ``meta['preprocessing']['eeg']['normalisation']``; the old import-path string under
    ``'function'`` maps through :data:`LEGACY_NORMALISATIONS`; a checkpoint that records no EEG
    scaling at all is taken to use :data:`NORMALISATION` (what every checkpoint of this package
    has used). A name this version does not know is a ValueError.

    Examples
    --------
    >>> checkpoint_normalisation({"preprocessing": {"eeg": {
    ...     "function": "lightbunny.dataset.normalise_eeg"}}})
    'avgref-centre-maxabs/1'
    """
    eeg = ((meta or {}).get("preprocessing") or {}).get("eeg") or {}
    name = eeg.get("normalisation")
    if name is None:
        function = eeg.get("function", "lightbunny.dataset.normalise_eeg")
        name = LEGACY_NORMALISATIONS.get(function, function)
    if name not in NORMALISATIONS:
        raise ValueError(f"the model was trained on EEG scaled by {name!r}; this version of "
                         f"lightbunny knows {', '.join(map(repr, NORMALISATIONS))}, so its inputs "
                         "would differ. Use the lightbunny version it was trained with.")
    return name


def _canonical_meta(meta: dict) -> dict:
    """``meta`` with a legacy EEG-scaling entry (import path) replaced by its name, so a
    checkpoint of either kind compares equal to the same data (:func:`check_meta`)."""
    prep = meta.get("preprocessing")
    eeg = prep.get("eeg") if isinstance(prep, dict) else None
    if not isinstance(eeg, dict) or eeg.get("function") not in LEGACY_NORMALISATIONS:
        return meta
    eeg = {"normalisation": LEGACY_NORMALISATIONS[eeg["function"]],
           **{k: v for k, v in eeg.items() if k != "function"}}
    return {**meta, "preprocessing": {**prep, "eeg": eeg}}


# -------------------------------------------------------------------------------- checkpoints
def _plain(obj):
    """``obj`` as plain JSON types (dict/list/str/number/bool/None), so weights_only can load it."""
    return json.loads(json.dumps(obj, default=_json_default, allow_nan=True))


def load_checkpoint(path, expected_meta: dict | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`lightbunny.train.train`, safely (``weights_only``).

    Parameters
    ----------
    path : path or str
        A ``last.pt`` or ``best.pt`` file, or the name of a model of :func:`list_models`
        (see :func:`resolve_checkpoint`).
    expected_meta : dict or None
        Entries the checkpoint's ``meta`` must match, e.g. ``{'atlas': 'tvb76', 'ch_names':
        [...]}`` from the data the model is about to be applied to. A key missing from the
        checkpoint or a different value is a ValueError naming both.
    map_location : str or torch.device
        Where tensors are loaded.

    Returns
    -------
    dict
        ``model_name``, ``model_config``, ``model_state``, ``epoch``, ``metrics``,
        ``history``, ``meta``, ... (``optimizer_state`` and ``rng`` in ``last.pt`` only).

    Raises
    ------
    FileNotFoundError
        Neither a file nor a model name.
    ValueError
        Corrupt, truncated or foreign file, or ``meta`` not matching ``expected_meta``.
    """
    import torch

    path = resolve_checkpoint(path)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut one has no index
        raise ValueError(f"{path} is not a readable checkpoint (corrupt or truncated file? it is "
                         f"not a complete torch archive, {path.stat().st_size} bytes). Use "
                         f"another checkpoint, e.g. best.pt or last.pt of the same run, or retrain.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        detail = next((line.strip() for line in str(err).splitlines() if "Unsupported" in line),
                      _first_line(err))
        raise ValueError(f"{path} holds objects other than tensors and plain containers, so it "
                         f"is not loaded (loading it could run code). It was not written by "
                         f"lightbunny.train. Detail: {detail}") from None
    except Exception as err:  # zip/EOF/runtime errors from a damaged file
        raise ValueError(f"{path} is not a readable checkpoint (corrupt or truncated file? "
                         f"{type(err).__name__}: {_first_line(err)}). Use another checkpoint, "
                         f"e.g. best.pt or last.pt of the same run, or retrain.") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a LightBunny checkpoint (no format marker "
                         f"{CHECKPOINT_FORMAT!r}).")
    if ckpt.get("format_version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {ckpt['format_version']}; this "
                         f"lightbunny reads up to {CHECKPOINT_VERSION}. Upgrade lightbunny.")
    missing = [k for k in _REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path} is an incomplete checkpoint: missing {', '.join(missing)}.")
    if expected_meta:
        check_meta(ckpt["meta"], expected_meta, source=str(path))
    return ckpt


def load_model(path, expected_meta: dict | None = None, device: str | torch.device = "cpu"):
    """Rebuild the network stored in a checkpoint, load its weights, and return it in eval mode.

    ``path`` may be a model name (:func:`resolve_checkpoint`). Weights stored in float16 or
    bfloat16 (shipped models) are cast to float32.

    Returns
    -------
    model : SourceNet
    checkpoint : dict
        As returned by :func:`load_checkpoint`.
    """
    import torch

    from .models import model_from_config
    from .utils import resolve_device

    device = resolve_device(device)
    ckpt = load_checkpoint(path, expected_meta=expected_meta, map_location=device)
    model = model_from_config(ckpt["model_name"], ckpt["model_config"])
    state = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
             for k, v in ckpt["model_state"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"weights in {path} do not fit model {ckpt['model_name']!r} with config "
                         f"{ckpt['model_config']}: {_first_line(err)}") from None
    return model.to(device).eval(), ckpt


def check_meta(saved: dict, expected: dict, source: str = "checkpoint") -> None:
    """Raise a ValueError if ``saved`` differs from ``expected`` on any key of ``expected``.

    Channel lists (``ch_names``) are compared in order and the message names the channels
    missing, extra or reordered; other values are compared as plain JSON values. An EEG scaling
    recorded by its old import path equals the same scaling recorded by name.

    Examples
    --------
    >>> check_meta({"atlas": "tvb76"}, {"atlas": "tvb76"})
    >>> check_meta({"atlas": "tvb76"}, {"atlas": "fsaverage994"})
    Traceback (most recent call last):
    ...
    ValueError: checkpoint was trained with atlas 'tvb76', but the data use atlas 'fsaverage994'. Use a model trained on this atlas and channel set, or retrain.
    """
    saved = _canonical_meta(saved or {})
    expected = _canonical_meta(_plain(expected))
    problems = []
    for key, want in expected.items():
        if key not in saved:
            problems.append(f"it does not record {key!r} (expected {_short(want)})")
            continue
        have = saved[key]
        if have == want:
            continue
        if key == "ch_names" and isinstance(have, list) and isinstance(want, list):
            problems.append(_channel_difference(have, want))
        else:
            problems.append(f"{key} {_short(have)}, but the data use {key} {_short(want)}")
    if problems:
        raise ValueError(f"{source} was trained with " + "; ".join(problems)
                         + ". Use a model trained on this atlas and channel set, or retrain.")


def _channel_difference(have: list, want: list) -> str:
    missing = [c for c in have if c not in want]
    extra = [c for c in want if c not in have]
    msg = f"{len(have)} channels, but the data have {len(want)}"
    if missing:
        msg += f"; channels of the model absent from the data: {_short(missing)}"
    if extra:
        msg += f"; channels of the data unknown to the model: {_short(extra)}"
    if not missing and not extra:
        first = next(i for i, (a, b) in enumerate(zip(have, want)) if a != b)
        msg = (f"the same {len(have)} channels in another order (first difference at "
               f"position {first}: {have[first]!r} vs {want[first]!r}; reorder the data's "
               f"channels to the model's)")
    return msg


def _short(value, limit: int = 8) -> str:
    if isinstance(value, list) and len(value) > limit:
        return repr(value[:limit])[:-1] + f", ... ({len(value)} in all)]"
    return repr(value)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# ------------------------------------------------------------------------------- named models
#: environment variable naming another folder of models
MODELS_DIR_ENV = "LIGHTBUNNY_MODELS_DIR"
#: the keys of a model card (``NAME.json``); ``checkpoint`` (file name, default ``NAME.pt``)
#: may be added
CARD_KEYS = ("name", "description", "atlas", "montage", "n_chans", "training", "budget",
             "benchmark", "limits", "checkpoint_sha256")


def models_dir() -> Path:
    """The folder of named models: ``$LIGHTBUNNY_MODELS_DIR``, else the package's
    ``lightbunny/data/models/``."""
    env = os.environ.get(MODELS_DIR_ENV)
    return Path(env).expanduser() if env else Path(__file__).resolve().parent / "data" / "models"


def list_models() -> list:
    """Names of the models in :func:`models_dir` (one ``NAME.json`` card each), sorted."""
    folder = models_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json"))


def model_card(name: str) -> dict:
    """The card of model ``name``: a dict with the keys of :data:`CARD_KEYS`.

    Raises a ValueError listing the available models when there is no such card, and when the
    card lacks a key or names another model.
    """
    if name not in list_models():  # also keeps a name like '../x' inside the folder
        raise ValueError(f"no model named {name!r}; {_available()}.")
    path = models_dir() / f"{name}.json"
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"the model card {path} cannot be read: {err}") from None
    missing = [k for k in CARD_KEYS if k not in card] if isinstance(card, dict) else list(CARD_KEYS)
    if missing:
        raise ValueError(f"the model card {path} lacks {', '.join(missing)}.")
    if card["name"] != name:
        raise ValueError(f"the model card {path} describes {card['name']!r}, not {name!r}.")
    return card


def _available() -> str:
    names = list_models()
    where = models_dir()
    if not names:
        return f"no models are installed in {where} (set ${MODELS_DIR_ENV} to another folder)"
    return f"available models in {where}: {', '.join(names)}"


def resolve_checkpoint(name_or_path) -> Path:
    """The checkpoint file of ``name_or_path``: a path if that file exists, else a model name.

    A model's file (``NAME.pt`` in :func:`models_dir`, or the card's ``checkpoint``) must have
    the card's ``checkpoint_sha256``; a mismatch is a ValueError. Neither a file nor a model
    name is a FileNotFoundError that lists the available models.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = str(name_or_path)
    if name not in list_models():
        raise FileNotFoundError(f"checkpoint not found: {name_or_path} is neither a file nor "
                                f"the name of a model; {_available()}.")
    card = model_card(name)
    file = models_dir() / card.get("checkpoint", f"{name}.pt")
    if not file.is_file():
        raise FileNotFoundError(f"model {name!r}: its checkpoint {file} is missing.")
    digest = sha256_file(file)
    if digest != card["checkpoint_sha256"]:
        raise ValueError(f"model {name!r}: {file} has sha256 {digest}, but its card says "
                         f"{card['checkpoint_sha256']}; the file is damaged or was replaced.")
    return file


def _card_fields(ckpt: dict, montage, training, half: bool) -> dict:
    """Card entries read from the checkpoint: atlas, montage, channels, training, model."""
    meta = ckpt["meta"]
    pre = meta.get("preprocessing") or {}
    ch_names = meta.get("ch_names") or pre.get("ch_names") or []
    return {"atlas": meta.get("atlas") or pre.get("atlas_name"),
            "montage": montage or f"{len(ch_names)} channels",
            "n_chans": int(ckpt["model_config"].get("n_chans", len(ch_names))),
            "training": _plain(training if training is not None else ckpt.get("run_args", {})),
            "model_name": ckpt["model_name"], "normalisation": checkpoint_normalisation(meta),
            "dtype": "float16" if half else "float32"}


def export_model(checkpoint, name: str, *, out_dir=None, description: str = "",
                 montage: str | None = None, training: dict | None = None,
                 budget: dict | None = None, benchmark: dict | None = None,
                 limits: str | list = "", half: bool = True) -> dict:
    """Write a checkpoint as the named model ``name``: ``NAME.pt`` and its card ``NAME.json``.

    The checkpoint keeps what inference and the card need (no optimiser or RNG state); with
    ``half`` its floating-point weights are stored in float16 (half the size; :func:`load_model`
    casts them back to float32, so outputs change by float16 rounding of the weights only).

    Parameters
    ----------
    checkpoint : path
        A ``best.pt`` of :func:`lightbunny.train.train`.
    name : str
        The model's name: letters, digits, ``-``, ``_`` and ``.``.
    out_dir : path, optional
        Default :func:`models_dir`.
    description, montage, training, budget, benchmark, limits
        Card entries (``training`` defaults to the checkpoint's ``run_args``; ``montage`` to a
        count of its channels).

    Returns
    -------
    dict
        The card written.
    """
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.endswith(".pt"):
        raise ValueError(f"a model name is letters, digits, '-', '_' and '.', got {name!r}.")
    import torch

    ckpt = load_checkpoint(checkpoint)
    out = {k: ckpt[k] for k in _INFERENCE_KEYS if k in ckpt}
    if half:
        out["model_state"] = {k: v.half() if v.is_floating_point() else v
                              for k, v in ckpt["model_state"].items()}
    folder = Path(out_dir) if out_dir is not None else models_dir()
    file = folder / f"{name}.pt"
    with atomic_path(file) as tmp:
        torch.save(out, tmp)
    card = {"name": name, "description": description,
            **_card_fields(ckpt, montage, training, half),
            "budget": _plain(budget or {}), "benchmark": _plain(benchmark or {}),
            "limits": limits, "checkpoint": file.name, "checkpoint_sha256": sha256_file(file)}
    write_json(folder / f"{name}.json", card)
    return card


__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "NORMALISATION", "NORMALISATIONS",
           "LEGACY_NORMALISATIONS", "normalise_eeg", "checkpoint_normalisation",
           "load_checkpoint", "load_model", "check_meta", "models_dir", "list_models",
           "model_card", "resolve_checkpoint", "export_model", "CARD_KEYS", "MODELS_DIR_ENV"]
