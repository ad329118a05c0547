"""Real EEG as a clinical researcher meets it: many recordings in one process, MATLAB/NumPy
arrays, scale-free data, imported leadfields, source band-pass, segment averaging, reports."""

import csv
import json
import logging

import numpy as np
import pytest
import scipy.io as sio

from lightbunny.atlas import load_atlas
from lightbunny.clinical import (
    active_regions,
    apply_many,
    filter_sources,
    normalise_power,
    region_power,
)
from lightbunny.external import (
    array_segments,
    load_leadfield_file,
    read_array_recording,
    region_sum,
)
from lightbunny.io import RealignmentReport, check_units

SFREQ = 500.0


def _sines(freqs, amps, n=1000, sfreq=SFREQ):
    t = np.arange(n) / sfreq
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in zip(freqs, amps))


def _amplitude(x, f, sfreq=SFREQ):
    """Amplitude of the f-Hz component of x by projection on sin/cos (x holds whole cycles)."""
    t = np.arange(len(x)) / sfreq
    return float(np.hypot(2 * np.mean(x * np.sin(2 * np.pi * f * t)),
                          2 * np.mean(x * np.cos(2 * np.pi * f * t))))


# ------------------------------------------------------------------ source-space processing
def test_source_band_passes_5hz_and_removes_40hz():
    n = 5000  # 10 s: the FIR (~1.7 s for a 1 Hz edge) fits well inside
    src = np.column_stack([_sines([5, 40], [1.0, 1.0], n), _sines([40], [2.0], n)])
    out, notes = filter_sources(src, SFREQ, (1.0, 30.0))
    mid = slice(1000, 4000)  # away from the edges
    assert out.shape == src.shape and not notes
    assert _amplitude(out[mid, 0], 5) == pytest.approx(1.0, abs=0.01)
    assert _amplitude(out[mid, 0], 40) < 0.01
    assert np.abs(out[mid, 1]).max() < 0.02  # 40 Hz only: nothing passes
    # the envelope of a pure 10 Hz sinusoid of amplitude 3 is 3
    env, _ = filter_sources(_sines([10], [3.0], n)[:, None], SFREQ, (1.0, 30.0), envelope=True)
    assert np.allclose(env[mid, 0], 3.0, atol=0.05)


def test_source_band_on_a_short_signal_says_so():
    out, notes = filter_sources(_sines([10], [1.0], 500)[:, None], SFREQ, (1.0, 30.0))
    assert out.shape == (500, 1)
    assert any("longer than the signal" in n for n in notes)
    with pytest.raises(ValueError, match="Nyquist"):
        filter_sources(np.zeros((500, 1)), SFREQ, (1.0, 300.0))


def test_power_normalisation_and_otsu_active_regions():
    src = np.zeros((100, 10))
    src[:, 3] = 2.0  # power 4
    src[:, 7] = 1.9  # power 3.61
    src[:, :3] = 0.1
    p = region_power(src)
    assert p[3] == pytest.approx(4.0) and p[0] == pytest.approx(0.01)
    norm = normalise_power(p)
    assert norm.max() == 1.0 and norm[7] == pytest.approx(3.61 / 4)
    idx, thr = active_regions(norm)
    assert idx.tolist() == [3, 7] and 0.0025 < thr < 0.9


# ------------------------------------------------------------------ arrays and units
def test_array_layouts_and_mat_segments(tmp_path):
    names = ["Fz", "Cz", "Pz", "Oz"]
    data = np.arange(3 * 4 * 500, dtype=float).reshape(3, 4, 500)
    sio.savemat(tmp_path / "seg.mat", {"data": data, "note": np.array(["x"])})
    segs = read_array_recording(tmp_path / "seg.mat", sfreq=SFREQ, ch_names=names)
    assert [lab for lab, _ in segs] == ["seg.mat#0", "seg.mat#1", "seg.mat#2"]
    assert np.array_equal(segs[1][1].get_data(), data[1]) and segs[1][1].ch_names == names
    # (n_times, n_chans) and (n_chans, n_times, n_segments) are recognised by the channel count
    assert np.array_equal(array_segments(data[0].T, 4)[0], data[0])
    assert np.array_equal(array_segments(np.moveaxis(data, 0, -1), 4), data)
    np.savez(tmp_path / "a.npz", eeg=data[0], other=np.ones((2, 2)))
    (_, raw), = read_array_recording(tmp_path / "a.npz", sfreq=SFREQ, ch_names=names)
    assert np.array_equal(raw.get_data(), data[0])
    with pytest.raises(ValueError, match="sampling rate"):
        read_array_recording(tmp_path / "seg.mat", sfreq=None, ch_names=names)
    with pytest.raises(ValueError, match="channel names"):
        read_array_recording(tmp_path / "seg.mat", sfreq=SFREQ)
    with pytest.raises(ValueError, match="no axis"):
        read_array_recording(tmp_path / "seg.mat", sfreq=SFREQ, ch_names=names[:2])


def test_units_none_keeps_scale_free_data_without_warning():
    data = np.random.default_rng(0).uniform(-1, 1, (8, 500))  # max |x| = 1, "no unit"
    auto = RealignmentReport(target=[])
    assert check_units(data, auto) == 1e-6 and auto.warnings  # auto: taken as uV stored as V
    none = RealignmentReport(target=[])
    assert check_units(data, none, units="none") == 1.0 and not none.warnings
    assert check_units(data * 1e6, RealignmentReport(target=[]), units="uV") == 1e-6


# ------------------------------------------------------------------ leadfield import
def test_vertex_level_leadfield_is_summed_per_region(tiny_atlas, tmp_path, rng):
    names = ["Fz", "Cz", "Pz", "Oz", "C3", "C4"]
    g = rng.standard_normal((len(names), tiny_atlas.n_vertices))
    np.save(tmp_path / "lf.npy", g)
    lf = load_leadfield_file(tmp_path / "lf.npy", tiny_atlas, ch_names=names)
    assert lf.attrs["level"] == "vertex" and lf.gain.shape == (6, tiny_atlas.n_regions)
    for r in range(tiny_atlas.n_regions):
        assert np.allclose(lf.gain[:, r], g[:, tiny_atlas.vertex_region == r].sum(1))
    assert np.isfinite(lf.ch_pos).all()  # 10-05 positions of the names
    # free orientation (x, y, z per vertex), transposed, in a .mat file
    g3 = rng.standard_normal((len(names), 3 * tiny_atlas.n_vertices))
    sio.savemat(tmp_path / "lf3.mat", {"L": g3.T})
    lf3 = load_leadfield_file(tmp_path / "lf3.mat", tiny_atlas, ch_names=names)
    assert lf3.attrs["level"].startswith("vertex (free")
    summed = g3.reshape(6, -1, 3).sum(-1)
    assert np.allclose(lf3.gain, region_sum(summed, tiny_atlas.vertex_region,
                                            tiny_atlas.n_regions))
    np.save(tmp_path / "bad.npy", g[:, :7])
    with pytest.raises(ValueError, match="another atlas"):
        load_leadfield_file(tmp_path / "bad.npy", tiny_atlas, ch_names=names)


def test_deepsif_region_leadfield_is_detected_as_region_level(shared_anatomy):
    atlas = load_atlas("fsaverage994", data_dir=shared_anatomy)
    lf = load_leadfield_file(shared_anatomy / "leadfield_75_20k.mat", atlas,
                             montage="deepsif75", data_dir=shared_anatomy)
    assert lf.attrs["level"] == "region" and lf.attrs["variable"] == "fwd"
    assert lf.gain.shape == (75, 994) and len(lf.ch_names) == 75
    fwd = sio.loadmat(shared_anatomy / "leadfield_75_20k.mat")["fwd"]
    assert np.array_equal(lf.gain, fwd)


# ------------------------------------------------------------------ region descriptions
def test_region_table_fsaverage994(shared_anatomy):
    from lightbunny.regions import mni305_to_mni152, region_table

    atlas = load_atlas("fsaverage994", data_dir=shared_anatomy)
    rows = region_table(atlas)
    r = rows[958]
    assert r["name"] == "rMT_958" and r["hemisphere"] == "right" and r["name_ok"]
    assert r["label"] == "middletemporal" and r["lobe"] == "temporal"
    assert r["mni305_mm"] == r["centre_mm"] and r["centre_mm"][0] > 0
    assert np.allclose(r["mni152_mm"], mni305_to_mni152(atlas.centres[958]), atol=0.06)
    assert all(row["name_ok"] for row in rows) and all(row["label"] for row in rows)
    assert sum("brodmann" in row for row in rows) > 900  # PALS-B12 in the data folder


# ------------------------------------------------------------------ the batch
def _lf_recording(lf, region, signal):
    """EEG (n_chans, n_times) of one region's activity through a Leadfield (or a gain array),
    average-referenced."""
    eeg = np.outer(getattr(lf, "gain", lf)[:, region], signal)
    return eeg - eeg.mean(0)


@pytest.mark.slow
def test_apply_many_known_region_band_and_average(tmp_path, caplog):
    """Region-level leadfield imported from .npy, two .npy recordings of one region (5 Hz + 40
    Hz): sLORETA finds the region; --source-band 1 30 removes 40 Hz from its source time course;
    the segment average is normalised per segment."""
    from lightbunny.leadfield import make_leadfield

    atlas = load_atlas("tvb76")
    lf = make_leadfield(atlas, ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz",
                                "C4", "T8", "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2"])
    np.save(tmp_path / "gain.npy", lf.gain)
    region = int(np.argmax(np.abs(lf.average_referenced()).max(0)))
    sig = _sines([5, 40], [1.0, 1.0], 5000)
    np.save(tmp_path / "a.npy", _lf_recording(lf, region, sig))
    np.save(tmp_path / "b.npy", 1000 * _lf_recording(lf, region, sig))  # other amplitude
    kw = dict(methods=["sLORETA"], leadfield=tmp_path / "gain.npy", ch_names=list(lf.ch_names),
              sfreq=SFREQ, units="none", figures=False)
    with caplog.at_level(logging.INFO, logger="lightbunny"):
        plain = apply_many([tmp_path / "a.npy"], tmp_path / "plain", **kw)
        band = apply_many([str(tmp_path / "*.npy").replace("*", "[ab]")], tmp_path / "band",
                          source_band=(1.0, 30.0), average_segments=True, **kw)
    assert "region-level leadfield" in caplog.text and "atlas tvb76" in caplog.text
    assert not any("uV stored as V" in r.message for r in caplog.records)
    assert [r["recording"] for r in band["rows"]] == ["a.npy", "b.npy"]
    for row in band["rows"] + plain["rows"]:
        assert row["top_region"] == atlas.region_names[region]
    mid = slice(1000, 4000)
    x0 = plain["results"][("a.npy", "sLORETA")].source[mid, region]
    x1 = band["results"][("a.npy", "sLORETA")].source[mid, region]
    assert _amplitude(x0, 40) == pytest.approx(_amplitude(x0, 5), rel=1e-6)
    assert _amplitude(x1, 40) < 0.01 * _amplitude(x1, 5)
    assert _amplitude(x1, 5) == pytest.approx(_amplitude(x0, 5), rel=0.01)
    # both segments weigh the same in the average: it equals each normalised map
    avg = band["average"]["sLORETA"]
    assert avg["n_segments"] == 2
    assert avg["top_regions"][0]["index"] == region
    assert avg["top_regions"][0]["mean_normalised_power"] == pytest.approx(1.0)
    rows = list(csv.DictReader(open(tmp_path / "band" / "summary.csv")))
    assert len(rows) == 2 and rows[0]["lobe"]
    report = json.loads((tmp_path / "band" / "a.npy" / "report.json").read_text())
    assert report["source_band"] == [1.0, 30.0] and "mean over time" in report["power_definition"]


@pytest.mark.slow
def test_cli_apply_three_formats_in_one_process(tmp_path, shared_anatomy, monkeypatch, capsys):
    """`lightbunny apply rec1.fif rec2.edf seg.mat --sfreq 500 --montage deepsif75 --units none
    --method sloreta --out DIR`: three recordings, one leadfield, one summary."""
    import mne

    import lightbunny.leadfield as leadfield_mod
    from lightbunny.cli import main
    from lightbunny.leadfield import make_leadfield

    monkeypatch.setenv("LIGHTBUNNY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LIGHTBUNNY_DATA", raising=False)
    atlas = load_atlas("tvb76")
    lf = make_leadfield(atlas, "deepsif75", data_dir=shared_anatomy)
    region = int(np.argmax(np.abs(lf.average_referenced()).max(0)))
    t = np.arange(500) / SFREQ
    spike = np.exp(-0.5 * ((t - 0.5) / 0.02) ** 2)
    eeg = _lf_recording(lf, region, spike)
    eeg = eeg / np.abs(eeg).max()  # scale-free, max |x| = 1, as the clinical segments
    names = list(lf.ch_names)
    raw = mne.io.RawArray(eeg, mne.create_info(names, SFREQ, "eeg"), verbose="error")
    raw.save(tmp_path / "rec1_raw.fif", verbose="error")
    raw.copy().resample(256.0, verbose="error").export(tmp_path / "rec2.edf", verbose="error")
    sio.savemat(tmp_path / "seg.mat", {"seg": eeg})
    calls = []
    real = leadfield_mod.make_leadfield
    monkeypatch.setattr(leadfield_mod, "make_leadfield",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    out = tmp_path / "out"
    handlers = list(logging.getLogger("lightbunny").handlers)
    try:
        rc = main(["apply", str(tmp_path / "rec1_raw.fif"), str(tmp_path / "rec2.edf"),
                   str(tmp_path / "seg.mat"), "--sfreq", "500", "--montage", "deepsif75",
                   "--units", "none", "--method", "sloreta", "--out", str(out),
                   "--data-dir", str(shared_anatomy)])
    finally:
        logging.getLogger("lightbunny").handlers[:] = handlers
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert len(calls) == 1  # one leadfield for the three recordings
    assert "stored as V" not in captured.err
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["recording"] for r in rows] == ["rec1_raw.fif", "rec2.edf", "seg.mat"]
    for r in rows:
        top = atlas.region_names.index(r["top_region"])
        assert top == region or atlas.adjacency[region, top], r
        d = out / r["recording"]
        assert (d / "report.html").is_file() and (d / "topomap.png").is_file()
        assert (d / "regions.csv").is_file()
        report = json.loads((d / "report.json").read_text())
        assert report["eeg_units"] == "a.u." and report["unit_scale"] == 1.0
    assert (out / "summary.md").read_text().count("\n| ") >= 4


def test_checkpoint_and_method_on_one_recording_compare_page(tmp_path, tiny_atlas, rng):
    """A network (checkpoint) and sLORETA image the same recording: both get a topomap and a
    report, and the recording gets a comparison page; the atlas and models are built once."""
    import mne
    import torch

    from lightbunny.models import build_model
    from lightbunny.train import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    chans = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz"]
    net = build_model("lightbunny", n_chans=len(chans), n_times=100, n_sources=8, d_model=16,
                      chunk_size=5, random_state=0)
    torch.save({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
                "model_name": "lightbunny", "model_config": net.get_config(),
                "model_state": net.state_dict(), "epoch": 1,
                "meta": {"atlas": tiny_atlas.name, "ch_names": chans,
                         "preprocessing": {"sfreq": 500.0, "n_times": 100, "ch_names": chans,
                                           "eeg": {"function": "lightbunny.dataset.normalise_eeg"},
                                           "atlas_name": tiny_atlas.name}}},
               tmp_path / "best.pt")
    np.save(tmp_path / "gain.npy", rng.standard_normal((len(chans), tiny_atlas.n_regions)))
    raw = mne.io.RawArray(rng.standard_normal((len(chans), 500)) * 1e-5,
                          mne.create_info(chans, 500.0, "eeg"), verbose="error")
    raw.save(tmp_path / "rec_raw.fif", verbose="error")
    res = apply_many([tmp_path / "rec_raw.fif"], tmp_path / "out", atlas=tiny_atlas,
                     checkpoints=[tmp_path / "best.pt"], methods=["sLORETA"],
                     leadfield=tmp_path / "gain.npy", ch_names=chans)
    assert res["models"] == ["sLORETA", "lightbunny"]
    rec = tmp_path / "out" / "rec_raw.fif"
    for m in res["models"]:
        assert (rec / m / "topomap.png").is_file() and (rec / m / "report.html").is_file()
    page = (rec / "compare.html").read_text()
    assert "sLORETA" in page and "lightbunny" in page and page.count("<img") == 4


@pytest.mark.slow
def test_deepsif_segments_with_imported_leadfield(tmp_path, shared_anatomy):
    """The clinical case: 1-s segments (3-D .mat, scale-free) on fsaverage994 with DeepSIF's own
    region leadfield imported; the atlas is inferred from its 994 columns; the report gives
    coordinates, label, hemisphere, an inflated view and the segment average."""
    fwd = sio.loadmat(shared_anatomy / "leadfield_75_20k.mat")["fwd"]
    region = 958  # rMT_958: the region whose name used to say "left"
    t = np.arange(500) / SFREQ
    segs = []
    for k, amp in enumerate((1.0, 7.0)):
        eeg = np.outer(fwd[:, region], amp * np.exp(-0.5 * ((t - 0.3 - 0.2 * k) / 0.02) ** 2))
        eeg -= eeg.mean(0)
        segs.append(eeg / np.abs(eeg).max())
    sio.savemat(tmp_path / "segments.mat", {"seg": np.stack(segs)})  # (2, 75, 500)
    res = apply_many([tmp_path / "segments.mat"], tmp_path / "out", methods=["sLORETA"],
                     leadfield=shared_anatomy / "leadfield_75_20k.mat", montage="deepsif75",
                     data_dir=shared_anatomy, sfreq=SFREQ, units="none",
                     average_segments=True, n_top=5)
    atlas = load_atlas("fsaverage994", data_dir=shared_anatomy)
    assert [r["recording"] for r in res["rows"]] == ["segments.mat#0", "segments.mat#1"]
    for row in res["rows"]:
        top = atlas.region_names.index(row["top_region"])
        assert top == region or atlas.adjacency[region, top]
        assert row["hemisphere"] == "right" and row["lobe"] == "temporal"
        assert row["coordinates"] == "MNI152" and float(row["x_mm"]) > 30
    d = tmp_path / "out" / "segments.mat_seg0"
    for f in ("report.html", "regions.csv", "power_map.png", "inflated_map.png", "topomap.png"):
        assert (d / f).is_file(), f
    html = (d / "report.html").read_text()
    assert "approximately MNI305" in html and "middletemporal" in html
    avg = res["average"]["sLORETA"]
    assert avg["n_segments"] == 2 and avg["top_regions"][0]["hemisphere"] == "right"
    assert (tmp_path / "out" / "average" / "sLORETA" / "power_map.png").is_file()


def test_deepsif75_positions_are_oriented_like_10_05(shared_anatomy):
    """electrode_75.mat is EEGLAB (x nose, y left): after the fit, T8 lies right, Fpz front."""
    from lightbunny.external import montage_positions

    _, names, pos = montage_positions("deepsif75", shared_anatomy)
    p = dict(zip(names, pos))
    assert p["T8"][0] > 50 and p["T7"][0] < -50  # x to the right
    assert p["Fpz"][1] > p["Cz"][1] + 50 and p["Oz"][1] < p["Cz"][1] - 50  # y anterior
    assert p["Cz"][2] > p["T7"][2] + 30  # z up


def test_forward_fif_on_the_atlas_vertices_is_imported(tiny_atlas, tmp_path):
    """A -fwd.fif with one dipole per atlas vertex (discrete source space, free orientation):
    imported = normal projection of its gain, summed per region (computed here by hand)."""
    import mne

    from lightbunny.atlas import _fibonacci_sphere

    names = [f"E{i}" for i in range(12)]
    ch = _fibonacci_sphere(24)[:12] * 95.0  # upper half of a 95 mm sphere, mm
    ch[:, 2] = np.abs(ch[:, 2])
    info = mne.create_info(names, 1000.0, "eeg")
    info.set_montage(mne.channels.make_dig_montage(dict(zip(names, ch / 1000.0)),
                                                   coord_frame="head"))
    src = mne.setup_volume_source_space(pos={"rr": tiny_atlas.vertices / 1000.0,
                                             "nn": tiny_atlas.normals}, verbose=False)
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.0), head_radius=0.1, verbose=False)
    fwd = mne.make_forward_solution(info, mne.transforms.Transform("head", "mri"), src, sphere,
                                    meg=False, eeg=True, mindist=0.0, verbose=False)
    mne.write_forward_solution(tmp_path / "atlas-fwd.fif", fwd, verbose=False)
    lf = load_leadfield_file(tmp_path / "atlas-fwd.fif", tiny_atlas)
    g = np.einsum("cvk,vk->cv", fwd["sol"]["data"].reshape(12, -1, 3), tiny_atlas.normals)
    expected = np.stack([g[:, tiny_atlas.vertex_region == r].sum(1)
                         for r in range(tiny_atlas.n_regions)], axis=1)
    assert list(lf.ch_names) == names and lf.attrs["level"].startswith("vertex")
    assert np.allclose(lf.gain, expected, rtol=1e-6, atol=0)  # FIF stores float32


def test_recordings_from_globs_and_a_bids_folder(tmp_path):
    from lightbunny.clinical import expand_recordings

    for name in ("b.edf", "a.edf", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in expand_recordings([str(tmp_path / "*.edf")])] == ["a.edf", "b.edf"]
    with pytest.raises(FileNotFoundError, match="No recording matches"):
        expand_recordings([str(tmp_path / "*.bdf")])
    bids = tmp_path / "bids"
    for sub, ses in (("01", "1"), ("02", "1")):
        d = bids / f"sub-{sub}" / f"ses-{ses}" / "eeg"
        d.mkdir(parents=True)
        (d / f"sub-{sub}_ses-{ses}_task-rest_eeg.edf").write_bytes(b"")
        (d / f"sub-{sub}_ses-{ses}_task-rest_channels.tsv").write_text("name\n")
    with pytest.raises(ValueError, match="not a BIDS dataset"):
        expand_recordings([bids])
    (bids / "dataset_description.json").write_text("{}")
    found = expand_recordings([bids])
    assert [p.name for p in found] == ["sub-01_ses-1_task-rest_eeg.edf",
                                       "sub-02_ses-1_task-rest_eeg.edf"]


def test_eeg_filter_longer_than_a_1s_recording_is_reported():
    import mne

    from lightbunny.io import prepare_recording

    names = ["Fp1", "Fp2", "C3", "C4", "O1", "O2", "Cz", "Pz"]
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((8, 500)),
                          mne.create_info(names, SFREQ, "eeg"), verbose="error")
    prep = prepare_recording(raw, names, l_freq=1.0, h_freq=30.0, units="none")
    assert any("longer than the recording" in w for w in prep.report.warnings)
    assert prep.report.units == "a.u." and prep.report.unit_scale == 1.0


def test_a_bad_recording_in_a_batch_is_listed_and_the_others_imaged(tmp_path, capsys):
    """Two good .npy recordings and a corrupt .edf: the good ones are imaged and summarised,
    the bad one is listed with its error, and the command exits with 1 saying so."""
    from lightbunny.cli import main

    atlas = load_atlas("tvb76")
    names = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz"]
    gain = np.random.default_rng(0).standard_normal((len(names), atlas.n_regions))
    np.save(tmp_path / "gain.npy", gain)
    for k in range(2):
        np.save(tmp_path / f"ok{k}.npy", _lf_recording(gain, 5, _sines([7], [1.0 + k], 500)))
    (tmp_path / "bad.edf").write_bytes(b"not an edf file at all")
    handlers = list(logging.getLogger("lightbunny").handlers)
    try:
        rc = main(["apply", str(tmp_path / "ok0.npy"), str(tmp_path / "bad.edf"),
                   str(tmp_path / "ok1.npy"), "--sfreq", "500", "--ch-names", ",".join(names),
                   "--leadfield", str(tmp_path / "gain.npy"), "--units", "none",
                   "--method", "sloreta", "--no-figures", "--out", str(tmp_path / "out")])
    finally:
        logging.getLogger("lightbunny").handlers[:] = handlers
    err = capsys.readouterr().err
    assert rc == 1 and "bad.edf" in err and "not imaged" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["recording"] for r in summary["rows"]] == ["ok0.npy", "ok1.npy"]
    assert [f["recording"] for f in summary["failed"]] == ["bad.edf"]
    assert all(r["top_region"] == atlas.region_names[5] for r in summary["rows"])
