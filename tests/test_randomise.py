"""Domain randomisation of the training data (lightbunny.randomise): answers known by construction."""

import dataclasses

import numpy as np
import pytest
import torch

from lightbunny.atlas import make_synthetic_atlas
from lightbunny.dataset import SyntheticEEGDataset, realised_snr_db
from lightbunny.randomise import ABLATIONS, Randomisation, resolve_randomisation
from lightbunny.sources import make_sources
from lightbunny.spikes import SpikeBank

N_REGIONS, N_CHANS, N_TIMES = 12, 9, 100


@pytest.fixture(scope="module")
def parts():
    atlas = make_synthetic_atlas(n_regions=N_REGIONS, n_vertices=400, seed=2)
    rng = np.random.default_rng(3)
    t = np.arange(N_TIMES)
    clips = {}
    for r in range(N_REGIONS):
        c = rng.normal(0.0, 0.1, (8, N_TIMES, N_REGIONS))
        c[:, :, r] += 4.0 * np.exp(-0.5 * ((t - 50) / 4.0) ** 2)
        clips[r] = c
    bank = SpikeBank.from_arrays(clips, atlas_name="synthetic")
    gain = rng.normal(size=(N_CHANS, N_REGIONS))
    src = make_sources(atlas, split="train", n_iter=6, n_sources=3, seed=1, progress=False)
    return atlas, bank, gain, src


def _ds(parts, **kw):
    _, bank, gain, src = parts
    kw.setdefault("atlas_name", "synthetic")
    return SyntheticEEGDataset(src, bank, gain, **kw)


def test_options_resolve_validate_and_round_trip():
    assert resolve_randomisation(None) is None and resolve_randomisation("none") is None
    spec = resolve_randomisation("default")
    assert spec == Randomisation()
    assert resolve_randomisation(spec.to_dict()) == spec  # as recorded in a checkpoint
    assert abs(sum(spec.waveforms.values()) - 1) < 1e-12
    with pytest.raises(ValueError, match="n_active"):
        Randomisation(n_active=(0, 2))
    with pytest.raises(ValueError, match="waveform"):
        Randomisation(waveforms={"sawtooth": 1.0})
    with pytest.raises(ValueError, match="unknown randomisation"):
        resolve_randomisation({"n_sourcez": 2})
    for factor in ABLATIONS:
        assert spec.without(factor) != spec


def test_off_by_default_and_recorded_in_config(parts):
    plain = _ds(parts, snr_db=[10.0])
    assert plain.config()["randomise"] is None
    rnd = _ds(parts, snr_db=[10.0], randomise="default")
    assert rnd.config()["randomise"] == Randomisation().to_dict()
    # randomisation changes the samples; without it they are those of the recipe
    a = plain.get_batch(np.arange(8))[0]
    b = rnd.get_batch(np.arange(8))[0]
    assert not torch.allclose(a, b)


def test_number_of_sources_and_single_regions(parts):
    spec = Randomisation(n_active=(1, 3), p_single=1.0, waveforms={"spike": 1.0},
                         noise={"white": 1.0}, amplitude=(1.0, 1.0))
    ds = _ds(parts, snr_db=None, background="none", randomise=spec)
    idx = np.arange(len(ds))
    _, target, p = ds.get_batch(idx, return_parts=True)
    n_active = p["randomise"]["active"].sum(axis=1)
    assert set(n_active.tolist()) == {1, 2, 3}  # every count drawn
    active = (target.abs().amax(dim=1) > 0).numpy()
    for row in range(len(idx)):
        # single-region sources: exactly the kept centres are active
        centres = set(p["centres"][row, :n_active[row]].tolist())
        assert set(np.flatnonzero(active[row]).tolist()) == centres


def test_extent_cut_keeps_a_disc_around_the_centre(parts):
    spec = Randomisation(n_active=(1, 1), p_single=0.0, max_cut=0.9, waveforms={"spike": 1.0},
                         noise={"white": 1.0})
    ds = _ds(parts, snr_db=None, background="none", randomise=spec)
    full = _ds(parts, snr_db=None, background="none",
               randomise=dataclasses.replace(spec, max_cut=0.0))
    idx = np.arange(len(ds))
    _, t_cut, p = ds.get_batch(idx, return_parts=True)
    _, t_full = full.get_batch(idx)
    src = parts[3]
    smaller = 0
    for row, i in enumerate(p["sample"]):
        regions, weights = src.patch(int(i), 0)
        kept = set(np.flatnonzero(t_cut[row].abs().amax(0).numpy() > 0).tolist())
        want = set(regions[weights >= p["randomise"]["cut"][row, 0]].tolist())
        assert kept == want and int(p["centres"][row, 0]) in kept
        smaller += len(kept) < len(regions)
        assert set(np.flatnonzero(t_full[row].abs().amax(0).numpy() > 0)) == set(regions.tolist())
    assert smaller > len(idx) // 4


def test_waveform_families_replace_the_spike_with_its_peak(parts):
    spec = Randomisation(n_active=(1, 1), p_single=1.0, waveforms={"burst": 1.0},
                         noise={"white": 1.0}, amplitude=(1.0, 1.0))
    ds = _ds(parts, snr_db=None, background="none", randomise=spec)
    _, _, p = ds.get_batch(np.arange(10), return_parts=True)
    act = p["activity"].numpy()
    for row in range(10):
        c = int(p["centres"][row, 0])
        wave = act[row, :, c]
        spike = parts[1].clips(c)[int(p["clips"][row, 0])][:, c]
        assert np.isclose(np.abs(wave).max(), np.abs(spike).max(), rtol=1e-5)
        # the shape is the drawn burst of the bank (family 1 -> bank row 0), not the spike
        burst = ds._rand.bank[0, p["randomise"]["bank_idx"][row, 0]].numpy()
        np.testing.assert_allclose(wave / np.abs(spike).max(), burst, atol=1e-5)
        assert np.corrcoef(wave, spike)[0, 1] < 0.9


def test_leadfield_ensemble_projects_with_the_drawn_member(parts):
    _, _, gain, _ = parts
    other = -3.0 * gain  # a member easy to recognise
    spec = Randomisation(n_active=(1, 1), p_single=1.0, waveforms={"spike": 1.0},
                         noise={"white": 1.0}, amplitude=(1.0, 1.0), p_nominal=0.5)
    ds = _ds(parts, snr_db=None, background="none", randomise=spec, leadfields=[other])
    _, _, p = ds.get_batch(np.arange(24), return_parts=True)
    member = p["randomise"]["leadfield"]
    assert set(member.tolist()) == {0, 1}
    for row in range(24):
        c = int(p["centres"][row, 0])
        g = gain if member[row] == 0 else other
        wave = p["activity"][row, :, c].numpy()
        np.testing.assert_allclose(p["source_eeg"][row].numpy(), np.outer(wave, g[:, c]),
                                   rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        _ds(parts, randomise=spec, leadfields=[gain[:3]])
    with pytest.raises(ValueError, match="needs randomise"):
        _ds(parts, leadfields=[other])


def test_coloured_noise_keeps_the_requested_snr_and_is_spatially_correlated(parts):
    spec = Randomisation(noise={"coloured": 1.0})
    ds = _ds(parts, snr_db=[5.0], noise_scope="global", randomise=spec)
    _, _, p = ds.get_batch(np.arange(16), return_parts=True)
    snr = realised_snr_db(p["signal"].numpy(), p["noise"].numpy())
    np.testing.assert_allclose(snr, 5.0, atol=1e-3)
    # projected through the leadfield: the noise lies in the gain's column space
    noise = p["noise"].numpy().reshape(-1, N_CHANS)
    white = _ds(parts, snr_db=[5.0], noise_scope="global",
                randomise=Randomisation(noise={"white": 1.0})).get_batch(
        np.arange(16), return_parts=True)[2]["noise"].numpy().reshape(-1, N_CHANS)

    def top_share(x):
        s = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
        return s[:2].sum() / s.sum()

    assert top_share(noise) > top_share(white) + 0.1


def test_draws_depend_on_sample_and_epoch_only(parts):
    ds = _ds(parts, snr_db=[10.0], randomise="default")
    a = ds.get_batch([3, 4, 5])[0]
    b = ds.get_batch([5, 4, 3])[0]
    assert torch.equal(a[0], b[2]) and torch.equal(a[2], b[0])
    assert not torch.equal(ds.set_epoch(1).get_batch([3])[0][0], a[0])
    assert torch.equal(ds.set_epoch(0).get_batch([3])[0][0], a[0])
