"""Classical inverse solutions on the region leadfield: MNE, dSPM, sLORETA, eLORETA, LCMV,
and the sparse MxNE, gamma-MAP (both MNE-Python's) and Champagne (numpy, here; in
:mod:`lightbunny.sparse_inverse`, importable from here too).

Every method follows the one contract of the package (learned models follow it too): it is
built from a leadfield, a gain matrix of shape ``(n_chans, n_sources)`` with one fixed-
orientation "source" per region, and :meth:`InverseSolver.apply` maps EEG of shape
``(n_times, n_chans)`` to source activity of shape ``(n_times, n_sources)``::

    solver = make_inverse("sLORETA", leadfield.gain, leadfield.ch_names, snr=3.0)
    sources = solver.apply(eeg)

The formulas are those of MNE-Python (Hämäläinen & Ilmoniemi 1994; Dale et al. 2000;
Pascual-Marqui 2002, 2007; Van Veen et al. 1997), written here in numpy so that applying a
method is a single matrix product; ``tests/test_inverse.py`` checks each against MNE's
``apply_inverse`` and ``make_lcmv`` / ``apply_lcmv`` on the same forward model.

Common steps (all methods):

1. **Average reference.** With :math:`H = I - \\frac{1}{n}\\mathbf{1}\\mathbf{1}^\\top` (MNE's
   average-reference projector), the noise covariance :math:`C` (identity by default) is
   projected, :math:`HCH = U \\Lambda U^\\top`, and the whitener keeps its
   :math:`\\rho = n_{chans} - 1` non-zero components: :math:`W = \\Lambda_\\rho^{-1/2}
   U_\\rho^\\top`, shape (ρ, n_chans). Because :math:`W H = W`, whitening the EEG also
   re-references it to the average, whatever its original reference.
2. **Whitened gain** :math:`\\tilde{G} = W G`.
3. **Regularisation** from the SNR as in MNE: :math:`\\lambda^2 = 1 / \\mathrm{SNR}^2`
   (amplitude SNR; MNE's default 3 gives :math:`\\lambda^2 = 1/9`).

Minimum-norm family (fixed orientation, no depth weighting, which MNE does not allow on a
fixed-orientation forward): the source covariance is :math:`R = s^2 I` with :math:`s^2 =
\\rho / \\lVert \\tilde{G} \\rVert_F^2` (so that :math:`\\mathrm{tr}(\\tilde{G} R
\\tilde{G}^\\top) = \\rho`); with the SVD :math:`s\\tilde{G} = U_g \\Sigma V^\\top` and
:math:`\\gamma_k = \\sigma_k / (\\sigma_k^2 + \\lambda^2)`, the kernel is

.. math:: K_{MNE} = s\\, V \\operatorname{diag}(\\gamma) U_g^\\top W
          = R \\tilde{G}^\\top (\\tilde{G} R \\tilde{G}^\\top + \\lambda^2 I)^{-1} W

dSPM divides row :math:`i` by :math:`s \\lVert V_{i,:} \\operatorname{diag}(\\gamma)
\\rVert` (the estimate's noise standard deviation), sLORETA by :math:`s \\lVert V_{i,:}
\\operatorname{diag}(\\gamma \\sqrt{1 + \\sigma^2/\\lambda^2}) \\rVert`, which is
:math:`\\lambda^{-1}` times the square root of the diagonal of the resolution matrix
:math:`K_{MNE} G`.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np

from ._logging import logger
from .utils import check_option, read_only

# The sparse solvers (Champagne, GammaMAP, MixedNorm, SPARSE_METHODS, make_sparse_inverse,
# noise_variance_from_snr) are importable from here too: see __getattr__ at the end.
__all__ = [
    "ELORETA",
    "INVERSE_METHODS",
    "DSPM",
    "InverseMethod",
    "InverseSolver",
    "LCMV",
    "MinimumNorm",
    "SLORETA",
    "average_reference_whitener",
    "make_inverse",
]


@runtime_checkable
class InverseMethod(Protocol):
    """What evaluation needs from any inverse method, learned or classical."""

    ch_names: tuple
    n_sources: int

    def apply(self, eeg: np.ndarray) -> np.ndarray:
        """Map EEG, shape (n_times, n_chans), to sources, shape (n_times, n_sources)."""


# --------------------------------------------------------------------------------------------
# Input checks and shared linear algebra
# --------------------------------------------------------------------------------------------


def _unpack_leadfield(gain, ch_names):
    """Accept a gain ndarray or an object with ``gain`` and ``ch_names`` (a Leadfield)."""
    if hasattr(gain, "gain") and not isinstance(gain, np.ndarray):
        if ch_names is None:
            ch_names = getattr(gain, "ch_names", None)
        gain = gain.gain
    gain = np.asarray(gain, dtype=np.float64)
    if gain.ndim != 2:
        raise ValueError(f"gain must have shape (n_chans, n_sources), got shape {gain.shape}.")
    n_chans, n_sources = gain.shape
    if n_chans < 3:
        raise ValueError(f"gain has {n_chans} channels; an average-referenced inverse needs at "
                         "least 3.")
    if not np.isfinite(gain).all():
        raise ValueError("gain contains NaN or infinite values.")
    if not np.abs(gain).sum(axis=0).all():
        bad = np.flatnonzero(np.abs(gain).sum(axis=0) == 0)
        raise ValueError(f"gain has all-zero columns (sources {bad[:10].tolist()}); every "
                         "source must reach the sensors.")
    if ch_names is None:
        ch_names = tuple(f"EEG{k + 1:03d}" for k in range(n_chans))
    ch_names = tuple(str(c) for c in ch_names)
    if len(ch_names) != n_chans:
        raise ValueError(f"ch_names has {len(ch_names)} names but gain has {n_chans} channels "
                         "(rows); gain must be (n_chans, n_sources).")
    if len(set(ch_names)) != n_chans:
        raise ValueError("ch_names must be unique.")
    return gain, ch_names


def _check_cov(name: str, cov, n_chans: int) -> np.ndarray:
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (n_chans, n_chans):
        raise ValueError(f"{name} must have shape (n_chans, n_chans) = ({n_chans}, {n_chans}), "
                         f"got {cov.shape}.")
    if not np.isfinite(cov).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12 * np.abs(cov).max()):
        raise ValueError(f"{name} must be symmetric.")
    return (cov + cov.T) / 2


def average_reference_whitener(noise_cov: np.ndarray) -> np.ndarray:
    """Whitener of an average-referenced noise covariance.

    Parameters
    ----------
    noise_cov : ndarray, shape (n_chans, n_chans), V²
        Sensor noise covariance (before re-referencing).

    Returns
    -------
    whitener : ndarray, shape (n_chans - 1, n_chans), 1/V
        :math:`W = \\Lambda_\\rho^{-1/2} U_\\rho^\\top` from the eigendecomposition of
        :math:`HCH` (its ρ = n_chans - 1 largest eigenvalues); ``whitener @ x`` references
        ``x`` to the average and whitens it.

    Examples
    --------
    >>> w = average_reference_whitener(np.eye(4))
    >>> w.shape, np.allclose(w @ np.ones(4), 0)
    ((3, 4), True)
    """
    n = noise_cov.shape[0]
    h = np.eye(n) - 1.0 / n
    eig, vec = np.linalg.eigh(h @ noise_cov @ h)
    order = np.argsort(eig)[::-1][: n - 1]
    eig, vec = eig[order], vec[:, order]
    if eig[-1] <= eig[0] * 1e-12:
        raise ValueError("the average-referenced noise covariance has rank below n_chans - 1; "
                         "give a full-rank noise_cov (e.g. add a small diagonal).")
    return vec.T / np.sqrt(eig)[:, None]


def _check_eeg(eeg, n_chans: int) -> np.ndarray:
    eeg = np.asarray(eeg, dtype=np.float64)
    if eeg.ndim != 2:
        raise ValueError(f"eeg must have shape (n_times, n_chans), got shape {eeg.shape}.")
    if eeg.shape[1] != n_chans:
        hint = " (it looks transposed: pass eeg.T)" if eeg.shape[0] == n_chans else ""
        raise ValueError(f"eeg has {eeg.shape[1]} channels (columns) but the leadfield has "
                         f"{n_chans}{hint}; eeg must be (n_times, n_chans).")
    if not np.isfinite(eeg).all():
        raise ValueError("eeg contains NaN or infinite values.")
    return eeg


# --------------------------------------------------------------------------------------------
# Solvers
# --------------------------------------------------------------------------------------------


class InverseSolver:
    """Base of the classical solvers: a linear kernel applied to EEG.

    Parameters
    ----------
    gain : ndarray, shape (n_chans, n_sources), V/(A·m) | Leadfield
        Fixed-orientation gain of each region (any reference: it is average-referenced
        here), or an object with ``gain`` and ``ch_names`` attributes.
    ch_names : sequence of str, length n_chans, optional
        Channel names (default ``EEG001 ...``), kept so callers can match EEG channels.
    snr : float
        Amplitude signal-to-noise ratio; the regularisation is
        :math:`\\lambda^2 = 1/\\mathrm{snr}^2` (MNE's convention).
    noise_cov : ndarray, shape (n_chans, n_chans), V², optional
        Sensor noise covariance; identity when omitted.

    Attributes
    ----------
    kernel : ndarray, shape (n_sources, n_chans)
        Read-only; ``apply(eeg) == eeg @ kernel.T``.
    whitener : ndarray, shape (n_chans - 1, n_chans)
    lambda2 : float
    """

    method: str = ""

    def __init__(self, gain, ch_names=None, *, snr: float = 3.0, noise_cov=None):
        gain, ch_names = _unpack_leadfield(gain, ch_names)
        snr = float(snr)
        if not snr > 0 or not math.isfinite(snr):
            raise ValueError(f"snr must be a positive finite number, got {snr}.")
        n_chans = gain.shape[0]
        if noise_cov is None:
            noise_cov = np.eye(n_chans)
        noise_cov = _check_cov("noise_cov", noise_cov, n_chans)
        self.gain = read_only(gain)
        self.ch_names = ch_names
        self.snr = snr
        self.lambda2 = 1.0 / snr**2
        self.noise_cov = read_only(noise_cov)
        self.whitener = read_only(average_reference_whitener(noise_cov))
        self._kernel = None

    @property
    def n_chans(self) -> int:
        return self.gain.shape[0]

    @property
    def n_sources(self) -> int:
        return self.gain.shape[1]

    @property
    def kernel(self) -> np.ndarray:
        if self._kernel is None:
            self._kernel = read_only(self._make_kernel())
        return self._kernel

    def _make_kernel(self) -> np.ndarray:
        raise NotImplementedError

    def apply(self, eeg) -> np.ndarray:
        """Estimate source activity.

        Parameters
        ----------
        eeg : ndarray, shape (n_times, n_chans), V
            Channels in the order of ``ch_names``.

        Returns
        -------
        sources : ndarray, shape (n_times, n_sources)
            Signed activity: a current (A·m when the gain is in V/(A·m)) for MNE and
            eLORETA; noise-normalised, unitless values for dSPM, sLORETA and LCMV
            (unit-noise-gain).
        """
        eeg = _check_eeg(eeg, self.n_chans)
        return eeg @ self.kernel.T

    def get_config(self) -> dict:
        """The options that rebuild this solver (besides the leadfield)."""
        return {"method": self.method, "snr": self.snr}

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} method={self.method!r} n_chans={self.n_chans} "
                f"n_sources={self.n_sources} snr={self.snr:g}>")


class MinimumNorm(InverseSolver):
    """Minimum-norm estimate (MNE): :math:`K = R\\tilde{G}^\\top(\\tilde{G}R\\tilde{G}^\\top +
    \\lambda^2 I)^{-1}W`, see the module docstring.

    Examples
    --------
    >>> gain = np.random.default_rng(0).standard_normal((8, 5))
    >>> MinimumNorm(gain).apply(np.zeros((3, 8))).shape
    (3, 5)
    """

    method = "MNE"
    #: noise-normalisation of each row: None (MNE), "dSPM" or "sLORETA"
    _normalise: str | None = None

    def _svd(self):
        g_w = self.whitener @ self.gain
        scale = math.sqrt(g_w.shape[0] / float(np.sum(g_w * g_w)))
        u, sing, vt = np.linalg.svd(scale * g_w, full_matrices=False)
        keep = sing > sing[0] * 1e-12
        reginv = np.where(keep, sing / (sing**2 + self.lambda2), 0.0)
        return scale, u, sing, vt, reginv

    def _make_kernel(self) -> np.ndarray:
        scale, u, sing, vt, reginv = self._svd()
        leads = vt.T  # (n_sources, rank)
        kernel = scale * (leads * reginv) @ (u.T @ self.whitener)
        if self._normalise == "dSPM":
            weight = reginv
        elif self._normalise == "sLORETA":
            weight = reginv * np.sqrt(1.0 + sing**2 / self.lambda2)
        else:
            return kernel
        noise_std = scale * np.linalg.norm(leads * weight, axis=1)
        return kernel / noise_std[:, None]


class DSPM(MinimumNorm):
    """Dynamic statistical parametric map (Dale et al. 2000): the MNE estimate divided by its
    noise standard deviation, :math:`s\\lVert V_{i,:}\\operatorname{diag}(\\gamma)\\rVert`."""

    method = "dSPM"
    _normalise = "dSPM"


class SLORETA(MinimumNorm):
    """Standardised LORETA (Pascual-Marqui 2002): the MNE estimate divided by the square root
    of the diagonal of its resolution matrix (MNE-Python's scaling, which is
    :math:`1/\\lambda` times Pascual-Marqui's). Zero localisation error for a single source
    without noise."""

    method = "sLORETA"
    _normalise = "sLORETA"


class ELORETA(InverseSolver):
    """Exact LORETA (Pascual-Marqui 2007), fixed orientation.

    The source weights :math:`r_i` solve the fixed point
    :math:`r_i = (\\tilde{g}_i^\\top N \\tilde{g}_i)^{-1/2}` with
    :math:`N = (\\tilde{G} R \\tilde{G}^\\top + \\lambda^2 I)^{-1}`, :math:`R =
    \\operatorname{diag}(r)`, renormalised after each step so that
    :math:`\\mathrm{tr}(\\tilde{G} R \\tilde{G}^\\top) = \\rho`; iteration stops when the
    relative change of :math:`r` is below ``eps`` (at most ``max_iter`` steps; MNE's defaults
    1e-6 and 20). The kernel is :math:`K = R\\tilde{G}^\\top(\\tilde{G}R\\tilde{G}^\\top +
    \\lambda^2 I)^{-1} W`.

    Parameters
    ----------
    gain, ch_names, snr, noise_cov
        As :class:`InverseSolver`.
    eps : float
    max_iter : int
    """

    method = "eLORETA"

    def __init__(self, gain, ch_names=None, *, snr: float = 3.0, noise_cov=None,
                 eps: float = 1e-6, max_iter: int = 20):
        super().__init__(gain, ch_names, snr=snr, noise_cov=noise_cov)
        self.eps = float(eps)
        self.max_iter = int(max_iter)
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}.")
        self.n_iter = 0
        self.converged = False

    def get_config(self) -> dict:
        return {**super().get_config(), "eps": self.eps, "max_iter": self.max_iter}

    def _make_kernel(self) -> np.ndarray:
        g = self.whitener @ self.gain  # (rho, n_sources)
        rho = g.shape[0]

        def normalised(weights):
            grg = (g * weights) @ g.T
            norm = np.trace(grg) / rho
            return weights / norm, grg / norm

        weights, grg = normalised(np.ones(g.shape[1]))
        for k in range(self.max_iter):
            eig, vec = np.linalg.eigh(grg)
            eig = np.abs(eig)
            inv_eig = np.where(eig > 0, 1.0 / (eig + self.lambda2), 0.0)
            n_mat = (vec * inv_eig) @ vec.T
            last = weights
            weights, grg = normalised(1.0 / np.sqrt(np.sum((n_mat @ g) * g, axis=0)))
            delta = np.linalg.norm(weights - last) / np.linalg.norm(last)
            self.n_iter = k + 1
            if delta < self.eps:
                self.converged = True
                break
        if not self.converged:
            logger.warning("eLORETA weights did not converge in %d iterations (change %.2g >= "
                           "eps %.2g)", self.max_iter, delta, self.eps)
        r_sqrt = np.sqrt(weights)
        u, sing, vt = np.linalg.svd(g * r_sqrt, full_matrices=False)
        keep = sing > sing[0] * 1e-12
        reginv = np.where(keep, sing / (sing**2 + self.lambda2), 0.0)
        return (r_sqrt[:, None] * vt.T * reginv) @ (u.T @ self.whitener)


class LCMV(InverseSolver):
    """Linearly constrained minimum-variance beamformer (Van Veen et al. 1997).

    In the whitened, average-referenced space, with data covariance
    :math:`\\tilde{C} = W C_{data} W^\\top` loaded by :math:`\\epsilon = \\mathrm{reg}\\,
    \\mathrm{tr}(\\tilde{C}) / n_{chans}` (MNE's diagonal loading), the filter of source
    :math:`i` is

    .. math:: w_i = \\frac{(\\tilde{C} + \\epsilon I)^{-1} \\tilde{g}_i}
              {\\lVert (\\tilde{C} + \\epsilon I)^{-1} \\tilde{g}_i \\rVert}

    (MNE's unit-noise-gain(-invariant) normalisation, identical for fixed orientations), and
    :math:`\\hat{x}_i(t) = w_i^\\top W y(t)`.

    Parameters
    ----------
    gain, ch_names, noise_cov
        As :class:`InverseSolver`.
    snr : float
        Accepted for the common signature; the beamformer's regularisation is ``reg``.
    data_cov : ndarray, shape (n_chans, n_chans), V², optional
        Data covariance. When omitted, each call of :meth:`apply` estimates it from the EEG it
        is given (so the filter adapts to that recording).
    reg : float
        Diagonal loading relative to the mean eigenvalue (MNE's default 0.05).
    """

    method = "LCMV"

    def __init__(self, gain, ch_names=None, *, snr: float = 3.0, noise_cov=None,
                 data_cov=None, reg: float = 0.05):
        super().__init__(gain, ch_names, snr=snr, noise_cov=noise_cov)
        self.reg = float(reg)
        if self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {reg}.")
        self.data_cov = None
        if data_cov is not None:
            self.data_cov = read_only(_check_cov("data_cov", data_cov, self.n_chans))

    def get_config(self) -> dict:
        return {**super().get_config(), "reg": self.reg}

    @staticmethod
    def estimate_cov(eeg: np.ndarray) -> np.ndarray:
        """Sample covariance of EEG, shape (n_chans, n_chans), channel means removed."""
        centred = eeg - eeg.mean(axis=0)
        return centred.T @ centred / max(len(eeg) - 1, 1)

    def _kernel_for(self, data_cov: np.ndarray) -> np.ndarray:
        g = self.whitener @ self.gain
        c = self.whitener @ data_cov @ self.whitener.T
        c = (c + c.T) / 2
        loading = self.reg * np.trace(c) / self.n_chans
        eig, vec = np.linalg.eigh(c + loading * np.eye(len(c)))
        if eig.min() <= eig.max() * 1e-14:
            raise ValueError("the whitened data covariance is singular; use reg > 0 or more "
                             "time samples than channels.")
        numer = (vec / eig) @ (vec.T @ g)  # C^-1 g, (rho, n_sources)
        numer /= np.linalg.norm(numer, axis=0)
        return numer.T @ self.whitener

    def _make_kernel(self) -> np.ndarray:
        if self.data_cov is None:
            raise ValueError("LCMV without data_cov has no fixed kernel: call apply(eeg), which "
                             "estimates the data covariance from eeg, or give data_cov.")
        return self._kernel_for(self.data_cov)

    def apply(self, eeg) -> np.ndarray:
        eeg = _check_eeg(eeg, self.n_chans)
        if self.data_cov is not None:
            return eeg @ self.kernel.T
        if len(eeg) < 2:
            raise ValueError("LCMV needs at least 2 time samples to estimate the data "
                             "covariance; give data_cov.")
        return eeg @ self._kernel_for(self.estimate_cov(eeg)).T

    apply.__doc__ = InverseSolver.apply.__doc__


#: Classical inverse methods by name (MNE-Python's spelling).
INVERSE_METHODS = {
    "MNE": MinimumNorm,
    "dSPM": DSPM,
    "sLORETA": SLORETA,
    "eLORETA": ELORETA,
    "LCMV": LCMV,
}


def make_inverse(method: str, gain, ch_names=None, *, snr: float = 3.0, noise_cov=None,
                 data_cov=None, **method_params) -> InverseSolver:
    """Build a classical inverse solver on a region leadfield.

    Parameters
    ----------
    method : str
        One of :data:`INVERSE_METHODS` (``"MNE"``, ``"dSPM"``, ``"sLORETA"``, ``"eLORETA"``,
        ``"LCMV"``; case-insensitive).
    gain : ndarray, shape (n_chans, n_sources) | Leadfield
        Fixed-orientation region gain, or an object with ``gain`` and ``ch_names``.
    ch_names : sequence of str, optional
    snr : float
        Amplitude SNR; :math:`\\lambda^2 = 1/\\mathrm{snr}^2` (minimum-norm family).
    noise_cov : ndarray, shape (n_chans, n_chans), optional
        Identity when omitted.
    data_cov : ndarray, shape (n_chans, n_chans), optional
        LCMV only (estimated from the EEG at :meth:`~LCMV.apply` when omitted).
    **method_params
        Method-specific options: ``eps``, ``max_iter`` (eLORETA); ``reg`` (LCMV).

    Returns
    -------
    solver : InverseSolver
        ``solver.apply(eeg)`` maps (n_times, n_chans) to (n_times, n_sources).

    Examples
    --------
    >>> gain = np.random.default_rng(0).standard_normal((16, 10))
    >>> make_inverse("sloreta", gain).apply(np.zeros((4, 16))).shape
    (4, 10)
    >>> make_inverse("LORETA", gain)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Invalid method 'LORETA'. Allowed: 'MNE', 'dSPM', 'sLORETA', 'eLORETA', 'LCMV'...
    """
    canonical = {name.lower(): name for name in INVERSE_METHODS}
    name = canonical.get(str(method).lower(), method)
    check_option("method", name, INVERSE_METHODS)
    cls = INVERSE_METHODS[name]
    if not (isinstance(snr, (int, float, np.floating, np.integer)) and np.isfinite(snr)
            and snr > 0):
        raise ValueError(f"snr must be a positive, finite amplitude ratio (lambda2 = 1/snr**2), "
                         f"got {snr!r}; for nearly noiseless data use a large value such as 100.")
    allowed = {"eLORETA": ("eps", "max_iter"), "LCMV": ("reg",)}.get(name, ())
    unknown = sorted(set(method_params) - set(allowed))
    if unknown:
        raise TypeError(f"{name} does not take {', '.join(unknown)}; its options are "
                        f"{', '.join(allowed) if allowed else 'none besides snr and noise_cov'}.")
    if name == "LCMV":
        return cls(gain, ch_names, snr=snr, noise_cov=noise_cov, data_cov=data_cov,
                   **method_params)
    if data_cov is not None:
        raise ValueError(f"data_cov is used by LCMV only, not by {name}.")
    return cls(gain, ch_names, snr=snr, noise_cov=noise_cov, **method_params)


_SPARSE_NAMES = ("SPARSE_METHODS", "Champagne", "GammaMAP", "MixedNorm", "make_sparse_inverse",
                 "noise_variance_from_snr")


def __getattr__(name: str):
    """The sparse solvers, which live in :mod:`lightbunny.sparse_inverse` (it imports this
    module's classes), stay importable from here."""
    if name in _SPARSE_NAMES:
        from . import sparse_inverse

        return getattr(sparse_inverse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
