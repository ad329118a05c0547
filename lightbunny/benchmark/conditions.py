"""The benchmark's conditions: the suite, patch splits and the samples of one condition.

See :mod:`lightbunny.benchmark` for what each condition changes and the splits.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..waveforms import make_waveform
from ..waveforms import pink_noise as _pink

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
    "mismatch_jitter": _cond("head model", "electrodes jittered 5 mm",
                             leadfield="mismatch_jitter"),
    "combined": {"factor": "combined", "level": "all factors drawn, head model + jitter + real "
                                                "noise", "n_sources": (1, 2, 3), "extent": EXTENTS,
                 "waveform": ("burst", "smooth", "erp"), "noise": "real", "snr_db": SNRS_DB,
                 "leadfield": "mismatch_all"},
}

#: Electrode jitter (mm RMS) of ``mismatch_jitter``.
JITTER_MM = 5.0

#: Skull conductivity (S/m) of ``mismatch_head`` on atlases without a BEM (tvb76): the sphere's
#: default is 0.004 (brain/skull ratio 82); 0.01 (ratio 33) is within the range reported in
#: the literature, which is the head model's largest uncertainty.
MISMATCH_SKULL_S_PER_M = 0.01
_MISMATCH_OPTIONS = ("head_model", "skull_conductivity", "jitter_mm", "jitter_seed")


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
    from ..sources import Sources

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
        from ..sources import candidate_patches

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
    from ..sources import grow_patches

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
    """Simulate the samples of one condition (see :mod:`lightbunny.benchmark`).

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

    Each sample draws, from its own generator and in this order, its factors
    (:func:`_draw_factors`), its patches (:func:`_draw_patches`), its source activity
    (:func:`_source_activity`) and its noise (:func:`_draw_noise`).
    """
    forbidden = forbidden or set()
    nbs = _neighbour_lists(atlas)
    n_regions = atlas.n_regions
    pool, spike_pool, clip_sets = _centre_pools(spec, atlas, bank, clip_sets, allowed_centres)
    n_chans = gains["nominal"].shape[0]
    eeg = np.zeros((n_samples, n_times, n_chans))
    sig = np.zeros_like(eeg)
    noi = np.zeros_like(eeg)
    target = np.zeros((n_samples, n_times, n_regions))
    all_patches, all_centres, infos = [], [], []
    for i in range(n_samples):
        rng = np.random.default_rng([int(seed), 17, i])
        f = _draw_factors(spec, rng, gains)
        gain = np.asarray(gains[f["leadfield"]], dtype=np.float64)
        centre_pool = spike_pool if f["waveform"] == "spike" else pool
        patches, centres = _draw_patches(atlas, nbs, f["extent"], f["n_sources"], centre_pool,
                                         forbidden, max_tries, rng, name)
        j = _source_activity(atlas, patches, centres, f["waveform"], bank, clip_sets, n_times,
                             sfreq, rng)
        x = _ref(j @ gain.T)
        nz = _draw_noise(f["noise"], x, gain, real_noise, n_times, rng, f["snr_db"])
        sig[i], noi[i], eeg[i] = x, nz, x + nz
        target[i] = j / np.abs(j).max()
        all_patches.append(patches)
        all_centres.append(np.array(centres, dtype=np.int64))
        infos.append({**f, "patch_sizes": [len(p) for p in patches],
                      "hops": [_hops(nbs, c, p) for p, c in zip(patches, centres)]})
    return ConditionSamples(name, eeg, target, sig, noi, all_patches, all_centres, infos,
                            dict(spec))


def _neighbour_lists(atlas) -> list:
    return [np.flatnonzero(row) for row in np.asarray(atlas.adjacency, bool)]


def _centre_pools(spec, atlas, bank, clip_sets, allowed_centres):
    """The regions that may be centres, those of them with a test spike clip (None without
    spikes), and the test clips of every region."""
    from ..dataset import split_clips

    n_regions = atlas.n_regions
    pool = np.arange(n_regions) if allowed_centres is None else np.unique(
        np.asarray(allowed_centres, dtype=np.int64))
    if len(pool) == 0:
        raise ValueError("allowed_centres is empty.")
    if "spike" not in np.atleast_1d(spec["waveform"]).tolist():
        return pool, None, clip_sets
    if bank is None:
        raise ValueError("waveform 'spike' needs a spike bank (bank=...).")
    if clip_sets is None:
        clip_sets = {r: split_clips(bank.n_clips(r), region=r)["test"] for r in range(n_regions)}
    spike_pool = np.array([r for r in pool if len(clip_sets.get(int(r), ())) > 0])
    if len(spike_pool) == 0:
        raise ValueError("no allowed centre region has a test clip in the spike bank.")
    return pool, spike_pool, clip_sets


def _draw_factors(spec, rng, gains) -> dict:
    """One sample's factors, each drawn from ``spec`` where it is a tuple (in a fixed order)."""
    f = {"n_sources": int(_draw(spec["n_sources"], rng)),
         "extent": _draw(spec["extent"], rng),
         "waveform": _draw(spec["waveform"], rng),
         "noise": _draw(spec["noise"], rng),
         "snr_db": float(_draw(spec["snr_db"], rng)),
         "leadfield": _draw(spec["leadfield"], rng)}
    if f["leadfield"] not in gains:
        raise ValueError(f"leadfield {f['leadfield']!r} of the condition is not among the given "
                         f"gains {sorted(gains)}.")
    return f


def _draw_patches(atlas, nbs, extent, n_src, centre_pool, forbidden, max_tries, rng, name):
    """``n_src`` patches with distinct centres, none equal to a training patch.

    First centres outside the other patches (and patches without their centres) are tried,
    then, in a small pool (a centre-disjoint fold), only distinct centres.
    """
    used = np.zeros(atlas.n_regions, bool)  # regions of the patches so far
    is_centre = np.zeros(atlas.n_regions, bool)
    patches, centres = [], []
    for _ in range(n_src):
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
    return patches, centres


def _source_activity(atlas, patches, centres, family, bank, clip_sets, n_times, sfreq, rng):
    """Region activity (n_times, n_regions): each source's waveform on its patch, decaying
    from the centre (half-magnitude distance drawn once per sample)."""
    from ..sources import decay_weights

    h = rng.uniform(40.0, 60.0)
    j = np.zeros((n_times, atlas.n_regions))
    for p, c in zip(patches, centres):
        clip = None
        if family == "spike":
            cs = clip_sets[c]
            k = int(cs[rng.integers(len(cs))])
            clip = bank.clips(c)[k][:, c]
        wave = make_waveform(family, n_times, sfreq, rng, clip=clip) * rng.uniform(0.5, 1.0)
        w = np.ones(1) if len(p) == 1 else decay_weights(atlas.distances[c, p], h)
        j[:, p] += wave[:, None] * w[None, :]
    return j


def _draw_noise(kind, x, gain, real_noise, n_times, rng, snr):
    """Average-referenced noise of ``kind`` scaled so that the SNR against ``x`` is ``snr`` dB."""
    n_chans, n_regions = gain.shape
    if kind == "white":
        nz = rng.standard_normal((n_times, n_chans))
    elif kind == "coloured":
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
    return nz * scale


def _in_prior_condition(atlas, gains, n_samples, seed, bank, train_seed, leadfield,
                        forbidden) -> ConditionSamples:
    """The training recipe on a ``make_sources`` test split (training patches may repeat)."""
    from ..dataset import SyntheticEEGDataset
    from ..sources import make_sources

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
    nbs = _neighbour_lists(atlas)
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
# Leadfields for the mismatch conditions and the real noise
# ============================================================================================


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
    from ..leadfield import make_leadfield

    params = inspect.signature(make_leadfield).parameters
    missing = [k for k in _MISMATCH_OPTIONS if k not in params]
    if missing:
        why = (f"lightbunny.leadfield.make_leadfield has no {', '.join(missing)} option(s): this "
               "installation predates the head-model work (issue 12); pass mismatch= leadfields")
        return {k: (None, why) for k in ("mismatch_head", "mismatch_orientation",
                                         "mismatch_jitter", "mismatch_all")}
    from ..leadfield import in_fsaverage_space

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
    from ..atlas import resolve_data_dir
    from ..dataset import load_realistic_noise
    from ..montage import OLD_NAMES, read_eeglab_locations

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
