"""Neural-mass simulation: the Jansen-Rit network of an atlas, one excitable region at a time.

* :class:`JansenRitConfig` — every model, coupling and integration parameter, with units;
* :func:`simulate_nodes` — run a batch of source nodes with the ``torch`` backend (batched,
  CPU or CUDA) or the ``tvb`` reference backend (tvb-library, optional);
* :func:`simulate_regions` — the same per atlas region, output in region order;
* :func:`simulate_bank` — simulate, extract spikes and write the spike bank, resumably
  (see :mod:`lightbunny.spikes`).

Examples
--------
>>> from lightbunny.atlas import make_synthetic_atlas
>>> atlas = make_synthetic_atlas(n_regions=4, n_vertices=60)
>>> out = simulate_regions(atlas, [0, 2], duration=0.05, seed=1)
>>> out.shape  # (n_sources, n_times at 500 Hz, n_regions)
(2, 25, 4)
"""

from __future__ import annotations

import numpy as np

from ..utils import check_option
from .config import REFERENCE_ROW_SUM_998, JansenRitConfig

BACKENDS = ("torch", "tvb")

__all__ = ["JansenRitConfig", "REFERENCE_ROW_SUM_998", "BACKENDS", "simulate_nodes",
           "simulate_regions", "simulate_bank"]


def simulate_nodes(weights, tract_lengths, source_nodes, *, backend: str = "torch", **kwargs):
    """Simulate the network once per source node (see ``simulate_torch`` for the parameters).

    Parameters
    ----------
    weights, tract_lengths : ndarray, shape (n_nodes, n_nodes)
        Weights (a.u., ``[i, j]`` is j -> i) and tract lengths (mm).
    source_nodes : sequence of int
    backend : {"torch", "tvb"}
    **kwargs
        ``duration`` (s), ``config``, ``seed``, ``stream_ids``, ``initial_history``, ``device``,
        ``dtype``, ``progress``.

    Returns
    -------
    out : ndarray, shape (n_sources, n_times, n_nodes), mV
    """
    check_option("backend", backend, BACKENDS)
    if backend == "torch":
        from .torch_backend import simulate_torch

        return simulate_torch(weights, tract_lengths, source_nodes, **kwargs)
    from .tvb_backend import simulate_tvb

    return simulate_tvb(weights, tract_lengths, source_nodes, **kwargs)


def simulate_regions(atlas, regions, *, backend: str = "torch", seed: int = 0, **kwargs) -> np.ndarray:
    """Simulate with each region of ``regions`` as the source, output per atlas region.

    The source node of region r is ``atlas.region_to_node[r]`` (for ``fsaverage994``, regions
    7, 325, 921, 949 are nodes 994, 997, 996, 995); each region's noise and initial history are
    drawn from ``(seed, r)``, whatever else runs in the same batch.

    Returns
    -------
    out : ndarray, shape (len(regions), n_times, n_regions), mV
        ``y1 - y2`` of every region's node at ``config.sfreq`` (500 Hz).
    """
    regions = np.atleast_1d(np.asarray(regions, dtype=np.int64))
    if ((regions < 0) | (regions >= atlas.n_regions)).any():
        raise ValueError(f"regions must lie in 0..{atlas.n_regions - 1}, got {regions.tolist()}.")
    nodes = np.asarray(atlas.region_to_node)[regions]
    out = simulate_nodes(atlas.weights, atlas.tract_lengths, nodes, backend=backend, seed=seed,
                         stream_ids=regions, **kwargs)
    return out[:, :, np.asarray(atlas.region_to_node)]


def simulate_bank(*args, **kwargs):
    """Simulate regions, extract their spike clips and write a spike bank (resumable).

    See :func:`lightbunny.simulate.bank.simulate_bank`.
    """
    from .bank import simulate_bank as _simulate_bank

    return _simulate_bank(*args, **kwargs)
