"""Shared fixtures: tiny synthetic inputs so the whole pipeline runs on a CPU in seconds."""

import os
from pathlib import Path

import numpy as np
import pytest

from lightbunny.atlas import make_synthetic_atlas

SHARED_ANATOMY = Path(__file__).resolve().parents[2] / "shared" / "anatomy" / "deepsif994"


def anatomy_candidates() -> list:
    """Folders that may hold the fsaverage994 files, in order: ``$LIGHTBUNNY_DATA`` (the
    package's own variable, see :func:`lightbunny.atlas.resolve_data_dir`), then the shared
    checkout's ``../shared/anatomy/deepsif994``."""
    env = os.environ.get("LIGHTBUNNY_DATA")
    return ([Path(env).expanduser()] if env else []) + [SHARED_ANATOMY]


@pytest.fixture(scope="session")
def tiny_atlas():
    """An 8-region spherical atlas with a random (seeded) connectome."""
    return make_synthetic_atlas(n_regions=8, n_vertices=300, seed=0)


def find_anatomy():
    """The first of :func:`anatomy_candidates` holding the fsaverage994 files, or None."""
    for folder in anatomy_candidates():
        if (folder / "fs_cortex_20k_region_mapping.mat").exists():
            return folder
    return None


@pytest.fixture(scope="session")
def shared_anatomy():
    """Folder of the fsaverage994 files (``$LIGHTBUNNY_DATA``, then the shared anatomy);
    skips the test where neither holds them."""
    folder = find_anatomy()
    if folder is None:
        pytest.skip("fsaverage994 anatomy not found in "
                    + " or ".join(str(p) for p in anatomy_candidates())
                    + " (set LIGHTBUNNY_DATA to a folder made by `lightbunny fetch`)")
    return folder


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
