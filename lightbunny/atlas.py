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

Region names follow the connectome, prefixed ``l``/``r`` for the hemisphere. The prefix is
checked against the vertices (:func:`hemisphere_name_mismatches`, which takes each hemisphere
as one connected component of the mesh); fsaverage994 corrects two connectome names whose
prefix is wrong (:data:`FSAVERAGE994_RENAMED`).

Tests build a tiny atlas with :func:`make_synthetic_atlas`.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._logging import logger
from .datadir import (  # noqa: F401 (public names of lightbunny.atlas since before)
    DATA_DIR_ENV,
    DEEPSIF_FILES,
    DEEPSIF_URL,
    FSAVERAGE994_REQUIRED,
    VENDORED_DIR,
    _sha256,
    check_data_dir,
    fetch_fsaverage994,
    resolve_data_dir,
)
from .utils import check_option, read_only

ATLAS_NAMES = ("tvb76", "fsaverage994")


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
            raise ValueError(f"Atlas {self.name!r}: region_to_node values must lie in "
                             f"0..{n_n - 1}.")
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
            "region_distance_mm": {"min": round(float(off.min()), 2) if off.size else 0.0,
                                   "max": round(float(off.max()), 2) if off.size else 0.0},
            "connectivity_row_sum": {"median": round(float(np.median(self.weights.sum(1))), 3)},
            "extent_mm": (self.vertices.max(0) - self.vertices.min(0)).round(1).tolist(),
            "source": self.metadata.get("source", ""),
        }


def mesh_hemispheres(atlas: Atlas) -> np.ndarray:
    """Hemisphere of every vertex from the mesh alone: 0 left, 1 right.

    The two hemispheres of a cortex mesh are two connected components (no triangle crosses the
    midline): the component whose vertices have the lower mean x (RAS: x to the right) is the
    left one. This uses neither region names nor file order, so it can check both.

    Returns
    -------
    hemisphere : ndarray of int8, shape (n_vertices,)

    Raises
    ------
    ValueError
        When the mesh does not have exactly two large components (each > 10 % of vertices).
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = atlas.n_vertices
    t = np.asarray(atlas.triangles)
    edges = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    graph = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    sizes = np.bincount(label)
    big = np.flatnonzero(sizes > 0.1 * n)
    if len(big) != 2:
        raise ValueError(f"Atlas {atlas.name!r}: the cortex mesh has {len(big)} large connected "
                         f"components (sizes {sorted(sizes)[-4:]}); two hemispheres expected.")
    mean_x = [atlas.vertices[label == c, 0].mean() for c in big]
    left, right = big[np.argsort(mean_x)]
    hemi = np.full(n, -1, dtype=np.int8)
    hemi[label == left], hemi[label == right] = 0, 1
    if (hemi < 0).any():  # stray small pieces: the side of their x relative to the midline
        mid = 0.5 * (min(mean_x) + max(mean_x))
        stray = hemi < 0
        hemi[stray] = (atlas.vertices[stray, 0] > mid).astype(np.int8)
    return hemi


def region_hemispheres(atlas: Atlas) -> np.ndarray:
    """Hemisphere of each region from its vertices (:func:`mesh_hemispheres`).

    Returns
    -------
    hemisphere : ndarray of int8, shape (n_regions,)
        0 left, 1 right, -1 when a region has vertices in both hemispheres or none.
    """
    hemi = mesh_hemispheres(atlas)
    out = np.full(atlas.n_regions, -1, dtype=np.int8)
    for r in range(atlas.n_regions):
        h = np.unique(hemi[atlas.vertex_region == r])
        if len(h) == 1:
            out[r] = h[0]
    return out


def hemisphere_name_mismatches(atlas: Atlas, names=None) -> dict:
    """Regions whose name's hemisphere prefix (``l``/``r``) contradicts their vertices.

    Parameters
    ----------
    atlas : Atlas
    names : sequence of str, optional
        Names to check (default ``atlas.region_names``).

    Returns
    -------
    mismatches : dict
        Region index -> ``(name, 'left' | 'right' | 'both')``: the hemisphere the vertices lie
        in. Names without an ``l``/``r`` prefix followed by an upper-case letter are reported
        too (``'no prefix'``).
    """
    names = list(atlas.region_names if names is None else names)
    hemi = region_hemispheres(atlas)
    side = {0: "left", 1: "right", -1: "both"}
    out = {}
    for r, name in enumerate(names):
        prefix = name[:1] if len(name) > 1 and name[1:2].isupper() else ""
        if prefix not in ("l", "r"):
            out[r] = (name, "no prefix")
        elif "lr".index(prefix) != hemi[r]:
            out[r] = (name, side[int(hemi[r])])
    return out


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


def region_adjacency(triangles: np.ndarray, vertex_region: np.ndarray,
                     n_regions: int) -> np.ndarray:
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


#: Centre of the synthetic "cortex" sphere (mm): the centre of a sphere fitted to fsaverage's
#: head, so that the synthetic cortex sits inside the head of the standard montages.
SYNTHETIC_CENTRE = (0.0, -19.0, 5.0)


def make_synthetic_atlas(n_regions: int = 8, n_vertices: int = 300, radius: float = 60.0,
                         seed: int = 0, n_extra_nodes: int = 0) -> Atlas:
    """A tiny spherical "cortex" split into ``n_regions`` regions, for tests.

    Vertices lie on a sphere of ``radius`` mm centred at :data:`SYNTHETIC_CENTRE` (inside the
    fsaverage head of MNE's standard montages, so leadfields work); each vertex belongs to the
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
    vertices = unit * radius + np.array(SYNTHETIC_CENTRE)
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


# --------------------------------------------------------------------------------------------
# tvb76: the embedded default, from the tvb-data package
# --------------------------------------------------------------------------------------------

#: tvb-data stores its cortex, connectome centres and scalp_1082 in an "ALS" frame (x anterior,
#: y left, z up, mm). We rotate everything to RAS (x right, y anterior, z up):
#: x_ras = -y_als, y_ras = x_als. (Measured on tvb-data 3.0.0: the cortex spans 179 mm along
#: its x axis and 145 mm along y, and the right auditory cortex 'rA1' has y = -47 mm.)
def _als_to_ras(xyz: np.ndarray) -> np.ndarray:
    xyz = np.asarray(xyz, dtype=np.float64)
    return np.c_[-xyz[:, 1], xyz[:, 0], xyz[:, 2]]


def _tvb_data_path(*parts) -> Path:
    try:
        import tvb_data
    except ImportError as err:  # pragma: no cover - tvb-data is a hard dependency
        raise ImportError("The tvb76 atlas needs the 'tvb-data' package: pip install "
                          "tvb-data") from err
    return Path(tvb_data.__file__).parent.joinpath(*parts)


def _read_zip_txt(zpath: Path, name: str, **kw) -> np.ndarray:
    with zipfile.ZipFile(zpath) as z:
        return np.loadtxt(io.StringIO(z.read(name).decode()), **kw)


def read_tvb_connectivity(zpath) -> dict:
    """Read a TVB connectivity zip (weights, tract_lengths (mm), centres, names).

    Returns
    -------
    dict with ``weights`` (n_nodes, n_nodes), ``tract_lengths`` (n_nodes, n_nodes) mm,
    ``centres`` (n_nodes, 3) mm in the file's frame and ``names`` (list of str).
    """
    zpath = Path(zpath)
    with zipfile.ZipFile(zpath) as z:
        lines = [ln.split() for ln in z.read("centres.txt").decode().splitlines() if ln.strip()]
    return {
        "weights": _read_zip_txt(zpath, "weights.txt"),
        "tract_lengths": _read_zip_txt(zpath, "tract_lengths.txt"),
        "centres": np.array([[float(x) for x in ln[1:4]] for ln in lines]),
        "names": [ln[0] for ln in lines],
    }


#: Full names of tvb76's region abbreviations (without the l/r hemisphere prefix). Source: the
#: region ontology shipped with tvb-data (``tvb_data/brco/tvb-brco.xml``, TVBTerm labels, the
#: regional map of Koetter & Wanke 2005). IA, PMCM and CC have no term there: IA and PMCM are
#: named by analogy with the ontology's IP (posterior insula) and PMCdl/PMCvl; CC is a
#: midline region (x = +-2 mm) bordering every cingulate part, the hippocampus and the
#: amygdala, read here as the medial wall at the corpus callosum.
TVB76_REGION_NAMES = {
    "A1": "primary auditory cortex", "A2": "secondary auditory cortex", "AMYG": "amygdala",
    "CC": "medial wall at the corpus callosum", "CCA": "anterior cingulate gyrus",
    "CCP": "posterior cingulate gyrus", "CCR": "retrosplenial cingulate gyrus",
    "CCS": "subgenual cingulate gyrus", "FEF": "frontal eye field", "G": "gustatory cortex",
    "HC": "hippocampal cortex", "IA": "anterior insula", "IP": "posterior insula",
    "M1": "primary motor area", "PCI": "inferior parietal cortex",
    "PCIP": "cortex of the intraparietal sulcus", "PCM": "medial parietal cortex (precuneus)",
    "PCS": "superior parietal cortex", "PFCCL": "centrolateral prefrontal cortex",
    "PFCDL": "dorsolateral prefrontal cortex", "PFCDM": "dorsomedial prefrontal cortex",
    "PFCM": "medial prefrontal cortex", "PFCORB": "orbital prefrontal cortex",
    "PFCPOL": "prefrontal pole", "PFCVL": "ventrolateral prefrontal cortex",
    "PHC": "parahippocampal cortex", "PMCDL": "dorsolateral premotor cortex",
    "PMCM": "medial premotor cortex", "PMCVL": "ventrolateral premotor cortex",
    "S1": "primary somatosensory cortex", "S2": "secondary somatosensory cortex",
    "TCC": "central temporal cortex", "TCI": "inferior temporal cortex",
    "TCPOL": "temporal pole", "TCS": "superior temporal cortex", "TCV": "ventral temporal cortex",
    "V1": "primary visual cortex", "V2": "secondary visual cortex",
}


def describe_region(name: str) -> str:
    """The full name of a region label, e.g. ``'lTCS'`` -> ``'left superior temporal cortex'``.

    Knows tvb76's labels (:data:`TVB76_REGION_NAMES`); any other label is returned unchanged.

    >>> describe_region("rPFCDL")
    'right dorsolateral prefrontal cortex'
    >>> describe_region("region_3")
    'region_3'
    """
    side = {"l": "left", "r": "right"}.get(name[:1])
    full = TVB76_REGION_NAMES.get(name[1:]) if side else None
    return f"{side} {full}" if full else name


def load_tvb76() -> Atlas:
    """The embedded default atlas: tvb-data's 76-region connectome on its 16k-vertex cortex.

    Uses ``connectivity_76.zip``, ``cortex_16384.zip`` and ``regionMapping_16k_76.txt`` from
    the ``tvb-data`` package (all 76 nodes own cortex vertices, so regions = nodes). Coordinates
    are rotated from tvb-data's ALS frame to RAS (see ``_als_to_ras``); the mesh normals are
    tvb-data's own.
    """
    conn = read_tvb_connectivity(_tvb_data_path("connectivity", "connectivity_76.zip"))
    cortex = _tvb_data_path("surfaceData", "cortex_16384.zip")
    vertices = _als_to_ras(_read_zip_txt(cortex, "vertices.txt"))
    triangles = _read_zip_txt(cortex, "triangles.txt", dtype=np.int64)
    normals = _als_to_ras(_read_zip_txt(cortex, "vertex_normals.txt"))
    mapping = np.loadtxt(_tvb_data_path("regionMapping", "regionMapping_16k_76.txt"),
                         dtype=np.int64)
    if len(mapping) != len(vertices):
        raise ValueError(f"tvb-data regionMapping_16k_76 has {len(mapping)} entries for a "
                         f"{len(vertices)}-vertex cortex")
    hemi = np.array([0 if n.startswith("l") else 1 for n in conn["names"]], dtype=np.int8)
    return build_atlas(
        "tvb76", vertices, triangles, mapping, conn["weights"], conn["tract_lengths"],
        region_names=conn["names"], node_names=conn["names"], normals=normals,
        metadata={
            "source": "tvb-data: connectivity_76.zip, cortex_16384.zip, regionMapping_16k_76.txt",
            "frame": "RAS mm (rotated from tvb-data's ALS frame)",
            "vertex_hemisphere": hemi[mapping],
        },
    )


# --------------------------------------------------------------------------------------------
# fsaverage994: the DeepSIF / LightBunny template (its data folder: lightbunny.datadir)
# --------------------------------------------------------------------------------------------

#: Regions of the 994-region mapping whose connectome node is not their own index: nodes 7, 325,
#: 921 and 949 of connectivity_998 have no fsaverage5 vertex, and the original pipeline copies
#: the activity of nodes 994, 997, 996, 995 into those regions (verified: with this remap the
#: region centroids lie 1.4-3.4 mm from the node centres, against 22-78 mm without it).
FSAVERAGE994_REMAP = {7: 994, 325: 997, 921: 996, 949: 995}

#: Regions whose connectivity_998 name carries the wrong hemisphere prefix: every vertex of
#: regions 797 (``lIP``) and 958 (``lMT``) lies in the right hemisphere (and DeepSIF's own
#: ``rh.nmm_994.annot`` lists both in the right hemisphere). :func:`load_fsaverage994` derives
#: the corrections from the vertices (it does not use this table) and records them in
#: ``metadata['renamed_regions']`` (index -> [connectome name, corrected name]); node names
#: (``node_names``) keep the connectome's spelling. Checked in ``tests/test_atlas.py``.
FSAVERAGE994_RENAMED = {797: ("lIP_797", "rIP_797"), 958: ("lMT_958", "rMT_958")}


def load_fsaverage994(data_dir=None) -> Atlas:
    """The 994-region fsaverage5 template of the published DeepSIF / LightBunny models.

    The pial cortex comes from nilearn's bundled fsaverage5 (bit-identical to DeepSIF's
    ``fs_cortex_20k.mat``: left hemisphere first, 10242 vertices each); the region mapping from
    ``fs_cortex_20k_region_mapping.mat`` and the connectome from ``connectivity_998.zip`` in the
    data folder, or, where the folder lacks them, from the copies vendored in the package
    (:data:`VENDORED_DIR`, identical files checked by sha256). Regions are 0..993;
    :data:`FSAVERAGE994_REMAP` gives the four regions whose simulation node is not their own
    index. The seed's neighbour lists (``nbs``) are kept as
    ``metadata['seed_adjacency']``; they differ from the mesh-edge ``adjacency`` in about 1,200
    of 5,954 pairs. ``metadata['inflated_centres']`` are the region centres on the inflated
    cortex (DeepSIF's ``fs_cortex_20k_inflated.mat`` ``centre``), the seed's patch growth
    directions (:func:`lightbunny.sources.growth_centres`).
    """
    import scipy.io as sio
    from nilearn import datasets, surface

    try:
        root = check_data_dir(data_dir)
    except FileNotFoundError:
        root = check_data_dir(VENDORED_DIR, verify=True)
        logger.info("fsaverage994: using the files vendored in the package (%s)", root)
    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    left, right = (surface.load_surf_mesh(fs[f"pial_{h}"]) for h in ("left", "right"))
    n_left = len(left.coordinates)
    vertices = np.vstack([left.coordinates, right.coordinates]).astype(np.float64)
    triangles = np.vstack([left.faces, right.faces + n_left]).astype(np.int64)
    rm = sio.loadmat(root / "fs_cortex_20k_region_mapping.mat")
    mapping = rm["rm"].ravel().astype(np.int64)
    if len(mapping) != len(vertices):
        raise ValueError(f"{root / 'fs_cortex_20k_region_mapping.mat'} maps {len(mapping)} "
                         f"vertices; the fsaverage5 cortex has {len(vertices)}")
    n_regions = int(mapping.max()) + 1
    seed_adj = np.zeros((n_regions, n_regions), dtype=bool)
    for k, nb in enumerate(rm["nbs"].ravel()):
        seed_adj[k, np.asarray(nb).ravel().astype(np.int64) - 1] = True  # MATLAB 1-based
    conn = read_tvb_connectivity(root / "connectivity_998.zip")
    region_to_node = np.arange(n_regions)
    for region, node in FSAVERAGE994_REMAP.items():
        region_to_node[region] = node
    hemi = np.r_[np.zeros(n_left, np.int8), np.ones(len(right.coordinates), np.int8)]
    # region centres on the inflated cortex (nilearn's fsaverage5 inflated mesh is DeepSIF's
    # fs_cortex_20k_inflated.mat 'pos', and the mean of each region's vertices on it is that
    # file's 'centre', both checked to 0.0): the original grows patches in their directions
    inflated = np.vstack([surface.load_surf_mesh(fs[f"infl_{h}"]).coordinates
                          for h in ("left", "right")]).astype(np.float64)
    inflated_centres = np.zeros((int(mapping.max()) + 1, 3))
    np.add.at(inflated_centres, mapping, inflated)
    inflated_centres /= np.bincount(mapping, minlength=len(inflated_centres))[:, None]
    names = [f"{conn['names'][n]}_{k}" for k, n in enumerate(region_to_node)]
    renamed = {}
    for r, name in enumerate(names):  # see FSAVERAGE994_RENAMED
        side = np.unique(hemi[mapping == r])
        if len(side) == 1 and name[:1] in "lr" and "lr".index(name[0]) != side[0]:
            renamed[r] = [name, "lr"[side[0]] + name[1:]]
            names[r] = renamed[r][1]
    if renamed:
        logger.debug("fsaverage994: hemisphere prefix corrected for %s", renamed)
    return build_atlas(
        "fsaverage994", vertices, triangles, mapping, conn["weights"], conn["tract_lengths"],
        region_to_node=region_to_node,
        region_names=names,
        node_names=conn["names"],
        metadata={
            "source": f"nilearn fsaverage5 pial + DeepSIF anatomy in {root}",
            "frame": "RAS mm (fsaverage surface RAS, approximately MNI305)",
            "vertex_hemisphere": hemi,
            "seed_adjacency": seed_adj,
            "inflated_centres": inflated_centres,
            "data_dir": str(root),
            "renamed_regions": renamed,
        },
    )


_LOADERS = {"tvb76": lambda data_dir: load_tvb76(), "fsaverage994": load_fsaverage994}
_CACHE: dict = {}


def load_atlas(name: str = "tvb76", data_dir=None) -> Atlas:
    """Load an atlas by name (cached per process).

    Parameters
    ----------
    name : {'tvb76', 'fsaverage994'}
    data_dir : path, optional
        Folder of the fsaverage994 files (see :func:`resolve_data_dir`); unused for tvb76.
    """
    if isinstance(name, Atlas):
        return name
    check_option("atlas", name, ATLAS_NAMES)
    key = (name, str(resolve_data_dir(data_dir)) if name == "fsaverage994" else None)
    if key not in _CACHE:
        _CACHE[key] = _LOADERS[name](data_dir)
    return _CACHE[key]
