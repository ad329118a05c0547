"""The benchmark's methods: learned checkpoints, classical and sparse inverses, floor, ceiling.

Each method is a :class:`_Runner` applied sample by sample; hyper-parameters never come from
the test truth (see :mod:`lightbunny.benchmark`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FLOORS_CEILINGS = ("random", "truth", "oracle_patches")
CLASSICAL = ("MNE", "dSPM", "sLORETA", "eLORETA", "LCMV")
SPARSE = ("MxNE", "gamma-MAP", "Champagne")
DEFAULT_METHODS = CLASSICAL + SPARSE


class _Runner:
    """A method applied sample by sample: ``run(eeg (T, C), snr_db, sample) -> (T, R)``."""

    def __init__(self, name, kind, fn):
        self.name, self.kind, self.fn = name, kind, fn


def _classical_runner(name, leadfield):
    from ..inverse import make_inverse

    cache = {}

    def fn(eeg, snr_db, sample):
        if name == "LCMV":
            return make_inverse("LCMV", leadfield.gain, leadfield.ch_names).apply(eeg)
        if snr_db not in cache:
            cache[snr_db] = make_inverse(name, leadfield.gain, leadfield.ch_names,
                                         snr=10.0 ** (snr_db / 20.0))
        return cache[snr_db].apply(eeg)

    return _Runner(name, "classical", fn)


def _sparse_runner(name, leadfield, params):
    from ..sparse_inverse import make_sparse_inverse

    cache = {}

    def fn(eeg, snr_db, sample):
        if snr_db not in cache:
            cache[snr_db] = make_sparse_inverse(name, leadfield.gain, leadfield.ch_names,
                                                snr=10.0 ** (snr_db / 20.0), **params)
        return cache[snr_db].apply(eeg)

    return _Runner(name, "sparse", fn)


def _learned_runner(path, leadfield, atlas, device):
    import torch

    from ..inference import load_model, normalise_eeg

    model, ckpt = load_model(path, expected_meta={"atlas": atlas.name,
                                                  "ch_names": list(leadfield.ch_names)},
                             device=device)
    label = Path(path).parent.name or Path(path).stem
    name = f"{ckpt['model_name']}:{label}"

    @torch.no_grad()
    def fn(eeg, snr_db, sample):
        x = torch.as_tensor(normalise_eeg(eeg)[None], dtype=torch.float32, device=device)
        return model(x)[0].float().cpu().numpy().astype(np.float64)

    runner = _Runner(name, "learned", fn)
    runner.n_times = getattr(model, "n_times", None) or ckpt["model_config"].get("n_times")
    return runner


def random_floor(n_times: int, n_regions: int, rng) -> np.ndarray:
    """The floor: a random power map (each region a random amplitude times white noise).

    Returns
    -------
    pred : ndarray, shape (n_times, n_regions)
    """
    amp = rng.lognormal(0.0, 1.0, n_regions)
    return rng.standard_normal((n_times, n_regions)) * amp


def _oracle_patches(gain, eeg, target, patches):
    """The ceiling: least squares of one time course per source on its true spatial map.

    It knows where every source is and its profile (the truth's RMS over time at each patch
    region, relative to the patch maximum) and estimates only the time courses from ``eeg``
    with the nominal ``gain`` (average-referenced).

    Returns
    -------
    pred : ndarray, shape (n_times, n_regions)
    """
    g = gain - gain.mean(0, keepdims=True)
    n_regions = gain.shape[1]
    maps = np.zeros((len(patches), n_regions))
    power = np.sqrt((target * target).mean(0))
    for k, p in enumerate(patches):
        p = np.asarray(p)
        maps[k, p] = power[p] / (power[p].max() or 1.0)
    x = np.linalg.lstsq(g @ maps.T, eeg.T, rcond=None)[0]  # (n_sources, n_times)
    return x.T @ maps
