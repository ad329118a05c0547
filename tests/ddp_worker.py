"""Worker for tests/test_distributed.py: one rank of a tiny DDP training run (torchrun)."""

import sys
from pathlib import Path

import numpy as np
import torch

from lightbunny.atlas import make_synthetic_atlas
from lightbunny.dataset import make_dataset
from lightbunny.models import build_model
from lightbunny.sources import Sources
from lightbunny.spikes import SpikeBank
from lightbunny.train import _distributed, init_distributed_from_env, train


def tiny_data():
    atlas = make_synthetic_atlas(n_regions=8, n_vertices=120, seed=0)
    rng = np.random.default_rng(0)
    clips = {r: rng.normal(0, 0.1, (6, 50, 8)) for r in range(8)}
    for r in range(8):
        clips[r][:, 20:26, r] += 5.0
    bank = SpikeBank.from_arrays(clips, atlas_name="synthetic")
    gain = np.random.default_rng(1).normal(size=(6, 8))
    make = lambda split, n: Sources.from_patches([[[i % 8]] for i in range(n)], atlas=atlas,  # noqa: E731
                                                 split=split)
    kw = dict(atlas_name="synthetic", clip_fractions=(1.0, 0.0, 0.0), clip_split="train", seed=0)
    return (make_dataset(make("train", 32), bank, gain, **kw),
            make_dataset(make("val", 8), bank, gain, **kw))


def main(out):
    torch.set_num_threads(1)
    rank, world = init_distributed_from_env()
    train_set, val_set = tiny_data()
    model = build_model("lightbunny", random_state=0, n_chans=6, n_times=50, n_sources=8,
                        d_model=16, chunk_size=10)
    train(model, train_set, val_set, out_dir=out, epochs=2, batch_size=8, device="cpu",
          recipe="lightbunny", progress=False, seed=0)
    torch.save(model.state_dict(), Path(out) / f"rank{rank}_of{world}.pt")
    assert _distributed() == (rank, world)


if __name__ == "__main__":
    main(sys.argv[1])
