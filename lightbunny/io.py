"""Real EEG in: read a recording, realign its channels to a model, preprocess it like training data.

The steps, each a public function:

1. :func:`read_recording` reads EDF/EDF+, BDF, EEGLAB ``.set``, BrainVision ``.vhdr`` and FIF
   files with MNE, or takes an in-memory ``mne.io.Raw`` / ``mne.Epochs`` / ``mne.Evoked``.
2. :func:`clean_channel_name` turns clinical spellings into 10-05 names: ``'EEG Fp1-REF'``,
   ``'FP1'``, ``'fp1-le'``, ``'EEG FP1-A1'``, ``'Fp1.'`` (PhysioNet) all become ``'Fp1'``, and the
   old 10-20 names T3/T4/T5/T6 become T7/T8/P7/P8.
3. :func:`realign_channels` picks the model's channels in the model's order, drops non-EEG and
   extra channels, detects bad channels (flat, mostly NaN, far noisier than the rest, or listed in
   ``info['bads']``), fills short NaN spans, checks the amplitude unit, and interpolates missing
   and bad channels with MNE's spherical splines (or fills them with zeros, as the seed did). What
   it did is returned as a :class:`RealignmentReport`.
4. :func:`prepare_recording` runs all of it and then filters (optional), resamples to the model's
   rate, re-references to the average, and optionally averages epochs around events. It returns
   a :class:`PreparedEEG` whose ``eeg`` (n_times, n_chans, V) is what a model is applied to. The
   per-window scaling of training (:func:`lightbunny.inference.normalise_eeg`) is applied by the
   inference code (:mod:`lightbunny.apply`), window by window, as in training.

Steps 2 and 3 live in :mod:`lightbunny.channels` (and the 10-05 positions used for
interpolation in :mod:`lightbunny.montage`); their names are importable from here too.

Every problem with the input is a ``ValueError`` (or ``FileNotFoundError``) whose message says
what was found and what to do; recoverable problems (a few bad channels, NaN spans, a unit
mistake, a rate below the model's) are handled, logged as warnings and listed in the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._logging import logger
from .channels import (  # noqa: F401 (re-exported)
    EEG_STD_RANGE,
    MISSING_MODES,
    NON_EEG_NAMES,
    REFERENCE_SUFFIXES,
    UNITS,
    RealignmentReport,
    _key,
    _short,
    check_units,
    clean_channel_name,
    detect_bad_channels,
    fill_nan_spans,
    match_channels,
    realign_channels,
)
from .montage import channel_montage as _positions  # noqa: F401 (the former private name)
from .utils import check_option, read_only

#: File endings read, and the MNE reader used for each.
READERS = {
    ".edf": "read_raw_edf",
    ".bdf": "read_raw_bdf",
    ".set": "read_raw_eeglab",
    ".vhdr": "read_raw_brainvision",
    ".fif": "read_raw_fif",
    ".fif.gz": "read_raw_fif",
}


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _mne_types():
    import mne

    return mne.io.BaseRaw, mne.BaseEpochs, mne.Evoked


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(READERS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return path.suffix.lower()


def read_recording(recording, *, preload: bool = True, problems: list | None = None):
    """Read an EEG recording with MNE, or pass an MNE object through.

    Parameters
    ----------
    recording : path | mne.io.Raw | mne.Epochs | mne.Evoked
        A file ending in one of :data:`READERS` (``.edf``, ``.bdf``, ``.set``, ``.vhdr``,
        ``.fif``; FIF files named ``*-epo.fif`` / ``*-ave.fif`` are read as epochs / evoked),
        or an MNE object (returned as is).
    preload : bool
        Load the data into memory (needed by the later steps).
    problems : list, optional
        Receives what the reader warned about a file it could still read, e.g. a truncated
        EDF whose header declares more records than the file holds (MNE then reads the part
        that survived): such a file is imaged, never silently.

    Returns
    -------
    inst : mne.io.BaseRaw | mne.BaseEpochs | mne.Evoked

    Raises
    ------
    FileNotFoundError
        No file at ``recording``.
    ValueError
        Unknown file ending, or a file MNE cannot read (corrupt, truncated, wrong format); the
        message names the reader and its error.
    """
    if isinstance(recording, _mne_types()):
        return recording
    if not isinstance(recording, (str, Path)):
        raise ValueError(f"recording must be a file path or an mne Raw/Epochs/Evoked, got "
                         f"{type(recording).__name__}.")
    path = Path(recording)
    if not path.exists():
        raise FileNotFoundError(f"No EEG recording at {path}.")
    if not path.is_file():
        raise ValueError(f"{path} is not a file.")
    ext = _file_kind(path)
    check_option("recording file type", ext, READERS)
    import mne

    name = path.name.lower()
    try:
        if ext.startswith(".fif") and re.search(r"[-_]epo\.fif(\.gz)?$", name):
            return mne.read_epochs(path, preload=preload, verbose="error")
        if ext.startswith(".fif") and re.search(r"[-_]ave\.fif(\.gz)?$", name):
            return mne.read_evokeds(path, condition=0, verbose="error")
        reader = getattr(mne.io, READERS[ext])
        try:
            import warnings

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                inst = reader(path, preload=preload, verbose="warning")
            for w in caught:
                text = str(w.message)
                if "does not match the file size" in text:
                    text = (f"{path.name} is truncated or was not closed: its header declares "
                            f"more data than the file holds; only the {inst.times[-1]:.1f} s "
                            f"present were read. ({text})")
                logger.warning("%s", text)
                if problems is not None:
                    problems.append(text)
            return inst
        except TypeError as err:
            if ext == ".set" and "epoch" in str(err).lower():  # an epoched EEGLAB file
                return mne.read_epochs_eeglab(path, verbose="error")
            raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as err:  # every reader fails its own way on a damaged file
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"Could not read {path} with mne.io.{READERS[ext]} (corrupt, truncated "
                         f"or not a {ext} file?): {type(err).__name__}: {detail}") from None


# --------------------------------------------------------------------------------------------
# Whole preparation
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class PreparedEEG:
    """A recording ready for a model.

    Attributes
    ----------
    eeg : ndarray, shape (n_times, n_chans), V
        Average-referenced EEG in the model's channel order and rate (read-only).
    sfreq : float, Hz
    ch_names : list of str, length n_chans
    tmin : float, s
        Time of the first sample: from the recording's start, or from the event for an average.
    kind : {'continuous', 'average'}
    n_averaged : int
        Epochs averaged (1 for continuous data).
    report : RealignmentReport
    info : mne.Info
        Channel names, rate and positions (for topomaps).
    source : str
        What was read (a path or the MNE object's type).
    """

    eeg: np.ndarray
    sfreq: float
    ch_names: list
    tmin: float
    kind: str
    n_averaged: int
    report: RealignmentReport
    info: object = None
    source: str = ""

    @property
    def n_times(self) -> int:
        return self.eeg.shape[0]

    @property
    def times(self) -> np.ndarray:
        """Sample times, s, shape (n_times,)."""
        return self.tmin + np.arange(self.n_times) / self.sfreq


def _as_raw(inst, report: RealignmentReport):
    """A continuous Raw from any MNE instance (epochs are averaged), its t0 and epoch count."""
    import mne

    if isinstance(inst, mne.BaseEpochs):
        if len(inst) == 0:
            raise ValueError("The epochs object holds no epochs.")
        n = len(inst)
        inst = inst.average(picks="all")
        report.steps.append(f"averaged {n} epochs")
        return mne.io.RawArray(inst.data, inst.info, verbose="error"), float(inst.times[0]), n
    if isinstance(inst, mne.Evoked):
        return (mne.io.RawArray(inst.data, inst.info, verbose="error"), float(inst.times[0]),
                int(inst.nave or 1))
    if not inst.preload:
        inst = inst.copy().load_data(verbose="error")
    return inst, 0.0, 1


def _event_onsets(raw, events) -> np.ndarray:
    """Onsets (s from the first sample) of ``events``: times, or annotation descriptions."""
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    events = list(events)
    if not events:
        raise ValueError("events is empty.")
    if all(isinstance(e, str) for e in events):
        try:
            times = [float(e) for e in events]
            return np.asarray(times)
        except ValueError:
            pass
        ann = raw.annotations
        keep = np.isin(ann.description, events)
        if not keep.any():
            have = sorted(set(ann.description))
            raise ValueError(f"No annotation named {events} in the recording; its annotations "
                             f"are {have or 'none'}. Give event times in seconds instead.")
        onset = np.asarray(ann.onset)[keep]
        if ann.orig_time is not None:
            onset = onset - raw.first_time
        return onset
    try:
        return np.asarray(events, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"events must be times in seconds or annotation names, got "
                         f"{events!r}.") from None


def prepare_recording(recording, ch_names, *, sfreq: float = 500.0, l_freq: float | None = None,
                      h_freq: float | None = None, tmin: float | None = None,
                      tmax: float | None = None, events=None, epoch_tmin: float = -0.5,
                      epoch_tmax: float = 0.5, missing: str = "interpolate",
                      min_matched=0.25, min_sfreq: float = 100.0, units: str = "auto",
                      positions=None, bad_channels: bool = True,
                      noisy_ratio: float | None = 50.0) -> PreparedEEG:
    """Read a recording and make it what a model trained at ``sfreq`` on ``ch_names`` expects.

    Steps: read (:func:`read_recording`); average epochs; crop to ``[tmin, tmax]``; realign
    channels (:func:`realign_channels`: bad channels, NaN spans, units, interpolation); band-pass
    filter (optional, at the recording's rate); resample to ``sfreq``; average reference; with
    ``events``, cut epochs ``[epoch_tmin, epoch_tmax)`` around them and average.

    Parameters
    ----------
    recording : path | mne.io.Raw | mne.Epochs | mne.Evoked
    ch_names : sequence of str
        The model's channels in its order.
    sfreq : float, Hz
        The model's sampling rate (500 Hz for the published models).
    l_freq, h_freq : float or None, Hz
        Band-pass edges (None: no filter on that side).
    tmin, tmax : float or None, s
        Time range to keep, from the recording's first sample (for epochs/evoked input: on the
        epoch's time axis).
    events : str | sequence of float | sequence of str, optional
        Onsets in seconds, or annotation descriptions (comma-separated in one string); epochs
        around them are averaged, like an evoked response.
    epoch_tmin, epoch_tmax : float, s
        Epoch window around each event (end excluded).
    missing, min_matched, units, positions, bad_channels, noisy_ratio
        See :func:`realign_channels`.
    min_sfreq : float, Hz
        Recordings sampled below this are refused. Between ``min_sfreq`` and ``sfreq`` they are
        upsampled (content above the recording's Nyquist frequency is then absent; logged).

    Returns
    -------
    PreparedEEG
    """
    import mne

    sfreq = float(sfreq)
    if not sfreq > 0:
        raise ValueError(f"sfreq must be positive, got {sfreq}.")
    report = RealignmentReport(target=[str(c) for c in ch_names])
    inst = read_recording(recording, problems=report.warnings)
    source = str(recording) if isinstance(recording, (str, Path)) else type(recording).__name__
    raw, t0, n_avg = _as_raw(inst, report)
    if raw.n_times < 2:
        raise ValueError(f"The recording has {raw.n_times} sample(s); nothing to image.")
    sf_in = float(raw.info["sfreq"])
    if not sf_in >= min_sfreq:
        raise ValueError(f"The recording is sampled at {sf_in:g} Hz, below the minimum of "
                         f"{min_sfreq:g} Hz (the model runs at {sfreq:g} Hz). Use a recording "
                         f"sampled at {sfreq:g} Hz or more, or lower min_sfreq.")
    onsets = None
    if events is not None:
        if n_avg > 1 or t0 != 0.0:
            raise ValueError("events apply to continuous recordings; epochs and evoked data are "
                             "averaged as they are.")
        onsets = _event_onsets(raw, events)
    if tmin is not None or tmax is not None:
        raw, t0, onsets = _crop(raw, t0, tmin, tmax, onsets, report)
    aligned, report = realign_channels(raw, ch_names, missing=missing, min_matched=min_matched,
                                       units=units, positions=positions,
                                       bad_channels=bad_channels, noisy_ratio=noisy_ratio,
                                       report=report)
    if l_freq is not None or h_freq is not None:
        _band_pass(aligned, l_freq, h_freq, report)
    _resample(aligned, sfreq, report)
    data = _average_reference(aligned.get_data(), report)
    kind = "continuous" if n_avg == 1 and not isinstance(inst, mne.Evoked) else "average"
    if onsets is not None:
        data, t0, n_avg = _average_events(data, sfreq, onsets, epoch_tmin, epoch_tmax, report)
        kind = "average"
    if not np.isfinite(data).all():
        raise ValueError("The prepared EEG holds non-finite values (the recording's values are "
                         "too large or corrupt).")
    eeg = read_only(np.ascontiguousarray(data.T))
    return PreparedEEG(eeg=eeg, sfreq=sfreq, ch_names=list(report.target), tmin=float(t0),
                       kind=kind, n_averaged=int(n_avg), report=report, info=aligned.info,
                       source=source)


def _crop(raw, t0: float, tmin, tmax, onsets, report: RealignmentReport):
    """``raw`` cut to ``[tmin, tmax]`` (s, on the axis starting at ``t0``), its new ``t0``, and
    ``onsets`` moved to the new first sample."""
    import mne

    sf_in = float(raw.info["sfreq"])
    duration = raw.n_times / sf_in
    lo = t0 if tmin is None else float(tmin)
    hi = t0 + (raw.n_times - 1) / sf_in if tmax is None else float(tmax)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise ValueError(f"tmin ({tmin}) must be below tmax ({tmax}).")
    if lo >= t0 + duration or hi <= t0:
        raise ValueError(f"The range tmin={tmin}, tmax={tmax} s lies outside the recording "
                         f"({t0:g} to {t0 + duration:g} s).")
    lo, hi = max(lo, t0), min(hi, t0 + (raw.n_times - 1) / sf_in)
    start = int(round((lo - t0) * sf_in))
    stop = int(round((hi - t0) * sf_in)) + 1
    raw = mne.io.RawArray(raw.get_data()[:, start:stop], raw.info, verbose="error")
    if onsets is not None:
        onsets = onsets - start / sf_in
    t0 = t0 + start / sf_in
    report.steps.append(f"cropped to {t0:g}..{t0 + (stop - start - 1) / sf_in:g} s")
    if stop - start < 2:
        raise ValueError(f"The range tmin={tmin}, tmax={tmax} s holds fewer than 2 samples.")
    return raw, t0, onsets


def _band_pass(aligned, l_freq, h_freq, report: RealignmentReport) -> None:
    """Band-pass filter ``aligned`` in place at its own rate; a filter longer than the data is
    reported (MNE's own warning is silenced)."""
    import mne

    sf_in = float(aligned.info["sfreq"])
    nyq = sf_in / 2
    if h_freq is not None and not 0 < h_freq < nyq:
        raise ValueError(f"h_freq ({h_freq} Hz) must lie below the recording's Nyquist "
                         f"frequency ({nyq:g} Hz).")
    if l_freq is not None and not 0 < l_freq < (h_freq or nyq):
        raise ValueError(f"l_freq ({l_freq} Hz) must be positive and below h_freq.")
    aligned.filter(l_freq, h_freq, picks="all", verbose="error")
    report.steps.append(f"band-pass filtered {l_freq}-{h_freq} Hz")
    n_filter = len(mne.filter.create_filter(None, sf_in, l_freq, h_freq, verbose="error"))
    if n_filter > aligned.n_times:
        report.warn(f"The {l_freq}-{h_freq} Hz filter ({n_filter} samples, "
                    f"{n_filter / sf_in:.2f} s) is longer than the recording "
                    f"({aligned.n_times} samples); distortion is likely. Filter a longer "
                    f"recording before cutting segments, or filter the sources "
                    f"(--source-band) and read them away from the edges.")


def _resample(aligned, sfreq: float, report: RealignmentReport) -> None:
    """Resample ``aligned`` in place to ``sfreq`` (an upsampling is reported)."""
    sf_in = float(aligned.info["sfreq"])
    if sf_in < sfreq:
        report.warn(f"The recording is sampled at {sf_in:g} Hz, below the model's {sfreq:g} Hz; "
                    f"upsampled (no content above {sf_in / 2:g} Hz).")
    if sf_in != sfreq:
        aligned.resample(sfreq, verbose="error")
        report.steps.append(f"resampled {sf_in:g} -> {sfreq:g} Hz")
    report.sfreq_out = sfreq


def _average_reference(data: np.ndarray, report: RealignmentReport) -> np.ndarray:
    """``data`` (n_chans, n_times) minus the mean of the channels that are not zero-filled;
    zero-filled channels stay zero."""
    present = [i for i, c in enumerate(report.target) if c not in report.zero_filled]
    data = data - data[present].mean(axis=0, keepdims=True)
    if report.zero_filled:
        data[[report.target.index(c) for c in report.zero_filled]] = 0.0
    report.steps.append("average reference")
    return data


def _average_events(data, sfreq, onsets, epoch_tmin, epoch_tmax, report):
    """Average ``data`` (n_chans, n_times) in windows [tmin, tmax) around ``onsets`` (s)."""
    if not epoch_tmin < epoch_tmax:
        raise ValueError(f"epoch_tmin ({epoch_tmin}) must be below epoch_tmax ({epoch_tmax}).")
    first = int(round(epoch_tmin * sfreq))
    n = int(round((epoch_tmax - epoch_tmin) * sfreq))
    starts = np.round(np.asarray(onsets, dtype=float) * sfreq).astype(np.int64) + first \
        if np.isfinite(onsets).all() else None
    if starts is None:
        raise ValueError(f"event times must be finite, got {onsets}.")
    inside = (starts >= 0) & (starts + n <= data.shape[1])
    if not inside.any():
        raise ValueError(f"None of the {len(onsets)} events has a full epoch "
                         f"[{epoch_tmin}, {epoch_tmax}) s inside the data "
                         f"({data.shape[1] / sfreq:g} s).")
    if not inside.all():
        report.warn(f"{int((~inside).sum())} of {len(onsets)} events too close to the edges; "
                    f"skipped.")
    avg = np.mean([data[:, s:s + n] for s in starts[inside]], axis=0)
    report.steps.append(f"averaged {int(inside.sum())} epochs [{epoch_tmin}, {epoch_tmax}) s "
                        f"around events")
    return avg, first / sfreq, int(inside.sum())


__all__ = ["READERS", "MISSING_MODES", "UNITS", "RealignmentReport", "PreparedEEG",
           "read_recording", "clean_channel_name", "match_channels", "detect_bad_channels",
           "fill_nan_spans", "check_units", "realign_channels", "prepare_recording"]
