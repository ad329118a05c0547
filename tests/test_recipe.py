"""The training recipe: losses, learning-rate schedule, resampling per epoch, and that it works.

The last test trains a small LightBunny with ``recipe='lightbunny'`` on a tiny synthetic atlas
and checks that it localises better than every classical inverse on the same test samples.
"""

import math

import numpy as np
import pytest
import torch

from lightbunny.losses import LOSSES, active_regions, balanced_mse, cosine_loss
from lightbunny.models import build_model
from lightbunny.train import TRAIN_RECIPES, load_checkpoint, lr_at, resolve_recipe, train


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------ losses
def sparse_target(batch=3, n_times=10, n_regions=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.zeros(batch, n_times, n_regions)
    for b in range(batch):
        r = torch.randperm(n_regions, generator=g)[:2]
        t[b, :, r] = torch.randn(n_times, 2, generator=g)
    return t


def test_balanced_mse_scores_zeros_1_truth_0_and_weighs_active_like_inactive():
    t = sparse_target()
    assert balanced_mse(torch.zeros_like(t), t).item() == pytest.approx(1.0)
    assert balanced_mse(t, t).item() == pytest.approx(0.0)
    # halving the prediction costs 1/4 of the active power: scale errors are not free
    assert balanced_mse(0.5 * t, t).item() == pytest.approx(0.25, rel=1e-5)
    # the same error spread over the inactive regions costs as much as on the active ones,
    # however many inactive regions there are
    act = active_regions(t)
    noise = torch.ones_like(t) * 0.3
    on_inactive = balanced_mse(t + noise * ~act, t, reduction="none")
    on_active = balanced_mse(t + noise * act, t, reduction="none")
    torch.testing.assert_close(on_inactive, on_active)
    # plain MSE, by contrast, weighs regions by their count (6 inactive vs 2 active here)
    mse = torch.nn.functional.mse_loss
    assert mse(t + noise * ~act, t) == pytest.approx(3 * mse(t + noise * act, t).item())


def test_cosine_loss_ignores_scale_and_the_batch_loss_adds_it():
    from lightbunny.train import _batch_loss

    t = sparse_target()
    assert cosine_loss(7.0 * t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_loss(-t, t).item() == pytest.approx(2.0)
    assert cosine_loss(torch.zeros_like(t), t).item() == pytest.approx(1.0)
    p = t + 0.1 * torch.randn_like(t)
    both = _batch_loss(p, t, "balanced_mse", 0.5)
    assert both.item() == pytest.approx(balanced_mse(p, t).item() + 0.5 * cosine_loss(p, t).item(),
                                        rel=1e-6)
    # an element-wise base loss is averaged over elements, a per-sample one over samples
    mse = torch.nn.functional.mse_loss
    assert _batch_loss(p, t, "mse", 0.0).item() == pytest.approx(mse(p, t).item(), rel=1e-6)


def test_one_loss_registry():
    """losses.LOSSES is the registry; train and the config checks use its names."""
    import lightbunny.losses as losses
    import lightbunny.train as train_mod
    from lightbunny.config import _choices

    assert train_mod.LOSSES is losses.LOSSES
    assert train_mod.ALL_LOSSES == tuple(LOSSES) == _choices("train", "ALL_LOSSES")
    assert set(LOSSES) == {"mse", "l1", "smooth_l1", "balanced_mse", "cosine"}
    assert {n for n, entry in LOSSES.items() if entry.per == "sample"} == {"balanced_mse", "cosine"}
    assert not hasattr(losses, "recipe_loss") and not hasattr(losses, "SAMPLE_LOSSES")


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    kw = dict(lr=1e-3, n_steps=100, warmup_steps=10, schedule="cosine", min_lr_ratio=0.05)
    lrs = [lr_at(s, **kw) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a <= b + 1e-15 for a, b in zip(lrs[:10], lrs[1:10]))  # rising
    assert all(a >= b - 1e-15 for a, b in zip(lrs[10:], lrs[11:]))  # then falling
    assert lrs[-1] == pytest.approx(5e-5)
    assert lr_at(50, lr=1e-3, n_steps=100) == 1e-3  # constant


def test_recipes_resolve_and_reject_unknown_options():
    assert resolve_recipe() == TRAIN_RECIPES["lightbunny"]  # the default of train(), CLI, configs
    assert resolve_recipe(None, lr=1e-2)["lr"] == 1e-2
    lb = resolve_recipe("lightbunny", grad_clip=None)
    assert lb["loss"] == "balanced_mse" and lb["grad_clip"] == 1.0 and lb["resample"]
    with pytest.raises(ValueError, match="recipe"):
        resolve_recipe("fancy")
    with pytest.raises(ValueError, match="unknown recipe options"):
        resolve_recipe("seed", momentum=0.9)


# ------------------------------------------------------------------------------ the tiny task
N_TIMES = 100


def spike(rng, n_times=N_TIMES, sfreq=500.0):
    """Sharp peak then a slower wave of opposite sign (Jansen-Rit-like), random timing/size."""
    t = np.arange(n_times) / sfreq
    t0, w, a = rng.uniform(0.35, 0.65) * n_times / sfreq, rng.uniform(0.006, 0.014), rng.uniform(
        0.5, 2.0)
    return a * (np.exp(-0.5 * ((t - t0) / w) ** 2)
                - 0.45 * np.exp(-0.5 * ((t - t0 - 5 * w) / (3 * w)) ** 2))


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    """12-region spherical atlas, 64-channel leadfield, spike bank, sparse two-patch sources."""
    from lightbunny.atlas import make_synthetic_atlas
    from lightbunny.dataset import SyntheticEEGDataset
    from lightbunny.leadfield import make_leadfield
    from lightbunny.sources import Sources
    from lightbunny.spikes import SpikeBank

    atlas = make_synthetic_atlas(n_regions=12, n_vertices=400, seed=0)
    leadfield = make_leadfield(atlas, cache_dir=tmp_path_factory.mktemp("lf"))
    rng = np.random.default_rng(0)
    clips = {}
    for r in range(atlas.n_regions):
        c = np.zeros((12, N_TIMES, atlas.n_regions), np.float32)
        for k in range(len(c)):
            c[k, :, r] = spike(rng)
        clips[r] = c
    bank = SpikeBank.from_arrays(clips, atlas_name=atlas.name)
    nearest = np.argsort(atlas.distances, axis=1)

    def sources(split, n, seed):
        r = np.random.default_rng(seed)
        patches = [[nearest[c, :int(r.integers(1, 3))]
                    for c in r.choice(atlas.n_regions, 2, replace=False)] for _ in range(n)]
        return Sources.from_patches(patches, atlas=atlas, split=split)

    def dataset(split, n, seed, **kw):
        return SyntheticEEGDataset(sources(split, n, seed), bank, leadfield, seed=seed,
                                   background="none", **kw)

    return {"atlas": atlas, "leadfield": leadfield, "dataset": dataset}


def test_set_epoch_draws_new_samples_from_the_same_patches(tiny_task):
    ds = tiny_task["dataset"]("train", 8, 0)
    eeg0, target0 = ds.get_batch(np.arange(8))
    ds.set_epoch(3)
    eeg3, target3 = ds.get_batch(np.arange(8))
    assert not torch.allclose(eeg0, eeg3)
    # same patches: the active regions are unchanged
    assert torch.equal(active_regions(target0), active_regions(target3))
    ds.set_epoch(0)
    torch.testing.assert_close(ds.get_batch(np.arange(8))[0], eeg0)
    with pytest.raises(ValueError, match="epoch"):
        ds.set_epoch(-1)


class Interrupted:
    """Wraps a dataset; raises KeyboardInterrupt on the ``crash_at``-th training batch."""

    def __init__(self, dataset, crash_at):
        self.dataset, self.crash_at, self.calls = dataset, crash_at, 0

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def get_batch(self, indices, device=None):
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt("simulated kill")
        return self.dataset.get_batch(indices, device=device)


def test_recipe_options_are_recorded_and_resume_replays_them(tiny_task, tmp_path):
    make = tiny_task["dataset"]
    train_set, val_set = make("train", 32, 0), make("val", 8, 1)
    kw = dict(n_chans=64, n_times=N_TIMES, n_sources=12, d_model=16, chunk_size=10)
    common = dict(batch_size=8, seed=0, device="cpu", progress=False, patience=None,
                  recipe="lightbunny", epochs=3)
    full = train(build_model("lightbunny", random_state=0, **kw), train_set, val_set,
                 out_dir=tmp_path / "full", **common)
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 3 (4 batches per epoch)
        train(build_model("lightbunny", random_state=0, **kw), Interrupted(train_set, 10),
              val_set, out_dir=tmp_path / "part", **common)
    resumed = train(build_model("lightbunny", random_state=0, **kw), train_set, val_set,
                    out_dir=tmp_path / "part", resume=True, **common)
    assert [r["val_loss"] for r in resumed.history] == pytest.approx(
        [r["val_loss"] for r in full.history], rel=1e-5)
    lrs = [r["lr"] for r in full.history]
    assert lrs[0] == pytest.approx(1e-3, rel=0.2) and lrs[-1] == pytest.approx(5e-5, rel=1e-6)
    run_args = load_checkpoint(tmp_path / "full" / "last.pt")["run_args"]
    assert run_args["loss"] == "balanced_mse" and run_args["resample"] is True
    assert run_args["recipe"] == "lightbunny" and run_args["grad_clip"] == 1.0
    # a prediction of zeros scores 1 (balanced MSE) + 1 (cosine)
    assert full.history[-1]["val_loss_zero"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="different settings"):
        train(build_model("lightbunny", random_state=0, **kw), train_set, val_set,
              out_dir=tmp_path / "part", resume=True, **{**common, "cosine_weight": 0.5,
                                                         "epochs": 4})


def _localisation_errors(preds, targets, srcs, distances):
    from lightbunny.metrics import sample_metrics

    les = [sample_metrics(p, t, [g for g, _ in srcs.patches(i)], srcs.centres[i],
                          distances)["localisation_error"]
           for i, (p, t) in enumerate(zip(preds, targets))]
    return float(np.nanmean(les))


def test_recipe_beats_classical_methods_on_localisation_error(tiny_task, tmp_path):
    """Small LightBunny, new recipe, ~25 s of training; mean LE on 64 test samples, 5 and 15 dB."""
    from lightbunny.inverse import make_inverse

    make, atlas, lf = tiny_task["dataset"], tiny_task["atlas"], tiny_task["leadfield"]
    train_set, val_set = make("train", 192, 0), make("val", 32, 1)
    model = build_model("lightbunny", random_state=0, n_chans=lf.n_chans, n_times=N_TIMES,
                        n_sources=atlas.n_regions, d_model=32, chunk_size=10)
    train(model, train_set, val_set, out_dir=tmp_path, epochs=10, batch_size=16, seed=0,
          device="cpu", progress=False, patience=None, recipe="lightbunny", lr=3e-3)
    model.eval()
    results = {}
    for snr in (5.0, 15.0):
        test = make("test", 64, 2, snr_db=[snr])
        eeg, target = test.get_batch(np.arange(64))
        with torch.no_grad():
            preds = {"lightbunny": model(eeg).numpy()}
        for method in ("sloreta", "eloreta", "mne", "dspm"):
            inv = make_inverse(method, lf.gain, lf.ch_names, snr=10 ** (snr / 20))
            preds[method] = np.stack([inv.apply(e) for e in eeg.numpy()])
        results[snr] = {m: _localisation_errors(p, target.numpy(), test.sources,
                                                atlas.distances) for m, p in preds.items()}
        print(f"{snr:g} dB, mean localisation error (mm): "
              + ", ".join(f"{m} {v:.1f}" for m, v in results[snr].items()))
    for snr, les in results.items():
        best_classical = min(v for m, v in les.items() if m != "lightbunny")
        assert math.isfinite(les["lightbunny"])
        # the network must beat the best classical method by a clear margin
        assert les["lightbunny"] < 0.8 * best_classical, (snr, les)
