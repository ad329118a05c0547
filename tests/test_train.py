"""Training loop: learning, exact resume, element-weighted validation loss, checkpoint safety."""

import math

import numpy as np
import pytest
import torch

from lightbunny.models import build_model
from lightbunny.train import (NonFiniteLossError, check_meta, evaluate_loss, load_checkpoint,
                              load_model)
from lightbunny.train import train as _train


def train(*args, recipe="seed", **kwargs):
    """These tests check the training machinery (resume, checkpoints, early stopping) on toy
    data with the seed's MSE recipe; the recipe default itself is tested in test_recipe.py."""
    return _train(*args, recipe=recipe, **kwargs)

N_CHANS, N_TIMES, N_REGIONS = 8, 20, 4
CH_NAMES = [f"E{i}" for i in range(N_CHANS)]
META = {"atlas": "toy4", "ch_names": CH_NAMES}


class ToyDataset:
    """Stand-in for lightbunny.dataset: EEG = fixed gain @ sparse sources, item i seeded by i.

    Each item has one active region with a Gaussian bump in time (random centre, width, sign and
    amplitude); everything else is zero. With more channels than regions a linear inverse exists,
    so the problem is learnable.
    """

    preprocessing = {"scale": 1.0, "note": "toy"}

    def __init__(self, n_items, offset=0, seed=0, crash_after=None, nan_after=None):
        self.n_items, self.offset, self.seed = n_items, offset, seed
        self.gain = np.random.default_rng(1234).standard_normal((N_CHANS, N_REGIONS)) / 2
        self.crash_after, self.nan_after, self.calls = crash_after, nan_after, 0

    def __len__(self):
        return self.n_items

    def item(self, i):
        rng = np.random.default_rng([self.seed, self.offset + int(i)])
        t = np.arange(N_TIMES)
        source = np.zeros((N_TIMES, N_REGIONS))
        bump = np.exp(-0.5 * ((t - rng.uniform(4, N_TIMES - 4)) / rng.uniform(1.5, 3)) ** 2)
        source[:, rng.integers(N_REGIONS)] = rng.choice([-1, 1]) * rng.uniform(0.5, 1.5) * bump
        return source @ self.gain.T, source

    def get_batch(self, indices, device=None):
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise KeyboardInterrupt("simulated kill")
        eeg, source = map(np.stack, zip(*(self.item(i) for i in indices)))
        if self.nan_after is not None and self.calls > self.nan_after:
            eeg[:] = np.nan
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        return as_tensor(eeg), as_tensor(source)


def tiny_model(random_state=0, **kw):
    kwargs = dict(n_chans=N_CHANS, n_times=N_TIMES, n_sources=N_REGIONS, d_model=16, chunk_size=5,
                  dropout=0.1)
    return build_model("lightbunny", random_state=random_state, **{**kwargs, **kw})


pytestmark = pytest.mark.usefixtures("one_thread")


COMMON = dict(batch_size=8, lr=3e-3, seed=7, device="cpu", progress=False, meta=META,
              deterministic=True)


def test_learns_well_below_zero_prediction(tmp_path):
    model = tiny_model()
    result = train(model, ToyDataset(96), ToyDataset(32, offset=10_000), out_dir=tmp_path,
                   epochs=10, patience=None, **{**COMMON, "lr": 1e-2})
    first, last = result.history[0], result.history[-1]
    ratio = result.best_val_loss / last["val_loss_zero"]
    print(f"val loss {first['val_loss']:.4g} -> best {result.best_val_loss:.4g}; zero prediction "
          f"{last['val_loss_zero']:.4g}; ratio {ratio:.3f}")
    assert ratio < 0.25  # reaches about 0.07; a model that does not learn stays near 1
    assert result.best_val_loss < 0.5 * first["val_loss"]
    for name in ("last.pt", "best.pt", "history.json", "history.csv", "loss_curve.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    best_model, ckpt = load_model(tmp_path / "best.pt", expected_meta=META)
    assert ckpt["epoch"] == result.best_epoch and ckpt["meta"]["preprocessing"]["note"] == "toy"
    again = evaluate_loss(best_model, ToyDataset(32, offset=10_000), batch_size=5, device="cpu")
    assert math.isclose(again["loss"], result.best_val_loss, rel_tol=1e-5)


def test_resume_after_kill_gives_identical_weights(tmp_path):
    data = dict(n_items=40)  # 5 batches per epoch
    val = ToyDataset(12, offset=500)
    reference = tiny_model()
    ref = train(reference, ToyDataset(**data), val, out_dir=tmp_path / "ref", epochs=3,
                patience=None, **COMMON)

    # killed in the middle of the second epoch (batch 3 of 5): last.pt holds epoch 1
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(), ToyDataset(**data, crash_after=7), val, out_dir=tmp_path / "run",
              epochs=3, patience=None, **COMMON)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1

    # a new process would build a fresh model: start from other weights to prove they are restored
    resumed_model = tiny_model(random_state=99)
    resumed = train(resumed_model, ToyDataset(**data), val, out_dir=tmp_path / "run", epochs=3,
                    patience=None, resume=True, **COMMON)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in ref.history]
    for (key, a), b in zip(reference.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), f"weights differ after resume: {key}"

    # resuming a finished run does nothing; resuming with other settings is refused
    assert train(tiny_model(), ToyDataset(**data), val, out_dir=tmp_path / "run", epochs=3,
                 patience=None, resume=True, **COMMON).history == resumed.history
    with pytest.raises(ValueError, match="batch_size: 8 -> 4"):
        train(tiny_model(), ToyDataset(**data), val, out_dir=tmp_path / "run", epochs=4,
              patience=None, resume=True, **{**COMMON, "batch_size": 4})
    with pytest.raises(ValueError, match="channels"):
        train(tiny_model(), ToyDataset(**data), val, out_dir=tmp_path / "run", epochs=4,
              patience=None, resume=True, **{**COMMON, "meta": {**META, "ch_names": CH_NAMES[::-1]}})


CHILD = """
import importlib.util, os, signal, sys
import torch
torch.set_num_threads(1)
spec = importlib.util.spec_from_file_location("toy", sys.argv[1])
toy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(toy)

class KilledDataset(toy.ToyDataset):
    def get_batch(self, indices, device=None):
        if self.calls == 7:  # batch 3 of epoch 2: the process dies as under `kill -9`
            os.kill(os.getpid(), signal.SIGKILL)
        return super().get_batch(indices, device)

toy.train(toy.tiny_model(), KilledDataset(40), toy.ToyDataset(12, offset=500), out_dir=sys.argv[2],
          epochs=3, patience=None, **toy.COMMON)
"""


@pytest.mark.slow
def test_resume_after_sigkill_of_a_training_process(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    reference = tiny_model()
    train(reference, ToyDataset(40), ToyDataset(12, offset=500), out_dir=tmp_path / "ref",
          epochs=3, patience=None, **COMMON)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__)), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1
    resumed = tiny_model(random_state=99)
    train(resumed, ToyDataset(40), ToyDataset(12, offset=500), out_dir=tmp_path / "run", epochs=3,
          patience=None, resume=True, **COMMON)
    for (key, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"weights differ after resume: {key}"


def test_validation_loss_is_element_weighted_not_mean_of_batch_means():
    model = tiny_model().eval()
    data = ToyDataset(7)  # batches of 3, 3, 1
    eeg, target = data.get_batch(np.arange(7))
    with torch.no_grad():
        pred = model(eeg)
    exact = ((pred.double() - target.double()) ** 2).mean().item()
    batch_means = [((pred[s] - target[s]).double() ** 2).mean().item()
                   for s in (slice(0, 3), slice(3, 6), slice(6, 7))]
    mean_of_means = float(np.mean(batch_means))
    assert not math.isclose(mean_of_means, exact, rel_tol=1e-3)  # the check can tell them apart

    got = evaluate_loss(model, data, batch_size=3, device="cpu")
    assert math.isclose(got["loss"], exact, rel_tol=1e-6)
    assert got["n_elements"] == 7 * N_TIMES * N_REGIONS
    assert math.isclose(got["zero_loss"], (target.double() ** 2).mean().item(), rel_tol=1e-6)
    assert model.training is False


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    # 3 batches per epoch; batch 5 (epoch 2) turns to NaN
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2.*last good checkpoint.*NaN"):
        train(tiny_model(), ToyDataset(24, nan_after=4), ToyDataset(8, offset=99),
              out_dir=tmp_path, epochs=3, patience=None, **COMMON)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model_state"].values())


def test_early_stopping(tmp_path, monkeypatch):
    import lightbunny.train as lbt

    scripted = iter([1.0, 0.5, 0.6, 0.5, 0.7, 0.1])  # best at epoch 2, then 3 epochs without a lower loss
    monkeypatch.setattr(lbt, "evaluate_loss", lambda *a, **k: {"loss": next(scripted), "zero_loss": 1.0})
    result = train(tiny_model(), ToyDataset(8), ToyDataset(4, offset=99), out_dir=tmp_path,
                   epochs=30, patience=3, **COMMON)
    assert result.stopped_early and result.best_epoch == 2 and len(result.history) == 5
    assert load_checkpoint(tmp_path / "last.pt")["stopped_early"]
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 2


def test_bad_checkpoints(tmp_path):
    train(tiny_model(), ToyDataset(8), ToyDataset(4, offset=99), out_dir=tmp_path, epochs=1,
          patience=None, **COMMON)
    good = (tmp_path / "last.pt").read_bytes()

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_checkpoint(truncated)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_checkpoint(garbage)

    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="not a LightBunny checkpoint"):
        load_checkpoint(foreign)

    code = tmp_path / "code.pt"
    torch.save({"format": "lightbunny-checkpoint", "obj": ToyDataset(1)}, code)
    with pytest.raises(ValueError, match="could run code"):
        load_checkpoint(code)

    with pytest.raises(ValueError, match="atlas 'toy4', but the data use atlas 'fsaverage994'"):
        load_checkpoint(tmp_path / "last.pt", expected_meta={"atlas": "fsaverage994"})
    with pytest.raises(ValueError, match=r"8 channels, but the data have 7.*absent from the data: \['E7'\]"):
        load_model(tmp_path / "best.pt", expected_meta={"ch_names": CH_NAMES[:7]})
    with pytest.raises(ValueError, match="another order"):
        check_meta(META, {"ch_names": CH_NAMES[::-1]})
    assert load_checkpoint(tmp_path / "last.pt", expected_meta=META)["epoch"] == 1


def test_train_with_package_dataset_records_meta(tmp_path):
    """Contract with lightbunny.dataset: train on SyntheticEEGDataset, meta lands in the checkpoint."""
    from types import SimpleNamespace

    pytest.importorskip("lightbunny.dataset")
    from lightbunny.atlas import make_synthetic_atlas
    from lightbunny.dataset import SyntheticEEGDataset
    from lightbunny.sources import Sources
    from lightbunny.spikes import SpikeBank
    from lightbunny.train import dataset_meta

    rng = np.random.default_rng(0)
    atlas = make_synthetic_atlas(n_regions=6)
    bank = SpikeBank.from_arrays({r: rng.normal(size=(4, 20, 6)) for r in range(6)},
                                 atlas_name=atlas.name)
    leadfield = SimpleNamespace(gain=rng.normal(size=(5, 6)), atlas_name=atlas.name,
                                ch_names=["C3", "C4", "Cz", "Pz", "Fz"])
    patches = [[[int(i % 6)]] for i in range(12)]
    make = lambda split: SyntheticEEGDataset(  # noqa: E731
        Sources.from_patches(patches, atlas=atlas, split=split), bank, leadfield, seed=0)
    train_set, val_set = make("train"), make("val")
    model = build_model("lightbunny", random_state=0, n_chans=5, n_times=20, n_sources=6,
                        d_model=16, chunk_size=5)
    train(model, train_set, val_set, out_dir=tmp_path, epochs=1, batch_size=4, seed=0,
          device="cpu", progress=False)
    meta = load_checkpoint(tmp_path / "last.pt", expected_meta=dataset_meta(val_set))["meta"]
    assert meta["atlas"] == atlas.name and meta["ch_names"] == leadfield.ch_names
    assert meta["preprocessing"] == json_roundtrip(train_set.preprocessing)


def json_roundtrip(obj):
    import json

    return json.loads(json.dumps(obj))


@pytest.mark.slow
def test_learns_on_embedded_default_atlas_and_leadfield(tmp_path):
    """tvb76 (embedded) + its default 64-channel leadfield + lightbunny.dataset, small LightBunny.

    The spike clips are smooth synthetic bumps (one per clip, at the clip's own region) rather
    than a simulated bank, so the test needs no simulation; two patches of 3-7 regions per
    sample, 20 dB sensor noise. A network that does not learn stays near 1 x zero prediction.
    """
    pytest.importorskip("lightbunny.dataset")
    from lightbunny.atlas import load_atlas
    from lightbunny.dataset import SyntheticEEGDataset
    from lightbunny.leadfield import make_leadfield
    from lightbunny.sources import Sources
    from lightbunny.spikes import SpikeBank
    from lightbunny.train import dataset_meta

    atlas = load_atlas("tvb76")
    leadfield = make_leadfield(atlas, cache_dir=tmp_path / "cache")
    n_regions, n_times = atlas.n_regions, 20
    rng = np.random.default_rng(0)
    t = np.arange(n_times)
    clips = {}
    for r in range(n_regions):
        c = np.zeros((4, n_times, n_regions), np.float32)
        for k in range(4):
            c[k, :, r] = np.exp(-0.5 * ((t - rng.uniform(6, 14)) / rng.uniform(1.5, 3)) ** 2)
        clips[r] = c
    bank = SpikeBank.from_arrays(clips, atlas_name=atlas.name)
    nearest = np.argsort(atlas.distances, axis=1)

    def make(split, n, seed):
        r = np.random.default_rng(seed)
        patches = [[nearest[c, :int(r.integers(3, 8))] for c in r.choice(n_regions, 2, replace=False)]
                   for _ in range(n)]
        return SyntheticEEGDataset(Sources.from_patches(patches, atlas=atlas, split=split), bank,
                                   leadfield, seed=seed, snr_db=20.0, background="none",
                                   clip_fractions=(0.5, 0.5, 0.0))

    train_set, val_set = make("train", 192, 0), make("val", 64, 1)
    model = build_model("lightbunny", random_state=0, n_chans=leadfield.n_chans, n_times=n_times,
                        n_sources=n_regions, d_model=32, chunk_size=5)
    result = train(model, train_set, val_set, out_dir=tmp_path / "run", epochs=12, batch_size=16,
                   lr=1e-2, seed=0, device="cpu", progress=False, patience=None)
    ratio = result.best_val_loss / result.history[-1]["val_loss_zero"]
    print(f"tvb76: best val loss {result.best_val_loss:.4g} = {ratio:.3f} x zero prediction")
    assert ratio < 0.6  # reaches about 0.42
    meta = load_checkpoint(tmp_path / "run" / "best.pt", expected_meta=dataset_meta(val_set))["meta"]
    assert meta["atlas"] == "tvb76" and len(meta["ch_names"]) == 64


def test_one_progress_bar_over_all_epochs(tmp_path, capsys):
    """The bar counts every training and validation batch of every epoch, so its time left is
    the whole run's, not the current epoch's."""
    train(tiny_model(), ToyDataset(40), ToyDataset(12, offset=1000), out_dir=tmp_path,
          epochs=3, batch_size=8, patience=None, progress=True)
    err = capsys.readouterr().err
    # 3 epochs x (5 training + 2 validation batches)
    assert "21/21" in err and "epoch 3/3" in err
    assert "/5 " not in err and "/2 " not in err  # no per-epoch or validation-only bar
