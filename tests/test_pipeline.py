"""The whole pipeline on a tiny configuration: every stage runs, a re-run skips them all."""

import json

import pytest

from lightbunny.pipeline import CONFIGS, load_config, run_pipeline

TINY = {
    "pipeline": {"seed": 0, "device": "cpu"},
    "simulate": {"duration": 6.0, "batch_size": 38},
    "sources": {"n_iter_train": 1, "n_iter_val": 1, "n_iter_test": 1},
    "train": {"model_config": {"d_model": 32}, "epochs": 1, "batch_size": 16},
    "evaluate": {"methods": ["sloreta"], "snrs": [10], "n_samples": 6},
}


@pytest.mark.slow
def test_tiny_pipeline_runs_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTBUNNY_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    res = run_pipeline(TINY, out=out, progress=False)
    for key in ("leadfield", "bank", "checkpoint", "report"):
        assert res[key].exists(), key
    assert (out / "evaluation" / "report.html").is_file()
    methods = {r["method"] for r in res["summary"]}
    assert "sloreta" in methods and any(m.startswith("lightbunny:") for m in methods)
    # the real-EEG path found sLORETA's most active region at (or next to) the true one
    applied = json.loads((out / "apply" / "apply.json").read_text())
    assert applied["sloreta"]["hit"]
    html = res["report"].read_text()
    assert "localisation_error" in html and "data:image/png;base64" in html
    # a second run reuses every finished stage
    stamp = {p: p.stat().st_mtime_ns for p in (out / "train" / "best.pt",
                                               out / "evaluation" / "summary.csv",
                                               out / "sources_train.h5",
                                               out / "apply" / "recording.edf")}
    again = run_pipeline(TINY, out=out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    assert again["ran"] == []
    # stage times are those of the run that did the work, not of the skip
    assert again["timings"]["train"] == res["timings"]["train"] > 0.1


def test_shipped_configs_load():
    for name in CONFIGS:
        cfg = load_config(name)
        assert cfg["pipeline"]["atlas"] in ("tvb76", "fsaverage994")


def test_unknown_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown option 'epoch' in \[train\]"):
        load_config({"train": {"epoch": 3}})
    with pytest.raises(ValueError, match=r"Unknown configuration section \[trian\]"):
        load_config({"trian": {}})
    bad = tmp_path / "x.toml"
    bad.write_text("[pipeline\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="shipped ones"):
        load_config(tmp_path / "missing.toml")


def test_evaluation_takes_its_snrs_from_evaluate_not_dataset():
    """[dataset] snr_db (training noise) must not reach evaluate(), which sets one SNR per pass
    (it crashed `lightbunny run deepsif75`)."""
    from lightbunny.pipeline import dataset_kwargs

    cfg = load_config("deepsif75")
    assert cfg.dataset["snr_db"] == (5.0, 10.0, 15.0, 20.0)
    kw = dataset_kwargs(cfg.dataset, seed=3, for_evaluation=True)
    assert "snr_db" not in kw and "seed" not in kw and kw["missing_clips"] == "neighbour"
    assert dataset_kwargs(cfg.dataset, seed=3) == {"seed": 3, "missing_clips": "neighbour",
                                                   "snr_db": [5.0, 10.0, 15.0, 20.0]}


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    from lightbunny.pipeline import atomic_dir

    final = tmp_path / "ev"
    final.mkdir()
    (final / "old.txt").write_text("earlier")
    (tmp_path / ".ev.partial-999999999").mkdir()  # left by a killed process
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]
    assert [p.name for p in final.iterdir()] == ["old.txt"]
    with atomic_dir(final) as tmp:
        (tmp / "new.txt").write_text("y")
    assert [p.name for p in final.iterdir()] == ["new.txt"]


def test_demo_recording_is_the_one_clinical_edf(tmp_path):
    """pipeline.write_demo_recording (used by the quickstart's apply stage and prep_edf.ipynb):
    clinical spellings, channels left out, an optional ECG channel, the simulated EEG."""
    from types import SimpleNamespace

    import mne
    import numpy as np

    from lightbunny.pipeline import simulate_recording, write_demo_recording

    chans = ["Fp1", "Cz", "T7", "P8", "O2"]
    lf = SimpleNamespace(gain=np.random.default_rng(0).normal(size=(5, 3)), ch_names=chans)
    names = write_demo_recording(tmp_path / "r.edf", lf, 1, seconds=2.0, missing=["Cz"],
                                 ecg=True, seed=3)
    assert names == ["EEG FP1-REF", "EEG T3-REF", "EEG T6-REF", "EEG O2-REF", "ECG"]
    raw = mne.io.read_raw_edf(tmp_path / "r.edf", preload=True, verbose="error")
    assert raw.ch_names == names and raw.info["sfreq"] == 256.0
    expected = simulate_recording(lf, 1, seconds=2.0, seed=3)[[0, 2, 3, 4]]
    np.testing.assert_allclose(raw.get_data(picks=names[:4]), expected, atol=1e-8)
