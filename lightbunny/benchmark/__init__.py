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

Modules
-------
:mod:`~lightbunny.benchmark.conditions` (the suite, splits, one condition's samples, mismatch
leadfields, real noise), :mod:`~lightbunny.benchmark.methods` (learned, classical and sparse
runners, floor, ceiling), :mod:`~lightbunny.benchmark.scoring` (EMD, bootstrap CIs, fraction
best, win tables), :mod:`~lightbunny.benchmark.report` (markdown and HTML) and
:mod:`~lightbunny.benchmark.run` (:func:`run_benchmark`). Every public name is importable from
:mod:`lightbunny.benchmark`.
"""

from ..waveforms import make_waveform
from .conditions import (
    BENCHMARK_VERSION,
    CONDITIONS,
    EXTENTS,
    JITTER_MM,
    LEADFIELDS,
    MISMATCH_SKULL_S_PER_M,
    NOISES,
    SNRS_DB,
    SPLITS,
    ConditionSamples,
    _patch_key,  # noqa: F401 (used by the tests)
    centre_folds,
    exclude_centres,
    load_real_noise,
    make_condition,
    mismatch_leadfields,
    training_patch_set,
)
from .methods import CLASSICAL, DEFAULT_METHODS, FLOORS_CEILINGS, SPARSE, random_floor
from .report import CORTEX_METHODS, benchmark_markdown
from .run import BUDGETS, run_benchmark
from .scoring import (
    KEY_METRICS,
    METRICS,
    bootstrap_median_ci,
    emd,
    fraction_best,
    paired_win_loss,
    summarise,
    win_table,
)

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
    # also public, listed for the re-export
    "CLASSICAL",
    "CORTEX_METHODS",
    "DEFAULT_METHODS",
    "EXTENTS",
    "FLOORS_CEILINGS",
    "JITTER_MM",
    "KEY_METRICS",
    "LEADFIELDS",
    "METRICS",
    "MISMATCH_SKULL_S_PER_M",
    "NOISES",
    "SNRS_DB",
    "SPARSE",
    "SPLITS",
    "benchmark_markdown",
    "fraction_best",
    "load_real_noise",
    "mismatch_leadfields",
    "paired_win_loss",
    "summarise",
    "training_patch_set",
    "win_table",
]
