"""EEG channels of a recording matched to a model's: names, bad channels, units, filling.

:func:`realign_channels` picks the model's channels in the model's order
(:func:`match_channels`, by :func:`clean_channel_name`), drops non-EEG and extra channels,
detects bad channels (:func:`detect_bad_channels`: flat, mostly NaN, far noisier than the rest,
or listed in ``info['bads']``), fills short NaN spans (:func:`fill_nan_spans`), checks the
amplitude unit (:func:`check_units`), and interpolates missing and bad channels with MNE's
spherical splines (or fills them with zeros, as the seed did). What it did is returned as a
:class:`RealignmentReport`. :mod:`lightbunny.io` re-exports all of these.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ._logging import logger
from .montage import OLD_NAMES, channel_montage
from .utils import check_option

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


def _short(names, limit: int = 12) -> str:
    names = list(names)
    text = ", ".join(map(str, names[:limit]))
    return text + (f", ... ({len(names)} in all)" if len(names) > limit else "")


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

    The steps: match the recording's channels to the model's (:func:`match_channels`), find
    bad ones (:func:`_bad_matches`), check that enough are usable, fill NaN spans and check the
    unit (:func:`_clean_good`), then fill the rest (:func:`_fill_missing`).
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
    supply = match_channels(raw.ch_names, raw.get_channel_types(), target, report)
    used = [c for c in target if c in supply]
    data = raw.get_data(picks=[supply[c] for c in used]) if supply else \
        np.zeros((0, raw.n_times))
    bad = _bad_matches(raw, data, used, supply, bad_channels, noisy_ratio)
    good = [c for c in used if c not in bad]
    if len(good) < need:
        raise ValueError(_too_few_message(raw, target, used, supply, bad, good, need,
                                          min_matched))
    _record_matches(report, raw.ch_names, used, supply, bad)
    good_rows = np.array([used.index(c) for c in good], dtype=int)
    good_data = _clean_good(data[good_rows], report, units)
    full = np.zeros((len(target), raw.n_times))
    for row, c in zip(good_data, good):
        full[target.index(c)] = row
    fill = [c for c in target if c not in good]
    aligned = mne.io.RawArray(full, mne.create_info(target, report.sfreq_in, "eeg"),
                              verbose="error")
    montage, unknown = channel_montage(target, positions)
    if montage is not None:
        aligned.set_montage(montage, on_missing="ignore", verbose="error")
    _fill_missing(aligned, fill, bad, missing, unknown, report)
    if len(fill) > len(target) / 2:
        report.warn(f"{len(fill)} of {len(target)} model channels were filled "
                    f"({missing}); the estimate rests on {len(good)} recorded channels.")
    report.steps.append(f"realigned to {len(target)} channels ({missing} for {len(fill)})")
    return aligned, report


def _drop_reason(name: str, kind: str, clean: str, by_key: dict) -> str | None:
    """Why a recording channel cannot supply a model channel (None: it can, by its name)."""
    if kind != "eeg":
        return f"non-EEG channel type {kind!r}"
    if clean.upper() in NON_EEG_NAMES:
        return "non-EEG channel (by name)"
    if clean.casefold() not in by_key:
        return ("bipolar or unknown name, not in the model" if "-" in clean
                else "not in the model's channels")
    return None


def match_channels(names, types, target, report: RealignmentReport | None = None) -> dict:
    """Which recording channel supplies each model channel, matched by cleaned name.

    Parameters
    ----------
    names, types : sequence of str
        The recording's channel names and MNE channel types (``raw.get_channel_types()``).
    target : sequence of str
        The model's channels.
    report : RealignmentReport, optional
        Receives in ``dropped`` each recording channel not used and why (non-EEG, not in the
        model, a duplicate of an earlier match).

    Returns
    -------
    supply : dict
        Model channel -> index of the recording channel that supplies it.

    Raises
    ------
    ValueError
        The recording has no EEG channel.

    Examples
    --------
    >>> match_channels(["EEG Fp1-REF", "ECG", "FP1", "EEG T3-REF"], ["eeg", "ecg", "eeg", "eeg"],
    ...                ["Fp1", "T7", "Cz"])
    {'Fp1': 0, 'T7': 3}
    """
    by_key = {_key(c): c for c in target}
    dropped = report.dropped if report is not None else {}
    supply = {}
    for idx, (name, kind) in enumerate(zip(names, types)):
        clean = clean_channel_name(name)
        why = _drop_reason(name, kind, clean, by_key)
        model = by_key.get(clean.casefold())
        if why is None and model in supply:
            why = f"duplicate of {names[supply[model]]} (both read as {model})"
        if why is None:
            supply[model] = idx
        else:
            dropped[name] = why
    if not any(t == "eeg" for t in types):
        raise ValueError(f"The recording has no EEG channels (channel types: "
                         f"{sorted(set(types))}; channels: {_short(names)}).")
    return supply


def _bad_matches(raw, data, used, supply, bad_channels, noisy_ratio) -> dict:
    """Model channel -> why its recording channel is bad (detected, or marked in the file)."""
    bad = {}
    if bad_channels and used:
        for i, why in detect_bad_channels(data, noisy_ratio=noisy_ratio).items():
            bad[used[i]] = why
    for name in raw.info["bads"]:
        for c in used:
            if raw.ch_names[supply[c]] == name and c not in bad:
                bad[c] = "marked bad in the file"
    return bad


def _too_few_message(raw, target, used, supply, bad, good, need, min_matched) -> str:
    found = ", ".join(f"{raw.ch_names[supply[c]]}->{c}" + (f" (bad: {bad[c]})" if c in bad
                                                             else "") for c in used) or "none"
    return (f"Only {len(good)} usable channels of the model's {len(target)} were found in the "
            f"recording (at least {need} needed: min_matched={min_matched!r}). Matched: {found}. "
            f"Recording channels: {_short(raw.ch_names, 40)}. Model channels: "
            f"{_short(target, 40)}. Rename the channels, lower min_matched, or use a model "
            f"trained for this montage.")


def _record_matches(report: RealignmentReport, names, used, supply, bad) -> None:
    """Matches, renames and bad channels into ``report`` (bad ones also as a warning)."""
    for c in used:
        orig = names[supply[c]]
        report.matched[c] = orig
        if orig != c:
            report.renamed[orig] = c
    for c, why in bad.items():
        report.bad[names[supply[c]]] = why
    if bad:
        report.warn(f"{len(bad)} bad channel(s) treated as missing: "
                    + ", ".join(f"{names[supply[c]]} ({why})" for c, why in bad.items()))


def _clean_good(good_data: np.ndarray, report: RealignmentReport, units: str) -> np.ndarray:
    """The good channels with NaN spans filled, in V (or a.u.); both steps in ``report``."""
    good_data, spans = fill_nan_spans(good_data, report.sfreq_in)
    if spans:
        report.nan_spans = spans
        total = sum(b - a for a, b in spans)
        report.warn(f"{len(spans)} span(s) of NaN/inf samples ({total:.3g} s in all) filled by "
                    f"linear interpolation in time; source estimates there are not meaningful.")
    scale = check_units(good_data, report, units=units)
    report.unit_scale = scale
    report.units = "a.u." if units == "none" else "V"
    return good_data * scale


def _fill_missing(aligned, fill, bad, missing, unknown, report: RealignmentReport) -> None:
    """Interpolate (spherical splines) or zero-fill the model channels ``fill`` in place."""
    if not fill:
        return
    if missing == "zero":
        report.zero_filled = list(fill)
        logger.info("zero-filled %d channel(s): %s", len(fill), ", ".join(fill))
        return
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


__all__ = ["MISSING_MODES", "UNITS", "REFERENCE_SUFFIXES", "NON_EEG_NAMES", "EEG_STD_RANGE",
           "RealignmentReport", "clean_channel_name", "match_channels", "detect_bad_channels",
           "fill_nan_spans", "check_units", "realign_channels"]
