"""Spike extraction, SNR scaling and the spike bank file.

This module replaces the seed's ``forward/process_raw_nmm.m`` (indices are 0-based here):

1. :func:`find_peaks` / :func:`thin_peaks` — local maxima of the source region's trace at or
   above a threshold (8 mV), thinned, away from both ends of the trace;
2. :func:`extract_clips` — keep a spike only if no other region has a peak within
   ``[s - 200, s + 700)``, ``s`` the start of the 500-sample window holding the spike (windows
   aligned to multiples of 500 samples);
3. :func:`scale_to_snr` — scale the spike (from the zero crossing before the peak to the one after
   the trough) so that its scalp SNR against the activity of all other regions is 15 dB
   (the seed's ``find_alpha`` / ``rescale_nmm_channel``);
4. :class:`SpikeBank` — the file holding, per source region, the 500-sample clips of all regions
   and the spike times; :class:`SpikeBankWriter` writes it resumably.

Where and how this differs from the MATLAB code is listed in :func:`extract_clips`.

The bank file (HDF5)
--------------------
``bank.h5`` holds the attributes ``format``, ``format_version`` and ``meta``
(:func:`lightbunny.utils.write_h5_attrs`: a JSON dict of ``atlas_name``, ``sfreq``, ``n_times``,
``n_regions`` and ``attrs``: model parameters, seed, backend, versions; version 1 stored these
as attributes of their own, ``attrs`` as ``attrs_json``) and one group per complete source
region, ``regions/0007`` with

* ``clips`` : shape (n_clips, n_times, n_regions), float16 (gzip), mV — all regions' activity
  during clip *i*, the source region's own spike scaled to the target SNR;
* ``spike_times`` : shape (n_clips,), int64 — sample index (500 Hz) of the spike peak in the
  region's simulated trace (after the transient was dropped);
* attributes ``complete`` (True), ``n_spikes`` (spikes detected before the clean-window rule),
  ``alpha`` (mean SNR scale factor).

While a simulation runs, each finished region is first written, atomically, to its own file in
the sibling folder ``bank.h5.d/``; ``bank.h5`` links to it (an HDF5 external link) and is itself
replaced atomically, so a run killed at any moment leaves a readable bank that lacks at most the
regions in flight. :func:`consolidate_bank` copies everything into one self-contained file.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ._logging import logger
from .peaks import find_peaks, thin_peaks  # noqa: F401 (public names of lightbunny.spikes)
from .utils import (_json_default, atomic_path, check_option, open_h5_format,
                    read_h5_attrs, read_only, write_h5_attrs)

BANK_FORMAT = "lightbunny-spikebank"
#: version 1: one attribute per parameter (lightbunny 0.1); 2: one JSON ``meta`` attribute
BANK_FORMAT_VERSION = 2


def _region_key(region: int) -> str:
    return f"{int(region):04d}"


# ============================================================================================
# The bank (reader)
# ============================================================================================


class SpikeBank:
    """Per-region spike clips of a neural-mass simulation, read lazily from HDF5 or held in memory.

    Build one with :meth:`open` (a file written by :class:`SpikeBankWriter` or
    :func:`lightbunny.simulate.simulate_bank`) or :meth:`from_arrays` (tests, small banks).

    Attributes
    ----------
    atlas_name : str
    sfreq : float
        Sampling rate of the clips, Hz (500).
    n_times : int
        Samples per clip (500).
    n_regions : int
        Number of atlas regions (the last axis of every clip).
    attrs : dict
        Everything else the bank records (model parameters, seed, backend, versions, summary).

    Examples
    --------
    >>> clips = {2: np.zeros((3, 500, 4), np.float32)}
    >>> bank = SpikeBank.from_arrays(clips, atlas_name="synthetic")
    >>> bank.regions_with_clips().tolist(), bank.n_clips(2), bank.n_clips(0)
    ([2], 3, 0)
    >>> bank.clips(2).shape
    (3, 500, 4)
    """

    def __init__(self, *, atlas_name: str, sfreq: float, n_times: int, n_regions: int,
                 attrs: dict | None = None, path: str | os.PathLike | None = None,
                 arrays: dict | None = None, cache_bytes: int = 2 * 1024**3):
        self.atlas_name = str(atlas_name)
        self.sfreq = float(sfreq)
        self.n_times = int(n_times)
        self.n_regions = int(n_regions)
        self.attrs = dict(attrs or {})
        self._path = None if path is None else Path(path)
        self._arrays = arrays  # region -> (clips, spike_times) when in memory
        self._file = None
        self._pid = None
        self._cache: OrderedDict = OrderedDict()
        self._cache_bytes = int(cache_bytes)
        self._counts = None

    # ---------------------------------------------------------------- constructors
    @classmethod
    def open(cls, path, *, cache_bytes: int = 2 * 1024**3) -> "SpikeBank":
        """Open a bank file lazily (clips are read on first use, then cached read-only).

        Parameters
        ----------
        path : path-like
            The ``.h5`` bank file.
        cache_bytes : int
            Upper bound on the memory held by cached clips (least recently used regions are
            dropped first).
        """
        import h5py

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"spike bank {path} does not exist; create it with "
                                    "`lightbunny simulate --out PATH`.")
        with open_h5_format(path, BANK_FORMAT, what="spike bank",
                            max_version=BANK_FORMAT_VERSION) as f:
            meta = _bank_meta(f)
            bank = cls(atlas_name=meta["atlas_name"], sfreq=float(meta["sfreq"]),
                       n_times=int(meta["n_times"]), n_regions=int(meta["n_regions"]),
                       attrs=meta["attrs"], path=path, cache_bytes=cache_bytes)
            # an external link whose file is not next to the bank would be looked up relative
            # to the working directory by HDF5, silently reading another bank's region
            missing = []
            for key in f.get("regions", {}):
                link = f["regions"].get(key, getlink=True)
                if isinstance(link, h5py.ExternalLink) and not (path.parent / link.filename).is_file():
                    missing.append(link.filename)
            if missing:
                raise FileNotFoundError(
                    f"spike bank {path} is incomplete: {len(missing)} region file(s) it links to "
                    f"are missing (e.g. {path.parent / missing[0]}). A bank is the .h5 file and "
                    f"its {path.name}.d/ folder: copy both, or re-run `lightbunny simulate` with "
                    "the same --out to simulate the missing regions again.")
            counts = {}
            for key in f.get("regions", {}):
                try:
                    grp = f["regions"][key]
                except KeyError:  # a linked region file is missing
                    logger.warning("%s: region %s is linked but its file is missing", path, key)
                    continue
                if grp.attrs.get("complete", False):
                    counts[int(key)] = int(grp["spike_times"].shape[0])
        bank._counts = counts
        return bank

    @classmethod
    def from_arrays(cls, clips: dict, *, atlas_name: str, sfreq: float = 500.0,
                    spike_times: dict | None = None, attrs: dict | None = None) -> "SpikeBank":
        """A bank held in memory.

        Parameters
        ----------
        clips : dict of int -> ndarray, shape (n_clips, n_times, n_regions), mV
            Clips of each source region (regions absent or with zero clips have none).
        atlas_name : str
        sfreq : float, Hz
        spike_times : dict of int -> ndarray of int, shape (n_clips,), optional
            Peak sample of each clip's spike in the region's trace (default: -1, unknown).
        attrs : dict, optional
        """
        if not clips:
            raise ValueError("from_arrays needs at least one region in `clips`.")
        shapes = {r: np.shape(c) for r, c in clips.items()}
        bad = {r: s for r, s in shapes.items() if len(s) != 3}
        if bad:
            raise ValueError(f"clips[r] must have shape (n_clips, n_times, n_regions); got {bad}.")
        n_times = {s[1] for s in shapes.values()}
        n_regions = {s[2] for s in shapes.values()}
        if len(n_times) != 1 or len(n_regions) != 1:
            raise ValueError(f"all clips must share (n_times, n_regions); got shapes {shapes}.")
        n_regions_ = n_regions.pop()
        arrays = {}
        for r, c in clips.items():
            r = int(r)
            if not 0 <= r < n_regions_:
                raise ValueError(f"region {r} out of range 0..{n_regions_ - 1}.")
            c = read_only(np.array(c, dtype=np.float32))
            if spike_times is not None and r in spike_times:
                st = np.asarray(spike_times[r], dtype=np.int64)
                if st.shape != (len(c),):
                    raise ValueError(f"spike_times[{r}] must have shape ({len(c)},), got {st.shape}.")
            else:
                st = np.full(len(c), -1, dtype=np.int64)
            arrays[r] = (c, read_only(st.copy()))
        bank = cls(atlas_name=atlas_name, sfreq=sfreq, n_times=n_times.pop(),
                   n_regions=n_regions_, attrs=attrs, arrays=arrays)
        bank._counts = {r: len(c) for r, (c, _) in arrays.items()}
        return bank

    # ---------------------------------------------------------------- queries
    def _check_region(self, region) -> int:
        region = int(region)
        if not 0 <= region < self.n_regions:
            raise ValueError(f"region {region} out of range 0..{self.n_regions - 1}.")
        return region

    def n_clips(self, region: int) -> int:
        """Number of clips of ``region`` (0 when it has none or was not simulated)."""
        return self._counts.get(self._check_region(region), 0)

    def regions_with_clips(self) -> np.ndarray:
        """Sorted indices of the regions with at least one clip, int64."""
        return np.array(sorted(r for r, n in self._counts.items() if n > 0), dtype=np.int64)

    def complete_regions(self) -> np.ndarray:
        """Sorted indices of the regions that were simulated (with or without clips)."""
        return np.array(sorted(self._counts), dtype=np.int64)

    def _h5(self):
        import h5py

        if self._file is None or self._pid != os.getpid():
            # a fresh handle per process (DataLoader workers fork after open())
            self._file = h5py.File(self._path, "r")
            self._pid = os.getpid()
        return self._file

    def _read(self, region: int):
        if self._arrays is not None:
            if region in self._arrays:
                return self._arrays[region]
        elif region in self._counts:
            grp = self._h5()["regions"][_region_key(region)]
            clips = read_only(np.asarray(grp["clips"][...], dtype=np.float32))
            st = read_only(np.asarray(grp["spike_times"][...], dtype=np.int64))
            return clips, st
        empty = read_only(np.zeros((0, self.n_times, self.n_regions), np.float32))
        return empty, read_only(np.zeros(0, np.int64))

    def _get(self, region: int):
        region = self._check_region(region)
        if region in self._cache:
            self._cache.move_to_end(region)
            return self._cache[region]
        item = self._read(region)
        if self._arrays is None:
            self._cache[region] = item
            used = sum(c.nbytes for c, _ in self._cache.values())
            while used > self._cache_bytes and len(self._cache) > 1:
                _, (c, _) = self._cache.popitem(last=False)
                used -= c.nbytes
        return item

    def clips(self, region: int) -> np.ndarray:
        """Clips of source region ``region``.

        Returns
        -------
        clips : ndarray, shape (n_clips, n_times, n_regions), float32, mV, read-only
            ``clips[i][:, region]`` is the (SNR-scaled) spike waveform; the other columns hold
            the other regions' activity during the same clip.
        """
        return self._get(region)[0]

    def spike_times(self, region: int) -> np.ndarray:
        """Peak sample index (at ``sfreq``) of each clip's spike in the region's simulated trace.

        Returns
        -------
        spike_times : ndarray of int64, shape (n_clips,), read-only
        """
        return self._get(region)[1]

    def summary(self) -> dict:
        """Clips per region and the simulated regions that gave none."""
        counts = {int(r): int(n) for r, n in sorted(self._counts.items())}
        return {
            "n_regions_simulated": len(counts),
            "n_clips_total": int(sum(counts.values())),
            "clips_per_region": counts,
            "regions_without_clips": [r for r, n in counts.items() if n == 0],
        }

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self):  # picklable for DataLoader workers: drop the handle and cache
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        state["_cache"] = OrderedDict()
        return state

    def __repr__(self) -> str:
        return (f"SpikeBank(atlas={self.atlas_name!r}, sfreq={self.sfreq:g}, n_times={self.n_times}, "
                f"n_regions={self.n_regions}, regions_with_clips={len(self.regions_with_clips())}, "
                f"n_clips={sum(self._counts.values())})")


# ============================================================================================
# Spike detection and clip selection (port of process_raw_nmm.m, 0-based; the peak finder and
# the thinning live in lightbunny.peaks)
# ============================================================================================


def _spike_extent(u: np.ndarray, t: int) -> tuple[int, int]:
    """First and last sample (inclusive) of the spike peaking at ``t`` in the demeaned trace ``u``.

    Start: the last sample in ``[t - 200, t)`` at or below zero (the zero crossing before the
    peak). End: the first sample at or above zero after the trough, the trough being the minimum
    of ``[t + 50, t + 150)``, searched up to ``t + 200``. Where no crossing exists, the sample
    closest to zero in the search range is used (the MATLAB code widens a |u| < 0.1 threshold
    until it finds one, which picks a sample near zero as well).
    """
    n = len(u)
    lo = max(t - 200, 0)
    before = u[lo:t]
    neg = np.flatnonzero(before <= 0)
    start = lo + (int(neg[-1]) if len(neg) else int(np.argmin(np.abs(before))))
    t0, t1 = min(t + 50, n - 1), min(t + 150, n)
    trough = t0 + int(np.argmin(u[t0:t1])) if t1 > t0 else t
    hi = min(t + 201, n)
    after = u[trough + 1:hi]
    if len(after) == 0:
        return start, trough
    pos = np.flatnonzero(after >= 0)
    end = trough + 1 + (int(pos[0]) if len(pos) else int(np.argmin(np.abs(after))))
    return start, end


def scalp_snr_db(traces: np.ndarray, region: int, gain: np.ndarray, times: np.ndarray) -> float:
    """Scalp SNR (dB) of ``region`` against all other regions at the samples ``times``.

    ``SNR = 10 log10(Ps / Pn)`` with ``Ps = mean_t ||g_r u_r(t)||^2`` and
    ``Pn = mean_t ||G_other u_other(t)||^2``, where u are the traces minus their mean over the
    whole trace and g_r is the gain column of ``region`` (the seed's ``calcualate_SNR``).

    Parameters
    ----------
    traces : ndarray, shape (n_times, n_regions), mV
    region : int
    gain : ndarray, shape (n_chans, n_regions)
    times : ndarray of int
        Samples where the powers are measured.
    """
    u = np.asarray(traces, dtype=np.float64)
    u = u - u.mean(0)
    times = np.asarray(times, dtype=np.int64)
    g = np.asarray(gain, dtype=np.float64)
    sig = np.outer(u[times, region], g[:, region])
    others = np.delete(np.arange(u.shape[1]), region)
    noise = u[np.ix_(times, others)] @ g[:, others].T
    return float(10 * np.log10((sig ** 2).sum() / (noise ** 2).sum()))


def scale_to_snr(traces: np.ndarray, region: int, gain: np.ndarray, spike_times: np.ndarray,
                 target_snr_db: float = 15.0, snr_window: tuple[int, int] = (-99, 101)):
    """Scale the spikes of ``region`` so that their scalp SNR is exactly ``target_snr_db``.

    Each spike (from its zero crossing before the peak to the one after the trough, see
    :func:`_spike_extent`) is multiplied, around the trace's mean, by one factor ``alpha`` per
    region (the seed's ``rescale_nmm_channel``). The SNR (:func:`scalp_snr_db`) is measured on
    the samples ``t + snr_window[0] .. t + snr_window[1] - 1`` around every spike peak t (the
    seed's ``-99:100``). Unlike the seed's ``find_alpha``, which measures the SNR before scaling
    and so misses the target when the scaled part does not cover the window, alpha solves the
    quadratic ``SNR(alpha) = target`` of the scaled trace exactly (its mean included).

    Parameters
    ----------
    traces : ndarray, shape (n_times, n_regions), mV
    region : int
    gain : ndarray, shape (n_chans, n_regions)
        Leadfield; only ratios matter, so any unit.
    spike_times : ndarray of int, shape (n_spikes,)
        Peaks of the spikes to scale.
    target_snr_db : float, dB

    Returns
    -------
    scaled : ndarray, shape (n_times, n_regions), float64
        A copy of ``traces`` with the spikes of ``region`` scaled.
    alpha : float
        The factor (1.0 when there is no spike; NaN when no positive factor reaches the target,
        in which case the traces are returned unscaled).
    """
    x = np.asarray(traces, dtype=np.float64)
    n_times, n_regions = x.shape
    gain = np.asarray(gain, dtype=np.float64)
    if gain.ndim != 2 or gain.shape[1] != n_regions:
        raise ValueError(f"gain must have shape (n_chans, {n_regions}), got {gain.shape}.")
    spike_times = np.asarray(spike_times, dtype=np.int64)
    out = x.copy()
    if len(spike_times) == 0:
        return out, 1.0
    m0 = x[:, region].mean()
    u = x[:, region] - m0
    mask = np.zeros(n_times, dtype=bool)
    for t in spike_times:
        s, e = _spike_extent(u, int(t))
        mask[s:e + 1] = True
    idx = np.unique(np.clip((spike_times[:, None] + np.arange(*snr_window)[None, :]).ravel(),
                            0, n_times - 1))
    xd = x - x.mean(0)
    others = np.delete(np.arange(n_regions), region)
    pn = ((xd[np.ix_(idx, others)] @ gain[:, others].T) ** 2).sum(1).mean()
    g2 = float(gain[:, region] @ gain[:, region])
    # scaled trace minus its own mean = P + alpha * Q (see docstring)
    big_m = u[mask].sum() / n_times
    p = np.where(mask, 0.0, u) + big_m
    q = np.where(mask, u, 0.0) - big_m
    p, q = p[idx], q[idx]
    k = 10 ** (target_snr_db / 10) * pn / g2
    qq, pq, pp = (q * q).mean(), (p * q).mean(), (p * p).mean()
    disc = pq * pq - qq * (pp - k)
    if qq <= 0 or disc < 0 or (-pq + np.sqrt(disc)) <= 0:
        logger.warning("region %d: no positive scale reaches %.1f dB; spikes left unscaled",
                       region, target_snr_db)
        return out, float("nan")
    alpha = float((-pq + np.sqrt(disc)) / qq)
    out[mask, region] = m0 + u[mask] * alpha
    return out, alpha


def extract_clips(traces: np.ndarray, region: int, gain: np.ndarray | None = None, *,
                  threshold: float = 8.0, clip_len: int = 500, edge: int = 250,
                  guard: tuple[int, int] = (-200, 700), min_separation: int = 100,
                  target_snr_db: float = 15.0) -> dict:
    """Clean spike clips of source ``region`` from one simulation (``process_raw_nmm.m``).

    Rules (0-based samples at 500 Hz):

    1. spikes of ``region``: its peaks (:func:`find_peaks`), thinned (:func:`thin_peaks`: a peak
       less than ``min_separation`` samples after the last kept one is dropped), then those
       with fewer than ``edge`` samples on either side dropped (``edge <= t <= n_times - 1 -
       edge`` kept; a peak dropped here can still have thinned a later one);
    2. each spike's clip is the window ``[s, s + clip_len)``, ``s = (t // clip_len) * clip_len``
       (aligned to multiples of ``clip_len``, so the peak position inside the clip varies);
       the clip is kept if no *other* region has a peak (:func:`find_peaks`, not thinned, ends
       included) in ``[s + guard[0], s + guard[1])`` and the window lies inside the trace;
    3. one clip per window: when two spikes of ``region`` share a window, the first makes the
       clip (the seed saved the same window twice);
    4. with ``gain``, every spike of ``region`` inside a kept window is scaled so that the scalp
       SNR is ``target_snr_db`` (:func:`scale_to_snr`).

    Where this differs from ``process_raw_nmm.m`` (``t`` 0-based here):

    * peaks: none; the seed zeroes samples below 8 mV and calls ``islocalmax``, which gives the
      peaks of :func:`find_peaks` (a peak of exactly 8 mV counts);
    * thinning: the seed sorts the peaks of *all* regions by time and drops every peak at most
      100 samples after the previous one in that list (dropped or not, of any region); its
      interference check (rule 2) sees only the other regions' peaks left by that and by its
      end rule, so a spike of another region just after the source's spike did not count;
    * ends: the seed keeps ``249 <= t <= n - 252``;
    * window: the seed's start is ``((t + 1) // 500) * 500``, one sample after the peak when
      ``t % 500 == 499`` (its clip then misses the spike);
    * spike extent (:func:`_spike_extent`): the seed's zero crossings are samples with
      ``|u| < 0.1`` (widened by 0.05 until one is found) within 200 samples of the peak; it
      looks for the trough in ``t + 51 .. t + 150`` and for the end from two samples after it;
    * alpha is solved on the scaled trace (exactly 15 dB), see :func:`scale_to_snr`.

    Parameters
    ----------
    traces : ndarray, shape (n_times, n_regions), mV
        One simulation (transient dropped), e.g. ``simulate_regions(...)[b]``.
    region : int
        The source region of this simulation.
    gain : ndarray, shape (n_chans, n_regions), optional
        Leadfield for the SNR scaling (None: no scaling).

    Returns
    -------
    result : dict
        ``clips`` (n_clips, clip_len, n_regions) float32 mV, ``spike_times`` (n_clips,) int64,
        ``n_spikes`` (spikes detected, rule 1), ``alpha`` (float).
    """
    x = np.asarray(traces)
    if x.ndim != 2:
        raise ValueError(f"traces must have shape (n_times, n_regions), got {x.shape}.")
    n_times, n_regions = x.shape
    if not 0 <= region < n_regions:
        raise ValueError(f"region {region} out of range 0..{n_regions - 1}.")
    peaks = find_peaks(x[:, region], threshold)
    peaks = thin_peaks(peaks, min_separation)
    peaks = peaks[(peaks >= edge) & (peaks <= n_times - 1 - edge)]
    other = find_peaks(x, threshold)
    other[:, region] = False
    other_count = np.r_[0, np.cumsum(other.any(1))]  # other_count[k]: other peaks before k
    keep, windows = [], set()
    for t in peaks:
        s = (int(t) // clip_len) * clip_len
        if s + clip_len > n_times or s in windows:
            continue
        lo, hi = max(s + guard[0], 0), min(s + guard[1], n_times)
        if other_count[hi] - other_count[lo] > 0:
            continue
        windows.add(s)
        keep.append(int(t))
    keep = np.asarray(keep, dtype=np.int64)
    alpha = 1.0
    if gain is not None and len(keep):
        starts = (peaks // clip_len) * clip_len
        in_kept = np.isin(starts, list(windows))
        x, alpha = scale_to_snr(x, region, gain, peaks[in_kept], target_snr_db)
    starts = (keep // clip_len) * clip_len
    clips = np.stack([x[s:s + clip_len] for s in starts]).astype(np.float32) if len(keep) \
        else np.zeros((0, clip_len, n_regions), np.float32)
    return {"clips": clips, "spike_times": keep, "n_spikes": int(len(peaks)), "alpha": alpha}


# ============================================================================================
# The bank (writer)
# ============================================================================================


class SpikeBankWriter:
    """Write a spike bank region by region, so that a killed run loses at most its regions in flight.

    Each finished region goes, atomically (temporary file then rename), to
    ``<path>.d/region_<r>.h5``; then ``path`` is rewritten atomically with the attributes, the
    summary and an HDF5 external link per complete region. Opening an existing bank resumes
    it: :meth:`complete_regions` lists what is done, and the settings must match.

    Parameters
    ----------
    path : path-like
        The bank file (``.h5``).
    atlas_name : str
    sfreq : float, Hz
    n_times : int
        Samples per clip.
    n_regions : int
    attrs : dict
        JSON-serialisable settings (config, seed, backend, duration, versions, ...). When
        resuming, the keys listed in ``must_match`` must equal the stored ones.
    storage_dtype : {"float16", "float32"}
        Clips are stored gzip-compressed in this type (float16 halves the size; ~0.01 mV
        resolution at 10 mV).
    must_match : sequence of str
        Keys of ``attrs`` that a resumed run must share with the bank.
    """

    def __init__(self, path, *, atlas_name: str, sfreq: float, n_times: int, n_regions: int,
                 attrs: dict | None = None, storage_dtype: str = "float16",
                 must_match=("config", "seed", "duration", "backend", "target_snr_db")):
        import h5py

        check_option("storage_dtype", storage_dtype, ("float16", "float32"))
        self.path = Path(path)
        self.parts = self.path.with_name(self.path.name + ".d")
        self.atlas_name, self.sfreq = str(atlas_name), float(sfreq)
        self.n_times, self.n_regions = int(n_times), int(n_regions)
        self.attrs = dict(attrs or {})
        self.storage_dtype = storage_dtype
        self._lock = threading.Lock()  # write_region may be called from several threads
        self._regions: dict[int, dict] = {}  # region -> {n_clips, n_spikes, alpha}
        self._consolidated = False
        if self.path.exists():
            try:
                index = open_h5_format(self.path, BANK_FORMAT, what="spike bank",
                                       max_version=BANK_FORMAT_VERSION)
            except ValueError as err:
                raise ValueError(f"{self.path} exists and is not a spike bank this version can "
                                 f"extend ({err}); choose another --out.") from None
            with index as f:
                meta = _bank_meta(f)
                old = meta["attrs"]
                mine = json.loads(json.dumps(self.attrs, default=_json_default))
                for key, value in (("atlas_name", self.atlas_name), ("sfreq", self.sfreq),
                                   ("n_times", self.n_times), ("n_regions", self.n_regions)):
                    if meta[key] != value:
                        raise ValueError(f"{self.path} holds a bank with {key}={meta[key]!r}, "
                                         f"not {value!r}; choose another --out.")
                diff = [k for k in must_match if old.get(k) != mine.get(k)]
                if diff:
                    raise ValueError(f"{self.path} was written with different settings ({', '.join(diff)}); "
                                     "resume with the same options or choose another --out.")
                for key in f.get("regions", {}):
                    link = f["regions"].get(key, getlink=True)
                    if not isinstance(link, h5py.ExternalLink):
                        self._consolidated = True
                    try:
                        grp = f["regions"][key]
                    except KeyError:  # region file missing: simulate it again
                        continue
                    if grp.attrs.get("complete", False):
                        self._regions[int(key)] = {
                            "n_clips": int(grp["spike_times"].shape[0]),
                            "n_spikes": int(grp.attrs.get("n_spikes", -1)),
                            "alpha": float(grp.attrs.get("alpha", float("nan")))}
            logger.info("resuming %s: %d regions already complete", self.path, len(self._regions))
            # temporary files of region writes that a killed run left behind
            for stale in self.parts.glob(".region_*.tmp*") if self.parts.is_dir() else ():
                stale.unlink(missing_ok=True)
        else:
            self._write_index()

    def complete_regions(self) -> set:
        """Regions already in the bank."""
        return set(self._regions)

    def write_region(self, region: int, clips: np.ndarray, spike_times: np.ndarray, *,
                     n_spikes: int = -1, alpha: float = float("nan")) -> None:
        """Add one region (its clips, spike times and detection counts) to the bank.

        Parameters
        ----------
        region : int
        clips : ndarray, shape (n_clips, n_times, n_regions), mV
        spike_times : ndarray of int, shape (n_clips,)
        """
        import h5py

        region = int(region)
        if self._consolidated:
            raise ValueError(f"{self.path} is a consolidated bank (one self-contained file); "
                             "write new regions to another --out.")
        clips = np.asarray(clips)
        if clips.ndim != 3 or clips.shape[1:] != (self.n_times, self.n_regions):
            raise ValueError(f"clips must have shape (n_clips, {self.n_times}, {self.n_regions}), "
                             f"got {clips.shape}.")
        spike_times = np.asarray(spike_times, dtype=np.int64)
        if spike_times.shape != (len(clips),):
            raise ValueError(f"spike_times must have shape ({len(clips)},), got {spike_times.shape}.")
        # compress outside HDF5 (zlib releases the GIL, so several threads compress at once);
        # the chunks are written as they are, under the dataset's standard shuffle + gzip
        # filters, so any HDF5 reader decompresses them
        stored = np.ascontiguousarray(clips, dtype=self.storage_dtype)
        payload = [_shuffle_deflate(c) for c in stored]
        self.parts.mkdir(parents=True, exist_ok=True)
        target = self.parts / f"region_{_region_key(region)}.h5"
        with self._lock:
            with atomic_path(target) as tmp:
                with h5py.File(tmp, "w") as f:
                    if len(stored):
                        dset = f.create_dataset(
                            "clips", shape=stored.shape, dtype=stored.dtype,
                            chunks=(1, self.n_times, self.n_regions), compression="gzip",
                            compression_opts=_GZIP_LEVEL, shuffle=True)
                        for i, chunk in enumerate(payload):
                            dset.id.write_direct_chunk((i, 0, 0), chunk)
                    else:
                        f.create_dataset("clips", shape=stored.shape, dtype=stored.dtype)
                    f.create_dataset("spike_times", data=spike_times)
                    f.attrs["region"] = region
                    f.attrs["n_spikes"] = int(n_spikes)
                    f.attrs["alpha"] = float(alpha)
                    f.attrs["complete"] = True
                _fsync(tmp)
            self._regions[region] = {"n_clips": int(len(clips)), "n_spikes": int(n_spikes),
                                     "alpha": float(alpha)}
            self._write_index()

    def summary(self) -> dict:
        """Clips per region, regions without clips, spikes detected and SNR factors."""
        regs = dict(sorted(self._regions.items()))
        return {
            "n_regions_simulated": len(regs),
            "n_clips_total": int(sum(v["n_clips"] for v in regs.values())),
            "clips_per_region": {r: v["n_clips"] for r, v in regs.items()},
            "regions_without_clips": [r for r, v in regs.items() if v["n_clips"] == 0],
            "spikes_per_region": {r: v["n_spikes"] for r, v in regs.items()},
            "alpha_per_region": {r: v["alpha"] for r, v in regs.items()},
        }

    def _write_index(self) -> None:
        import h5py

        attrs = dict(self.attrs)
        attrs["summary"] = self.summary()
        with atomic_path(self.path) as tmp:
            with h5py.File(tmp, "w") as f:
                write_h5_attrs(f, BANK_FORMAT, BANK_FORMAT_VERSION, {
                    "atlas_name": self.atlas_name, "sfreq": self.sfreq, "n_times": self.n_times,
                    "n_regions": self.n_regions, "attrs": attrs})
                grp = f.create_group("regions")
                for r in sorted(self._regions):
                    # relative to the bank's folder (HDF5 looks next to the linking file)
                    grp[_region_key(r)] = h5py.ExternalLink(
                        f"{self.parts.name}/region_{_region_key(r)}.h5", "/")
            _fsync(tmp)


_GZIP_LEVEL = 4


def _bank_meta(f) -> dict:
    """``atlas_name``, ``sfreq``, ``n_times``, ``n_regions`` and ``attrs`` of an open bank
    index, of either format version."""
    meta = read_h5_attrs(f, json_keys=("attrs_json",))
    if "attrs_json" in meta:  # version 1
        meta["attrs"] = meta.pop("attrs_json")
    meta.setdefault("attrs", {})
    return meta


def _shuffle_deflate(chunk: np.ndarray) -> bytes:
    """One chunk through HDF5's shuffle then deflate filters (byte planes, then zlib)."""
    raw = np.frombuffer(np.ascontiguousarray(chunk).tobytes(), dtype=np.uint8)
    shuffled = raw.reshape(-1, chunk.dtype.itemsize).T.tobytes()
    return zlib.compress(shuffled, _GZIP_LEVEL)


def _fsync(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def consolidate_bank(path, out=None) -> Path:
    """Copy a bank and its region files into one self-contained HDF5 file (atomically).

    Parameters
    ----------
    path : path-like
        A bank written by :class:`SpikeBankWriter`.
    out : path-like, optional
        Destination. Default: replace ``path`` and delete its ``.d`` folder of region files
        (a consolidated bank is read the same way but takes no new regions).
    """
    import shutil

    import h5py

    path = Path(path)
    in_place = out is None or Path(out).resolve() == path.resolve()
    out = path if out is None else Path(out)
    with h5py.File(path, "r") as src, atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            grp = dst.create_group("regions")
            for key in src["regions"]:
                src.copy(src["regions"][key], grp, name=key)
    parts = path.with_name(path.name + ".d")
    if in_place and parts.is_dir():
        shutil.rmtree(parts)
    return out
