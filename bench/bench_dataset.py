"""Throughput of the dataset's batch builder vs the seed's per-sample NumPy recipe.

Realistic sizes: 994 regions, 64 channels, 500 samples per clip, 2 sources per sample. The
atlas is the synthetic 994-region sphere (or ``--atlas fsaverage994 --data-dir DIR``), the gain
is random, and the spike bank is a stand-in that hands every region the same few random clips
(the mixing cost does not depend on the clip values; a real bank of 994 regions would need
about 2 MB per clip in memory).

Rows:

* ``seed recipe, per-sample NumPy``: :func:`lightbunny.dataset.seed_sample_numpy`, one sample
  at a time (clip copies, patch overwrite, normalise, sum, project), as the seed's
  ``dataset.py`` did (without its in-place corruption of the cache);
* ``batch builder, seed recipe``: the same recipe for a whole batch with tensor operations;
* ``batch builder, lightbunny, no background``: spikes on patches + white noise;
* ``batch builder, lightbunny, clip background``: the default (background of the first
  source's clip, projected once per clip and cached) + white noise;
* ``lightbunny + randomisation``: :mod:`lightbunny.randomise` (issue 14) on a 3-source file,
  without and with a leadfield ensemble (per-sample gains).

Usage::

    python bench/bench_dataset.py [--batch-size 64] [--n-batches 4] [--threads 1] [--device cpu]
    python bench/bench_dataset.py --device cuda --rng counter --batch-size 1024 --n-batches 8
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from lightbunny.atlas import make_synthetic_atlas
from lightbunny.dataset import SyntheticEEGDataset, seed_sample_numpy
from lightbunny.sources import make_sources
from lightbunny.utils import read_only


class PoolBank:
    """A SpikeBank stand-in: every region gets the same ``n_clips`` random clips (read-only)."""

    def __init__(self, n_regions, n_times=500, n_clips=3, atlas_name="synthetic", seed=0):
        rng = np.random.default_rng(seed)
        t = np.arange(n_times)
        pool = rng.normal(0.0, 0.2, (n_clips, n_times, n_regions)).astype(np.float32)
        pool += (3.0 * np.exp(-0.5 * ((t - n_times // 2) / 8.0) ** 2)).astype(np.float32)[
            None, :, None]
        self.pool = read_only(pool)
        self.atlas_name, self.sfreq, self.n_times, self.n_regions = atlas_name, 500.0, n_times, \
            n_regions
        self.attrs = {}

    def n_clips(self, region):
        return len(self.pool)

    def regions_with_clips(self):
        return np.arange(self.n_regions)

    def clips(self, region):
        return self.pool


def rate(fn, n_samples, repeat=1):
    fn()  # warm-up
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_samples / best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-batches", type=int, default=4)
    p.add_argument("--n-seed-samples", type=int, default=128)
    p.add_argument("--n-chans", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--atlas", default="synthetic")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice); on a shared, "
                        "loaded machine 1 thread is often faster than 2")
    p.add_argument("--rng", default="generator", choices=("generator", "counter"),
                   help="random numbers of the batch builder (counter: vectorised, on the device; "
                        "meant for GPU batches)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    if args.atlas == "synthetic":
        atlas = make_synthetic_atlas(n_regions=994, n_vertices=20484, seed=0)
    else:
        from lightbunny.atlas import load_atlas

        atlas = load_atlas(args.atlas, data_dir=args.data_dir)
    sources = make_sources(atlas, split="train", n_iter=1, n_sources=2, seed=0, progress=False)
    gain = np.random.default_rng(1).normal(size=(args.n_chans, atlas.n_regions))
    bank = PoolBank(atlas.n_regions, atlas_name=atlas.name)
    setup = time.perf_counter() - t0
    sizes = sources.patch_sizes()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}")
    print(f"atlas {atlas.name}: {atlas.n_regions} regions; {args.n_chans} channels; 500 samples; "
          f"2 sources/sample; patch size median {np.median(sizes):.0f} (max {sizes.max()}); "
          f"setup {setup:.1f}s")

    n = args.batch_size * args.n_batches
    rng = np.random.default_rng(0)
    order = rng.permutation(len(sources))

    # ---------------------------------------------------------------- the seed, per sample
    seed_ds = SyntheticEEGDataset(sources, bank, gain, atlas_name=atlas.name, recipe="seed")
    seed_idx = order[: args.n_seed_samples]

    def seed_loop():
        for i in seed_idx:
            info = seed_ds._draw([i])
            clips = [bank.clips(int(c))[int(j)] for c, j in zip(info["centres"][0],
                                                                info["clips"][0])]
            seed_sample_numpy(clips, sources.patches(int(i)), gain)

    rows = [("seed recipe, per-sample NumPy (reference)", rate(seed_loop, len(seed_idx)))]

    def batches(ds, out=None):
        def run():
            for b in range(args.n_batches):
                idx = order[b * args.batch_size:(b + 1) * args.batch_size]
                eeg, target = ds.get_batch(idx, device=args.device, out=out)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
        return run

    t0 = time.perf_counter()
    configs = [
        ("batch builder, seed recipe (no noise)", dict(recipe="seed")),
        ("batch builder, lightbunny, no background, white noise", dict(background="none")),
        ("batch builder, lightbunny, clip background, white noise (default)",
         dict(background="clip")),
    ]
    for label, kw in configs:
        ds = SyntheticEEGDataset(sources, bank, gain, atlas_name=atlas.name, rng=args.rng, **kw)
        t1 = time.perf_counter()
        ds.precompute(progress=False)
        pre = time.perf_counter() - t1
        r = rate(batches(ds), n, repeat=2)
        rows.append((label + (f" [cache fill {pre:.1f}s]" if pre > 0.5 else ""), r))
        if kw.get("background") == "clip":
            out = (torch.empty(args.batch_size, 500, args.n_chans, device=args.device),
                   torch.empty(args.batch_size, 500, atlas.n_regions, device=args.device))
            rows.append((label.replace(" (default)", "") + ", reused out= buffers",
                         rate(batches(ds, out), n, repeat=2)))
    # ---------------------------------------------------------------- domain randomisation
    from lightbunny.randomise import Randomisation

    src3 = make_sources(atlas, split="train", n_iter=1, n_sources=3, seed=0, progress=False)
    g = np.random.default_rng(2)
    ensemble = [gain * (1 + 0.1 * g.normal(size=gain.shape)) for _ in range(4)]
    rand_configs = [
        ("lightbunny + randomisation (default mix: 1-3 sources, extents, 4 waveform families, "
         "white/coloured noise)", dict(randomise=Randomisation(p_nominal=1.0))),
        ("lightbunny + randomisation + leadfield ensemble of 4 (bench/train_generalise.py)",
         dict(randomise=Randomisation(), leadfields=ensemble)),
    ]
    for label, kw in rand_configs:
        ds = SyntheticEEGDataset(src3, bank, gain, atlas_name=atlas.name, rng=args.rng, **kw)
        ds.precompute(progress=False)
        ds._rand.coloured()  # the coloured-noise bank, built once per dataset
        rows.append((label, rate(batches(ds), n, repeat=2)))

    def floor():  # allocating and filling the dense float32 target alone
        for _ in range(args.n_batches):
            torch.ones((args.batch_size, 500, atlas.n_regions), device=args.device)

    rows.append(("(floor: allocate + fill a (batch, 500, n_regions) float32 target only)",
                 rate(floor, n, repeat=2)))
    base = rows[0][1]
    print(f"\n{'path':<84} {'samples/s':>10} {'x seed':>7}")
    for label, r in rows:
        print(f"{label:<84} {r:>10.0f} {r / base:>7.1f}")
    print(f"(batch size {args.batch_size}, {n} samples per timing, best of 2; per-sample path "
          f"over {len(seed_idx)} samples; rng={args.rng})")


if __name__ == "__main__":
    main()
