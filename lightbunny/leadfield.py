"""Region leadfields for any EEG montage, computed with MNE from an atlas cortex.

:func:`make_leadfield` places the montage's electrodes on the atlas's head, builds an MNE
forward model with one dipole at every cortex vertex (oriented along the cortical normal by
default, or the seed's free-orientation x+y+z sum), and sums the vertex columns of each region:

    gain[c, r] = sum_{v in region r} g[c, v]            (V per A*m, unreferenced)

Heads
-----
``tvb76``
    tvb-data's ``scalp_1082`` surface. tvb-data's 65 EEG sensors (``eeg_brainstorm_65``) sit on
    it after a shift of (-12.7, -0.2, -60.9) mm in tvb-data's ALS frame (measured: median 4.2 mm
    from the nearest scalp vertex after the shift, 25 mm before). A standard montage is mapped
    onto this head with the similarity transform (scale, rotation, translation) that best maps
    its positions of the channels it shares with those 65 sensors, then projected radially onto
    the scalp.
``fsaverage994`` and other atlases in fsaverage space
    MNE's standard montages are already in fsaverage MRI coordinates (MNE >= 1.9; older "head"
    positions are moved with MNE's bundled ``fsaverage-trans.fif``); head surface
    ``fsaverage-head.fif``.

Head models (``head_model``)
----------------------------
``bem`` (default on fsaverage-space atlases)
    A 3-layer boundary-element model of fsaverage built offline from the surfaces MNE ships
    (see :mod:`lightbunny.headmodel` for how the missing outer skull is made), conductivities
    0.3/0.006/0.3 S/m, solved once and cached.
``sphere`` (default on tvb76 and synthetic atlases)
    MNE's 4-shell sphere model (:func:`mne.make_sphere_model`, MNE's default radii and
    conductivities) fitted by least squares to the head surface above the lowest cortex vertex.
    Cortex vertices outside the innermost shell (MNE would drop them) are pulled radially just
    inside it; how many is recorded in the leadfield's attributes (tvb76: 332 of 16,384 vertices,
    fsaverage994: about 0.3 %).
``deepsif``
    DeepSIF's published 75-channel BEM leadfield (``leadfield_75_20k.mat``), for the
    ``deepsif75`` montage on fsaverage994 only.

tvb76 has no BEM: tvb-data's 4,096-vertex skull/skin surfaces (after undoing their 90° rotation)
sit 1-2 mm apart and 3.3 % of the tvb76 cortex lies outside their inner skull.

A user's own head model enters as an ``mne.Forward`` (``forward=``, see
:func:`lightbunny.headmodel.forward_vertex_gain`).

Perturbations for head-model mismatch studies: ``jitter_mm`` moves every electrode along the
scalp by a seeded random tangential offset of that RMS size (then back onto the scalp), and
``skull_conductivity`` changes the skull's conductivity (S/m) of the sphere or BEM model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._logging import logger
from .atlas import Atlas, _als_to_ras, _read_zip_txt, _tvb_data_path
from .montage import (  # noqa: F401
    DEFAULT_MONTAGE,
    EXTRA_MONTAGES,
    PHYSIONET_64,
    TVB_SENSOR_SHIFT_ALS,
    _canonical,
    _fsaverage_trans,
    _lookup,
    _reference_montage,
    _standard_positions,
    montage_names,
    read_eeglab_locations,
    resolve_montage,
    tvb_sensors,
)
from .utils import (  # noqa: F401 (re-exported)
    OLD_NAMES,
    atomic_path,
    check_option,
    open_h5_format,
    read_h5_attrs,
    read_only,
    write_h5_attrs,
)

#: HDF5 format of :meth:`Leadfield.save` (version 1, lightbunny 0.1: attributes, no marker)
LEADFIELD_FORMAT, LEADFIELD_FORMAT_VERSION = "lightbunny-leadfield", 2

ORIENTATIONS = ("normal", "free_sum")
HEAD_MODELS = ("bem", "sphere", "deepsif")
_VERSION = 2
#: MNE's 4-shell sphere conductivities (brain, CSF, skull, scalp), S/m.
SPHERE_SIGMAS = (0.33, 1.0, 0.004, 0.33)


@dataclass(frozen=True, eq=False)
class Leadfield:
    """A region gain matrix with the channel names it belongs to.

    Parameters
    ----------
    gain : ndarray, shape (n_chans, n_regions), V / (A*m)
        Scalp potential (unreferenced) of a unit dipole at every vertex of each region.
    ch_names : tuple of str, length n_chans
    atlas_name : str
    montage : str
    head_model : str
    orientation : {'normal', 'free_sum'}
    ch_pos : ndarray, shape (n_chans, 3), mm
        Electrode positions on the atlas head (atlas frame, RAS).
    attrs : dict
        Everything else that describes how it was made.
    """

    gain: np.ndarray
    ch_names: tuple
    atlas_name: str
    montage: str
    head_model: str
    orientation: str
    ch_pos: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.gain.ndim != 2 or self.gain.shape[0] != len(self.ch_names):
            raise ValueError(f"gain has shape {self.gain.shape} for {len(self.ch_names)} channels")
        read_only(self.gain)
        read_only(self.ch_pos)

    @property
    def n_chans(self) -> int:
        return self.gain.shape[0]

    @property
    def n_regions(self) -> int:
        return self.gain.shape[1]

    def average_referenced(self) -> np.ndarray:
        """The gain re-referenced to the channel average, shape (n_chans, n_regions)."""
        return self.gain - self.gain.mean(0, keepdims=True)

    def save(self, path) -> Path:
        """Write an HDF5 file: ``gain`` and ``ch_pos`` datasets, everything else in its ``meta``
        (:func:`lightbunny.utils.write_h5_attrs`, format ``'lightbunny-leadfield'``)."""
        import h5py

        path = Path(path)
        meta = {"ch_names": list(self.ch_names), "attrs": self.attrs,
                **{k: getattr(self, k) for k in ("atlas_name", "montage", "head_model",
                                                 "orientation")},
                "units": "gain: V/(A*m), unreferenced; ch_pos: mm, atlas frame (RAS)"}
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("gain", data=self.gain)
                f.create_dataset("ch_pos", data=self.ch_pos)
                write_h5_attrs(f, LEADFIELD_FORMAT, LEADFIELD_FORMAT_VERSION, meta)
        return path

    @classmethod
    def load(cls, path) -> Leadfield:
        """Read a file written by :meth:`save` (also by lightbunny 0.1, format version 1, which
        stored each parameter as its own attribute and no format marker)."""
        with open_h5_format(path, LEADFIELD_FORMAT, what="LightBunny leadfield file",
                            max_version=LEADFIELD_FORMAT_VERSION,
                            legacy=lambda f: "gain" in f and "ch_names" in f.attrs) as f:
            try:
                meta = read_h5_attrs(f, json_keys=("ch_names", "attrs"))
                return cls(gain=f["gain"][()], ch_pos=f["ch_pos"][()],
                           ch_names=tuple(meta["ch_names"]), atlas_name=str(meta["atlas_name"]),
                           montage=str(meta["montage"]), head_model=str(meta["head_model"]),
                           orientation=str(meta["orientation"]), attrs=meta["attrs"])
            except (OSError, KeyError, ValueError) as err:
                raise ValueError(f"{path} is not a readable LightBunny leadfield file: "
                                 f"{type(err).__name__}: {err}") from None


# --------------------------------------------------------------------------------------------
# Montages
# --------------------------------------------------------------------------------------------


# Moved to lightbunny.montage (imported above, so lightbunny.leadfield.<name> keeps working).


# --------------------------------------------------------------------------------------------
# Heads and electrode placement
# --------------------------------------------------------------------------------------------


def head_surface(atlas: Atlas):
    """The head (scalp) surface of an atlas: (vertices mm, triangles, name)."""
    if atlas.name == "tvb76":
        z = _tvb_data_path("surfaceData", "scalp_1082.zip")
        return (_als_to_ras(_read_zip_txt(z, "vertices.txt")),
                _read_zip_txt(z, "triangles.txt", dtype=np.int64), "tvb-data scalp_1082")
    import mne

    surf = mne.read_bem_surfaces(Path(mne.__file__).parent / "data" / "fsaverage" /
                                 "fsaverage-head.fif", verbose=False)[0]
    return surf["rr"] * 1000.0, surf["tris"].astype(np.int64), "mne fsaverage-head"


def fit_sphere(points: np.ndarray):
    """Least-squares sphere through ``points`` (n, 3): returns (centre (3,), radius)."""
    a = np.c_[2 * points, np.ones(len(points))]
    b = (points**2).sum(1)
    sol = np.linalg.lstsq(a, b, rcond=None)[0]
    centre = sol[:3]
    return centre, float(np.sqrt(sol[3] + centre @ centre))


def _similarity(src: np.ndarray, dst: np.ndarray):
    """Scale s, rotation R, translation t minimising |s R src + t - dst|² (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ d @ vt
    scale = np.trace(np.diag(sig) @ d) / (xs**2).sum(1).mean()
    return scale, rot, mu_d - scale * rot @ mu_s


def _ray_mesh(origin: np.ndarray, dirs: np.ndarray, verts: np.ndarray, tris: np.ndarray):
    """Farthest intersection of rays ``origin + t * dir`` (t > 0) with a mesh (Möller-Trumbore).

    Rays without a hit keep NaN."""
    v0 = verts[tris[:, 0]]
    e1, e2 = verts[tris[:, 1]] - v0, verts[tris[:, 2]] - v0
    out = np.full((len(dirs), 3), np.nan)
    for i, d in enumerate(dirs):
        p = np.cross(d, e2)
        det = (e1 * p).sum(1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tv = origin - v0
        u = (tv * p).sum(1) * inv
        q = np.cross(tv, e1)
        v = (q @ d) * inv
        t = (e2 * q).sum(1) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        if hit.any():
            out[i] = origin + t[hit].max() * d
    return out


def place_electrodes(atlas: Atlas, pos: np.ndarray, names, frame: str) -> np.ndarray:
    """Electrode positions (mm, atlas frame) on the atlas's head surface.

    Parameters
    ----------
    atlas : Atlas
    pos : ndarray, shape (n_chans, 3), mm
        Positions in ``frame``.
    names : list of str
    frame : {'fsaverage', 'tvb'}

    Returns
    -------
    ndarray, shape (n_chans, 3), mm, on the head surface.
    """
    verts, tris, _ = head_surface(atlas)
    if frame == "unknown":  # fit onto MNE's 10-05 positions by the channels both have
        table = _standard_positions()
        lower = {k.lower(): k for k in table}
        common = [i for i, n in enumerate(names) if _canonical(str(n)).lower() in lower]
        if len(common) < 4:
            raise ValueError(f"Only {len(common)} channels of the montage have 10-05 names; "
                             "at least 4 are needed to place electrodes given in an unknown frame.")
        dst = np.array([table[lower[_canonical(str(names[i])).lower()]] for i in common])
        s, rot, t = _similarity(np.asarray(pos)[common], dst)
        pos, frame = (s * (rot @ np.asarray(pos).T)).T + t, "fsaverage"
    if atlas.name == "tvb76" and frame == "fsaverage":
        tvb_names, tvb_pos = tvb_sensors()
        table = _standard_positions()
        common = [n for n in tvb_names if n.lower() in {k.lower() for k in table}]
        lower = {k.lower(): k for k in table}
        src = np.array([table[lower[n.lower()]] for n in common])
        dst = np.array([tvb_pos[tvb_names.index(n)] for n in common])
        s, rot, t = _similarity(src, dst)
        pos = (s * (rot @ np.asarray(pos).T)).T + t
    elif atlas.name != "tvb76" and frame == "tvb":
        raise ValueError(f"The 'tvb65' montage belongs to the tvb76 head, not to atlas "
                         f"{atlas.name!r}.")
    centre, _ = fit_sphere(verts[verts[:, 2] > atlas.vertices[:, 2].min()])
    dirs = pos - centre
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    on_head = _ray_mesh(centre, dirs, verts, tris)
    missed = ~np.isfinite(on_head).all(1)
    on_head[missed] = np.asarray(pos)[missed]
    return on_head


# --------------------------------------------------------------------------------------------
# Forward model
# --------------------------------------------------------------------------------------------


def _default_cache_dir() -> Path:
    root = os.environ.get("LIGHTBUNNY_CACHE") or Path.home() / ".cache" / "lightbunny"
    return Path(root) / "leadfields"


def _cache_key(atlas: Atlas, names, pos, *settings) -> str:
    h = hashlib.sha256()
    for arr in (atlas.vertices, atlas.normals, atlas.vertex_region, np.asarray(pos)):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps([atlas.name, list(names), *settings, _VERSION], default=str).encode())
    return h.hexdigest()[:16]


def in_fsaverage_space(atlas: Atlas) -> bool:
    """Whether the atlas's cortex is fsaverage's (so fsaverage's BEM surfaces enclose it)."""
    return atlas.name == "fsaverage994" or "fsaverage" in str(atlas.metadata.get("frame", ""))


def default_head_model(atlas: Atlas) -> str:
    """'bem' for atlases on fsaverage, 'sphere' otherwise."""
    return "bem" if in_fsaverage_space(atlas) else "sphere"


def jitter_electrodes(atlas: Atlas, ch_pos: np.ndarray, jitter_mm: float, seed: int = 0):
    """Move electrodes along the scalp by random tangential offsets of RMS size ``jitter_mm``.

    Each electrode gets an offset drawn from an isotropic 2-D Gaussian in the plane tangent to the
    head's fitted sphere (so the RMS displacement is ``jitter_mm``), then is projected back onto
    the head surface along the ray from the sphere's centre.

    Parameters
    ----------
    atlas : Atlas
    ch_pos : ndarray, shape (n_chans, 3), mm, on the head surface
    jitter_mm : float
    seed : int

    Returns
    -------
    ndarray, shape (n_chans, 3), mm
    """
    if not np.isfinite(jitter_mm) or jitter_mm < 0:
        raise ValueError(f"jitter_mm must be a finite value >= 0, got {jitter_mm}")
    if jitter_mm == 0:
        return np.asarray(ch_pos, dtype=float).copy()
    verts, tris, _ = head_surface(atlas)
    centre, _ = fit_sphere(verts[verts[:, 2] > atlas.vertices[:, 2].min()])
    rng = np.random.default_rng(seed)
    radial = ch_pos - centre
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    step = rng.normal(0.0, jitter_mm / np.sqrt(2.0), size=ch_pos.shape)
    # the tangential part of an isotropic 3-D Gaussian is a 2-D Gaussian whose two axes have
    # variance jitter_mm**2 / 2 each: RMS displacement jitter_mm
    step -= (step * radial).sum(1, keepdims=True) * radial
    moved = ch_pos + step
    dirs = moved - centre
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    on_head = _ray_mesh(centre, dirs, verts, tris)
    missed = ~np.isfinite(on_head).all(1)
    on_head[missed] = moved[missed]
    return on_head


def make_leadfield(atlas: Atlas, montage=DEFAULT_MONTAGE, *, orientation: str = "normal",
                   head_model: str | None = None, forward=None, subjects_dir=None,
                   skull_conductivity: float | None = None, jitter_mm: float = 0.0,
                   jitter_seed: int = 0, cache_dir=None, use_cache: bool = True,
                   data_dir=None) -> Leadfield:
    """Compute the region leadfield of ``atlas`` for ``montage`` with MNE.

    Parameters
    ----------
    atlas : Atlas
    montage : str | list of str | mne.Info | mne.channels.DigMontage
        See :func:`resolve_montage`. Default: 64 channels of the 10-10 system. Ignored when
        ``forward`` is given (the forward's EEG channels, bad channels excluded, are used).
    orientation : {'normal', 'free_sum'}
        Dipoles along the cortical normal, or (the seed's choice) the sum of the x, y and z
        dipole columns.
    head_model : {'bem', 'sphere', 'deepsif'}, optional
        Default :func:`default_head_model`: the fsaverage BEM on fsaverage994, the fitted
        4-shell sphere elsewhere. ``'deepsif'`` is DeepSIF's published leadfield (``deepsif75``
        montage on fsaverage994 only). See the module docstring.
    forward : mne.Forward | path, optional
        The user's own forward model (see :func:`lightbunny.headmodel.forward_vertex_gain`);
        its dipoles are mapped to atlas vertices and summed per region.
    subjects_dir : path, optional
        For a ``forward`` on an individual FreeSurfer subject.
    skull_conductivity : float, optional
        Skull conductivity in S/m (default: 0.006 for the BEM, 0.004 for the sphere).
    jitter_mm : float
        RMS tangential displacement of the electrodes along the scalp (see
        :func:`jitter_electrodes`), seeded by ``jitter_seed``.
    cache_dir : path, optional
        Where computed leadfields are kept (default ``$LIGHTBUNNY_CACHE/leadfields`` or
        ``~/.cache/lightbunny/leadfields``); ``use_cache=False`` recomputes.
    data_dir : path, optional
        The fsaverage994 data folder (for the ``deepsif75`` montage and ``head_model='deepsif'``).

    Returns
    -------
    Leadfield
        ``gain`` of shape (n_chans, n_regions), rows in the montage's channel order.
    """
    check_option("orientation", orientation, ORIENTATIONS)
    if forward is not None:
        if head_model is not None or jitter_mm or skull_conductivity is not None:
            raise ValueError("forward= brings its own head model and electrodes: do not combine "
                             "it with head_model, jitter_mm or skull_conductivity")
        return _leadfield_from_forward(atlas, forward, orientation, subjects_dir)
    head_model = _check_head_model(atlas, head_model, skull_conductivity)
    label, names, pos, frame = resolve_montage(montage, data_dir=data_dir)
    if head_model == "deepsif":
        if jitter_mm or skull_conductivity is not None:
            raise ValueError("head_model='deepsif' is a published matrix: electrode jitter and "
                             "conductivity cannot be changed")
        return _deepsif_leadfield(atlas, label, names, pos, frame, orientation, data_dir)
    ch_pos = place_electrodes(atlas, pos, names, frame)
    ch_pos = jitter_electrodes(atlas, ch_pos, float(jitter_mm), jitter_seed)
    path = _cache_path(cache_dir, atlas, label, names, ch_pos, head_model, orientation,
                       skull_conductivity, jitter_mm, jitter_seed)
    lf = _load_cached(path) if use_cache else None
    if lf is not None:
        return lf
    if head_model == "bem":
        vertex_gain, info = _bem_vertex_gain(atlas, ch_pos, names, orientation, skull_conductivity)
    else:
        vertex_gain, info = _vertex_gain(atlas, ch_pos, names, orientation, skull_conductivity)
    gain = np.zeros((len(names), atlas.n_regions))
    np.add.at(gain.T, atlas.vertex_region, vertex_gain.T)
    from .utils import versions

    info.update(jitter_mm=float(jitter_mm), jitter_seed=int(jitter_seed))
    lf = Leadfield(gain=gain, ch_names=tuple(names), atlas_name=atlas.name, montage=label,
                   head_model=head_model, orientation=orientation, ch_pos=ch_pos,
                   attrs={**info, "versions": versions(), "lightbunny_leadfield_version": _VERSION})
    if use_cache:
        try:
            lf.save(path)
        except OSError as err:  # a read-only home must not stop the computation
            logger.warning("could not cache the leadfield in %s: %s", path, err)
    return lf


def _check_head_model(atlas: Atlas, head_model, skull_conductivity) -> str:
    """The head model to use (the atlas's default for None), checked with the conductivity."""
    head_model = default_head_model(atlas) if head_model is None else head_model
    check_option("head_model", head_model, HEAD_MODELS)
    if head_model == "bem" and not in_fsaverage_space(atlas):
        raise ValueError(f"head_model='bem' is the fsaverage BEM and needs an atlas on fsaverage "
                         f"(fsaverage994); atlas {atlas.name!r} has no BEM surfaces that nest "
                         "(see lightbunny.leadfield). Use head_model='sphere'.")
    if skull_conductivity is not None and not (np.isfinite(skull_conductivity)
                                               and skull_conductivity > 0):
        raise ValueError(f"skull_conductivity must be a positive value in S/m, got "
                         f"{skull_conductivity}")
    return head_model


def _cache_path(cache_dir, atlas: Atlas, label, names, ch_pos, head_model, orientation,
                skull_conductivity, jitter_mm, jitter_seed) -> Path:
    """The cache file of a leadfield: named by its settings, keyed by a hash of its inputs."""
    settings = [head_model, orientation, skull_conductivity]
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    tag = head_model if skull_conductivity is None else f"{head_model}-skull{skull_conductivity:g}"
    if jitter_mm:
        tag += f"-jitter{jitter_mm:g}mm-seed{jitter_seed}"
    key = _cache_key(atlas, names, ch_pos, *settings)
    return cache / f"{atlas.name}_{label}_{tag}_{orientation}_{key}.h5"


def _load_cached(path: Path) -> Leadfield | None:
    """The leadfield cached at ``path``, or None (absent or unreadable)."""
    if not path.is_file():
        return None
    try:
        lf = Leadfield.load(path)
        logger.info("leadfield loaded from cache %s", path)
        return lf
    except ValueError:
        logger.warning("ignoring unreadable cached leadfield %s", path)
        return None


def _deepsif_leadfield(atlas, label, names, pos, frame, orientation, data_dir) -> Leadfield:
    from .headmodel import read_deepsif_leadfield

    if label != "deepsif75" or atlas.name != "fsaverage994":
        raise ValueError(f"head_model='deepsif' is DeepSIF's published 75-channel leadfield: it "
                         f"exists only for montage 'deepsif75' on atlas 'fsaverage994' (got "
                         f"montage {label!r} on {atlas.name!r}). Use head_model='bem'.")
    gain, file_names = read_deepsif_leadfield(data_dir)
    if list(file_names) != list(names):
        raise ValueError("electrode_75.mat and leadfield_75_20k.mat disagree on channel order")
    ch_pos = place_electrodes(atlas, pos, names, frame)
    return Leadfield(gain=gain, ch_names=tuple(names), atlas_name=atlas.name, montage=label,
                     head_model="deepsif", orientation="as published", ch_pos=ch_pos,
                     attrs={"source": "DeepSIF leadfield_75_20k.mat (Clear BSD licence)",
                            "note": f"orientation {orientation!r} not applicable",
                            "lightbunny_leadfield_version": _VERSION})


def _leadfield_from_forward(atlas, forward, orientation, subjects_dir) -> Leadfield:
    import mne

    from .headmodel import forward_vertex_gain, read_forward

    forward = read_forward(forward)  # a path is read once
    vg, vertex, names, info = forward_vertex_gain(forward, atlas, orientation, subjects_dir)
    gain = np.zeros((len(names), atlas.n_regions))
    np.add.at(gain.T, atlas.vertex_region[vertex], vg.T)
    head_to_mri = mne.transforms.invert_transform(forward["mri_head_t"])
    chs = {c["ch_name"]: c for c in forward["info"]["chs"]}
    ch_pos = mne.transforms.apply_trans(head_to_mri, np.array([chs[n]["loc"][:3] for n in names]))
    covered = np.bincount(atlas.vertex_region[vertex], minlength=atlas.n_regions) > 0
    if not covered.all():
        logger.warning("%d of %d regions have no dipole of the forward; their columns are zero",
                       int((~covered).sum()), atlas.n_regions)
    info["n_regions_without_dipoles"] = int((~covered).sum())
    return Leadfield(gain=gain, ch_names=tuple(names), atlas_name=atlas.name, montage="forward",
                     head_model="forward", orientation=info["forward_orientation"],
                     ch_pos=ch_pos * 1000.0,
                     attrs={**info, "lightbunny_leadfield_version": _VERSION})


def _forward_info(names, ch_pos_mm):
    import mne

    info = mne.create_info(list(names), 1000.0, "eeg")
    montage = mne.channels.make_dig_montage(ch_pos=dict(zip(names, ch_pos_mm / 1000.0)),
                                            coord_frame="head")
    info.set_montage(montage, verbose=False)
    return info


def _solve(rr_mm, nn, names, ch_pos_mm, conductor, orientation):
    """Gain (n_chans, n_dipoles) of dipoles at ``rr_mm`` (mm) along ``nn`` (or x+y+z summed)."""
    import mne

    src = mne.setup_volume_source_space(pos={"rr": rr_mm / 1000.0, "nn": nn},
                                        sphere_units="m", verbose=False)
    trans = mne.transforms.Transform("head", "mri")  # the atlas frame is the head frame
    fwd = mne.make_forward_solution(_forward_info(names, ch_pos_mm), trans, src, conductor,
                                    meg=False, eeg=True, mindist=0.0, n_jobs=1, verbose=False)
    if fwd["nsource"] != len(rr_mm):
        raise RuntimeError(f"MNE kept {fwd['nsource']} of {len(rr_mm)} dipoles (the others lie "
                           "outside the innermost compartment)")
    g = fwd["sol"]["data"].reshape(len(names), -1, 3)
    if orientation == "normal":
        return np.einsum("cvk,vk->cv", g, nn)
    return g.sum(-1)


def _bem_conductor(skull_conductivity=None):
    from .headmodel import BEM_CONDUCTIVITY, fsaverage_bem_solution

    sigma = list(BEM_CONDUCTIVITY)
    if skull_conductivity is not None:
        sigma[1] = float(skull_conductivity)
    return fsaverage_bem_solution(tuple(sigma)), sigma


def _sphere_conductor(atlas: Atlas, skull_conductivity=None):
    """MNE's 4-shell sphere fitted to the atlas scalp: (model, centre mm, radius mm, sigmas)."""
    import mne

    verts_head, _, _ = head_surface(atlas)
    centre, radius = fit_sphere(verts_head[verts_head[:, 2] > atlas.vertices[:, 2].min()])
    sigmas = list(SPHERE_SIGMAS)
    if skull_conductivity is not None:
        sigmas[2] = float(skull_conductivity)
    sphere = mne.make_sphere_model(r0=centre / 1000.0, head_radius=radius / 1000.0,
                                   sigmas=tuple(sigmas), verbose=False)
    return sphere, centre, radius, sigmas


def dipole_gain(atlas: Atlas, rr_mm, nn, montage=DEFAULT_MONTAGE, *, head_model=None,
                skull_conductivity=None, data_dir=None):
    """Scalp potentials of point dipoles in the atlas's head (no region summing).

    Parameters
    ----------
    atlas : Atlas
    rr_mm : ndarray, shape (n_dipoles, 3), mm, atlas frame
        Inside the innermost compartment (inner skull or inner sphere shell).
    nn : ndarray, shape (n_dipoles, 3)
        Unit dipole orientations.
    montage, head_model, skull_conductivity, data_dir
        As in :func:`make_leadfield` (``head_model`` 'bem' or 'sphere').

    Returns
    -------
    gain : ndarray, shape (n_chans, n_dipoles), V/(A*m), unreferenced
    ch_names : list of str
    ch_pos : ndarray, shape (n_chans, 3), mm
    """
    head_model = default_head_model(atlas) if head_model is None else head_model
    check_option("head_model", head_model, ("bem", "sphere"))
    label, names, pos, frame = resolve_montage(montage, data_dir=data_dir)
    ch_pos = place_electrodes(atlas, pos, names, frame)
    if head_model == "bem":
        conductor = _bem_conductor(skull_conductivity)[0]
    else:
        conductor = _sphere_conductor(atlas, skull_conductivity)[0]
    rr_mm = np.atleast_2d(np.asarray(rr_mm, dtype=float))
    nn = np.atleast_2d(np.asarray(nn, dtype=float))
    nn = nn / np.linalg.norm(nn, axis=1, keepdims=True)
    return _solve(rr_mm, nn, names, ch_pos, conductor, "normal"), list(names), ch_pos


def _bem_vertex_gain(atlas: Atlas, ch_pos_mm, names, orientation, skull_conductivity=None):
    """Per-vertex gain (n_chans, n_vertices) from the fsaverage 3-layer BEM."""
    import mne

    from .headmodel import pull_inside_inner_skull

    sol, sigma = _bem_conductor(skull_conductivity)
    rr, n_moved = pull_inside_inner_skull(atlas.vertices)
    if n_moved:
        logger.info("%d of %d cortex vertices lie within 1 mm of the inner skull or outside it; "
                    "pulled inside", n_moved, len(rr))
    logger.info("BEM forward model for %d vertices x %d channels (about a minute)",
                atlas.n_vertices, len(names))
    vg = _solve(rr, atlas.normals, names, ch_pos_mm, sol, orientation)
    return vg, {"head_surface": "mne fsaverage-head", "bem": "fsaverage 3-layer (lightbunny)",
                "conductivity_S_per_m": sigma, "n_vertices_pulled_inside": n_moved,
                "mne_version": mne.__version__}


def _vertex_gain(atlas: Atlas, ch_pos_mm: np.ndarray, names, orientation: str,
                 skull_conductivity=None):
    """Per-vertex gain (n_chans, n_vertices) from an MNE sphere-model forward solution."""
    import mne

    sphere, centre, radius, sigmas = _sphere_conductor(atlas, skull_conductivity)
    _, _, head_name = head_surface(atlas)
    inner = 0.9 * radius * 0.99  # innermost shell of MNE's default radii, with a margin
    rr = atlas.vertices - centre
    dist = np.linalg.norm(rr, axis=1)
    outside = dist > inner
    rr[outside] *= (inner / dist[outside])[:, None]
    rr += centre
    if outside.any():
        logger.info("%d of %d cortex vertices lie outside the inner sphere shell; pulled inside",
                    int(outside.sum()), len(rr))
    vg = _solve(rr, atlas.normals, names, ch_pos_mm, sphere, orientation)
    return vg, {"head_surface": head_name, "sphere_centre_mm": centre.round(3).tolist(),
                "sphere_radius_mm": round(radius, 3),
                "n_vertices_pulled_inside": int(outside.sum()),
                "conductivity_S_per_m": sigmas, "mne_version": mne.__version__}


def atlas_channel_summary(atlas: Atlas) -> dict:
    """What montages an atlas supports (for ``lightbunny atlas``)."""
    _, _, head = head_surface(atlas)
    label, names, _, _ = resolve_montage(DEFAULT_MONTAGE)
    model = default_head_model(atlas)
    desc = ("3-layer fsaverage BEM (default; 'sphere' and, for deepsif75, 'deepsif' available)"
            if model == "bem" else "4-shell sphere model fitted to it (no BEM for this atlas)")
    return {"head": f"{head}; {desc}", "head_model": model,
            "montages": montage_names(), "default_montage": label, "default_n_chans": len(names)}
