"""Training-recipe ablation: what each change of the LightBunny recipe buys, against sLORETA & co.

Builds a proxy of the DeepSIF task on an atlas (default ``tvb76``: 76 regions, 64 channels, 500
samples): a synthetic spike bank (per region 20 clips whose own column holds a
Jansen-Rit-like spike: a sharp peak followed by a slower wave of opposite sign, random latency,
width and amplitude; every other column zero, i.e. no neural-mass background), two patches per
sample grown by :func:`lightbunny.sources.make_sources`, white sensor noise at 5-20 dB. Then it
trains LightBunny with a sequence of recipes, each adding one change to the previous one, scores
every checkpoint and the classical inverses with :func:`lightbunny.evaluate.evaluate` on the
same test samples at 5, 10, 15 and 20 dB, and prints the ablation table (means over the test
samples and SNRs, plus per-SNR tables of the final recipe).

Run (about 25 minutes on one free CPU core at the defaults; 7 trainings of 10,944 samples)::

    python bench/bench_recipe.py --out /tmp/recipe_bench

Quick smoke run (a couple of minutes)::

    python bench/bench_recipe.py --out /tmp/recipe_bench --quick
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

#: ablation steps: (name, options of lightbunny.train.train); each of the first five adds one
#: change to the previous one, the last two are controls (the optimisation changes alone)
ABLATION = [
    ("seed", dict(recipe="seed")),
    ("+ balanced loss", dict(recipe="seed", loss="balanced_mse")),
    ("+ cosine term", dict(recipe="seed", loss="balanced_mse", cosine_weight=1.0)),
    ("+ warm-up/cosine LR 1e-3, clip 1", dict(recipe="seed", loss="balanced_mse",
                                              cosine_weight=1.0, lr=1e-3, warmup_epochs=1,
                                              lr_schedule="cosine", min_lr_ratio=0.05,
                                              grad_clip=1.0)),
    ("+ new samples each epoch (= recipe lightbunny)", dict(recipe="lightbunny")),
    # controls: the optimisation changes without the new loss
    ("seed + LR schedule/clip only (MSE)", dict(recipe="seed", lr=1e-3, warmup_epochs=1,
                                                lr_schedule="cosine", min_lr_ratio=0.05,
                                                grad_clip=1.0)),
    ("recipe lightbunny with MSE loss", dict(recipe="lightbunny", loss="mse",
                                             cosine_weight=0.0)),
]


# ---------------------------------------------------------------------------- the proxy data
def spike_waveform(n_times: int, rng, *, sfreq: float = 500.0) -> np.ndarray:
    """A Jansen-Rit-like interictal spike: sharp peak, then a slower wave of opposite sign.

    ``s(t) = a [exp(-(t - t0)^2 / 2 w^2) - 0.45 exp(-(t - t0 - 5 w)^2 / 2 (3 w)^2)]`` with
    latency ``t0`` in 40-60 % of the window, width ``w`` of 6-16 ms and amplitude ``a`` of
    0.5-2 mV, drawn from ``rng``.

    Returns
    -------
    s : ndarray, shape (n_times,), mV
    """
    t = np.arange(n_times) / sfreq
    t0 = rng.uniform(0.4, 0.6) * n_times / sfreq
    w = rng.uniform(0.006, 0.016)
    a = rng.uniform(0.5, 2.0)
    peak = np.exp(-0.5 * ((t - t0) / w) ** 2)
    wave = 0.45 * np.exp(-0.5 * ((t - t0 - 5 * w) / (3 * w)) ** 2)
    return (a * (peak - wave)).astype(np.float32)


def synthetic_bank(n_regions: int, atlas_name: str, *, n_clips: int = 20, n_times: int = 500,
                   seed: int = 0):
    """A spike bank whose clips hold a spike in their own region's column only (zeros elsewhere).

    Returns
    -------
    bank : lightbunny.spikes.SpikeBank
    """
    from lightbunny.spikes import SpikeBank

    rng = np.random.default_rng(seed)
    clips = {}
    for r in range(n_regions):
        c = np.zeros((n_clips, n_times, n_regions), dtype=np.float32)
        for j in range(n_clips):
            c[j, :, r] = spike_waveform(n_times, rng)
        clips[r] = c
    return SpikeBank.from_arrays(clips, atlas_name=atlas_name,
                                 attrs={"kind": "synthetic spike proxy", "seed": seed})


def make_proxy(atlas_name: str = "tvb76", *, n_iter_train: int = 24, n_iter_val: int = 1,
               n_iter_test: int = 2, n_clips: int = 20, seed: int = 0, atlas=None,
               max_patch_regions: int | None = None):
    """Atlas, leadfield, spike bank and train/val/test sources of the proxy task.

    Parameters
    ----------
    max_patch_regions : int, optional
        Keep only the first (closest to the centre) ``max_patch_regions`` regions of every
        patch: sparser targets on a small atlas, like those of the 994-region template
        (about 2 % of the regions active there, 40 % with tvb76's full patches).

    Returns
    -------
    dict with ``atlas``, ``leadfield``, ``bank``, ``train``, ``val``, ``test``.
    """
    from lightbunny.atlas import load_atlas
    from lightbunny.leadfield import make_leadfield
    from lightbunny.sources import candidate_patches, make_sources

    atlas = load_atlas(atlas_name) if atlas is None else atlas
    leadfield = make_leadfield(atlas)
    bank = synthetic_bank(atlas.n_regions, atlas.name, n_clips=n_clips, seed=seed)
    kw = dict(seed=seed, progress=False, candidates=candidate_patches(atlas, seed=seed))
    out = {"atlas": atlas, "leadfield": leadfield, "bank": bank,
           "train": make_sources(atlas, split="train", n_iter=n_iter_train, **kw),
           "val": make_sources(atlas, split="val", n_iter=n_iter_val, **kw),
           "test": make_sources(atlas, split="test", n_iter=n_iter_test, **kw)}
    if max_patch_regions is not None:
        for split in ("train", "val", "test"):
            out[split] = truncate_patches(out[split], atlas, max_patch_regions)
    return out


def truncate_patches(sources, atlas, k: int):
    """The same samples with every patch cut to its first ``k`` regions (centre first)."""
    from lightbunny.sources import Sources

    patches = [[regions[:k] for regions, _ in sources.patches(i)] for i in range(len(sources))]
    return Sources.from_patches(patches, atlas=atlas, half_distance=sources.half_distance,
                                split=sources.split)


def datasets(proxy: dict, *, seed: int = 0):
    """Training and validation :class:`~lightbunny.dataset.SyntheticEEGDataset` of the proxy."""
    from lightbunny.dataset import SyntheticEEGDataset

    kw = dict(snr_db=(5.0, 10.0, 15.0, 20.0), background="none")
    train_set = SyntheticEEGDataset(proxy["train"], proxy["bank"], proxy["leadfield"], seed=seed,
                                    **kw)
    val_set = SyntheticEEGDataset(proxy["val"], proxy["bank"], proxy["leadfield"],
                                  seed=seed + 1, **kw)
    return train_set, val_set


def write_proxy(folder, atlas_name: str = "tvb76", *, n_iter_train: int = 24,
                n_clips: int = 20, seed: int = 0) -> dict:
    """Write the proxy task as files for the CLI: ``bank.h5``, ``train/val/test.h5``,
    ``leadfield.h5`` in ``folder``; returns their paths."""
    from lightbunny.spikes import SpikeBankWriter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    proxy = make_proxy(atlas_name, n_iter_train=n_iter_train, n_clips=n_clips, seed=seed)
    bank = proxy["bank"]
    writer = SpikeBankWriter(folder / "bank.h5", atlas_name=bank.atlas_name, sfreq=bank.sfreq,
                             n_times=bank.n_times, n_regions=bank.n_regions,
                             attrs={"config": "synthetic spike proxy", "seed": seed},
                             storage_dtype="float32")
    for r in range(bank.n_regions):
        clips = np.asarray(bank.clips(r))
        writer.write_region(r, clips, np.full(len(clips), -1, dtype=np.int64))
    paths = {"bank": folder / "bank.h5", "leadfield": proxy["leadfield"].save(
        folder / "leadfield.h5")}
    for split in ("train", "val", "test"):
        paths[split] = proxy[split].save(folder / f"{split}.h5")
    return paths


# ---------------------------------------------------------------------------- the ablation
def run(out: Path, *, atlas_name: str = "tvb76", epochs: int = 6, batch_size: int = 32,
        n_iter_train: int = 24, n_test: int | None = None, model_config: dict | None = None,
        steps=None, seed: int = 0, threads: int = 1,
        max_patch_regions: int | None = None, device: str = "cpu", n_clips: int = 20,
        atlas=None) -> dict:
    """Train every ablation step, evaluate all on the same test samples, return the summaries."""
    import torch

    from lightbunny.evaluate import evaluate
    from lightbunny.models import build_model
    from lightbunny.train import train

    torch.set_num_threads(threads)
    out = Path(out)
    proxy = make_proxy(atlas_name, n_iter_train=n_iter_train, seed=seed,
                       max_patch_regions=max_patch_regions, n_clips=n_clips, atlas=atlas)
    train_set, val_set = datasets(proxy, seed=seed)
    model_config = model_config or {}
    checkpoints, timings = [], {}
    for name, options in (steps or ABLATION):
        run_dir = out / _slug(name)
        model = build_model("lightbunny", random_state=seed, n_chans=train_set.n_chans,
                            n_times=train_set.n_times, n_sources=train_set.n_regions,
                            **model_config)
        t0 = time.perf_counter()
        res = train(model, train_set, val_set, out_dir=run_dir, epochs=epochs,
                    batch_size=batch_size, patience=None, seed=seed, device=device,
                    progress=False, **options)
        timings[name] = {"train_s": time.perf_counter() - t0,
                         "samples_per_s": float(np.median([r["train_samples_per_s"]
                                                           for r in res.history]))}
        # best.pt is chosen by each recipe's own validation loss; score the last epoch so every
        # step gets the same number of updates
        checkpoints.append(run_dir / "last.pt")
        print(f"{name}: {timings[name]['train_s']:.0f} s, "
              f"{timings[name]['samples_per_s']:.1f} samples/s", flush=True)
    result = evaluate(proxy["test"], proxy["bank"], proxy["leadfield"], proxy["atlas"],
                      out_dir=out / "evaluation", checkpoints=checkpoints,
                      n_samples=n_test, dataset_kwargs={"background": "none"}, progress=False,
                      n_figure_samples=1, device=device)
    names = {f"lightbunny:{_slug(n)}": n for n, _ in (steps or ABLATION)}
    (out / "timings.json").write_text(json.dumps(timings, indent=2))
    return {"summary": result["summary"], "names": names, "timings": timings,
            "report": result["report"], "summary_md": result["summary_md"]}


def _atlas(name: str, data_dir=None):
    from lightbunny.atlas import load_atlas

    return load_atlas(name, data_dir=data_dir)


def _slug(name: str) -> str:
    keep = "".join(ch if ch.isalnum() else "_" for ch in name.lower())
    return "_".join(filter(None, keep.split("_")))[:40]


TABLE_METRICS = ("localisation_error", "precision", "spatial_dispersion", "roc_auc",
                 "temporal_pcc_centre")


def ablation_table(summary: list, names: dict, snrs=(5.0, 10.0, 15.0, 20.0)) -> str:
    """Markdown: one row per method, mean over samples of each metric, averaged over SNRs."""
    by = {}
    for row in summary:
        by.setdefault((row["method"], row["metric"]), []).append((row["mean"], row["n"]))
    methods = [m for m in dict.fromkeys(r["method"] for r in summary)]
    lines = ["| method | " + " | ".join(TABLE_METRICS) + " |",
             "| --- |" + " --- |" * len(TABLE_METRICS)]
    for m in methods:
        cells = []
        for metric in TABLE_METRICS:
            vals = by.get((m, metric), [])
            n = sum(k for _, k in vals)
            cells.append(f"{sum(v * k for v, k in vals) / n:.3g}" if n else "n/a")
        lines.append(f"| {names.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_snr_table(summary: list, methods: list, names: dict,
                  metrics=TABLE_METRICS) -> str:
    """Markdown: rows (metric, SNR), columns methods; means."""
    table = {(r["method"], r["snr_db"], r["metric"]): r["mean"] for r in summary}
    snrs = sorted({r["snr_db"] for r in summary})
    lines = ["| metric | SNR | " + " | ".join(names.get(m, m) for m in methods) + " |",
             "| --- | --- |" + " --- |" * len(methods)]
    for metric in metrics:
        for s in snrs:
            lines.append(f"| {metric} | {s:g} dB | " + " | ".join(
                f"{table.get((m, s, metric), float('nan')):.3g}" for m in methods) + " |")
    return "\n".join(lines)


def plot_ablation(summary: list, names: dict, path, metrics=TABLE_METRICS):
    """One panel per metric: mean against SNR for every method (learned solid, classical dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = {(r["method"], r["snr_db"], r["metric"]): r["mean"] for r in summary}
    methods = list(dict.fromkeys(r["method"] for r in summary))
    snrs = sorted({r["snr_db"] for r in summary})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.0 * len(metrics), 3.6))
    for ax, metric in zip(axes, metrics):
        for m in methods:
            learned = m.startswith("lightbunny")
            ax.plot(snrs, [table.get((m, s, metric), np.nan) for s in snrs],
                    "o-" if learned else "s--", lw=2 if learned else 1, label=names.get(m, m))
        ax.set(title=metric, xlabel="SNR (dB)", xticks=snrs)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_curves(run_dirs: dict, path):
    """Validation loss / loss of a zero prediction per epoch, for each training run."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, d in run_dirs.items():
        with open(Path(d) / "history.csv") as f:
            rows = list(csv.DictReader(f))
        ax.plot([int(r["epoch"]) for r in rows],
                [float(r["val_loss"]) / float(r["val_loss_zero"]) for r in rows], "o-",
                label=label)
    ax.set(xlabel="epoch", ylabel="validation loss / zero-prediction loss", yscale="log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/lightbunny_recipe_bench")
    p.add_argument("--atlas", default="tvb76")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-iter", type=int, default=24, help="training variations per centre")
    p.add_argument("--n-test", type=int, default=None, help="test samples (default: all)")
    p.add_argument("--model-config", default="{}", help="JSON, e.g. '{\"d_model\": 128}'")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest on a shared 2-core CPU: the GRU's per-step "
                        "work is too small to split)")
    p.add_argument("--steps", default=None,
                   help="comma-separated subset of the ablation steps by position, e.g. 0,4 "
                        "(seed and the full recipe)")
    p.add_argument("--max-patch-regions", type=int, default=None,
                   help="cut every patch to its first K regions: sparse targets as on the "
                        "994-region template")
    p.add_argument("--figures", default=None,
                   help="folder for recipe_ablation.png and recipe_curves.png (e.g. bench)")
    p.add_argument("--quick", action="store_true", help="2 epochs, 4 variations, 40 test samples")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where to train (bf16 autocast on CUDA) and apply the networks")
    p.add_argument("--n-clips", type=int, default=20,
                   help="clips per region of the synthetic bank (at 994 regions each clip "
                        "holds 994 columns: 8 clips = 16 GB)")
    p.add_argument("--data-dir", default=None, help="fsaverage994 files (lightbunny fetch)")
    p.add_argument("--write-proxy", default=None, metavar="DIR",
                   help="only write the proxy task's files (bank, sources, leadfield) to DIR, "
                        "for `lightbunny train` / `lightbunny evaluate`, and exit")
    args = p.parse_args(argv)
    if args.write_proxy:
        for k, v in write_proxy(args.write_proxy, args.atlas, n_iter_train=args.n_iter).items():
            print(f"{k}: {v}")
        return
    if args.quick:
        args.epochs, args.n_iter, args.n_test = 2, 4, 40
    steps = ABLATION if args.steps is None else [ABLATION[int(i)] for i in args.steps.split(",")]
    res = run(Path(args.out), atlas_name=args.atlas, epochs=args.epochs,
              batch_size=args.batch_size, n_iter_train=args.n_iter, n_test=args.n_test,
              model_config=json.loads(args.model_config), threads=args.threads, steps=steps,
              max_patch_regions=args.max_patch_regions, device=args.device,
              n_clips=args.n_clips, atlas=_atlas(args.atlas, args.data_dir))
    print("\n## Ablation (means over test samples and the four SNRs)\n")
    print(ablation_table(res["summary"], res["names"]))
    methods = list(dict.fromkeys(r["method"] for r in res["summary"]))
    print("\n## Per SNR\n")
    print(per_snr_table(res["summary"], methods, res["names"]))
    print(f"\nfull report: {res['report']}")
    if args.figures:
        fig_dir = Path(args.figures)
        fig_dir.mkdir(parents=True, exist_ok=True)
        suffix = "" if args.max_patch_regions is None else f"_sparse{args.max_patch_regions}"
        print(plot_ablation(res["summary"], res["names"],
                            fig_dir / f"recipe_ablation{suffix}.png"))
        print(plot_curves({n: Path(args.out) / _slug(n) for n, _ in steps},
                          fig_dir / f"recipe_curves{suffix}.png"))


if __name__ == "__main__":
    main()
