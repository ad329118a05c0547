"""Shared fixtures: tiny synthetic inputs so the whole pipeline runs on a CPU in seconds."""

from pathlib import Path

import numpy as np
import pytest

from lightbunny.atlas import make_synthetic_atlas

SHARED_ANATOMY = Path(__file__).resolve().parents[2] / "shared" / "anatomy" / "deepsif994"


@pytest.fixture(scope="session")
def tiny_atlas():
    """An 8-region spherical atlas with a random (seeded) connectome."""
    return make_synthetic_atlas(n_regions=8, n_vertices=300, seed=0)


@pytest.fixture(scope="session")
def shared_anatomy():
    """Path of the shared fsaverage994 files; skips the test where they are absent."""
    if not (SHARED_ANATOMY / "fs_cortex_20k_region_mapping.mat").exists():
        pytest.skip(f"shared anatomy not found at {SHARED_ANATOMY}")
    return SHARED_ANATOMY


@pytest.fixture
def one_thread():
    """Run a test with one torch thread: on a shared 2-core CPU the GRU's small per-step work
    only loses by being split."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
