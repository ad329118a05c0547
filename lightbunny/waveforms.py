"""Source waveform families and coloured noise, shared by the benchmark and training data.

``spike`` is a neural-mass spike from the spike bank; ``burst`` an alpha (8-12 Hz) or beta
(15-30 Hz) oscillation under a Gaussian envelope (sd 50-150 ms); ``smooth`` random Fourier
coefficients below 8 Hz with a 1/f amplitude; ``erp`` P1, N1 and P3-like Gaussian deflections
(latencies about 100, 170, 350 ms after an onset at 10-40 % of the window). :func:`pink_noise` is
1/f noise used as background activity of every region (coloured sensor noise once projected).
"""

from __future__ import annotations

import numpy as np

from .utils import check_option

__all__ = ["WAVEFORMS", "make_waveform", "pink_noise"]

WAVEFORMS = ("spike", "burst", "smooth", "erp")


def make_waveform(family: str, n_times: int, sfreq: float, rng, *, clip=None) -> np.ndarray:
    """One source time course of a named family, scaled to a peak |value| of 1.

    Parameters
    ----------
    family : {'spike', 'burst', 'smooth', 'erp'}
        See the module docstring.
    n_times : int
    sfreq : float, Hz
    rng : numpy.random.Generator
    clip : ndarray, shape (n_times,), optional
        The neural-mass waveform (``'spike'`` only).

    Returns
    -------
    wave : ndarray, shape (n_times,)

    Examples
    --------
    >>> w = make_waveform("burst", 500, 500.0, np.random.default_rng(0))
    >>> w.shape, float(np.abs(w).max())
    ((500,), 1.0)
    """
    check_option("waveform", family, WAVEFORMS)
    t = np.arange(n_times) / sfreq
    dur = n_times / sfreq
    if family == "spike":
        if clip is None:
            raise ValueError("the 'spike' waveform needs a clip from the spike bank.")
        w = np.asarray(clip, dtype=np.float64).copy()
        if w.shape != (n_times,):
            raise ValueError(f"clip must have shape ({n_times},), got {w.shape}.")
    elif family == "burst":
        f = rng.uniform(8.0, 12.0) if rng.random() < 0.5 else rng.uniform(15.0, 30.0)
        centre = rng.uniform(0.3, 0.7) * dur
        sd = rng.uniform(0.05, 0.15)
        w = np.exp(-0.5 * ((t - centre) / sd) ** 2) * np.sin(2 * np.pi * f * t
                                                              + rng.uniform(0, 2 * np.pi))
    elif family == "smooth":
        freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
        keep = (freqs > 0) & (freqs <= 8.0)
        spec = np.zeros(len(freqs), dtype=complex)
        spec[keep] = (rng.standard_normal(keep.sum()) + 1j * rng.standard_normal(keep.sum())) \
            / np.sqrt(freqs[keep])
        w = np.fft.irfft(spec, n=n_times)
    else:  # erp
        onset = rng.uniform(0.1, 0.4) * dur
        scale = rng.uniform(0.8, 1.2)
        comps = ((0.100, 0.015, rng.uniform(0.3, 0.6)), (0.170, 0.025, -rng.uniform(0.6, 1.0)),
                 (0.350, 0.060, rng.uniform(0.5, 1.0)))
        w = np.zeros(n_times)
        for lat, sd, amp in comps:
            w += amp * np.exp(-0.5 * ((t - onset - scale * lat) / (scale * sd)) ** 2)
    peak = np.abs(w).max()
    if peak == 0:
        raise ValueError(f"the {family!r} waveform is all zero (n_times {n_times} too short?).")
    return w / peak


def pink_noise(n_times, n, rng):
    """1/f noise, shape (n_times, n), unit variance per column."""
    shape = (n_times // 2 + 1, n)
    spec = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    f = np.arange(n_times // 2 + 1, dtype=float)
    f[0] = np.inf
    x = np.fft.irfft(spec / np.sqrt(f)[:, None], n=n_times, axis=0)
    return x / x.std(axis=0, keepdims=True)
