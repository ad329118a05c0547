"""Atlases: a cortex mesh split into regions, plus the connectome used for simulation.

An :class:`Atlas` holds everything the pipeline needs about the brain:

* the cortex mesh (``vertices`` in **mm**, RAS orientation: x to the right, y anterior, z up),
  its ``triangles`` and unit ``normals``;
* the region of every vertex (``vertex_region``, 0-based), region ``centres`` (mm, mean of the
  region's vertices), region ``adjacency`` (regions sharing a mesh edge) and ``distances``
  between region centres (mm, Euclidean);
* the structural connectivity used by the neural-mass simulation (``weights``, arbitrary units,
  and ``tract_lengths`` in mm) over *simulation nodes*, with ``region_to_node`` mapping each
  region to its node (the 998-node connectome of ``fsaverage994`` has four nodes without
  vertices, whose activity stands in for four regions).

Atlases available by name (see :func:`load_atlas`):

``tvb76``
    The embedded default, built only from the ``tvb-data`` package: ``connectivity_76``,
    ``cortex_16384`` and ``regionMapping_16k_76``. Works offline out of the box.
``fsaverage994``
    The 994-region fsaverage5 template of the published DeepSIF / LightBunny models. Its files
    live in a user data directory (``--data-dir`` or the ``LIGHTBUNNY_DATA`` environment
    variable); :func:`fetch_fsaverage994` downloads them and checks their sha256.

Tests build a tiny atlas with :func:`make_synthetic_atlas`.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._logging import logger
from .utils import check_option, read_only

ATLAS_NAMES = ("tvb76", "fsaverage994")
DATA_DIR_ENV = "LIGHTBUNNY_DATA"


@dataclass(frozen=True, eq=False)
class Atlas:
    """A parcellated cortex and its structural connectome.

    Parameters
    ----------
    name : str
        Atlas name, stored in every output derived from it.
    vertices : ndarray, shape (n_vertices, 3), mm
        Cortex vertex positions (RAS orientation).
    triangles : ndarray of int, shape (n_triangles, 3)
        Mesh faces, 0-based vertex indices.
    normals : ndarray, shape (n_vertices, 3)
        Unit outward normals of the cortical surface.
    vertex_region : ndarray of int, shape (n_vertices,)
        Region of each vertex, in ``0 .. n_regions - 1``.
    region_names : tuple of str, length n_regions
    centres : ndarray, shape (n_regions, 3), mm
        Mean position of each region's vertices.
    adjacency : ndarray of bool, shape (n_regions, n_regions)
        True where two distinct regions share a mesh edge (symmetric, False diagonal).
    distances : ndarray, shape (n_regions, n_regions), mm
        Euclidean distances between region centres.
    weights : ndarray, shape (n_nodes, n_nodes)
        Structural connectivity weights (a.u.) of the simulation nodes.
    tract_lengths : ndarray, shape (n_nodes, n_nodes), mm
    node_names : tuple of str, length n_nodes
    region_to_node : ndarray of int, shape (n_regions,)
        Simulation node whose activity is the activity of each region.
    metadata : dict
        Where the atlas came from (files, versions, notes).
    """

    name: str
    vertices: np.ndarray
    triangles: np.ndarray
    normals: np.ndarray
    vertex_region: np.ndarray
    region_names: tuple
    centres: np.ndarray
    adjacency: np.ndarray
    distances: np.ndarray
    weights: np.ndarray
    tract_lengths: np.ndarray
    node_names: tuple
    region_to_node: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        n_v = len(self.vertices)
        n_r = len(self.region_names)
        n_n = len(self.node_names)
        checks = [
            (self.vertices.shape == (n_v, 3), "vertices must have shape (n_vertices, 3)"),
            (self.normals.shape == (n_v, 3), "normals must have shape (n_vertices, 3)"),
            (self.triangles.ndim == 2 and self.triangles.shape[1] == 3, "triangles must be (n, 3)"),
            (self.vertex_region.shape == (n_v,), "vertex_region must have one entry per vertex"),
            (self.centres.shape == (n_r, 3), "centres must have shape (n_regions, 3)"),
            (self.adjacency.shape == (n_r, n_r), "adjacency must be (n_regions, n_regions)"),
            (self.distances.shape == (n_r, n_r), "distances must be (n_regions, n_regions)"),
            (self.weights.shape == (n_n, n_n), "weights must be (n_nodes, n_nodes)"),
            (self.tract_lengths.shape == (n_n, n_n), "tract_lengths must be (n_nodes, n_nodes)"),
            (self.region_to_node.shape == (n_r,), "region_to_node must have one entry per region"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"Atlas {self.name!r}: {msg}.")
        if self.vertex_region.min() < 0 or self.vertex_region.max() >= n_r:
            raise ValueError(f"Atlas {self.name!r}: vertex_region values must lie in 0..{n_r - 1}.")
        if self.region_to_node.min() < 0 or self.region_to_node.max() >= n_n:
            raise ValueError(f"Atlas {self.name!r}: region_to_node values must lie in 0..{n_n - 1}.")
        for attr in ("vertices", "triangles", "normals", "vertex_region", "centres", "adjacency",
                     "distances", "weights", "tract_lengths", "region_to_node"):
            read_only(getattr(self, attr))

    @property
    def n_vertices(self) -> int:
        return len(self.vertices)

    @property
    def n_regions(self) -> int:
        return len(self.region_names)

    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def node_to_region(self) -> np.ndarray:
        """Region of each simulation node, -1 for nodes that stand for no region."""
        out = np.full(self.n_nodes, -1, dtype=np.int64)
        out[self.region_to_node] = np.arange(self.n_regions)
        return out

    @property
    def vertex_hemisphere(self) -> np.ndarray:
        """0 for left-hemisphere vertices, 1 for right (from ``metadata['hemisphere']`` or x)."""
        if "vertex_hemisphere" in self.metadata:
            return np.asarray(self.metadata["vertex_hemisphere"])
        return (self.vertices[:, 0] > 0).astype(np.int8)

    def region_vertices(self, region: int) -> np.ndarray:
        """Indices of the vertices of ``region``."""
        return np.flatnonzero(self.vertex_region == region)

    def neighbours(self, region: int) -> np.ndarray:
        """Regions adjacent to ``region`` (sharing a mesh edge), sorted."""
        return np.flatnonzero(self.adjacency[region])

    def summary(self) -> dict:
        """Counts and ranges that describe the atlas, as a plain dict."""
        counts = np.bincount(self.vertex_region, minlength=self.n_regions)
        n_nb = self.adjacency.sum(1)
        off = self.distances[~np.eye(self.n_regions, dtype=bool)]
        return {
            "name": self.name,
            "n_vertices": self.n_vertices,
            "n_triangles": int(len(self.triangles)),
            "n_regions": self.n_regions,
            "n_nodes": self.n_nodes,
            "vertices_per_region": {"min": int(counts.min()), "median": float(np.median(counts)),
                                    "max": int(counts.max())},
            "neighbours_per_region": {"min": int(n_nb.min()), "median": float(np.median(n_nb)),
                                      "max": int(n_nb.max())},
            "region_distance_mm": {"min": float(off.min()) if off.size else 0.0,
                                   "max": float(off.max()) if off.size else 0.0},
            "connectivity_row_sum": {"median": float(np.median(self.weights.sum(1)))},
            "extent_mm": (self.vertices.max(0) - self.vertices.min(0)).round(1).tolist(),
            "source": self.metadata.get("source", ""),
        }


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of a triangle mesh.

    Parameters
    ----------
    vertices : ndarray, shape (n_vertices, 3)
    triangles : ndarray of int, shape (n_triangles, 3)

    Returns
    -------
    normals : ndarray, shape (n_vertices, 3)
        Unit vectors (zero rows for vertices in no triangle). Their sign follows the winding of
        the triangles (counter-clockwise seen from outside gives outward normals).
    """
    v = np.asarray(vertices, dtype=float)
    t = np.asarray(triangles)
    face = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    nn = np.zeros_like(v)
    for k in range(3):
        np.add.at(nn, t[:, k], face)
    norm = np.linalg.norm(nn, axis=1, keepdims=True)
    return np.divide(nn, norm, out=np.zeros_like(nn), where=norm > 0)


def region_adjacency(triangles: np.ndarray, vertex_region: np.ndarray, n_regions: int) -> np.ndarray:
    """Regions that share a mesh edge.

    Returns
    -------
    adjacency : ndarray of bool, shape (n_regions, n_regions)
        Symmetric, with a False diagonal.
    """
    t = np.asarray(triangles)
    edges = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    ra, rb = vertex_region[edges[:, 0]], vertex_region[edges[:, 1]]
    cross = ra != rb
    adj = np.zeros((n_regions, n_regions), dtype=bool)
    adj[ra[cross], rb[cross]] = True
    adj |= adj.T
    return adj


def build_atlas(name, vertices, triangles, vertex_region, weights, tract_lengths, *,
                region_to_node=None, region_names=None, node_names=None, normals=None,
                metadata=None) -> Atlas:
    """Build an :class:`Atlas`, deriving centres, adjacency, distances and normals.

    Parameters
    ----------
    name : str
    vertices : ndarray, shape (n_vertices, 3), mm
    triangles : ndarray of int, shape (n_triangles, 3)
    vertex_region : ndarray of int, shape (n_vertices,)
        0-based; regions are ``0 .. max(vertex_region)`` and each must own a vertex.
    weights, tract_lengths : ndarray, shape (n_nodes, n_nodes)
    region_to_node : ndarray of int, shape (n_regions,), optional
        Defaults to the identity (node k is region k).
    region_names, node_names : sequence of str, optional
    normals : ndarray, shape (n_vertices, 3), optional
        Computed from the mesh when omitted.
    metadata : dict, optional
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    vertex_region = np.asarray(vertex_region, dtype=np.int64)
    n_regions = int(vertex_region.max()) + 1
    counts = np.bincount(vertex_region, minlength=n_regions)
    if (counts == 0).any():
        raise ValueError(f"Atlas {name!r}: regions {np.flatnonzero(counts == 0).tolist()} own no "
                         "vertex; renumber the mapping so that every region has vertices.")
    weights = np.asarray(weights, dtype=np.float64)
    n_nodes = len(weights)
    if region_to_node is None:
        region_to_node = np.arange(n_regions)
    region_to_node = np.asarray(region_to_node, dtype=np.int64)
    if normals is None:
        normals = vertex_normals(vertices, triangles)
    normals = np.asarray(normals, dtype=np.float64)
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, norm, out=np.zeros_like(normals), where=norm > 0)
    centres = np.zeros((n_regions, 3))
    np.add.at(centres, vertex_region, vertices)
    centres /= counts[:, None]
    distances = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)
    if region_names is None:
        region_names = [f"region_{k}" for k in range(n_regions)]
    if node_names is None:
        node_names = [f"node_{k}" for k in range(n_nodes)]
    return Atlas(
        name=name, vertices=vertices, triangles=triangles, normals=normals,
        vertex_region=vertex_region, region_names=tuple(str(n) for n in region_names),
        centres=centres, adjacency=region_adjacency(triangles, vertex_region, n_regions),
        distances=distances, weights=weights,
        tract_lengths=np.asarray(tract_lengths, dtype=np.float64),
        node_names=tuple(str(n) for n in node_names), region_to_node=region_to_node,
        metadata=dict(metadata or {}),
    )


# --------------------------------------------------------------------------------------------
# Tiny synthetic atlas (tests)
# --------------------------------------------------------------------------------------------


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5**0.5) * k
    return np.c_[np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)]


def make_synthetic_atlas(n_regions: int = 8, n_vertices: int = 300, radius: float = 70.0,
                         seed: int = 0, n_extra_nodes: int = 0) -> Atlas:
    """A tiny spherical "cortex" split into ``n_regions`` regions, for tests.

    Vertices lie on a sphere of ``radius`` mm centred 20 mm above the origin's head centre
    (so a head sphere fitted to a standard montage contains it); each vertex belongs to the
    nearest of ``n_regions`` evenly spread seed directions. The connectome is random but
    reproducible (``seed``), with tract lengths equal to centre distances.

    Parameters
    ----------
    n_regions : int
    n_vertices : int
    radius : float, mm
    seed : int
    n_extra_nodes : int
        Simulation nodes without vertices appended after the region nodes (mimics the four
        vertex-less nodes of ``connectivity_998``).

    Examples
    --------
    >>> atlas = make_synthetic_atlas(n_regions=6)
    >>> atlas.n_regions, atlas.adjacency.shape
    (6, (6, 6))
    """
    from scipy.spatial import ConvexHull

    if n_regions < 2 or n_vertices < 4 * n_regions:
        raise ValueError(f"need n_regions >= 2 and n_vertices >= 4 * n_regions, got "
                         f"n_regions={n_regions}, n_vertices={n_vertices}")
    unit = _fibonacci_sphere(n_vertices)
    hull = ConvexHull(unit)
    tri = hull.simplices.copy()
    # orient triangles outward
    centroid_dir = unit[tri].mean(1)
    normal = np.cross(unit[tri[:, 1]] - unit[tri[:, 0]], unit[tri[:, 2]] - unit[tri[:, 0]])
    flip = (normal * centroid_dir).sum(1) < 0
    tri[flip] = tri[flip][:, ::-1]
    seeds = _fibonacci_sphere(n_regions)
    vertex_region = np.argmax(unit @ seeds.T, axis=1)
    # make region indices dense (every seed owns vertices for these sizes, but be safe)
    _, vertex_region = np.unique(vertex_region, return_inverse=True)
    n_r = int(vertex_region.max()) + 1
    vertices = unit * radius + np.array([0.0, 0.0, 20.0])
    rng = np.random.default_rng(seed)
    n_nodes = n_r + n_extra_nodes
    w = rng.uniform(0.0, 1.0, (n_nodes, n_nodes))
    w = (w + w.T) / 2
    np.fill_diagonal(w, 0.0)
    pos = np.vstack([np.zeros((0, 3))] + [vertices[vertex_region == k].mean(0) for k in range(n_r)]
                    + [rng.normal(0, 30, 3) for _ in range(n_extra_nodes)])
    lengths = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    return build_atlas(
        "synthetic", vertices, tri, vertex_region, w, lengths, normals=unit,
        region_to_node=np.arange(n_r),
        metadata={"source": f"make_synthetic_atlas(n_regions={n_regions}, seed={seed})"},
    )
