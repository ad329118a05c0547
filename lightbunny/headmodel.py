"""Realistic head models: a 3-layer BEM of fsaverage that works offline, DeepSIF's published
leadfield, and the user's own ``mne.Forward`` mapped onto atlas regions.

The fsaverage BEM
-----------------
MNE-Python ships two fsaverage surfaces inside its package (``mne/data/fsaverage``): the head
(scalp, 2,033 vertices) and the inner skull (10,242 vertices on an icosahedron of order 5). A
3-layer EEG BEM also needs an outer skull, which MNE does not ship. We build it as follows:

1. the inner skull is reduced to an icosahedron of order 4 (2,562 vertices, 5,120 triangles,
   the resolution of MNE's standard ``5120-5120-5120`` BEMs) by keeping the vertices of the
   order-5 surface that lie on the order-4 icosahedron (the surface was made by deforming an
   icosahedron, so its vertex ``k`` sits on the direction of icosahedron vertex ``k``);
2. every inner-skull vertex is moved outward along the ray from the inner skull's centroid by a
   skull thickness ``t = min(SKULL_FRACTION * gap, MAX_SKULL_MM)``, where ``gap`` is the distance
   from the inner skull to the scalp along the same ray: half the inner-skull-to-scalp distance,
   at most 7 mm (adult skull 5-7 mm, scalp 5-7 mm). Each vertex moves outward along its own
   ray, so the outer skull encloses the inner skull and stays inside the scalp; the inner skull
   is star-shaped about its centroid except for 13 of 5,120 triangles at the skull base that
   face away from it, and the outer skull inherits exactly those 13 (tested) and folds no other;
   MNE's own topology and nesting checks pass. On fsaverage the gap is 6.2 mm at its
   thinnest (temporal), 13 mm over the vertex and up to 12 cm at the neck, so the skull is
   3.1-7 mm thick and MNE's nesting check reports at least 2.3 mm between skull surfaces.
3. conductivities (brain, skull, scalp) = 0.3, 0.006, 0.3 S/m (MNE's defaults, a 1:50 ratio);
   the solution (MNE's linear collocation with the isolated-problem approach) takes about two
   minutes on a 2-core CPU and is cached as a ``-bem-sol.fif`` file.

Cortex vertices that lie outside the inner skull (or within ``INNER_MARGIN_MM`` of it) are
pulled radially to that margin and counted in the leadfield's attributes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ._logging import logger

#: Brain, skull and scalp conductivities (S/m) of the fsaverage BEM (MNE's defaults).
BEM_CONDUCTIVITY = (0.3, 0.006, 0.3)
SKULL_FRACTION = 0.5
MAX_SKULL_MM = 7.0
INNER_MARGIN_MM = 1.0
#: Fewest good EEG channels accepted in a user's forward model.
MIN_FORWARD_CHANNELS = 4
_BEM_VERSION = 1


def _mne_fsaverage_dir() -> Path:
    import mne

    return Path(mne.__file__).parent / "data" / "fsaverage"


def _ray_distance(origin: np.ndarray, dirs: np.ndarray, verts: np.ndarray, tris: np.ndarray):
    from .leadfield import _ray_mesh

    hit = _ray_mesh(origin, dirs, verts, tris)
    return np.linalg.norm(hit - origin, axis=1)


def fsaverage_bem_surfaces(skull_fraction: float = SKULL_FRACTION,
                           max_skull_mm: float = MAX_SKULL_MM) -> dict:
    """The three fsaverage BEM surfaces (mm, fsaverage MRI frame = surface RAS).

    Parameters
    ----------
    skull_fraction : float
        Skull thickness as a fraction of the inner-skull-to-scalp distance, in (0, 1).
    max_skull_mm : float
        Largest skull thickness, mm.

    Returns
    -------
    dict
        ``{'inner_skull': (rr, tris), 'outer_skull': (rr, tris), 'outer_skin': (rr, tris)}``
        with ``rr`` of shape (n_vertices, 3) in mm and ``tris`` of shape (n_triangles, 3), plus
        ``'centre'`` (3,), the inner skull's centroid, and ``'skull_mm'`` (2562,), the thickness
        of the skull at each vertex.
    """
    import mne
    from scipy.spatial import cKDTree

    if not 0 < skull_fraction < 1:
        raise ValueError(f"skull_fraction must lie in (0, 1), got {skull_fraction}")
    if max_skull_mm <= 0:
        raise ValueError(f"max_skull_mm must be positive, got {max_skull_mm}")
    root = _mne_fsaverage_dir()
    head = mne.read_bem_surfaces(root / "fsaverage-head.fif", verbose=False)[0]
    inner = mne.read_bem_surfaces(root / "fsaverage-inner_skull-bem.fif", verbose=False)[0]
    ico4 = mne.surface._get_ico_surface(4)
    ico5 = mne.surface._get_ico_surface(5)
    if len(inner["rr"]) != len(ico5["rr"]) or not np.array_equal(inner["tris"], ico5["tris"]):
        raise RuntimeError("MNE's fsaverage inner skull is no longer an order-5 icosahedron; "
                           "the BEM construction needs updating")
    dist, keep = cKDTree(ico5["rr"]).query(ico4["rr"])
    if dist.max() > 1e-3:
        raise RuntimeError("the order-4 icosahedron is not a subset of the order-5 one")
    inner_rr = inner["rr"][keep] * 1000.0
    tris = ico4["tris"].astype(np.int64)
    centre = inner_rr.mean(0)
    dirs = inner_rr - centre
    r_inner = np.linalg.norm(dirs, axis=1)
    dirs /= r_inner[:, None]
    head_rr = head["rr"] * 1000.0
    head_tris = head["tris"].astype(np.int64)
    gap = _ray_distance(centre, dirs, head_rr, head_tris) - r_inner
    if not np.isfinite(gap).all() or gap.min() <= 0:
        raise RuntimeError("the inner skull is not inside MNE's fsaverage head surface")
    skull = np.minimum(skull_fraction * gap, max_skull_mm)
    outer_rr = centre + dirs * (r_inner + skull)[:, None]
    return {"inner_skull": (inner_rr, tris), "outer_skull": (outer_rr, tris.copy()),
            "outer_skin": (head_rr, head_tris), "centre": centre, "skull_mm": skull}


def _default_bem_dir() -> Path:
    return Path(os.environ.get("LIGHTBUNNY_CACHE") or Path.home() / ".cache" / "lightbunny") / "bem"


def fsaverage_bem_solution(conductivity=BEM_CONDUCTIVITY, *, cache_dir=None,
                           use_cache: bool = True):
    """MNE BEM solution of the 3-layer fsaverage head (built once, then read from the cache).

    Parameters
    ----------
    conductivity : tuple of 3 float
        Brain, skull and scalp conductivity, S/m.
    cache_dir : path, optional
        Default ``$LIGHTBUNNY_CACHE/bem`` or ``~/.cache/lightbunny/bem``.
    use_cache : bool

    Returns
    -------
    mne.bem.ConductorModel
    """
    import mne

    conductivity = tuple(float(c) for c in conductivity)
    if len(conductivity) != 3 or min(conductivity) <= 0 or not np.isfinite(conductivity).all():
        raise ValueError(f"conductivity must be three positive values (brain, skull, scalp) in "
                         f"S/m, got {conductivity}")
    key = hashlib.sha256(json.dumps([conductivity, SKULL_FRACTION, MAX_SKULL_MM, _BEM_VERSION,
                                     mne.__version__.split(".")[:2]]).encode()).hexdigest()[:12]
    cache = Path(cache_dir) if cache_dir is not None else _default_bem_dir()
    path = cache / f"fsaverage-5120-5120-2033-{key}-bem-sol.fif"
    if use_cache and path.is_file():
        try:
            return mne.read_bem_solution(path, verbose=False)
        except Exception as err:  # noqa: BLE001 - a corrupt cache file is rebuilt
            logger.warning("ignoring unreadable cached BEM %s (%s)", path, err)
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    with tqdm(total=3, desc="fsaverage BEM (once, ~2 min)", unit="step") as bar:
        surfs = fsaverage_bem_surfaces()
        with tempfile.TemporaryDirectory() as subjects_dir:
            bem_dir = Path(subjects_dir) / "fsaverage_lb" / "bem"
            bem_dir.mkdir(parents=True)
            for name in ("inner_skull", "outer_skull", "outer_skin"):
                rr, tris = surfs[name]
                mne.write_surface(str(bem_dir / f"{name}.surf"), rr, tris, overwrite=True)
            bar.update()
            model = mne.make_bem_model("fsaverage_lb", ico=None, conductivity=conductivity,
                                       subjects_dir=subjects_dir, verbose=False)
        bar.update()
        sol = mne.make_bem_solution(model, verbose=False)
        bar.update()
    logger.info("fsaverage BEM solved in %.0f s", time.perf_counter() - t0)
    if use_cache:
        from .utils import atomic_path

        try:
            with atomic_path(path, suffix="-bem-sol.fif") as tmp:
                mne.write_bem_solution(tmp, sol, overwrite=True, verbose=False)
        except OSError as err:
            logger.warning("could not cache the BEM in %s: %s", path, err)
    return sol


def pull_inside_inner_skull(vertices: np.ndarray, margin_mm: float = INNER_MARGIN_MM):
    """Move points outside the fsaverage inner skull (or within ``margin_mm`` of it) radially
    to ``margin_mm`` inside it.

    Parameters
    ----------
    vertices : ndarray, shape (n, 3), mm

    Returns
    -------
    moved : ndarray, shape (n, 3), mm
    n_moved : int
    """
    surfs = fsaverage_bem_surfaces()
    rr, tris = surfs["inner_skull"]
    centre = surfs["centre"]
    d = vertices - centre
    r = np.linalg.norm(d, axis=1)
    r_min = np.linalg.norm(rr - centre, axis=1).min()
    near = np.flatnonzero(r > r_min - margin_mm - 1.0)
    moved = vertices.copy()
    if len(near) == 0:
        return moved, 0
    dirs = d[near] / r[near, None]
    r_skull = _ray_distance(centre, dirs, rr, tris)
    out = r[near] > r_skull - margin_mm
    idx = near[out]
    moved[idx] = centre + dirs[out] * (r_skull[out] - margin_mm)[:, None]
    return moved, int(out.sum())


# --------------------------------------------------------------------------------------------
# EEGLAB positions in the head frame
# --------------------------------------------------------------------------------------------


def eeglab_to_fsaverage(pos: np.ndarray) -> np.ndarray:
    """EEGLAB ``chanlocs`` X/Y/Z (mm; X to the nose, Y to the left ear, Z up, origin at the head
    centre) to fsaverage MRI coordinates (mm, RAS).

    EEGLAB's frame is MNE's head frame with the axes renamed (head x = -Y, y = X, z = Z), which is
    how MNE reads EEGLAB files; MNE's bundled ``fsaverage-trans.fif`` then moves head to MRI.
    """
    import mne

    from .leadfield import _fsaverage_trans

    pos = np.asarray(pos, dtype=float)
    head = np.c_[-pos[:, 1], pos[:, 0], pos[:, 2]] / 1000.0
    return mne.transforms.apply_trans(_fsaverage_trans(), head) * 1000.0


# --------------------------------------------------------------------------------------------
# DeepSIF's published leadfield
# --------------------------------------------------------------------------------------------


def read_deepsif_leadfield(data_dir=None):
    """DeepSIF's 75-channel region leadfield (``leadfield_75_20k.mat``) and its channel names.

    Rows follow the channels of ``electrode_75.mat`` (checked in ``bench/bench_leadfield.py``:
    every row correlates best with the package's own leadfield of the same electrode).

    Returns
    -------
    gain : ndarray, shape (75, 994)
        As published (DeepSIF's BEM; units as in the file).
    ch_names : list of str
    """
    import scipy.io as sio

    from .atlas import check_data_dir
    from .leadfield import read_eeglab_locations

    root = check_data_dir(data_dir, files=("leadfield_75_20k.mat", "electrode_75.mat"))
    gain = np.asarray(sio.loadmat(root / "leadfield_75_20k.mat")["fwd"], dtype=float)
    names, _ = read_eeglab_locations(root / "electrode_75.mat", "eloc75")
    if gain.shape != (len(names), 994):
        raise ValueError(f"{root / 'leadfield_75_20k.mat'} holds a {gain.shape} leadfield; "
                         f"expected ({len(names)}, 994)")
    return gain, names


# --------------------------------------------------------------------------------------------
# The user's own mne.Forward
# --------------------------------------------------------------------------------------------


def _fsaverage5_sphere_index(vertno: np.ndarray) -> np.ndarray:
    """fsaverage vertex numbers -> fsaverage5 vertex numbers (nearest on the registration sphere).

    fsaverage's surfaces are icosahedra of order 7 in FreeSurfer's vertex order, so vertex ``k``
    lies on the direction of icosahedron vertex ``k``; fsaverage5 keeps the first 10,242.
    """
    import mne
    from scipy.spatial import cKDTree

    vertno = np.asarray(vertno, dtype=np.int64)
    out = vertno.copy()
    big = vertno >= 10242
    if big.any():
        grade = 7 if vertno.max() >= 40962 else 6
        ico = mne.surface._get_ico_surface(grade)
        ico5 = mne.surface._get_ico_surface(5)
        out[big] = cKDTree(ico5["rr"]).query(ico["rr"][vertno[big]])[1]
    return out


def _sphere_reg_index(subjects_dir, subject: str, hemi: str, vertno: np.ndarray) -> np.ndarray:
    """Vertices of ``subject`` -> nearest fsaverage5 vertex on FreeSurfer's sphere.reg."""
    import nibabel as nib
    from scipy.spatial import cKDTree

    surf = Path(subjects_dir)
    subj = nib.freesurfer.read_geometry(surf / subject / "surf" / f"{hemi}.sphere.reg")[0]
    fsavg = nib.freesurfer.read_geometry(surf / "fsaverage" / "surf" / f"{hemi}.sphere.reg")[0]
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return cKDTree(unit(fsavg[:10242])).query(unit(subj[vertno]))[1]


def read_forward(forward):
    """``forward`` itself if it is an ``mne.Forward``, else the forward read from that path.

    Raises
    ------
    FileNotFoundError
        No file at the path.
    ValueError
        A file MNE cannot read as a forward solution, or neither a path nor a Forward.
    """
    import mne

    if isinstance(forward, (str, os.PathLike)):
        path = Path(forward)
        if not path.is_file():
            raise FileNotFoundError(f"No forward solution file at {path}")
        try:
            forward = mne.read_forward_solution(path, verbose=False)
        except Exception as err:  # noqa: BLE001 - any unreadable file is a user error
            raise ValueError(f"{path} is not a readable MNE forward solution ({err})") from err
    if not isinstance(forward, mne.Forward):
        raise ValueError(f"forward must be an mne.Forward or a -fwd.fif path, got "
                         f"{type(forward).__name__}")
    return forward


def forward_vertex_gain(forward, atlas, orientation: str = "normal", subjects_dir=None):
    """Map an ``mne.Forward`` (EEG, surface source space) onto the atlas's cortex vertices.

    Parameters
    ----------
    forward : mne.Forward | path
        Fixed or free orientation, EEG channels, a surface source space (two hemispheres) on
        fsaverage or, with ``subjects_dir``, on any FreeSurfer subject.
    atlas : Atlas
        An atlas on the fsaverage5 cortex (left hemisphere first).
    orientation : {'normal', 'free_sum'}
        For a free-orientation forward: project onto the template's cortical normal, or sum
        x+y+z. A fixed-orientation forward keeps its own orientation.
    subjects_dir : path, optional
        For a forward on an individual subject: the FreeSurfer subjects folder holding that
        subject and ``fsaverage`` (their ``surf/?h.sphere.reg``), to map dipoles through the
        spherical registration.

    Returns
    -------
    gain : ndarray, shape (n_chans, n_vertices_used)
    atlas_vertex : ndarray of int, shape (n_vertices_used,)
        The atlas vertex of each column (several dipoles may share one vertex).
    ch_names : list of str
    info : dict
        How the mapping was done.
    """
    import mne

    forward = read_forward(forward)
    src = forward["src"]
    kinds = [s["type"] for s in src]
    if kinds != ["surf", "surf"]:
        raise ValueError(f"The forward's source space is {'+'.join(kinds)}; a surface source "
                         "space with two hemispheres (lh, rh) is needed to map dipoles onto "
                         "cortical regions (volume and discrete source spaces are not supported)")
    if len(mne.pick_types(forward["info"], meg=False, eeg=True, exclude=[])) == 0:
        raise ValueError("The forward has no EEG channels (an MEG-only forward cannot make an "
                         "EEG leadfield); compute it with eeg=True")
    eeg = mne.pick_types(forward["info"], meg=False, eeg=True, exclude="bads")
    if len(eeg) < MIN_FORWARD_CHANNELS:
        raise ValueError(f"The forward has {len(eeg)} good EEG channels (bads: "
                         f"{forward['info']['bads']}); at least {MIN_FORWARD_CHANNELS} are needed")
    if atlas.n_vertices != 20484:
        raise ValueError(f"Atlas {atlas.name!r} is not on the fsaverage5 cortex (20,484 vertices); "
                         "an mne.Forward can be mapped only onto fsaverage994")
    ch_names = [forward["info"]["ch_names"][i] for i in eeg]
    subject = src._subject if hasattr(src, "_subject") else src[0].get("subject_his_id")
    n_dir = 1 if forward["source_ori"] == mne.io.constants.FIFF.FIFFV_MNE_FIXED_ORI else 3
    data = forward["sol"]["data"]
    row = {n: i for i, n in enumerate(forward["sol"]["row_names"])}
    data = data[[row[n] for n in ch_names]]
    columns, atlas_vertex = [], []
    start = 0
    for h, s in enumerate(src):
        vertno = s["vertno"]
        block = data[:, start * n_dir:(start + len(vertno)) * n_dir]
        start += len(vertno)
        if subject == "fsaverage":
            idx = _fsaverage5_sphere_index(vertno)
            how = "fsaverage vertex numbers (icosahedral order)"
        elif subjects_dir is not None:
            idx = _sphere_reg_index(subjects_dir, subject, ("lh", "rh")[h], vertno)
            how = f"FreeSurfer sphere.reg of {subject!r} to fsaverage"
        else:
            raise ValueError(f"The forward is on subject {subject!r}, not fsaverage: give "
                             "subjects_dir (holding that subject and fsaverage with their "
                             "surf/?h.sphere.reg) to map its dipoles onto the template")
        atlas_idx = idx + h * 10242
        if n_dir == 3:
            g = block.reshape(len(ch_names), len(vertno), 3)
            if orientation == "normal":
                nn = atlas.normals[atlas_idx]
                if forward["coord_frame"] == mne.io.constants.FIFF.FIFFV_COORD_HEAD:
                    # the forward's x/y/z columns are head-frame axes: rotate the normals
                    nn = mne.transforms.apply_trans(forward["mri_head_t"], nn, move=False)
                g = np.einsum("cvk,vk->cv", g, nn)
            else:
                g = g.sum(-1)
        else:
            g = block
        columns.append(g)
        atlas_vertex.append(atlas_idx)
    gain = np.concatenate(columns, axis=1)
    atlas_vertex = np.concatenate(atlas_vertex)
    info = {"forward_subject": str(subject), "forward_mapping": how,
            "forward_n_dipoles": int(len(atlas_vertex)),
            "forward_orientation": "fixed" if n_dir == 1 else f"free ({orientation})",
            "forward_bads_excluded": list(forward["info"]["bads"])}
    return gain, atlas_vertex, ch_names, info
