"""The benchmark's metrics and their summaries: EMD, bootstrap CIs, fraction best, win tables."""

from __future__ import annotations

import math

import numpy as np

from .conditions import ConditionSamples

#: Metrics reported, with the better direction; the first of KEY_METRICS is the primary one.
METRICS = {
    "emd": "lower", "peak_error": "lower", "localisation_error": "lower",
    "spatial_dispersion": "lower", "roc_auc": "higher", "spatial_pcc": "higher",
    "temporal_pcc_centre": "higher", "precision": "higher", "recall": "higher", "nmse": "lower",
}
KEY_METRICS = ("emd", "peak_error", "roc_auc", "localisation_error", "spatial_pcc",
               "temporal_pcc_centre")


def emd(pred, true, distances) -> float:
    """Earth mover's distance between the normalised time-averaged power maps.

    .. math:: \\mathrm{EMD} = \\min_{F \\ge 0} \\sum_{ij} F_{ij} D_{ij} \\quad
              \\text{s.t.} \\sum_j F_{ij} = \\hat{q}_i, \\; \\sum_i F_{ij} = q_j

    with :math:`\\hat{q} = \\hat{p} / \\sum \\hat{p}` and :math:`q = p / \\sum p` the region
    powers :math:`p_r = \\frac1T\\sum_t x_r(t)^2` normalised to 1, and :math:`D` the ground
    cost: the Euclidean distance between region centres in mm (``atlas.distances``; not a
    geodesic). Solved as a linear programme (scipy's HiGHS) over the regions where either map
    is non-zero.

    Parameters
    ----------
    pred, true : ndarray, shape (n_times, n_sources)
    distances : ndarray, shape (n_sources, n_sources), mm

    Returns
    -------
    emd : float, mm
        0 for identical maps; NaN for an all-zero prediction.

    Examples
    --------
    >>> d = np.array([[0., 10., 30.], [10., 0., 20.], [30., 20., 0.]])
    >>> a = np.array([[1.0, 0, 0]]); b = np.array([[0, 0, 1.0]])
    >>> round(emd(a, b, d), 6), round(emd(a, a, d), 6)
    (30.0, 0.0)
    """
    from scipy.optimize import linprog

    pred = np.asarray(pred, float)
    true = np.asarray(true, float)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"pred and true must both be (n_times, n_sources), got {pred.shape} "
                         f"and {true.shape}.")
    distances = np.asarray(distances, float)
    p_hat, p = (pred * pred).mean(0), (true * true).mean(0)
    if p.sum() == 0:
        raise ValueError("the truth has no power: the EMD needs a true source.")
    if p_hat.sum() == 0:
        return math.nan
    a_idx, b_idx = np.flatnonzero(p_hat), np.flatnonzero(p)
    a, b = p_hat[a_idx] / p_hat.sum(), p[b_idx] / p.sum()
    cost = distances[np.ix_(a_idx, b_idx)]
    na, nb = len(a), len(b)
    if nb == 1:
        return float(a @ cost[:, 0])
    if na == 1:
        return float(b @ cost[0])
    from scipy.sparse import coo_matrix, vstack

    rows_a = coo_matrix((np.ones(na * nb), (np.repeat(np.arange(na), nb), np.arange(na * nb))),
                        shape=(na, na * nb))
    rows_b = coo_matrix((np.ones(na * nb), (np.tile(np.arange(nb), na), np.arange(na * nb))),
                        shape=(nb, na * nb))
    # the two marginal systems share one redundant equation: drop the last row of b
    res = linprog(cost.ravel(), A_eq=vstack([rows_a, rows_b.tocsr()[:-1]]).tocsr(),
                  b_eq=np.r_[a, b[:-1]], bounds=(0, None), method="highs")
    if not res.success:
        raise RuntimeError(f"EMD linear programme failed: {res.message}")
    return float(res.fun)


def bootstrap_median_ci(values, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """Median and its percentile-bootstrap confidence interval.

    Parameters
    ----------
    values : array-like
        NaNs are left out.
    n_boot : int
    seed : int
    level : float

    Returns
    -------
    median, low, high : float
        NaN when no value is finite.

    Examples
    --------
    >>> m, lo, hi = bootstrap_median_ci(np.arange(101.0))
    >>> m, lo < 50 < hi
    (50.0, True)
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    meds = np.median(v[rng.integers(0, v.size, (n_boot, v.size))], axis=1)
    q = (1 - level) / 2
    return float(np.median(v)), float(np.quantile(meds, q)), float(np.quantile(meds, 1 - q))


def _score(pred, target, patches, centres, distances) -> dict:
    from ..metrics import sample_metrics

    m = sample_metrics(pred, target, patches, centres, distances)
    m["emd"] = emd(pred, target, distances)
    return m


def _condition_summary(samples: ConditionSamples) -> dict:
    sizes = [s for inf in samples.info for s in inf["patch_sizes"]]
    out = {"n_samples": len(samples.eeg),
           "patch_regions_median": float(np.median(sizes)) if sizes else math.nan,
           "patch_regions_range": [int(min(sizes)), int(max(sizes))] if sizes else []}
    from ..dataset import realised_snr_db

    snr = realised_snr_db(samples.signal, samples.noise)
    out["realised_snr_db_range"] = [float(snr.min()), float(snr.max())]
    mem = [m for inf in samples.info for m in inf.get("memorised", [])]
    if mem:
        out["fraction_patches_equal_to_training"] = float(np.mean(mem))
    return out


def summarise(rows, conditions, methods, *, seed: int = 0) -> list:
    """Median with bootstrap 95 % CI, mean and count per condition x method x metric."""
    out = []
    for c in conditions:
        for m in methods:
            sel = [r for r in rows if r["condition"] == c and r["method"] == m]
            if not sel:
                continue
            for metric in METRICS:
                v = np.array([r[metric] for r in sel], float)
                med, lo, hi = bootstrap_median_ci(v, seed=seed)
                ok = v[np.isfinite(v)]
                out.append({"condition": c, "method": m, "metric": metric, "median": med,
                            "ci_low": lo, "ci_high": hi,
                            "mean": float(ok.mean()) if ok.size else math.nan,
                            "n": int(ok.size), "n_undefined": int(v.size - ok.size)})
    return out


def fraction_best(rows, conditions, competitors) -> list:
    """Per condition and key metric, the fraction of samples where each method is best.

    Ties count for every tied method; samples where a method's value is undefined count as
    not best for it. Floors and ceilings are not competitors.
    """
    out = []
    for c in conditions:
        by_sample = {}
        for r in rows:
            if r["condition"] == c and r["method"] in competitors:
                by_sample.setdefault(r["sample"], {})[r["method"]] = r
        n = len(by_sample)
        for metric in KEY_METRICS:
            sign = 1.0 if METRICS[metric] == "lower" else -1.0
            count = dict.fromkeys(competitors, 0)
            for per in by_sample.values():
                vals = {m: sign * per[m][metric] for m in per if np.isfinite(per[m][metric])}
                if not vals:
                    continue
                top = min(vals.values())
                for m, v in vals.items():
                    if np.isclose(v, top, rtol=1e-9, atol=1e-12):
                        count[m] += 1
            for m in competitors:
                out.append({"condition": c, "metric": metric, "method": m,
                            "fraction_best": count[m] / n if n else math.nan})
    return out


def win_table(summary, conditions, competitors) -> dict:
    """``{(method, condition): k}``: on how many :data:`KEY_METRICS` the method's median is the
    best among the competitors (ties count for each)."""
    table = {(r["condition"], r["method"], r["metric"]): r["median"] for r in summary}
    wins = {(m, c): 0 for m in competitors for c in conditions}
    for c in conditions:
        for metric in KEY_METRICS:
            sign = 1.0 if METRICS[metric] == "lower" else -1.0
            vals = {m: sign * table.get((c, m, metric), math.nan) for m in competitors}
            vals = {m: v for m, v in vals.items() if np.isfinite(v)}
            if not vals:
                continue
            top = min(vals.values())
            for m, v in vals.items():
                if np.isclose(v, top, rtol=1e-9, atol=1e-12):
                    wins[(m, c)] += 1
    return wins


def paired_win_loss(rows, conditions, reference, others, metric: str = "emd") -> dict:
    """``{(method, condition): (wins, losses)}`` of each method against ``reference``, per sample.

    A win is a sample where the method's ``metric`` is strictly better than the reference's
    (undefined values lose to defined ones; two undefined values are a tie).
    """
    sign = 1.0 if METRICS[metric] == "lower" else -1.0
    val = {(r["condition"], r["method"], r["sample"]): r[metric] for r in rows}
    samples = {}
    for r in rows:
        samples.setdefault(r["condition"], set()).add(r["sample"])
    out = {}
    for c in conditions:
        for m in others:
            w = l_ = 0
            for i in samples.get(c, ()):
                a = sign * val.get((c, m, i), math.nan)
                b = sign * val.get((c, reference, i), math.nan)
                a = math.inf if not np.isfinite(a) else a
                b = math.inf if not np.isfinite(b) else b
                w += a < b
                l_ += a > b
            out[(m, c)] = (int(w), int(l_))
    return out
