"""fsaverage994 on a 2-core CPU: the longest pipeline run that fits in about half an hour.

A reduced version of the published setting (issue 6/7 "best model trainable on a CPU"): the
spike bank covers every 4th region (249 regions x 8 s instead of 994 x 20 s), sources are grown
around every region but only samples whose centre has clips are used, LightBunny is trained at
the seed size (d_model 256, 5.06 M parameters) with the LightBunny recipe for the given number
of epochs, then evaluated against sLORETA, eLORETA, MNE and dSPM at 5-20 dB.

Run: python bench/bench_fsaverage_cpu.py --data-dir ../shared/anatomy/deepsif994 --out DIR
"""

import argparse
import time

import numpy as np

from lightbunny.pipeline import run_pipeline


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--every", type=int, default=4, help="simulate every N-th region")
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--n-iter-train", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--force", action="store_true", help="rebuild stages made with other settings")
    args = p.parse_args()
    cfg = {
        "pipeline": {"atlas": "fsaverage994", "data_dir": args.data_dir, "device": "cpu"},
        "simulate": {"duration": args.duration, "batch_size": 64,
                     "regions": np.arange(0, 994, args.every).tolist()},
        # one source per sample: with every 4th region simulated, a 2-source sample would have
        # both centres simulated in only 1 of 16 cases
        "sources": {"n_sources": 1, "n_iter_train": args.n_iter_train, "n_iter_val": 1,
                    "n_iter_test": 1},
        # only samples whose centre was simulated (the default, 'neighbour', would borrow clips
        # for the other 3/4 and make the training four times longer than this budget)
        "dataset": {"missing_clips": "skip"},
        "train": {"epochs": args.epochs, "batch_size": 16,
                  "model_config": {"d_model": args.d_model}},
        "evaluate": {"methods": ["sloreta", "eloreta", "mne", "dspm"], "n_samples": 120,
                     "dataset": {"missing_clips": "skip"}},
        "apply": {"enabled": False},
    }
    t0 = time.perf_counter()
    res = run_pipeline(cfg, out=args.out, force=args.force)
    print({k: round(v, 1) for k, v in res["timings"].items()})
    print(f"total {time.perf_counter() - t0:.0f} s; summary: {res['evaluation'] / 'summary.md'}")


if __name__ == "__main__":
    main()
