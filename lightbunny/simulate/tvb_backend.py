"""The reference backend: the same configuration run through tvb-library (optional extra ``[tvb]``).

This is what the seed did (``forward/generate_tvb_data.py``): one TVB ``Simulator`` per source
region with ``JansenRit``, ``SigmoidalJansenRit`` coupling, ``HeunStochastic`` with additive
noise on ``y4`` and a ``Raw`` monitor. It is slow (tens of ms per step for ~1000 nodes) and
serves as the reference for the torch backend's parity tests and benchmark.
"""

from __future__ import annotations

import numpy as np

from .._logging import logger
from .config import JansenRitConfig
from .torch_backend import random_initial_history, stream_seed


def _import_tvb():
    try:
        from tvb.datatypes import connectivity
        from tvb.simulator import coupling, integrators, models, monitors, noise, simulator
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the 'tvb' backend needs tvb-library: pip install 'lightbunny[tvb]' "
                          "(or use --backend torch)") from err
    return connectivity, coupling, integrators, models, monitors, noise, simulator


def tvb_horizon(tract_lengths: np.ndarray, config: JansenRitConfig) -> int:
    """History length TVB uses: largest delay over *all* pairs, plus one."""
    return int(config.delays(tract_lengths).max()) + 1


def simulate_tvb(weights: np.ndarray, tract_lengths: np.ndarray, source_nodes, *,
                 duration: float = 20.0, config: JansenRitConfig | None = None, seed: int = 0,
                 stream_ids=None, initial_history: np.ndarray | None = None,
                 dtype: str = "float32", progress=None, **_ignored) -> np.ndarray:
    """Run the configuration through TVB, one source node after the other.

    Same parameters and output as :func:`lightbunny.simulate.torch_backend.simulate_torch`
    (``device`` and ``noise_block`` are accepted and ignored: TVB runs float64 on the CPU;
    ``dtype`` only sets the output type). The noise differs from the torch backend's (TVB draws
    from its own ``RandomState``, seeded from ``(seed, stream_id)``); the initial history is the
    same.

    Returns
    -------
    out : ndarray, shape (n_batch, n_out, n_nodes), float32 (or float64), mV
    """
    connectivity, coupling, integrators, models, monitors, noise, simulator = _import_tvb()
    cfg = config or JansenRitConfig()
    weights = np.asarray(weights, dtype=np.float64)
    tract_lengths = np.asarray(tract_lengths, dtype=np.float64)
    n = len(weights)
    source_nodes = np.atleast_1d(np.asarray(source_nodes, dtype=np.int64))
    if ((source_nodes < -1) | (source_nodes >= n)).any():
        raise ValueError(f"source_nodes must lie in -1..{n - 1}, got {source_nodes.tolist()}.")
    stream_ids = source_nodes if stream_ids is None else np.asarray(stream_ids, dtype=np.int64)
    n_steps, n_out = cfg.n_steps(duration)
    horizon = tvb_horizon(tract_lengths, cfg)
    results = []
    for k, (node, sid) in enumerate(zip(source_nodes, stream_ids)):
        conn = connectivity.Connectivity(
            weights=weights.copy(), tract_lengths=tract_lengths.copy(),
            centres=np.zeros((n, 3)), region_labels=np.array([f"n{i}" for i in range(n)]),
            speed=np.array([cfg.conduction_speed]))
        conn.configure()
        A = np.full(n, cfg.A)
        if node >= 0:
            A[node] = cfg.A_source
        model = models.JansenRit(
            A=A, B=np.array([cfg.B]), a=np.array([cfg.a]), b=np.array([cfg.b]),
            v0=np.array([cfg.v0]), nu_max=np.array([cfg.nu_max]), r=np.array([cfg.r]),
            J=np.array([cfg.J]), a_1=np.array([cfg.a_1]), a_2=np.array([cfg.a_2]),
            a_3=np.array([cfg.a_3]), a_4=np.array([cfg.a_4]), mu=np.array([cfg.mu]),
            p_min=np.array([cfg.p_min]), p_max=np.array([cfg.p_max]),
            variables_of_interest=("y1", "y2"))
        coup = coupling.SigmoidalJansenRit(
            cmin=np.array([cfg.cmin]), cmax=np.array([cfg.cmax]),
            midpoint=np.array([cfg.midpoint]), r=np.array([cfg.coupling_r]),
            a=np.array([cfg.coupling_strength(weights)]))
        if cfg.noise:
            nsig = np.zeros(6)
            nsig[4] = cfg.nsig
            integ = integrators.HeunStochastic(
                dt=cfg.dt, noise=noise.Additive(nsig=nsig,
                                                noise_seed=stream_seed(seed, sid) % 2**32))
        else:
            integ = integrators.HeunDeterministic(dt=cfg.dt)
        if initial_history is None:
            hist = random_initial_history(horizon, n, seed, sid)
        else:
            hist = np.asarray(initial_history, dtype=np.float64)
            hist = hist[k] if hist.ndim == 4 else hist
            if hist.shape[0] < horizon:
                raise ValueError(f"initial_history has {hist.shape[0]} steps; TVB needs {horizon}.")
            hist = hist[-horizon:]
        sim = simulator.Simulator(model=model, connectivity=conn, coupling=coup, integrator=integ,
                                  monitors=(monitors.Raw(),),
                                  initial_conditions=hist[..., None].copy())
        sim.configure()
        logger.debug("tvb: source node %d, %d steps", node, n_steps)
        (_, data), = sim.run(n_steps=int(n_steps))
        v = data[:, 0, :, 0] - data[:, 1, :, 0]  # (n_steps, n); row 0 is step 1
        sel = cfg.transient_steps + np.arange(n_out) * cfg.decimation
        results.append(v[sel].astype(np.float64 if dtype == "float64" else np.float32))
        if progress is not None:
            progress(n_steps)
    return np.stack(results)
