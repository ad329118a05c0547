"""What does the network predict while it trains? Evidence for the stall of the seed recipe.

Trains LightBunny on the proxy task of ``bench_recipe.py`` with a hand-written loop (so the
predictions can be probed between epochs) for a fixed wall-clock budget, with the seed recipe
(MSE, constant Adam 5e-4) or the new one, and after every epoch prints, on the validation
samples: the MSE and that of a prediction of zeros, the mean |prediction| on active and inactive
regions against the mean |target| on active regions, the largest |prediction| (the target's is
1), the least-squares scale that would best fit the prediction to the target, the cosine
between them, whether the GRU saturates, and the localisation metrics.

    python bench/diagnose_recipe.py --recipe seed --seconds 300
    python bench/diagnose_recipe.py --recipe seed --max-patch-regions 2 --seconds 300   # sparse
    python bench/diagnose_recipe.py plot bench/recipe_diagnosis.png seed=seed.json new=new.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_recipe import datasets, make_proxy  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", default="seed", choices=("seed", "lightbunny"))
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--n-iter", type=int, default=24)
    p.add_argument("--max-patch-regions", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default=None, help="write the probe rows as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from lightbunny.metrics import sample_metrics
    from lightbunny.models import build_model
    from lightbunny.train import _batch_loss, lr_at, resolve_recipe

    proxy = make_proxy("tvb76", n_iter_train=args.n_iter, max_patch_regions=args.max_patch_regions)
    tr, va = datasets(proxy)
    opts = resolve_recipe(args.recipe)
    eeg, tgt = va.get_batch(np.arange(len(va)))
    active = tgt.abs().amax(1) > 0
    src, dist = proxy["val"], proxy["atlas"].distances
    print(f"{len(tr)} training samples/epoch; active regions {active.float().mean():.1%}; "
          f"mean |target| on active regions {tgt.abs().mean(1)[active].mean():.4f}; "
          f"MSE of zeros {tgt.pow(2).mean():.5f}", flush=True)
    model = build_model("lightbunny", random_state=0, n_chans=64, n_times=500, n_sources=76)
    opt = torch.optim.Adam(model.parameters(), lr=opts["lr"])
    n_batches = -(-len(tr) // args.batch_size)
    est_epochs = max(1, int(args.seconds * 70 / len(tr)))  # ~70 samples/s, for the schedule
    sched = dict(lr=opts["lr"], n_steps=est_epochs * n_batches,
                 warmup_steps=int(opts["warmup_epochs"] * n_batches),
                 schedule=opts["lr_schedule"], min_lr_ratio=opts["min_lr_ratio"])
    rows = []

    def probe(epoch, n_seen):
        model.eval()
        with torch.no_grad():
            h = model.source_gru(model.channel_mlp(eeg))[0]
            pred = model.lightts(h)
        model.train()
        pa = pred.abs().mean(1)
        alpha = (pred * tgt).sum((1, 2)) / pred.pow(2).sum((1, 2)).clamp_min(1e-12)
        cos = torch.nn.functional.cosine_similarity(pred.flatten(1), tgt.flatten(1), dim=1)
        ms = [sample_metrics(pred[i].numpy(), tgt[i].numpy(), [g for g, _ in src.patches(i)],
                             src.centres[i], dist) for i in range(len(va))]
        row = {"epoch": epoch, "samples": n_seen, "mse": pred.sub(tgt).pow(2).mean().item(),
               "mean|p|_active": pa[active].mean().item(),
               "mean|p|_inactive": pa[~active].mean().item(),
               "max|p|": pred.abs().amax((1, 2)).median().item(),
               "ls_scale": alpha.median().item(), "cosine": cos.median().item(),
               "gru_saturated": (h.abs() > 0.95).float().mean().item()}
        for k in ("localisation_error", "precision", "roc_auc", "spatial_dispersion",
                  "temporal_pcc_centre", "n_identified"):
            row[k] = float(np.nanmedian([m[k] for m in ms]))
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
              flush=True)

    probe(0, 0)
    t0, n_seen, epoch, step = time.time(), 0, 0, 0
    while time.time() - t0 < args.seconds:
        if opts["resample"]:
            tr.set_epoch(epoch)
        order = np.random.default_rng(epoch).permutation(len(tr))
        for s in range(0, len(order), args.batch_size):
            x, y = tr.get_batch(order[s:s + args.batch_size])
            for g in opt.param_groups:
                g["lr"] = lr_at(step, **sched)
            loss = _batch_loss(model(x), y, opts["loss"], opts["cosine_weight"])
            opt.zero_grad()
            loss.backward()
            if opts["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), opts["grad_clip"])
            opt.step()
            n_seen += len(x)
            step += 1
        epoch += 1
        print(f"epoch {epoch}: {n_seen} samples, {n_seen / (time.time() - t0):.1f}/s", flush=True)
        probe(epoch, n_seen)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


def plot(runs: dict, path) -> Path:
    """Curves of the probes of several runs (``{label: rows}``) against training samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("max|p|", "max |prediction| (target: 1)"), ("cosine", "cosine(prediction, target)"),
              ("contrast", "mean |p| active / inactive"),
              ("localisation_error", "localisation error (mm)"), ("roc_auc", "AUC")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2))
    for label, rows in runs.items():
        x = [r["samples"] for r in rows]
        for ax, (key, title) in zip(axes, panels):
            if key == "contrast":
                y = [r["mean|p|_active"] / max(r["mean|p|_inactive"], 1e-12) for r in rows]
            else:
                y = [r[key] for r in rows]
            ax.plot(x, y, "o-", label=label)
            ax.set(title=title, xlabel="training samples")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "plot":  # plot OUT.png label=rows.json ...
        print(plot({a.split("=", 1)[0]: json.loads(Path(a.split("=", 1)[1]).read_text())
                    for a in sys.argv[3:]}, sys.argv[2]))
    else:
        main()
