"""Spike peaks of a neural-mass trace: the original's local-maximum rule and peak thinning.

Used by :mod:`lightbunny.spikes` (and importable from there).
"""

from __future__ import annotations

import numpy as np

from .utils import check_option


def find_peaks(trace: np.ndarray, threshold: float = 8.0, flat: str = "center") -> np.ndarray:
    """Local maxima at or above ``threshold``, as the original finds spike peaks.

    A run of equal samples ``trace[a..b]`` (``a == b``: one sample) is a maximum when
    ``trace[a - 1] < trace[a] >= threshold`` and ``trace[b + 1] < trace[b]``; it is marked at
    ``(a + b) // 2`` (``flat='center'``) or ``a`` (``flat='first'``, as MATLAB's ``findpeaks``).
    The ends, and runs touching them, are no maxima. A flat step on a rising edge is none
    either: ``[0, 9, 10, 10, 11, 0]`` gives 4 only, as the original run under Octave. The
    original (``find_spike_time``) zeroes samples below 8 mV and calls MATLAB's ``islocalmax``
    with its defaults (``FlatSelection`` ``'center'``: ``floor((a + b) / 2)`` in 1-based
    indices, the lower middle sample of an even run; no minimum prominence), which for
    ``threshold > 0`` marks the same samples as ``flat='center'``.

    Parameters
    ----------
    trace : ndarray, shape (n_times,) or (n_times, n_regions), mV
    threshold : float, mV
    flat : {'center', 'first'}
        Which sample of a flat maximum is marked.

    Returns
    -------
    peaks : ndarray of int64, shape (n_peaks,)
        Sorted sample indices (for a 1-D trace), or an array of booleans of ``trace``'s shape
        for a 2-D one.

    Examples
    --------
    >>> find_peaks(np.array([0., 9., 3., 10., 10., 2., 7., 1.]), threshold=8).tolist()
    [1, 3]
    >>> find_peaks(np.array([0., 9., 10., 10., 11., 0.]), threshold=8).tolist()
    [4]
    >>> find_peaks(np.array([0., 9., 9., 9., 0.]), threshold=8).tolist()
    [2]
    """
    check_option("flat", flat, ("center", "first"))
    x = np.asarray(trace)
    is_peak = np.zeros(x.shape, dtype=bool)
    n = x.shape[0]
    if n >= 3:
        step = np.sign(np.diff(x, axis=0))  # (n - 1, ...): step[t] = sign(x[t + 1] - x[t])
        # nxt[t]: the first t' >= t with x[t' + 1] != x[t'] (n - 1 where none), so a run of
        # equal samples starting at a ends at b = nxt[a]
        idx = np.where(step != 0, np.arange(n - 1).reshape((-1,) + (1,) * (x.ndim - 1)), n - 1)
        nxt = np.flip(np.minimum.accumulate(np.flip(idx, 0), axis=0), 0)
        padded = np.concatenate([step, np.zeros((1,) + step.shape[1:])], axis=0)
        ahead = np.take_along_axis(padded, nxt, axis=0)  # sign of the step leaving the run
        first = np.zeros(x.shape, dtype=bool)
        first[1:-1] = (x[1:-1] >= threshold) & (step[:-1] > 0) & (ahead[1:] < 0)
        a, *cols = np.nonzero(first)
        mark = a if flat == "first" else (a + nxt[(a, *cols)]) // 2
        is_peak[(mark, *cols)] = True
    if x.ndim == 1:
        return np.flatnonzero(is_peak)
    return is_peak


def thin_peaks(peaks: np.ndarray, min_separation: int) -> np.ndarray:
    """Keep each peak at least ``min_separation`` samples after the last *kept* one (sorted)."""
    kept = []
    for t in np.asarray(peaks):
        if not kept or t - kept[-1] >= min_separation:
            kept.append(int(t))
    return np.asarray(kept, dtype=np.int64)
