"""Re-measure the seed's headline numbers ("temporal PCC 0.98, spatial PCC 0.85").

The seed computed its temporal PCC as ``np.corrcoef(pred[:, regions], truth[:, regions])[0, 1]``
on (time, regions) arrays: ``np.corrcoef`` treats rows as variables, so that is the correlation
between the prediction's first two *time samples* (across the patch regions); the ground truth
never enters it. This script trains LightBunny in the seed's own setting (its data recipe: no
sensor noise; its training recipe: Adam 5e-4, MSE) on the quickstart's tvb76 data, then prints,
side by side on the same noiseless test samples: the seed's formula, the correct temporal PCC
(over time, at the true centre and over the patch) and the spatial PCC, for LightBunny, sLORETA
and a random prediction.

Run: python bench/bench_seed_claim.py --run source/quickstart   (after `lightbunny quickstart`)
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from lightbunny.atlas import load_atlas
from lightbunny.dataset import make_dataset
from lightbunny.evaluate import evaluate
from lightbunny.leadfield import Leadfield
from lightbunny.metrics import spatial_pcc, temporal_pcc
from lightbunny.models import build_model
from lightbunny.sources import load_sources
from lightbunny.train import load_model, train


def seed_formula(pred, truth, regions):
    """The seed's 'temporal PCC' (reads only ``pred``)."""
    return np.corrcoef(pred[:, regions], truth[:, regions])[0, 1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--run", default="source/quickstart", help="output folder of the quickstart")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--n-samples", type=int, default=116)
    args = p.parse_args()
    run = Path(args.run)
    out = run / "seed_setting"
    lf = Leadfield.load(run / "leadfield.h5")
    atlas = load_atlas(lf.atlas_name)
    bank = run / "bank.h5"
    kw = dict(recipe="seed", snr_db=None, missing_clips="skip", seed=0)
    tr = make_dataset(run / "sources_train.h5", bank, lf, **kw)
    va = make_dataset(run / "sources_val.h5", bank, lf, **kw)
    if not (out / "train" / "best.pt").is_file() or not (out / "train" / "done").is_file():
        model = build_model("lightbunny", random_state=0, n_chans=tr.n_chans, n_times=tr.n_times,
                            n_sources=tr.n_regions)
        train(model, tr, va, out_dir=out / "train", epochs=args.epochs, batch_size=32,
              recipe="seed", resume=True, progress=False)
        (out / "train" / "done").write_text("ok")
    net, _ = load_model(out / "train" / "best.pt")

    test_sources = load_sources(run / "sources_test.h5")
    ds = make_dataset(test_sources, bank, lf, **{**kw, "seed": 1})
    n = min(args.n_samples, len(ds))
    eeg, truth = (x.numpy() for x in ds.get_batch(np.arange(n)))
    with torch.no_grad():
        pred_net = net(torch.from_numpy(eeg)).numpy()
    from lightbunny.inverse import make_inverse

    slo = make_inverse("sloreta", lf.gain, lf.ch_names, snr=100.0)
    pred_slo = np.stack([slo.apply(e) for e in eeg])
    rng = np.random.default_rng(0)
    pred_rand = rng.standard_normal(pred_net.shape).cumsum(1)  # smooth random traces
    rows = {}
    for name, pred in (("LightBunny (seed setting)", pred_net), ("sLORETA", pred_slo),
                       ("random prediction", pred_rand)):
        seed_vals, tc, tp, sp = [], [], [], []
        for k, i in enumerate(ds.sample_indices[:n]):
            regions = np.unique(np.concatenate([r for r, _ in test_sources.patches(int(i))]))
            centres = test_sources.centres[int(i)]
            seed_vals.append(seed_formula(pred[k], truth[k], regions))
            tc.append(temporal_pcc(pred[k], truth[k], centres))
            tp.append(np.mean([temporal_pcc(pred[k], truth[k], r) for r, _ in
                               test_sources.patches(int(i))]))
            sp.append(spatial_pcc(pred[k], truth[k]))
        rows[name] = [np.nanmean(v) for v in (seed_vals, tc, tp, sp)]
    print(f"tvb76, seed data recipe (no sensor noise), {n} test samples; LightBunny trained "
          f"{args.epochs} epochs with the seed recipe")
    print(f"{'prediction':<28}{'seed formula':>14}{'temporal PCC (centre)':>24}"
          f"{'temporal PCC (patch)':>22}{'spatial PCC':>13}")
    print(f"{'seed README claim':<28}{0.98:>14.2f}{'':>24}{'':>22}{0.85:>13.2f}")
    for name, (a, b, c, d) in rows.items():
        print(f"{name:<28}{a:>14.3f}{b:>24.3f}{c:>22.3f}{d:>13.3f}")
    res = evaluate(test_sources, bank, lf, atlas, out_dir=out / "evaluation", methods=["sloreta"],
                   checkpoints=[out / "train" / "best.pt"], snrs=[float("inf")], n_samples=n,
                   seed=1, progress=False,
                   dataset_kwargs={"recipe": "seed", "missing_clips": "skip"})
    print(f"full noiseless evaluation report: {res['report']}")


if __name__ == "__main__":
    main()
