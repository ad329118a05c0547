"""Synthetic sources: patches grown over the region graph, with magnitude decaying with distance.

This module replaces the seed's ``forward/generate_sythetic_source.m`` and the pickled metadata
of ``prep_metadata.ipynb`` (indices are 0-based here). The model is the seed's:

1. **Candidate patches** (:func:`grow_patches`), over a region graph (by default regions sharing
   a mesh edge; the seed's neighbour lists ``nbs`` are ``atlas.metadata['seed_adjacency']`` on
   fsaverage994). For a centre region ``c``:

   * the first layer is ``c``'s neighbours;
   * the *growth directions* are the unit vectors from ``c``'s centre to its first-layer
     neighbours' centres, the centres taken on the inflated cortex where the atlas has one, as
     the seed (:func:`growth_centres`); the half of them (rounded up) closest in angle to the
     one towards the lowest-numbered neighbour are used, that one included;
   * for each growth direction ``v``, the second-layer candidates (neighbours of the first
     layer outside it and ``c``) are each kept with probability ``ratio * a_n + bias``, where
     ``a = |u_r . v|`` (``u_r`` the unit vector from ``c``'s centre to candidate ``r``'s) and
     ``a_n = (a - min a) / (max a - min a)`` over the candidates; 3-layer patches then take the
     neighbours of the kept second-layer regions outside ``c``, the first layer and the kept
     second layer (second-layer regions not kept can come back) and select them the same way.
     2-layer patches use ``bias = 0`` for the second layer; 3-layer patches ``0.1`` for the
     second and ``-0.15`` for the third (``ratio = 1``, the seed's values);
   * one clean-up pass (the seed's ``smooth_region``): each region next to the patch joins when
     all but at most one of its neighbours are inside; then each region of the patch (not the
     joined ones) with exactly one neighbour inside, joined ones counted, is removed. A region
     with no neighbour inside stays (possible only with an asymmetric graph);
   * ``n_variants`` (5) variants per growth direction, for 2-layer and for 3-layer patches.

   The clean-up can remove a first-layer region (one with a single neighbour inside): measured
   with seed 0, never on fsaverage994's mesh graph or the 30-region synthetic test atlas; with
   the seed's lists, in 99 of 33,990 candidates. With a symmetric graph every patch is
   connected: each layer touches the one before, joined regions touch the patch, and a region
   with one neighbour inside lies on no path between two others. The seed's lists are not
   symmetric (212 of their 6,304 entries lack the reverse one); the last step here, keeping
   the regions reachable from ``c``, then removes regions that the seed keeps (2 of 33,990
   candidates, seed 0).

2. **Samples** (:func:`make_sources`), the seed's structure: ``n_iter`` variations per centre
   region, sample ``kk * n_regions + c`` has region ``c`` as the centre of its first source
   (training: the ``kk``-th candidate of ``c`` while there are enough, else a random one); the
   other ``n_sources - 1`` centres come from random permutations of the regions (one per
   iteration and extra source), each with a random candidate patch.

3. **Magnitude** (:func:`decay_weights`): ``exp(-d**2 / (2 sigma**2))`` with ``d`` the distance
   (mm) between region centres and ``sigma = h / sqrt(2 ln 2) = 0.8493 h``, so the weight is 1 at
   the centre and 1/2 at the half-magnitude distance ``h``. The seed draws one integer ``h`` in
   40-60 mm (``randi``) per dataset; here ``h`` is real and drawn per sample by default
   (``half_distance_per``).

Decisions where the MATLAB code is ambiguous or degenerate
----------------------------------------------------------
* When all candidates of a layer are equally aligned (``max a == min a``, e.g. a single
  candidate) the seed divides by zero and keeps none; here they count as fully aligned
  (kept with probability ``ratio + bias``).
* The centre is never removed by the clean-up (the seed removes it when it has one neighbour;
  no fsaverage994 region has fewer than two), and only the regions reachable from the centre
  are kept (see above).
* A region without neighbours gives the single candidate patch ``[c]``.
* Distances: ``d`` is the Euclidean distance between the atlas's (pial) region centres. The
  seed reads a matrix ``all_dis`` that its script does not load; how it was made is not known
  here.
* With ``n_sources >= 3`` the seed overwrites its first permutation for the third source with
  ``1:994`` (``n_iter_list(n_iter+1,:) = 1:994``), so in its first iteration the third source
  has the first one's centre; here every extra source uses its own permutations.
* The seed repeats every sample 4 times for its 4 sensor SNR levels; here the SNR is drawn per
  sample by the dataset instead, so a file holds each configuration once.
* The seed grows candidates with MATLAB's global random state; here candidates of centre ``c``
  derive from ``(seed, c)`` and everything else from ``(seed, split)``.

The sources file (HDF5)
-----------------------
One self-describing file, no pickles: attributes ``format`` (``lightbunny-sources``),
``format_version`` and ``meta`` (:func:`lightbunny.utils.write_h5_attrs`), a JSON dict of
``atlas_name``, ``n_regions``, ``split``, ``seed``, ``n_iter``, ``n_sources``, ``n_variants``,
``growth_directions``, ``half_distance_range`` (mm), ``half_distance_per``, ``versions``, ``created``, ...; datasets

* ``centres`` : (n_samples, n_sources) int64 — centre region of each source;
* ``offsets`` : (n_samples * n_sources + 1,) int64 — patch ``(i, k)`` is
  ``regions[offsets[i * n_sources + k]:offsets[i * n_sources + k + 1]]``;
* ``regions`` : (n_entries,) int64 — ragged patch regions, centre first;
* ``weights`` : (n_entries,) float32 — decay weight of each patch region (1 at the centre);
* ``half_distance`` : (n_samples,) float32, mm;
* ``n_layers`` : (n_samples, n_sources) int8 — 2 or 3 (0 for a patch given by hand).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._logging import logger
from .utils import atomic_path, check_option, read_only, versions, write_h5_attrs

SOURCES_FORMAT = "lightbunny-sources"
#: version 1: one attribute per parameter (lightbunny 0.1); 2: one JSON ``meta`` attribute
#: (:func:`lightbunny.utils.write_h5_attrs`)
SOURCES_FORMAT_VERSION = 2
SPLITS = ("train", "val", "test")
SIGMA_PER_HALF_DISTANCE = 1.0 / math.sqrt(2.0 * math.log(2.0))  # 0.8493, the seed's constant
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}

# (ratio, bias) of the seed's get_region_with_dir calls
_LAYER2_ONLY = ((1.0, 0.0),)
_LAYER3 = ((1.0, 0.1), (1.0, -0.15))


# ============================================================================================
# Decay
# ============================================================================================


def decay_weights(distances, half_distance):
    """Magnitude of a patch region relative to the patch centre.

    ``w = exp(-d**2 / (2 * sigma**2))`` with ``sigma = half_distance / sqrt(2 ln 2)``
    (the seed's ``0.8493 * h``), so ``w = 1`` at ``d = 0`` and ``w = 0.5`` at
    ``d = half_distance``.

    Parameters
    ----------
    distances : array_like, mm
        Distances from the patch centre.
    half_distance : float or array_like, mm
        Distance at which the magnitude falls to half (broadcast against ``distances``).

    Returns
    -------
    weights : ndarray, same shape as ``distances``, in (0, 1]

    Examples
    --------
    >>> decay_weights([0.0, 50.0], 50.0).round(6).tolist()
    [1.0, 0.5]
    """
    d = np.asarray(distances, dtype=np.float64)
    h = np.asarray(half_distance, dtype=np.float64)
    if np.any(h <= 0):
        raise ValueError(f"half_distance must be positive (mm), got {half_distance!r}.")
    sigma = SIGMA_PER_HALF_DISTANCE * h
    return np.exp(-(d**2) / (2.0 * sigma**2))


# ============================================================================================
# Patch growing
# ============================================================================================


def _neighbour_lists(adjacency) -> list:
    adjacency = np.asarray(adjacency, dtype=bool)
    return [np.flatnonzero(row) for row in adjacency]


def _next_layer(nbs, layer, exclude_mask):
    """Sorted regions adjacent to ``layer`` and not in ``exclude_mask``."""
    if len(layer) == 0:
        return np.zeros(0, dtype=np.int64)
    cand = np.unique(np.concatenate([nbs[r] for r in layer]))
    return cand[~exclude_mask[cand]]


def _select_by_direction(rng, direction, centre_pos, cand_pos, ratio, bias):
    """Boolean mask: keep each candidate with probability ``ratio * aligned + bias``."""
    if len(cand_pos) == 0:
        return np.zeros(0, dtype=bool)
    u = cand_pos - centre_pos
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    u = np.divide(u, norm, out=np.zeros_like(u), where=norm > 0)
    a = np.abs(u @ direction)
    span = a.max() - a.min()
    a_n = (a - a.min()) / span if span > 0 else np.ones_like(a)
    return rng.random(len(a)) < ratio * a_n + bias


def _clean_patch(nbs, patch, centre, n_regions):
    """Fill holes, drop dangling regions, keep the part connected to the centre (order kept)."""
    inside = np.zeros(n_regions, dtype=bool)
    inside[patch] = True
    outside_nb = _next_layer(nbs, patch, inside)
    add = [r for r in outside_nb if inside[nbs[r]].sum() > len(nbs[r]) - 2]
    grown = inside.copy()
    grown[add] = True
    remove = {r for r in patch if r != centre and grown[nbs[r]].sum() == 1}
    final = [r for r in list(patch) + add if r not in remove]
    # keep the component of the centre
    keep = np.zeros(n_regions, dtype=bool)
    member = np.zeros(n_regions, dtype=bool)
    member[final] = True
    keep[centre] = True
    stack = [centre]
    while stack:
        r = stack.pop()
        for q in nbs[r]:
            if member[q] and not keep[q]:
                keep[q] = True
                stack.append(q)
    return np.array([r for r in final if keep[r]], dtype=np.int64)


def _growth_directions_of(centres, region, nb1):
    """Unit vectors from ``region`` to its neighbours ``nb1`` (sorted), and the indices into
    ``nb1`` of the half (rounded up) closest in angle to the first, in order of angle."""
    v0 = centres[nb1] - centres[region]
    norm = np.linalg.norm(v0, axis=1, keepdims=True)
    v0 = np.divide(v0, norm, out=np.zeros_like(v0), where=norm > 0)
    angles = np.arccos(np.clip(v0 @ v0[0], -1.0, 1.0))
    return v0, np.argsort(angles, kind="stable")[: math.ceil(len(angles) / 2)]


def grow_patches(adjacency, centres, region, *, rng=None, n_variants: int = 5,
                 n_layers=(2, 3)) -> list:
    """Candidate source patches around one centre region (the seed's region growing).

    Parameters
    ----------
    adjacency : ndarray of bool, shape (n_regions, n_regions), or list of ndarray of int
        The region graph (row ``i``: the neighbours of ``i``; need not be symmetric), or the
        sorted neighbours of each region.
    centres : ndarray, shape (n_regions, 3), mm
        Region centres that set the growth directions and alignments (:func:`growth_centres`).
    region : int
        The centre region (0-based).
    rng : numpy.random.Generator, optional
        Source of the random selections (default: a fresh unseeded one).
    n_variants : int
        Variants per growth direction and per number of layers (the seed's 5).
    n_layers : sequence of {2, 3}
        Which patch depths to grow (the seed grows both).

    Returns
    -------
    patches : list of (ndarray of int64, int)
        ``(regions, n_layers)`` for each candidate, regions with the centre first, then the
        first layer, the kept outer layers and the joined regions, less those the clean-up
        removed. Every region is reachable from the centre along ``adjacency`` (see the module
        docstring).

    Examples
    --------
    >>> from lightbunny.atlas import make_synthetic_atlas
    >>> atlas = make_synthetic_atlas(n_regions=12)
    >>> patches = grow_patches(atlas.adjacency, atlas.centres, 3,
    ...                        rng=np.random.default_rng(0))
    >>> all(p[0] == 3 for p, _ in patches)
    True
    """
    rng = np.random.default_rng() if rng is None else rng
    nbs = adjacency if isinstance(adjacency, list) else _neighbour_lists(adjacency)
    centres = np.asarray(centres, dtype=np.float64)
    n_regions = len(centres)
    region = int(region)
    for n in n_layers:
        check_option("n_layers", n, (2, 3))
    nb1 = np.asarray(nbs[region], dtype=np.int64)
    if len(nb1) == 0:
        return [(np.array([region], dtype=np.int64), 1)]
    inner = np.zeros(n_regions, dtype=bool)
    inner[region] = True
    inner[nb1] = True
    nb2 = _next_layer(nbs, nb1, inner)
    c_pos = centres[region]
    v0, directions = _growth_directions_of(centres, region, nb1)
    out = []
    for depth in n_layers:
        for _ in range(n_variants):
            for k in directions:
                v = v0[k]
                if depth == 2:
                    ((ratio, bias),) = _LAYER2_ONLY
                    sel2 = nb2[_select_by_direction(rng, v, c_pos, centres[nb2], ratio, bias)]
                    patch = np.concatenate([[region], nb1, sel2])
                else:
                    (r2, b2), (r3, b3) = _LAYER3
                    sel2 = nb2[_select_by_direction(rng, v, c_pos, centres[nb2], r2, b2)]
                    excl = inner.copy()
                    excl[sel2] = True
                    nb3 = _next_layer(nbs, sel2, excl)
                    sel3 = nb3[_select_by_direction(rng, v, c_pos, centres[nb3], r3, b3)]
                    patch = np.concatenate([[region], nb1, sel2, sel3])
                out.append((_clean_patch(nbs, patch.astype(np.int64), region, n_regions), depth))
    return out


GROWTH_DIRECTIONS = ("inflated", "pial")


def _growth_directions(atlas, directions: str | None) -> str:
    """``directions``, checked, or the atlas's default ('inflated' where it has them)."""
    if directions is None:
        return "inflated" if atlas.metadata.get("inflated_centres") is not None else "pial"
    check_option("directions", directions, GROWTH_DIRECTIONS)
    return directions


def growth_centres(atlas, directions: str | None = None) -> np.ndarray:
    """Region centres that set patch growth directions (shape (n_regions, 3), mm).

    The original (``generate_sythetic_source.m``) takes directions from the region centres on
    the *inflated* cortex (``fs_cortex_20k_inflated.mat``'s ``centre``: the mean of each
    region's inflated vertices; :func:`lightbunny.atlas.load_fsaverage994` computes the same
    from nilearn's fsaverage5 inflated mesh, ``atlas.metadata['inflated_centres']``). That is
    the default where the atlas has them (fsaverage994). ``'pial'`` uses ``atlas.centres``: on
    fsaverage994 with the seed's neighbour lists, 255 of 994 regions then have other growth
    directions and the mean candidate patch is 19.1 regions instead of 20.7, as the original
    run under Octave; with the mesh graph (the default), 234 regions, 19.4 instead of 21.0
    (seed 0, ``tests/test_sources.py``).

    Atlases without an inflated surface (``tvb76``, the synthetic ones) fall back to the pial
    centres when ``directions`` is None; asking for ``'inflated'`` there raises.

    Parameters
    ----------
    atlas : Atlas
    directions : {'inflated', 'pial'}, optional
        Default: ``'inflated'`` where the atlas has inflated centres, else ``'pial'``.
    """
    inflated = atlas.metadata.get("inflated_centres")
    directions = _growth_directions(atlas, directions)
    if directions == "pial":
        return atlas.centres
    if inflated is None:
        raise ValueError(f"atlas {atlas.name!r} has no inflated surface; use directions='pial'")
    return np.asarray(inflated, dtype=np.float64)


def candidate_patches(atlas, *, seed: int = 0, n_variants: int = 5, regions=None,
                      adjacency=None, directions: str | None = None,
                      progress: bool = True) -> dict:
    """Candidate patches of every (or the given) centre region.

    Candidates of region ``c`` derive from ``(seed, c)`` only, so they do not depend on which
    other regions are grown.

    Parameters
    ----------
    atlas : Atlas
    seed : int
    n_variants : int
    regions : sequence of int, optional
        Centre regions (default: all).
    adjacency : ndarray of bool, shape (n_regions, n_regions), optional
        Region graph to grow over (default: ``atlas.adjacency``, regions sharing a mesh edge).
        ``atlas.metadata['seed_adjacency']`` (fsaverage994) grows over the seed's ``nbs``
        lists, as the original.
    directions : {'inflated', 'pial'}, optional
        Which region centres set the growth directions (:func:`growth_centres`; default
        inflated where the atlas has inflated centres, as the original; pial otherwise).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    candidates : dict of int -> list of (ndarray of int64, int)
        As returned by :func:`grow_patches`.
    """
    from tqdm.auto import tqdm

    adjacency = atlas.adjacency if adjacency is None else np.asarray(adjacency, dtype=bool)
    if adjacency.shape != (atlas.n_regions, atlas.n_regions):
        raise ValueError(f"adjacency must be ({atlas.n_regions}, {atlas.n_regions}) for atlas "
                         f"{atlas.name!r}, got {adjacency.shape}.")
    nbs = _neighbour_lists(adjacency)
    centres = growth_centres(atlas, directions)
    regions = range(atlas.n_regions) if regions is None else [int(r) for r in regions]
    out = {}
    for r in tqdm(regions, desc="growing patches", disable=not progress, leave=False):
        rng = np.random.default_rng([int(seed), 7, r])
        out[r] = grow_patches(nbs, centres, r, rng=rng, n_variants=n_variants)
    return out


# ============================================================================================
# The sources object and file
# ============================================================================================


class Sources:
    """Source configurations of a synthetic dataset: per sample, ``n_sources`` weighted patches.

    Build one with :func:`make_sources`, :meth:`from_patches` or :meth:`load`.

    Attributes
    ----------
    centres : ndarray of int64, shape (n_samples, n_sources), read-only
    offsets : ndarray of int64, shape (n_samples * n_sources + 1,), read-only
    regions : ndarray of int64, shape (n_entries,), read-only
    weights : ndarray of float32, shape (n_entries,), read-only
        Decay weight of each patch region (1 at the centre).
    half_distance : ndarray of float32, shape (n_samples,), mm, read-only
    n_layers : ndarray of int8, shape (n_samples, n_sources), read-only
    attrs : dict
        ``atlas_name``, ``n_regions``, ``split``, ``seed`` and every generation parameter.
    """

    def __init__(self, centres, offsets, regions, weights, half_distance, n_layers, attrs):
        self.centres = read_only(np.asarray(centres, dtype=np.int64))
        self.offsets = read_only(np.asarray(offsets, dtype=np.int64))
        self.regions = read_only(np.asarray(regions, dtype=np.int64))
        self.weights = read_only(np.asarray(weights, dtype=np.float32))
        self.half_distance = read_only(np.asarray(half_distance, dtype=np.float32))
        self.n_layers = read_only(np.asarray(n_layers, dtype=np.int8))
        self.attrs = dict(attrs)
        n_samples, n_sources = self.centres.shape if self.centres.ndim == 2 else (0, 0)
        if self.centres.ndim != 2 or self.offsets.shape != (n_samples * n_sources + 1,):
            raise ValueError(f"centres must be (n_samples, n_sources) and offsets "
                             f"(n_samples * n_sources + 1,); got {self.centres.shape} and "
                             f"{self.offsets.shape}.")
        if self.regions.shape != self.weights.shape or self.offsets[-1] != len(self.regions):
            raise ValueError(f"regions ({self.regions.shape}) and weights ({self.weights.shape}) "
                             f"must both have offsets[-1] = {self.offsets[-1]} entries.")
        for key in ("atlas_name", "n_regions", "split"):
            if key not in self.attrs:
                raise ValueError(f"Sources attrs must contain {key!r}.")
        n_regions = int(self.attrs["n_regions"])
        if len(self.regions) and (self.regions.min() < 0 or self.regions.max() >= n_regions):
            raise ValueError(f"patch regions must lie in 0..{n_regions - 1} (n_regions of atlas "
                             f"{self.attrs['atlas_name']!r}).")
        starts = self.offsets[:-1]
        if np.any(np.diff(self.offsets) < 1) or not np.array_equal(self.regions[starts],
                                                                   self.centres.ravel()):
            raise ValueError("every patch must be non-empty and start with its centre region.")

    # ------------------------------------------------------------------ basic properties
    @property
    def atlas_name(self) -> str:
        return str(self.attrs["atlas_name"])

    @property
    def n_regions(self) -> int:
        return int(self.attrs["n_regions"])

    @property
    def split(self) -> str:
        return str(self.attrs["split"])

    @property
    def n_samples(self) -> int:
        return int(self.centres.shape[0])

    @property
    def n_sources(self) -> int:
        return int(self.centres.shape[1])

    def __len__(self) -> int:
        return self.n_samples

    def patch(self, index: int, source: int = 0):
        """Regions and decay weights of source ``source`` of sample ``index``.

        Returns
        -------
        regions : ndarray of int64, shape (n_patch,), read-only
            Centre first.
        weights : ndarray of float32, shape (n_patch,), read-only
        """
        j = int(index) * self.n_sources + int(source)
        a, b = self.offsets[j], self.offsets[j + 1]
        return self.regions[a:b], self.weights[a:b]

    def patches(self, index: int) -> list:
        """``[(regions, weights), ...]`` of every source of sample ``index``."""
        return [self.patch(index, k) for k in range(self.n_sources)]

    def patch_sizes(self) -> np.ndarray:
        """Number of regions of every patch, shape (n_samples, n_sources)."""
        return np.diff(self.offsets).reshape(self.n_samples, self.n_sources)

    def summary(self) -> dict:
        sizes = self.patch_sizes()
        return {
            "atlas_name": self.atlas_name, "split": self.split, "n_samples": self.n_samples,
            "n_sources": self.n_sources,
            "patch_size": {"min": int(sizes.min()), "median": float(np.median(sizes)),
                           "max": int(sizes.max())} if sizes.size else {},
            "half_distance_mm": {"min": float(self.half_distance.min()),
                                 "max": float(self.half_distance.max())}
            if self.n_samples else {},
            "n_centres": int(len(np.unique(self.centres))),
        }

    def __repr__(self) -> str:
        return (f"Sources(atlas={self.atlas_name!r}, split={self.split!r}, "
                f"n_samples={self.n_samples}, n_sources={self.n_sources})")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_patches(cls, patches, *, atlas, half_distance=50.0, split="train",
                     attrs=None) -> "Sources":
        """Sources from explicit patches (tests, hand-made configurations).

        Parameters
        ----------
        patches : list of list of array_like of int
            ``patches[i][k]`` are the regions of source ``k`` of sample ``i``, centre first;
            every sample must have the same number of sources.
        atlas : Atlas
            Gives the distances for the decay weights, the atlas name and region count.
        half_distance : float or array_like of shape (n_samples,), mm
        split : {'train', 'val', 'test'}
        attrs : dict, optional
            Extra attributes.
        """
        check_option("split", split, SPLITS)
        n_samples = len(patches)
        n_sources = {len(p) for p in patches}
        if len(n_sources) != 1:
            raise ValueError(f"every sample needs the same number of sources, got {n_sources}.")
        n_sources = n_sources.pop()
        h = np.broadcast_to(np.asarray(half_distance, dtype=np.float64), (n_samples,))
        flat, offsets, weights, centres = [], [0], [], []
        for i, sample in enumerate(patches):
            row = []
            for regs in sample:
                regs = np.asarray(regs, dtype=np.int64).ravel()
                flat.append(regs)
                weights.append(decay_weights(atlas.distances[regs[0], regs], h[i]))
                offsets.append(offsets[-1] + len(regs))
                row.append(regs[0])
            centres.append(row)
        base = {"atlas_name": atlas.name, "n_regions": atlas.n_regions, "split": split,
                "seed": -1, "n_iter": 0, "n_sources": n_sources, "n_variants": 0,
                "half_distance_range": [float(h.min()), float(h.max())] if n_samples else [],
                "half_distance_per": "given", "origin": "from_patches"}
        base.update(attrs or {})
        return cls(np.array(centres, dtype=np.int64).reshape(n_samples, n_sources),
                   np.array(offsets), np.concatenate(flat) if flat else np.zeros(0, np.int64),
                   np.concatenate(weights) if weights else np.zeros(0), h,
                   np.zeros((n_samples, n_sources), np.int8), base)

    def save(self, path) -> Path:
        """Write the sources file (HDF5, atomically). Returns the path."""
        import h5py

        path = Path(path)
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                write_h5_attrs(f, SOURCES_FORMAT, SOURCES_FORMAT_VERSION, self.attrs)
                for name in ("centres", "offsets", "regions", "weights", "half_distance",
                             "n_layers"):
                    data = getattr(self, name)
                    f.create_dataset(name, data=data,
                                     compression="gzip" if data.size > 4096 else None)
        logger.info("wrote %s (%d samples x %d sources, atlas %s, split %s)", path,
                    self.n_samples, self.n_sources, self.atlas_name, self.split)
        return path

    @classmethod
    def load(cls, path) -> "Sources":
        """Read a sources file written by :meth:`save` (also version 1, whose parameters are
        attributes of their own, JSON-encoded where a ``KEY__json`` attribute says so)."""
        from .utils import open_h5_format, read_h5_attrs

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"sources file {path} does not exist; create it with "
                                    "`lightbunny sources --out PATH`.")
        with open_h5_format(path, SOURCES_FORMAT, what="sources file",
                            max_version=SOURCES_FORMAT_VERSION) as f:
            attrs = read_h5_attrs(f)
            arrays = {k: f[k][...] for k in ("centres", "offsets", "regions", "weights",
                                             "half_distance", "n_layers")}
        return cls(attrs=attrs, **arrays)


def load_sources(path) -> Sources:
    """Read a sources file (see :meth:`Sources.load`)."""
    return Sources.load(path)


# ============================================================================================
# Dataset-level generation
# ============================================================================================


def make_sources(atlas, *, split: str = "train", n_iter: int | None = None, n_sources: int = 2,
                 seed: int = 0, half_distance=(40.0, 60.0), half_distance_per: str = "sample",
                 n_variants: int = 5, candidates: dict | None = None,
                 directions: str | None = None, progress: bool = True) -> Sources:
    """Source configurations of one split, with the seed's structure.

    Sample ``kk * n_regions + c`` (``kk < n_iter``) has region ``c`` as the centre of its first
    source: in the training split its patch is the ``kk``-th candidate of ``c`` while ``c`` has
    that many, a random candidate otherwise (validation and test: always random). The other
    ``n_sources - 1`` centres come from one random permutation of the regions per iteration and
    per extra source, each with a random candidate. The half-magnitude distance ``h`` is drawn
    uniformly in ``half_distance`` per sample (or once, ``half_distance_per="dataset"``, as the
    seed does).

    Parameters
    ----------
    atlas : Atlas
    split : {'train', 'val', 'test'}
    n_iter : int, optional
        Variations per centre region (default: 48 for train, 3 otherwise, as the seed).
    n_sources : int
        Sources per sample (default 2).
    seed : int
        Patch growing derives from ``(seed, centre)``, the sampling from ``(seed, split)``.
    half_distance : float or (float, float), mm
        A fixed ``h`` or the range it is drawn from (seed: 40-60 mm).
    half_distance_per : {'sample', 'dataset'}
    n_variants : int
        Variants per growth direction (seed: 5).
    candidates : dict, optional
        Precomputed :func:`candidate_patches` (for the same atlas), to share them across splits.
    directions : {'inflated', 'pial'}, optional
        Growth directions (:func:`growth_centres`: inflated where the atlas has inflated
        centres, pial otherwise); ignored with ``candidates``. Recorded in the attribute
        ``growth_directions``.
    progress : bool

    Returns
    -------
    sources : Sources
        ``n_iter * n_regions`` samples.
    """
    check_option("split", split, SPLITS)
    check_option("half_distance_per", half_distance_per, ("sample", "dataset"))
    if n_iter is None:
        n_iter = 48 if split == "train" else 3
    if n_iter < 1 or n_sources < 1:
        raise ValueError(f"n_iter ({n_iter}) and n_sources ({n_sources}) must be >= 1.")
    h_range = np.atleast_1d(np.asarray(half_distance, dtype=np.float64))
    if h_range.size == 1:
        h_range = np.repeat(h_range, 2)
    if h_range.size != 2 or h_range[0] <= 0 or h_range[1] < h_range[0]:
        raise ValueError(f"half_distance must be a positive value or a (low, high) range in mm, "
                         f"got {half_distance!r}.")
    n_regions = atlas.n_regions
    candidates_given = candidates is not None
    if candidates is None:
        candidates = candidate_patches(atlas, seed=seed, n_variants=n_variants,
                                       directions=directions, progress=progress)
    missing = [r for r in range(n_regions) if not candidates.get(r)]
    if missing:
        raise ValueError(f"candidates lack regions {missing[:10]} of atlas {atlas.name!r}.")
    rng = np.random.default_rng([int(seed), 11, _SPLIT_CODE[split]])
    n_samples = n_iter * n_regions
    centres = np.empty((n_samples, n_sources), dtype=np.int64)
    centres[:, 0] = np.tile(np.arange(n_regions), n_iter)
    for k in range(1, n_sources):
        centres[:, k] = np.concatenate([rng.permutation(n_regions) for _ in range(n_iter)])
    if half_distance_per == "dataset":
        h = np.full(n_samples, rng.uniform(h_range[0], h_range[1]))
    else:
        h = rng.uniform(h_range[0], h_range[1], n_samples)
    pick = np.empty((n_samples, n_sources), dtype=np.int64)
    n_cand = np.array([len(candidates[r]) for r in range(n_regions)])
    u = rng.random((n_samples, n_sources))
    pick[:] = np.floor(u * n_cand[centres]).astype(np.int64)
    if split == "train":
        kk = np.repeat(np.arange(n_iter), n_regions)
        use_kk = kk < n_cand[centres[:, 0]]
        pick[use_kk, 0] = kk[use_kk]
    flat, weights, offsets, layers = [], [], np.zeros(n_samples * n_sources + 1, np.int64), []
    for j, (c, p) in enumerate(zip(centres.ravel(), pick.ravel())):
        regs, depth = candidates[int(c)][int(p)]
        flat.append(regs)
        weights.append(decay_weights(atlas.distances[c, regs], h[j // n_sources]))
        offsets[j + 1] = offsets[j] + len(regs)
        layers.append(depth)
    attrs = {
        "atlas_name": atlas.name, "n_regions": n_regions, "split": split, "seed": int(seed),
        "n_iter": int(n_iter), "n_sources": int(n_sources), "n_variants": int(n_variants),
        "growth_directions": ("precomputed candidates" if candidates_given
                              else _growth_directions(atlas, directions)),
        "half_distance_range": [float(h_range[0]), float(h_range[1])],
        "half_distance_per": half_distance_per,
        "sigma_per_half_distance": SIGMA_PER_HALF_DISTANCE,
        "growth": {"layer2_only": _LAYER2_ONLY, "layer3": _LAYER3},
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "origin": "lightbunny.sources.make_sources",
    }
    sources = Sources(centres, offsets, np.concatenate(flat), np.concatenate(weights), h,
                      np.array(layers, np.int8).reshape(n_samples, n_sources), attrs)
    logger.info("made %s", sources)
    return sources


# ============================================================================================
# Plotting
# ============================================================================================


def patch_vertex_weights(atlas, sources: Sources, index: int) -> np.ndarray:
    """Patch weight of every cortex vertex for sample ``index`` (sources summed).

    Returns
    -------
    weights : ndarray, shape (n_vertices,)
        The decay weight of each vertex's region (0 outside every patch).
    """
    region_w = np.zeros(atlas.n_regions)
    for regs, w in sources.patches(index):
        np.add.at(region_w, regs, w)
    return region_w[atlas.vertex_region]


def plot_patches(atlas, sources: Sources, indices=(0,), *, cmap: str = "hot_r",
                 point_size: float = 2.0, fig=None):
    """3D scatter of the cortex vertices coloured by patch weight, one panel per sample.

    Parameters
    ----------
    atlas : Atlas
        The atlas the sources were made for.
    sources : Sources
    indices : sequence of int
        Samples to show.
    cmap : str
        Matplotlib colour map of the weight (0 outside the patches, 1 at a centre).
    point_size : float
    fig : matplotlib Figure, optional

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if sources.atlas_name != atlas.name or sources.n_regions != atlas.n_regions:
        raise ValueError(f"sources made for atlas {sources.atlas_name!r} "
                         f"({sources.n_regions} regions) cannot be drawn on atlas {atlas.name!r} "
                         f"({atlas.n_regions} regions).")
    indices = [int(i) for i in np.atleast_1d(indices)]
    if fig is None:
        fig = plt.figure(figsize=(4 * len(indices), 4))
    v = atlas.vertices
    for n, i in enumerate(indices):
        ax = fig.add_subplot(1, len(indices), n + 1, projection="3d")
        w = patch_vertex_weights(atlas, sources, i)
        order = np.argsort(w)  # patches drawn last, on top
        sc = ax.scatter(v[order, 0], v[order, 1], v[order, 2], c=w[order], cmap=cmap,
                        vmin=0.0, vmax=max(1.0, float(w.max())), s=point_size, linewidths=0)
        cs = ", ".join(str(int(c)) for c in sources.centres[i])
        ax.set_title(f"sample {i}: centres {cs}\nh = {float(sources.half_distance[i]):.0f} mm",
                     fontsize=9)
        ax.set_axis_off()
        ax.set_box_aspect(np.ptp(v, axis=0))
    fig.colorbar(sc, ax=fig.axes, shrink=0.6, label="patch weight")
    return fig
