"""Training throughput (samples/s) of each network at the research defaults.

For each registered model (64 channels, 500 samples, 994 regions, the seed's hyperparameters)
it times full training steps (batch from the batch builder, forward, MSE, backward, Adam
step) after warm-up steps, and prints samples/s with the share of time spent building batches.

Batches come from ``lightbunny.dataset`` (its ``SyntheticEEGDataset.get_batch`` building each
batch on the model's device, see ``_dataset_builder``) when it works at these sizes, otherwise
from random tensors made on the device; the output says which.

Run (CPU, a few steps):   python bench/bench_train.py
On a GPU, the issue's setting:
    python bench/bench_train.py --device cuda --batch-size 128 --amp both
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from lightbunny.models import MODELS, build_model, count_parameters

SEED_SIZES = dict(n_chans=64, n_times=500, n_sources=994)
SEED_HYPER = {"lightbunny": dict(d_model=256, chunk_size=25, dropout=0.2),
              "deepsif": dict(n_hidden=500, n_lstm_layers=3),
              "bunny": dict(d_model=256, chunk_size=25, dropout=0.2)}


class RandomBatches:
    """Stand-in batch builder: standard-normal EEG and targets made directly on ``device``."""

    preprocessing: dict = {}

    def __init__(self, n_items, n_times, n_chans, n_sources, seed=0):
        self.n_items, self.shape_x, self.shape_y = n_items, (n_times, n_chans), (n_times, n_sources)
        self.seed = seed

    def __len__(self):
        return self.n_items

    def get_batch(self, indices, device=None):
        g = torch.Generator(device=device or "cpu").manual_seed(self.seed + int(indices[0]))
        n = len(indices)
        eeg = torch.randn(n, *self.shape_x, generator=g, device=device)
        return eeg, torch.randn(n, *self.shape_y, generator=g, device=device)


def _dataset_builder(n_clip_regions: int = 8, n_clips: int = 3, n_samples: int = 4096):
    """The package's batch builder at the seed sizes, or None (with the reason) if unavailable.

    ``lightbunny.dataset.SyntheticEEGDataset`` with the default recipe (two sources per sample,
    clip background, sensor noise at 5-20 dB, normalisation) on a synthetic 994-region atlas, a
    random 64 x 994 gain and random clips for ``n_clip_regions`` centre regions: the mixing
    work per batch is that of the real data; only the inputs are random.
    """
    import numpy as np

    try:
        from lightbunny.atlas import make_synthetic_atlas
        from lightbunny.dataset import SyntheticEEGDataset
        from lightbunny.sources import Sources
        from lightbunny.spikes import SpikeBank
    except ImportError as err:
        return None, f"lightbunny.dataset not available ({err})"
    n_chans, n_times = SEED_SIZES["n_chans"], SEED_SIZES["n_times"]
    n_regions = SEED_SIZES["n_sources"]
    try:
        rng = np.random.default_rng(0)
        atlas = make_synthetic_atlas(n_regions=n_regions, n_vertices=4 * n_regions, seed=0)
        centres = rng.choice(n_regions, n_clip_regions, replace=False)
        nearest = np.argsort(atlas.distances, axis=1)
        patches = [[nearest[c, :rng.integers(1, 12)] for c in rng.choice(centres, 2, replace=False)]
                   for _ in range(n_samples)]
        sources = Sources.from_patches(patches, atlas=atlas)
        bank = SpikeBank.from_arrays(
            {int(c): rng.normal(size=(n_clips, n_times, n_regions)).astype(np.float32)
             for c in centres}, atlas_name=atlas.name)
        gain = rng.normal(size=(n_chans, n_regions)).astype(np.float32)
        ds = SyntheticEEGDataset(sources, bank, gain, atlas_name=atlas.name, seed=0,
                                 clip_fractions=(1.0, 0.0, 0.0))
        ds.get_batch([0, 1])  # fills the per-region caches outside the timing
    except Exception as err:  # the dataset module is young: fall back, and say why
        return None, f"lightbunny.dataset failed at the seed sizes ({type(err).__name__}: {err})"
    return ds, (f"lightbunny.dataset.SyntheticEEGDataset (default recipe, {len(ds)} samples on a "
                f"synthetic {n_regions}-region atlas, random clips and gain)")


def bench_model(name, dataset, *, batch_size, steps, warmup, device, amp):
    torch.manual_seed(0)
    model = build_model(name, **SEED_SIZES, **SEED_HYPER[name]).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t_data = t_total = 0.0
    for step in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        indices = list(range(step * batch_size, (step + 1) * batch_size))
        eeg, target = dataset.get_batch(indices, device=device)
        sync()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            pred = model(eeg)
        loss = torch.nn.functional.mse_loss(pred.float(), target)
        loss.backward()
        opt.step()
        sync()
        t2 = time.perf_counter()
        if step >= warmup:
            t_data += t1 - t0
            t_total += t2 - t0
    return {"samples_per_s": steps * batch_size / t_total, "data_share": t_data / t_total,
            "step_s": t_total / steps, "n_params": count_parameters(model)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(sorted(MODELS)))
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--amp", default="off", choices=("off", "bf16", "both"),
                   help="bf16 autocast (CUDA only); 'both' runs fp32 then bf16")
    p.add_argument("--data", default="auto", choices=("auto", "random"),
                   help="auto: the package's batch builder if available, else random tensors")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    if args.data == "random":
        dataset, source = None, "random tensors requested"
    else:
        dataset, source = _dataset_builder()
    if dataset is None:
        dataset = RandomBatches(10**6, SEED_SIZES["n_times"], SEED_SIZES["n_chans"],
                                SEED_SIZES["n_sources"])
        source = f"random tensors ({source})"
    amps = {"off": [False], "bf16": [True], "both": [False, True]}[args.amp]
    if device.type != "cuda" and any(amps):
        p.error("--amp bf16 needs --device cuda")

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    print(f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; batch {args.batch_size}, {args.steps} timed steps after {args.warmup} warm-up")
    print(f"batches from: {source}")
    if hasattr(os, "getloadavg"):
        print("load average before: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
              + f" on {os.cpu_count()} CPUs (other work on the machine slows the CPU figures)")
    print(f"sizes: {SEED_SIZES}")
    print(f"{'model':<11} {'params':>10} {'precision':>9} {'samples/s':>10} {'s/step':>8} "
          f"{'data %':>7}")
    for model_name in args.models.split(","):
        for amp in amps:
            try:
                r = bench_model(model_name, dataset, batch_size=args.batch_size, steps=args.steps,
                                warmup=args.warmup, device=device, amp=amp)
            except torch.OutOfMemoryError:
                precision = "bf16" if amp else "fp32"
                print(f"{model_name:<11} {'':>10} {precision:>9} {'out of memory':>10}")
                torch.cuda.empty_cache()
                continue
            print(f"{model_name:<11} {r['n_params']:>10,} {'bf16' if amp else 'fp32':>9} "
                  f"{r['samples_per_s']:>10.2f} {r['step_s']:>8.2f} {100 * r['data_share']:>6.1f}%",
                  flush=True)


if __name__ == "__main__":
    main()
