"""Reading recordings in every format, realigning their channels, preprocessing them.

The recordings are written by the tests themselves (MNE's export writers on edfio, eeglabio and
pybv; a small BDF writer below; FIF with raw.save), with clinically spelled channel names, extra
and missing channels, and several sampling rates. The reference result is always built by hand
from the same file read with plain MNE: pick the right channels in the model's order, resample,
average-reference, apply the method.
"""

import struct

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from lightbunny.apply import ClassicalModel, image_recording  # noqa: E402
from lightbunny.inverse import make_inverse  # noqa: E402
from lightbunny.io import (  # noqa: E402
    READERS,
    RealignmentReport,
    check_units,
    clean_channel_name,
    detect_bad_channels,
    fill_nan_spans,
    match_channels,
    prepare_recording,
    read_recording,
    realign_channels,
)

MODEL_CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
                  "P7", "P3", "Pz", "P4", "P8", "O1", "O2"]
#: how a clinical file spells each model channel, per style
STYLES = {
    "ref": lambda c: f"EEG {c.upper()}-REF",
    "upper": lambda c: c.upper(),
    "le": lambda c: f"{c.lower()}-le",
    "a1": lambda c: f"EEG {c.upper()}-A1",
    "dot": lambda c: f"{c}.",
}
OLD = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}


def _model(n_sources=8, seed=0, sfreq=500.0):
    gain = np.random.default_rng(seed).standard_normal((len(MODEL_CHANNELS), n_sources))
    solver = make_inverse("sLORETA", gain, MODEL_CHANNELS)
    return ClassicalModel(solver, atlas_name="synthetic", sfreq=sfreq)


def _recording(sfreq, style="ref", *, n_seconds=3.0, missing=(), extra=True, seed=0,
               shuffle=True):
    """A Raw with clinical names (old 10-20 names for T7/T8/P7/P8), in shuffled order.

    Returns the Raw and the map model channel -> file channel name."""
    rng = np.random.default_rng(seed)
    n = int(n_seconds * sfreq)
    chans = [c for c in MODEL_CHANNELS if c not in missing]
    spell = {c: STYLES[style](OLD.get(c, c)) for c in chans}
    names = [spell[c] for c in chans]
    t = np.arange(n) / sfreq
    data = (rng.standard_normal((len(chans), n)) * 10e-6
            + 20e-6 * np.sin(2 * np.pi * 7 * t) * rng.standard_normal((len(chans), 1)))
    if extra:
        names += ["ECG", "EEG A2-REF", "Fp1-F7"]
        data = np.vstack([data, rng.standard_normal((3, n)) * 50e-6])
    order = rng.permutation(len(names)) if shuffle else np.arange(len(names))
    raw = mne.io.RawArray(data[order], mne.create_info([names[i] for i in order], sfreq, "eeg"),
                          verbose="error")
    return raw, spell


def _write_bdf(path, raw):
    """A minimal BDF (24-bit EDF) writer: 1 s records, physical unit uV."""
    data = raw.get_data() * 1e6
    sfreq = int(raw.info["sfreq"])
    n_rec = data.shape[1] // sfreq
    data = data[:, :n_rec * sfreq]
    n_sig = len(data)
    pmax = float(np.ceil(np.abs(data).max())) + 1.0
    dmin, dmax = -8388608, 8388607

    def field(text, width):
        return str(text)[:width].ljust(width).encode("ascii")

    head = b"\xffBIOSEMI" + field("X", 80) + field("X", 80) + field("01.01.20", 8)
    head += field("00.00.00", 8) + field(256 * (n_sig + 1), 8) + field("24BIT", 44)
    head += field(n_rec, 8) + field(1, 8) + field(n_sig, 4)
    for key, width in (("label", 16), ("trans", 80), ("dim", 8), ("pmin", 8), ("pmax", 8),
                       ("dmin", 8), ("dmax", 8), ("filt", 80), ("ns", 8), ("res", 32)):
        for name in raw.ch_names:
            value = {"label": name, "trans": "AgAgCl", "dim": "uV", "pmin": -pmax, "pmax": pmax,
                     "dmin": dmin, "dmax": dmax, "filt": "", "ns": sfreq, "res": ""}[key]
            head += field(value, width)
    digital = np.round((data + pmax) / (2 * pmax) * (dmax - dmin) + dmin).astype(np.int32)
    body = bytearray()
    for r in range(n_rec):
        for row in digital[:, r * sfreq:(r + 1) * sfreq]:
            body += b"".join(struct.pack("<i", int(v))[:3] for v in row)
    path.write_bytes(head + bytes(body))


def _write(raw, path):
    kind = path.suffix
    writer = {".edf": "edfio", ".set": "eeglabio", ".vhdr": "pybv"}.get(kind)
    if writer:
        pytest.importorskip(writer, reason=f"{writer} writes {kind} files (pip install .[test])")
    if kind == ".fif":
        raw.save(path, overwrite=True, verbose="error")
    elif kind == ".bdf":
        _write_bdf(path, raw)
    else:
        fmt = {".edf": "edf", ".set": "eeglab", ".vhdr": "brainvision"}[kind]
        mne.export.export_raw(path, raw, fmt=fmt, overwrite=True, verbose="error")
    return path


def _by_hand(path, spell, model, target_sfreq=500.0):
    """The method applied to the correctly aligned array, built with plain MNE."""
    raw = mne.io.read_raw(path, preload=True, verbose="error")
    data = raw.get_data(picks=[raw.ch_names.index(spell[c]) for c in model.ch_names])
    aligned = mne.io.RawArray(data, mne.create_info(model.ch_names, raw.info["sfreq"], "eeg"),
                              verbose="error")
    if raw.info["sfreq"] != target_sfreq:
        aligned.resample(target_sfreq, verbose="error")
    x = aligned.get_data()
    x = x - x.mean(0)
    return model.apply(x.T)


# ------------------------------------------------------------------------------ names


@pytest.mark.parametrize("name, expected", [
    ("EEG Fp1-REF", "fp1"), ("FP1", "fp1"), ("fp1-le", "fp1"), ("EEG FP1-A1", "fp1"),
    ("Fp1", "fp1"), ("EEG FPZ-REF", "fpz"), ("T3", "t7"), ("EEG T4-REF", "t8"),
    ("t5-le", "p7"), ("EEG T6-A2", "p8"), ("Fc5.", "fc5"), ("Cz..", "cz"), ("POL C3", "c3"),
    ("EEG C4 - M1", "c4"), ("Fp1-F7", "fp1-f7"), ("A1", "a1"), ("ECG", "ecg"),
])
def test_clean_channel_name(name, expected):
    assert clean_channel_name(name).casefold() == expected


# ------------------------------------------------------------------------------ reading


def test_match_channels_reasons_and_duplicates():
    report = RealignmentReport(target=["Fp1", "T7", "Cz"])
    names = ["EEG Fp1-REF", "ECG", "FP1", "EEG T3-REF", "Fp1-F7", "EOG", "X9", "cz"]
    types = ["eeg", "ecg", "eeg", "eeg", "eeg", "eeg", "eeg", "eeg"]
    supply = match_channels(names, types, ["Fp1", "T7", "Cz"], report)
    assert supply == {"Fp1": 0, "T7": 3, "Cz": 7}  # first match wins, old names mapped
    assert report.dropped == {
        "ECG": "non-EEG channel type 'ecg'",
        "FP1": "duplicate of EEG Fp1-REF (both read as Fp1)",
        "Fp1-F7": "bipolar or unknown name, not in the model",
        "EOG": "non-EEG channel (by name)",
        "X9": "not in the model's channels",
    }
    with pytest.raises(ValueError, match="no EEG channels"):
        match_channels(["ECG"], ["ecg"], ["Cz"])


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No EEG recording"):
        read_recording(tmp_path / "absent.edf")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="Allowed: '.edf'"):
        read_recording(tmp_path / "notes.txt")
    for ext in (".edf", ".bdf", ".vhdr", ".set", ".fif"):
        bad = tmp_path / f"garbage{ext}"
        bad.write_bytes(b"\x00\x01 not an eeg file" * 10)
        with pytest.raises(ValueError, match="Could not read"):
            read_recording(bad)
    with pytest.raises(ValueError, match="is not a file"):
        read_recording(tmp_path)
    with pytest.raises(ValueError, match="file path or an mne"):
        read_recording(np.zeros((3, 3)))
    assert set(READERS) >= {".edf", ".bdf", ".set", ".vhdr", ".fif"}


@pytest.mark.parametrize("ext, sfreq, style", [
    (".edf", 256.0, "ref"), (".bdf", 512.0, "upper"), (".set", 250.0, "le"),
    (".vhdr", 1000.0, "a1"), (".fif", 500.0, "dot"),
])
def test_formats_realign_equals_aligned_array(tmp_path, ext, sfreq, style):
    raw, spell = _recording(sfreq, style, seed=int(sfreq))
    path = _write(raw, tmp_path / f"rec{ext}")
    model = _model()
    result = image_recording(path, model)
    rep = result.prepared.report
    # the report says what was done
    assert rep.matched == spell
    assert set(rep.renamed) == {v for k, v in spell.items() if v != k}
    for c in ("T7", "T8", "P7", "P8"):
        assert rep.renamed[spell[c]] == c
    assert set(rep.dropped) == {"ECG", "EEG A2-REF", "Fp1-F7"}
    assert "non-EEG" in rep.dropped["ECG"] and "bipolar" in rep.dropped["Fp1-F7"]
    assert rep.interpolated == [] and rep.bad == {}
    assert rep.sfreq_in == sfreq and rep.sfreq_out == 500.0
    assert (sfreq < 500) == any("upsampled" in w for w in rep.warnings)
    # and the result is the method applied to the correctly aligned array
    expected = _by_hand(path, spell, model)
    assert result.source.shape == expected.shape
    np.testing.assert_allclose(result.source, expected, rtol=1e-9, atol=1e-12 * abs(expected).max())


def test_missing_channels_interpolated_like_mne(tmp_path):
    missing = ("Cz", "O1", "F8")
    raw, spell = _recording(256.0, "ref", missing=missing, shuffle=False, extra=False)
    prep = prepare_recording(raw, MODEL_CHANNELS, sfreq=256.0)
    assert prep.report.interpolated == list(m for m in MODEL_CHANNELS if m in missing)
    # MNE's own interpolation of a correctly named recording with those channels marked bad
    full = np.zeros((len(MODEL_CHANNELS), raw.n_times))
    for i, c in enumerate(MODEL_CHANNELS):
        if c in spell:
            full[i] = raw.get_data(picks=[spell[c]])[0]
    ref = mne.io.RawArray(full, mne.create_info(MODEL_CHANNELS, 256.0, "eeg"), verbose="error")
    ref.set_montage("colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages()
                    else "standard_1005", verbose="error")
    ref.info["bads"] = list(missing)
    ref.interpolate_bads(verbose="error")
    x = ref.get_data()
    np.testing.assert_allclose(prep.eeg, (x - x.mean(0)).T, rtol=1e-6, atol=1e-12)
    # zero-filling instead: those columns are exactly 0 after the average reference
    prep0 = prepare_recording(raw, MODEL_CHANNELS, sfreq=256.0, missing="zero")
    cols = [MODEL_CHANNELS.index(m) for m in missing]
    assert prep0.report.zero_filled == prep.report.interpolated
    assert np.all(prep0.eeg[:, cols] == 0) and np.all(prep0.eeg.std(0)[
        [i for i in range(19) if i not in cols]] > 0)


def test_bad_channels_nan_spans_and_units():
    raw, spell = _recording(500.0, "upper", extra=False, shuffle=False)
    data = raw.get_data()
    data[raw.ch_names.index(spell["Pz"])] = 0.0  # flat
    data[raw.ch_names.index(spell["C3"])] = np.nan  # NaN only
    data[:, 400:450] = np.nan  # a NaN span over every channel
    raw2 = mne.io.RawArray(data * 1e6, raw.info, verbose="error")  # uV stored as V
    raw2.info["bads"] = [spell["O2"]]
    prep = prepare_recording(raw2, MODEL_CHANNELS)
    rep = prep.report
    assert rep.bad == {spell["Pz"]: "flat", spell["C3"]: "NaN in 100% of samples",
                       spell["O2"]: "marked bad in the file"}
    assert rep.interpolated == ["C3", "Pz", "O2"]
    assert rep.nan_spans == [[0.8, 0.9]]
    assert rep.unit_scale == 1e-6
    assert any("uV stored as V" in w for w in rep.warnings)
    assert any("NaN" in w for w in rep.warnings) and any("bad channel" in w for w in rep.warnings)
    assert np.isfinite(prep.eeg).all() and 1e-6 < prep.eeg.std() < 1e-4
    # units='V' trusts the file
    assert prepare_recording(raw2, MODEL_CHANNELS, units="V").report.unit_scale == 1.0


def test_data_checks_units():
    x = np.random.default_rng(0).normal(size=(5, 200))
    assert detect_bad_channels(x) == {}
    x[3] *= 1000
    assert "noisy" in detect_bad_channels(x)[3]
    assert detect_bad_channels(x, noisy_ratio=None) == {}
    filled, spans = fill_nan_spans(np.array([[1.0, np.nan, 3.0, np.nan]]), 2.0)
    assert filled.tolist() == [[1.0, 2.0, 3.0, 3.0]] and spans == [[0.5, 1.0], [1.5, 2.0]]
    rep = RealignmentReport(target=[])
    assert check_units(x * 1e-5, rep) == 1.0
    assert check_units(x * 1e-5 * 1e6, rep) == 1e-6
    with pytest.raises(ValueError, match="implausible in any unit"):
        check_units(x * 1e20, rep)


def test_too_few_channels_lists_what_was_found():
    raw, _ = _recording(500.0, "ref")
    raw.pick([c for c in raw.ch_names if "FP" in c or c == "ECG"])
    with pytest.raises(ValueError, match=r"Only 2 usable channels.*EEG FP1-REF->Fp1"):
        prepare_recording(raw, MODEL_CHANNELS)
    # a lower minimum lets it through, interpolating the rest
    prep = prepare_recording(raw, MODEL_CHANNELS, min_matched=2, missing="zero")
    assert len(prep.report.zero_filled) == 17
    with pytest.raises(ValueError, match="min_matched"):
        prepare_recording(raw, MODEL_CHANNELS, min_matched=0)


def test_no_eeg_channels():
    info = mne.create_info(["ECG", "EOG"], 500.0, ["ecg", "eog"])
    raw = mne.io.RawArray(np.random.default_rng(0).normal(size=(2, 1000)), info, verbose="error")
    with pytest.raises(ValueError, match="no EEG channels"):
        realign_channels(raw, MODEL_CHANNELS)


def test_time_range_events_epochs_evoked():
    raw, spell = _recording(500.0, "ref", n_seconds=6.0, extra=False)
    prep = prepare_recording(raw, MODEL_CHANNELS, tmin=1.0, tmax=2.0)
    assert prep.n_times == 501 and prep.tmin == 1.0 and prep.kind == "continuous"
    full = prepare_recording(raw, MODEL_CHANNELS)
    # cropping then referencing equals referencing then cropping (sfreq unchanged)
    np.testing.assert_allclose(prep.eeg, full.eeg[500:1001], atol=1e-15)
    raw.set_annotations(mne.Annotations([1.0, 2.5, 4.0, 5.9], [0.0] * 4,
                                        ["spike", "spike", "blink", "spike"]))
    ev = prepare_recording(raw, MODEL_CHANNELS, events="spike")
    assert ev.kind == "average" and ev.n_averaged == 2 and ev.n_times == 500 and ev.tmin == -0.5
    assert any("too close to the edges" in w for w in ev.report.warnings)
    expected = (full.eeg[250:750] + full.eeg[1000:1500]) / 2
    np.testing.assert_allclose(ev.eeg, expected, atol=1e-15)
    times = prepare_recording(raw, MODEL_CHANNELS, events=[1.0, 2.5])
    np.testing.assert_allclose(times.eeg, ev.eeg, atol=1e-15)
    with pytest.raises(ValueError, match="No annotation named"):
        prepare_recording(raw, MODEL_CHANNELS, events="seizure")
    with pytest.raises(ValueError, match="outside the recording"):
        prepare_recording(raw, MODEL_CHANNELS, tmin=10.0, tmax=12.0)
    with pytest.raises(ValueError, match="must be below"):
        prepare_recording(raw, MODEL_CHANNELS, tmin=2.0, tmax=1.0)
    # in-memory epochs are averaged first; an evoked is used as it is
    events = np.array([[500, 0, 1], [1250, 0, 1], [2000, 0, 1]])
    epochs = mne.Epochs(raw, events, tmin=-0.2, tmax=0.398, baseline=None, preload=True,
                        verbose="error")
    ep = prepare_recording(epochs, MODEL_CHANNELS)
    evk = prepare_recording(epochs.average(), MODEL_CHANNELS)
    assert ep.kind == evk.kind == "average" and ep.n_averaged == 3 and ep.n_times == 300
    assert ep.tmin == pytest.approx(-0.2)
    np.testing.assert_allclose(ep.eeg, evk.eeg)


def test_rates_and_filters():
    raw, _ = _recording(80.0, "ref", extra=False)
    with pytest.raises(ValueError, match="below the minimum of 100 Hz"):
        prepare_recording(raw, MODEL_CHANNELS)
    raw, _ = _recording(256.0, "ref", extra=False)
    with pytest.raises(ValueError, match="Nyquist"):
        prepare_recording(raw, MODEL_CHANNELS, h_freq=200.0)
    prep = prepare_recording(raw, MODEL_CHANNELS, l_freq=1.0, h_freq=40.0)
    assert any("filtered" in s for s in prep.report.steps) and prep.n_times == 1500


def test_truncated_edf_is_read_with_a_warning_in_the_report(tmp_path):
    # a truncated EDF used to be imaged for the part that survived with no word said
    import mne
    import numpy as np

    from lightbunny.io import prepare_recording, read_recording

    info = mne.create_info(["Fp1", "Cz", "O1", "T7"], 256.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).normal(size=(4, 256 * 20)) * 1e-5, info,
                          verbose=False)
    full = tmp_path / "full.edf"
    mne.export.export_raw(full, raw, fmt="edf", overwrite=True, verbose="error")
    data = full.read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    problems = []
    inst = read_recording(cut, problems=problems)
    assert inst.times[-1] < 15 and len(problems) == 1 and "truncated" in problems[0]
    assert read_recording(full, problems=(clean := [])) is not None and clean == []
    prepared = prepare_recording(cut, ["Fp1", "Cz", "O1", "T7"])
    assert any("truncated" in w for w in prepared.report.warnings)
