"""Leadfield validation: LightBunny's computed leadfields against reference ones.

Prints, side by side, per-channel correlations (across regions) between our leadfield and
  1. tvb76 + tvb-data's 65 sensors vs tvb-data's own projection matrix (63 valid channels),
  2. fsaverage994, 64 channels (PhysioNet order) vs the published LightBunny leadfield,
  3. fsaverage994, 75 channels (electrode_75.mat names) vs DeepSIF's leadfield_75_20k.mat,
each unreferenced and average-referenced, for both dipole orientations and, on fsaverage994,
for the sphere and the BEM head models side by side. Also times the fsaverage BEM solution
built from scratch (in a temporary cache).

Run: OMP_NUM_THREADS=2 python bench/bench_leadfield.py [--data-dir ../shared/anatomy/deepsif994]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from lightbunny.atlas import _tvb_data_path, load_atlas
from lightbunny.leadfield import PHYSIONET_64, make_leadfield


def per_channel_corr(a, b, reref):
    if reref:
        a, b = a - a.mean(0), b - b.mean(0)
    return np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)])


def report(label, ours, ref, names):
    for reref in (False, True):
        c = per_channel_corr(ours, ref, reref)
        worst = ", ".join(f"{names[i]} {c[i]:.2f}" for i in np.argsort(c)[:3])
        print(f"{label:<48} {'avg-ref' if reref else 'raw':<8} n={len(c):<3} "
              f"median {np.median(c):.3f}  worst {c.min():.3f} ({worst})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared"
                                             / "anatomy" / "deepsif994"))
    args = p.parse_args()

    tvb = load_atlas("tvb76")
    proj = np.load(_tvb_data_path("projectionMatrix", "projection_eeg_65_surface_16k.npy"))
    ok = np.isfinite(proj).all(1)
    ref = np.zeros((len(proj), tvb.n_regions))
    np.add.at(ref.T, tvb.vertex_region, np.nan_to_num(proj).T)
    for orientation in ("normal", "free_sum"):
        t0 = time.perf_counter()
        lf = make_leadfield(tvb, "tvb65", orientation=orientation, use_cache=False)
        dt = time.perf_counter() - t0
        names = [n for n, k in zip(lf.ch_names, ok) if k]
        report(f"tvb76 vs tvb-data projection ({orientation}, {dt:.1f}s)", lf.gain[ok], ref[ok],
               names)

    fs = load_atlas("fsaverage994", data_dir=args.data_dir)
    if not (Path(args.data_dir) / "leadfield_75_20k.mat").is_file():
        print(f"fsaverage994 reference leadfields not in {args.data_dir}: skipped")
        return
    import os
    import tempfile

    import scipy.io as sio

    from lightbunny.headmodel import fsaverage_bem_solution

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fsaverage_bem_solution(cache_dir=tmp)
        print(f"fsaverage 3-layer BEM solved from scratch in {time.perf_counter() - t0:.0f} s "
              f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")

    ref64 = np.load(Path(args.data_dir) / "leadfield_64_fsaverage_region_lightbunny.npy")
    ref75 = sio.loadmat(Path(args.data_dir) / "leadfield_75_20k.mat")["fwd"]
    for head_model in ("sphere", "bem"):
        for orientation in ("normal", "free_sum"):
            t0 = time.perf_counter()
            lf64 = make_leadfield(fs, list(PHYSIONET_64), orientation=orientation,
                                  head_model=head_model, use_cache=False)
            # DeepSIF's own cap: electrode_75.mat read in EEGLAB's head frame (all 75 channels)
            lf75 = make_leadfield(fs, "deepsif75", orientation=orientation, head_model=head_model,
                                  use_cache=False, data_dir=args.data_dir)
            dt = time.perf_counter() - t0
            tag = f"{head_model}, {orientation}"
            report(f"fs994 64ch vs published LightBunny ({tag})", lf64.gain, ref64, PHYSIONET_64)
            report(f"fs994 75ch vs DeepSIF leadfield_75 ({tag})", lf75.gain, ref75, lf75.ch_names)
            print(f"  ({dt:.1f}s for both fsaverage994 leadfields)")


if __name__ == "__main__":
    main()
