"""Known-answer tests for spike extraction, SNR scaling and the spike bank file."""

import pickle

import numpy as np
import pytest

from lightbunny.spikes import (
    SpikeBank,
    SpikeBankWriter,
    consolidate_bank,
    extract_clips,
    find_peaks,
    scale_to_snr,
    scalp_snr_db,
    thin_peaks,
)

N_TIMES, N_REGIONS = 5000, 5


def spike_shape():
    """A 10 mV spike (sharp positive peak at index 40, then a slow trough), zero at both ends."""
    k = np.arange(200)
    peak = 10.0 * np.exp(-0.5 * ((k - 40) / 6.0) ** 2)
    trough = -3.0 * np.exp(-0.5 * ((k - 120) / 20.0) ** 2)
    w = peak + trough
    w[:5] = 0
    w[-5:] = 0
    return w


def plant(x, region, peak_time):
    w = spike_shape()
    x[peak_time - 40:peak_time + 160, region] += w


@pytest.fixture
def traces():
    rng = np.random.default_rng(0)
    return 0.05 * rng.standard_normal((N_TIMES, N_REGIONS))


def test_find_peaks_known_answer():
    x = np.array([0.0, 9.0, 3.0, 10.0, 10.0, 2.0, 7.9, 1.0, 8.0, 12.0])
    assert find_peaks(x, 8.0).tolist() == [1, 3]  # 12 at the end is not a peak
    x2 = np.stack([x, -x], 1)
    assert find_peaks(x2, 8.0)[:, 1].sum() == 0
    assert thin_peaks(np.array([10, 50, 120, 400, 450]), 100).tolist() == [10, 120, 400]


def test_planted_spikes_found_at_known_times(traces):
    times = [760, 1320, 2990, 4100]  # windows 500, 1000, 2500, 4000
    for t in times:
        plant(traces, 1, t)
    res = extract_clips(traces, 1)
    assert res["spike_times"].tolist() == times
    assert res["n_spikes"] == 4
    assert res["clips"].shape == (4, 500, N_REGIONS)
    assert res["clips"].dtype == np.float32
    for clip, t in zip(res["clips"], times):  # the clip is the aligned window holding the peak
        s = (t // 500) * 500
        np.testing.assert_allclose(clip, traces[s:s + 500], atol=1e-6)
        assert np.argmax(clip[:, 1]) == t - s


def test_edges_and_same_window(traces):
    plant(traces, 0, 200)   # closer than 250 samples to the start: rejected
    plant(traces, 0, 4800)  # closer than 250 samples to the end: rejected
    plant(traces, 0, 1100)
    plant(traces, 0, 1300)  # same window as 1100: one clip only, from the first spike
    res = extract_clips(traces, 0)
    assert res["spike_times"].tolist() == [1100]
    assert res["n_spikes"] == 2


@pytest.mark.parametrize("other_time, kept", [
    (1000 - 200, False),      # first sample of the guard window [s - 200, s + 700)
    (1000 - 201, True),       # just before it
    (1000 + 699, False),      # last sample of the guard window
    (1000 + 700, True),       # just after it
    (1000 + 300, False),      # inside the clip
])
def test_interfering_spike_disqualifies_clip(traces, other_time, kept):
    plant(traces, 2, 1250)
    x = traces.copy()
    x[other_time, 4] = 9.0  # a peak of another region above 8 mV
    res = extract_clips(x, 2)
    assert (res["spike_times"].tolist() == [1250]) is kept


def test_interference_after_source_spike_counts(traces):
    # the seed's cross-region thinning dropped a peak within 100 samples after the source's
    # spike, so that clip passed; here it must be rejected
    plant(traces, 2, 1250)
    traces[1290, 3] = 9.0
    assert len(extract_clips(traces, 2)["clips"]) == 0


def test_snr_scaling_hits_15_db(traces):
    rng = np.random.default_rng(1)
    x = traces + 0.5 * rng.standard_normal((N_TIMES, N_REGIONS))
    times = [760, 1320, 2990]
    for t in times:
        plant(x, 1, t)
    gain = rng.standard_normal((16, N_REGIONS))
    scaled, alpha = scale_to_snr(x, 1, gain, np.array(times), target_snr_db=15.0)
    idx = np.unique((np.array(times)[:, None] + np.arange(-99, 101)).ravel())
    assert scalp_snr_db(scaled, 1, gain, idx) == pytest.approx(15.0, abs=1e-9)
    assert scalp_snr_db(x, 1, gain, idx) != pytest.approx(15.0, abs=0.5)
    assert alpha > 0
    # other regions untouched, the source only changes inside the spikes
    np.testing.assert_array_equal(scaled[:, [0, 2, 3, 4]], x[:, [0, 2, 3, 4]])
    np.testing.assert_array_equal(scaled[:700, 1], x[:700, 1])
    # same through extract_clips: the clip's source column is the scaled one
    # (the detected peaks may sit a few samples off the planted ones in this noise)
    res = extract_clips(x, 1, gain)
    assert np.abs(res["spike_times"] - times).max() <= 6
    scaled2, alpha2 = scale_to_snr(x, 1, gain, res["spike_times"])
    assert res["alpha"] == pytest.approx(alpha2)
    np.testing.assert_allclose(res["clips"][0][:, 1], scaled2[500:1000, 1], atol=1e-5)


def test_snr_known_answer_without_background():
    """Source = spikes only: SNR scales as alpha^2, so alpha = sqrt(10^1.5 Pn / Ps)."""
    rng = np.random.default_rng(2)
    x = np.zeros((3000, 3))
    x[:, 0] = rng.standard_normal(3000)
    x[:, 2] = rng.standard_normal(3000)
    for t in (800, 1800):
        plant(x, 1, t)
    x[:, 1] -= x[:, 1].mean()
    gain = np.eye(3)
    idx = np.unique((np.array([800, 1800])[:, None] + np.arange(-99, 101)).ravel())
    before = scalp_snr_db(x, 1, gain, idx)
    scaled, alpha = scale_to_snr(x, 1, gain, np.array([800, 1800]))
    assert scalp_snr_db(scaled, 1, gain, idx) == pytest.approx(15.0, abs=1e-9)
    # the spike extents cover the SNR windows except a few near-zero samples: alpha ~ seed's
    assert alpha == pytest.approx(np.sqrt(10 ** ((15.0 - before) / 10)), rel=0.02)


def test_bank_from_arrays_read_only():
    clips = {3: np.arange(2 * 500 * 4, dtype=np.float64).reshape(2, 500, 4)}
    bank = SpikeBank.from_arrays(clips, atlas_name="synthetic", spike_times={3: [10, 600]},
                                 attrs={"seed": 1})
    assert bank.regions_with_clips().tolist() == [3]
    assert bank.n_clips(3) == 2 and bank.n_clips(0) == 0
    c = bank.clips(3)
    assert c.dtype == np.float32 and not c.flags.writeable
    with pytest.raises(ValueError):
        c[0, 0, 0] = 1.0
    assert bank.spike_times(3).tolist() == [10, 600]
    assert bank.clips(1).shape == (0, 500, 4)
    with pytest.raises(ValueError, match="out of range"):
        bank.clips(4)
    with pytest.raises(ValueError, match="shape"):
        SpikeBank.from_arrays({0: np.zeros((500, 4))}, atlas_name="x")


def test_bank_file_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "bank.h5"
    attrs = {"seed": 3, "config": {"A": 3.25}}
    w = SpikeBankWriter(path, atlas_name="synthetic", sfreq=500.0, n_times=500, n_regions=4,
                        attrs=attrs)
    c2 = rng.standard_normal((3, 500, 4)) * 5
    w.write_region(2, c2, [100, 700, 1300], n_spikes=5, alpha=1.5)
    w.write_region(0, np.zeros((0, 500, 4)), [], n_spikes=0)
    bank = SpikeBank.open(path)
    assert (bank.atlas_name, bank.sfreq, bank.n_times, bank.n_regions) == ("synthetic", 500.0, 500, 4)
    assert bank.regions_with_clips().tolist() == [2]
    assert bank.complete_regions().tolist() == [0, 2]
    np.testing.assert_allclose(bank.clips(2), c2, atol=5e-3)  # float16 storage
    assert not bank.clips(2).flags.writeable
    assert bank.clips(2) is bank.clips(2)  # cached
    assert bank.spike_times(2).tolist() == [100, 700, 1300]
    assert bank.attrs["seed"] == 3
    assert bank.attrs["summary"]["regions_without_clips"] == [0]
    assert bank.summary()["clips_per_region"] == {0: 0, 2: 3}
    # picklable for DataLoader workers, reopens its handle
    bank2 = pickle.loads(pickle.dumps(bank))
    np.testing.assert_array_equal(bank2.clips(2), bank.clips(2))
    # resume with the same settings sees the regions; different settings are refused
    assert SpikeBankWriter(path, atlas_name="synthetic", sfreq=500.0, n_times=500, n_regions=4,
                           attrs=attrs).complete_regions() == {0, 2}
    with pytest.raises(ValueError, match="seed"):
        SpikeBankWriter(path, atlas_name="synthetic", sfreq=500.0, n_times=500, n_regions=4,
                        attrs={"seed": 4, "config": {"A": 3.25}})
    # one self-contained file; in place, it replaces the bank and its folder of region files
    one = consolidate_bank(path, tmp_path / "one.h5")
    np.testing.assert_array_equal(SpikeBank.open(one).clips(2), bank.clips(2))
    expected = bank.clips(2).copy()
    bank.close()
    consolidate_bank(path)
    assert not (tmp_path / "bank.h5.d").exists()
    np.testing.assert_array_equal(SpikeBank.open(path).clips(2), expected)
    w = SpikeBankWriter(path, atlas_name="synthetic", sfreq=500.0, n_times=500, n_regions=4,
                        attrs=attrs)
    assert w.complete_regions() == {0, 2}  # resuming a finished bank is fine ...
    with pytest.raises(ValueError, match="consolidated"):  # ... adding to it is not
        w.write_region(1, np.zeros((0, 500, 4)), [])


def test_open_rejects_other_files(tmp_path):
    import h5py

    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.attrs["format"] = "something"
    with pytest.raises(ValueError, match="not a spike bank"):
        SpikeBank.open(tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError):
        SpikeBank.open(tmp_path / "missing.h5")


@pytest.mark.parametrize("trace, centre, first", [
    # a flat step on a rising edge is no peak (the original run under Octave gives 4 only)
    ([0, 9, 10, 10, 11, 0], [4], [4]),
    ([0, 9, 10, 10, 5, 11, 11, 12, 3], [2, 7], [2, 7]),
    # a flat step on a falling edge is none either
    ([0, 12, 10, 10, 9, 0], [1], [1]),
    # flat tops: islocalmax's 'center' marks floor((a + b) / 2), findpeaks the first sample
    ([0, 9, 9, 0], [1], [1]),
    ([0, 9, 9, 9, 0], [2], [1]),
    ([0, 9, 9, 9, 9, 0], [2], [1]),
    ([0, 9, 9, 9, 9, 9, 0, 10, 10, 10, 1], [3, 8], [1, 7]),
    # monotonic traces have no peak
    ([0, 8, 9, 10, 11, 12], [], []),
    ([12, 11, 10, 9, 8, 0], [], []),
    # ends are no peaks, nor runs that touch them
    ([12, 0, 12], [], []),
    ([9, 9, 0, 10, 10], [], []),
    ([0, 9, 10, 10], [], []),
    # the threshold: 8 counts, just below does not
    ([0, 8, 0, 7.99, 0], [1], [1]),
    ([1], [], []), ([], [], []), ([0, 9], [], []),
])
def test_find_peaks_known_answers(trace, centre, first):
    x = np.array(trace, dtype=float)
    assert find_peaks(x, 8.0).tolist() == centre
    assert find_peaks(x, 8.0, flat="first").tolist() == first


def test_find_peaks_columns_and_options():
    x = np.array([[0.0, 0], [9, 9], [10, 3], [10, 10], [11, 10], [0, 10], [0, 2]])
    peaks = find_peaks(x, 8.0)
    assert peaks.shape == x.shape and peaks.dtype == bool
    assert np.flatnonzero(peaks[:, 0]).tolist() == [4]
    assert np.flatnonzero(peaks[:, 1]).tolist() == [1, 4]  # run 3..5 marked at its middle
    assert np.flatnonzero(find_peaks(x, 8.0, flat="first")[:, 1]).tolist() == [1, 3]
    with pytest.raises(ValueError, match="flat"):
        find_peaks(x, 8.0, flat="last")


def test_find_peaks_matches_the_seeds_zeroing():
    # the seed sets samples below 8 mV to 0 before looking for maxima: the same peaks as the
    # threshold, on traces full of runs of equal samples, at and around the threshold
    rng = np.random.default_rng(3)
    x = rng.choice([0.0, 7.0, 7.99, 8.0, 8.5, 9.0, 12.0], size=(4000, 6))
    x = np.repeat(x, rng.integers(1, 4, len(x)), axis=0)  # runs of 1-3 equal rows
    zeroed = np.where(x < 8.0, 0.0, x)
    np.testing.assert_array_equal(find_peaks(x, 8.0), find_peaks(zeroed, 1e-9))
    assert find_peaks(x, 8.0).sum() > 1000
