"""Benchmark: TVB backend vs the batched torch backend on the same connectome, duration and CPU.

Usage (from the repository root)::

    python bench/bench_simulate.py --atlas fsaverage994 --data-dir ../shared/anatomy/deepsif994
    python bench/bench_simulate.py --atlas tvb76 --steps 2000 --batch-size 76
    python bench/bench_simulate.py --atlas tvb76 --stats 10      # noise-on statistics, 10 s
    python bench/bench_simulate.py --atlas tvb76 --clips 10      # clips per region, fix on/off
    python bench/bench_simulate.py --atlas fsaverage994 --data-dir ... --bank-size 4
    python bench/bench_simulate.py --atlas fsaverage994 --data-dir ... --skip-tvb --device cuda \
        --batch-size 256 --bank-size 994 --bank-batch 256        # the full bank on a GPU

Both backends integrate the same number of steps (``--steps``, no transient, no decimation)
from the same random initial history; the table reports seconds and milliseconds per
region-step and their ratio, then extrapolates the full fsaverage994 bank (994 regions x
(20 s + 0.5 s transient) = 41 000 steps each) from the torch time. Results go to
bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _atlas(args):
    from lightbunny.atlas import load_atlas

    return load_atlas(args.atlas, data_dir=args.data_dir)


def bench_speed(args, atlas):
    from lightbunny.simulate import JansenRitConfig, simulate_nodes

    cfg = JansenRitConfig(transient=0.0, decimation=1)
    duration = args.steps * cfg.dt / 1000.0
    nodes = np.asarray(atlas.region_to_node)
    rows = []
    if not args.skip_tvb:
        t0 = time.perf_counter()
        simulate_nodes(atlas.weights, atlas.tract_lengths, nodes[:1], backend="tvb",
                       duration=duration, config=cfg, seed=0)
        t_tvb = time.perf_counter() - t0
        rows.append(("tvb", 1, t_tvb, t_tvb / args.steps * 1e3))
    for bs in args.batch_size:
        src = nodes[np.arange(bs) % len(nodes)]
        t0 = time.perf_counter()
        simulate_nodes(atlas.weights, atlas.tract_lengths, src, backend="torch",
                       duration=duration, config=cfg, seed=0, device=args.device,
                       dtype=args.dtype, n_threads=args.threads)
        if args.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        t = time.perf_counter() - t0
        rows.append((f"torch {args.device} {args.dtype} batch {bs}", bs, t,
                     t / args.steps / bs * 1e3))
    print(f"\n{atlas.name}: {atlas.n_nodes} nodes, {args.steps} steps of {cfg.dt} ms, "
          f"torch threads {args.threads or 'auto'}")
    print(f"{'backend':<34}{'regions':>8}{'seconds':>10}{'ms/region-step':>16}{'vs tvb':>10}")
    ref = rows[0][3] if not args.skip_tvb else None
    for name, n, t, ms in rows:
        ratio = f"{ref / ms:9.0f}x" if ref else ""
        print(f"{name:<34}{n:>8}{t:>10.2f}{ms:>16.4f}{ratio:>10}")
    best = min(r[3] for r in rows if r[0].startswith("torch"))
    full_steps = 994 * JansenRitConfig().n_steps(20.0)[0]
    print(f"extrapolated fsaverage994 bank (994 regions x 20 s, 41000 steps each): "
          f"torch {full_steps * best / 1e3 / 60:.1f} min"
          + (f", tvb {full_steps * ref / 1e3 / 3600:.0f} h" if ref else "")
          + " (simulation only, on this machine)")


def bench_stats(args, atlas):
    """Noise on, independent streams: background mean/std and source spike rate, TVB vs torch."""
    from lightbunny.simulate import JansenRitConfig, simulate_regions
    from lightbunny.spikes import find_peaks, thin_peaks

    cfg = JansenRitConfig()
    regions = np.arange(args.stats_regions)
    res = {}
    for backend in ("tvb", "torch"):
        t0 = time.perf_counter()
        out = simulate_regions(atlas, regions, backend=backend, duration=args.stats, config=cfg,
                               seed=1 if backend == "tvb" else 2)
        bg = np.concatenate([np.delete(out[b], r, axis=1) for b, r in enumerate(regions)], axis=1)
        n_sp = sum(len(thin_peaks(find_peaks(out[b][:, r]), 100)) for b, r in enumerate(regions))
        res[backend] = (bg.mean(), bg.std(), n_sp / (len(regions) * args.stats),
                        time.perf_counter() - t0)
    print(f"\nnoise-on statistics, {atlas.name}, {len(regions)} source regions x {args.stats} s "
          "(independent noise streams)")
    print(f"{'':<22}{'tvb':>10}{'torch':>10}{'rel. diff':>11}")
    for i, name in enumerate(("background mean (mV)", "background std (mV)", "spike rate (1/s)")):
        a, b = res["tvb"][i], res["torch"][i]
        print(f"{name:<22}{a:>10.4f}{b:>10.4f}{(b - a) / a:>10.1%}")
    print(f"(time: tvb {res['tvb'][3]:.0f} s, torch {res['torch'][3]:.0f} s)")


def bench_clips(args, atlas):
    """Clips per region with and without the row-sum coupling fix (the tvb76 problem)."""
    from lightbunny.simulate import JansenRitConfig, simulate_regions
    from lightbunny.spikes import extract_clips

    regions = np.arange(atlas.n_regions)
    for name, cfg in (("seed (no fix)", JansenRitConfig(reference_row_sum=None)),
                      ("row-sum fix", JansenRitConfig())):
        out = simulate_regions(atlas, regions, duration=args.clips, config=cfg, seed=0)
        counts = np.array([len(extract_clips(out[b], r)["clips"]) for b, r in enumerate(regions)])
        others = np.median([np.delete(out[b], r, axis=1).max() for b, r in enumerate(regions)])
        print(f"{atlas.name} {name:<14} coupling {cfg.coupling_strength(atlas.weights):.3f}: "
              f"{counts.sum()} clips in {args.clips:g} s x {len(regions)} regions, median "
              f"{np.median(counts):g} per region, {int((counts == 0).sum())} regions without "
              f"clips, median max of other regions {others:.1f} mV")


def bench_bank_size(args, atlas):
    """Write a small bank at the default length and extrapolate to all regions."""
    import tempfile
    from pathlib import Path

    from lightbunny.simulate import simulate_bank

    gain = None
    try:
        from lightbunny.leadfield import make_leadfield

        gain = make_leadfield(atlas, "standard_1020_64").gain
    except Exception as err:  # noqa: BLE001 - the size barely depends on the gain
        print(f"(no leadfield: {err}; clips unscaled)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bank.h5"
        t0 = time.perf_counter()
        regions = np.linspace(0, atlas.n_regions - 1, args.bank_size).astype(int)
        bank = simulate_bank(atlas, out, regions=regions, duration=20.0,
                             batch_size=args.bank_batch or len(regions), gain=gain,
                             device=args.device)
        t = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        n_clips = bank.summary()["n_clips_total"]
    per_region = size / len(regions)
    print(f"\nbank: {len(regions)} regions x 20 s -> {n_clips} clips, {size / 1e6:.1f} MB "
          f"({t:.0f} s, {args.device}); extrapolated {atlas.n_regions} regions: "
          f"{per_region * atlas.n_regions / 1e9:.2f} GB, "
          f"{t / len(regions) * atlas.n_regions / 60:.1f} min")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--atlas", default="tvb76")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--steps", type=int, default=400, help="integration steps timed (default 400)")
    p.add_argument("--batch-size", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default auto)")
    p.add_argument("--skip-tvb", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--stats", type=float, default=0, help="seconds for the noise-on statistics")
    p.add_argument("--stats-regions", type=int, default=2)
    p.add_argument("--clips", type=float, default=0, help="seconds for the clips-per-region check")
    p.add_argument("--bank-size", type=int, default=0,
                   help="regions simulated (20 s each) to time and size the bank; on a GPU, "
                        "994 with --device cuda --bank-batch 256 times the full fsaverage994 bank")
    p.add_argument("--bank-batch", type=int, default=0, help="batch size for --bank-size")
    args = p.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    atlas = _atlas(args)
    if not args.skip_speed:
        bench_speed(args, atlas)
    if args.stats:
        bench_stats(args, atlas)
    if args.clips:
        bench_clips(args, atlas)
    if args.bank_size:
        bench_bank_size(args, atlas)


if __name__ == "__main__":
    main()
