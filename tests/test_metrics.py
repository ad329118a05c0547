"""Known-answer tests of lightbunny.metrics (answers known by construction)."""

import math

import numpy as np
import pytest

from lightbunny import metrics as M
from lightbunny.atlas import make_synthetic_atlas

N_TIMES = 200


@pytest.fixture(scope="module")
def atlas():
    return make_synthetic_atlas(n_regions=20, n_vertices=400, seed=1)


def _spike(n_times=N_TIMES, centre=100, width=8.0):
    t = np.arange(n_times)
    return (np.exp(-0.5 * ((t - centre) / width) ** 2)
            - 0.3 * np.exp(-0.5 * ((t - centre - 20) / 15) ** 2))


def _sample(atlas, centres=(0, 11)):
    """Truth with one patch (centre + neighbours) per centre; magnitudes decay off-centre."""
    n = atlas.n_regions
    true = np.zeros((N_TIMES, n))
    patches = []
    for k, c in enumerate(centres):
        patch = np.r_[c, atlas.neighbours(c)]
        patches.append(patch)
        wave = _spike(centre=60 + 60 * k)
        true[:, c] += wave
        for r in patch[1:]:
            true[:, r] += 0.6 * wave
    return true, patches, list(centres)


def _seed_temporal_pcc(pred, true, regions):
    """The seed's code, kept to prove the regression test catches it."""
    return np.corrcoef(pred[:, regions], true[:, regions])[0, 1]


def _smooth_unrelated(n_times, n_sources, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n_times)[:, None]
    freq = rng.uniform(0.001, 0.004, n_sources)
    phase = rng.uniform(0, 2 * np.pi, n_sources)
    return np.sin(2 * np.pi * freq * t + phase) * rng.uniform(0.5, 2, n_sources)


# --------------------------------------------------------------------------------------------
# Perfect prediction, shifted prediction, shuffled prediction
# --------------------------------------------------------------------------------------------


def test_perfect_prediction(atlas):
    true, patches, centres = _sample(atlas)
    m = M.sample_metrics(true, true, patches, centres, atlas.distances)
    assert set(m) == set(M.METRIC_NAMES)
    assert m["temporal_pcc_centre"] == pytest.approx(1.0, abs=1e-12)
    assert m["temporal_pcc_patch"] == pytest.approx(1.0, abs=1e-12)
    assert m["spatial_pcc"] == pytest.approx(1.0, abs=1e-12)
    assert m["localisation_error"] == 0.0
    assert m["region_localisation_error"] == 0.0
    assert m["peak_error"] == 0.0
    assert m["roc_auc"] == 1.0
    assert m["spatial_dispersion"] == 0.0
    assert m["nmse"] == pytest.approx(0.0, abs=1e-24)
    assert m["precision"] == 1.0
    assert m["recall"] == 1.0
    assert m["n_identified"] == len(np.unique(np.concatenate(patches)))


def test_scaled_prediction_is_still_perfect(atlas):
    true, patches, centres = _sample(atlas)
    m = M.sample_metrics(-0.01 * true, true, patches, centres, atlas.distances)
    # sign flips the correlation, power-based metrics ignore scale and sign
    assert m["temporal_pcc_centre"] == pytest.approx(-1.0)
    assert m["spatial_pcc"] == pytest.approx(1.0)
    assert m["roc_auc"] == 1.0
    assert m["localisation_error"] == 0.0
    assert M.nmse(0.01 * true, true) == pytest.approx(0.0, abs=1e-24)


@pytest.mark.parametrize("shift_to", [3, 7, 15])
def test_prediction_shifted_to_a_region_at_known_distance(atlas, shift_to):
    src = 0
    true = np.zeros((N_TIMES, atlas.n_regions))
    true[:, src] = _spike()
    pred = np.zeros_like(true)
    pred[:, shift_to] = _spike()
    d = atlas.distances[src, shift_to]
    assert d > 10  # a real shift
    m = M.sample_metrics(pred, true, [[src]], [src], atlas.distances)
    assert m["localisation_error"] == pytest.approx(d)
    assert m["peak_error"] == pytest.approx(d)
    assert m["spatial_dispersion"] == pytest.approx(d)
    assert m["region_localisation_error"] == pytest.approx(d)
    assert m["precision"] == 0.0 and m["recall"] == 0.0
    # the true region (power 0) loses to shift_to and ties with the other n - 2 silent ones
    assert m["roc_auc"] == pytest.approx(0.5 * (atlas.n_regions - 2) / (atlas.n_regions - 1))
    assert m["nmse"] == pytest.approx(2.0)


def test_localisation_error_is_to_the_nearest_true_region(atlas):
    # truth on a patch; prediction on one region outside it: LE = distance to nearest patch
    # region, peak error = distance to the centre
    true, patches, centres = _sample(atlas, centres=(0,))
    outside = [r for r in range(atlas.n_regions) if r not in patches[0]]
    far = outside[-1]
    pred = np.zeros_like(true)
    pred[:, far] = _spike()
    m = M.sample_metrics(pred, true, patches, centres, atlas.distances)
    assert m["localisation_error"] == pytest.approx(atlas.distances[far, patches[0]].min())
    assert m["peak_error"] == pytest.approx(atlas.distances[far, 0])


def test_time_shuffled_prediction_has_temporal_pcc_near_zero(atlas):
    rng = np.random.default_rng(0)
    n_times = 2000
    true = rng.standard_normal((n_times, atlas.n_regions)) * rng.uniform(0.1, 3, atlas.n_regions)
    pred = true[rng.permutation(n_times)]
    regions = np.arange(atlas.n_regions)
    assert abs(M.temporal_pcc(pred, true, regions)) < 0.05
    # the power per region is unchanged by shuffling time, so the spatial PCC stays 1
    assert M.spatial_pcc(pred, true) == pytest.approx(1.0)


def test_time_shuffled_spike_sample(atlas):
    true, patches, centres = _sample(atlas)
    rng = np.random.default_rng(3)
    vals = []
    for _ in range(20):
        pred = true[rng.permutation(N_TIMES)]
        vals.append(M.sample_metrics(pred, true, patches, centres, atlas.distances)
                    ["temporal_pcc_centre"])
    assert abs(np.mean(vals)) < 0.1


# --------------------------------------------------------------------------------------------
# Regression: the temporal PCC must read the ground truth
# --------------------------------------------------------------------------------------------


def _assert_reads_truth(pcc):
    """A temporal PCC must score an unrelated prediction low and depend on the truth."""
    n_times, n_sources = 300, 12
    regions = [2, 5, 7]
    truth_a = _smooth_unrelated(n_times, n_sources, seed=1)
    truth_b = _smooth_unrelated(n_times, n_sources, seed=2)
    pred = _smooth_unrelated(n_times, n_sources, seed=3)  # smooth, unrelated to either truth
    assert pcc(truth_a, truth_a, regions) == pytest.approx(1.0)
    assert abs(pcc(pred, truth_a, regions)) < 0.5, "an unrelated prediction scores high"
    assert pcc(pred, truth_a, regions) != pytest.approx(pcc(pred, truth_b, regions)), \
        "the score does not change with the truth"
    assert pcc(truth_b, truth_a, regions) != pytest.approx(1.0)


def test_temporal_pcc_reads_the_truth():
    _assert_reads_truth(M.temporal_pcc)


def test_seed_temporal_pcc_fails_the_regression_test():
    pred = _smooth_unrelated(300, 12, seed=3)
    # the seed gives a smooth prediction a near-perfect score whatever the truth
    truth = np.random.default_rng(0).standard_normal((300, 12))
    assert _seed_temporal_pcc(pred, truth, [2, 5, 7]) > 0.95
    with pytest.raises(AssertionError):
        _assert_reads_truth(_seed_temporal_pcc)


# --------------------------------------------------------------------------------------------
# Single metrics
# --------------------------------------------------------------------------------------------


def test_temporal_pcc_edge_cases():
    true = np.c_[np.sin(np.arange(50.0)), np.zeros(50)]
    pred = np.c_[np.ones(50), np.cos(np.arange(50.0))]
    rho = M.temporal_pcc_per_region(pred, true, [0, 1])
    assert rho[0] == 0.0  # constant prediction carries no time course
    assert math.isnan(rho[1])  # constant truth: undefined
    assert M.temporal_pcc(pred, true, [0, 1]) == 0.0  # NaN regions left out
    assert math.isnan(M.temporal_pcc(pred, true, [1]))


def test_otsu_threshold_separates_two_modes():
    rng = np.random.default_rng(0)
    v = np.r_[rng.normal(0.1, 0.02, 500), rng.normal(0.8, 0.05, 100)]
    thr = M.otsu_threshold(v)
    # in the gap between the modes, up to half a bin (the threshold is a bin centre, as in
    # skimage and hence DeepSIF)
    half_bin = (v.max() - v.min()) / 200
    assert v[:500].max() - half_bin <= thr < v[500:].min()
    assert (v[500:] > thr).all()
    two_valued = np.r_[np.zeros(500), np.ones(100)]
    assert (two_valued > M.otsu_threshold(two_valued)).sum() == 100
    assert M.otsu_threshold(np.full(5, 2.0)) == 2.0


def test_otsu_threshold_matches_skimage():
    filters = pytest.importorskip("skimage.filters")
    rng = np.random.default_rng(1)
    for _ in range(5):
        v = np.abs(rng.standard_normal(3000)) ** rng.uniform(1, 3)
        assert M.otsu_threshold(v, 100) == pytest.approx(filters.threshold_otsu(v, nbins=100))


def test_identified_regions_needs_more_than_seven_samples():
    pred = np.zeros((100, 4))
    pred[:8, 1] = 1.0  # above threshold for 8 samples
    pred[:7, 2] = 1.0  # only 7
    pred[:, 3] = -1.0  # negative deflections count too
    assert M.identified_regions(pred).tolist() == [1, 3]
    assert M.identified_regions(pred, min_samples=6).tolist() == [1, 2, 3]
    assert M.identified_regions(np.zeros((10, 3))).size == 0


def test_nothing_identified_gives_nan_not_zero(atlas):
    true, patches, centres = _sample(atlas)
    m = M.sample_metrics(np.zeros_like(true), true, patches, centres, atlas.distances)
    for key in ("localisation_error", "region_localisation_error", "precision", "peak_error",
                "spatial_dispersion"):
        assert math.isnan(m[key]), key
    assert m["recall"] == 0.0
    assert m["nmse"] == 1.0
    assert m["n_identified"] == 0


def test_precision_recall():
    assert M.precision_recall([1, 2], [1, 2]) == (1.0, 1.0)
    assert M.precision_recall([1, 2, 3, 4], [4, 5]) == (0.25, 0.5)
    p, r = M.precision_recall([], [4])
    assert math.isnan(p) and r == 0.0


def test_roc_auc_known_values():
    pred = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert M.roc_auc(pred, [2, 3]) == 1.0
    assert M.roc_auc(pred, [0, 1]) == 0.0
    assert M.roc_auc(pred, [1, 2]) == 0.5
    assert M.roc_auc(np.ones((3, 4)), [0]) == 0.5  # all tied
    assert math.isnan(M.roc_auc(pred, [0, 1, 2, 3]))


def test_spatial_dispersion_is_power_weighted():
    d = np.array([[0.0, 10.0, 20.0], [10.0, 0.0, 10.0], [20.0, 10.0, 0.0]])
    pred = np.zeros((10, 3))
    pred[:, 0] = 1.0  # on the truth, power 1
    pred[:, 2] = math.sqrt(3.0)  # 20 mm away, power 3
    # sqrt((1 * 0 + 3 * 400) / 4) = sqrt(300)
    assert M.spatial_dispersion(pred, [0], d) == pytest.approx(math.sqrt(300.0))


def test_nmse_known_values():
    true = np.zeros((5, 3))
    true[:, 0] = 1.0
    pred = true.copy()
    pred[:, 1] = 1.0
    assert M.nmse(pred, true) == pytest.approx(1.0)
    assert M.nmse(np.zeros_like(true), true) == 1.0
    assert M.nmse(3 * true, true, scale="none") == pytest.approx(4.0)
    with pytest.raises(ValueError, match="Allowed: 'max', 'none'"):
        M.nmse(true, true, scale="l2")


# --------------------------------------------------------------------------------------------
# Agreement with mne.simulation.metrics (same definitions)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mne_src(atlas):
    mne = pytest.importorskip("mne")
    rr = atlas.centres / 1000.0  # m
    nn = rr / np.linalg.norm(rr, axis=1, keepdims=True)
    return mne.setup_volume_source_space(pos=dict(rr=rr, nn=nn), verbose=False)


def _stc(values, src):
    import mne

    return mne.VolSourceEstimate(np.asarray(values, float)[:, None], [src[0]["vertno"]],
                                 tmin=0.0, tstep=1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_mne_simulation_metrics(atlas, mne_src, seed):
    from mne.simulation import metrics as mm

    pytest.importorskip("sklearn")
    rng = np.random.default_rng(seed)
    n = atlas.n_regions
    true, patches, _ = _sample(atlas, centres=tuple(rng.choice(n, 2, replace=False)))
    truth = np.unique(np.concatenate(patches))
    membership = np.isin(np.arange(n), truth).astype(float)
    pred = true + 0.4 * rng.standard_normal(true.shape) * rng.uniform(0, 1, n)
    power = np.mean(pred**2, axis=0)

    auc = mm.roc_auc_score(_stc(membership, mne_src), _stc(power, mne_src))
    assert M.roc_auc(pred, truth) == pytest.approx(auc[0], abs=1e-12)

    # MNE thresholds the estimate at 50 % of its maximum; identify the same regions
    ident = np.flatnonzero(power > 0.5 * power.max())
    rle = mm.region_localization_error(_stc(membership, mne_src), _stc(power, mne_src),
                                       mne_src, threshold="50%")
    assert M.region_localisation_error(ident, truth, atlas.distances) == pytest.approx(
        1000 * rle[0], rel=1e-9)
    prec = mm.precision_score(_stc(membership, mne_src), _stc(power, mne_src), threshold="50%")
    rec = mm.recall_score(_stc(membership, mne_src), _stc(power, mne_src), threshold="50%")
    assert M.precision_recall(ident, truth) == pytest.approx((prec[0], rec[0]), abs=1e-12)


# --------------------------------------------------------------------------------------------
# Aggregation and validation
# --------------------------------------------------------------------------------------------


def test_summarise_over_sample_metrics(atlas):
    """The one aggregator (evaluate.summarise) over sample_metrics rows: undefined values (no
    region identified) are counted apart, not averaged in."""
    from lightbunny.evaluate import summarise

    true, patches, centres = _sample(atlas)
    rows = [{"method": "m", "snr_db": 10.0,
             **M.sample_metrics(pred, true, patches, centres, atlas.distances)}
            for pred in (true, np.zeros_like(true))]
    summary = {r["metric"]: r for r in summarise(rows)}
    le = summary["localisation_error"]
    assert le["mean"] == 0.0 and le["n"] == 1 and le["n_undefined"] == 1
    assert summary["recall"]["mean"] == 0.5 and summary["recall"]["n"] == 2


def test_validation_errors(atlas):
    true, patches, centres = _sample(atlas)
    d = atlas.distances
    with pytest.raises(ValueError, match="same shape"):
        M.sample_metrics(true[:, :5], true, patches, centres, d)
    with pytest.raises(ValueError, match=r"\(n_times, n_sources\)"):
        M.spatial_pcc(true[0], true[0])
    with pytest.raises(ValueError, match="one entry per true source"):
        M.sample_metrics(true, true, patches, centres[:1], d)
    with pytest.raises(ValueError, match="0..19"):
        M.sample_metrics(true, true, [[25]], [0], d)
    with pytest.raises(ValueError, match="distances must have shape"):
        M.sample_metrics(true, true, patches, centres, d[:5, :5])
    with pytest.raises(ValueError, match="NaN"):
        M.spatial_pcc(np.full_like(true, np.nan), true)
    with pytest.raises(ValueError, match="true_regions is empty"):
        M.localisation_error([1], [], d)
