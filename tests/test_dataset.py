"""Known-answer tests of the on-the-fly (EEG, source) dataset."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lightbunny.atlas import make_synthetic_atlas
from lightbunny.dataset import (SyntheticEEGDataset, normalise_eeg, realised_snr_db,
                                seed_sample_numpy, split_clips)
from lightbunny.sources import Sources, make_sources
from lightbunny.spikes import SpikeBank

N_REGIONS, N_CHANS, N_TIMES, N_CLIPS = 10, 7, 120, 12


def _spiky_clips(rng, region):
    t = np.arange(N_TIMES)
    clips = rng.normal(0.0, 0.3, (N_CLIPS, N_TIMES, N_REGIONS))
    for i in range(N_CLIPS):
        peak = rng.integers(30, 90)
        clips[i, :, region] += 5.0 * np.exp(-0.5 * ((t - peak) / 4.0) ** 2)
    return clips


@pytest.fixture(scope="module")
def atlas():
    return make_synthetic_atlas(n_regions=N_REGIONS, n_vertices=400, seed=2)


@pytest.fixture(scope="module")
def bank():
    rng = np.random.default_rng(3)
    return SpikeBank.from_arrays({r: _spiky_clips(rng, r) for r in range(N_REGIONS)},
                                 atlas_name="synthetic")


@pytest.fixture(scope="module")
def gain():
    return np.random.default_rng(4).normal(size=(N_CHANS, N_REGIONS))


@pytest.fixture(scope="module")
def sources(atlas):
    return {split: make_sources(atlas, split=split, n_iter=5, seed=1, progress=False)
            for split in ("train", "test")}


def test_single_region_source_eeg_is_gain_column_times_waveform(atlas, bank, gain):
    src = Sources.from_patches([[[4]], [[7]]], atlas=atlas)
    lf = SimpleNamespace(gain=gain, atlas_name="synthetic", ch_names=[f"E{k}" for k in range(7)])
    ds = SyntheticEEGDataset(src, bank, lf, background="none", snr_db=None, clip_split="train")
    eeg, target, parts = ds.get_batch([0, 1], return_parts=True)
    for row, region in enumerate((4, 7)):
        clip = int(parts["clips"][row, 0])
        assert clip in ds.clip_set(region)
        wave = bank.clips(region)[clip][:, region]
        expected = np.outer(wave, gain[:, region])  # (n_times, n_chans), before noise/scaling
        np.testing.assert_allclose(parts["source_eeg"][row].numpy(), expected, rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(eeg[row].numpy(), normalise_eeg(expected), atol=1e-5)
        tgt = np.zeros((N_TIMES, N_REGIONS))
        tgt[:, region] = wave / np.abs(wave).max()
        np.testing.assert_allclose(target[row].numpy(), tgt, atol=1e-6)
    assert ds.ch_names[0] == "E0"


@pytest.mark.parametrize("rng", ["generator", "counter"])
@pytest.mark.parametrize("scope", ["channel", "global"])
@pytest.mark.parametrize("background", ["none", "clip"])
def test_realised_snr_matches_requested(sources, bank, gain, scope, background, rng):
    ds = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic",
                             noise_scope=scope, background=background, seed=9, rng=rng)
    _, _, parts = ds.get_batch(np.arange(48), return_parts=True)
    realised = realised_snr_db(parts["signal"].numpy(), parts["noise"].numpy())
    err = realised - parts["snr_db"]
    assert set(np.unique(parts["snr_db"])) <= {5.0, 10.0, 15.0, 20.0}
    assert len(np.unique(parts["snr_db"])) > 1
    assert abs(err.mean()) < 0.5 and np.abs(err).max() < 1.5


def test_realised_snr_with_realistic_noise(sources, bank, gain):
    rng = np.random.default_rng(5)
    segments = np.cumsum(rng.normal(size=(3, 200, N_CHANS)), axis=1)  # coloured, not white
    ds = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic",
                             noise_scope="global", realistic_noise=segments,
                             realistic_ratio=(0.5, 1.0), snr_db=(10.0,))
    _, _, parts = ds.get_batch(np.arange(32), return_parts=True)
    realised = realised_snr_db(parts["signal"].numpy(), parts["noise"].numpy())
    assert abs((realised - 10.0).mean()) < 0.5
    assert set(np.unique(parts["realistic_ratio"])) == {0.5, 1.0}


def test_source_to_background_ratio(sources, bank, gain):
    ds = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic",
                             background="clip", sbr_db=(0.0, 6.0), snr_db=None)
    _, _, parts = ds.get_batch(np.arange(16), return_parts=True)
    src = parts["source_eeg"].numpy()
    src = src - src.mean(-1, keepdims=True)
    src = src - src.mean(-2, keepdims=True)
    ratio = realised_snr_db(src, parts["background_eeg"].numpy())
    np.testing.assert_allclose(ratio, parts["sbr_db"], atol=1e-3)


@pytest.mark.parametrize("rng", ["generator", "counter"])
def test_same_seed_and_index_same_sample(sources, bank, gain, rng):
    kw = dict(atlas_name="synthetic", seed=11, rng=rng)
    a = SyntheticEEGDataset(sources["train"], bank, gain, **kw)
    b = SyntheticEEGDataset(sources["train"], bank, gain, **kw)
    e1, t1 = a.get_batch([3, 5, 8])
    e2, t2 = b.get_batch([8, 3])
    torch.testing.assert_close(e1[2], e2[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(t1[0], t2[1], rtol=1e-5, atol=1e-6)
    e3, t3 = a.get_batch([3, 5, 8])
    assert torch.equal(e1, e3) and torch.equal(t1, t3)
    x, y = a[5]  # __getitem__: numpy, same as the batch row
    assert isinstance(x, np.ndarray) and x.shape == (N_TIMES, N_CHANS) and x.dtype == np.float32
    assert y.shape == (N_TIMES, N_REGIONS)
    np.testing.assert_allclose(x, e1[1].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, t1[1].numpy(), rtol=1e-5, atol=1e-6)
    other = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic", seed=12,
                                rng=rng)
    assert not np.allclose(other[5][0], x)
    info = a.sample_info(5)
    assert info["clips"] == b.sample_info(5)["clips"] and info["snr_db"] in (5, 10, 15, 20)
    assert len(info["patches"]) == 2 and info["patches"][0][0][0] == info["centres"][0]


def test_dataloader_batches_match(sources, bank, gain):
    ds = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic", seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    eeg, target = next(iter(loader))
    e, t = ds.get_batch([0, 1, 2, 3])
    torch.testing.assert_close(eeg, e)
    torch.testing.assert_close(target, t)


def test_train_and_test_clip_sets_disjoint(sources, bank, gain):
    for n in (1, 2, 3, 7, 12, 100):
        sets = split_clips(n, region=3, seed=0)
        joined = np.concatenate([sets[k] for k in ("train", "val", "test")])
        assert sorted(joined.tolist()) == list(range(n))
        assert len(set(sets["train"]) & set(sets["test"])) == 0
        assert len(set(sets["val"]) & set(sets["test"])) == 0
    train = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic")
    test = SyntheticEEGDataset(sources["test"], bank, gain, atlas_name="synthetic")
    assert test.clip_split == "test"
    for r in range(N_REGIONS):
        assert len(test.clip_set(r)) >= 1
        assert not set(train.clip_set(r).tolist()) & set(test.clip_set(r).tolist())
    _, _, parts = test.get_batch(np.arange(len(test)), return_parts=True)
    for c, j in zip(parts["centres"].ravel(), parts["clips"].ravel()):
        assert j in test.clip_set(c) and j not in train.clip_set(c)


def test_cached_arrays_not_writeable(sources, bank, gain):
    ds = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic").precompute(
        progress=False)
    ds.get_batch([0, 1])
    cached = [bank.clips(2), ds.gain, ds.clip_set(2), ds._region_waves(2), ds._region_proj(2),
              ds.sources.regions, ds.sources.weights]
    for arr in cached:
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[(0,) * arr.ndim] = 1.0
    before = np.array(bank.clips(2))
    ds.get_batch(np.arange(len(ds)))  # mixing never edits the bank
    np.testing.assert_array_equal(bank.clips(2), before)


@pytest.mark.parametrize("loud_background", [False, True])
def test_seed_recipe_matches_per_sample_numpy(sources, bank, gain, loud_background):
    if loud_background:  # some clips' maximum lies outside the patch
        rng = np.random.default_rng(8)
        arrays = {}
        for r in range(N_REGIONS):
            c = _spiky_clips(rng, r)
            c[::2, :, (r + 5) % N_REGIONS] += 40.0 * rng.random((N_TIMES,))
            arrays[r] = c
        bank = SpikeBank.from_arrays(arrays, atlas_name="synthetic")
    ds = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic",
                             recipe="seed", seed=2)
    assert ds.snr_db is None  # the seed adds no noise
    idx = [0, 4, 13, 21, 30, 44]
    eeg, target, parts = ds.get_batch(idx, return_parts=True)
    for row, i in enumerate(parts["sample"]):
        clips = [bank.clips(int(c))[int(j)] for c, j in zip(parts["centres"][row],
                                                            parts["clips"][row])]
        e, t = seed_sample_numpy(clips, ds.sources.patches(int(i)), gain)
        np.testing.assert_allclose(eeg[row].numpy(), e, atol=2e-5)
        np.testing.assert_allclose(target[row].numpy(), t, atol=2e-5)
    assert ds.preprocessing["target"]["scale"] == "max"


def test_preprocessing_is_plain_dict(sources, bank, gain):
    ds = SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic")
    pre = ds.preprocessing
    assert json.loads(json.dumps(pre)) == pre
    assert pre["eeg"]["normalisation"] == "avgref-centre-maxabs/1"
    json.dumps(ds.config())
    eeg, _ = ds.get_batch([0, 1])
    assert torch.allclose(eeg.abs().amax(dim=(1, 2)), torch.ones(2))
    assert torch.allclose(eeg.mean(dim=2), torch.zeros(2, N_TIMES), atol=1e-6)  # average ref
    assert torch.allclose(eeg.mean(dim=1), torch.zeros(2, N_CHANS), atol=1e-6)  # centred


def test_normalise_eeg_numpy_and_torch_agree():
    x = np.random.default_rng(0).normal(size=(2, 30, 5))
    out_np, scale = normalise_eeg(x, return_scale=True)
    out_t = normalise_eeg(torch.from_numpy(x))
    np.testing.assert_allclose(out_np, out_t.numpy(), atol=1e-12)
    assert scale.shape == (2, 1, 1)
    np.testing.assert_array_equal(normalise_eeg(np.zeros((4, 3))), np.zeros((4, 3)))


def test_mismatched_inputs_raise(atlas, sources, bank, gain):
    other_bank = SpikeBank.from_arrays({0: np.zeros((2, N_TIMES, N_REGIONS))}, atlas_name="tvb76")
    with pytest.raises(ValueError, match="sources file made for 'synthetic'.*spike bank made for "
                                         "'tvb76'"):
        SyntheticEEGDataset(sources["train"], other_bank, gain, atlas_name="synthetic")
    with pytest.raises(ValueError, match="leadfield made for 'tvb76'"):
        SyntheticEEGDataset(sources["train"], bank, SimpleNamespace(gain=gain, atlas_name="tvb76"))
    with pytest.raises(ValueError, match="spike bank has 10 regions.*leadfield has 9 regions"):
        SyntheticEEGDataset(sources["train"], bank, gain[:, :9], atlas_name="synthetic")
    with pytest.raises(ValueError, match="atlas_name"):
        SyntheticEEGDataset(sources["train"], bank, gain)
    with pytest.raises(ValueError, match="n_chans=7"):
        SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic",
                            realistic_noise=np.zeros((2, 200, 5)), realistic_ratio=0.5)
    with pytest.raises(ValueError, match="Invalid recipe"):
        SyntheticEEGDataset(sources["train"], bank, gain, atlas_name="synthetic", recipe="deepsif")


def test_regions_without_clips(atlas, sources, gain):
    rng = np.random.default_rng(0)
    partial = SpikeBank.from_arrays({r: _spiky_clips(rng, r) for r in range(N_REGIONS) if r != 6},
                                    atlas_name="synthetic")
    with pytest.raises(ValueError, match=r"no clip in the spike bank's 'train' clip set: "
                                         r"regions \[6\]"):
        SyntheticEEGDataset(sources["train"], partial, gain, atlas_name="synthetic")
    ds = SyntheticEEGDataset(sources["train"], partial, gain, atlas_name="synthetic",
                             missing_clips="skip")
    kept = ds._samples
    assert 0 < len(ds) < len(sources["train"])
    assert not np.isin(sources["train"].centres[kept], [6]).any()
    eeg, target = ds.get_batch(np.arange(len(ds)))
    assert torch.isfinite(eeg).all() and torch.isfinite(target).all()


def test_regions_without_clips_borrow_the_nearest_patch_neighbours_clips(atlas, gain, caplog):
    rng = np.random.default_rng(0)
    partial = SpikeBank.from_arrays({r: _spiky_clips(rng, r) for r in range(N_REGIONS) if r != 6},
                                    atlas_name="synthetic")
    # a two-source patch file whose first source is centred at region 6, grown over a neighbour
    src = Sources.from_patches([[[6, 2, 5], [1]], [[3], [6, 2, 5]]], atlas=atlas)
    w6 = {int(r): float(w) for r, w in zip(*src.patches(0)[0])}
    nearest = max((r for r in w6 if r != 6), key=lambda r: (w6[r], -r))
    assert w6[nearest] < 1.0  # the weights decay away from the centre
    lf = SimpleNamespace(gain=gain, atlas_name="synthetic", ch_names=[f"E{k}" for k in range(7)])
    caplog.set_level("INFO", logger="lightbunny")
    kw = dict(snr_db=None, clip_split="train", missing_clips="neighbour")
    ds = SyntheticEEGDataset(src, partial, lf, **kw)
    again = SyntheticEEGDataset(src, partial, lf, **kw)  # e.g. one dataset per SNR
    assert len(ds) == len(again) == 2  # no sample dropped
    assert ds.clip_donors == {6: nearest}
    np.testing.assert_array_equal(ds.clip_set(6),
                                  split_clips(partial.n_clips(nearest), region=nearest)["train"])
    said = [r.getMessage() for r in caplog.records if "nearest patch neighbour" in r.getMessage()]
    assert len(said) == 1 and f"6<-{nearest}" in said[0]  # explained once, not per dataset

    eeg, target, parts = ds.get_batch([0], return_parts=True)
    clip = partial.clips(nearest)[int(parts["clips"][0, 0])]
    wave = clip[:, nearest]  # the neighbour's own spike waveform ...
    act = parts["activity"][0].numpy()
    np.testing.assert_allclose(act[:, 6], wave, rtol=1e-5, atol=1e-5)  # ... placed at region 6
    outside = [r for r in range(N_REGIONS) if r not in w6 and r != 1]  # 1: the second source
    assert np.abs(act[:, outside]).max() == 0
    # the background is the rest of the neighbour's clip: its spike column taken out
    rest = clip.copy()
    rest[:, nearest] = 0.0
    bg = rest @ gain.T
    bg = bg - bg.mean(1, keepdims=True)
    bg = bg - bg.mean(0, keepdims=True)
    np.testing.assert_allclose(parts["background_eeg"][0].numpy(), bg, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="missing_clips='neighbour'"):
        SyntheticEEGDataset(src, partial, lf, snr_db=None, clip_split="train")
    # the seed recipe copies whole clips (the neighbour's own spike would stay in them): skip
    seed = SyntheticEEGDataset(src, partial, lf, recipe="seed", **kw)
    assert len(seed) == 0 and seed.clip_donors == {}


def test_leadfield_object_and_real_noise_file(atlas, sources, bank, gain, shared_anatomy):
    from lightbunny.dataset import load_realistic_noise
    from lightbunny.leadfield import Leadfield

    segments = load_realistic_noise(shared_anatomy / "realistic_noise.mat")
    assert segments.shape == (4, 500, 75) and not segments.flags.writeable
    lf = Leadfield(gain=np.random.default_rng(0).normal(size=(75, N_REGIONS)),
                   ch_names=tuple(f"E{k}" for k in range(75)), atlas_name="synthetic",
                   montage="test", head_model="none", orientation="normal",
                   ch_pos=np.zeros((75, 3)))
    ds = SyntheticEEGDataset(sources["train"], bank, lf, realistic_noise=segments,
                             realistic_ratio=0.5, noise_scope="global", snr_db=(10.0,))
    assert ds.preprocessing["ch_names"][:2] == ["E0", "E1"]
    _, _, parts = ds.get_batch(np.arange(8), return_parts=True)
    assert abs((realised_snr_db(parts["signal"].numpy(), parts["noise"].numpy()) - 10).mean()) < 0.5


def test_counter_noise_is_standard_normal_and_keyed():
    from lightbunny.dataset import _counter_keys, _counter_normals, _counter_uniforms

    keys = _counter_keys(3, np.arange(64))
    assert len(np.unique(keys)) == 64
    z = _counter_normals(keys, 5000, "cpu").numpy()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.corrcoef(z[0], z[1])[0, 1]) < 0.05
    np.testing.assert_array_equal(_counter_normals(keys[5:6], 5000, "cpu").numpy()[0], z[5])
    u = _counter_uniforms(keys, 7)
    assert u.shape == (64, 7) and u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.05
