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

Every problem with the input is a ``ValueError`` (or ``FileNotFoundError``) whose message says
what was found and what to do; recoverable problems (a few bad channels, NaN spans, a unit
mistake, a rate below the model's) are handled, logged as warnings and listed in the report.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._logging import logger
from .utils import OLD_NAMES, check_option, read_only

#: File endings read, and the MNE reader used for each.
READERS = {
    ".edf": "read_raw_edf",
    ".bdf": "read_raw_bdf",
    ".set": "read_raw_eeglab",
    ".vhdr": "read_raw_brainvision",
    ".fif": "read_raw_fif",
    ".fif.gz": "read_raw_fif",
}
MISSING_MODES = ("interpolate", "zero")
#: What the values of a recording are: ``auto`` (V, with a check for uV/mV stored as V), ``V``,
#: ``uV``, or ``none`` (scale-free data: no unit check, amplitudes reported as a.u.).
UNITS = ("auto", "V", "uV", "none")
#: Reference electrodes that clinical files append to a channel name (``Fp1-REF``, ``Fp1-A1``).
REFERENCE_SUFFIXES = ("REF", "LE", "RE", "AR", "AV", "AVG", "CAR", "A1", "A2", "A12", "M1", "M2",
                      "LR", "REF1", "REF2", "EAR", "LINKED", "REFERENCE")
#: Names (after cleaning, upper case) of channels that are not scalp EEG whatever their type says.
NON_EEG_NAMES = ("ECG", "EKG", "EMG", "EOG", "HEOG", "VEOG", "LOC", "ROC", "RESP", "PHOTIC",
                 "STATUS", "TRIGGER", "STI", "SPO2", "PULSE", "BURSTS", "SUPPR", "IBI", "EVENT",
                 "MARKER", "DC", "X1", "X2", "PG1", "PG2")
#: Plausible standard deviation of scalp EEG, V (0.01 uV .. 5 mV).
EEG_STD_RANGE = (1e-8, 5e-3)
#: Rescalings tried when amplitudes are outside EEG_STD_RANGE: (factor, what it means).
_UNIT_GUESSES = ((1e-6, "values in uV stored as V"), (1e-3, "values in mV stored as V"),
                 (1e6, "values in V stored as uV"))


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
# Channel names
# --------------------------------------------------------------------------------------------

_PREFIX = re.compile(r"^(?:EEG|POL|EEG1|EEG2)[\s:_-]+", re.IGNORECASE)


def clean_channel_name(name: str) -> str:
    """A channel name as the 10-05 system spells it, for matching (case is not fixed here).

    Strips a leading ``EEG`` / ``POL`` label, trailing dots (PhysioNet's ``Fc5.``), and a
    reference suffix (``-REF``, ``-LE``, ``-A1``, ``-M2``, ... see
    :data:`REFERENCE_SUFFIXES`); maps the old 10-20 names T3/T4/T5/T6 to T7/T8/P7/P8. A bipolar
    name (``Fp1-F7``) is left as it is: it is not one electrode and will not match.

    Examples
    --------
    >>> [clean_channel_name(n) for n in ("EEG Fp1-REF", "FP1", "fp1-le", "EEG FP1-A1", "T3",
    ...                                  "EEG T5-REF", "Fc5.", "Fp1-F7")]
    ['Fp1', 'FP1', 'fp1', 'FP1', 'T7', 'P7', 'Fc5', 'Fp1-F7']
    """
    text = str(name).strip()
    text = _PREFIX.sub("", text).strip().rstrip(".").strip()
    parts = re.split(r"\s*[-/]\s*", text)
    if len(parts) == 2 and parts[0] and parts[1].upper() in REFERENCE_SUFFIXES:
        text = parts[0]
    return OLD_NAMES.get(text.upper(), text)


def _key(name: str) -> str:
    return clean_channel_name(name).casefold()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass
class RealignmentReport:
    """What was done to a recording to fit a model's channels and rate.

    Attributes
    ----------
    target : list of str
        The model's channels, in its order.
    matched : dict
        Model channel -> the recording's channel that supplies it.
    renamed : dict
        Recording channel -> model channel, for matches spelled differently.
    interpolated : list of str
        Model channels absent (or bad) in the recording, filled by spherical splines.
    zero_filled : list of str
        Model channels absent (or bad), filled with zeros (``missing='zero'``).
    dropped : dict
        Recording channel -> why it was not used (non-EEG, not in the model, duplicate).
    bad : dict
        Recording channel -> why it was judged bad (flat, NaN, noisy, marked bad in the file).
        Bad channels are treated as missing.
    nan_spans : list of [float, float]
        Start and end (s, from the first sample) of spans where a used channel was NaN; filled
        by linear interpolation in time.
    unit_scale : float
        Factor applied to the data after an amplitude check (1.0: the file's unit was kept).
    units : {"V", "a.u."}
        Unit of the prepared EEG: volts, or arbitrary units for scale-free data (``units="none"``).
    sfreq_in, sfreq_out : float
        Sampling rates (Hz) of the recording and of the prepared EEG.
    warnings : list of str
        Everything that was logged as a warning.
    """

    target: list
    matched: dict = field(default_factory=dict)
    renamed: dict = field(default_factory=dict)
    interpolated: list = field(default_factory=list)
    zero_filled: list = field(default_factory=list)
    dropped: dict = field(default_factory=dict)
    bad: dict = field(default_factory=dict)
    nan_spans: list = field(default_factory=list)
    unit_scale: float = 1.0
    units: str = "V"
    sfreq_in: float = float("nan")
    sfreq_out: float = float("nan")
    steps: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Log ``message`` as a warning and keep it in the report."""
        logger.warning(message)
        self.warnings.append(message)

    def to_dict(self) -> dict:
        """The report as plain JSON types."""
        return asdict(self)

    def summary(self) -> str:
        """One line per kind of change, for logs and the CLI."""
        lines = [f"{len(self.matched)} of {len(self.target)} model channels found in the "
                 f"recording"]
        if self.renamed:
            lines.append(f"renamed {len(self.renamed)}: "
                         + _short(f"{a}->{b}" for a, b in self.renamed.items()))
        if self.bad:
            lines.append("bad: " + _short(f"{a} ({b})" for a, b in self.bad.items()))
        if self.interpolated:
            lines.append("interpolated: " + _short(self.interpolated, 40))
        if self.zero_filled:
            lines.append("zero-filled: " + _short(self.zero_filled, 40))
        if self.dropped:
            lines.append("dropped: " + _short(f"{a} ({b})" for a, b in self.dropped.items()))
        if self.nan_spans:
            lines.append(f"NaN spans filled: {len(self.nan_spans)}")
        if self.unit_scale != 1.0:
            lines.append(f"amplitudes rescaled by {self.unit_scale:g}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Data checks
# --------------------------------------------------------------------------------------------


def detect_bad_channels(data: np.ndarray, *, max_nan_fraction: float = 0.5,
                        flat_ratio: float = 1e-4, noisy_ratio: float | None = 50.0) -> dict:
    """Channels that cannot be used: mostly NaN, flat, or far noisier than the others.

    Parameters
    ----------
    data : ndarray, shape (n_chans, n_times)
        Any unit; may hold NaN or inf.
    max_nan_fraction : float
        A channel with more non-finite samples than this fraction is bad.
    flat_ratio : float
        A channel whose standard deviation is below ``flat_ratio`` times the median over
        channels (or exactly constant) is flat.
    noisy_ratio : float or None
        A channel whose standard deviation exceeds ``noisy_ratio`` times the median is noisy
        (None: no check).

    Returns
    -------
    bad : dict
        Channel index -> reason.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(4, 100))
    >>> x[1] = 0.0
    >>> x[2, :80] = np.nan
    >>> detect_bad_channels(x)
    {1: 'flat', 2: 'NaN in 80% of samples'}
    """
    finite = np.isfinite(data)
    bad = {}
    nan_frac = 1.0 - finite.mean(axis=1) if data.shape[1] else np.ones(len(data))
    for i in np.flatnonzero(nan_frac > max_nan_fraction):
        bad[int(i)] = f"NaN in {100 * nan_frac[i]:.0f}% of samples"
    std = np.zeros(len(data))
    for i in range(len(data)):
        if i not in bad:
            values = data[i, finite[i]]
            std[i] = values.std() if values.size else 0.0
    ok = [i for i in range(len(data)) if i not in bad]
    ref = float(np.median(std[ok])) if ok else 0.0
    for i in ok:
        if std[i] == 0.0 or std[i] <= flat_ratio * ref:
            bad[i] = "flat"
        elif noisy_ratio is not None and ref > 0 and std[i] > noisy_ratio * ref:
            bad[i] = f"noisy (std {std[i] / ref:.0f} x the median)"
    return dict(sorted(bad.items()))


def fill_nan_spans(data: np.ndarray, sfreq: float):
    """Fill non-finite samples of each channel by linear interpolation in time.

    Parameters
    ----------
    data : ndarray, shape (n_chans, n_times)
    sfreq : float, Hz

    Returns
    -------
    filled : ndarray, shape (n_chans, n_times)
        A new array; samples before the first (after the last) finite one take its value.
    spans : list of [float, float]
        Start and end times (s) of the runs of samples where any channel was non-finite.
    """
    bad_t = ~np.isfinite(data).all(axis=0)
    if not bad_t.any():
        return data, []
    out = np.array(data, dtype=float)
    t = np.arange(data.shape[1])
    for row in out:
        ok = np.isfinite(row)
        if not ok.all():
            row[~ok] = np.interp(t[~ok], t[ok], row[ok])
    edges = np.flatnonzero(np.diff(np.r_[0, bad_t.astype(np.int8), 0]))
    spans = [[float(a / sfreq), float(b / sfreq)] for a, b in zip(edges[::2], edges[1::2])]
    return out, spans


def check_units(data: np.ndarray, report: RealignmentReport, *, units: str = "auto") -> float:
    """The factor that brings ``data`` (V as read by MNE) into a plausible EEG range.

    With ``units='auto'``, the median channel standard deviation is compared with
    :data:`EEG_STD_RANGE`; outside it, the first rescaling of ``_UNIT_GUESSES`` that lands inside
    is returned and a warning is logged. ``units='V'`` trusts the file (factor 1); ``'uV'``
    says the values are microvolts (factor 1e-6, no check); ``'none'`` says the data have no
    physical unit (e.g. segments already scaled to max |x| = 1): factor 1, no check, no
    warning, and figures label amplitudes "a.u." (see :data:`UNITS`).

    Raises
    ------
    ValueError
        The amplitudes are implausible in every unit tried.
    """
    check_option("units", units, UNITS)
    if units == "none":
        return 1.0
    if units == "uV":
        return 1e-6
    std = float(np.median(np.nanstd(data, axis=1))) if data.size else 0.0
    lo, hi = EEG_STD_RANGE
    if units == "V" or lo <= std <= hi:
        return 1.0
    for factor, meaning in _UNIT_GUESSES:
        if lo <= std * factor <= hi:
            report.warn(f"EEG amplitudes are implausible as read (median channel std {std:.3g} V)"
                        f"; assuming {meaning} and multiplying by {factor:g}. Pass units='V' "
                        f"(--units V) to keep them as they are.")
            return factor
    raise ValueError(f"EEG amplitudes are implausible in any unit (median channel std {std:.3g} V "
                     f"as read; scalp EEG lies within {lo:g}..{hi:g} V). Check the file's "
                     f"calibration, or pass units='V' to use them anyway.")


# --------------------------------------------------------------------------------------------
# Realignment
# --------------------------------------------------------------------------------------------


def _min_count(min_matched, n_target: int) -> int:
    if isinstance(min_matched, float) and 0 < min_matched <= 1:
        return max(3, math.ceil(min_matched * n_target))
    if isinstance(min_matched, (int, np.integer)) and not isinstance(min_matched, bool) \
            and min_matched >= 1:
        return int(min_matched)
    raise ValueError(f"min_matched must be a count >= 1 or a fraction in (0, 1], got "
                     f"{min_matched!r}.")


def _positions(ch_names, positions):
    """Positions of ``ch_names`` for spline interpolation and topomaps.

    Returns
    -------
    montage : mne.channels.DigMontage or None
        MNE's 10-05 montage (``positions=None``; channels matched case-insensitively, head
        frame from its fiducials) or a montage of ``positions`` (name -> xyz, m, head frame);
        None if some channels have no position.
    unknown : list of str
        Channels without a position.
    """
    import mne

    if positions is None:
        from .leadfield import _reference_montage

        montage = mne.channels.make_standard_montage(_reference_montage())
        names = montage.ch_names
    else:
        table = {str(k): np.asarray(v, dtype=float) for k, v in dict(positions).items()}
        names = list(table)
    lower = {k.casefold(): k for k in names}
    unknown = [c for c in ch_names if c.casefold() not in lower]
    if unknown:
        return None, unknown
    if positions is None:
        rename = {lower[c.casefold()]: c for c in ch_names}
        montage.rename_channels({k: v for k, v in rename.items() if k != v})
        return montage, []
    return mne.channels.make_dig_montage(ch_pos={c: table[lower[c.casefold()]]
                                                 for c in ch_names}, coord_frame="head"), []


def realign_channels(raw, ch_names, *, missing: str = "interpolate", min_matched=0.25,
                     units: str = "auto", positions=None, bad_channels: bool = True,
                     noisy_ratio: float | None = 50.0, report: RealignmentReport | None = None):
    """Pick, order, clean and complete a recording's EEG channels for a model.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Continuous recording (preloaded), any channel names and order.
    ch_names : sequence of str, length n_chans
        The model's channels, in its order (a leadfield's ``ch_names``).
    missing : {'interpolate', 'zero'}
        How channels absent from the recording (or bad in it) are filled: MNE's spherical spline
        interpolation from the good channels (positions of MNE's 10-05 montage, or
        ``positions``), or zeros (the seed's choice; after the average reference they equal the
        reference).
    min_matched : int or float
        Fewest usable model channels the recording must supply: a count, or a fraction of
        ``len(ch_names)`` (default 0.25, at least 3).
    units : {'auto', 'V'}
        See :func:`check_units`.
    positions : dict, optional
        Channel name -> position (m, MNE head frame) used for interpolation instead of the
        10-05 montage.
    bad_channels : bool
        Detect flat / noisy / mostly-NaN channels (:func:`detect_bad_channels`) and treat them,
        and channels listed in ``raw.info['bads']``, as missing.
    noisy_ratio : float or None
        Passed to :func:`detect_bad_channels`.
    report : RealignmentReport, optional
        Filled in place (a new one is made when omitted).

    Returns
    -------
    aligned : mne.io.RawArray
        EEG channels ``ch_names`` in that order (V, not yet re-referenced), the recording's rate,
        positions set where known; missing and bad channels filled.
    report : RealignmentReport

    Raises
    ------
    ValueError
        No EEG channels, fewer than ``min_matched`` usable matches (the message lists the
        recording's channels and what they were matched to), implausible amplitudes, or
        channels to interpolate without known positions. (A second recording channel read as
        the same model channel is dropped and reported, not an error.)
    """
    import mne

    check_option("missing", missing, MISSING_MODES)
    target = [str(c) for c in ch_names]
    if len(set(c.casefold() for c in target)) != len(target):
        raise ValueError(f"the model's channel names are not unique: {target}")
    report = report or RealignmentReport(target=target)
    report.target = target
    report.sfreq_in = float(raw.info["sfreq"])
    need = _min_count(min_matched, len(target))
    by_key = {_key(c): c for c in target}
    types = raw.get_channel_types()
    supply = {}  # target name -> index in raw
    for idx, (name, kind) in enumerate(zip(raw.ch_names, types)):
        clean = clean_channel_name(name)
        if kind != "eeg":
            report.dropped[name] = f"non-EEG channel type {kind!r}"
        elif clean.upper() in NON_EEG_NAMES:
            report.dropped[name] = "non-EEG channel (by name)"
        elif clean.casefold() not in by_key:
            report.dropped[name] = ("bipolar or unknown name, not in the model" if "-" in clean
                                    else "not in the model's channels")
        elif by_key[clean.casefold()] in supply:
            first = raw.ch_names[supply[by_key[clean.casefold()]]]
            report.dropped[name] = f"duplicate of {first} (both read as {by_key[clean.casefold()]})"
        else:
            supply[by_key[clean.casefold()]] = idx
    if not any(t == "eeg" for t in types):
        raise ValueError(f"The recording has no EEG channels (channel types: "
                         f"{sorted(set(types))}; channels: {_short(raw.ch_names)}).")
    data = raw.get_data(picks=[supply[c] for c in target if c in supply]) if supply else \
        np.zeros((0, raw.n_times))
    used = [c for c in target if c in supply]
    bad = {}
    if bad_channels and used:
        for i, why in detect_bad_channels(data, noisy_ratio=noisy_ratio).items():
            bad[used[i]] = why
    for name in raw.info["bads"]:
        for c in used:
            if raw.ch_names[supply[c]] == name and c not in bad:
                bad[c] = "marked bad in the file"
    good = [c for c in used if c not in bad]
    if len(good) < need:
        found = ", ".join(f"{raw.ch_names[supply[c]]}->{c}" + (f" (bad: {bad[c]})" if c in bad
                                                                 else "") for c in used) or "none"
        raise ValueError(
            f"Only {len(good)} usable channels of the model's {len(target)} were found in the "
            f"recording (at least {need} needed: min_matched={min_matched!r}). Matched: {found}. "
            f"Recording channels: {_short(raw.ch_names, 40)}. Model channels: "
            f"{_short(target, 40)}. Rename the channels, lower min_matched, or use a model "
            f"trained for this montage.")
    for c in used:
        orig = raw.ch_names[supply[c]]
        report.matched[c] = orig
        if orig != c:
            report.renamed[orig] = c
    for c, why in bad.items():
        report.bad[raw.ch_names[supply[c]]] = why
    if bad:
        report.warn(f"{len(bad)} bad channel(s) treated as missing: "
                    + ", ".join(f"{raw.ch_names[supply[c]]} ({why})" for c, why in bad.items()))
    good_rows = np.array([used.index(c) for c in good], dtype=int)
    good_data = data[good_rows]
    good_data, spans = fill_nan_spans(good_data, report.sfreq_in)
    if spans:
        report.nan_spans = spans
        total = sum(b - a for a, b in spans)
        report.warn(f"{len(spans)} span(s) of NaN/inf samples ({total:.3g} s in all) filled by "
                    f"linear interpolation in time; source estimates there are not meaningful.")
    scale = check_units(good_data, report, units=units)
    report.unit_scale = scale
    report.units = "a.u." if units == "none" else "V"
    full = np.zeros((len(target), raw.n_times))
    for row, c in zip(good_data, good):
        full[target.index(c)] = row * scale
    fill = [c for c in target if c not in good]
    info = mne.create_info(target, report.sfreq_in, "eeg")
    aligned = mne.io.RawArray(full, info, verbose="error")
    montage, unknown = _positions(target, positions)
    if montage is not None:
        aligned.set_montage(montage, on_missing="ignore", verbose="error")
    if fill and missing == "interpolate":
        if unknown:
            raise ValueError(f"Cannot interpolate channels without positions: {_short(unknown)} "
                             f"are not in MNE's 10-05 montage. Give positions, or use "
                             f"missing='zero'.")
        aligned.info["bads"] = list(fill)
        try:
            aligned.interpolate_bads(reset_bads=True, mode="accurate", origin="auto",
                                     verbose="error")
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as err:
            raise ValueError(f"Spherical-spline interpolation of {_short(fill)} failed: {err}. "
                             f"Use missing='zero'.") from None
        report.interpolated = list(fill)
        absent = [c for c in fill if c not in bad]
        if absent:
            logger.info("interpolated %d channel(s) absent from the recording: %s", len(absent),
                        ", ".join(absent))
    elif fill:
        report.zero_filled = list(fill)
        logger.info("zero-filled %d channel(s): %s", len(fill), ", ".join(fill))
    if len(fill) > len(target) / 2:
        report.warn(f"{len(fill)} of {len(target)} model channels were filled "
                    f"({missing}); the estimate rests on {len(good)} recorded channels.")
    report.steps.append(f"realigned to {len(target)} channels ({missing} for {len(fill)})")
    return aligned, report


def _short(names, limit: int = 12) -> str:
    names = list(names)
    text = ", ".join(map(str, names[:limit]))
    return text + (f", ... ({len(names)} in all)" if len(names) > limit else "")


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
    duration = raw.n_times / sf_in
    if tmin is not None or tmax is not None:
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
    aligned, report = realign_channels(raw, ch_names, missing=missing, min_matched=min_matched,
                                       units=units, positions=positions,
                                       bad_channels=bad_channels, noisy_ratio=noisy_ratio,
                                       report=report)
    if l_freq is not None or h_freq is not None:
        nyq = sf_in / 2
        if h_freq is not None and not 0 < h_freq < nyq:
            raise ValueError(f"h_freq ({h_freq} Hz) must lie below the recording's Nyquist "
                             f"frequency ({nyq:g} Hz).")
        if l_freq is not None and not 0 < l_freq < (h_freq or nyq):
            raise ValueError(f"l_freq ({l_freq} Hz) must be positive and below h_freq.")
        aligned.filter(l_freq, h_freq, picks="all", verbose="error")
        report.steps.append(f"band-pass filtered {l_freq}-{h_freq} Hz")
        n_filter = len(mne.filter.create_filter(None, sf_in, l_freq, h_freq, verbose="error"))
        if n_filter > aligned.n_times:  # MNE's own warning is silenced above: keep it here
            report.warn(f"The {l_freq}-{h_freq} Hz filter ({n_filter} samples, "
                        f"{n_filter / sf_in:.2f} s) is longer than the recording "
                        f"({aligned.n_times} samples); distortion is likely. Filter a longer "
                        f"recording before cutting segments, or filter the sources "
                        f"(--source-band) and read them away from the edges.")
    if sf_in < sfreq:
        report.warn(f"The recording is sampled at {sf_in:g} Hz, below the model's {sfreq:g} Hz; "
                    f"upsampled (no content above {sf_in / 2:g} Hz).")
    if sf_in != sfreq:
        aligned.resample(sfreq, verbose="error")
        report.steps.append(f"resampled {sf_in:g} -> {sfreq:g} Hz")
    report.sfreq_out = sfreq
    data = aligned.get_data()
    present = [i for i, c in enumerate(report.target) if c not in report.zero_filled]
    data = data - data[present].mean(axis=0, keepdims=True)
    if report.zero_filled:
        data[[report.target.index(c) for c in report.zero_filled]] = 0.0
    report.steps.append("average reference")
    kind = "continuous" if n_avg == 1 and not isinstance(inst, mne.Evoked) else "average"
    if onsets is not None:
        data, t0, n_avg = _average_events(data, sfreq, onsets, epoch_tmin, epoch_tmax, report)
    if not np.isfinite(data).all():
        raise ValueError("The prepared EEG holds non-finite values (the recording's values are "
                         "too large or corrupt).")
    eeg = read_only(np.ascontiguousarray(data.T))
    return PreparedEEG(eeg=eeg, sfreq=sfreq, ch_names=list(report.target), tmin=float(t0),
                       kind="average" if onsets is not None else kind,
                       n_averaged=int(n_avg), report=report, info=aligned.info, source=source)


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


__all__ = ["READERS", "MISSING_MODES", "UNITS", "RealignmentReport", "PreparedEEG", "read_recording",
           "clean_channel_name", "detect_bad_channels", "fill_nan_spans", "check_units",
           "realign_channels", "prepare_recording"]
