"""Domain randomisation of the training data: what the network sees beyond one fixed recipe.

A :class:`Randomisation` is an option of :class:`lightbunny.dataset.SyntheticEEGDataset`
(``randomise=``), of the configs (``dataset.randomise``) and of ``lightbunny train``
(``--randomise``); it is recorded in every checkpoint (``meta['dataset']['randomise']``).
Per sample (all draws are pure functions of ``(seed, epoch, sample index)``, like the rest of
the dataset):

number of sources
    the sources file holds ``S`` patches per sample; the first ``k`` are kept, ``k`` uniform in
    ``n_active`` (capped at ``S``): a file made with ``n_sources=3`` gives 1-3 sources.
extent
    each source is a single region with probability ``p_single``; otherwise its patch is cut to
    the regions whose decay weight is at least ``u * max_cut`` (``u`` uniform in [0, 1]; the
    weights fall with distance from the centre, so this is a disc of random radius, from the
    centre alone to the whole grown patch).
waveform
    per source, a family drawn with the probabilities ``waveforms``: ``spike`` keeps the
    neural-mass clip of the bank; ``burst``, ``smooth`` and ``erp``
    (:func:`lightbunny.waveforms.make_waveform`) come from a bank of ``n_bank`` waveforms per
    family generated once from ``bank_seed`` and scaled to the peak of the spike they replace
    (so the source-to-background ratio of the bank is kept). Every source then gets an
    amplitude factor uniform in ``amplitude``.
noise
    per sample one family, drawn with the probabilities ``noise``: ``white`` Gaussian,
    ``coloured`` (1/f activity of every region projected through the sample's leadfield: a bank
    of ``n_coloured`` segments per leadfield, with a random circular shift, time direction and
    sign) or ``real`` (the dataset's resting-EEG segments; without them this share goes to
    white noise). The SNR is the dataset's ``snr_db`` draw, whatever the family.
leadfield
    with an ensemble (``leadfields=`` of the dataset: other head models, jittered electrodes,
    other skull conductivities, same channels), a sample's sources are projected with the
    nominal leadfield with probability ``p_nominal`` and with one ensemble member otherwise.
    The neural-mass background of the spike clip stays projected with the nominal leadfield
    (it is a cached projection; it is background activity either way).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .utils import check_option
from .waveforms import WAVEFORMS, make_waveform, pink_noise

__all__ = ["NOISE_FAMILIES", "Randomisation", "RandomisedDraws", "resolve_randomisation"]

NOISE_FAMILIES = ("white", "coloured", "real")
_SALT = 0xD0A1


def _default_waveforms():
    return {"spike": 0.4, "burst": 0.2, "smooth": 0.2, "erp": 0.2}


def _default_noise():
    return {"white": 0.4, "coloured": 0.3, "real": 0.3}


@dataclass(frozen=True)
class Randomisation:
    """What is randomised per training sample (see the module docstring).

    Parameters
    ----------
    n_active : (int, int)
        Inclusive range of the number of sources kept per sample (at least 1).
    p_single : float
        Probability that a source is one region.
    max_cut : float in [0, 1)
        Largest decay-weight threshold of the extent cut (0: patches are never cut).
    waveforms : dict of str -> float
        Probabilities of the waveform families (normalised; keys among ``spike``, ``burst``,
        ``smooth``, ``erp``).
    amplitude : (float, float)
        Range of each source's amplitude factor.
    noise : dict of str -> float
        Probabilities of the noise families (keys among ``white``, ``coloured``, ``real``).
    p_nominal : float
        With a leadfield ensemble, probability of the nominal leadfield.
    n_bank : int
        Waveforms per non-spike family in the bank.
    n_coloured : int
        Coloured-noise segments per leadfield.
    bank_seed : int
        Seed of the waveform and coloured-noise banks (differs from the benchmark's seeds).
    """

    n_active: tuple = (1, 3)
    p_single: float = 0.25
    max_cut: float = 0.9
    waveforms: dict = field(default_factory=_default_waveforms)
    amplitude: tuple = (0.5, 1.0)
    noise: dict = field(default_factory=_default_noise)
    p_nominal: float = 0.5
    n_bank: int = 256
    n_coloured: int = 32
    bank_seed: int = 7919

    def __post_init__(self):
        lo, hi = (int(v) for v in self.n_active)
        if not 1 <= lo <= hi:
            raise ValueError(f"n_active must be (lo, hi) with 1 <= lo <= hi, got "
                             f"{self.n_active!r} (samples without sources are not supported: "
                             "the balanced loss needs an active region).")
        object.__setattr__(self, "n_active", (lo, hi))
        for name in ("p_single", "p_nominal"):
            v = float(getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v!r}.")
            object.__setattr__(self, name, v)
        if not 0.0 <= float(self.max_cut) < 1.0:
            raise ValueError(f"max_cut must lie in [0, 1), got {self.max_cut!r}.")
        a, b = (float(v) for v in self.amplitude)
        if not 0 < a <= b:
            raise ValueError(f"amplitude must be (lo, hi) with 0 < lo <= hi, got "
                             f"{self.amplitude!r}.")
        object.__setattr__(self, "amplitude", (a, b))
        object.__setattr__(self, "waveforms", _probabilities("waveforms", self.waveforms,
                                                             WAVEFORMS))
        object.__setattr__(self, "noise", _probabilities("noise", self.noise, NOISE_FAMILIES))
        for name in ("n_bank", "n_coloured"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}.")

    def to_dict(self) -> dict:
        """Plain JSON types (recorded in checkpoints)."""
        d = dataclasses.asdict(self)
        d["n_active"] = list(self.n_active)
        d["amplitude"] = list(self.amplitude)
        return d

    def without(self, factor: str) -> Randomisation:
        """The same randomisation with one factor switched off (for ablations).

        ``factor``: ``'n_sources'`` (always the sources file's count), ``'extent'`` (whole
        patches), ``'waveform'`` (spikes only), ``'noise'`` (white only), ``'leadfield'`` (the
        nominal leadfield only), ``'amplitude'`` (factor 1).
        """
        check_option("factor", factor, ABLATIONS)
        changes = {"n_sources": {"n_active": (99, 99)},
                   "extent": {"p_single": 0.0, "max_cut": 0.0},
                   "waveform": {"waveforms": {"spike": 1.0}},
                   "noise": {"noise": {"white": 1.0}},
                   "leadfield": {"p_nominal": 1.0},
                   "amplitude": {"amplitude": (1.0, 1.0)}}[factor]
        return dataclasses.replace(self, **changes)


#: Factors :meth:`Randomisation.without` can switch off.
ABLATIONS = ("n_sources", "extent", "waveform", "noise", "leadfield", "amplitude")


def _probabilities(name, value, allowed) -> dict:
    value = dict(value)
    for k in value:
        check_option(f"{name} family", k, allowed)
    p = {k: float(v) for k, v in value.items() if float(v) > 0}
    if any(float(v) < 0 for v in value.values()) or not p:
        raise ValueError(f"{name} probabilities must be >= 0 with a positive sum, got {value!r}.")
    total = sum(p.values())
    return {k: p[k] / total for k in allowed if k in p}


def resolve_randomisation(value) -> Randomisation | None:
    """``None``/``False``/``'none'`` -> None; ``True``/``'default'`` -> the defaults; a dict
    (as recorded in a checkpoint or written in a config) or a :class:`Randomisation`."""
    if value is None or value is False or value == "none":
        return None
    if value is True or value == "default":
        return Randomisation()
    if isinstance(value, Randomisation):
        return value
    if isinstance(value, dict):
        known = {f.name for f in dataclasses.fields(Randomisation)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown randomisation option(s) {unknown}; known: {sorted(known)}.")
        return Randomisation(**value)
    raise ValueError(f"randomise must be None, 'default', a dict or a Randomisation, got "
                     f"{value!r}.")


def _uniforms(seed: int, samples, n_slots: int) -> np.ndarray:
    """Uniforms in [0, 1), (n, n_slots): a pure function of (seed, sample index, slot)."""
    from .dataset import _counter_keys, _counter_uniforms

    return _counter_uniforms(_counter_keys(int(seed) ^ _SALT, samples), n_slots)


def _pick(u, probs: dict, order) -> np.ndarray:
    """Index into ``order`` of the family drawn by uniforms ``u`` with probabilities ``probs``."""
    p = np.array([probs.get(k, 0.0) for k in order])
    return np.minimum(np.searchsorted(np.cumsum(p), u, side="right"), len(order) - 1)


class RandomisedDraws:
    """The banks of one dataset and the per-batch draws of a :class:`Randomisation`.

    Parameters
    ----------
    spec : Randomisation
    n_times : int
    sfreq : float
    gains : list of ndarray, shape (n_chans, n_regions)
        The nominal leadfield first, then the ensemble.
    has_real : bool
        Whether the dataset has resting-EEG segments.
    """

    def __init__(self, spec: Randomisation, *, n_times: int, sfreq: float, gains, has_real: bool):
        import torch

        self.spec = spec
        self.n_times = int(n_times)
        self.gains = torch.from_numpy(np.stack([np.asarray(g, np.float32) for g in gains]))
        noise = dict(spec.noise)
        if not has_real and "real" in noise:
            noise["white"] = noise.get("white", 0.0) + noise.pop("real")
        self.noise = noise
        rng = np.random.default_rng([spec.bank_seed, 1])
        synth = [f for f in WAVEFORMS if f != "spike"]
        self.bank = torch.from_numpy(np.stack([
            np.stack([make_waveform(f, self.n_times, sfreq, rng) for _ in range(spec.n_bank)])
            for f in synth]).astype(np.float32))  # (3, n_bank, T)
        self._coloured = None
        self._rng_col = np.random.default_rng([spec.bank_seed, 2])

    @property
    def n_leadfields(self) -> int:
        return int(self.gains.shape[0])

    def coloured(self):
        """(n_leadfields, n_coloured, T, C) coloured-noise bank, built on first use."""
        import torch

        if self._coloured is None:
            n_r = self.gains.shape[2]
            act = np.stack([pink_noise(self.n_times, n_r, self._rng_col)
                            for _ in range(self.spec.n_coloured)]).astype(np.float32)
            act = torch.from_numpy(act)  # (n_col, T, R)
            self._coloured = torch.einsum("ntr,mcr->mntc", act, self.gains).contiguous()
        return self._coloured

    def draw(self, seed: int, samples, n_sources: int) -> dict:
        """Per-sample choices of a batch (numpy arrays)."""
        s = int(n_sources)
        spec = self.spec
        u = _uniforms(seed, samples, 5 * s + 7)
        n = len(u)
        lo, hi = min(spec.n_active[0], s), min(spec.n_active[1], s)
        k = lo + np.minimum((u[:, 0] * (hi - lo + 1)).astype(np.int64), hi - lo)
        active = np.arange(s)[None, :] < k[:, None]
        us = u[:, 1:1 + 5 * s].reshape(n, 5, s)
        single = us[:, 0] < spec.p_single
        cut = us[:, 1] * spec.max_cut
        family = _pick(us[:, 2], spec.waveforms, WAVEFORMS)
        bank_idx = np.minimum((us[:, 3] * spec.n_bank).astype(np.int64), spec.n_bank - 1)
        a, b = spec.amplitude
        amp = a + (b - a) * us[:, 4]
        t = u[:, 1 + 5 * s:]
        noise = _pick(t[:, 0], self.noise, NOISE_FAMILIES)
        col_idx = np.minimum((t[:, 1] * spec.n_coloured).astype(np.int64), spec.n_coloured - 1)
        col_shift = np.minimum((t[:, 2] * self.n_times).astype(np.int64), self.n_times - 1)
        col_sign = np.where(t[:, 3] < 0.5, -1.0, 1.0)
        col_flip = t[:, 4] < 0.5
        n_ens = self.n_leadfields - 1
        member = np.zeros(n, dtype=np.int64)
        if n_ens:
            use = t[:, 5] >= spec.p_nominal
            frac = (t[:, 5] - spec.p_nominal) / max(1.0 - spec.p_nominal, 1e-12)
            member = np.where(use, 1 + np.minimum((frac * n_ens).astype(np.int64), n_ens - 1), 0)
        return {"active": active, "single": single, "cut": cut, "family": family,
                "bank_idx": bank_idx, "amplitude": amp, "noise_family": noise,
                "coloured_idx": col_idx, "coloured_shift": col_shift, "coloured_sign": col_sign,
                "coloured_flip": col_flip, "leadfield": member}

    @staticmethod
    def restrict(w, member, centres, r):
        """Weights and membership (B, S, R) after the number-of-sources and extent draws."""
        keep = member & (w >= r["cut"][:, :, None])
        b, s = np.nonzero(r["single"])
        keep[b, s, :] = False
        keep[b, s, centres[b, s]] = True
        keep &= r["active"][:, :, None]
        w = np.where(keep, w, 0.0).astype(np.float32)
        w[b, s, centres[b, s]] = np.where(r["active"][b, s], 1.0, 0.0)
        return w, keep

    def waves(self, spikes, r):
        """Source time courses (B, S, T): spikes replaced by other families where drawn, each
        scaled to the replaced spike's peak, times the amplitude factor."""
        import torch

        fam = torch.from_numpy(r["family"])
        out = spikes.clone()
        synth = fam > 0
        if bool(synth.any()):
            b, s = torch.nonzero(synth, as_tuple=True)
            picked = self.bank[fam[b, s] - 1, torch.from_numpy(r["bank_idx"])[b, s]]
            peak = spikes[b, s].abs().amax(dim=-1, keepdim=True)
            out[b, s] = picked.to(out.device, out.dtype) * peak
        amp = torch.as_tensor(r["amplitude"], dtype=out.dtype, device=out.device)
        return out * amp[..., None]

    def gains_for(self, r, device):
        """Per-sample leadfields (B, C, R), or None when every sample uses the nominal one."""
        m = r["leadfield"]
        if not np.any(m):
            return None
        return self.gains[np.asarray(m)].to(device)

    def coloured_noise(self, r, device):
        """Unscaled coloured noise (B, T, C) for every sample (zero where not drawn)."""
        import torch

        use = r["noise_family"] == NOISE_FAMILIES.index("coloured")
        bank = self.coloured()
        n, (t, c) = len(use), bank.shape[2:]
        out = torch.zeros((n, t, c))
        for i in np.flatnonzero(use):
            seg = bank[r["leadfield"][i], r["coloured_idx"][i]]
            if r["coloured_flip"][i]:
                seg = seg.flip(0)
            out[i] = (torch.roll(seg, int(r["coloured_shift"][i]), dims=0)
                      * float(r["coloured_sign"][i]))
        return out.to(device)


def describe(spec: Randomisation | None) -> str:
    """One line for logs and model cards."""
    if spec is None:
        return "none"
    fam = ", ".join(f"{k} {v:.0%}" for k, v in spec.waveforms.items())
    noi = ", ".join(f"{k} {v:.0%}" for k, v in spec.noise.items())
    return (f"{spec.n_active[0]}-{spec.n_active[1]} sources; single region {spec.p_single:.0%}, "
            f"extent cut up to weight {spec.max_cut:g}; waveforms {fam}; amplitude "
            f"{spec.amplitude[0]:g}-{spec.amplitude[1]:g}; noise {noi}; nominal leadfield "
            f"{spec.p_nominal:.0%}")
