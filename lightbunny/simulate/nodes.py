"""Simulation of source nodes and atlas regions, on either backend.

The shared entry points of :mod:`lightbunny.simulate`, in a module of their own so that
:mod:`lightbunny.simulate.bank` imports them without importing the package (no import cycle).
"""

from __future__ import annotations

import numpy as np

from ..utils import check_option

BACKENDS = ("torch", "tvb")


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


def simulate_regions(atlas, regions, *, backend: str = "torch", seed: int = 0,
                     **kwargs) -> np.ndarray:
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


__all__ = ["BACKENDS", "simulate_nodes", "simulate_regions"]
