"""The inference layer: apart from training, named normalisation, model cards, fp16 weights."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightbunny import inference
from lightbunny.inference import (NORMALISATION, check_meta, checkpoint_normalisation,
                                  export_model, list_models, load_checkpoint, load_model,
                                  model_card, models_dir, resolve_checkpoint)

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "tests" / "data" / "checkpoint_v0_1.pt"


def test_apply_runs_with_training_code_blocked():
    """apply, evaluate and inference import (and image a recording) with lightbunny.train and
    lightbunny.dataset made unimportable: inference needs nothing from training."""
    code = f"""
import sys
sys.modules["lightbunny.train"] = None
sys.modules["lightbunny.dataset"] = None
import numpy as np
import lightbunny.inference, lightbunny.apply, lightbunny.evaluate
from lightbunny.apply import load_source_model
model = load_source_model({str(CKPT)!r})
saved = np.load({str(CKPT.with_suffix('.npz'))!r})
np.testing.assert_array_equal(model.apply(saved["eeg"]), saved["apply_output"])
try:
    import lightbunny.train
except ImportError:
    print("blocked ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                              "PATH": "/usr/bin:/bin"}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "blocked ok" in res.stdout


def test_train_reexports_the_inference_loader():
    import lightbunny.dataset
    import lightbunny.train

    assert lightbunny.train.load_model is load_model
    assert lightbunny.train.load_checkpoint is load_checkpoint
    assert lightbunny.train.check_meta is check_meta
    assert lightbunny.dataset.normalise_eeg is inference.normalise_eeg


def test_normalisation_names():
    legacy = {"preprocessing": {"eeg": {"function": "lightbunny.dataset.normalise_eeg"}}}
    named = {"preprocessing": {"eeg": {"normalisation": NORMALISATION}}}
    assert checkpoint_normalisation(legacy) == checkpoint_normalisation(named) == NORMALISATION
    assert checkpoint_normalisation({}) == NORMALISATION  # records none: the only one used
    with pytest.raises(ValueError, match="'somebody.zscore/2'"):
        checkpoint_normalisation({"preprocessing": {"eeg": {"normalisation": "somebody.zscore/2"}}})
    with pytest.raises(ValueError, match="'other.module.fn'"):
        checkpoint_normalisation({"preprocessing": {"eeg": {"function": "other.module.fn"}}})
    # a legacy checkpoint's meta matches the same data described by today's dataset (resume)
    old = {"atlas": "a", "preprocessing": {"eeg": {"function": "lightbunny.dataset.normalise_eeg",
                                                   "reference": "average"}, "n_times": 5}}
    new = {"atlas": "a", "preprocessing": {"eeg": {"normalisation": NORMALISATION,
                                                   "reference": "average"}, "n_times": 5}}
    check_meta(old, new)
    check_meta(new, old)
    with pytest.raises(ValueError, match="preprocessing"):
        check_meta(old, {**new, "preprocessing": {**new["preprocessing"], "n_times": 6}})


def test_train_records_the_normalisation_name(tmp_path):
    from types import SimpleNamespace

    from lightbunny.atlas import make_synthetic_atlas
    from lightbunny.dataset import SyntheticEEGDataset
    from lightbunny.models import build_model
    from lightbunny.sources import Sources
    from lightbunny.spikes import SpikeBank
    from lightbunny.train import train

    rng = np.random.default_rng(0)
    atlas = make_synthetic_atlas(n_regions=4)
    bank = SpikeBank.from_arrays({r: rng.normal(size=(2, 20, 4)) for r in range(4)},
                                 atlas_name=atlas.name)
    lf = SimpleNamespace(gain=rng.normal(size=(3, 4)), atlas_name=atlas.name,
                         ch_names=["C3", "C4", "Cz"])
    ds = SyntheticEEGDataset(Sources.from_patches([[[i % 4]] for i in range(8)], atlas=atlas),
                             bank, lf, seed=0)
    net = build_model("lightbunny", random_state=0, n_chans=3, n_times=20, n_sources=4,
                      d_model=16, chunk_size=5)
    train(net, ds, ds, out_dir=tmp_path, epochs=1, batch_size=8, device="cpu", progress=False)
    meta = load_checkpoint(tmp_path / "best.pt")["meta"]
    assert meta["preprocessing"]["eeg"]["normalisation"] == NORMALISATION
    assert "function" not in meta["preprocessing"]["eeg"]


# ------------------------------------------------------------------------------ named models


@pytest.fixture
def models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("LIGHTBUNNY_MODELS_DIR", str(folder))
    card = export_model(CKPT, "tiny-demo", description="19-channel toy", limits="a toy",
                        budget={"epochs": 1})
    return folder, card


def test_models_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("LIGHTBUNNY_MODELS_DIR", raising=False)
    assert models_dir() == ROOT / "lightbunny" / "data" / "models"
    monkeypatch.setenv("LIGHTBUNNY_MODELS_DIR", str(tmp_path))
    assert models_dir() == tmp_path and list_models() == []


def test_export_writes_a_small_fp16_model_and_card(models):
    folder, card = models
    assert list_models() == ["tiny-demo"]
    assert model_card("tiny-demo") == card == json.loads((folder / "tiny-demo.json").read_text())
    for key in inference.CARD_KEYS:
        assert key in card
    assert card["atlas"] == "synthetic" and card["n_chans"] == 19
    assert card["normalisation"] == NORMALISATION and card["training"]["epochs"] == 1
    stored = torch.load(folder / "tiny-demo.pt", weights_only=True)
    assert {v.dtype for v in stored["model_state"].values() if v.is_floating_point()} == \
        {torch.float16}
    assert "optimizer_state" not in stored and "rng" not in stored
    assert (folder / "tiny-demo.pt").stat().st_size < CKPT.stat().st_size


def test_named_model_loads_in_float32_and_predicts_close(models):
    saved = np.load(CKPT.with_suffix(".npz"))
    net, ckpt = load_model("tiny-demo")
    assert all(p.dtype == torch.float32 for p in net.parameters())
    full, _ = load_model(CKPT)
    x = torch.as_tensor(inference.normalise_eeg(saved["windows"]), dtype=torch.float32)
    with torch.no_grad():
        half_out, full_out = net(x).numpy(), full(x).numpy()
    np.testing.assert_allclose(full_out, saved["net_output"], rtol=0, atol=1e-6)
    assert np.abs(half_out - full_out).max() < 1e-2 * np.abs(full_out).max()
    assert not np.array_equal(half_out, full_out)  # the weights really are rounded


def test_named_model_through_apply_and_cli(models, tmp_path, capsys):
    from lightbunny.apply import load_source_model
    from lightbunny.cli import main

    model = load_source_model("tiny-demo")
    assert model.name == "lightbunny" and model.n_times == 50
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-demo" in out and "19-channel toy" in out
    assert main(["models", "tiny-demo"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "tiny-demo"
    assert main(["models", "nothing-here"]) != 0
    assert "tiny-demo" in capsys.readouterr().err


def test_resolve_checkpoint(models, tmp_path):
    folder, card = models
    assert resolve_checkpoint(CKPT) == CKPT
    assert resolve_checkpoint("tiny-demo") == folder / "tiny-demo.pt"
    with pytest.raises(FileNotFoundError, match="available models in .*: tiny-demo"):
        resolve_checkpoint("tiny-dem")
    with pytest.raises(FileNotFoundError, match="neither a file nor"):
        load_checkpoint(tmp_path / "missing.pt")
    # a damaged or replaced file is refused
    data = bytearray((folder / "tiny-demo.pt").read_bytes())
    data[-30] ^= 0xFF
    (folder / "tiny-demo.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        resolve_checkpoint("tiny-demo")
    # a card that lacks keys or names another model
    (folder / "bad.json").write_text(json.dumps({"name": "bad"}))
    with pytest.raises(ValueError, match="lacks description"):
        model_card("bad")
    (folder / "other.json").write_text(json.dumps({**card, "name": "tiny-demo"}))
    with pytest.raises(ValueError, match="describes 'tiny-demo'"):
        model_card("other")
    with pytest.raises(ValueError, match="letters, digits"):
        export_model(CKPT, "../escape")
    (tmp_path / "outside.json").write_text(json.dumps({**card, "name": "../outside"}))
    with pytest.raises(ValueError, match="no model named '../outside'"):
        model_card("../outside")


def test_shipped_models_have_valid_cards(monkeypatch):
    """Every model shipped in the package folder has a complete card and its checksum."""
    monkeypatch.delenv("LIGHTBUNNY_MODELS_DIR", raising=False)
    for name in list_models():
        card = model_card(name)
        assert resolve_checkpoint(name).is_file(), card


def test_evaluate_and_apply_refuse_an_unknown_normalisation(tmp_path):
    from lightbunny.apply import load_source_model
    from lightbunny.evaluate import _learned

    ckpt = torch.load(CKPT, weights_only=True)
    ckpt["meta"]["preprocessing"]["eeg"] = {"normalisation": "zscore/1"}
    torch.save(ckpt, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="scaled by 'zscore/1'"):
        _learned(tmp_path / "other.pt", {"atlas": "synthetic"}, torch.device("cpu"))
    with pytest.raises(ValueError, match="scaled by 'zscore/1'"):
        load_source_model(tmp_path / "other.pt")
    assert _learned(CKPT, {"atlas": "synthetic"}, torch.device("cpu")).kind == "learned"
