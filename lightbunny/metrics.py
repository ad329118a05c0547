"""Metrics that compare an estimated source time course with the simulated truth.

Every metric is a pure function of arrays shaped ``(n_times, n_sources)`` (one column per
region of the atlas) and returns a float; the formula is written in each docstring. Region
distances come from a ``(n_sources, n_sources)`` matrix in **mm**, normally
:attr:`lightbunny.atlas.Atlas.distances` (Euclidean distances between region centres).

Notation used in the docstrings:

* :math:`\\hat{x}_r(t)` the prediction and :math:`x_r(t)` the truth at region :math:`r`,
  time sample :math:`t = 1 .. T`;
* :math:`\\hat{p}_r = \\frac{1}{T}\\sum_t \\hat{x}_r(t)^2` and :math:`p_r` their time-averaged
  power;
* :math:`\\mathcal{T}` the set of true regions (union of the patches of all sources) and
  :math:`\\mathcal{C}` the set of true centre regions;
* :math:`\\mathcal{I}` the *identified* regions of the prediction (:func:`identified_regions`);
* :math:`D_{ij}` the distance (mm) between regions :math:`i` and :math:`j`.

:func:`sample_metrics` computes all of them for one sample; :func:`lightbunny.evaluate.summarise`
aggregates them over all samples (mean, sd, median and count per method, SNR and metric, never
a mean of batch means).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._logging import logger

__all__ = [
    "identified_regions",
    "localisation_error",
    "nmse",
    "otsu_threshold",
    "peak_error",
    "precision_recall",
    "region_localisation_error",
    "roc_auc",
    "sample_metrics",
    "spatial_dispersion",
    "spatial_pcc",
    "temporal_pcc",
    "temporal_pcc_per_region",
]

#: Names of the values returned by :func:`sample_metrics`, in a stable order.
METRIC_NAMES = (
    "temporal_pcc_centre",
    "temporal_pcc_patch",
    "spatial_pcc",
    "localisation_error",
    "peak_error",
    "region_localisation_error",
    "precision",
    "recall",
    "roc_auc",
    "spatial_dispersion",
    "nmse",
    "n_identified",
)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_activity(name: str, x, n_sources: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n_times, n_sources), got shape {x.shape}.")
    if n_sources is not None and x.shape[1] != n_sources:
        raise ValueError(f"{name} has {x.shape[1]} sources (columns) but {n_sources} were "
                         "expected; arrays are (n_times, n_sources), did you pass the transpose?")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return x


def _check_pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred = _check_activity("pred", pred)
    true = _check_activity("true", true)
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape (n_times, n_sources), got "
                         f"{pred.shape} and {true.shape}.")
    return pred, true


def _check_regions(name: str, regions, n_sources: int) -> np.ndarray:
    regions = np.unique(np.asarray(regions, dtype=np.int64).ravel())
    if regions.size and (regions.min() < 0 or regions.max() >= n_sources):
        raise ValueError(f"{name} must hold region indices in 0..{n_sources - 1}, got values "
                         f"from {regions.min()} to {regions.max()}.")
    return regions


def _check_distances(distances, n_sources: int) -> np.ndarray:
    distances = np.asarray(distances, dtype=np.float64)
    if distances.shape != (n_sources, n_sources):
        raise ValueError(f"distances must have shape (n_sources, n_sources) = "
                         f"({n_sources}, {n_sources}), got {distances.shape}.")
    return distances


def _power(x: np.ndarray) -> np.ndarray:
    """Time-averaged power of each column, shape (n_sources,)."""
    return np.mean(x * x, axis=0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 1-D arrays; 0 if ``a`` is constant, NaN if ``b`` is."""
    a = a - a.mean()
    b = b - b.mean()
    nb = math.sqrt(float(b @ b))
    if nb == 0.0:
        return math.nan
    na = math.sqrt(float(a @ a))
    if na == 0.0:
        return 0.0
    return float(np.clip((a @ b) / (na * nb), -1.0, 1.0))


# --------------------------------------------------------------------------------------------
# Correlations
# --------------------------------------------------------------------------------------------


def temporal_pcc_per_region(pred, true, regions) -> np.ndarray:
    """Correlation over time between prediction and truth at each of ``regions``.

    .. math:: \\rho_r = \\frac{\\sum_t (\\hat{x}_r(t) - \\bar{\\hat{x}}_r)(x_r(t) - \\bar{x}_r)}
              {\\sqrt{\\sum_t (\\hat{x}_r(t) - \\bar{\\hat{x}}_r)^2}
               \\sqrt{\\sum_t (x_r(t) - \\bar{x}_r)^2}}

    Parameters
    ----------
    pred, true : ndarray, shape (n_times, n_sources)
        Predicted and true activity (any unit; the correlation is scale free).
    regions : array-like of int, shape (n_regions,)
        Regions (columns) at which to correlate, in the given order (not deduplicated).

    Returns
    -------
    pcc : ndarray, shape (n_regions,)
        :math:`\\rho_r` for each region. A prediction that is constant over time at a region
        scores 0 there (it carries no time course); a region whose *truth* is constant gives
        NaN (the correlation is undefined).

    Examples
    --------
    >>> t = np.linspace(0, 1, 50)[:, None]
    >>> true = np.hstack([np.sin(6 * t), np.cos(6 * t)])
    >>> temporal_pcc_per_region(2 * true + 1, true, [0, 1]).round(6)
    array([1., 1.])
    """
    pred, true = _check_pair(pred, true)
    regions = np.asarray(regions, dtype=np.int64).ravel()
    _check_regions("regions", regions, pred.shape[1])
    return np.array([_pearson(pred[:, r], true[:, r]) for r in regions], dtype=np.float64)


def temporal_pcc(pred, true, regions) -> float:
    """Mean over ``regions`` of the correlation over time between prediction and truth.

    .. math:: \\mathrm{PCC}_t = \\frac{1}{|R|} \\sum_{r \\in R} \\rho_r

    with :math:`\\rho_r` the Pearson correlation over time at region :math:`r`
    (:func:`temporal_pcc_per_region`). Call it with the centre region of a source, or with
    the regions of its patch. Regions whose truth is constant are left out of the mean.

    Parameters
    ----------
    pred, true : ndarray, shape (n_times, n_sources)
    regions : array-like of int

    Returns
    -------
    pcc : float
        In [-1, 1]; NaN if no region has a time-varying truth.

    Notes
    -----
    The seed code computed ``np.corrcoef(pred[:, regions], true[:, regions])[0, 1]``: with
    arrays shaped (time, regions) that is the correlation, *across regions*, between the
    prediction's first two time samples, and the truth never enters it. This function
    correlates each region's predicted time course with its true one.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> true = rng.standard_normal((200, 4))
    >>> temporal_pcc(true, true, [0, 2])
    1.0
    >>> abs(temporal_pcc(rng.standard_normal((200, 4)), true, [0, 1, 2, 3])) < 0.2
    True
    """
    rho = temporal_pcc_per_region(pred, true, regions)
    rho = rho[np.isfinite(rho)]
    return float(rho.mean()) if rho.size else math.nan


def spatial_pcc(pred, true) -> float:
    """Correlation across regions of the time-averaged power.

    .. math:: \\mathrm{PCC}_s = \\mathrm{corr}_r\\left(\\hat{p}_r, p_r\\right), \\quad
              \\hat{p}_r = \\frac{1}{T} \\sum_t \\hat{x}_r(t)^2

    Parameters
    ----------
    pred, true : ndarray, shape (n_times, n_sources)

    Returns
    -------
    pcc : float
        Pearson correlation over the ``n_sources`` regions; 0 for a prediction with the same
        power everywhere, NaN for a truth with the same power everywhere.

    Examples
    --------
    >>> true = np.zeros((10, 5)); true[:, 1] = 1.0
    >>> round(spatial_pcc(3 * true, true), 12)
    1.0
    """
    pred, true = _check_pair(pred, true)
    return _pearson(_power(pred), _power(true))


# --------------------------------------------------------------------------------------------
# Identified regions (Otsu)
# --------------------------------------------------------------------------------------------


def otsu_threshold(values, n_bins: int = 100) -> float:
    """Otsu's threshold of ``values`` computed on a histogram of ``n_bins`` bins.

    The values are binned over their range; for each candidate split after bin :math:`k`
    the between-class variance
    :math:`\\sigma_B^2(k) = w_0(k)\\, w_1(k)\\, (\\mu_0(k) - \\mu_1(k))^2` is evaluated from
    the bin counts :math:`w` and the class means :math:`\\mu` of the bin centres, and the
    threshold is the centre of the last bin of the lower class for the maximising :math:`k`
    (Otsu 1979; the same histogram convention as ``skimage.filters.threshold_otsu``).

    Parameters
    ----------
    values : array-like
        Any shape; flattened.
    n_bins : int
        Number of histogram bins (DeepSIF uses 100).

    Returns
    -------
    threshold : float
        Values strictly above it form the upper class (values in the upper half of the
        boundary bin therefore join it, as in skimage, whose convention DeepSIF used). If all
        values are equal, that value.

    Examples
    --------
    >>> v = np.r_[np.zeros(50), np.ones(10)]
    >>> 0 <= otsu_threshold(v) < 1
    True
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("otsu_threshold needs at least one value.")
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return lo
    counts, edges = np.histogram(v, bins=int(n_bins), range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)[:-1].astype(np.float64)          # lower class: bins 0..k
    w1 = np.cumsum(counts[::-1])[::-1][1:].astype(np.float64)  # upper class: bins k+1..
    s0 = np.cumsum(counts * centres)[:-1]
    s1 = np.cumsum((counts * centres)[::-1])[::-1][1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (s0 / w0 - s1 / w1) ** 2
    between[~np.isfinite(between)] = -1.0
    return float(centres[int(np.argmax(between))])


def identified_regions(pred, *, min_samples: int = 7, n_bins: int = 100) -> np.ndarray:
    """Regions the prediction marks as active, by DeepSIF's Otsu rule.

    The absolute prediction is scaled to [0, 1],
    :math:`a_r(t) = (|\\hat{x}_r(t)| - m) / (M - m)` with :math:`m, M` its minimum and
    maximum over all regions and times; :math:`\\theta` is the Otsu threshold
    (:func:`otsu_threshold`, 100 bins) of all :math:`a_r(t)`, and

    .. math:: \\mathcal{I} = \\{ r : \\#\\{t : a_r(t) > \\theta\\} > 7 \\}

    Parameters
    ----------
    pred : ndarray, shape (n_times, n_sources)
    min_samples : int
        A region must exceed the threshold at *more than* this many samples (DeepSIF: 7).
    n_bins : int
        Histogram bins of the Otsu threshold.

    Returns
    -------
    regions : ndarray of int, shape (n_identified,)
        Sorted region indices (possibly empty, e.g. for an all-zero prediction).

    Notes
    -----
    DeepSIF (Sun et al. 2022, ``utils.get_otsu_regions``) divides by the maximum rather than
    the range and compares the *signed* output with the threshold; here the normalised
    magnitude is compared, so negative deflections count as activity too.
    """
    pred = _check_activity("pred", pred)
    a = np.abs(pred)
    lo, hi = a.min(), a.max()
    if hi == lo:
        return np.zeros(0, dtype=np.int64)
    a = (a - lo) / (hi - lo)
    theta = otsu_threshold(a, n_bins=n_bins)
    return np.flatnonzero((a > theta).sum(axis=0) > min_samples).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------


def _identified_and_truth(identified, true_regions, distances):
    """Checked (distances, identified regions, true regions) for the error metrics."""
    distances = np.asarray(distances, dtype=np.float64)
    n = distances.shape[0]
    ident = _check_regions("identified", identified, n)
    truth = _check_regions("true_regions", true_regions, n)
    if truth.size == 0:
        raise ValueError("true_regions is empty: the localisation error needs a true source.")
    return distances, ident, truth


def localisation_error(identified, true_regions, distances) -> float:
    """DeepSIF's localisation error: mean distance from identified regions to the truth.

    .. math:: \\mathrm{LE} = \\frac{1}{|\\mathcal{I}|} \\sum_{i \\in \\mathcal{I}}
              \\min_{k \\in \\mathcal{T}} D_{ik}

    Parameters
    ----------
    identified : array-like of int
        :math:`\\mathcal{I}`, e.g. from :func:`identified_regions`.
    true_regions : array-like of int
        :math:`\\mathcal{T}`, the regions of all true patches.
    distances : ndarray, shape (n_sources, n_sources), mm

    Returns
    -------
    le : float, mm
        NaN when nothing is identified.

    Examples
    --------
    >>> d = np.array([[0., 10., 30.], [10., 0., 20.], [30., 20., 0.]])
    >>> localisation_error([1, 2], [0], d)
    20.0
    """
    distances, ident, truth = _identified_and_truth(identified, true_regions, distances)
    if ident.size == 0:
        return math.nan
    return float(distances[np.ix_(ident, truth)].min(axis=1).mean())


def region_localisation_error(identified, true_regions, distances) -> float:
    """Symmetric region localisation error (RLE) of MNE-Python.

    .. math:: \\mathrm{RLE} = \\frac{1}{2|\\mathcal{T}|} \\sum_{k \\in \\mathcal{T}}
              \\min_{i \\in \\mathcal{I}} D_{ki} + \\frac{1}{2|\\mathcal{I}|}
              \\sum_{i \\in \\mathcal{I}} \\min_{k \\in \\mathcal{T}} D_{ik}

    the definition of ``mne.simulation.metrics.region_localization_error`` (Maksymenko et al.
    2017; Yao & Dewald 2005). Unlike :func:`localisation_error` it also penalises true regions
    that were missed.

    Parameters
    ----------
    identified, true_regions : array-like of int
    distances : ndarray, shape (n_sources, n_sources), mm

    Returns
    -------
    rle : float, mm
        NaN when nothing is identified.

    Examples
    --------
    >>> d = np.array([[0., 10., 30.], [10., 0., 20.], [30., 20., 0.]])
    >>> region_localisation_error([1], [0, 2], d)
    12.5
    """
    distances, ident, truth = _identified_and_truth(identified, true_regions, distances)
    if ident.size == 0:
        return math.nan
    d = distances[np.ix_(truth, ident)]
    return float((d.min(axis=1).mean() + d.min(axis=0).mean()) / 2)


def peak_error(pred, true_centres, distances) -> float:
    """Distance from the most active region to the nearest true centre.

    .. math:: \\mathrm{PE} = \\min_{c \\in \\mathcal{C}} D_{r^* c}, \\quad
              r^* = \\arg\\max_r \\hat{p}_r

    Parameters
    ----------
    pred : ndarray, shape (n_times, n_sources)
    true_centres : array-like of int
        :math:`\\mathcal{C}`, the centre region of each true source.
    distances : ndarray, shape (n_sources, n_sources), mm

    Returns
    -------
    pe : float, mm
        NaN for an all-zero prediction (no peak).
    """
    pred = _check_activity("pred", pred)
    distances = _check_distances(distances, pred.shape[1])
    centres = _check_regions("true_centres", true_centres, pred.shape[1])
    if centres.size == 0:
        raise ValueError("true_centres is empty: the peak error needs a true source.")
    power = _power(pred)
    if not power.any():
        return math.nan
    return float(distances[int(np.argmax(power)), centres].min())


def spatial_dispersion(pred, true_regions, distances) -> float:
    """Power-weighted spread of the prediction around the true regions.

    .. math:: \\mathrm{SD} = \\sqrt{\\frac{\\sum_r \\hat{p}_r\\, d_r^2}{\\sum_r \\hat{p}_r}},
              \\quad d_r = \\min_{k \\in \\mathcal{T}} D_{rk}

    (Molins et al. 2008; Chowdhury et al. 2013, with region power in place of vertex
    amplitude).

    Parameters
    ----------
    pred : ndarray, shape (n_times, n_sources)
    true_regions : array-like of int
    distances : ndarray, shape (n_sources, n_sources), mm

    Returns
    -------
    sd : float, mm
        0 when all power lies on true regions; NaN for an all-zero prediction.

    Examples
    --------
    >>> d = np.array([[0., 10., 30.], [10., 0., 20.], [30., 20., 0.]])
    >>> pred = np.zeros((4, 3)); pred[:, 1] = 1.0
    >>> spatial_dispersion(pred, [0], d)
    10.0
    """
    pred = _check_activity("pred", pred)
    distances = _check_distances(distances, pred.shape[1])
    truth = _check_regions("true_regions", true_regions, pred.shape[1])
    if truth.size == 0:
        raise ValueError("true_regions is empty: the spatial dispersion needs a true source.")
    power = _power(pred)
    total = power.sum()
    if total == 0:
        return math.nan
    d = distances[:, truth].min(axis=1)
    return float(math.sqrt(float(power @ d**2) / total))


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def precision_recall(identified, true_regions) -> tuple[float, float]:
    """Precision and recall of the identified regions.

    .. math:: \\mathrm{precision} = \\frac{|\\mathcal{I} \\cap \\mathcal{T}|}{|\\mathcal{I}|},
              \\quad \\mathrm{recall} = \\frac{|\\mathcal{I} \\cap \\mathcal{T}|}{|\\mathcal{T}|}

    Parameters
    ----------
    identified, true_regions : array-like of int

    Returns
    -------
    precision, recall : float
        Precision is NaN when nothing is identified.

    Examples
    --------
    >>> precision_recall([1, 2, 3, 4], [3, 4, 5])
    (0.5, 0.6666666666666666)
    """
    ident = np.unique(np.asarray(identified, dtype=np.int64))
    truth = np.unique(np.asarray(true_regions, dtype=np.int64))
    if truth.size == 0:
        raise ValueError("true_regions is empty: recall needs a true source.")
    hit = np.intersect1d(ident, truth).size
    precision = hit / ident.size if ident.size else math.nan
    return float(precision), float(hit / truth.size)


def roc_auc(pred, true_regions) -> float:
    """Area under the ROC curve of region power as a detector of true-patch membership.

    With :math:`P = \\mathcal{T}` the positives and :math:`N` the other regions,

    .. math:: \\mathrm{AUC} = \\frac{1}{|P||N|} \\sum_{i \\in P} \\sum_{j \\in N}
              \\left( [\\hat{p}_i > \\hat{p}_j] + \\tfrac{1}{2} [\\hat{p}_i = \\hat{p}_j] \\right)

    (the Mann-Whitney statistic, computed from average ranks; the same value as
    ``sklearn.metrics.roc_auc_score(membership, power)``).

    Parameters
    ----------
    pred : ndarray, shape (n_times, n_sources)
    true_regions : array-like of int

    Returns
    -------
    auc : float
        1 when every true region has more power than every other one, 0.5 for chance;
        NaN when all regions or none are true.

    Examples
    --------
    >>> pred = np.array([[0.1, 2.0, 0.5, 3.0]])
    >>> roc_auc(pred, [1, 3])
    1.0
    """
    from scipy.stats import rankdata

    pred = _check_activity("pred", pred)
    truth = _check_regions("true_regions", true_regions, pred.shape[1])
    n = pred.shape[1]
    n_pos = truth.size
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(_power(pred))  # average ranks for ties, 1-based
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def nmse(pred, true, *, scale: str = "max") -> float:
    """Normalised mean squared error.

    .. math:: \\mathrm{nMSE} = \\frac{\\sum_{t,r} (\\tilde{x}_r(t) - \\tilde{x}^{\\,true}_r(t))^2}
              {\\sum_{t,r} \\tilde{x}^{\\,true}_r(t)^2}

    where with ``scale="max"`` each array is first divided by its largest absolute value
    (:math:`\\tilde{x} = x / \\max|x|`), which makes the error independent of the arbitrary
    units of classical inverse solutions (dSPM and sLORETA are noise-normalised), and with
    ``scale="none"`` :math:`\\tilde{x} = x`.

    Parameters
    ----------
    pred, true : ndarray, shape (n_times, n_sources)
    scale : {"max", "none"}

    Returns
    -------
    nmse : float
        0 for a perfect prediction; 1 for an all-zero prediction.

    Examples
    --------
    >>> true = np.eye(3)
    >>> nmse(5 * true, true), nmse(5 * true, true, scale="none")
    (0.0, 16.0)
    """
    from .utils import check_option

    check_option("scale", scale, ("max", "none"))
    pred, true = _check_pair(pred, true)
    if scale == "max":
        mt = np.abs(true).max()
        mp = np.abs(pred).max()
        true = true / mt if mt > 0 else true
        pred = pred / mp if mp > 0 else pred
    denom = float(np.sum(true * true))
    if denom == 0:
        return math.nan
    return float(np.sum((pred - true) ** 2) / denom)


# --------------------------------------------------------------------------------------------
# One sample, many samples
# --------------------------------------------------------------------------------------------


def sample_metrics(pred, true, patches: Sequence, centres: Sequence, distances, *,
                   min_samples: int = 7) -> dict:
    """All metrics of one sample.

    Parameters
    ----------
    pred, true : ndarray, shape (n_times, n_sources)
        Predicted and simulated activity.
    patches : sequence of array-like of int, length n_patches
        Regions of each true source patch.
    centres : sequence of int, length n_patches
        Centre region of each true source.
    distances : ndarray, shape (n_sources, n_sources), mm
        Distances between region centres (``atlas.distances``).
    min_samples : int
        See :func:`identified_regions`.

    Returns
    -------
    metrics : dict of str to float
        Keys :data:`METRIC_NAMES`:

        ``temporal_pcc_centre``
            mean over sources of :math:`\\rho` at the source's centre region;
        ``temporal_pcc_patch``
            mean over sources of the mean of :math:`\\rho` over the source's patch regions;
        ``spatial_pcc``, ``roc_auc``, ``nmse``, ``spatial_dispersion`` (mm), ``peak_error``
        (mm)
            as in the functions of the same names, with :math:`\\mathcal{T}` the union of the
            patches and :math:`\\mathcal{C}` the centres;
        ``localisation_error`` (mm), ``region_localisation_error`` (mm), ``precision``,
        ``recall``
            on the regions identified by :func:`identified_regions`;
        ``n_identified``
            :math:`|\\mathcal{I}|`.

        Values that are undefined for this sample (e.g. the localisation error when nothing
        is identified) are NaN; :func:`lightbunny.evaluate.summarise` counts them apart.

    Examples
    --------
    >>> d = np.abs(np.subtract.outer(np.arange(6.0), np.arange(6.0))) * 10
    >>> true = np.zeros((40, 6)); true[:, 2] = np.sin(np.arange(40) / 3)
    >>> m = sample_metrics(true, true, patches=[[2]], centres=[2], distances=d)
    >>> m["temporal_pcc_centre"], m["localisation_error"], m["roc_auc"]
    (1.0, 0.0, 1.0)
    """
    pred, true = _check_pair(pred, true)
    n_sources = pred.shape[1]
    distances = _check_distances(distances, n_sources)
    centres = np.asarray(centres, dtype=np.int64).ravel()
    if len(patches) != len(centres):
        raise ValueError(f"patches ({len(patches)}) and centres ({len(centres)}) must have one "
                         "entry per true source.")
    if len(centres) == 0:
        raise ValueError("sample_metrics needs at least one true source (patches is empty).")
    patch_list = [_check_regions(f"patches[{k}]", p, n_sources) for k, p in enumerate(patches)]
    _check_regions("centres", centres, n_sources)
    for k, (p, c) in enumerate(zip(patch_list, centres)):
        if c not in p:
            logger.debug("centre %d of source %d is not in its patch", c, k)
    truth = np.unique(np.concatenate(patch_list + [centres]))

    centre_pcc = temporal_pcc_per_region(pred, true, centres)
    patch_pcc = [temporal_pcc(pred, true, p) for p in patch_list]
    ident = identified_regions(pred, min_samples=min_samples)
    precision, recall = precision_recall(ident, truth)
    return {
        "temporal_pcc_centre": _nanmean(centre_pcc),
        "temporal_pcc_patch": _nanmean(np.asarray(patch_pcc)),
        "spatial_pcc": spatial_pcc(pred, true),
        "localisation_error": localisation_error(ident, truth, distances),
        "peak_error": peak_error(pred, centres, distances),
        "region_localisation_error": region_localisation_error(ident, truth, distances),
        "precision": precision,
        "recall": recall,
        "roc_auc": roc_auc(pred, truth),
        "spatial_dispersion": spatial_dispersion(pred, truth, distances),
        "nmse": nmse(pred, true),
        "n_identified": float(ident.size),
    }


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan
