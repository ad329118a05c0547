"""The generalisation benchmark: condition generators, splits, sparse solvers, floor, report."""

import csv

import numpy as np
import pytest

from lightbunny import benchmark as bm
from lightbunny.atlas import make_synthetic_atlas
from lightbunny.dataset import realised_snr_db
from lightbunny.inverse import make_sparse_inverse
from lightbunny.metrics import roc_auc
from lightbunny.sources import make_sources
from lightbunny.spikes import SpikeBank

N_CHANS, N_TIMES, SFREQ = 16, 500, 500.0


@pytest.fixture(scope="module")
def atlas():
    """30 regions with 5-7 neighbours each: room for 1-3 non-nested patches."""
    return make_synthetic_atlas(n_regions=30, n_vertices=900, seed=0)


@pytest.fixture(scope="module")
def gain(atlas):
    return np.random.default_rng(0).standard_normal((N_CHANS, atlas.n_regions))


@pytest.fixture(scope="module")
def bank(atlas):
    rng = np.random.default_rng(1)
    t = np.arange(N_TIMES) / SFREQ
    clips = {}
    for r in range(atlas.n_regions):
        c = 0.1 * rng.standard_normal((10, N_TIMES, atlas.n_regions))
        c[:, :, r] += np.exp(-0.5 * ((t - 0.5) / 0.02) ** 2)  # a spike at 0.5 s
        clips[r] = c
    return SpikeBank.from_arrays(clips, atlas_name=atlas.name, sfreq=SFREQ)


def _spec(**kw):
    spec = {"n_sources": 1, "extent": "medium", "waveform": "burst", "noise": "white",
            "snr_db": 10.0, "leadfield": "nominal"}
    spec.update(kw)
    return spec


def _make(atlas, gain, n=12, seed=0, **kw):
    return bm.make_condition(_spec(**kw), atlas=atlas, gains={"nominal": gain}, n_samples=n,
                             seed=seed, n_times=N_TIMES, sfreq=SFREQ,
                             **{k: v for k, v in kw.items() if k in ("bank", "forbidden",
                                                                    "allowed_centres",
                                                                    "real_noise")})


def _neighbours(atlas, r):
    return set(np.flatnonzero(atlas.adjacency[r]).tolist())


# ------------------------------------------------------------------------------- generators


def test_extents_are_what_they_say(atlas, gain):
    sizes = {}
    for extent in bm.EXTENTS:
        s = bm.make_condition(_spec(extent=extent), atlas=atlas, gains={"nominal": gain},
                              n_samples=12, seed=3, n_times=N_TIMES, sfreq=SFREQ)
        sizes[extent] = np.mean([len(p[0]) for p in s.patches])
        for patches, centres, info in zip(s.patches, s.centres, s.info):
            (p,), (c,) = patches, centres
            assert p[0] == c and info["extent"] == extent
            if extent == "single":
                assert p.tolist() == [c]
            elif extent == "small":
                assert set(p.tolist()) == {c} | _neighbours(atlas, c)
            else:  # grown over the graph: 2 or 3 layers of neighbours
                assert info["hops"] == [2 if extent == "medium" else 3]
    assert sizes["single"] == 1 < sizes["small"] < sizes["medium"] < sizes["large"]


@pytest.mark.parametrize("n_sources", [1, 2, 3])
def test_number_of_sources(atlas, gain, n_sources):
    s = bm.make_condition(_spec(n_sources=n_sources, extent="small"), atlas=atlas,
                          gains={"nominal": gain}, n_samples=8, seed=5, n_times=N_TIMES,
                          sfreq=SFREQ)
    for patches, centres, target in zip(s.patches, s.centres, s.target):
        assert len(patches) == len(centres) == n_sources
        assert len(set(centres.tolist())) == n_sources
        for k, p in enumerate(patches):  # no centre inside another source's patch
            others = set(centres.tolist()) - {int(centres[k])}
            assert not others & set(p.tolist())
        active = np.flatnonzero(np.abs(target).max(0) > 0)
        assert set(active.tolist()) == set(np.concatenate(patches).tolist())


def _dominant_hz(w):
    spec = np.abs(np.fft.rfft(w)) ** 2
    return np.fft.rfftfreq(len(w), 1 / SFREQ)[np.argmax(spec)]


def test_waveform_families():
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(N_TIMES, 1 / SFREQ)
    for _ in range(20):
        burst = bm.make_waveform("burst", N_TIMES, SFREQ, rng)
        f = _dominant_hz(burst)
        assert 7 <= f <= 13 or 14 <= f <= 31
        smooth = bm.make_waveform("smooth", N_TIMES, SFREQ, rng)
        p = np.abs(np.fft.rfft(smooth)) ** 2
        assert p[freqs <= 8.0].sum() / p.sum() > 0.999
        erp = bm.make_waveform("erp", N_TIMES, SFREQ, rng)
        assert np.abs(erp[: int(0.05 * SFREQ)]).max() < 1e-3  # flat before the onset
        assert erp.max() > 0.2 and erp.min() < -0.2           # positive and negative peaks
        for w in (burst, smooth, erp):
            assert np.isclose(np.abs(w).max(), 1.0)
    clip = np.sin(np.arange(N_TIMES) / 10.0) * 3.0
    assert np.allclose(bm.make_waveform("spike", N_TIMES, SFREQ, rng, clip=clip), clip / 3.0)
    with pytest.raises(ValueError, match="needs a clip"):
        bm.make_waveform("spike", N_TIMES, SFREQ, rng)
    with pytest.raises(ValueError, match="Invalid waveform"):
        bm.make_waveform("chirp", N_TIMES, SFREQ, rng)


def test_condition_waveform_reaches_the_target(atlas, gain, bank):
    """A single-region source carries the named waveform: burst in band, spike from the bank."""
    s = bm.make_condition(_spec(extent="single", waveform="burst"), atlas=atlas,
                          gains={"nominal": gain}, n_samples=6, seed=2, n_times=N_TIMES,
                          sfreq=SFREQ)
    for target, (c,) in zip(s.target, s.centres):
        f = _dominant_hz(target[:, c])
        assert 7 <= f <= 13 or 14 <= f <= 31
    s = bm.make_condition(_spec(extent="single", waveform="spike"), atlas=atlas,
                          gains={"nominal": gain}, n_samples=6, seed=2, bank=bank,
                          n_times=N_TIMES, sfreq=SFREQ)
    for target, (c,) in zip(s.target, s.centres):
        assert abs(np.argmax(np.abs(target[:, c])) - N_TIMES // 2) <= 5  # the bank's spike


@pytest.mark.parametrize("noise", ["white", "coloured", "real"])
@pytest.mark.parametrize("snr", [0.0, 5.0, 10.0, 20.0])
def test_realised_snr(atlas, gain, noise, snr):
    real = np.random.default_rng(9).standard_normal((3, 600, N_CHANS))
    s = bm.make_condition(_spec(noise=noise, snr_db=snr, n_sources=2), atlas=atlas,
                          gains={"nominal": gain}, n_samples=4, seed=1, real_noise=real,
                          n_times=N_TIMES, sfreq=SFREQ)
    assert np.allclose(realised_snr_db(s.signal, s.noise), snr, atol=1e-9)
    assert np.allclose(s.eeg, s.signal + s.noise)
    # signal = average-referenced, time-centred projection of the target's activity
    assert np.allclose(s.signal.mean(-1), 0, atol=1e-12) and np.allclose(s.noise.mean(-2), 0,
                                                                         atol=1e-12)


def test_coloured_noise_is_spatially_correlated(atlas, gain):
    def mean_abs_corr(kind):
        s = bm.make_condition(_spec(noise=kind), atlas=atlas, gains={"nominal": gain},
                              n_samples=4, seed=1, n_times=N_TIMES, sfreq=SFREQ)
        c = [np.corrcoef(n.T)[np.triu_indices(N_CHANS, 1)] for n in s.noise]
        return np.mean(np.abs(c))

    assert mean_abs_corr("coloured") > 2 * mean_abs_corr("white")


def test_real_noise_missing_raises(atlas, gain):
    with pytest.raises(ValueError, match="real_noise"):
        bm.make_condition(_spec(noise="real"), atlas=atlas, gains={"nominal": gain},
                          n_samples=1, seed=0, n_times=N_TIMES, sfreq=SFREQ)


# ------------------------------------------------------------------------------- splits


def test_no_test_patch_equals_a_training_patch(atlas, gain):
    train = make_sources(atlas, split="train", n_iter=4, seed=0, progress=False)
    forbidden = bm.training_patch_set(train)
    n_equal = {}
    for rule in (set(), forbidden):
        equal = 0
        for extent in ("medium", "large"):
            s = bm.make_condition(_spec(extent=extent, n_sources=2), atlas=atlas,
                                  gains={"nominal": gain}, n_samples=30, seed=1,
                                  forbidden=rule, n_times=N_TIMES, sfreq=SFREQ)
            equal += sum(bm._patch_key(p) in forbidden for ps in s.patches for p in ps)
        n_equal[len(rule)] = equal
    assert n_equal[0] > 0          # without the rule, test patches do repeat training ones
    assert n_equal[len(forbidden)] == 0


def test_centre_disjoint_folds(atlas, gain):
    folds = bm.centre_folds(atlas, 4, seed=0)
    assert set(folds.tolist()) == {0, 1, 2, 3}
    test_regions = np.flatnonzero(folds == 1)
    s = bm.make_condition(_spec(extent="small", n_sources=2), atlas=atlas,
                          gains={"nominal": gain}, n_samples=10, seed=0,
                          allowed_centres=test_regions, n_times=N_TIMES, sfreq=SFREQ)
    assert np.isin(np.concatenate(s.centres), test_regions).all()
    # folds are spatial: a fold's regions are closer to each other than to the others
    d = atlas.distances
    inside = d[np.ix_(test_regions, test_regions)].mean()
    outside = d[np.ix_(test_regions, np.flatnonzero(folds != 1))].mean()
    assert inside < outside
    train = make_sources(atlas, split="train", n_iter=2, seed=0, progress=False)
    kept = bm.exclude_centres(train, test_regions)
    assert 0 < kept.n_samples < train.n_samples
    assert not np.isin(kept.centres, test_regions).any()


# ------------------------------------------------------------------------------- solvers


@pytest.mark.parametrize("method,params", [("MxNE", {"alpha": 10.0}), ("gamma-MAP", {}),
                                           ("Champagne", {})])
def test_sparse_solvers_recover_a_single_dipole(method, params):
    rng = np.random.default_rng(4)
    g = rng.standard_normal((N_CHANS, 10))
    t = np.arange(200) / SFREQ
    x = np.zeros((200, 10))
    x[:, 6] = np.sin(2 * np.pi * 7 * t)
    eeg = x @ g.T  # noiseless
    est = make_sparse_inverse(method, g, snr=10 ** (40 / 20), **params).apply(eeg)
    power = (est**2).mean(0)
    assert np.flatnonzero(power > 1e-8 * power.max()).tolist() == [6]
    truth = x[:, 6] - x[:, 6].mean()  # the solvers see time-centred data
    assert np.allclose(est[:, 6], truth, atol=1e-3 * np.abs(truth).max())


def test_champagne_matches_mne_gamma_map():
    """Champagne (numpy) and MNE's gamma-MAP minimise the same SBL cost: same estimate."""
    rng = np.random.default_rng(2)
    g = rng.standard_normal((24, 15))
    x = np.zeros((300, 15))
    x[:, [2, 9]] = rng.standard_normal((300, 2)) @ np.diag([1.0, 0.7])
    y = x @ g.T
    y = y + 0.1 * y.std() * rng.standard_normal(y.shape)
    a = make_sparse_inverse("Champagne", g, snr=10.0).apply(y)
    b = make_sparse_inverse("gamma-MAP", g, snr=10.0, depth=None).apply(y)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999


def test_random_floor_auc_is_chance(atlas):
    truth = np.zeros((N_TIMES, atlas.n_regions))
    truth[:, [1, 2, 3, 7]] = 1.0
    aucs = [roc_auc(bm.random_floor(N_TIMES, atlas.n_regions, np.random.default_rng(i)),
                    [1, 2, 3, 7]) for i in range(300)]
    assert abs(np.mean(aucs) - 0.5) < 0.03


def test_emd_matches_1d_wasserstein():
    from scipy.stats import wasserstein_distance

    pos = np.arange(8.0) * 10
    d = np.abs(pos[:, None] - pos[None, :])
    rng = np.random.default_rng(0)
    pred, true = rng.standard_normal((20, 8)), np.zeros((20, 8))
    true[:, [2, 5]] = rng.standard_normal((20, 2))
    p, q = (pred**2).mean(0), (true**2).mean(0)
    assert np.isclose(bm.emd(pred, true, d), wasserstein_distance(pos, pos, p, q))
    assert bm.emd(true, true, d) == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------------------- end to end


def _leadfield(atlas, gain):
    from lightbunny.leadfield import Leadfield

    return Leadfield(gain=gain.copy(), ch_names=tuple(f"E{i}" for i in range(N_CHANS)),
                     atlas_name=atlas.name, montage="synthetic", head_model="sphere",
                     orientation="normal", ch_pos=np.zeros((N_CHANS, 3)))


def test_run_benchmark_end_to_end(atlas, gain, bank, tmp_path):
    lf = _leadfield(atlas, gain)
    other = gain + 0.2 * np.random.default_rng(3).standard_normal(gain.shape)
    conditions = ["base", "point_source", "noise_real", "mismatch_head", "in_prior"]
    res = bm.run_benchmark(atlas, lf, out_dir=tmp_path, bank=bank, conditions=conditions,
                           methods=["sLORETA", "MxNE", "Champagne"], budget="smoke",
                           n_samples=2, mismatch={"mismatch_head": other},
                           real_noise=np.random.default_rng(0).standard_normal((2, 500, 16)),
                           figures=True, progress=False)
    assert res["skipped"] == {}
    with open(res["per_sample"]) as f:
        rows = list(csv.DictReader(f))
    methods = {"sLORETA", "MxNE", "Champagne", "random", "truth", "oracle_patches"}
    assert {r["method"] for r in rows} == methods
    assert len(rows) == len(conditions) * 2 * len(methods)
    truth = [r for r in rows if r["method"] == "truth"]
    assert all(float(r["emd"]) == 0 and float(r["roc_auc"]) == 1 for r in truth)
    md = res["summary_md"].read_text()
    assert f"v{bm.BENCHMARK_VERSION}" in md and "## emd" in md and "## Wins" in md
    assert res["report"].is_file() and res["json"].is_file()


def test_run_benchmark_skips_with_reasons(atlas, gain, tmp_path):
    res = bm.run_benchmark(atlas, _leadfield(atlas, gain), out_dir=tmp_path,
                           conditions=["waveform_erp", "base", "noise_real"],
                           methods=["MNE"], budget="smoke", n_samples=1,
                           real_noise=tmp_path / "absent.mat", figures=False, progress=False)
    assert set(res["skipped"]) == {"base", "noise_real"}
    assert "spike bank" in res["skipped"]["base"]
    assert "realistic_noise" in res["skipped"]["noise_real"] or "absent" in \
        res["skipped"]["noise_real"]
    with pytest.raises(ValueError, match="Invalid condition"):
        bm.run_benchmark(atlas, _leadfield(atlas, gain), out_dir=tmp_path, conditions=["nope"])


def test_paired_win_loss_and_fraction_best():
    rows = [{"condition": "c", "sample": i, "method": m, **{k: np.nan for k in bm.METRICS},
             "emd": v} for i, vals in enumerate([(1.0, 2.0), (3.0, 2.0), (5.0, 5.0),
                                                  (np.nan, 1.0)])
            for m, v in zip(("net", "other"), vals)]
    assert bm.paired_win_loss(rows, ["c"], "net", ["other"]) == {("other", "c"): (2, 1)}
    best = {r["method"]: r["fraction_best"] for r in bm.fraction_best(rows, ["c"],
                                                                      ["net", "other"])
            if r["metric"] == "emd"}
    assert best == {"net": 0.5, "other": 0.75}  # the tie at sample 2 counts for both


def test_mismatch_leadfields(atlas, tmp_path, monkeypatch):
    from lightbunny.leadfield import make_leadfield

    monkeypatch.setenv("LIGHTBUNNY_CACHE", str(tmp_path))
    nominal = make_leadfield(atlas, "standard_1020_64")
    built = bm.mismatch_leadfields(atlas, nominal, seed=1)
    assert set(built) == {"mismatch_head", "mismatch_orientation", "mismatch_jitter",
                          "mismatch_all"}
    for lf, note in built.values():
        assert lf is not None, note
        assert lf.ch_names == nominal.ch_names and lf.gain.shape == nominal.gain.shape
        assert not np.allclose(lf.gain, nominal.gain)
    assert built["mismatch_orientation"][0].orientation == "free_sum"
    moved = np.sqrt(np.mean(np.sum((built["mismatch_jitter"][0].ch_pos - nominal.ch_pos) ** 2,
                                   axis=1)))
    assert 3.0 < moved < 7.0  # about bm.JITTER_MM RMS along the scalp
    assert np.allclose(built["mismatch_head"][0].ch_pos, nominal.ch_pos)


def test_cli_benchmark_is_registered():
    from lightbunny.cli import COMMANDS, build_parser

    assert "benchmark" in COMMANDS
    args = build_parser().parse_args(["benchmark", "--budget", "smoke", "--checkpoint", "a.pt",
                                      "--checkpoint", "b.pt", "--split", "centre-disjoint",
                                      "--out", "x"])
    assert args.checkpoint == ["a.pt", "b.pt"] and args.split == "centre-disjoint"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "--budget", "huge", "--out", "x"])
