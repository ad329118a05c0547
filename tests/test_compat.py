"""Compatibility: a checkpoint written before issue 16's refactor loads and predicts the same.

``tests/data/checkpoint_v0_1.pt`` was written by the real training loop of commit 5087240
(``tests/data/make_checkpoint_v0_1.py``), with its input and outputs in
``checkpoint_v0_1.npz``. It records its input scaling by the old import path
``'lightbunny.dataset.normalise_eeg'``.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

DATA = Path(__file__).resolve().parent / "data"
CKPT = DATA / "checkpoint_v0_1.pt"


@pytest.fixture(scope="module")
def saved():
    return dict(np.load(DATA / "checkpoint_v0_1.npz"))


def test_fixture_is_small_and_plain():
    assert CKPT.stat().st_size < 200_000
    ckpt = torch.load(CKPT, map_location="cpu", weights_only=True)
    assert ckpt["meta"]["preprocessing"]["eeg"]["function"] == "lightbunny.dataset.normalise_eeg"


def test_old_checkpoint_predicts_identically_through_train_loader(saved):
    from lightbunny.dataset import normalise_eeg
    from lightbunny.train import load_model

    net, ckpt = load_model(CKPT)
    assert ckpt["model_name"] == "lightbunny" and ckpt["meta"]["atlas"] == "synthetic"
    with torch.no_grad():
        out = net(torch.as_tensor(normalise_eeg(saved["windows"]), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, saved["net_output"], rtol=0, atol=1e-6)


def test_old_checkpoint_applies_identically(saved):
    from lightbunny.apply import load_source_model

    model = load_source_model(CKPT)
    assert model.n_times == 50 and model.sfreq == 500.0 and len(model.ch_names) == 19
    np.testing.assert_allclose(model.apply(saved["eeg"]), saved["apply_output"], rtol=0,
                               atol=1e-6)
    np.testing.assert_array_equal(model.apply(saved["eeg"]), saved["apply_output"])


def test_old_checkpoint_predicts_identically_through_inference_loader(saved):
    from lightbunny.inference import NORMALISATION, checkpoint_normalisation, load_model, normalise_eeg

    net, ckpt = load_model(CKPT)
    assert checkpoint_normalisation(ckpt["meta"]) == NORMALISATION  # the old path maps to it
    with torch.no_grad():
        out = net(torch.as_tensor(normalise_eeg(saved["windows"]), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, saved["net_output"], rtol=0, atol=1e-6)
