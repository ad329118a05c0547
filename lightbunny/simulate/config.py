"""The Jansen-Rit network configuration shared by the torch and TVB backends."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: Median row sum of the weights of ``connectivity_998`` (the connectome the published DeepSIF /
#: LightBunny parameters were tuned on). Measured from ``connectivity_998.zip``:
#: ``np.median(weights.sum(1)) = 17.3993``.
REFERENCE_ROW_SUM_998 = 17.399292805


@dataclass(frozen=True)
class JansenRitConfig:
    """Parameters of the Jansen-Rit network simulation (the DeepSIF seed's specification).

    Every node runs TVB's ``JansenRit`` neural mass (Jansen & Rit 1995, Biol Cybern 73:357) with
    state ``y0 .. y5`` (mV, mV/ms); nodes are coupled through TVB's ``SigmoidalJansenRit``
    coupling of the delayed ``y1 - y2`` and integrated with stochastic Heun. The output is
    ``y1 - y2`` (mV), the pyramidal-cell membrane potential that EEG sees.

    Parameters
    ----------
    A : float, mV
        Excitatory synaptic gain of every node (3.25, TVB's default).
    A_source : float, mV
        Excitatory gain of the source node, which makes it produce spikes (3.5).
    B : float, mV
        Inhibitory synaptic gain (22).
    a, b : float, 1/ms
        Reciprocal excitatory / inhibitory time constants (0.1, 0.05).
    v0 : float, mV
        Firing threshold of the sigmoid (6; TVB's default is 5.52, the seed uses 6).
    nu_max : float, 1/ms
        Maximum firing rate (0.0025).
    r : float, 1/mV
        Steepness of the sigmoid (0.56).
    J : float
        Average number of synapses (135).
    a_1, a_2, a_3, a_4 : float
        Connectivity constants (1, 0.8, 0.25, 0.25).
    mu : float, 1/ms
        Mean input firing rate (0.087).
    p_min, p_max : float, 1/ms
        Input firing-rate range that sets the noise strength (0.03, 0.15).
    noise_scale : float
        Extra factor on the noise standard deviation (1; DeepSIF's other runs use 1.5, 1.7).
    cmin, cmax : float
        Range of the coupling sigmoid (0, 0.005).
    midpoint : float, mV
        Midpoint of the coupling sigmoid (6).
    coupling_r : float, 1/mV
        Steepness of the coupling sigmoid (0.56).
    coupling_a : float
        Global coupling strength before normalisation (1).
    reference_row_sum : float or None
        **The tvb76 fix.** When set, the global coupling strength is multiplied by
        ``reference_row_sum / median(row sums of the weights)``, so that the median node
        receives as much input as in ``connectivity_998`` (17.40, the default). This leaves
        ``fsaverage994`` unchanged (factor 1) and divides the coupling of ``connectivity_76``
        (median row sum 41.5) by 2.4; without it, the other tvb76 regions also cross 8 mV and
        the clean-window rule rejects almost every clip. ``None`` reproduces the seed (no
        normalisation).
    conduction_speed : float, mm/ms
        Delays are ``round(tract_length / conduction_speed / dt)`` steps (3).
    dt : float, ms
        Integration step (0.5).
    transient : float, ms
        Simulated time dropped at the start (500).
    decimation : int
        Keep every ``decimation``-th step after the transient (4: 2000 Hz -> 500 Hz).
    noise : bool
        Additive noise on ``y4`` (True); False gives the deterministic system (parity tests).

    Examples
    --------
    >>> cfg = JansenRitConfig()
    >>> cfg.sfreq, f"{cfg.nsig:.6e}"
    (500.0, '1.901250e-04')
    >>> cfg.replace(noise=False).noise
    False
    """

    A: float = 3.25
    A_source: float = 3.5
    B: float = 22.0
    a: float = 0.1
    b: float = 0.05
    v0: float = 6.0
    nu_max: float = 0.0025
    r: float = 0.56
    J: float = 135.0
    a_1: float = 1.0
    a_2: float = 0.8
    a_3: float = 0.25
    a_4: float = 0.25
    mu: float = 0.087
    p_min: float = 0.03
    p_max: float = 0.15
    noise_scale: float = 1.0
    cmin: float = 0.0
    cmax: float = 0.005
    midpoint: float = 6.0
    coupling_r: float = 0.56
    coupling_a: float = 1.0
    reference_row_sum: float | None = REFERENCE_ROW_SUM_998
    conduction_speed: float = 3.0
    dt: float = 0.5
    transient: float = 500.0
    decimation: int = 4
    noise: bool = True

    def __post_init__(self):
        for name in ("a", "b", "nu_max", "r", "J", "dt", "conduction_speed", "coupling_r"):
            if not getattr(self, name) > 0:
                raise ValueError(f"JansenRitConfig.{name} must be > 0, got {getattr(self, name)}.")
        if int(self.decimation) != self.decimation or self.decimation < 1:
            raise ValueError(f"decimation must be a positive integer, got {self.decimation}.")
        if self.transient < 0:
            raise ValueError(f"transient must be >= 0 ms, got {self.transient}.")
        if self.reference_row_sum is not None and not self.reference_row_sum > 0:
            raise ValueError(f"reference_row_sum must be > 0 or None, got "
                             f"{self.reference_row_sum}.")

    # ------------------------------------------------------------------ derived values
    @property
    def nsig(self) -> float:
        """Noise intensity D of TVB's additive noise on ``y4``:
        ``(a A (p_max - p_min) / 2 s)^2 / 2``.

        The increment per step is ``sqrt(2 D dt) N(0, 1)`` (TVB's ``Additive`` noise).
        """
        amp = self.a * self.A * (self.p_max - self.p_min) * 0.5 * self.noise_scale
        return float(amp ** 2 / 2.0)

    @property
    def sfreq(self) -> float:
        """Sampling rate of the output, Hz."""
        return 1000.0 / (self.dt * self.decimation)

    @property
    def transient_steps(self) -> int:
        return int(round(self.transient / self.dt))

    def n_steps(self, duration: float) -> tuple[int, int]:
        """Integration steps and output samples for ``duration`` seconds kept after the
        transient."""
        if not duration > 0:
            raise ValueError(f"duration must be > 0 s, got {duration}.")
        n_out = int(round(duration * 1000.0 / self.dt)) // self.decimation
        if n_out < 1:
            raise ValueError(f"duration {duration} s gives no output sample at {self.sfreq:g} Hz.")
        return self.transient_steps + n_out * self.decimation, n_out

    def coupling_strength(self, weights: np.ndarray) -> float:
        """Global coupling strength actually used with ``weights`` (after the row-sum fix)."""
        if self.reference_row_sum is None:
            return float(self.coupling_a)
        med = float(np.median(np.asarray(weights).sum(1)))
        if med <= 0:
            return float(self.coupling_a)
        return float(self.coupling_a * self.reference_row_sum / med)

    def delays(self, tract_lengths: np.ndarray) -> np.ndarray:
        """Integer delays in steps, ``rint(tract_length / conduction_speed / dt)`` (as TVB)."""
        steps = np.asarray(tract_lengths, float) / self.conduction_speed / self.dt
        return np.rint(steps).astype(np.int64)

    def replace(self, **changes) -> JansenRitConfig:
        """A copy with some parameters changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """All parameters as a plain dict (stored in every bank)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> JansenRitConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown JansenRitConfig parameters {sorted(unknown)}; "
                             f"allowed: {sorted(names)}.")
        return cls(**d)
