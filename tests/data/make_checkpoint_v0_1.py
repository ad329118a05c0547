"""Write tests/data/checkpoint_v0_1.pt and checkpoint_v0_1.npz (the compatibility fixture).

Run once, with the code of commit 5087240 (before issue 16's refactor), as
``python tests/data/make_checkpoint_v0_1.py``; the files are committed and must keep loading
and predicting identically (tests/test_compat.py). Re-running it with later code would write
a checkpoint of that code, which is not the point: keep the committed files.

A LightBunny network (d_model 16) on 19 channels of the 10-20 system, a 6-region synthetic
atlas, 50-sample windows at 500 Hz, trained for one epoch by the real training loop (so its
``meta``, ``run_args`` and ``history`` are what ``lightbunny train`` writes); the input is a
130-sample recording (three overlapping windows, the last one padded) and the outputs are the
network's output on the normalised windows and ``NetworkModel.apply`` of the recording.
"""

from pathlib import Path

import numpy as np
import torch

from lightbunny.apply import load_source_model, sliding_windows
from lightbunny.atlas import make_synthetic_atlas
from lightbunny.dataset import SyntheticEEGDataset, normalise_eeg
from lightbunny.models import build_model
from lightbunny.sources import Sources
from lightbunny.spikes import SpikeBank
from lightbunny.train import train

HERE = Path(__file__).resolve().parent
CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
            "P3", "Pz", "P4", "P8", "O1", "O2"]
N_TIMES, N_REGIONS = 50, 6


class _Leadfield:
    def __init__(self, gain, atlas_name):
        self.gain, self.atlas_name, self.ch_names = gain, atlas_name, CHANNELS


def main(out=HERE):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    atlas = make_synthetic_atlas(n_regions=N_REGIONS)
    bank = SpikeBank.from_arrays({r: rng.normal(size=(4, N_TIMES, N_REGIONS)) for r in
                                  range(N_REGIONS)}, atlas_name=atlas.name)
    lf = _Leadfield(rng.normal(size=(len(CHANNELS), N_REGIONS)), atlas.name)
    patches = [[[int(i % N_REGIONS)]] for i in range(24)]
    sets = {split: SyntheticEEGDataset(Sources.from_patches(patches, atlas=atlas, split=split),
                                       bank, lf, seed=0) for split in ("train", "val")}
    net = build_model("lightbunny", random_state=0, n_chans=len(CHANNELS), n_times=N_TIMES,
                      n_sources=N_REGIONS, d_model=16, chunk_size=5)
    run = out / "_run"
    train(net, sets["train"], sets["val"], out_dir=run, epochs=1, batch_size=8, seed=0,
          device="cpu", progress=False)
    ckpt = out / "checkpoint_v0_1.pt"
    (run / "best.pt").replace(ckpt)
    for f in run.iterdir():
        f.unlink()
    run.rmdir()

    eeg = np.random.default_rng(1).standard_normal((130, len(CHANNELS))) * 20e-6
    model = load_source_model(ckpt)
    windows, starts = sliding_windows(eeg, N_TIMES, 0.5)
    with torch.no_grad():
        x = torch.as_tensor(normalise_eeg(windows), dtype=torch.float32)
        net_out = model.net(x).numpy()
    np.savez(out / "checkpoint_v0_1.npz", eeg=eeg, windows=windows, starts=starts,
             net_output=net_out, apply_output=model.apply(eeg))


if __name__ == "__main__":
    main()
