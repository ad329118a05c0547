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

from .bank import simulate_bank
from .config import REFERENCE_ROW_SUM_998, JansenRitConfig
from .nodes import BACKENDS, simulate_nodes, simulate_regions

__all__ = ["JansenRitConfig", "REFERENCE_ROW_SUM_998", "BACKENDS", "simulate_nodes",
           "simulate_regions", "simulate_bank"]
