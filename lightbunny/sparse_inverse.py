"""Sparse inverse solvers on the region leadfield: MxNE and gamma-MAP (MNE-Python's) and
Champagne (numpy, here), with the contract of :class:`lightbunny.inverse.InverseSolver`.

They are also importable from :mod:`lightbunny.inverse`, where they lived first.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ._logging import logger
from .inverse import InverseSolver, _check_eeg
from .utils import check_option

# --------------------------------------------------------------------------------------------
# Sparse solvers: MxNE and gamma-MAP (MNE-Python), Champagne (here, numpy)
# --------------------------------------------------------------------------------------------


def noise_variance_from_snr(eeg: np.ndarray, snr_db: float) -> float:
    """Per-channel sensor noise variance implied by a nominal SNR, from the data themselves.

    With the average-referenced, time-centred data :math:`y` of power
    :math:`P = \\frac{1}{\\rho T}\\sum y^2` (ρ = n_chans - 1 degrees of freedom after the
    average reference) and a power SNR :math:`r = 10^{\\mathrm{snr}/10}` (signal over noise),
    the noise variance is :math:`\\sigma^2 = P / (1 + r)`. No ground truth is used, only the
    noise level, as for the minimum-norm family's :math:`\\lambda^2 = 1/\\mathrm{SNR}^2`.

    Parameters
    ----------
    eeg : ndarray, shape (n_times, n_chans), V
    snr_db : float
        Power SNR in dB (``inf`` is capped at 40 dB).

    Returns
    -------
    sigma2 : float, V²

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal((1000, 9))
    >>> round(noise_variance_from_snr(y, 0.0), 1)  # half of the power is noise
    0.5
    """
    snr_db = min(float(snr_db), 40.0)
    y = eeg - eeg.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    power = float(np.sum(y * y)) / (max(y.shape[1] - 1, 1) * max(len(y), 1))
    return max(power / (1.0 + 10.0 ** (snr_db / 10.0)), np.finfo(float).tiny)


class Champagne(InverseSolver):
    """Champagne: sparse Bayesian learning with convex-bound updates (Wipf et al. 2010).

    Model (whitened, average-referenced data :math:`Y = W y`, shape (ρ, T); gain
    :math:`G = W G_0`): :math:`Y = G X + E`, :math:`E \\sim \\mathcal{N}(0, \\sigma^2 I)`,
    :math:`x_i \\sim \\mathcal{N}(0, \\gamma_i I)`. The hyper-parameters :math:`\\gamma`
    minimise :math:`\\log|\\Sigma_y| + \\mathrm{tr}(C_y \\Sigma_y^{-1})` with
    :math:`\\Sigma_y = \\sigma^2 I + G \\Gamma G^\\top` and :math:`C_y = Y Y^\\top / T`, by the
    convex-bound fixed point

    .. math:: \\gamma_i \\leftarrow \\gamma_i \\sqrt{\\frac{g_i^\\top \\Sigma_y^{-1} C_y
              \\Sigma_y^{-1} g_i}{g_i^\\top \\Sigma_y^{-1} g_i}}

    (which never increases the cost), from :math:`\\gamma = 1` scaled so that
    :math:`\\mathrm{tr}(G\\Gamma G^\\top) = \\mathrm{tr}(C_y)`; iteration stops when
    :math:`\\max_i |\\Delta\\gamma_i| < \\mathrm{tol} \\max_i \\gamma_i` or after ``max_iter``
    steps. The estimate is the posterior mean :math:`\\hat{X} = \\Gamma G^\\top
    \\Sigma_y^{-1} Y`; sources with :math:`\\gamma_i < 10^{-8} \\max\\gamma` are set to 0.

    Hyper-parameters: the noise variance :math:`\\sigma^2` is not learned; it comes from the
    nominal SNR of the data (:func:`noise_variance_from_snr`), the same information the
    minimum-norm family uses. No ground truth enters.

    Parameters
    ----------
    gain, ch_names
        As :class:`InverseSolver` (the noise covariance is identity times :math:`\\sigma^2`).
    snr : float
        Amplitude SNR (as the other solvers); :math:`\\mathrm{snr}_{dB} = 20\\log_{10} snr`.
    max_iter : int
    tol : float

    Attributes
    ----------
    gammas_ : ndarray, shape (n_sources,)
        Source variances of the last :meth:`apply`.
    n_iter_ : int
    """

    method = "Champagne"

    def __init__(self, gain, ch_names=None, *, snr: float = 3.0, max_iter: int = 300,
                 tol: float = 1e-6):
        super().__init__(gain, ch_names, snr=snr)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}.")
        self.gammas_ = None
        self.n_iter_ = 0

    def get_config(self) -> dict:
        return {**super().get_config(), "max_iter": self.max_iter, "tol": self.tol}

    @property
    def kernel(self):
        raise ValueError("Champagne is not linear: it has no kernel; call apply(eeg).")

    def apply(self, eeg) -> np.ndarray:
        eeg = _check_eeg(eeg, self.n_chans)
        sigma2 = noise_variance_from_snr(eeg, 20.0 * math.log10(self.snr))
        w = self.whitener  # orthonormal rows (identity noise_cov): noise variance stays sigma2
        y = w @ (eeg - eeg.mean(axis=0)).T  # (rho, T)
        g = w @ self.gain
        rho, n_t = y.shape
        if not np.any(y):
            self.gammas_, self.n_iter_ = np.zeros(self.n_sources), 0
            return np.zeros((n_t, self.n_sources))
        cy = y @ y.T / n_t
        gamma = np.ones(g.shape[1])
        gamma *= np.trace(cy) / max(float(np.sum(g * g)), np.finfo(float).tiny)
        eye = np.eye(rho)
        for k in range(self.max_iter):
            sigma_y = sigma2 * eye + (g * gamma) @ g.T
            inv = np.linalg.inv((sigma_y + sigma_y.T) / 2)
            ig = inv @ g  # (rho, n_sources)
            denom = np.sum(g * ig, axis=0)
            numer = np.sum(ig * (cy @ ig), axis=0)
            new = gamma * np.sqrt(np.maximum(numer, 0.0) / np.maximum(denom, np.finfo(float).tiny))
            change = np.max(np.abs(new - gamma))
            gamma = new
            self.n_iter_ = k + 1
            if change < self.tol * max(gamma.max(), np.finfo(float).tiny):
                break
        gamma = np.where(gamma < 1e-8 * gamma.max(), 0.0, gamma)
        sigma_y = sigma2 * eye + (g * gamma) @ g.T
        x = (gamma[:, None] * g.T) @ np.linalg.solve(sigma_y, y)
        self.gammas_ = gamma
        return x.T

    apply.__doc__ = InverseSolver.apply.__doc__


def _region_forward(gain: np.ndarray, ch_names):
    """An ``mne.Forward`` (fixed orientation) whose gain is exactly ``gain``.

    MNE's sparse solvers take a forward solution object. A discrete source space of
    ``n_sources`` points (placeholder positions inside a sphere: only the gain matters to the
    solvers) and a sphere model give the container; its gain is then replaced by the region
    gain. The EEG channels carry placeholder positions for the same reason.
    """
    import mne

    n_chans, n_sources = gain.shape
    info = mne.create_info(list(ch_names), 500.0, "eeg")
    k = np.arange(n_chans) + 0.5
    theta, phi = np.arccos(1 - k / n_chans), np.pi * (1 + 5**0.5) * k  # upper hemisphere
    ch_pos = 0.09 * np.c_[np.cos(phi) * np.sin(theta), np.sin(phi) * np.sin(theta), np.cos(theta)]
    info.set_montage(mne.channels.make_dig_montage(ch_pos=dict(zip(ch_names, ch_pos)),
                                                   coord_frame="head"), verbose=False)
    k = np.arange(n_sources) + 0.5
    theta, phi = np.arccos(1 - 2 * k / n_sources), np.pi * (1 + 5**0.5) * k
    nn = np.c_[np.cos(phi) * np.sin(theta), np.sin(phi) * np.sin(theta), np.cos(theta)]
    src = mne.setup_volume_source_space(pos={"rr": 0.05 * nn, "nn": nn}, sphere_units="m",
                                        verbose=False)
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.0), head_radius=0.09, verbose=False)
    fwd = mne.make_forward_solution(info, mne.transforms.Transform("head", "mri"), src, sphere,
                                    meg=False, eeg=True, mindist=0.0, n_jobs=1, verbose=False)
    fwd = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True, verbose=False)
    if fwd["nsource"] != n_sources:
        raise RuntimeError(f"MNE kept {fwd['nsource']} of {n_sources} placeholder sources")
    fwd["sol"]["data"] = np.array(gain, dtype=np.float64)
    fwd["_orig_sol"] = np.array(gain, dtype=np.float64)
    return fwd, info


class _MNESparse(InverseSolver):
    """Base of the wrappers of MNE-Python's sparse solvers (see :class:`MixedNorm`)."""

    def __init__(self, gain, ch_names=None, *, snr: float = 3.0, depth=0.8):
        super().__init__(gain, ch_names, snr=snr)
        self.depth = depth
        self._fwd, self._info = _region_forward(self.gain, self.ch_names)

    def get_config(self) -> dict:
        return {**super().get_config(), "depth": self.depth}

    @property
    def kernel(self):
        raise ValueError(f"{self.method} is not linear: it has no kernel; call apply(eeg).")

    def _inputs(self, eeg):
        import mne

        eeg = _check_eeg(eeg, self.n_chans)
        sigma2 = noise_variance_from_snr(eeg, 20.0 * math.log10(self.snr))
        evoked = mne.EvokedArray((eeg - eeg.mean(axis=0)).T, self._info, tmin=0.0, verbose=False)
        evoked.set_eeg_reference("average", projection=True, verbose=False)
        cov = mne.Covariance(sigma2 * np.eye(self.n_chans), list(self.ch_names), [], [],
                             10_000, verbose=False)
        return eeg, evoked, cov

    def _dense(self, stc, n_times) -> np.ndarray:
        out = np.zeros((n_times, self.n_sources))
        vertno = self._fwd["src"][0]["vertno"]
        if stc is not None and len(stc.vertices[0]):
            idx = np.searchsorted(vertno, stc.vertices[0])
            out[:, idx] = stc.data.T
        return out


class MixedNorm(_MNESparse):
    """Mixed-norm estimate (MxNE, Gramfort et al. 2012) by ``mne.inverse_sparse.mixed_norm``.

    :math:`\\min_X \\frac12\\lVert Y - GX \\rVert_F^2 + \\alpha \\sum_i \\lVert X_{i,:}
    \\rVert_2` on whitened data (MNE's implementation: block coordinate descent, fixed
    orientation ``loose=0``, depth weighting ``depth``, debiasing, temporal PCA).

    Parameters
    ----------
    gain, ch_names, snr
        As :class:`InverseSolver`; the noise covariance is :math:`\\sigma^2 I` with
        :math:`\\sigma^2` from the nominal SNR (:func:`noise_variance_from_snr`).
    alpha : float
        Regularisation in percent of :math:`\\alpha_{max}` (the smallest value giving an
        all-zero solution), MNE's convention, in [0, 100). Choose it without the test truth,
        e.g. on a validation set (:func:`lightbunny.benchmark.run_benchmark` does).
    depth : float | None
        MNE's depth-weighting exponent (default 0.8, MNE's).
    """

    method = "MxNE"

    def __init__(self, gain, ch_names=None, *, snr: float = 3.0, alpha: float = 30.0,
                 depth=0.8, max_iter: int = 3000, tol: float = 1e-4):
        super().__init__(gain, ch_names, snr=snr, depth=depth)
        self.alpha = float(alpha)
        if not 0 <= self.alpha < 100:
            raise ValueError(f"alpha is a percentage of alpha_max in [0, 100), got {alpha}.")
        self.max_iter, self.tol = int(max_iter), float(tol)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "max_iter": self.max_iter,
                "tol": self.tol}

    def apply(self, eeg) -> np.ndarray:
        from mne.inverse_sparse import mixed_norm

        eeg, evoked, cov = self._inputs(eeg)
        stc = mixed_norm(evoked, self._fwd, cov, alpha=self.alpha, loose=0.0, depth=self.depth,
                         maxit=self.max_iter, tol=self.tol, verbose=False)
        return self._dense(stc, len(eeg))

    apply.__doc__ = InverseSolver.apply.__doc__


class GammaMAP(_MNESparse):
    """Hierarchical Bayes gamma-MAP (Wipf & Nagarajan 2009) by ``mne.inverse_sparse.gamma_map``.

    Parameters
    ----------
    gain, ch_names, snr
        As :class:`MixedNorm`.
    alpha : float
        MNE's regularisation: the noise variance in whitened units. The data are whitened with
        the noise covariance implied by the nominal SNR, so the principled value is 1 (the
        default); no ground truth is used.
    depth : float | None
    update_mode : {1, 2}
        MNE's MacKay (1) or convex-bounding (2) updates.
    max_iter, tol : int, float
        Iteration limit and tolerance (looser than MNE's 10000 and 1e-6, 3x faster; on a
        tvb76 test case the estimate correlates at 0.999997 with the tighter setting).
    """

    method = "gamma-MAP"

    def __init__(self, gain, ch_names=None, *, snr: float = 3.0, alpha: float = 1.0,
                 depth=0.8, update_mode: int = 1, max_iter: int = 300, tol: float = 1e-5):
        super().__init__(gain, ch_names, snr=snr, depth=depth)
        self.alpha = float(alpha)
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}.")
        check_option("update_mode", update_mode, (1, 2))
        self.update_mode, self.max_iter, self.tol = int(update_mode), int(max_iter), float(tol)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "update_mode": self.update_mode,
                "max_iter": self.max_iter, "tol": self.tol}

    def apply(self, eeg) -> np.ndarray:
        from mne.inverse_sparse import gamma_map

        eeg, evoked, cov = self._inputs(eeg)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stc = gamma_map(evoked, self._fwd, cov, alpha=self.alpha, loose=0.0,
                            depth=self.depth, maxit=self.max_iter, tol=self.tol,
                            update_mode=self.update_mode, verbose=False)
        self.converged_ = not any("Convergence NOT reached" in str(w.message) for w in caught)
        if not self.converged_:
            logger.debug("gamma-MAP: no convergence in %d iterations", self.max_iter)
        return self._dense(stc, len(eeg))

    apply.__doc__ = InverseSolver.apply.__doc__


#: Sparse (non-linear) inverse methods by name; :func:`make_sparse_inverse` builds them.
SPARSE_METHODS = {"MxNE": MixedNorm, "gamma-MAP": GammaMAP, "Champagne": Champagne}


def make_sparse_inverse(method: str, gain, ch_names=None, *, snr: float = 3.0,
                        **params) -> InverseSolver:
    """Build a sparse inverse solver (:data:`SPARSE_METHODS`, case-insensitive).

    Parameters
    ----------
    method : {'MxNE', 'gamma-MAP', 'Champagne'}
    gain : ndarray, shape (n_chans, n_sources) | Leadfield
    ch_names : sequence of str, optional
    snr : float
        Amplitude SNR; sets the assumed noise variance.
    **params
        The solver's own options (see each class).

    Returns
    -------
    solver : InverseSolver
        ``solver.apply(eeg)`` maps (n_times, n_chans) to (n_times, n_sources).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> gain = rng.standard_normal((12, 6))
    >>> make_sparse_inverse("champagne", gain).apply(rng.standard_normal((5, 12))).shape
    (5, 6)
    """
    canonical = {name.lower(): name for name in SPARSE_METHODS}
    name = canonical.get(str(method).lower(), method)
    check_option("method", name, SPARSE_METHODS)
    return SPARSE_METHODS[name](gain, ch_names, snr=snr, **params)


__all__ = ["SPARSE_METHODS", "Champagne", "GammaMAP", "MixedNorm", "make_sparse_inverse",
           "noise_variance_from_snr"]
