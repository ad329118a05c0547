"""Ablation of the training randomisation (issue 14): score several runs on the benchmark.

Each run folder holds a ``best.pt`` trained by ``bench/train_generalise.py`` (the full
randomisation, one run per ``--ablate FACTOR``, ``--no-randomise``) on the same budget. The
networks alone are scored (no classical method: they are in the main table) on the same samples
of every benchmark condition; the table gives, per condition, each run's median EMD (mm) and
temporal PCC, and, per run, how many conditions got worse than with the full randomisation.

Run::

    OMP_NUM_THREADS=1 python bench/ablation_generalise.py --data-dir ../shared/anatomy/deepsif994 \\
        --leadfield /tmp/gen/leadfield_nominal.h5 --bank BANK.h5 --out /tmp/abl/bench \\
        /tmp/abl/train /tmp/abl/train_no_extent ...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lightbunny.atlas import load_atlas
from lightbunny.benchmark import run_benchmark
from lightbunny.leadfield import Leadfield

METRICS = (("emd", "EMD mm", "lower"), ("localisation_error", "LE mm", "lower"),
           ("roc_auc", "AUC", "higher"), ("temporal_pcc_centre", "tPCC", "higher"))


def table(summary, runs, conditions) -> str:
    med = {(r["condition"], r["method"], r["metric"]): r["median"] for r in summary}
    names = [f"lightbunny:{Path(r).name}" for r in runs]
    short = [Path(r).name.replace("train_", "").replace("train", "full") for r in runs]
    lines = []
    for key, label, better in METRICS:
        lines += [f"\n**{label}** (median per condition; {better} is better; bold: better than "
                  "the full randomisation)\n",
                  "| condition | " + " | ".join(short) + " |",
                  "| --- |" + " --- |" * len(short)]
        worse = np.zeros(len(names), int)
        for c in conditions:
            vals = [med.get((c, n, key), np.nan) for n in names]
            ref = vals[0]
            cells = []
            for j, v in enumerate(vals):
                good = j > 0 and (v < ref if better == "lower" else v > ref)
                worse[j] += j > 0 and (v > ref if better == "lower" else v < ref)
                cells.append(f"**{v:.3g}**" if good else f"{v:.3g}")
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        lines.append("| conditions worse than full | – | " + " | ".join(
            str(w) for w in worse[1:]) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (the first is the reference)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--leadfield", required=True)
    p.add_argument("--bank", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n-samples", type=int, default=24)
    args = p.parse_args()
    t0 = time.perf_counter()
    atlas = load_atlas("fsaverage994", data_dir=args.data_dir)
    res = run_benchmark(atlas, Leadfield.load(args.leadfield), out_dir=args.out,
                        checkpoints=[Path(r) / "best.pt" for r in args.runs], bank=args.bank,
                        methods=(), budget="small", n_samples=args.n_samples, figures=False,
                        data_dir=args.data_dir, progress=False)
    conditions = list(dict.fromkeys(r["condition"] for r in res["summary"]))
    md = table(res["summary"], args.runs, conditions)
    (Path(args.out) / "ablation.md").write_text(md + "\n")
    print(md)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
