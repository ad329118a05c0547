"""Training loop for the source-imaging networks: resumable, reproducible, self-describing.

:func:`train` fits a network from :mod:`lightbunny.models` on a training dataset and keeps, in
``out_dir``:

============================  ===================================================================
``last.pt``                   checkpoint written atomically after every epoch (model, optimiser,
                              RNG state, history, early-stopping state, ``meta``)
``best.pt``                   the epoch with the lowest validation loss (no optimiser state)
``history.json``, ``.csv``    one row per epoch: losses, zero-prediction loss, time, samples/s
``loss_curve.png``            training and validation loss per epoch
============================  ===================================================================

Training recipes
----------------
``recipe='seed'`` is the research code's: Adam at a constant 5e-4, MSE averaged over every
(time, region) element, no gradient clipping, the same samples every epoch. On sparse targets
MSE is small for a prediction of zeros and its minimiser under uncertainty is a low-amplitude,
smeared map (see ``bench/RECIPE.md``). ``recipe='lightbunny'`` (:data:`TRAIN_RECIPES`) uses
the active/inactive-balanced, power-normalised squared error plus a cosine term
(:mod:`lightbunny.losses`), Adam at 1e-3 with one epoch of linear warm-up then cosine decay to
5 % of it (Loshchilov & Hutter 2017, "SGDR"; Goyal et al. 2017 for the warm-up), gradient-norm
clipping at 1 (Pascanu et al. 2013, for the GRU), and new random draws of the training samples
(spike clips, SNR, noise) every epoch where the dataset has ``set_epoch``. Every ingredient is
also a keyword of :func:`train`, so a recipe can be changed one piece at a time.

Datasets are duck-typed: ``len(dataset)`` items and ``dataset.get_batch(indices, device=None)
-> (eeg, target)``, float32 tensors of shape ``(batch, n_times, n_chans)`` and ``(batch,
n_times, n_sources)`` built directly on ``device``; an optional plain-dict
``dataset.preprocessing`` is stored in the checkpoint's ``meta``. ``indices`` is a 1-D int64
numpy array.

Checkpoints are plain dicts of tensors, numbers, strings, lists and dicts, loaded with
``torch.load(..., weights_only=True)``: loading one never runs code. Reading them
(:func:`load_checkpoint`, :func:`load_model`, :func:`check_meta`) lives in
:mod:`lightbunny.inference`, which needs nothing from training; the names are re-exported here.
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ._logging import logger
from .inference import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, _plain, check_meta,
                        load_checkpoint, load_model)
from .losses import LOSSES, cosine_loss, loss_count, loss_sum
from .utils import atomic_path, check_option, versions, write_json

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
LOSS_CURVE = "loss_curve.png"

#: every loss name :func:`train` accepts: the names of :data:`lightbunny.losses.LOSSES` (the one
#: registry, also importable here as ``LOSSES``), element-wise or per-sample
ALL_LOSSES = tuple(LOSSES)
LR_SCHEDULES = ("constant", "cosine")
#: the recipe of :func:`train`, ``lightbunny train`` and the configs when none is named
DEFAULT_RECIPE = "lightbunny"
#: named training recipes: the default value of each option of :func:`train` left as None
TRAIN_RECIPES = {
    "seed": {"lr": 5e-4, "loss": "mse", "cosine_weight": 0.0, "warmup_epochs": 0.0,
             "lr_schedule": "constant", "min_lr_ratio": 0.05, "grad_clip": 0.0,
             "resample": False},
    "lightbunny": {"lr": 1e-3, "loss": "balanced_mse", "cosine_weight": 1.0,
                   "warmup_epochs": 1.0, "lr_schedule": "cosine", "min_lr_ratio": 0.05,
                   "grad_clip": 1.0, "resample": True},
}
DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "bf16", "off")

# run settings that must not change when a run is resumed, or the result would differ
_RESUME_FIXED = ("seed", "batch_size", "loss", "n_train")
# recipe settings checked on resume when the checkpoint records them (newer checkpoints)
_RESUME_FIXED_IF_SAVED = ("cosine_weight", "resample", "lr_schedule", "warmup_epochs",
                          "min_lr_ratio")


class NonFiniteLossError(FloatingPointError):
    """Raised when the training or validation loss becomes NaN or infinite."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history : list of dict
        One dict per completed epoch (``epoch``, ``train_loss``, ``val_loss``,
        ``val_loss_zero`` — the loss of predicting zeros —, ``lr``, ``epoch_time_s``,
        ``train_samples_per_s``, ``is_best``).
    best_epoch : int or None
        1-based epoch with the lowest validation loss.
    best_val_loss : float
    stopped_early : bool
    out_dir, last_checkpoint, best_checkpoint : Path
    """

    history: list = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    stopped_early: bool = False
    out_dir: Path | None = None
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None


# ---------------------------------------------------------------------------------- helpers
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; ``'cuda'``/``'cuda:N'`` without that GPU is an
    error (see :func:`lightbunny.utils.resolve_device`)."""
    from .utils import resolve_device as _resolve

    return _resolve(device)


def _resolve_amp(amp: str | bool, device: torch.device) -> bool:
    """Whether to run the forward pass under bf16 autocast."""
    if amp is True:
        amp = "bf16"
    elif amp is False or amp is None:
        amp = "off"
    check_option("amp", amp, AMP_MODES)
    if amp == "auto":
        return device.type == "cuda"
    if amp == "bf16" and device.type != "cuda":
        logger.warning("amp='bf16' is only used on CUDA; training in float32 on %s.", device)
        return False
    return amp == "bf16"


def _autocast(enabled: bool, device: torch.device):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _epoch_order(n_items: int, seed: int, epoch: int) -> np.ndarray:
    """Shuffled item order of ``epoch``: a function of (seed, epoch) only, so resuming replays it."""
    rng = np.random.default_rng([int(seed), int(epoch)])
    return rng.permutation(n_items)


def _batches(order: np.ndarray, batch_size: int):
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def _progress(iterable, enabled: bool, **kwargs):
    from tqdm import tqdm

    return tqdm(iterable, disable=not enabled, dynamic_ncols=True, **kwargs)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def dataset_meta(dataset) -> dict:
    """What a checkpoint should record about the data a model is trained on.

    ``{'atlas': dataset.atlas_name, 'ch_names': dataset.ch_names, 'preprocessing':
    dataset.preprocessing}``, each entry only where the dataset has it (duck-typed). Pass the
    same dict built from new data as ``expected_meta`` to :func:`load_checkpoint` to refuse a
    model trained on another atlas or channel set.
    """
    meta = {}
    atlas = getattr(dataset, "atlas_name", None)
    if atlas is not None:
        meta["atlas"] = str(atlas)
    ch_names = getattr(dataset, "ch_names", None)
    if ch_names:
        meta["ch_names"] = [str(c) for c in ch_names]
    preprocessing = getattr(dataset, "preprocessing", None)
    if preprocessing is not None:
        meta["preprocessing"] = _plain(dict(preprocessing))
    return meta


def _check_loss(loss: str) -> None:
    check_option("loss", loss, ALL_LOSSES)


def _loss_parts(pred, target, loss: str, cosine_weight: float):
    """Summed loss parts of a batch: ``(base_sum, base_count, cosine_sum, n_items)``.

    The batch loss is ``base_sum / base_count + cosine_weight * cosine_sum / n_items``;
    ``base_count`` counts elements for element-wise losses and samples for per-sample ones.
    """
    base, count = loss_sum(loss, pred, target)
    cos = cosine_loss(pred, target, reduction="sum") if cosine_weight else None
    return base, count, cos, target.shape[0]


def _batch_loss(pred, target, loss: str, cosine_weight: float):
    base, count, cos, n = _loss_parts(pred, target, loss, cosine_weight)
    value = base / count
    if cos is not None:
        value = value + cosine_weight * cos / n
    return value


def lr_at(step: int, *, lr: float, n_steps: int, warmup_steps: int = 0,
          schedule: str = "constant", min_lr_ratio: float = 0.05) -> float:
    """Learning rate of optimiser step ``step`` (0-based) of ``n_steps``.

    Linear warm-up from ``lr / warmup_steps`` to ``lr`` over the first ``warmup_steps`` steps,
    then ``lr`` (``'constant'``) or a half cosine from ``lr`` down to ``min_lr_ratio * lr`` at
    the last step (``'cosine'``).

    Examples
    --------
    >>> [round(lr_at(s, lr=1.0, n_steps=10, warmup_steps=2, schedule="cosine",
    ...              min_lr_ratio=0.0), 3) for s in (0, 1, 2, 9)]
    [0.5, 1.0, 1.0, 0.0]
    """
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    span = max(1, n_steps - warmup_steps - 1)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return lr * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def resolve_recipe(recipe: str | None = None, **options) -> dict:
    """Options of a named recipe (:data:`TRAIN_RECIPES`), with the non-None ``options`` on top.

    ``recipe=None`` is :data:`DEFAULT_RECIPE` (``'lightbunny'``, the recipe of the CLI and the
    configs too); ``'seed'`` is the research code's.

    Examples
    --------
    >>> resolve_recipe("lightbunny", lr=3e-4)["lr"], resolve_recipe()["loss"]
    (0.0003, 'balanced_mse')
    >>> resolve_recipe("seed")["loss"]
    'mse'
    """
    name = DEFAULT_RECIPE if recipe is None else recipe
    check_option("recipe", name, TRAIN_RECIPES)
    unknown = set(options) - set(TRAIN_RECIPES[name])
    if unknown:
        raise ValueError(f"unknown recipe options {sorted(unknown)}; known: "
                         f"{sorted(TRAIN_RECIPES[name])}.")
    out = dict(TRAIN_RECIPES[name])
    out.update({k: v for k, v in options.items() if v is not None})
    return out


def _distributed() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed_from_env() -> tuple[int, int]:
    """Join the process group described by torchrun's environment (``WORLD_SIZE`` > 1).

    Uses NCCL when CUDA is available, gloo otherwise; on CUDA each process takes the GPU
    ``LOCAL_RANK``. Returns (rank, world size); (0, 1) outside torchrun.
    """
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return _distributed()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return _distributed()


# ------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, dataset, *, batch_size: int, loss: str = "mse",
                  device: str | torch.device = "auto", amp: str | bool = "auto",
                  progress: bool = False, cosine_weight: float = 0.0, on_batch=None) -> dict:
    """Loss of ``model`` on all of ``dataset``, averaged over elements, in fixed order.

    ``loss = sum_b sum_elements l(pred, target) / sum_b n_elements(b)``, accumulated in float64
    over batches taken in index order (``0 .. len(dataset) - 1``); a smaller last batch
    therefore weighs by its size, unlike a mean of batch means. Per-sample losses
    (:data:`lightbunny.losses.LOSSES` with ``per='sample'``) are averaged over samples the same
    way, and
    ``cosine_weight`` adds that multiple of the mean per-sample cosine loss.

    Returns
    -------
    dict
        ``loss`` (the average), ``zero_loss`` (the same average for a prediction of zeros, a
        scale to judge ``loss`` by), ``n_elements`` and ``n_items``.

    ``on_batch``, if given, is called with 1 after each batch (e.g. an outer progress bar's
    ``update``).
    """
    _check_loss(loss)
    device = resolve_device(device)
    use_amp = _resolve_amp(amp, device)
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    total_zero = torch.zeros((), dtype=torch.float64, device=device)
    total_cos = torch.zeros((), dtype=torch.float64, device=device)
    total_cos_zero = torch.zeros((), dtype=torch.float64, device=device)
    n_elements = n_counted = n_items = 0
    try:
        order = np.arange(len(dataset))
        n_batches = math.ceil(len(order) / batch_size)
        for indices in _progress(_batches(order, batch_size), progress, total=n_batches,
                                 desc="validation", leave=False):
            eeg, target = dataset.get_batch(indices, device=device)
            with _autocast(use_amp, device):
                pred = model(eeg)
            target = target.float()
            base, count, cos, n = _loss_parts(pred.float(), target, loss, cosine_weight)
            zbase, _, zcos, _ = _loss_parts(torch.zeros_like(target), target, loss,
                                            cosine_weight)
            total += base.double()
            total_zero += zbase.double()
            if cos is not None:
                total_cos += cos.double()
                total_cos_zero += zcos.double()
            n_elements += target.numel()
            n_counted += count
            n_items += n
            if on_batch is not None:
                on_batch(1)
    finally:
        model.train(was_training)
    if n_elements == 0:
        raise ValueError("the validation dataset is empty.")
    value = total.item() / n_counted
    zero = total_zero.item() / n_counted
    if cosine_weight:
        value += cosine_weight * total_cos.item() / n_items
        zero += cosine_weight * total_cos_zero.item() / n_items
    return {"loss": value, "zero_loss": zero, "n_elements": n_elements, "n_items": len(dataset)}


# -------------------------------------------------------------------------------- training
def train(model: torch.nn.Module, train_set, val_set, *, out_dir, epochs: int, batch_size: int,
          lr: float | None = None, loss: str | None = None, patience: int | None = 10,
          seed: int = 0, device: str | torch.device = "auto", resume: bool = False,
          amp: str | bool = "auto", meta: dict | None = None, val_batch_size: int | None = None,
          deterministic: bool = False, progress: bool = True, recipe: str | None = None,
          cosine_weight: float | None = None, warmup_epochs: float | None = None,
          lr_schedule: str | None = None, min_lr_ratio: float | None = None,
          grad_clip: float | None = None, resample: bool | None = None) -> TrainResult:
    """Train ``model`` with Adam; checkpoint every epoch; stop early; resume exactly.

    The optimisation options left as None take the values of ``recipe``
    (:data:`TRAIN_RECIPES`); without a recipe they are :data:`DEFAULT_RECIPE`'s
    (``'lightbunny'``), the same default as ``lightbunny train`` and the configs. Pass
    ``recipe='seed'`` for the research code's (constant Adam 5e-4, MSE).

    Parameters
    ----------
    model : SourceNet
        A network from :mod:`lightbunny.models` (its name and config go in the checkpoint).
        Build it with ``build_model(..., random_state=seed)`` for a reproducible start.
    train_set, val_set
        Datasets with ``len()`` and ``get_batch(indices, device=None) -> (eeg, target)``
        (see the module docstring). The training order is reshuffled each epoch from
        ``(seed, epoch)``; validation runs in index order.
    out_dir : path
        Folder for checkpoints, history and the loss curve (created if needed).
    epochs : int
        Total number of epochs (a resumed run continues up to this number).
    batch_size : int
        Training batch size (the last batch of an epoch may be smaller).
    lr : float, optional
        Peak Adam learning rate (seed 5e-4, lightbunny 1e-3).
    loss : {'mse', 'l1', 'smooth_l1', 'balanced_mse', 'cosine'}, optional
        Element-wise losses are averaged over all elements of a batch (seed: MSE); per-sample
        losses (:mod:`lightbunny.losses`) over its samples (lightbunny: ``'balanced_mse'``).
    patience : int or None
        Stop after this many epochs without a lower validation loss; None never stops early.
    seed : int
        Seeds the shuffling and the torch generator used by dropout (within
        :func:`torch.random.fork_rng`, so the caller's global generator is left untouched).
    device : {'auto', 'cpu', 'cuda'}
        Where the model and the batches live; ``get_batch`` is asked to build batches there.
    resume : bool
        Continue from ``out_dir/last.pt`` if it exists (model, optimiser, RNG state,
        history, early-stopping state). With the same data and settings, a run interrupted
        and resumed ends with the same weights as an uninterrupted one (CPU; set
        ``deterministic=True`` for GPU). Without a checkpoint, training starts afresh.
    amp : {'auto', 'bf16', 'off'}
        bf16 autocast of the forward pass; ``'auto'`` uses it on CUDA only. Losses are
        computed in float32.
    meta : dict or None
        Self-describing information stored in every checkpoint, e.g. ``{'atlas': 'tvb76',
        'ch_names': [...], 'preprocessing': {...}}``, on top of :func:`dataset_meta` of
        ``train_set`` (entries given here win). On resume, the checkpoint's meta must match.
    val_batch_size : int or None
        Validation batch size (default ``batch_size``).
    deterministic : bool
        Call ``torch.use_deterministic_algorithms(True)`` during training (restored after).
    progress : bool
        Show tqdm progress bars with the live training loss.
    recipe : {'seed', 'lightbunny'} or None
        Named defaults of the options below (and of ``lr``, ``loss``); None is
        :data:`DEFAULT_RECIPE` (``'lightbunny'``).
    cosine_weight : float, optional
        Weight of the per-sample cosine loss added to ``loss`` (seed 0, lightbunny 1).
    warmup_epochs : float, optional
        Linear learning-rate warm-up over this many epochs of steps (seed 0, lightbunny 1).
    lr_schedule : {'constant', 'cosine'}, optional
        After the warm-up (seed constant, lightbunny cosine decay over the remaining steps).
    min_lr_ratio : float, optional
        Final learning rate of the cosine schedule as a share of ``lr`` (lightbunny 0.05).
    grad_clip : float, optional
        Clip the global gradient norm to this value; 0 for no clipping (seed 0, lightbunny 1).
    resample : bool, optional
        Call ``train_set.set_epoch(epoch)`` before every epoch, so a dataset that supports it
        (:meth:`lightbunny.dataset.SyntheticEEGDataset.set_epoch`) draws new clips, SNRs and
        noise every epoch (seed False, lightbunny True).

    Distributed training: inside an initialised ``torch.distributed`` process group (e.g.
    ``torchrun --nproc_per_node N -m lightbunny.cli train ...``, see
    :func:`init_distributed_from_env`), the model is wrapped in DistributedDataParallel and
    every global batch of ``batch_size`` samples is split between the ranks (rank ``r`` takes
    items ``r, r + N, ...`` of it), so each rank builds its own shard of the on-the-fly dataset
    and gradients are averaged. Every rank validates on the whole validation set (identical
    weights give identical losses); only rank 0 writes checkpoints, history and figures.

    Returns
    -------
    TrainResult

    Raises
    ------
    NonFiniteLossError
        If a loss becomes NaN or infinite; ``last.pt`` then still holds the last good epoch.
    """
    from .models import model_name

    name = model_name(model)
    opts = resolve_recipe(recipe, lr=lr, loss=loss, cosine_weight=cosine_weight,
                          warmup_epochs=warmup_epochs, lr_schedule=lr_schedule,
                          min_lr_ratio=min_lr_ratio, grad_clip=grad_clip, resample=resample)
    lr, loss = opts["lr"], opts["loss"]
    _check_loss(loss)
    check_option("lr_schedule", opts["lr_schedule"], LR_SCHEDULES)
    if opts["warmup_epochs"] < 0 or opts["grad_clip"] < 0 or opts["cosine_weight"] < 0:
        raise ValueError("warmup_epochs, grad_clip and cosine_weight must be >= 0, got "
                         f"{opts['warmup_epochs']!r}, {opts['grad_clip']!r}, "
                         f"{opts['cosine_weight']!r}.")
    if not 0 <= opts["min_lr_ratio"] <= 1:
        raise ValueError(f"min_lr_ratio must lie in [0, 1], got {opts['min_lr_ratio']!r}.")
    if opts["resample"] and not hasattr(train_set, "set_epoch"):
        logger.warning("resample=True, but %s has no set_epoch(); the same samples are used "
                       "every epoch.", type(train_set).__name__)
    for arg, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{arg} must be a positive integer, got {value!r}.")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}.")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}.")
    n_train = len(train_set)
    if n_train == 0:
        raise ValueError("the training dataset is empty.")
    if len(val_set) == 0:
        raise ValueError("the validation dataset is empty.")
    val_batch_size = val_batch_size or batch_size

    device = resolve_device(device)
    use_amp = _resolve_amp(amp, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / LAST_CHECKPOINT, out_dir / BEST_CHECKPOINT

    mix = getattr(train_set, "config", None)  # the data mix (recipe, noise, randomisation)
    meta = _plain({**dataset_meta(train_set), **({"dataset": mix()} if callable(mix) else {}),
                   **(meta or {})})
    run_args = {"seed": int(seed), "batch_size": int(batch_size), "loss": loss, "lr": float(lr),
                "epochs": int(epochs), "patience": patience, "amp": use_amp,
                "val_batch_size": int(val_batch_size), "n_train": n_train, "n_val": len(val_set),
                "device": device.type, "recipe": DEFAULT_RECIPE if recipe is None else recipe,
                "cosine_weight": float(opts["cosine_weight"]),
                "warmup_epochs": float(opts["warmup_epochs"]),
                "lr_schedule": opts["lr_schedule"], "min_lr_ratio": float(opts["min_lr_ratio"]),
                "grad_clip": float(opts["grad_clip"]), "resample": bool(opts["resample"])}

    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    result = TrainResult(out_dir=out_dir, last_checkpoint=last_path, best_checkpoint=best_path)
    state = {"start_epoch": 0, "bad_epochs": 0}

    rng_devices = [device] if device.type == "cuda" else []
    previous_determinism = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=rng_devices):
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            if resume and last_path.exists():
                _restore(last_path, model, optimizer, result, state, name, run_args, meta, device)
            else:
                if resume:
                    logger.warning("resume: no checkpoint at %s; starting a new run.", last_path)
                elif last_path.exists():
                    logger.warning("%s holds a checkpoint; starting a new run overwrites it "
                                   "(pass resume=True to continue it).", out_dir)
                torch.manual_seed(int(seed))
            if result.stopped_early or state["start_epoch"] >= epochs:
                logger.info("Nothing to do: the run in %s already finished (epoch %d).",
                            out_dir, state["start_epoch"])
                return result
            _fit(model, optimizer, train_set, val_set, result, state, name=name, epochs=epochs,
                 batch_size=batch_size, val_batch_size=val_batch_size, loss=loss,
                 patience=patience, seed=seed, device=device, use_amp=use_amp, meta=meta,
                 run_args=run_args, progress=progress)
        finally:
            if deterministic:
                torch.use_deterministic_algorithms(previous_determinism)
            if opts["resample"] and hasattr(train_set, "set_epoch"):
                train_set.set_epoch(0)  # hand the dataset back with its own samples
    return result


def _restore(path, model, optimizer, result, state, name, run_args, meta, device):
    # the data mix ('dataset') is a record for model cards, not a compatibility key
    meta = {k: v for k, v in meta.items() if k != "dataset"}
    ckpt = load_checkpoint(path, expected_meta=meta, map_location=device)
    if ckpt["model_name"] != name or ckpt["model_config"] != model.get_config():
        raise ValueError(
            f"cannot resume from {path}: it holds model {ckpt['model_name']!r} with config "
            f"{ckpt['model_config']}, but the model given is {name!r} with config "
            f"{model.get_config()}. Use another out_dir or build the same model.")
    saved = ckpt.get("run_args", {})
    changed = {k: (saved.get(k), run_args[k]) for k in _RESUME_FIXED if saved.get(k) != run_args[k]}
    changed.update({k: (saved[k], run_args[k]) for k in _RESUME_FIXED_IF_SAVED
                    if k in saved and saved[k] != run_args[k]})
    if changed:
        detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise ValueError(f"cannot resume from {path} with different settings ({detail}); "
                         "resume with the original settings or use another out_dir.")
    if (saved.get("lr_schedule", "constant") != "constant"
            and saved.get("epochs") not in (None, run_args["epochs"])):
        logger.warning("resume: epochs changed from %s to %s; the learning-rate schedule is "
                       "stretched to the new length from here on.", saved.get("epochs"),
                       run_args["epochs"])
    model.load_state_dict(ckpt["model_state"])
    optimizer.load_state_dict(ckpt["optimizer_state"])
    if saved.get("lr") != run_args["lr"]:
        logger.warning("resume: learning rate changed from %s to %s.", saved.get("lr"), run_args["lr"])
        for group in optimizer.param_groups:
            group["lr"] = run_args["lr"]
    _set_rng_state(ckpt["rng"], device)
    result.history = list(ckpt["history"])
    result.best_epoch = ckpt["best_epoch"]
    result.best_val_loss = math.inf if ckpt["best_val_loss"] is None else ckpt["best_val_loss"]
    result.stopped_early = bool(ckpt["stopped_early"])
    state["start_epoch"] = int(ckpt["epoch"])
    state["bad_epochs"] = int(ckpt["epochs_without_improvement"])
    logger.info("Resuming %s from %s after epoch %d (best val loss %.4g at epoch %s).",
                name, path, state["start_epoch"], result.best_val_loss, result.best_epoch)


def _fit(model, optimizer, train_set, val_set, result, state, *, name, epochs, batch_size,
         val_batch_size, loss, patience, seed, device, use_amp, meta, run_args, progress):
    cosine_weight = run_args["cosine_weight"]
    grad_clip = run_args["grad_clip"]
    n_train = len(train_set)
    n_batches = math.ceil(n_train / batch_size)
    # the learning rate is a function of the global step only, so a resumed run replays it
    scheduled = run_args["lr_schedule"] != "constant" or run_args["warmup_epochs"] > 0
    schedule = dict(lr=run_args["lr"], n_steps=epochs * n_batches,
                    warmup_steps=int(round(run_args["warmup_epochs"] * n_batches)),
                    schedule=run_args["lr_schedule"], min_lr_ratio=run_args["min_lr_ratio"])
    resample = run_args["resample"] and hasattr(train_set, "set_epoch")
    last_path, best_path = result.last_checkpoint, result.best_checkpoint
    rank, world = _distributed()
    forward = model
    if world > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(
            model, device_ids=[torch.cuda.current_device()] if device.type == "cuda" else None)
        progress = progress and rank == 0
    # one bar over every remaining epoch (training and validation batches): its ETA is the
    # whole run's, not the current epoch's
    n_val_batches = math.ceil(len(val_set) / val_batch_size)
    overall = _progress(None, progress, total=(epochs - state["start_epoch"]) *
                        (n_batches + n_val_batches), unit="batch", desc="training")
    for epoch in range(state["start_epoch"], epochs):
        model.train()
        if resample:
            train_set.set_epoch(epoch)
        t0 = time.perf_counter()
        total = torch.zeros((), dtype=torch.float64, device=device)
        n_elements = 0
        overall.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
        bar = overall
        for step, indices in enumerate(_batches(_epoch_order(n_train, seed, epoch), batch_size)):
            if world > 1:  # this rank's shard of the global batch
                if len(indices) < world:
                    continue  # every rank needs a sample; all ranks skip the same batch
                indices = indices[rank::world]
            eeg, target = train_set.get_batch(indices, device=device)
            if scheduled:
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(epoch * n_batches + step, **schedule)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(use_amp, device):
                pred = forward(eeg)
            batch_loss = _batch_loss(pred.float(), target.float(), loss, cosine_weight)
            value = batch_loss.item()
            if not math.isfinite(value):
                bar.close()
                _raise_non_finite("training", value, epoch, step, eeg, target, optimizer, last_path)
            batch_loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            weight = loss_count(loss, target)
            total += batch_loss.detach().double() * weight
            n_elements += weight
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)
            bar.update(1)
        train_time = time.perf_counter() - t0
        if world > 1:
            counts = torch.tensor([float(n_elements)], dtype=torch.float64, device=device)
            dist.all_reduce(total)
            dist.all_reduce(counts)
            n_elements = counts.item()
        train_loss = total.item() / n_elements

        val = evaluate_loss(model, val_set, batch_size=val_batch_size, loss=loss, device=device,
                            amp=use_amp, progress=False, cosine_weight=cosine_weight,
                            on_batch=overall.update)
        if not math.isfinite(val["loss"]):
            _raise_non_finite("validation", val["loss"], epoch, None, None, None, optimizer,
                              last_path)
        is_best = val["loss"] < result.best_val_loss
        if is_best:
            result.best_val_loss, result.best_epoch = val["loss"], epoch + 1
            state["bad_epochs"] = 0
        else:
            state["bad_epochs"] += 1
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"],
               "val_loss_zero": val["zero_loss"], "lr": optimizer.param_groups[0]["lr"],
               "epoch_time_s": time.perf_counter() - t0,
               "train_samples_per_s": n_train / train_time, "is_best": is_best}
        result.history.append(row)
        result.stopped_early = patience is not None and state["bad_epochs"] >= patience

        if rank == 0:
            ckpt = _checkpoint(model, optimizer, result, state, name=name, epoch=epoch + 1,
                               meta=meta, run_args=run_args, device=device)
            if is_best:
                best = {k: v for k, v in ckpt.items() if k != "optimizer_state"}
                _save(best, best_path)
            _save(ckpt, last_path)  # last: a crash before this line replays the epoch on resume
            _write_history(result.history, result.out_dir)
        if world > 1:
            dist.barrier()  # the checkpoint of this epoch exists before any rank goes on
        logger.info("epoch %d/%d: train loss %.4g, val loss %.4g (%.3g x zero prediction)%s, "
                    "%.0f samples/s", epoch + 1, epochs, train_loss, val["loss"],
                    val["loss"] / val["zero_loss"] if val["zero_loss"] > 0 else math.nan,
                    " *best*" if is_best else "", row["train_samples_per_s"])
        if result.stopped_early:
            logger.info("Early stopping after epoch %d: no improvement for %d epochs (best %.4g "
                        "at epoch %d).", epoch + 1, patience, result.best_val_loss,
                        result.best_epoch)
            break
    overall.close()


def _raise_non_finite(stage, value, epoch, step, eeg, target, optimizer, last_path):
    where = f"epoch {epoch + 1}" + (f", step {step + 1}" if step is not None else "")
    cause = ""
    if eeg is not None and not torch.isfinite(eeg).all():
        cause = " The EEG batch itself contains NaN or inf values: check the data."
    elif target is not None and not torch.isfinite(target).all():
        cause = " The target batch itself contains NaN or inf values: check the data."
    else:
        cause = (f" Try a lower learning rate (now {optimizer.param_groups[0]['lr']:g}) or "
                 "amp='off'.")
    kept = (f"The last good checkpoint is kept at {last_path}."
            if last_path.exists() else "No checkpoint had been written yet.")
    raise NonFiniteLossError(f"The {stage} loss became {value} at {where}; training stopped. "
                             f"{kept}{cause}")


def _checkpoint(model, optimizer, result, state, *, name, epoch, meta, run_args, device) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model_name": name,
        "model_config": _plain(model.get_config()),
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "epoch": epoch,
        "metrics": dict(result.history[-1]),
        "history": [dict(row) for row in result.history],
        "best_epoch": result.best_epoch,
        "best_val_loss": None if math.isinf(result.best_val_loss) else result.best_val_loss,
        "epochs_without_improvement": state["bad_epochs"],
        "stopped_early": result.stopped_early,
        "rng": _rng_state(device),
        "run_args": run_args,
        "meta": meta,
        "versions": versions(),
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _save(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _write_history(history: list, out_dir: Path) -> None:
    write_json(out_dir / HISTORY_JSON, history)
    with atomic_path(out_dir / HISTORY_CSV) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
    try:
        plot_history(history, out_dir / LOSS_CURVE)
    except Exception as err:  # a figure must never stop a training run
        logger.warning("could not draw the loss curve: %s", err)


def plot_history(history: list, path) -> Path:
    """Draw training and validation loss per epoch (log scale) to a PNG at ``path``.

    The loss of a zero prediction on the validation set is drawn as a dashed line.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    ax.plot(epochs, [row["val_loss"] for row in history], "s-", label="validation")
    zero = history[-1].get("val_loss_zero")
    if zero:
        ax.axhline(zero, color="grey", ls="--", lw=1, label="validation, zero prediction")
    best = [row for row in history if row.get("is_best")]
    if best:
        ax.plot(best[-1]["epoch"], best[-1]["val_loss"], "k*", ms=12, label="best")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


__all__ = ["train", "evaluate_loss", "dataset_meta", "load_checkpoint", "load_model", "check_meta",
           "plot_history", "resolve_device", "TrainResult", "NonFiniteLossError", "LOSSES",
           "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
           "ALL_LOSSES", "DEFAULT_RECIPE", "TRAIN_RECIPES", "LR_SCHEDULES", "lr_at", "resolve_recipe"]
