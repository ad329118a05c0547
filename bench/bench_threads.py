"""Two training jobs at once on a shared CPU, against one alone: the thread policy's effect.

Four settings, each a real ``lightbunny train`` process (LightBunny, d_model 64, tvb76,
64 channels, the same small data):

* before the policy, every job used one torch thread per core (torch's default), here
  ``--threads <cores>``: one job alone, then two jobs at once;
* with the policy (no ``--threads``): one job alone (it takes the cores the machine's load leaves
  free), then two jobs at once (each sees the other and uses one thread).

The ratio "pair / alone" of each is the slowdown of running two jobs at once.

The time is the training time of each job (sum of its epochs' ``epoch_time_s`` in
``history.json``, so start-up and imports are left out). Fair sharing of the cores would make
a pair about 2x slower than a job alone when one job already uses every core well (less when it
does not); oversubscribed threads make it far worse.

Run from the repository root on a machine that is otherwise quiet:

    python bench/bench_threads.py               # writes the data once to source/bench_threads

and note ``uptime`` before and after. Results: ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's lightbunny, not another installed one


def make_data(folder: Path) -> dict:
    """Leadfield, spike bank and train/val sources of tvb76 (once; about a minute)."""
    from lightbunny.atlas import load_atlas
    from lightbunny.leadfield import make_leadfield
    from lightbunny.simulate import simulate_bank
    from lightbunny.sources import make_sources

    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}.h5" for k in ("leadfield", "bank", "train", "val")}
    if all(p.exists() for p in paths.values()):
        return paths
    atlas = load_atlas("tvb76")
    lf = make_leadfield(atlas)
    lf.save(paths["leadfield"])
    simulate_bank(atlas, paths["bank"], duration=6.0, batch_size=38, gain=lf.gain,
                  progress=False).close()
    make_sources(atlas, split="train", n_iter=4, progress=False).save(paths["train"])
    make_sources(atlas, split="val", n_iter=1, progress=False).save(paths["val"])
    return paths


def start_job(paths: dict, out: Path, epochs: int, threads: int | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "lightbunny.cli", "train", "--train-sources", paths["train"],
           "--val-sources", paths["val"], "--bank", paths["bank"], "--leadfield",
           paths["leadfield"], "--out", out, "--epochs", str(epochs), "--batch-size", "32",
           "--model-config", '{"d_model": 64}', "--patience", "0", "--no-progress",
           "--device", "cpu"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    return subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def train_seconds(out: Path) -> float:
    history = json.loads((out / "history.json").read_text())
    return float(sum(e["epoch_time_s"] for e in history))


def run_setting(name: str, paths: dict, work: Path, n_jobs: int, epochs: int,
                threads: int | None) -> list:
    outs = [work / f"{name}_{i}" for i in range(n_jobs)]
    procs = [start_job(paths, out, epochs, threads) for out in outs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"{name}: a job failed:\n{err}")
    return [train_seconds(out) for out in outs]


def main(argv=None) -> None:
    from lightbunny.utils import usable_cores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--data", default=str(ROOT / "source" / "bench_threads"))
    args = ap.parse_args(argv)
    paths = make_data(Path(args.data))
    cores = usable_cores()
    work = Path(args.data) / f"runs-{int(time.time())}"
    load_before = os.getloadavg()
    results = {
        "before: alone (--threads cores)": run_setting("before_alone", paths, work, 1,
                                                       args.epochs, cores),
        "before: pair (--threads cores each)": run_setting("before_pair", paths, work, 2,
                                                           args.epochs, cores),
        "policy: alone": run_setting("policy_alone", paths, work, 1, args.epochs, None),
        "policy: pair": run_setting("policy_pair", paths, work, 2, args.epochs, None),
    }
    load_after = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{cores} usable")
    print(f"load average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)}")
    print(f"{args.epochs} epochs of LightBunny (d_model 64) on 304 training samples per job")
    print("| setting | training time per job (s) | pair / alone |")
    print("| --- | --- | --- |")
    mean = {k: sum(v) / len(v) for k, v in results.items()}
    alone_of = {"before: pair (--threads cores each)": "before: alone (--threads cores)",
                "policy: pair": "policy: alone"}
    for name, times in results.items():
        ratio = f"{mean[name] / mean[alone_of[name]]:.2f}x" if name in alone_of else ""
        print(f"| {name} | {', '.join(f'{t:.1f}' for t in times)} | {ratio} |")

if __name__ == "__main__":
    main()
