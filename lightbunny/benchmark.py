"""The generalisation benchmark: do the methods still work where the test differs from training?

:func:`run_benchmark` scores learned checkpoints and classical inverse methods on a versioned suite
of named, seeded test conditions (:data:`CONDITIONS`), every method on identical samples, and
writes one report (``report.html``, an ``mne.Report``) with CSV and markdown tables.

Conditions
----------
Each condition changes one factor of a *base* condition (2 sources, medium patches, neural-mass
spikes from the bank, white sensor noise at 10 dB, the nominal leadfield); ``combined`` draws
every factor at random per sample, with another head model, jittered electrodes and real
resting-EEG noise;
``in_prior`` is the training recipe itself (:class:`lightbunny.dataset.SyntheticEEGDataset` on a
``make_sources`` test split, training patches allowed), the setting of the quickstart's table.

extent
    ``single`` (one region), ``small`` (the centre and all its first-layer neighbours),
    ``medium`` and ``large`` (grown over the region graph as in training,
    :func:`lightbunny.sources.grow_patches`, 2 and 3 layers, with the benchmark's own seed);
    magnitude decays with distance from the centre (half-magnitude distance 40-60 mm, as in
    training); a single region has weight 1.
number of sources
    1, 2 or 3 patches with distinct centres; a centre lies in no other source's patch when
    that is possible within ``max_tries`` draws (not always in a small centre-disjoint fold);
    patches may overlap at their edges, as in training.
waveform
    ``spike``: the centre region's neural-mass spike from the bank, drawn from the *test* clip
    set (:func:`lightbunny.dataset.split_clips`), as in training but without the background of
    the other regions; ``burst``: an alpha (8-12 Hz) or beta (15-30 Hz) oscillation under a
    Gaussian envelope (sd 50-150 ms); ``smooth``: random Fourier coefficients below 8 Hz
    (a smooth random walk-like signal); ``erp``: P1, N1 and P3-like Gaussian deflections
    (latencies about 100, 170, 350 ms after an onset at 100-400 ms). Each source has a random
    amplitude in [0.5, 1] of its peak.
noise
    ``white`` Gaussian; ``coloured``: 1/f (pink) activity of every region projected through the
    simulation leadfield (spatially correlated like background brain activity); ``real``:
    resting EEG from DeepSIF's ``realistic_noise.mat`` (4 segments x 1 s, 75 channels matched by
    name; a random segment, sign and time direction per sample), skipped with a stated reason
    when the file or a channel is absent. The noise is scaled so that the realised SNR
    ``10 log10(||X||² / ||N||²)`` of the average-referenced, time-centred signal ``X`` and noise
    ``N`` equals the requested one exactly.
SNR
    0, 5, 10 (base), 20 dB.
head-model mismatch
    the EEG is simulated with another leadfield than the one every method inverts (the
    network's training leadfield), see :func:`mismatch_leadfields`: ``mismatch_head`` (the
    fsaverage BEM vs the sphere where the atlas has a BEM; on tvb76, which has none, the
    sphere with another skull conductivity), ``mismatch_orientation`` (the seed's ``free_sum``
    dipole orientation vs the cortical normal) and ``mismatch_jitter`` (electrodes moved on
    the scalp by 5 mm RMS). Any leadfields can be given instead (``mismatch=``).

Splits that prevent memorisation
--------------------------------
``split="novel"`` (default): no test patch equals (as a set of regions) a training patch
(``train_sources``; by default the candidates the training split is drawn from). With
``split="centre-disjoint"`` the test centres also come from one of ``n_folds`` spatially
contiguous folds of regions (:func:`centre_folds`, k-means on the region centres); train a model
without that fold's centres (:func:`exclude_centres`) for a fully out-of-prior test. The report
states the fraction of test centres that were training centres.

Methods, floors and ceilings
----------------------------
Learned checkpoints; MNE, dSPM, sLORETA, eLORETA, LCMV (:mod:`lightbunny.inverse`, λ² = 1/SNR²
with the condition's nominal SNR); MxNE and gamma-MAP (MNE-Python) and Champagne (numpy), see
:data:`lightbunny.inverse.SPARSE_METHODS`. Hyper-parameters are chosen without the test truth:
the noise level comes from the nominal SNR for every solver; MxNE's ``alpha`` (percent of
alpha_max) is picked from a grid on a *validation* set of the base condition drawn with another
seed (lowest median EMD); gamma-MAP uses ``alpha = 1`` (the whitened noise variance); Champagne
has no free parameter. The floor ``random`` is a random power map (each region a random
amplitude times white noise); the ceilings are ``truth`` (the simulated activity itself: the best
value of each metric) and ``oracle_patches`` (least squares of one time course per source on
its true spatial map: what a method that knew where the sources are and their shape would
reach under this noise and head model).

Metrics
-------
:func:`lightbunny.metrics.sample_metrics` plus the earth mover's distance (:func:`emd`) between
the normalised time-averaged power maps, with the Euclidean distance between region centres (mm)
as ground cost. Per condition: medians with percentile-bootstrap 95 % CIs (1000 resamples), the
fraction of samples where each method is best (ties count for each tied method; floors and
ceilings excluded), a win table method x condition (on how many of the key metrics the
method has the best median) and, for each learned model, a per-sample win/loss table of every
other method against it on the EMD.
"""

from __future__ import annotations

import html
import inspect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._logging import logger
from .utils import atomic_path, check_option, versions, write_csv, write_json
from .waveforms import WAVEFORMS, make_waveform
from .waveforms import pink_noise as _pink

__all__ = [
    "BENCHMARK_VERSION",
    "BUDGETS",
    "CONDITIONS",
    "ConditionSamples",
    "bootstrap_median_ci",
    "centre_folds",
    "emd",
    "exclude_centres",
    "make_condition",
    "make_waveform",
    "random_floor",
    "run_benchmark",
]

#: Version of the suite (conditions, generators, metrics); bump when any of them changes.
BENCHMARK_VERSION = "1.1.0"

EXTENTS = ("single", "small", "medium", "large")
NOISES = ("white", "coloured", "real")
SNRS_DB = (0.0, 5.0, 10.0, 20.0)
LEADFIELDS = ("nominal", "mismatch_head", "mismatch_orientation", "mismatch_jitter",
              "mismatch_all")
SPLITS = ("novel", "centre-disjoint")

_BASE = {"n_sources": 2, "extent": "medium", "waveform": "spike", "noise": "white",
         "snr_db": 10.0, "leadfield": "nominal"}


def _cond(factor, level, **changes):
    return {"factor": factor, "level": level, **_BASE, **changes}


#: The named conditions: each changes factors of the base condition (values may be tuples,
#: meaning "drawn per sample").
CONDITIONS = {
    "in_prior": {"factor": "training prior", "level": "as trained (patches may repeat)",
                 **_BASE, "extent": "training", "recipe": "dataset"},
    "base": _cond("base", "2 medium spikes, white 10 dB"),
    "extent_single": _cond("extent", "single region", extent="single"),
    "extent_small": _cond("extent", "small", extent="small"),
    "extent_large": _cond("extent", "large", extent="large"),
    "point_source": _cond("extent", "one point source", extent="single", n_sources=1),
    "sources_1": _cond("n_sources", "1", n_sources=1),
    "sources_3": _cond("n_sources", "3", n_sources=3),
    "waveform_burst": _cond("waveform", "alpha/beta bursts", waveform="burst"),
    "waveform_smooth": _cond("waveform", "smooth random", waveform="smooth"),
    "waveform_erp": _cond("waveform", "ERP-like", waveform="erp"),
    "noise_coloured": _cond("noise", "coloured (1/f, correlated)", noise="coloured"),
    "noise_real": _cond("noise", "real resting EEG", noise="real"),
    "snr_0": _cond("snr", "0 dB", snr_db=0.0),
    "snr_5": _cond("snr", "5 dB", snr_db=5.0),
    "snr_20": _cond("snr", "20 dB", snr_db=20.0),
    "mismatch_head": _cond("head model", "other head model", leadfield="mismatch_head"),
    "mismatch_orientation": _cond("head model", "other dipole orientation",
                                  leadfield="mismatch_orientation"),
    "mismatch_jitter": _cond("head model", "electrodes jittered 5 mm", leadfield="mismatch_jitter"),
    "combined": {"factor": "combined", "level": "all factors drawn, head model + jitter + real "
                                                "noise", "n_sources": (1, 2, 3), "extent": EXTENTS,
                 "waveform": ("burst", "smooth", "erp"), "noise": "real", "snr_db": SNRS_DB,
                 "leadfield": "mismatch_all"},
}

#: Samples per condition, validation samples for the MxNE alpha grid, figures, per budget.
BUDGETS = {
    "smoke": {"n_samples": 6, "n_val": 4, "alpha_grid": (30.0,), "n_cortex": 0},
    "small": {"n_samples": 24, "n_val": 8, "alpha_grid": (10.0, 30.0, 60.0), "n_cortex": 1},
    "full": {"n_samples": 200, "n_val": 32, "alpha_grid": (5.0, 10.0, 20.0, 40.0, 60.0, 80.0),
             "n_cortex": 3},
}

#: Metrics reported, with the better direction; the first of KEY_METRICS is the primary one.
METRICS = {
    "emd": "lower", "peak_error": "lower", "localisation_error": "lower",
    "spatial_dispersion": "lower", "roc_auc": "higher", "spatial_pcc": "higher",
    "temporal_pcc_centre": "higher", "precision": "higher", "recall": "higher", "nmse": "lower",
}
KEY_METRICS = ("emd", "peak_error", "roc_auc", "localisation_error", "spatial_pcc",
               "temporal_pcc_centre")
FLOORS_CEILINGS = ("random", "truth", "oracle_patches")
CLASSICAL = ("MNE", "dSPM", "sLORETA", "eLORETA", "LCMV")
SPARSE = ("MxNE", "gamma-MAP", "Champagne")
DEFAULT_METHODS = CLASSICAL + SPARSE
#: Methods drawn on the cortex figures (besides the truth and the learned models).
CORTEX_METHODS = ("sLORETA", "MxNE", "Champagne")
#: Electrode jitter (mm RMS) of ``mismatch_jitter``.
JITTER_MM = 5.0


# ============================================================================================
# Patches and splits
# ============================================================================================


def centre_folds(atlas, n_folds: int = 5, *, seed: int = 0) -> np.ndarray:
    """Spatially contiguous folds of regions (k-means on the region centres).

    Parameters
    ----------
    atlas : Atlas
    n_folds : int
    seed : int

    Returns
    -------
    fold : ndarray of int, shape (n_regions,)
        Fold index (0 .. n_folds-1) of every region.
    """
    from scipy.cluster.vq import kmeans2

    n_folds = int(n_folds)
    if not 2 <= n_folds <= atlas.n_regions:
        raise ValueError(f"n_folds must be in 2..{atlas.n_regions}, got {n_folds}.")
    _, labels = kmeans2(np.asarray(atlas.centres, float), n_folds, seed=int(seed),
                        minit="++")
    return labels.astype(np.int64)


def exclude_centres(sources, regions):
    """A copy of ``sources`` without the samples that have a centre in ``regions``.

    Use it to train a model for the ``centre-disjoint`` split: the test centres of fold ``k``
    (``centre_folds(...) == k``) are then never training centres.
    """
    from .sources import Sources

    bad = np.isin(sources.centres, np.asarray(regions)).any(axis=1)
    keep = np.flatnonzero(~bad)
    patches = [[sources.patch(i, k)[0] for k in range(sources.n_sources)] for i in keep]
    flat_w = [np.concatenate([sources.patch(i, k)[1] for k in range(sources.n_sources)])
              for i in keep]
    offsets = [0]
    regs, weights = [], []
    for p, w in zip(patches, flat_w):
        for r in p:
            offsets.append(offsets[-1] + len(r))
            regs.append(r)
        weights.append(w)
    attrs = {**sources.attrs, "excluded_centres": np.asarray(regions).astype(int).tolist()}
    return Sources(sources.centres[keep], np.array(offsets),
                   np.concatenate(regs) if regs else np.zeros(0, np.int64),
                   np.concatenate(weights) if weights else np.zeros(0),
                   sources.half_distance[keep], sources.n_layers[keep], attrs)


def _patch_key(regions) -> bytes:
    return np.unique(np.asarray(regions, dtype=np.int64)).tobytes()


def training_patch_set(train_sources=None, *, atlas=None, seed: int = 0) -> set:
    """Keys of every training patch (regions as a set) that test patches must avoid.

    Parameters
    ----------
    train_sources : Sources or sequence of Sources, optional
        The training split(s). When omitted, every candidate patch that
        :func:`lightbunny.sources.make_sources` draws training patches from (seeded ``seed``),
        a superset of any training file made with that seed.
    atlas : Atlas
        Needed when ``train_sources`` is omitted.
    seed : int
    """
    keys = set()
    if train_sources is None:
        from .sources import candidate_patches

        if atlas is None:
            raise ValueError("training_patch_set needs train_sources or atlas.")
        for cands in candidate_patches(atlas, seed=seed, progress=False).values():
            keys.update(_patch_key(p) for p, _ in cands)
        return keys
    if not isinstance(train_sources, (list, tuple)):
        train_sources = [train_sources]
    for src in train_sources:
        n_s = src.n_sources
        for j in range(src.n_samples * n_s):
            keys.add(_patch_key(src.regions[src.offsets[j]:src.offsets[j + 1]]))
    return keys


def _hops(nbs, centre, regions) -> int:
    """Largest graph distance (hops, over all regions) from ``centre`` to ``regions``."""
    want = set(int(r) for r in regions)
    dist = {int(centre): 0}
    frontier = [int(centre)]
    while frontier and not want <= set(dist):
        nxt = []
        for r in frontier:
            for q in nbs[r]:
                if int(q) not in dist:
                    dist[int(q)] = dist[r] + 1
                    nxt.append(int(q))
        frontier = nxt
    return max(dist.get(r, -1) for r in want)


def _grow(atlas, nbs, extent, centre, rng) -> np.ndarray:
    from .sources import grow_patches

    if extent == "single":
        return np.array([centre], dtype=np.int64)
    if extent == "small":
        return np.concatenate([[centre], np.asarray(nbs[centre], dtype=np.int64)])
    depth = 2 if extent == "medium" else 3
    cands = grow_patches(nbs, atlas.centres, centre, rng=rng, n_variants=1, n_layers=(depth,))
    return cands[int(rng.integers(len(cands)))][0]


# ============================================================================================
# Generating one condition
# ============================================================================================


@dataclass
class ConditionSamples:
    """The samples of one condition, identical for every method.

    Attributes
    ----------
    name : str
    eeg : ndarray, shape (n_samples, n_times, n_chans), V
        Average-referenced, time-centred EEG with noise (the nominal leadfield's channels).
    target : ndarray, shape (n_samples, n_times, n_regions)
        Source activity divided by its maximum absolute value.
    signal, noise : ndarray, shape (n_samples, n_times, n_chans)
        The two parts of ``eeg`` (``eeg = signal + noise``).
    patches : list of list of ndarray of int
        Regions of each source of each sample, centre first.
    centres : list of ndarray of int
    info : list of dict
        Per sample: ``extent``, ``waveform`` (per source), ``noise``, ``snr_db`` (requested),
        ``leadfield``, ``patch_sizes``, ``hops``.
    """

    name: str
    eeg: np.ndarray
    target: np.ndarray
    signal: np.ndarray
    noise: np.ndarray
    patches: list
    centres: list
    info: list
    spec: dict = field(default_factory=dict)


def _ref(x):
    x = x - x.mean(axis=-1, keepdims=True)
    return x - x.mean(axis=-2, keepdims=True)


def _draw(value, rng):
    if isinstance(value, tuple):
        return value[int(rng.integers(len(value)))]
    return value


def make_condition(spec: dict, *, atlas, gains: dict, n_samples: int, seed: int,
                   name: str = "condition", bank=None, clip_sets: dict | None = None,
                   forbidden: set | None = None, allowed_centres=None, real_noise=None,
                   sfreq: float = 500.0, n_times: int = 500, max_tries: int = 50
                   ) -> ConditionSamples:
    """Simulate the samples of one condition (see the module docstring).

    Parameters
    ----------
    spec : dict
        ``n_sources``, ``extent``, ``waveform``, ``noise``, ``snr_db``, ``leadfield``; a tuple
        value is drawn per sample (as in :data:`CONDITIONS`).
    atlas : Atlas
    gains : dict of str -> ndarray, shape (n_chans, n_regions)
        ``'nominal'`` and any leadfield named by ``spec['leadfield']`` (same channels).
    n_samples : int
    seed : int
        Sample ``i`` derives from ``(seed, i)``.
    bank : SpikeBank, optional
        Needed for ``waveform='spike'``.
    clip_sets : dict of int -> ndarray of int, optional
        The test clips of each region (default: :func:`lightbunny.dataset.split_clips`).
    forbidden : set of bytes, optional
        :func:`training_patch_set`: no patch may equal one of these.
    allowed_centres : array-like of int, optional
        Centres may only come from these regions (the centre-disjoint split).
    real_noise : ndarray, shape (n_segments, n_noise_times, n_chans), optional
        Resting EEG in the nominal leadfield's channel order (``noise='real'``).
    sfreq : float, Hz
    n_times : int
    max_tries : int
        Redraws of a patch that equals a training patch, or of a centre inside another
        source's patch (then as many again with distinct centres only).

    Returns
    -------
    ConditionSamples
    """
    from .dataset import split_clips
    from .sources import decay_weights

    forbidden = forbidden or set()
    nbs = [np.flatnonzero(row) for row in np.asarray(atlas.adjacency, bool)]
    n_regions = atlas.n_regions
    pool = np.arange(n_regions) if allowed_centres is None else np.unique(
        np.asarray(allowed_centres, dtype=np.int64))
    if len(pool) == 0:
        raise ValueError("allowed_centres is empty.")
    uses_spike = "spike" in np.atleast_1d(spec["waveform"]).tolist()
    if uses_spike:
        if bank is None:
            raise ValueError("waveform 'spike' needs a spike bank (bank=...).")
        if clip_sets is None:
            clip_sets = {r: split_clips(bank.n_clips(r), region=r)["test"] for r in range(n_regions)}
        spike_pool = np.array([r for r in pool if len(clip_sets.get(int(r), ())) > 0])
        if len(spike_pool) == 0:
            raise ValueError("no allowed centre region has a test clip in the spike bank.")
    n_chans = gains["nominal"].shape[0]
    eeg = np.zeros((n_samples, n_times, n_chans))
    sig = np.zeros_like(eeg)
    noi = np.zeros_like(eeg)
    target = np.zeros((n_samples, n_times, n_regions))
    all_patches, all_centres, infos = [], [], []
    for i in range(n_samples):
        rng = np.random.default_rng([int(seed), 17, i])
        n_src = int(_draw(spec["n_sources"], rng))
        extent = _draw(spec["extent"], rng)
        family = _draw(spec["waveform"], rng)
        noise_kind = _draw(spec["noise"], rng)
        snr = float(_draw(spec["snr_db"], rng))
        lf_name = _draw(spec["leadfield"], rng)
        if lf_name not in gains:
            raise ValueError(f"leadfield {lf_name!r} of the condition is not among the given "
                             f"gains {sorted(gains)}.")
        gain = np.asarray(gains[lf_name], dtype=np.float64)
        centre_pool = spike_pool if family == "spike" else pool
        used = np.zeros(n_regions, bool)  # regions of the patches so far
        is_centre = np.zeros(n_regions, bool)
        patches, centres = [], []
        for _ in range(n_src):
            # first try centres outside the other patches (and patches without their centres),
            # then, in a small pool (a centre-disjoint fold), only distinct centres
            for _try in range(2 * max_tries):
                strict = _try < max_tries
                c = int(centre_pool[rng.integers(len(centre_pool))])
                if is_centre[c] or (strict and used[c]):
                    continue
                p = _grow(atlas, nbs, extent, c, rng)
                if _patch_key(p) in forbidden or (strict and is_centre[p].any()):
                    continue
                break
            else:
                raise ValueError(f"condition {name!r}: no {extent} patch found in "
                                 f"{2 * max_tries} tries that differs from every training patch "
                                 "and has a centre of its own; lower n_sources or widen the "
                                 "centres.")
            used[p] = True
            is_centre[c] = True
            patches.append(np.asarray(p, dtype=np.int64))
            centres.append(c)
        h = rng.uniform(40.0, 60.0)
        j = np.zeros((n_times, n_regions))
        for p, c in zip(patches, centres):
            clip = None
            if family == "spike":
                cs = clip_sets[c]
                k = int(cs[rng.integers(len(cs))])
                clip = bank.clips(c)[k][:, c]
            wave = make_waveform(family, n_times, sfreq, rng, clip=clip) * rng.uniform(0.5, 1.0)
            w = np.ones(1) if len(p) == 1 else decay_weights(atlas.distances[c, p], h)
            j[:, p] += wave[:, None] * w[None, :]
        x = _ref(j @ gain.T)
        if noise_kind == "white":
            nz = rng.standard_normal((n_times, n_chans))
        elif noise_kind == "coloured":
            nz = _pink(n_times, n_regions, rng) @ gain.T
        else:
            if real_noise is None:
                raise ValueError("noise 'real' needs real_noise (resting-EEG segments).")
            seg = real_noise[int(rng.integers(len(real_noise)))]
            off = int(rng.integers(seg.shape[0] - n_times + 1))
            nz = np.array(seg[off:off + n_times], dtype=np.float64)
            if rng.random() < 0.5:
                nz = nz[::-1]
            nz = nz * (1.0 if rng.random() < 0.5 else -1.0)
        nz = _ref(nz)
        scale = math.sqrt(float(np.sum(x * x)) / (float(np.sum(nz * nz)) * 10.0 ** (snr / 10.0)))
        nz = nz * scale
        sig[i], noi[i], eeg[i] = x, nz, x + nz
        target[i] = j / np.abs(j).max()
        all_patches.append(patches)
        all_centres.append(np.array(centres, dtype=np.int64))
        infos.append({"n_sources": n_src, "extent": extent, "waveform": family,
                      "noise": noise_kind, "snr_db": snr, "leadfield": lf_name,
                      "patch_sizes": [len(p) for p in patches],
                      "hops": [_hops(nbs, c, p) for p, c in zip(patches, centres)]})
    return ConditionSamples(name, eeg, target, sig, noi, all_patches, all_centres, infos,
                            dict(spec))


def _in_prior_condition(atlas, gains, n_samples, seed, bank, train_seed, leadfield,
                        forbidden) -> ConditionSamples:
    """The training recipe on a ``make_sources`` test split (training patches may repeat)."""
    from .dataset import SyntheticEEGDataset
    from .sources import make_sources

    n_iter = max(1, math.ceil(2 * n_samples / atlas.n_regions))
    src = make_sources(atlas, split="test", n_iter=n_iter, n_sources=2, seed=train_seed,
                       progress=False)
    ds = SyntheticEEGDataset(src, bank, leadfield, seed=seed, snr_db=[10.0],
                             missing_clips="skip")
    idx = np.random.default_rng([seed, 23]).permutation(len(ds))[:n_samples]
    idx = np.sort(idx)
    _, target, parts = ds.get_batch(idx, return_parts=True)
    target = target.numpy().astype(np.float64)
    signal = _ref(parts["signal"].numpy().astype(np.float64))
    noise = parts["noise"].numpy().astype(np.float64)
    patches, centres, infos = [], [], []
    nbs = [np.flatnonzero(row) for row in np.asarray(atlas.adjacency, bool)]
    for i in ds.sample_indices[idx]:
        p = [r for r, _ in src.patches(int(i))]
        patches.append(p)
        centres.append(np.asarray(src.centres[int(i)]))
        infos.append({"n_sources": 2, "extent": "training", "waveform": "spike+background",
                      "noise": "white", "snr_db": 10.0, "leadfield": "nominal",
                      "patch_sizes": [len(r) for r in p],
                      "hops": [_hops(nbs, c, r) for r, c in zip(p, src.centres[int(i)])],
                      "memorised": [(_patch_key(r) in forbidden) for r in p]})
    return ConditionSamples("in_prior", signal + noise, target, signal, noise, patches, centres,
                            infos,
                            dict(CONDITIONS["in_prior"]))


# ============================================================================================
# Metrics
# ============================================================================================


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


def random_floor(n_times: int, n_regions: int, rng) -> np.ndarray:
    """The floor: a random power map (each region a random amplitude times white noise).

    Returns
    -------
    pred : ndarray, shape (n_times, n_regions)
    """
    amp = rng.lognormal(0.0, 1.0, n_regions)
    return rng.standard_normal((n_times, n_regions)) * amp


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
    from .metrics import sample_metrics

    m = sample_metrics(pred, target, patches, centres, distances)
    m["emd"] = emd(pred, target, distances)
    return m


# ============================================================================================
# Methods
# ============================================================================================


class _Runner:
    """A method applied sample by sample: ``run(eeg (T, C), snr_db, sample) -> (T, R)``."""

    def __init__(self, name, kind, fn):
        self.name, self.kind, self.fn = name, kind, fn


def _classical_runner(name, leadfield):
    from .inverse import make_inverse

    cache = {}

    def fn(eeg, snr_db, sample):
        if name == "LCMV":
            return make_inverse("LCMV", leadfield.gain, leadfield.ch_names).apply(eeg)
        if snr_db not in cache:
            cache[snr_db] = make_inverse(name, leadfield.gain, leadfield.ch_names,
                                         snr=10.0 ** (snr_db / 20.0))
        return cache[snr_db].apply(eeg)

    return _Runner(name, "classical", fn)


def _sparse_runner(name, leadfield, params):
    from .inverse import make_sparse_inverse

    cache = {}

    def fn(eeg, snr_db, sample):
        if snr_db not in cache:
            cache[snr_db] = make_sparse_inverse(name, leadfield.gain, leadfield.ch_names,
                                                snr=10.0 ** (snr_db / 20.0), **params)
        return cache[snr_db].apply(eeg)

    return _Runner(name, "sparse", fn)


def _learned_runner(path, leadfield, atlas, device):
    import torch

    from .dataset import normalise_eeg
    from .train import load_model

    model, ckpt = load_model(path, expected_meta={"atlas": atlas.name,
                                                  "ch_names": list(leadfield.ch_names)},
                             device=device)
    label = Path(path).parent.name or Path(path).stem
    name = f"{ckpt['model_name']}:{label}"

    @torch.no_grad()
    def fn(eeg, snr_db, sample):
        x = torch.as_tensor(normalise_eeg(eeg)[None], dtype=torch.float32, device=device)
        return model(x)[0].float().cpu().numpy().astype(np.float64)

    runner = _Runner(name, "learned", fn)
    runner.n_times = getattr(model, "n_times", None) or ckpt["model_config"].get("n_times")
    return runner


def _oracle_patches(gain, eeg, target, patches):
    """The ceiling: least squares of one time course per source on its true spatial map.

    It knows where every source is and its profile (the truth's RMS over time at each patch
    region, relative to the patch maximum) and estimates only the time courses from ``eeg``
    with the nominal ``gain`` (average-referenced).

    Returns
    -------
    pred : ndarray, shape (n_times, n_regions)
    """
    g = gain - gain.mean(0, keepdims=True)
    n_regions = gain.shape[1]
    maps = np.zeros((len(patches), n_regions))
    power = np.sqrt((target * target).mean(0))
    for k, p in enumerate(patches):
        p = np.asarray(p)
        maps[k, p] = power[p] / (power[p].max() or 1.0)
    x = np.linalg.lstsq(g @ maps.T, eeg.T, rcond=None)[0]  # (n_sources, n_times)
    return x.T @ maps


# ============================================================================================
# Leadfields for the mismatch conditions and the real noise
# ============================================================================================


#: Skull conductivity (S/m) of ``mismatch_head`` on atlases without a BEM (tvb76): the sphere's
#: default is 0.004 (brain/skull ratio 82); 0.01 (ratio 33) is within the range reported in
#: the literature, which is the head model's largest uncertainty.
MISMATCH_SKULL_S_PER_M = 0.01
_MISMATCH_OPTIONS = ("head_model", "skull_conductivity", "jitter_mm", "jitter_seed")


def mismatch_leadfields(atlas, leadfield, *, seed: int = 0, data_dir=None) -> dict:
    """The simulation leadfields of the head-model mismatch conditions.

    ``mismatch_head``
        another head model than the nominal one: the fsaverage BEM for a sphere leadfield and
        the sphere otherwise, where the atlas has a BEM (fsaverage994); on atlases without one
        (tvb76) the same sphere with skull conductivity :data:`MISMATCH_SKULL_S_PER_M`.
    ``mismatch_orientation``
        the other dipole orientation (the seed's ``free_sum`` x+y+z sum vs the cortical normal).
    ``mismatch_jitter``
        the electrodes moved by :data:`JITTER_MM` mm RMS along the scalp.
    ``mismatch_all``
        ``mismatch_head`` and ``mismatch_jitter`` together (the ``combined`` condition).

    Parameters
    ----------
    atlas : Atlas
    leadfield : Leadfield
        The nominal leadfield (the one the methods invert).
    seed : int
        Seed of the electrode jitter.
    data_dir : path, optional

    Returns
    -------
    dict of str -> (Leadfield or None, str)
        The leadfield and a sentence saying what differs, or None and why it is unavailable
        (the conditions that need it are then skipped with that reason).
    """
    from .leadfield import make_leadfield

    params = inspect.signature(make_leadfield).parameters
    missing = [k for k in _MISMATCH_OPTIONS if k not in params]
    if missing:
        why = (f"lightbunny.leadfield.make_leadfield has no {', '.join(missing)} option(s): this "
               "installation predates the head-model work (issue 12); pass mismatch= leadfields")
        return {k: (None, why) for k in ("mismatch_head", "mismatch_orientation",
                                         "mismatch_jitter", "mismatch_all")}
    from .leadfield import in_fsaverage_space

    base = {"montage": leadfield.montage, "orientation": leadfield.orientation,
            "data_dir": data_dir}
    nominal = leadfield.head_model
    if nominal not in ("sphere", "bem", "deepsif"):
        nominal = "sphere"
    if in_fsaverage_space(atlas):
        head = {"head_model": "sphere" if nominal != "sphere" else "bem"}
        head_note = (f"simulated with head model {head['head_model']!r}, inverted with "
                     f"{leadfield.head_model!r}")
    else:
        head = {"head_model": "sphere", "skull_conductivity": MISMATCH_SKULL_S_PER_M}
        head_note = (f"{atlas.name} has no BEM: simulated with the sphere's skull at "
                     f"{MISMATCH_SKULL_S_PER_M:g} S/m, inverted with {leadfield.head_model!r} "
                     "(skull 0.004 S/m by default)")
    if leadfield.montage in ("digmontage", "info", "custom", "forward"):
        why = (f"the nominal leadfield's montage {leadfield.montage!r} cannot be rebuilt by name; "
               "pass mismatch= leadfields")
        return {k: (None, why) for k in ("mismatch_head", "mismatch_orientation",
                                         "mismatch_jitter", "mismatch_all")}
    jitter = {"jitter_mm": JITTER_MM, "jitter_seed": int(seed)}
    same = {"head_model": nominal} if nominal != "deepsif" else {"head_model": "bem"}
    other_ori = "free_sum" if leadfield.orientation == "normal" else "normal"
    specs = {
        "mismatch_head": ({**base, **head}, head_note),
        "mismatch_orientation": ({**base, **same, "orientation": other_ori},
                                 f"simulated with dipole orientation {other_ori!r}, inverted "
                                 f"with {leadfield.orientation!r}"),
        "mismatch_jitter": ({**base, **same, **jitter},
                            f"electrodes jittered by {JITTER_MM:g} mm RMS along the scalp "
                            "(make_leadfield jitter_mm)"),
        "mismatch_all": ({**base, **head, **jitter}, f"{head_note}; and electrodes jittered by "
                                                     f"{JITTER_MM:g} mm RMS"),
    }
    out = {}
    for name, (kwargs, note) in specs.items():
        try:
            lf = make_leadfield(atlas, **kwargs)
        except (ValueError, FileNotFoundError) as err:
            out[name] = (None, f"could not build it: {err}")
            continue
        if tuple(lf.ch_names) != tuple(leadfield.ch_names):
            out[name] = (None, "its channels differ from the nominal leadfield's")
            continue
        if "jitter_mm" in kwargs:
            moved = np.sqrt(np.mean(np.sum((lf.ch_pos - leadfield.ch_pos) ** 2, axis=1)))
            note += f", realised {moved:.1f} mm RMS"
        out[name] = (lf, note)
    return out


def load_real_noise(ch_names, *, data_dir=None, path=None):
    """Resting-EEG segments in the order of ``ch_names``, or ``(None, reason)``.

    Reads ``realistic_noise.mat`` (DeepSIF: 4 x 500 x 75, the channels of ``electrode_75.mat``)
    from the fsaverage994 data folder (:func:`lightbunny.atlas.resolve_data_dir`) or ``path``.

    Returns
    -------
    segments : ndarray, shape (n_segments, n_times, n_chans) or None
    reason : str
        Where they came from, or why there are none.
    """
    from .atlas import resolve_data_dir
    from .dataset import load_realistic_noise
    from .leadfield import OLD_NAMES, read_eeglab_locations

    root = resolve_data_dir(data_dir)
    path = Path(path) if path is not None else root / "realistic_noise.mat"
    if not path.is_file():
        return None, f"no realistic_noise.mat in {path.parent} (set --data-dir or $LIGHTBUNNY_DATA)"
    data = load_realistic_noise(path)
    locs = path.parent / "electrode_75.mat"
    if data.shape[2] == len(ch_names):
        return np.asarray(data, float), f"{path} ({data.shape[2]} channels, in order)"
    if not locs.is_file():
        return None, (f"{path} has {data.shape[2]} channels, not {len(ch_names)}, and no "
                      f"electrode_75.mat next to it to match them by name")
    names, _ = read_eeglab_locations(locs, "eloc75")
    if len(names) != data.shape[2]:
        return None, f"electrode_75.mat names {len(names)} channels, the noise has {data.shape[2]}"
    index = {OLD_NAMES.get(n, n).lower(): k for k, n in enumerate(names)}
    want = [OLD_NAMES.get(c, c).lower() for c in ch_names]
    missing = [c for c, w in zip(ch_names, want) if w not in index]
    if missing:
        return None, f"channels {missing[:8]} are not among the 75 of {path.name}"
    return (np.asarray(data, float)[:, :, [index[w] for w in want]],
            f"{path} ({len(ch_names)} of its 75 channels, matched by name)")


# ============================================================================================
# The benchmark
# ============================================================================================


def run_benchmark(atlas, leadfield, *, out_dir, checkpoints=(), bank=None, train_sources=None,
                  conditions=None, methods=DEFAULT_METHODS, budget: str = "small",
                  n_samples: int | None = None, seed: int = 0, train_seed: int = 0,
                  split: str = "novel", n_folds: int = 5, fold: int = 0,
                  mismatch: dict | None = None, real_noise=None, data_dir=None,
                  figures: bool = True, device: str = "cpu", progress: bool = True) -> dict:
    """Run the generalisation benchmark and write its report.

    Parameters
    ----------
    atlas : Atlas
    leadfield : Leadfield
        The nominal leadfield: every method inverts it (and a checkpoint must have been trained
        on its channels).
    out_dir : path
    checkpoints : sequence of path
        Trained networks to score.
    bank : SpikeBank or path, optional
        Spike waveforms; conditions with spikes are skipped (with the reason) without it.
    train_sources : Sources, path or sequence of them, optional
        The training split(s), for the no-repeated-patch rule; default: every candidate patch
        of ``make_sources(seed=train_seed)``.
    conditions : sequence of str, optional
        Names from :data:`CONDITIONS` (default all).
    methods : sequence of str
        Classical and sparse methods (:data:`DEFAULT_METHODS`); the floor and ceilings are
        always added.
    budget : {'smoke', 'small', 'full'}
        Samples per condition and tuning/figure effort (:data:`BUDGETS`).
    n_samples : int, optional
        Override the budget's samples per condition.
    seed : int
        Test samples derive from ``(seed, condition, i)``; validation uses ``seed + 1000``.
    train_seed : int
        The seed the training sources were made with (``in_prior`` and the default patch set).
    split : {'novel', 'centre-disjoint'}
        Applies to every condition but ``in_prior``, which is the training recipe itself.
    n_folds, fold : int
        The fold of :func:`centre_folds` whose regions are the test centres
        (``centre-disjoint``).
    mismatch : dict of str -> Leadfield or callable, optional
        Simulation leadfields of ``mismatch_head``, ``mismatch_orientation``,
        ``mismatch_jitter``, ``mismatch_all`` (a callable is called as ``f(atlas, leadfield)``);
        default :func:`mismatch_leadfields`.
    real_noise : ndarray or path, optional
        Resting-EEG segments (n_segments, n_times, n_chans) in the leadfield's channel order,
        or a ``realistic_noise.mat``; default: from the data folder (:func:`load_real_noise`).
    data_dir : path, optional
    figures : bool
    device : str
    progress : bool

    Returns
    -------
    dict
        Paths (``per_sample``, ``summary_csv``, ``summary_md``, ``report``, ``json``), the
        ``summary`` rows, ``skipped`` conditions with reasons and ``timings`` (s).
    """
    from tqdm.auto import tqdm

    from .sources import Sources
    from .spikes import SpikeBank

    t_start = time.perf_counter()
    check_option("budget", budget, BUDGETS)
    check_option("split", split, SPLITS)
    cfg = dict(BUDGETS[budget])
    if n_samples is not None:
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        cfg["n_samples"] = int(n_samples)
    names = list(CONDITIONS) if conditions is None else list(conditions)
    for c in names:
        check_option("condition", c, CONDITIONS)
    known = {m.lower(): m for m in CLASSICAL + SPARSE}
    methods = [known.get(str(m).lower(), m) for m in methods]
    for m in methods:
        check_option("method", m, CLASSICAL + SPARSE)
    if atlas.name != leadfield.atlas_name or atlas.n_regions != leadfield.n_regions:
        raise ValueError(f"atlas {atlas.name!r} ({atlas.n_regions} regions) does not match the "
                         f"leadfield's {leadfield.atlas_name!r} ({leadfield.n_regions}).")
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    if isinstance(bank, (str, Path)):
        bank = SpikeBank.open(bank)
    if bank is not None and (bank.atlas_name != atlas.name or bank.n_regions != atlas.n_regions):
        raise ValueError(f"the spike bank is for {bank.atlas_name!r}, not {atlas.name!r}.")
    sfreq = float(bank.sfreq) if bank is not None else 500.0
    n_times = int(bank.n_times) if bank is not None else 500

    # ------------------------------------------------------------------ runners
    runners = []
    for path in checkpoints:
        r = _learned_runner(path, leadfield, atlas, device)
        if r.name in {q.name for q in runners}:  # e.g. two run folders both called "train"
            parts = Path(path).resolve().parts
            r.name = f"{r.name.split(':')[0]}:{'/'.join(parts[-3:-1])}"
            k = 2
            while r.name in {q.name for q in runners}:
                r.name, k = f"{r.name}#{k}", k + 1
        if r.n_times and int(r.n_times) != n_times:
            raise ValueError(f"{path} takes {r.n_times} samples per window, the benchmark "
                             f"makes {n_times}.")
        runners.append(r)
    runners += [_classical_runner(m, leadfield) for m in methods if m in CLASSICAL]
    timings = {}

    # ------------------------------------------------------------------ splits
    if train_sources is not None:
        items = train_sources if isinstance(train_sources, (list, tuple)) else [train_sources]
        items = [s if isinstance(s, Sources) else Sources.load(s) for s in items]
        forbidden = training_patch_set(items)
        train_centres = np.unique(np.concatenate([s.centres.ravel() for s in items]))
        patch_rule = f"{len(forbidden)} distinct patches of the given training sources"
    else:
        forbidden = training_patch_set(atlas=atlas, seed=train_seed)
        train_centres = np.arange(atlas.n_regions)
        patch_rule = (f"all {len(forbidden)} candidate patches of make_sources(seed={train_seed})"
                      " (no training sources given)")
    allowed = None
    if split == "centre-disjoint":
        folds = centre_folds(atlas, n_folds, seed=seed)
        if not 0 <= fold < n_folds:
            raise ValueError(f"fold must be in 0..{n_folds - 1}, got {fold}.")
        allowed = np.flatnonzero(folds == fold)
    test_pool = np.arange(atlas.n_regions) if allowed is None else allowed
    frac_train_centres = float(np.isin(test_pool, train_centres).mean())

    # ------------------------------------------------------------------ leadfields, noise
    gains = {"nominal": leadfield.gain}
    lf_notes = {"nominal": f"{leadfield.head_model}, {leadfield.orientation}, {leadfield.montage}"}
    skipped = {}
    wanted_lf = {_v for c in names for _v in np.atleast_1d(CONDITIONS[c]["leadfield"]).tolist()}
    if wanted_lf - {"nominal"}:
        t0 = time.perf_counter()
        if mismatch is None:
            built = mismatch_leadfields(atlas, leadfield, seed=seed, data_dir=data_dir)
        else:
            built = {}
            for k, v in mismatch.items():
                lf = v(atlas, leadfield) if callable(v) else v
                built[k] = (lf, f"given leadfield ({getattr(lf, 'head_model', '?')}, "
                                f"{getattr(lf, 'orientation', '?')})")
        for k, (lf, note) in built.items():
            if lf is None:
                lf_notes[k] = f"unavailable: {note}"
                continue
            g = getattr(lf, "gain", lf)
            if getattr(lf, "ch_names", leadfield.ch_names) != leadfield.ch_names or \
                    np.shape(g) != leadfield.gain.shape:
                raise ValueError(f"mismatch leadfield {k!r} must have the nominal channels and "
                                 "regions.")
            gains[k], lf_notes[k] = np.asarray(g), note
        timings["mismatch_leadfields"] = time.perf_counter() - t0
    if isinstance(real_noise, (str, Path)):
        real_noise, noise_note = load_real_noise(leadfield.ch_names, path=real_noise)
    elif real_noise is None:
        real_noise, noise_note = load_real_noise(leadfield.ch_names, data_dir=data_dir)
    else:
        real_noise = np.asarray(real_noise, float)
        noise_note = f"given array {real_noise.shape}"
    if real_noise is not None and real_noise.shape[1] < n_times:
        real_noise, noise_note = None, (f"real noise segments have {real_noise.shape[1]} samples, "
                                        f"fewer than {n_times}")

    for c in names:
        spec = CONDITIONS[c]
        needs = np.atleast_1d(spec["waveform"]).tolist()
        if spec.get("recipe") == "dataset" or needs == ["spike"]:
            if bank is None:
                skipped[c] = "needs the spike bank (--bank)"
        if "real" in np.atleast_1d(spec["noise"]).tolist() and real_noise is None:
            skipped[c] = f"real resting-EEG noise unavailable: {noise_note}"
        for lfn in np.atleast_1d(spec["leadfield"]).tolist():
            if lfn not in gains:
                skipped[c] = f"no simulation leadfield {lfn!r}: " + lf_notes.get(
                    lfn, "not given (mismatch=...)")
    run_names = [c for c in names if c not in skipped]
    for c, why in skipped.items():
        logger.warning("benchmark: condition %s skipped: %s", c, why)

    # ------------------------------------------------------------------ hyper-parameters
    sparse_params = {"MxNE": {}, "gamma-MAP": {"alpha": 1.0}, "Champagne": {}}
    tuning = {}
    if "MxNE" in methods:
        t0 = time.perf_counter()
        grid = cfg["alpha_grid"]
        if len(grid) == 1:
            best = grid[0]
            tuning["MxNE"] = {"alpha": best, "how": "budget with a one-value grid"}
        else:
            base = dict(CONDITIONS["base"])
            if bank is None:
                base["waveform"] = "erp"
            val = make_condition(base, atlas=atlas, gains=gains, n_samples=cfg["n_val"],
                                 seed=seed + 1000, name="validation", bank=bank,
                                 forbidden=forbidden, allowed_centres=allowed, sfreq=sfreq,
                                 n_times=n_times)
            scores = {}
            for a in grid:
                r = _sparse_runner("MxNE", leadfield, {"alpha": a})
                vals = [emd(r.fn(val.eeg[i], val.info[i]["snr_db"], i), val.target[i],
                            atlas.distances) for i in range(len(val.eeg))]
                scores[a] = float(np.nanmedian(vals))
            best = min(scores, key=scores.get)
            tuning["MxNE"] = {"alpha": best, "grid_median_emd_mm": scores,
                              "how": f"lowest median EMD on {cfg['n_val']} validation samples "
                                     f"of the base condition (seed {seed + 1000})"}
        sparse_params["MxNE"] = {"alpha": best}
        timings["tuning"] = time.perf_counter() - t0
        logger.info("benchmark: MxNE alpha %s%% of alpha_max (%s), %.0f s", best,
                    tuning["MxNE"]["how"], timings["tuning"])
    tuning["gamma-MAP"] = {"alpha": 1.0, "how": "whitened noise variance (noise level from "
                                               "the nominal SNR)"}
    tuning["Champagne"] = {"how": "noise variance from the nominal SNR; no free parameter"}
    runners += [_sparse_runner(m, leadfield, sparse_params[m]) for m in methods if m in SPARSE]

    # ------------------------------------------------------------------ run
    rows, examples, cond_info = [], {}, {}
    method_names = [r.name for r in runners]
    all_names = method_names + list(FLOORS_CEILINGS)
    bar = tqdm(total=len(run_names) * cfg["n_samples"], desc="benchmark", unit="sample",
               disable=not progress)
    method_time = {n: 0.0 for n in all_names}
    for ci, cname in enumerate(run_names):
        t0 = time.perf_counter()
        spec = CONDITIONS[cname]
        cseed = seed * 1000 + _stable_index(cname)
        if spec.get("recipe") == "dataset":
            samples = _in_prior_condition(atlas, gains, cfg["n_samples"], cseed, bank,
                                          train_seed, leadfield, forbidden)
        else:
            samples = make_condition(spec, atlas=atlas, gains=gains, n_samples=cfg["n_samples"],
                                     seed=cseed, name=cname, bank=bank, forbidden=forbidden,
                                     allowed_centres=allowed, real_noise=real_noise,
                                     sfreq=sfreq, n_times=n_times)
        cond_info[cname] = _condition_summary(samples)
        timings[f"simulate:{cname}"] = time.perf_counter() - t0
        for i in range(len(samples.eeg)):
            eeg, target = samples.eeg[i], samples.target[i]
            patches, centres = samples.patches[i], samples.centres[i]
            snr = samples.info[i]["snr_db"]
            preds = {}
            for r in runners:
                t1 = time.perf_counter()
                preds[r.name] = r.fn(eeg, snr, i)
                method_time[r.name] += time.perf_counter() - t1
            preds["random"] = random_floor(n_times, atlas.n_regions,
                                           np.random.default_rng([cseed, 31, i]))
            preds["truth"] = target
            preds["oracle_patches"] = _oracle_patches(leadfield.gain, eeg, target, patches)
            for name in all_names:
                m = _score(preds[name], target, patches, centres, atlas.distances)
                kind = ("floor" if name == "random" else "ceiling" if name in FLOORS_CEILINGS
                        else next(r.kind for r in runners if r.name == name))
                rows.append({"condition": cname, "method": name, "kind": kind, "sample": i,
                             "snr_db": snr, "extent": samples.info[i]["extent"],
                             "waveform": samples.info[i]["waveform"],
                             "n_sources": samples.info[i]["n_sources"], **m})
            if i < cfg["n_cortex"]:
                shown = [r.name for r in runners if r.kind == "learned"
                         or r.name in CORTEX_METHODS]
                examples[(cname, i)] = {"truth": target, "centres": list(map(int, centres)),
                                        **{n: preds[n] for n in shown}}
            bar.update(1)
        timings[f"condition:{cname}"] = time.perf_counter() - t0
        logger.info("benchmark: condition %s (%d/%d) done in %.0f s", cname, ci + 1,
                    len(run_names), timings[f"condition:{cname}"])
    bar.close()
    timings["per_method_total"] = method_time

    # ------------------------------------------------------------------ summaries
    competitors = method_names
    summary = summarise(rows, run_names, all_names, seed=seed)
    best = fraction_best(rows, run_names, competitors)
    wins = win_table(summary, run_names, competitors)
    paired = {r.name: paired_win_loss(rows, run_names, r.name,
                                      [m for m in all_names if m != r.name])
              for r in runners if r.kind == "learned"}
    md = benchmark_markdown(summary, best, wins, run_names, all_names, competitors, skipped,
                            cond_info, tuning, lf_notes, noise_note, patch_rule, split,
                            frac_train_centres, paired)
    paths = {"per_sample": write_csv(out_dir / "per_sample.csv", rows),
             "summary_csv": write_csv(out_dir / "summary.csv", summary),
             "fraction_best_csv": write_csv(out_dir / "fraction_best.csv", best),
             "summary_md": out_dir / "summary.md"}
    with atomic_path(paths["summary_md"]) as tmp:
        Path(tmp).write_text(md)
    timings["total_before_report"] = time.perf_counter() - t_start
    config = {
        "benchmark_version": BENCHMARK_VERSION, "budget": budget, "budget_settings": cfg,
        "atlas": atlas.name, "leadfields": lf_notes, "real_noise": noise_note,
        "checkpoints": [str(p) for p in checkpoints], "methods": all_names,
        "conditions": {c: {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in CONDITIONS[c].items()} for c in run_names},
        "skipped": skipped, "seed": seed, "train_seed": train_seed, "split": split,
        "n_folds": n_folds if split == "centre-disjoint" else None,
        "fold": fold if split == "centre-disjoint" else None,
        "patch_rule": patch_rule, "fraction_test_centres_in_training": frac_train_centres,
        "tuning": tuning, "condition_summaries": cond_info, "versions": versions(),
    }
    paths["json"] = out_dir / "benchmark.json"
    if figures:
        paths["report"] = _write_report(out_dir, md, rows, run_names, all_names, examples,
                                        atlas, config)
    timings["total"] = time.perf_counter() - t_start
    config["timings_s"] = timings
    write_json(paths["json"], config)
    logger.info("benchmark done in %.0f s: %s", timings["total"], out_dir)
    return {**paths, "summary": summary, "fraction_best": best, "wins": wins,
            "skipped": skipped, "timings": timings, "tuning": tuning}


def _stable_index(name: str) -> int:
    """A seed offset per condition name that does not depend on which conditions run."""
    return sum((k + 1) * ord(ch) for k, ch in enumerate(name)) % 997


def _condition_summary(samples: ConditionSamples) -> dict:
    sizes = [s for inf in samples.info for s in inf["patch_sizes"]]
    out = {"n_samples": len(samples.eeg),
           "patch_regions_median": float(np.median(sizes)) if sizes else math.nan,
           "patch_regions_range": [int(min(sizes)), int(max(sizes))] if sizes else []}
    from .dataset import realised_snr_db

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


def benchmark_markdown(summary, best, wins, conditions, methods, competitors, skipped, cond_info,
                       tuning, lf_notes, noise_note, patch_rule, split, frac_train,
                       paired=None) -> str:
    """The markdown report: settings, one table per key metric, fraction best, win table."""
    table = {(r["condition"], r["method"], r["metric"]): r for r in summary}
    lines = [f"# LightBunny generalisation benchmark v{BENCHMARK_VERSION}", "",
             f"- split: **{split}**; test patches never equal {patch_rule}; "
             f"{100 * frac_train:.0f} % of the possible test centres are training centres",
             f"- leadfields: " + "; ".join(f"{k}: {v}" for k, v in lf_notes.items()),
             f"- real noise: {noise_note}",
             "- hyper-parameters (never from the test truth): " + "; ".join(
                 f"{k}: {v.get('alpha', '')} ({v['how']})" for k, v in tuning.items()),
             "- cells: median [bootstrap 95 % CI] over the condition's samples; best competitor "
             "in bold; `random` is the floor, `truth` and `oracle_patches` the ceilings",
             "- localisation error / precision / recall use DeepSIF's Otsu rule (regions above "
             "the Otsu threshold of the normalised |output| for > 7 samples); EMD, peak error, "
             "AUC and spatial PCC are threshold-free; EMD ground cost: Euclidean distance "
             "between region centres (mm)", ""]
    if skipped:
        lines += ["Skipped conditions:", ""] + [f"- `{c}`: {why}" for c, why in skipped.items()]
        lines.append("")
    lines += ["| condition | factor: level | samples | patch regions (median, range) | "
              "realised SNR (dB) |", "| --- | --- | --- | --- | --- |"]
    for c in conditions:
        inf = cond_info[c]
        snr = inf.get("realised_snr_db_range")
        mem = inf.get("fraction_patches_equal_to_training")
        extra = (f"; {100 * mem:.0f} % of its patches are in the training patch set (split rule "
                 "above)" if mem is not None else "")
        lines.append(f"| {c} | {CONDITIONS[c]['factor']}: {CONDITIONS[c]['level']}{extra} | "
                     f"{inf['n_samples']} | {inf['patch_regions_median']:g} "
                     f"({'-'.join(map(str, inf['patch_regions_range']))}) | "
                     f"{snr[0]:.2f} to {snr[1]:.2f} |")
    lines.append("")
    for metric in METRICS:
        arrow = "↓" if METRICS[metric] == "lower" else "↑"
        lines += [f"## {metric} {arrow}", "", "| condition | " + " | ".join(methods) + " |",
                  "| --- |" + " --- |" * len(methods)]
        for c in conditions:
            sign = 1.0 if METRICS[metric] == "lower" else -1.0
            meds = {m: table[(c, m, metric)]["median"] for m in methods if (c, m, metric) in table}
            comp = [sign * meds[m] for m in competitors if m in meds and np.isfinite(meds[m])]
            top = min(comp) if comp else None
            cells = []
            for m in methods:
                r = table.get((c, m, metric))
                if r is None or not np.isfinite(r["median"]):
                    cells.append("n/a")
                    continue
                s = f"{r['median']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
                if m in competitors and top is not None and np.isclose(sign * r["median"], top):
                    s = f"**{s}**"
                cells.append(s)
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Fraction of samples where each method is best", "",
              "| condition | metric | " + " | ".join(competitors) + " |",
              "| --- | --- |" + " --- |" * len(competitors)]
    fb = {(r["condition"], r["metric"], r["method"]): r["fraction_best"] for r in best}
    for c in conditions:
        for metric in KEY_METRICS:
            lines.append(f"| {c} | {metric} | " + " | ".join(
                f"{fb[(c, metric, m)]:.2f}" for m in competitors) + " |")
    lines += ["", f"## Wins: key metrics (of {len(KEY_METRICS)}: {', '.join(KEY_METRICS)}) on "
                  "which the method has the best median", "",
              "| method | " + " | ".join(conditions) + " | total |",
              "| --- |" + " --- |" * (len(conditions) + 1)]
    for m in competitors:
        vals = [wins[(m, c)] for c in conditions]
        lines.append(f"| {m} | " + " | ".join(map(str, vals)) + f" | {sum(vals)} |")
    lines.append("")
    for ref, table_ in (paired or {}).items():
        lines += [f"## Win/loss against {ref}, per sample, on EMD (wins-losses of the method)", "",
                  "| method | " + " | ".join(conditions) + " | total |",
                  "| --- |" + " --- |" * (len(conditions) + 1)]
        for m in sorted({k[0] for k in table_}, key=list(methods).index):
            cells = [table_[(m, c)] for c in conditions]
            tw, tl = sum(w for w, _ in cells), sum(l_ for _, l_ in cells)
            lines.append(f"| {m} | " + " | ".join(f"{w}-{l_}" for w, l_ in cells)
                         + f" | {tw}-{tl} |")
        lines.append("")
    return "\n".join(lines)


def _md_to_html(md: str) -> str:
    out, in_table, header = [], False, False
    for line in md.splitlines():
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level + 1}>{html.escape(line.lstrip('#').strip())}</h{level + 1}>")
        elif line.startswith("| ---"):
            continue
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not in_table:
                out.append("<table border='1' style='border-collapse:collapse;font-size:12px'>")
                in_table, header = True, True
            tag = "th" if header else "td"
            header = False
            out.append("<tr>" + "".join(
                f"<{tag}>" + (f"<b>{html.escape(c[2:-2])}</b>" if c.startswith("**")
                              else html.escape(c)) + f"</{tag}>" for c in cells) + "</tr>")
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if line.startswith("- "):
                out.append(f"<p>• {html.escape(line[2:])}</p>")
            elif line.strip():
                out.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


def _write_report(out_dir, md, rows, conditions, methods, examples, atlas, config) -> Path:
    import json

    import mne

    from .viz import _mpl, plot_cortex, save_figure

    plt = _mpl()
    report = mne.Report(title=f"LightBunny generalisation benchmark v{BENCHMARK_VERSION}",
                        verbose=False)
    report.add_html(_md_to_html(md), title="Tables", tags=("tables",))
    colours = plt.get_cmap("tab20")
    for metric in KEY_METRICS:
        fig, ax = plt.subplots(figsize=(min(24.0, max(8.0, 1.2 * len(conditions))), 4.5))
        width = 0.8 / len(methods)
        for j, m in enumerate(methods):
            data = [[r[metric] for r in rows if r["condition"] == c and r["method"] == m
                     and np.isfinite(r[metric])] or [np.nan] for c in conditions]
            pos = np.arange(len(conditions)) + (j - (len(methods) - 1) / 2) * width
            bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                            showfliers=False)
            for box in bp["boxes"]:
                box.set_facecolor(colours(j % 20))
        ax.set_xticks(range(len(conditions)), conditions, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{metric} ({METRICS[metric]} is better)")
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours(j % 20)) for j in range(len(methods))]
        ax.legend(handles, methods, fontsize=6, ncol=4)
        fig.tight_layout()
        path = save_figure(fig, out_dir / "figures" / f"box_{metric}.png")
        report.add_image(path, title=f"box plot: {metric}", tags=("box-plots",))
    for (cname, i), ex in sorted(examples.items()):
        panels = ["truth"] + [m for m in ex if m not in ("truth", "centres")]
        fig = plt.figure(figsize=(13, 2.6 * len(panels)))
        sub = np.atleast_1d(fig.subfigures(len(panels), 1))
        for sf, name in zip(sub, panels):
            power = (ex[name] ** 2).mean(0)
            power = power / (power.max() or 1.0)
            plot_cortex(atlas, power, cmap="hot_r", symmetric=False,
                        title=f"{cname} sample {i}: {name}", fig=sf)
        path = save_figure(fig, out_dir / "figures" / f"cortex_{cname}_{i}.png")
        report.add_image(path, title=f"cortex: {cname}, sample {i}", tags=("cortex",))
    report.add_html(f"<pre>{html.escape(json.dumps(config, indent=2, default=str))}</pre>",
                    title="Parameters", tags=("parameters",))
    path = out_dir / "report.html"
    with atomic_path(path, suffix=".html") as tmp:
        report.save(str(tmp), open_browser=False, overwrite=True, verbose=False)
    return path
