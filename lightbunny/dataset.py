"""The training dataset: (EEG, source) pairs mixed on the fly from spikes, patches and a leadfield.

Replaces the seed's ``dataset.py`` (which mixed one sample at a time, edited its cached spike
arrays in place and added no sensor noise). A :class:`SyntheticEEGDataset` combines

* a :class:`~lightbunny.sources.Sources` file (per sample, ``n_sources`` patches with decay
  weights),
* a :class:`~lightbunny.spikes.SpikeBank` (per region, 500-sample clips: the region's own spike
  waveform plus the background activity of every other region in the same window),
* a leadfield (``gain``, shape (n_chans, n_regions)),

into samples built for a whole batch at once with tensor operations (:meth:`get_batch`, on CPU
or on the model's device). ``dataset[i]`` is the same sample as NumPy arrays.

The default recipe (``recipe="lightbunny"``)
--------------------------------------------
For sample ``i`` with sources ``k`` (centre ``c_k``, patch regions ``P_k``, decay weights
``w_k``) and, per source, a clip ``j_k`` of region ``c_k`` drawn from the split's clips:

1. ``s_k(t) = clips(c_k)[j_k][t, c_k]`` is the spike waveform (mV);
   the source activity is ``J[t, r] = sum_k s_k(t) w_k[r]`` over patch regions (0 elsewhere);
2. ``background="clip"``: the background EEG is that of the first source's clip without its
   own centre column, ``B = clip @ G.T - s_1 G[:, c_1]``, i.e. every other region's ongoing
   activity, projected (the spikes are superimposed on it); ``"none"``: no background.
   With ``sbr_db`` the background is rescaled so that the source-to-background power ratio at
   the sensors is a value drawn from ``sbr_db``; otherwise the bank's own scaling (each spike at
   15 dB against its background) is kept;
3. ``X = ref(J @ G.T) + ref(B)`` where ``ref`` is the average reference followed by centring in
   time (both linear projections);
4. sensor noise at ``snr_db`` (drawn per sample): white Gaussian (optionally mixed with real
   resting-EEG segments, a fraction ``realistic_ratio`` of the noise power) whose expected power,
   after the same ``ref``, is ``P_signal * 10**(-snr/10)``, per channel
   (``noise_scope="channel"``, as DeepSIF, without its factor 1/2) or over all channels
   (``"global"``); so the realised SNR ``10 log10(||X||^2 / ||N||^2)`` is the requested one;
5. ``eeg = normalise_eeg(X + N)`` (:func:`lightbunny.inference.normalise_eeg`,
   ``'avgref-centre-maxabs/1'``: average reference, centre in time, divide by the maximum
   absolute value); ``target = J / max|J|``.

``recipe="seed"`` reproduces the seed's ``dataset.py`` exactly: for each source the whole clip
(all regions) is copied, its patch columns replaced by ``s_k * w_k``, the clip divided by its
maximum, the clips summed; EEG as above without noise (unless ``snr_db`` is given);
target = the summed activity at the patch regions divided by its maximum.
:func:`seed_sample_numpy` is that recipe written per sample in NumPy (the reference).

Randomness
----------
Every random choice of sample ``i`` (clips, SNR, SBR, noise segment, the noise itself) derives
from ``(seed, i)`` (``i`` is the sample's index in the sources file), so a sample does not depend
on the batch it is in or the number of workers. ``rng="generator"`` (default) seeds one CPU
:class:`torch.Generator` per sample from ``SeedSequence([seed, i])`` (noise drawn on the CPU and
moved to the device); ``rng="counter"`` computes everything as pure functions of
``(seed, i, position)`` with vectorised integer hashes on the batch's device (no per-sample
Python loop; meant for GPU batches).

Clip splits
-----------
Each region's clips are split once, by :func:`split_clips` (fractions ``clip_fractions``, seeded
by ``clip_seed`` and the region, independent of the dataset seed), into disjoint train, val and
test sets; a dataset uses the set of its sources file's split, so no waveform of the training
split is scored in validation or testing.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from ._logging import logger
from .inference import NORMALISATION, normalise_eeg
from .utils import check_option, read_only

RECIPES = ("lightbunny", "seed")
BACKGROUNDS = ("clip", "none")
NOISE_SCOPES = ("channel", "global")
RNGS = ("generator", "counter")
MISSING_CLIPS = ("raise", "skip", "neighbour")
_LOGGED: set = set()


def _log_once(level: int, msg: str, *args) -> None:
    """Log a message once per process (several datasets over one sources file, e.g. one per
    SNR in an evaluation, would otherwise repeat it)."""
    text = msg % args
    if text not in _LOGGED:
        _LOGGED.add(text)
        logger.log(level, text)


def _nearest_patch_region(sources, region: int, has_clips) -> int | None:
    """The region of ``region``'s own patches with the largest decay weight (the nearest, as
    weights decay with distance from the centre) for which ``has_clips(r)`` holds; ties go to
    the lower index. None when no patch region qualifies."""
    best = {}
    n_s = sources.n_sources
    for i, k in zip(*np.nonzero(sources.centres == region)):
        seg = i * n_s + k
        a, b = sources.offsets[seg], sources.offsets[seg + 1]
        for r, w in zip(sources.regions[a:b].tolist(), sources.weights[a:b].tolist()):
            if r != region and w > best.get(r, -np.inf):
                best[r] = w
    for r in sorted(best, key=lambda r: (-best[r], r)):
        if has_clips(r):
            return int(r)
    return None
SPLITS = ("train", "val", "test")

try:  # torch is a hard dependency, but keep `import lightbunny.dataset` cheap to fail clearly
    import torch
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover
    torch = None
    _TorchDataset = object


# ============================================================================================
# Pure helpers
# ============================================================================================


def _ref_centre_(x):
    """Average reference then centre in time, in place, of a tensor the caller owns (the first
    two steps of :func:`lightbunny.inference.normalise_eeg`)."""
    x.sub_(x.mean(dim=-1, keepdim=True))
    return x.sub_(x.mean(dim=-2, keepdim=True))


def scale_target(target, *, mode: str = "max_abs"):
    """Divide each sample's source activity by its maximum (absolute) value.

    Parameters
    ----------
    target : ndarray or torch.Tensor, shape (..., n_times, n_regions)
    mode : {'max_abs', 'max'}
        ``'max'`` is the seed's (signed maximum).
    """
    check_option("target scale", mode, ("max_abs", "max"))
    if torch is not None and isinstance(target, torch.Tensor):
        m = (target.abs() if mode == "max_abs" else target).amax(dim=(-2, -1), keepdim=True)
        m = torch.where(m != 0, m, torch.ones_like(m))
    else:
        t = np.abs(target) if mode == "max_abs" else np.asarray(target)
        m = t.max(axis=(-2, -1), keepdims=True)
        m = np.where(m != 0, m, 1.0)
    return target / m


def split_clips(n_clips: int, *, region: int, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict:
    """Split the clips of one region into disjoint train / val / test index sets.

    The order is a permutation seeded by ``(seed, region)``. Validation and test get
    ``round(n_clips * fraction)`` clips each, at least one when the fraction is positive and the
    region has 3 clips or more; the training set gets the rest (regions with fewer than 3
    clips give all their clips to training).

    Parameters
    ----------
    n_clips : int
    region : int
    fractions : (float, float, float)
        Train, val, test shares (normalised to sum 1).
    seed : int

    Returns
    -------
    sets : dict of str -> ndarray of int64
        Sorted clip indices of ``'train'``, ``'val'``, ``'test'``.

    Examples
    --------
    >>> s = split_clips(10, region=4)
    >>> [len(s[k]) for k in ("train", "val", "test")]
    [8, 1, 1]
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(f < 0) or f.sum() <= 0:
        raise ValueError(f"clip_fractions must be three non-negative shares (train, val, test), "
                         f"got {fractions!r}.")
    f = f / f.sum()
    n = int(n_clips)
    perm = np.random.default_rng([int(seed), 13, int(region)]).permutation(n)
    if n < 3:
        n_val = n_test = 0
    else:
        n_val = max(int(round(n * f[1])), 1 if f[1] > 0 else 0)
        n_test = max(int(round(n * f[2])), 1 if f[2] > 0 else 0)
        while n_val + n_test > n - (1 if f[0] > 0 else 0) and (n_val or n_test):
            if n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
    test = np.sort(perm[:n_test])
    val = np.sort(perm[n_test:n_test + n_val])
    train = np.sort(perm[n_test + n_val:])
    return {"train": train, "val": val, "test": test}


def load_realistic_noise(path) -> np.ndarray:
    """Real resting-EEG segments for realistic sensor noise.

    Reads DeepSIF's ``realistic_noise.mat`` (variable ``data``, 4 x 500 x 75, for the 75
    electrodes of ``electrode_75.mat``) or a ``.npy`` array.

    Returns
    -------
    segments : ndarray, shape (n_segments, n_times, n_chans), float32, read-only
    """
    path = Path(path)
    if path.suffix == ".npy":
        data = np.load(path)
    else:
        from scipy.io import loadmat

        data = loadmat(path)["data"]
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"{path}: realistic noise must be (n_segments, n_times, n_chans), "
                         f"got shape {data.shape}.")
    return read_only(data)


def seed_sample_numpy(clips, patches, gain):
    """The seed's recipe for one sample, per sample in NumPy (the reference implementation).

    Parameters
    ----------
    clips : sequence of ndarray, shape (n_times, n_regions)
        One clip per source (the clip of its centre region); not modified.
    patches : sequence of (ndarray of int, ndarray of float)
        ``(regions, weights)`` per source, centre first.
    gain : ndarray, shape (n_chans, n_regions)

    Returns
    -------
    eeg : ndarray, shape (n_times, n_chans)
        Centred in time, average reference, divided by its maximum absolute value.
    target : ndarray, shape (n_times, n_regions)
        Summed activity at the patch regions (0 elsewhere) divided by its maximum.
    """
    raw = None
    labels = []
    for clip, (regs, w) in zip(clips, patches):
        x = np.array(clip, dtype=np.float64)  # a copy: the seed edited its cache in place
        regs = np.asarray(regs)
        x[:, regs] = x[:, [regs[0]]] * np.asarray(w, dtype=np.float64)
        x /= x.max()
        raw = x if raw is None else raw + x
        labels.append(regs)
    eeg = raw @ np.asarray(gain, dtype=np.float64).T
    eeg -= eeg.mean(axis=0, keepdims=True)
    eeg -= eeg.mean(axis=1, keepdims=True)
    eeg /= np.abs(eeg).max()
    lb = np.concatenate(labels)
    target = np.zeros_like(raw)
    target[:, lb] = raw[:, lb]
    target /= target.max()
    return eeg, target


def _sample_key(seed: int, index: int) -> int:
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


# ---- counter-based random numbers (rng="counter"): pure functions of (seed, index, position),
# vectorised over the batch and computed on the batch's device

_M32 = 0xFFFFFFFF


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _counter_keys(seed: int, samples) -> np.ndarray:
    """One uint64 key per sample index, shape (n,)."""
    base = _splitmix64(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    return _splitmix64(base ^ _splitmix64(np.asarray(samples).astype(np.uint64)))


def _counter_uniforms(keys: np.ndarray, n_slots: int) -> np.ndarray:
    """Uniforms in [0, 1), shape (n, n_slots), from the sample keys."""
    with np.errstate(over="ignore"):
        z = _splitmix64(keys[:, None] + np.arange(1, n_slots + 1, dtype=np.uint64)[None, :]
                        * np.uint64(0xD1B54A32D192ED03))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _hash32(x):
    """A 32-bit integer hash (lowbias32) on int64 tensors holding values < 2**32."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def _counter_normals(keys: np.ndarray, n: int, device, dtype=None):
    """Standard normal noise, shape (len(keys), n), a pure function of each key (Box-Muller)."""
    k1 = torch.from_numpy((keys & np.uint64(_M32)).astype(np.int64)).to(device)[:, None]
    k2 = torch.from_numpy((keys >> np.uint64(32)).astype(np.int64)).to(device)[:, None]
    pos = torch.arange(n, device=device, dtype=torch.int64)[None, :]
    h1 = _hash32((_hash32(k1) + pos) & _M32)
    h2 = _hash32((_hash32(k2 ^ 0x5BD1E995) + pos) & _M32)
    u1 = (h1.to(torch.float64) + 0.5) * 2.0**-32
    u2 = h2.to(torch.float32) * 2.0**-32
    out = torch.sqrt(-2.0 * torch.log(u1)).to(torch.float32) * torch.cos(2.0 * math.pi * u2)
    return out if dtype is None else out.to(dtype)


# ============================================================================================
# The dataset
# ============================================================================================


class SyntheticEEGDataset(_TorchDataset):
    """(EEG, source) pairs mixed on the fly; see the module docstring for the recipe.

    Parameters
    ----------
    sources : Sources or path-like
        The sources file of one split (:func:`lightbunny.sources.make_sources`).
    bank : SpikeBank or path-like
        Spike clips (:class:`lightbunny.spikes.SpikeBank`); files are read lazily.
    leadfield : object with ``gain`` and ``atlas_name``, or ndarray, shape (n_chans, n_regions)
        From :func:`lightbunny.leadfield.make_leadfield`, or a plain gain matrix (then give
        ``atlas_name``).
    atlas_name : str, optional
        Atlas of a plain gain matrix (checked against the sources and the bank).
    seed : int
        Every random choice of sample ``i`` derives from ``(seed, i)``.
    recipe : {'lightbunny', 'seed'}
    snr_db : sequence of float, float, 'auto' or None
        Sensor SNR (dB) drawn per sample; None for no noise. ``'auto'``: (5, 10, 15, 20) for
        the lightbunny recipe, None for the seed recipe.
    noise_scope : {'channel', 'global'}
        SNR per channel (DeepSIF) or over all channels.
    realistic_noise : ndarray, shape (n_segments, n_noise_times, n_chans), optional
        Real resting-EEG segments (:func:`load_realistic_noise`), ``n_noise_times >= n_times``.
    realistic_ratio : float or sequence of float
        Share of the noise power taken by the real segments (0..1), drawn per sample.
    background : {'clip', 'none'}
        Background activity of the first source's clip (lightbunny recipe only).
    sbr_db : sequence of float, float or None
        Source-to-background power ratio at the sensors (dB), drawn per sample; None keeps the
        bank's scaling.
    clip_fractions : (float, float, float)
        Train / val / test shares of each region's clips (:func:`split_clips`).
    clip_seed : int
        Seed of the clip split (keep it equal across the datasets of one experiment).
    clip_split : {'train', 'val', 'test'}, optional
        Which clip set to use (default: the sources file's split).
    missing_clips : {'raise', 'skip', 'neighbour'}
        What to do with samples whose centre region has no clip in the split (a region
        whose simulation produced no detectable spike, or too few clips to give every split
        one): stop with an error, leave those samples out, or (``'neighbour'``, lightbunny
        recipe) give the region the split's clips of its nearest region that has some, so
        no sample is lost. "Nearest" is read from the sources file itself: among the regions
        of the region's own patches, the one with the largest decay weight (the weights decay
        with distance from the centre). The spike waveform then comes from that neighbour
        (its column of its clips; the background is the rest of the neighbour's clip) and is
        placed on the centre region's patch. Train/val/test clip sets stay disjoint. With
        the seed recipe (which copies whole clips) ``'neighbour'`` acts as ``'skip'``.
        :attr:`clip_donors` lists the substitutions.
    device : str or torch.device, optional
        Default device of :meth:`get_batch` (CPU).
    rng : {'generator', 'counter'}
        ``'generator'``: per sample, a CPU :class:`torch.Generator` seeded from
        ``SeedSequence([seed, i])`` draws the choices and the noise (fastest on CPU; noise is
        moved to the device). ``'counter'``: the choices come from a vectorised SplitMix64 of
        ``(seed, i, slot)`` and the noise from a 32-bit integer hash of ``(seed, i, position)``
        computed on the batch's device, with no per-sample Python loop (for GPU batches; the
        same sample on every device up to float rounding). The two modes give different
        (equally valid) samples.
    randomise : None, 'default', dict or Randomisation
        Domain randomisation (lightbunny recipe only; :mod:`lightbunny.randomise`): number of
        sources, extent, waveform family, amplitude, noise family and leadfield drawn per
        sample. None (default) keeps the recipe above unchanged.
    leadfields : sequence of leadfields or gain matrices, optional
        The leadfield ensemble of ``randomise`` (same channels and regions as ``leadfield``):
        other head models, jittered electrodes, other conductivities.

    Attributes
    ----------
    preprocessing : dict
        The centring and scaling applied to EEG and target (store it with the model).
    n_times, n_chans, n_regions, n_sources : int

    Examples
    --------
    >>> from lightbunny.atlas import make_synthetic_atlas
    >>> from lightbunny.sources import Sources
    >>> from lightbunny.spikes import SpikeBank
    >>> atlas = make_synthetic_atlas(n_regions=6)
    >>> src = Sources.from_patches([[[0, 1]], [[2]]], atlas=atlas)
    >>> rng = np.random.default_rng(0)
    >>> bank = SpikeBank.from_arrays({r: rng.normal(size=(4, 50, 6)) for r in range(6)},
    ...                              atlas_name="synthetic")
    >>> ds = SyntheticEEGDataset(src, bank, rng.normal(size=(5, 6)), atlas_name="synthetic")
    >>> eeg, target = ds.get_batch([0, 1])
    >>> tuple(eeg.shape), tuple(target.shape)
    ((2, 50, 5), (2, 50, 6))
    """

    def __init__(self, sources, bank, leadfield, *, atlas_name: str | None = None, seed: int = 0,
                 recipe: str = "lightbunny", snr_db="auto", noise_scope: str = "channel",
                 realistic_noise=None, realistic_ratio=0.0, background: str = "clip",
                 sbr_db=None, clip_fractions=(0.8, 0.1, 0.1), clip_seed: int = 0,
                 clip_split: str | None = None, missing_clips: str = "raise", device=None,
                 rng: str = "generator", randomise=None, leadfields=None):
        from .sources import Sources
        from .spikes import SpikeBank

        check_option("recipe", recipe, RECIPES)
        check_option("background", background, BACKGROUNDS)
        check_option("noise_scope", noise_scope, NOISE_SCOPES)
        check_option("missing_clips", missing_clips, MISSING_CLIPS)
        check_option("rng", rng, RNGS)
        self.rng = rng
        if not isinstance(sources, Sources):
            sources = Sources.load(sources)
        if isinstance(bank, (str, Path)):
            bank = SpikeBank.open(bank)
        self.sources = sources
        self.bank = bank
        self.seed = int(seed)
        self.epoch = 0
        self.recipe = recipe
        self.background = background if recipe == "lightbunny" else "seed"
        self.noise_scope = noise_scope

        # ---------------------------------------------------------------- leadfield and checks
        if hasattr(leadfield, "gain"):
            gain = np.asarray(leadfield.gain)
            lf_atlas = getattr(leadfield, "atlas_name", None)
            if atlas_name is not None and lf_atlas is not None and atlas_name != lf_atlas:
                raise ValueError(f"atlas_name {atlas_name!r} differs from the leadfield's atlas "
                                 f"{lf_atlas!r}.")
            lf_atlas = lf_atlas or atlas_name
            self.ch_names = list(getattr(leadfield, "ch_names", []) or [])
        else:
            gain = np.asarray(leadfield)
            if atlas_name is None:
                raise ValueError("a plain gain matrix needs atlas_name= (the atlas of its "
                                 "columns), to check it against the sources and the bank.")
            lf_atlas = atlas_name
            self.ch_names = []
        if gain.ndim != 2:
            raise ValueError(f"leadfield gain must be (n_chans, n_regions), got {gain.shape}.")
        names = {"sources file": sources.atlas_name, "spike bank": bank.atlas_name,
                 "leadfield": lf_atlas}
        if len(set(names.values())) != 1:
            raise ValueError("atlas mismatch: " + ", ".join(f"{k} made for {v!r}"
                                                            for k, v in names.items()) + ".")
        counts = {"sources file": sources.n_regions, "spike bank": bank.n_regions,
                  "leadfield": gain.shape[1]}
        if len(set(counts.values())) != 1:
            raise ValueError("region count mismatch: " + ", ".join(
                f"{k} has {v} regions" for k, v in counts.items()) + ".")
        self.atlas_name = sources.atlas_name
        self.gain = read_only(gain.astype(np.float32))
        self.n_chans, self.n_regions = gain.shape
        self.n_times = int(bank.n_times)
        self.n_sources = sources.n_sources
        self._gain_t = {}

        # ---------------------------------------------------------------- noise options
        if isinstance(snr_db, str):
            check_option("snr_db", snr_db, ("auto",))
            snr_db = (5.0, 10.0, 15.0, 20.0) if recipe == "lightbunny" else None
        self.snr_db = None if snr_db is None else np.atleast_1d(np.asarray(snr_db, float))
        self.sbr_db = None if sbr_db is None else np.atleast_1d(np.asarray(sbr_db, float))
        if self.sbr_db is not None and self.background != "clip":
            raise ValueError(f"sbr_db needs background='clip' and the lightbunny recipe "
                             f"(got background={background!r}, recipe={recipe!r}).")
        self.realistic_ratio = np.atleast_1d(np.asarray(realistic_ratio, float))
        if np.any((self.realistic_ratio < 0) | (self.realistic_ratio > 1)):
            raise ValueError(f"realistic_ratio must lie in [0, 1], got {realistic_ratio!r}.")
        if realistic_noise is not None:
            realistic_noise = np.asarray(realistic_noise, dtype=np.float32)
            if realistic_noise.ndim != 3 or realistic_noise.shape[2] != self.n_chans:
                raise ValueError(f"realistic_noise must be (n_segments, n_times, n_chans={self.n_chans}"
                                 f") to match the leadfield; got {realistic_noise.shape}.")
            if realistic_noise.shape[1] < self.n_times:
                raise ValueError(f"realistic_noise segments have {realistic_noise.shape[1]} "
                                 f"samples, fewer than the clips' n_times ({self.n_times}).")
            realistic_noise = read_only(realistic_noise)
        elif np.any(self.realistic_ratio > 0):
            raise ValueError("realistic_ratio > 0 needs realistic_noise (segments of real EEG).")
        self.realistic_noise = realistic_noise
        if self.snr_db is None and realistic_noise is not None:
            raise ValueError("realistic_noise needs snr_db (the noise level).")

        self._init_randomisation(randomise, leadfields, recipe)

        # ---------------------------------------------------------------- clip sets
        self.clip_split = sources.split if clip_split is None else clip_split
        check_option("clip_split", self.clip_split, SPLITS)
        self.clip_fractions = tuple(float(x) for x in clip_fractions)
        self.clip_seed = int(clip_seed)
        needed = np.unique(sources.centres)

        def own_set(r):
            sets = split_clips(bank.n_clips(int(r)), region=int(r), fractions=self.clip_fractions,
                               seed=self.clip_seed)
            return read_only(sets[self.clip_split])

        self._clip_sets = {int(r): own_set(r) for r in needed}
        #: region -> region whose clips it uses (itself unless a neighbour's were borrowed)
        self._donor = {int(r): int(r) for r in needed}
        missing = np.array([r for r in needed if len(self._clip_sets[int(r)]) == 0], dtype=np.int64)
        if len(missing) and missing_clips == "neighbour" and recipe != "seed":
            borrowed = {}
            for r in missing.tolist():
                q = _nearest_patch_region(sources, r, lambda q: bank.n_clips(q) > 0
                                          and len(own_set(q)) > 0)
                if q is not None:
                    self._clip_sets[r] = own_set(q)
                    self._donor[r] = q
                    borrowed[r] = q
            if borrowed:
                _log_once(logging.INFO, "%d centre regions of the %s sources file (%s) have no "
                          "clip in the spike bank's %r clip set; they use their nearest patch "
                          "neighbour's %s clips: %s", len(borrowed), sources.split,
                          sources.atlas_name, self.clip_split, self.clip_split,
                          ", ".join(f"{r}<-{q}" for r, q in borrowed.items()))
            missing = np.array([r for r in missing if r not in borrowed], dtype=np.int64)
        keep = np.arange(sources.n_samples)
        if len(missing):
            bad = np.isin(sources.centres, missing).any(axis=1)
            msg = (f"{len(missing)} centre regions of the sources file ({sources.atlas_name}, "
                   f"split {sources.split!r}) have no clip in the spike bank's "
                   f"{self.clip_split!r} clip set: regions {missing[:20].tolist()}"
                   f"{' ...' if len(missing) > 20 else ''} ({int(bad.sum())} of "
                   f"{sources.n_samples} samples)")
            if missing_clips == "raise":
                raise ValueError(msg + "; simulate those regions, or pass missing_clips="
                                       "'neighbour' to use a neighbouring region's clips, or "
                                       "'skip' to drop their samples.")
            hint = ("the seed recipe copies whole clips, so no neighbour's can stand in"
                    if recipe == "seed" else
                    "missing_clips='neighbour' keeps them with a neighbouring region's clips")
            _log_once(logging.WARNING, "%s; dropping those samples (%s).", msg, hint)
            keep = keep[~bad]
        self._samples = read_only(keep)
        n_set = np.zeros(self.n_regions, dtype=np.int64)
        for r, clip_set in self._clip_sets.items():
            n_set[r] = len(clip_set)
        self._n_set = read_only(n_set)
        self._waves = {}  # region -> (n_set, n_times) float32 read-only
        self._proj = {}  # region -> (n_set, n_times, n_chans) float32 read-only: clip @ gain.T
        self._colmax = {}  # region -> (n_set, n_regions) float32 read-only: max over time
        self.device = torch.device("cpu") if device is None else torch.device(device)

    def _init_randomisation(self, randomise, leadfields, recipe):
        from .randomise import RandomisedDraws, resolve_randomisation

        self.randomise = resolve_randomisation(randomise)
        ens = []
        for k, lf in enumerate(leadfields or ()):
            g = np.asarray(lf.gain if hasattr(lf, "gain") else lf, dtype=np.float32)
            if g.shape != self.gain.shape:
                raise ValueError(f"leadfields[{k}] has shape {g.shape}; the ensemble must match "
                                 f"the nominal leadfield's (n_chans, n_regions) {self.gain.shape}.")
            names = list(getattr(lf, "ch_names", []) or [])
            if names and self.ch_names and names != self.ch_names:
                raise ValueError(f"leadfields[{k}] has other channels than the nominal leadfield.")
            ens.append(g)
        if ens and self.randomise is None:
            raise ValueError("leadfields= (an ensemble) needs randomise= to draw from it.")
        if self.randomise is not None and recipe == "seed":
            raise ValueError("randomise= needs the lightbunny recipe (the seed recipe copies "
                             "whole clips).")
        self.n_ensemble = len(ens)
        self._rand = None
        if self.randomise is not None:
            self._rand = RandomisedDraws(
                self.randomise, n_times=self.n_times, sfreq=float(getattr(self.bank, "sfreq", 500.0)),
                gains=[self.gain] + ens, has_real=self.realistic_noise is not None)

    # ------------------------------------------------------------------ description
    @property
    def preprocessing(self) -> dict:
        """Centring and scaling of EEG and target, as a plain dict (store it with a model)."""
        return {
            "eeg": {"normalisation": NORMALISATION, "reference": "average",
                    "centre": "time", "scale": "max_abs", "per": "sample"},
            "target": {"function": "lightbunny.dataset.scale_target",
                       "scale": "max" if self.recipe == "seed" else "max_abs", "per": "sample",
                       "regions": "patch regions only (0 elsewhere)"},
            "n_times": self.n_times, "n_chans": self.n_chans, "n_regions": self.n_regions,
            "sfreq": float(getattr(self.bank, "sfreq", 500.0)), "ch_names": list(self.ch_names),
            "atlas_name": self.atlas_name,
        }

    def config(self) -> dict:
        """Every parameter of the mixing, as a plain dict."""
        return {
            "recipe": self.recipe, "seed": self.seed, "background": self.background,
            "snr_db": None if self.snr_db is None else self.snr_db.tolist(),
            "noise_scope": self.noise_scope,
            "realistic_noise": None if self.realistic_noise is None
            else list(self.realistic_noise.shape),
            "realistic_ratio": self.realistic_ratio.tolist(),
            "sbr_db": None if self.sbr_db is None else self.sbr_db.tolist(),
            "clip_fractions": list(self.clip_fractions), "clip_seed": self.clip_seed,
            "clip_split": self.clip_split, "sources_split": self.sources.split, "rng": self.rng,
            "n_samples": len(self), "atlas_name": self.atlas_name,
            "randomise": None if self.randomise is None else self.randomise.to_dict(),
            "n_ensemble": self.n_ensemble,
        }

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def sample_indices(self) -> np.ndarray:
        """Index in the sources file of each dataset item (items whose centre region has no
        clip are left out with ``missing_clips='skip'``), shape (len(self),), read-only."""
        return self._samples

    def set_epoch(self, epoch: int) -> "SyntheticEEGDataset":
        """Draw new samples for training epoch ``epoch`` (0-based), from the same patches.

        Epoch 0 gives the dataset's own samples (those of ``seed``); every other epoch draws
        the random choices of sample ``i`` (spike clips, SNR, SBR, noise) from ``(seed,
        epoch, i)`` instead, so a training run sees ``len(self)`` new (EEG, source) pairs each
        epoch at no cost (the patches stay those of the sources file). Deterministic, so a
        resumed run replays the same epochs. :func:`lightbunny.train.train` calls it with
        ``resample=True``.

        Examples
        --------
        >>> from lightbunny.atlas import make_synthetic_atlas
        >>> from lightbunny.sources import Sources
        >>> from lightbunny.spikes import SpikeBank
        >>> atlas = make_synthetic_atlas(n_regions=4)
        >>> rng = np.random.default_rng(0)
        >>> bank = SpikeBank.from_arrays({r: rng.normal(size=(6, 20, 4)) for r in range(4)},
        ...                              atlas_name="synthetic")
        >>> ds = SyntheticEEGDataset(Sources.from_patches([[[0]], [[1]]], atlas=atlas), bank,
        ...                          rng.normal(size=(3, 4)), atlas_name="synthetic")
        >>> a = ds.get_batch([0])[0]
        >>> bool((ds.set_epoch(1).get_batch([0])[0] != a).any())
        True
        >>> bool((ds.set_epoch(0).get_batch([0])[0] == a).all())
        True
        """
        if not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}.")
        self.epoch = int(epoch)
        return self

    def _draw_seed(self) -> int:
        """Seed of the per-sample draws: ``seed`` at epoch 0, else derived from (seed, epoch)."""
        if self.epoch == 0:
            return self.seed
        state = np.random.SeedSequence([self.seed, 0x5EED, self.epoch]).generate_state(1)
        return int(state[0])

    def __repr__(self) -> str:
        return (f"SyntheticEEGDataset(n_samples={len(self)}, atlas={self.atlas_name!r}, "
                f"split={self.sources.split!r}, recipe={self.recipe!r}, n_chans={self.n_chans}, "
                f"n_times={self.n_times})")

    @property
    def clip_donors(self) -> dict:
        """Centre regions that use another region's clips: ``{region: donor region}``."""
        return {r: q for r, q in self._donor.items() if r != q}

    def clip_set(self, region: int) -> np.ndarray:
        """Bank clip indices of ``region`` that this dataset draws from (read-only)."""
        return self._clip_sets[int(region)]

    # ------------------------------------------------------------------ caches
    def _region_waves(self, r: int) -> np.ndarray:
        w = self._waves.get(r)
        if w is None:
            q = self._donor.get(r, r)
            clips = self.bank.clips(q)
            w = read_only(np.ascontiguousarray(clips[self._clip_sets[r], :, q], dtype=np.float32))
            self._waves[r] = w
        return w

    def _region_proj(self, r: int) -> np.ndarray:
        """Sensor projection ``clip @ gain.T`` of the region's clips, (n_set, n_times, n_chans)."""
        b = self._proj.get(r)
        if b is None:
            clips = np.asarray(self.bank.clips(self._donor.get(r, r))[self._clip_sets[r]],
                               dtype=np.float32)
            b = read_only(np.ascontiguousarray(clips @ self.gain.T, dtype=np.float32))
            self._proj[r] = b
            if self.recipe == "seed":
                self._colmax[r] = read_only(clips.max(axis=1))
        return b

    def _region_colmax(self, r: int) -> np.ndarray:
        """Maximum over time of every region's column in each clip, (n_set, n_regions)."""
        if r not in self._colmax:
            clips = np.asarray(self.bank.clips(self._donor.get(r, r))[self._clip_sets[r]],
                               dtype=np.float32)
            self._colmax[r] = read_only(clips.max(axis=1))
        return self._colmax[r]

    def precompute(self, progress: bool = True) -> "SyntheticEEGDataset":
        """Fill the per-region caches (spike waveforms; projected backgrounds) now.

        Call it before handing the dataset to forked DataLoader workers so they share the
        caches. The projection cache holds ``n_clips * n_times * n_chans`` floats (about 2 GB for
        15,000 clips at 64 channels); the seed recipe also keeps ``n_clips * n_regions``
        column maxima.
        """
        from tqdm.auto import tqdm

        regions = sorted(self._clip_sets)
        if self.recipe == "seed":
            projected = set(regions)
        elif self.background == "clip":
            projected = set(np.unique(self.sources.centres[self._samples, 0]).tolist())
        else:
            projected = set()
        for r in tqdm(regions, desc="caching clips", disable=not progress, leave=False):
            if len(self._clip_sets[r]) == 0:
                continue
            self._region_waves(r)
            if r in projected:
                self._region_proj(r)
                if self.recipe == "seed":
                    self._region_colmax(r)
        return self

    def _gain_on(self, device):
        key = str(device)
        g = self._gain_t.get(key)
        if g is None:
            g = torch.from_numpy(np.array(self.gain)).to(device)
            self._gain_t[key] = g
        return g

    # ------------------------------------------------------------------ random draws
    def _draw(self, indices):
        """Per-sample random choices (and, rng='generator', the raw white noise).

        Every number derives from (seed, sample index) only.
        """
        src = self._samples[np.asarray(indices, dtype=np.int64)]
        n, s = len(src), self.n_sources
        need_noise = self.snr_db is not None
        keys, white = None, None
        if self.rng == "counter":
            keys = _counter_keys(self._draw_seed(), src)
            u = _counter_uniforms(keys, s + 5)
        else:
            u = np.empty((n, s + 5))
            white = torch.empty((n, self.n_times, self.n_chans)) if need_noise else None
            gen = torch.Generator()
            draw_seed = self._draw_seed()
            for b, i in enumerate(src):
                gen.manual_seed(_sample_key(draw_seed, i))
                u[b] = torch.rand(s + 5, generator=gen, dtype=torch.float64).numpy()
                if need_noise:
                    white[b] = torch.randn((self.n_times, self.n_chans), generator=gen)

        def pick(uu, n_options):
            return np.minimum((uu * n_options).astype(np.int64), np.asarray(n_options) - 1)

        centres = self.sources.centres[src]
        clip_pos = pick(u[:, :s], self._n_set[centres])
        snr = np.full(n, np.nan)
        sbr = np.full(n, np.nan)
        ratio = np.zeros(n)
        seg = np.zeros(n, dtype=np.int64)
        offset = np.zeros(n, dtype=np.int64)
        if need_noise:
            snr = self.snr_db[pick(u[:, s], len(self.snr_db))]
            ratio = self.realistic_ratio[pick(u[:, s + 2], len(self.realistic_ratio))]
            if self.realistic_noise is not None:
                n_seg, n_t = self.realistic_noise.shape[:2]
                seg = pick(u[:, s + 3], n_seg)
                offset = pick(u[:, s + 4], n_t - self.n_times + 1)
        if self.sbr_db is not None:
            sbr = self.sbr_db[pick(u[:, s + 1], len(self.sbr_db))]
        clips = np.array([[self._clip_sets[int(c)][p] for c, p in zip(cr, pr)]
                          for cr, pr in zip(centres, clip_pos)], dtype=np.int64).reshape(n, s)
        return {"sample": src, "centres": centres, "clip_pos": clip_pos, "clips": clips,
                "snr_db": snr, "sbr_db": sbr, "realistic_ratio": ratio, "segment": seg,
                "segment_offset": offset, "white": white, "keys": keys}

    def sample_info(self, index: int) -> dict:
        """What sample ``index`` is made of: patches, bank clips, SNR, SBR, noise segment.

        Returns
        -------
        info : dict
            ``sample`` (index in the sources file), ``centres`` (n_sources,), ``clips``
            (bank clip index of each source's centre region), ``patches`` (list of
            (regions, weights)), ``snr_db``, ``sbr_db``, ``realistic_ratio``, ``segment``,
            ``half_distance`` (mm).
        """
        d = self._draw([index])
        i = int(d["sample"][0])
        return {"sample": i, "centres": d["centres"][0].tolist(), "clips": d["clips"][0].tolist(),
                "patches": self.sources.patches(i), "snr_db": float(d["snr_db"][0]),
                "sbr_db": float(d["sbr_db"][0]), "realistic_ratio": float(d["realistic_ratio"][0]),
                "segment": int(d["segment"][0]),
                "half_distance": float(self.sources.half_distance[i])}

    # ------------------------------------------------------------------ batch building
    def _patch_matrix(self, src):
        """Dense decay weights (B, S, R) and patch membership (B, S, R) of samples ``src``."""
        s = self.n_sources
        seg = (src[:, None] * s + np.arange(s)).ravel()
        starts = self.sources.offsets[seg]
        lens = self.sources.offsets[seg + 1] - starts
        rows = np.repeat(np.arange(len(seg)), lens)
        pos = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts,
                                                                                           lens)
        regs = self.sources.regions[pos]
        w = np.zeros((len(seg), self.n_regions), dtype=np.float32)
        w[rows, regs] = self.sources.weights[pos]
        member = np.zeros((len(seg), self.n_regions), dtype=bool)
        member[rows, regs] = True
        shape = (len(src), s, self.n_regions)
        return w.reshape(shape), member.reshape(shape)

    def _noise(self, signal, d, device, coloured=None):
        """Sensor noise for ``signal`` (B, T, C, already referenced) at the drawn SNRs.

        ``coloured`` (B, T, C), with ``d['coloured_ratio']``: another noise family mixed in
        like the real segments (randomisation)."""
        n_b, n_t, n_c = signal.shape
        snr = torch.as_tensor(d["snr_db"], dtype=signal.dtype, device=device)
        if self.noise_scope == "global":
            p_sig = signal.pow(2).mean(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        else:
            p_sig = signal.pow(2).mean(dim=1, keepdim=True)  # (B, 1, C)
        p_noise = p_sig * torch.pow(10.0, -snr / 10.0).view(-1, 1, 1)
        ratio = torch.as_tensor(d["realistic_ratio"], dtype=signal.dtype,
                                device=device).view(-1, 1, 1)
        # white noise: referencing removes a (1/C) + (1/T) share of its power; compensate
        keep = (1.0 - 1.0 / n_c) * (1.0 - 1.0 / n_t)
        if d["white"] is not None:
            white = d["white"].to(device=device, dtype=signal.dtype)
        else:  # rng="counter": drawn on the device
            white = _counter_normals(d["keys"], n_t * n_c, device, signal.dtype).view(n_b, n_t, n_c)
        c_ratio = 0.0
        if coloured is not None:
            c_ratio = torch.as_tensor(d["coloured_ratio"], dtype=signal.dtype,
                                      device=device).view(-1, 1, 1)
        white_share = torch.clamp(1.0 - ratio - c_ratio, min=0.0)
        noise = _ref_centre_(white * torch.sqrt(white_share * p_noise / keep))
        if self.realistic_noise is not None and np.any(d["realistic_ratio"] > 0):
            segs = np.stack([self.realistic_noise[g, o:o + n_t]
                             for g, o in zip(d["segment"], d["segment_offset"])])
            real = torch.from_numpy(segs).to(device=device, dtype=signal.dtype)
            noise = noise + self._scaled_part(real, ratio * p_noise)
        if coloured is not None and np.any(d["coloured_ratio"] > 0):
            noise = noise + self._scaled_part(coloured.to(signal.dtype), c_ratio * p_noise)
        return noise

    def _scaled_part(self, part, power):
        """``part`` referenced and scaled to ``power`` (per channel or over all channels)."""
        part = _ref_centre_(part.clone())
        dims = (1, 2) if self.noise_scope == "global" else 1
        p = part.pow(2).mean(dim=dims, keepdim=True)
        p = torch.where(p > 0, p, torch.ones_like(p))
        return part * torch.sqrt(power / p)

    def _patch_peak(self, waves, w_np, member_np, device):
        """max |sum_k s_k(t) w_k[r]| over time and the patch regions, shape (B, 1, 1)."""
        union = member_np.any(axis=1)  # (B, R)
        n_union = int(union.sum(axis=1).max())
        cols = np.argsort(~union, axis=1, kind="stable")[:, :n_union]  # union regions first
        wc = np.take_along_axis(w_np, np.repeat(cols[:, None, :], w_np.shape[1], axis=1), 2)
        wc = torch.from_numpy(np.ascontiguousarray(wc)).to(device)
        compact = torch.bmm(waves.transpose(1, 2), wc)  # (B, T, n_union)
        peak = compact.abs().amax(dim=(1, 2), keepdim=True)
        return torch.where(peak > 0, peak, torch.ones_like(peak))

    def get_batch(self, indices, device=None, *, out=None, return_parts: bool = False):
        """Mix a whole batch with tensor operations.

        Parameters
        ----------
        indices : sequence of int
            Dataset indices (``0 .. len(self) - 1``).
        device : str or torch.device, optional
            Where to build the batch (default: the dataset's ``device``).
        out : (torch.Tensor, torch.Tensor), optional
            Preallocated ``(eeg, target)`` buffers of the output shapes on ``device`` to fill
            (saves the page faults of allocating a fresh (batch, n_times, n_regions) target per
            batch; the caller must not hold on to a previous batch in the same buffers).
        return_parts : bool
            Also return a dict with the unscaled parts: ``source_eeg`` (B, T, C, the projected
            patch activity, not referenced), ``background_eeg`` (B, T, C, referenced, after the
            SBR scaling), ``noise`` (B, T, C, referenced), ``activity`` (B, T, R, unscaled
            target) and the draws (``snr_db``, ``clips``, ...).

        Returns
        -------
        eeg : torch.Tensor, shape (batch, n_times, n_chans), float32
            :func:`normalise_eeg` of the noisy sensor signal.
        target : torch.Tensor, shape (batch, n_times, n_regions), float32
            Source activity of the patch regions, divided by its maximum absolute value.
        """
        device = self.device if device is None else torch.device(device)
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range 0..{len(self) - 1}: {idx.tolist()[:10]}")
        idx = np.where(idx < 0, idx + len(self), idx)
        d = self._draw(idx)
        src = d["sample"]
        n_b, s = len(src), self.n_sources
        w_np, member_np = self._patch_matrix(src)
        gain = self._gain_on(device)
        rnd = None
        if self._rand is not None:
            rnd = self._rand.draw(self._draw_seed(), src, s)
            w_np, member_np = self._rand.restrict(w_np, member_np, d["centres"], rnd)
        weights = torch.from_numpy(w_np).to(device)
        if self.recipe == "seed":
            eeg_clean, activity, parts = self._seed_batch(d, w_np, member_np, gain, device)
        else:
            waves = np.stack([self._region_waves(int(c))[p] for c, p in
                              zip(d["centres"].ravel(), d["clip_pos"].ravel())])
            waves = torch.from_numpy(waves.reshape(n_b, s, self.n_times)).to(device)
            spikes = waves
            if rnd is not None:
                waves = self._rand.waves(spikes, rnd)
            # the target's maximum from the patch regions only (B, T, n_union), then one dense
            # write of the already-scaled target
            peak = self._patch_peak(waves, w_np, member_np, device)
            activity = torch.bmm((waves / peak).transpose(1, 2), weights,
                                 out=None if out is None else out[1])
            g_b = None if rnd is None else self._rand.gains_for(rnd, device)
            if g_b is None:
                source_eeg = torch.bmm(waves.transpose(1, 2), weights @ gain.T)
            else:  # per-sample leadfields of the ensemble
                source_eeg = torch.bmm(waves.transpose(1, 2), torch.bmm(weights, g_b.transpose(1, 2)))
            signal = _ref_centre_(source_eeg.clone())
            bg = None
            if self.background == "clip":
                c1 = d["centres"][:, 0]
                bg = np.stack([self._region_proj(int(c))[p] for c, p in
                               zip(c1, d["clip_pos"][:, 0])])
                bg = torch.from_numpy(bg).to(device)
                # remove the first source's spike (the clip's own region column: the centre,
                # or the neighbour whose clips it borrowed) from its clip
                own = np.array([self._donor.get(int(c), int(c)) for c in c1], dtype=np.int64)
                bg -= spikes[:, 0, :, None] * gain.T[torch.as_tensor(own, device=device)][:, None, :]
                bg = _ref_centre_(bg)
                if self.sbr_db is not None:
                    p_s = signal.pow(2).mean(dim=(1, 2), keepdim=True)
                    p_b = bg.pow(2).mean(dim=(1, 2), keepdim=True)
                    sbr = torch.as_tensor(d["sbr_db"], dtype=bg.dtype, device=device).view(-1, 1, 1)
                    fac = torch.sqrt(p_s / (torch.where(p_b > 0, p_b, torch.ones_like(p_b))
                                            * torch.pow(10.0, sbr / 10.0)))
                    bg = bg * fac
                signal += bg
            eeg_clean = signal
            parts = {"source_eeg": source_eeg, "background_eeg": bg}
        noise = None
        if self.snr_db is not None:
            coloured = None
            if rnd is not None:
                d, coloured = self._randomised_noise(d, rnd, device)
            noise = self._noise(eeg_clean, d, device, coloured)
            eeg = normalise_eeg(eeg_clean + noise)
        else:
            eeg = normalise_eeg(eeg_clean)
        target = activity  # scaled by construction (max |.| or, seed recipe, signed max)
        if out is not None:
            out[0].copy_(eeg)
            eeg = out[0]
            if target is not out[1]:
                out[1].copy_(target)
                target = out[1]
        if not return_parts:
            return eeg, target
        parts.update({"noise": noise, "signal": eeg_clean,
                      "activity": activity * peak if self.recipe != "seed" else activity})
        parts.update({k: v for k, v in d.items() if k != "white"})
        if rnd is not None:
            parts["randomise"] = rnd
        return eeg, target, parts

    def _randomised_noise(self, d, rnd, device):
        """The draws ``d`` with the noise family of the randomisation, and its coloured noise."""
        from .randomise import NOISE_FAMILIES

        fam = rnd["noise_family"]
        d = dict(d)
        d["realistic_ratio"] = np.where(fam == NOISE_FAMILIES.index("real"), 1.0, 0.0)
        d["coloured_ratio"] = np.where(fam == NOISE_FAMILIES.index("coloured"), 1.0, 0.0)
        coloured = None
        if d["coloured_ratio"].any():
            coloured = self._rand.coloured_noise(rnd, device)
        return d, coloured

    def _seed_batch(self, d, w_np, member_np, gain, device):
        """The seed's recipe for a batch, without materialising every clip.

        Per source ``k`` the seed's modified clip is ``x_k = clip_k`` with the patch columns
        replaced by ``s_k w_k``, divided by its maximum ``m_k``. Then
        ``x_k @ G.T = (clip_k @ G.T - clip_k[:, P_k] @ G[:, P_k].T + s_k (G w_k)) / m_k`` uses the
        cached projection of the clip, and ``m_k`` the cached per-column maxima; only the
        columns of the patch regions are gathered from the clip.
        """
        n_b, s = d["centres"].shape
        n_t, n_r = self.n_times, self.n_regions
        union = member_np.any(axis=1)  # (B, R)
        n_u = int(union.sum(axis=1).max())
        cols = np.argsort(~union, axis=1, kind="stable")[:, :n_u]  # (B, U) union regions first
        valid = np.take_along_axis(union, cols, 1)  # (B, U)
        clip_u = np.empty((n_b, s, n_t, n_u), np.float32)
        waves = np.empty((n_b, s, n_t), np.float32)
        proj = np.empty((n_b, s, n_t, self.n_chans), np.float32)
        colmax = np.empty((n_b, s, n_r), np.float32)
        for b in range(n_b):
            for k in range(s):
                c, p, j = int(d["centres"][b, k]), int(d["clip_pos"][b, k]), int(d["clips"][b, k])
                clip_u[b, k] = self.bank.clips(self._donor.get(c, c))[j][:, cols[b]]
                waves[b, k] = self._region_waves(c)[p]
                proj[b, k] = self._region_proj(c)[p]
                colmax[b, k] = self._region_colmax(c)[p]
        # the seed's per-clip maximum, max over (time, region) of the modified clip
        outside = np.where(member_np, -np.inf, colmax).max(axis=2)  # (B, S)
        w_hi = np.where(member_np, w_np, -np.inf).max(axis=2)
        w_lo = np.where(member_np, w_np, np.inf).min(axis=2)
        s_max = waves.max(axis=2)
        peak = np.maximum(outside, np.where(s_max >= 0, s_max * w_hi, s_max * w_lo))
        peak = np.where(peak != 0, peak, 1.0).astype(np.float32)
        idx3 = np.repeat(cols[:, None, :], s, axis=1)
        mem_u = np.take_along_axis(member_np, idx3, 2) & valid[:, None, :]  # (B, S, U)
        w_u = np.take_along_axis(w_np, idx3, 2) * mem_u
        to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        clip_u, waves, proj, peak_t = to(clip_u), to(waves), to(proj), to(peak)[:, :, None, None]
        mem_u, w_u, cols_t = to(mem_u), to(w_u), to(cols)
        g_u = gain.T[cols_t] * to(valid)[:, :, None]  # (B, U, C)
        patch_part = clip_u * mem_u[:, :, None, :]
        eeg = (proj - torch.einsum("bstu,buc->bstc", patch_part, g_u)
               + waves[..., None] * (to(w_np) @ gain.T)[:, :, None, :])
        eeg = _ref_centre_((eeg / peak_t).sum(dim=1))
        modified = torch.where(mem_u[:, :, None, :], waves[..., None] * w_u[:, :, None, :], clip_u)
        compact = (modified / peak_t).sum(dim=1) * to(valid)[:, None, :]  # (B, T, U)
        top = compact.amax(dim=(1, 2), keepdim=True)
        compact = compact / torch.where(top != 0, top, torch.ones_like(top))
        target = torch.zeros((n_b, n_t, n_r), device=device)
        target.scatter_(2, cols_t[:, None, :].expand(n_b, n_t, n_u), compact)
        return eeg, target, {"activity_max": top}

    def __getitem__(self, index):
        """Sample ``index`` as NumPy arrays ``(eeg (n_times, n_chans), target (n_times,
        n_regions))``, float32: row 0 of ``get_batch([index], device='cpu')``."""
        if isinstance(index, slice):
            raise TypeError("use get_batch(indices) for several samples")
        eeg, target = self.get_batch([int(index)], device="cpu")
        return eeg[0].numpy(), target[0].numpy()

    def __getitems__(self, indices):
        """Batched fetch used by ``torch.utils.data.DataLoader`` (one mix per batch)."""
        eeg, target = self.get_batch(indices, device="cpu")
        return [(e, t) for e, t in zip(eeg.numpy(), target.numpy())]


def make_dataset(sources, bank, leadfield, **kwargs) -> SyntheticEEGDataset:
    """Build a :class:`SyntheticEEGDataset` (paths or objects; see its parameters)."""
    return SyntheticEEGDataset(sources, bank, leadfield, **kwargs)


def realised_snr_db(signal, noise):
    """Realised SNR, ``10 log10(sum(signal**2) / sum(noise**2))`` per sample.

    Parameters
    ----------
    signal, noise : ndarray or torch.Tensor, shape (..., n_times, n_chans)

    Returns
    -------
    snr : ndarray, shape (...), dB
    """
    s = np.asarray(signal, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    return 10.0 * np.log10((s**2).sum(axis=(-2, -1)) / (n**2).sum(axis=(-2, -1)))
