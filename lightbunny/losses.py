"""Training losses for sparse source maps.

The targets of source imaging are sparse: a sample's activity lives on a few patch regions
(the *active* regions, whose target is non-zero at some time) and, within them, on a short spike.
Plain MSE averaged over all ``n_times * n_regions`` elements is then small for a prediction of
zeros, and its minimiser under uncertainty (the conditional mean) is a low-amplitude, smeared
map. The losses here are per-sample and scale-aware:

``balanced_mse``
    squared error on active regions and squared prediction on inactive regions, each averaged
    over its own elements, summed, and divided by the mean target power on the active regions:

    .. math:: L = \\frac{\\overline{(\\hat{x} - x)^2}_{\\mathcal{A}}
              + \\overline{\\hat{x}^2}_{\\bar{\\mathcal{A}}}}{\\overline{x^2}_{\\mathcal{A}}}

    so a prediction of zeros scores 1 whatever the patch size, an exact prediction 0, and the
    inactive regions weigh as much as the active ones however few the latter are (the class
    balancing of, e.g., Cui et al. 2019, "Class-balanced loss based on effective number of
    samples", applied to regions).
``cosine``
    ``1 - cos(x_hat, x)`` over the flattened (time, region) map of each sample: blind to the
    overall scale, so it cannot be lowered by shrinking the prediction (a correlation-type term
    as in the temporal/spatial PCC metrics of DeepSIF, Sun et al. 2022, PNAS).

Every loss :func:`lightbunny.train.train` accepts is in the one registry :data:`LOSSES`:
element-wise ones (``mse``, ``l1``, ``smooth_l1``: averaged over every element of a batch) and
per-sample ones (``balanced_mse``, ``cosine``: averaged over the samples). The training recipe
adds ``cosine_weight`` times the cosine loss to its base loss (``lightbunny.train._batch_loss``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch  # noqa: F401  (used by the doctests)
import torch.nn.functional as F
from torch import Tensor

_EPS = 1e-12


def active_regions(target: Tensor) -> Tensor:
    """Regions whose target is non-zero at some time, shape (batch, 1, n_regions), bool.

    Parameters
    ----------
    target : Tensor, shape (batch, n_times, n_regions)

    Examples
    --------
    >>> t = torch.zeros(1, 3, 4); t[0, 1, 2] = 0.5
    >>> active_regions(t).int().tolist()
    [[[0, 0, 1, 0]]]
    """
    return target.abs().amax(dim=1, keepdim=True) > 0


def balanced_mse(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Active/inactive-balanced squared error, normalised by the active target power.

    Parameters
    ----------
    pred, target : Tensor, shape (batch, n_times, n_regions)
    reduction : {'mean', 'sum', 'none'}
        Over the samples of the batch (``'none'``: shape (batch,)).

    Returns
    -------
    loss : Tensor
        1 for a prediction of zeros, 0 for an exact one (per sample).

    Examples
    --------
    >>> t = torch.zeros(2, 4, 3); t[:, :, 0] = 1.0
    >>> balanced_mse(torch.zeros_like(t), t).item(), balanced_mse(t, t).item()
    (1.0, 0.0)
    """
    active = active_regions(target).to(pred.dtype)  # (B, 1, R)
    n_times = pred.shape[1]
    n_act = active.sum(dim=(1, 2)) * n_times
    n_inact = (1.0 - active).sum(dim=(1, 2)) * n_times
    err = (pred - target).pow(2)
    err_act = (err * active).sum(dim=(1, 2)) / n_act.clamp_min(1.0)
    err_inact = (pred.pow(2) * (1.0 - active)).sum(dim=(1, 2)) / n_inact.clamp_min(1.0)
    power = (target.pow(2) * active).sum(dim=(1, 2)) / n_act.clamp_min(1.0)
    loss = (err_act + err_inact) / power.clamp_min(_EPS)
    return _reduce(loss, reduction)


def cosine_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``1 - cos(pred, target)`` of each sample's flattened (time, region) map.

    0 for a prediction proportional to the target (any positive scale), 1 for an orthogonal or
    all-zero prediction, 2 for the negated target.

    Examples
    --------
    >>> t = torch.randn(2, 5, 3)
    >>> abs(cosine_loss(3 * t, t).item()) < 1e-6, cosine_loss(torch.zeros_like(t), t).item()
    (True, 1.0)
    """
    cos = F.cosine_similarity(pred.flatten(1), target.flatten(1), dim=1, eps=1e-8)
    return _reduce(1.0 - cos, reduction)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")


class Loss(NamedTuple):
    """A training loss: ``fn(pred, target, reduction='sum' | 'mean' | ...)`` and what its sum is
    averaged over, ``'element'`` (every element of the batch) or ``'sample'``."""

    fn: Callable
    per: str


#: the one registry of training losses, by name
LOSSES = {
    "mse": Loss(F.mse_loss, "element"),
    "l1": Loss(F.l1_loss, "element"),
    "smooth_l1": Loss(F.smooth_l1_loss, "element"),
    "balanced_mse": Loss(balanced_mse, "sample"),
    "cosine": Loss(cosine_loss, "sample"),
}


def loss_count(name: str, target: Tensor) -> int:
    """What the summed loss ``name`` of a batch is divided by: its elements or its samples."""
    return target.numel() if LOSSES[name].per == "element" else target.shape[0]


def loss_sum(name: str, pred: Tensor, target: Tensor) -> tuple:
    """``(sum, count)`` of loss ``name`` over a batch; the batch loss is ``sum / count``.

    Examples
    --------
    >>> t = torch.ones(2, 3, 4)
    >>> [(float(s), c) for s, c in (loss_sum(n, 0 * t, t) for n in ("mse", "balanced_mse"))]
    [(24.0, 24), (2.0, 2)]
    """
    return LOSSES[name].fn(pred, target, reduction="sum"), loss_count(name, target)


__all__ = ["active_regions", "balanced_mse", "cosine_loss", "Loss", "LOSSES", "loss_count",
           "loss_sum"]
