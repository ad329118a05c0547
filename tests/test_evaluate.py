"""The evaluation: identical samples for every method, correct bookkeeping, a report."""

import csv

import numpy as np
import pytest

from lightbunny.evaluate import evaluate, summarise
from lightbunny.leadfield import make_leadfield
from lightbunny.sources import Sources
from lightbunny.spikes import SpikeBank

N_TIMES = 50


def _spike(n_times, peak):
    t = np.arange(n_times)
    return np.exp(-0.5 * ((t - peak) / 3.0) ** 2) - 0.3 * np.exp(-0.5 * ((t - peak - 8) / 6.0) ** 2)


@pytest.fixture(scope="module")
def setup(tiny_atlas, tmp_path_factory):
    rng = np.random.default_rng(0)
    n_r = tiny_atlas.n_regions
    clips = {}
    for r in range(n_r):
        c = rng.normal(0, 0.01, (10, N_TIMES, n_r))
        for j in range(10):
            c[j, :, r] = _spike(N_TIMES, 15 + j)
        clips[r] = c
    bank = SpikeBank.from_arrays(clips, atlas_name="synthetic")
    # single-region sources: sample i has its source at region i % n_r
    test = Sources.from_patches([[[i % n_r]] for i in range(8)], atlas=tiny_atlas, split="test")
    lf = make_leadfield(tiny_atlas, "standard_1020_64", cache_dir=tmp_path_factory.mktemp("c"))
    return tiny_atlas, bank, test, lf


def test_evaluate_writes_report_and_scores_identical_samples(setup, tmp_path):
    atlas, bank, test, lf = setup
    res = evaluate(test, bank, lf, atlas, out_dir=tmp_path, methods=["sloreta", "mne"],
                   snrs=[10, 40], n_samples=6, batch_size=4, n_figure_samples=1, progress=False,
                   dataset_kwargs={"background": "none", "clip_fractions": (0.0, 0.0, 1.0)})
    for key in ("per_sample", "summary_csv", "summary_md", "report"):
        assert res[key].is_file()
    rows = list(csv.DictReader(open(res["per_sample"])))
    assert len(rows) == 2 * 2 * 6  # methods x snrs x samples
    # sLORETA at 40 dB localises every single-region source exactly (zero error in theory)
    slo = [r for r in rows if r["method"] == "sloreta" and float(r["snr_db"]) == 40]
    assert all(float(r["peak_error"]) == 0.0 for r in slo)
    # both methods were scored on the same samples
    for snr in (10.0, 40.0):
        assert ({r["sample"] for r in rows if r["method"] == "mne" and float(r["snr_db"]) == snr}
                == {str(i) for i in range(6)})
    html = res["report"].read_text()
    assert "data:image/png;base64" in html and "localisation_error" in html
    assert (tmp_path / "figures" / "boxplots.png").is_file()
    assert "### SNR 40 dB" in res["summary_md"].read_text()


def test_summary_uses_all_samples_not_batch_means():
    rows = [{"method": "a", "snr_db": 10.0, "peak_error": v} for v in (0.0, 0.0, 0.0, 30.0)]
    rows.append({"method": "a", "snr_db": 10.0, "peak_error": float("nan")})
    (row,) = summarise(rows)
    assert row["mean"] == pytest.approx(7.5) and row["n"] == 4 and row["n_undefined"] == 1
    assert row["median"] == 0.0 and row["sd"] == pytest.approx(np.std([0, 0, 0, 30], ddof=1))


def test_bad_inputs(setup, tmp_path):
    atlas, bank, test, lf = setup
    with pytest.raises(ValueError, match="Invalid method 'sloretta'"):
        evaluate(test, bank, lf, atlas, out_dir=tmp_path, methods=["sloretta"], progress=False)
    with pytest.raises(ValueError, match="Nothing to evaluate"):
        evaluate(test, bank, lf, atlas, out_dir=tmp_path, methods=[], progress=False)
    from lightbunny.atlas import load_atlas

    with pytest.raises(ValueError, match="does not match"):
        evaluate(test, bank, lf, load_atlas("tvb76"), out_dir=tmp_path, progress=False)


def test_samples_without_clips_are_skipped_not_misindexed(setup, tmp_path):
    atlas, bank, test, lf = setup
    clips = {r: bank.clips(r) for r in range(1, atlas.n_regions)}  # region 0 has no clip
    partial = SpikeBank.from_arrays(clips, atlas_name="synthetic")
    res = evaluate(test, partial, lf, atlas, out_dir=tmp_path, methods=["sloreta"], snrs=[40],
                   progress=False, n_figure_samples=1,
                   dataset_kwargs={"background": "none", "clip_fractions": (0.0, 0.0, 1.0),
                                   "missing_clips": "skip"})
    rows = list(csv.DictReader(open(res["per_sample"])))
    # samples 0 in every 8 have their source at region 0: left out, the others scored by their
    # own index in the sources file
    assert sorted(int(r["sample"]) for r in rows) == [1, 2, 3, 4, 5, 6, 7]
    assert all(float(r["peak_error"]) == 0.0 for r in rows)


def test_noiseless_setting(setup, tmp_path):
    atlas, bank, test, lf = setup
    res = evaluate(test, bank, lf, atlas, out_dir=tmp_path, methods=["sloreta"],
                   snrs=[float("inf")], n_samples=4, progress=False, n_figure_samples=0,
                   dataset_kwargs={"background": "none", "clip_fractions": (0.0, 0.0, 1.0)})
    rows = list(csv.DictReader(open(res["per_sample"])))
    assert len(rows) == 4 and all(r["snr_db"] == "inf" for r in rows)
    # no noise: sLORETA's time course at a single-region source is the true one
    assert all(float(r["temporal_pcc_centre"]) > 0.999 for r in rows)
    assert "### SNR inf dB" in res["summary_md"].read_text()


def test_head_model_mismatch_inverts_with_the_other_leadfield(setup, tmp_path):
    # simulate with one leadfield, invert with another: with the same leadfield sLORETA is exact
    # at 40 dB; with electrodes moved 15 mm it is not, and the report records both models
    atlas, bank, test, lf = setup
    wrong = make_leadfield(atlas, "standard_1020_64", jitter_mm=15.0, jitter_seed=2,
                           cache_dir=tmp_path / "c")
    kwargs = dict(methods=["sloreta"], snrs=[40], n_samples=8, batch_size=4, n_figure_samples=0,
                  progress=False, dataset_kwargs={"background": "none",
                                                  "clip_fractions": (0.0, 0.0, 1.0)})
    same = evaluate(test, bank, lf, atlas, out_dir=tmp_path / "same", **kwargs)
    other = evaluate(test, bank, lf, atlas, out_dir=tmp_path / "other", inverse_leadfield=wrong,
                     **kwargs)
    err = {name: [float(r["peak_error"]) for r in csv.DictReader(open(res["per_sample"]))]
           for name, res in (("same", same), ("other", other))}
    assert max(err["same"]) == 0.0 and max(err["other"]) > 0.0
    import json

    cfg = json.loads((tmp_path / "other" / "evaluation.json").read_text())
    assert cfg["inverse_leadfield"]["jitter_mm"] == 15.0 and cfg["leadfield"]["jitter_mm"] == 0.0
    short = make_leadfield(atlas, ["Cz", "Pz", "Oz"], cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="channel names, in order"):
        evaluate(test, bank, lf, atlas, out_dir=tmp_path / "x", inverse_leadfield=short, **kwargs)
