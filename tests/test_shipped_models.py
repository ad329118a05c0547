"""The models shipped in lightbunny/data/models load, match their cards and image EEG."""

import numpy as np
import pytest
import torch

from lightbunny.inference import (
    CARD_KEYS,
    list_models,
    load_model,
    model_card,
    models_dir,
    normalise_eeg,
    resolve_checkpoint,
)
from lightbunny.utils import sha256_file


@pytest.fixture(autouse=True)
def _package_models(monkeypatch):
    monkeypatch.delenv("LIGHTBUNNY_MODELS_DIR", raising=False)


def test_the_generalisation_model_is_shipped():
    assert "fs994-64ch-randomised-cpu" in list_models()


@pytest.mark.parametrize("name", list_models() or ["<none>"])
def test_shipped_model_matches_its_card_and_images_a_source(name):
    if name == "<none>":
        pytest.fail("no model is shipped in lightbunny/data/models")
    card = model_card(name)
    assert set(CARD_KEYS) <= set(card)
    path = resolve_checkpoint(name)
    assert path.parent == models_dir() and sha256_file(path) == card["checkpoint_sha256"]
    assert path.stat().st_size < 5e6  # small enough for the repository
    model, ckpt = load_model(name)
    assert ckpt["meta"]["atlas"] == card["atlas"]
    assert len(ckpt["meta"]["ch_names"]) == card["n_chans"] == ckpt["model_config"]["n_chans"]
    # weights stored in float16 come back as float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # a window of EEG gives a finite map of the atlas's regions over time, the same twice
    n_times, n_chans = ckpt["model_config"]["n_times"], card["n_chans"]
    rng = np.random.default_rng(0)
    eeg = normalise_eeg(rng.standard_normal((1, n_times, n_chans)).astype(np.float32))
    with torch.no_grad():
        out = model(torch.as_tensor(eeg, dtype=torch.float32)).numpy()
        again = model(torch.as_tensor(eeg, dtype=torch.float32)).numpy()
    assert out.shape == (1, n_times, ckpt["model_config"]["n_sources"])
    assert np.isfinite(out).all() and np.array_equal(out, again) and np.abs(out).max() > 0
