"""Data from outside the package: EEG arrays from MATLAB/NumPy files, and imported leadfields.

Recordings as arrays
--------------------
:func:`read_array_recording` reads a MATLAB ``.mat`` (v5 with scipy, v7.3/HDF5 with h5py), a
NumPy ``.npy`` or ``.npz`` file holding EEG as an array, and returns one ``mne.io.RawArray`` per
segment. Such files carry neither a sampling rate nor channel names: both are given
(``sfreq``; ``ch_names`` or a ``montage`` whose channels are the rows). Layouts understood:

* 2-D ``(n_chans, n_times)`` or ``(n_times, n_chans)``: the channel axis is the one whose size
  is the number of channel names (when both are, channels first is assumed and logged);
* 3-D segments ``(n_segments, n_chans, n_times)`` (or ``(n_segments, n_times, n_chans)``, or
  the segment axis last): the channel axis is found by size as above, the segment axis is the
  first remaining axis unless that would leave fewer time samples than segments (then the last).

Values are stored as they are (MNE calls them volts): say what they are with ``units`` when
preparing (:data:`lightbunny.io.UNITS`; ``'none'`` for scale-free data).

Imported leadfields
-------------------
:func:`load_leadfield_file` turns a gain matrix computed elsewhere into a
:class:`lightbunny.leadfield.Leadfield` on an atlas:

* ``.h5`` written by :meth:`Leadfield.save` is read as it is;
* ``.mat`` / ``.npy`` / ``.npz`` arrays: the level is detected by shape, and said in the log and
  in ``attrs['level']``: ``(n_chans, n_regions)`` region level, used as is (e.g. DeepSIF's
  ``leadfield_75_20k.mat``, ``fwd`` 75 x 994); ``(n_chans, n_vertices)`` vertex level (one
  fixed-orientation dipole per atlas cortex vertex, in the atlas's vertex order), summed over
  each region's vertices; ``(n_chans, 3 * n_vertices)`` free orientation (x, y, z of each vertex
  consecutive), the three components summed per vertex (the seed's ``free_sum``) and then per
  region. A transposed matrix is recognised by the channel count;
* ``-fwd.fif``: an MNE forward solution on the atlas cortex (fsaverage5 ico-5 source space for
  fsaverage994): converted to fixed orientation along the surface normal
  (``mne.convert_forward_solution(surf_ori=True, force_fixed=True)``), its vertices
  (``src[0]['vertno']``, ``src[1]['vertno']``) placed on the atlas's left/right vertices, and
  summed per region (regions left without any vertex get a zero column, and a warning).

The regions' sum is ``gain[c, r] = sum_{v in region r} g[c, v]``, as
:func:`lightbunny.leadfield.make_leadfield` does. Channel names come from ``ch_names``, a
``montage`` (see :func:`montage_positions`; its positions are kept for interpolation and
topomaps) or, for ``-fwd.fif``, the file itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._logging import logger
from .utils import check_option

#: File endings read as EEG arrays.
ARRAY_EXTS = (".mat", ".npy", ".npz")
#: Variable names tried, in order, when a file holds several arrays.
EEG_VARIABLES = ("eeg", "data", "EEG", "x", "X", "signal", "segments")
LEADFIELD_VARIABLES = ("fwd", "leadfield", "lf", "gain", "L", "G")


def is_array_file(path) -> bool:
    """Whether ``path`` ends in one of :data:`ARRAY_EXTS`."""
    return Path(str(path)).suffix.lower() in ARRAY_EXTS


def read_array_file(path, variable: str | None = None, prefer=EEG_VARIABLES):
    """The numeric array of a ``.mat`` / ``.npy`` / ``.npz`` file, and its variable name.

    Parameters
    ----------
    path : path
    variable : str, optional
        Name of the array in a ``.mat`` / ``.npz`` file. Default: the only numeric array of at
        least two dimensions, else the first of ``prefer`` present.
    prefer : sequence of str

    Returns
    -------
    array : ndarray of float64
    name : str

    Raises
    ------
    ValueError
        No numeric array, several without a preferred name, or ``variable`` absent (the message
        lists the file's variables).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}.")
    ext = path.suffix.lower()
    check_option("array file type", ext, ARRAY_EXTS)
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"{path} holds Python objects, not a numeric array ({err}).") from None
        return _numeric(arr, path, "array"), "array"
    arrays = _read_arrays(path, ext)
    numeric = {k: v for k, v in arrays.items()
               if isinstance(v, np.ndarray) and v.dtype.kind in "iuf" and v.ndim >= 2}
    if variable is not None:
        if variable not in arrays:
            raise ValueError(f"{path} has no variable {variable!r}; it holds "
                             f"{_describe(arrays)}.")
        return _numeric(arrays[variable], path, variable), variable
    if len(numeric) == 1:
        name = next(iter(numeric))
        return _numeric(numeric[name], path, name), name
    for name in prefer:
        if name in numeric:
            return _numeric(numeric[name], path, name), name
    raise ValueError(f"{path}: cannot tell which array to read; it holds {_describe(arrays)}. "
                     f"Name one (variable=..., --variable).")


def _read_arrays(path: Path, ext: str) -> dict:
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    import scipy.io as sio

    try:
        return {k: v for k, v in sio.loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        import h5py

        out = {}
        with h5py.File(path, "r") as f:
            for k, v in f.items():
                if isinstance(v, h5py.Dataset) and v.dtype.kind in "iuf":
                    out[k] = np.asarray(v).T  # h5py reads MATLAB's column-major arrays transposed
        return out
    except ValueError as err:
        raise ValueError(f"Could not read {path} as a MATLAB file: {err}") from None


def _describe(arrays: dict) -> str:
    return ", ".join(f"{k} {getattr(v, 'shape', type(v).__name__)}" for k, v in arrays.items()) \
        or "no variables"


def _numeric(arr, path, name) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{path}: {name} is not a numeric array (dtype {arr.dtype}).")
    return arr.astype(np.float64)


def _channel_axis(shape, n_chans: int, path) -> int:
    axes = [i for i, n in enumerate(shape) if n == n_chans]
    if not axes:
        raise ValueError(f"{path}: no axis of the array (shape {tuple(shape)}) has the "
                         f"{n_chans} channels given. Check the channel list / montage.")
    if len(axes) > 1:
        logger.warning("%s: several axes of shape %s have %d entries; taking axis %d as the "
                       "channels", path, tuple(shape), n_chans, axes[0])
    return axes[0]


def array_segments(arr: np.ndarray, n_chans: int, path="array") -> np.ndarray:
    """EEG segments of shape (n_segments, n_chans, n_times) from a 2-D or 3-D array.

    See the module docstring for the layouts recognised.

    Examples
    --------
    >>> array_segments(np.zeros((500, 4)), 4).shape
    (1, 4, 500)
    >>> array_segments(np.zeros((3, 4, 500)), 4).shape
    (3, 4, 500)
    >>> array_segments(np.zeros((4, 500, 3)), 4).shape
    (3, 4, 500)
    """
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2:
        ch = _channel_axis(arr.shape, n_chans, path)
        return np.moveaxis(arr, ch, 0)[None]
    if arr.ndim != 3:
        raise ValueError(f"{path}: EEG arrays must be 2-D (channels x times) or 3-D (segments x "
                         f"channels x times), got shape {arr.shape}.")
    ch = _channel_axis(arr.shape, n_chans, path)
    rest = [i for i in range(3) if i != ch]
    seg, t = rest
    if arr.shape[seg] > arr.shape[t]:  # fewer samples than segments: segments are last
        seg, t = t, seg
    return np.transpose(arr, (seg, ch, t))


def read_array_recording(path, *, sfreq: float, ch_names=None, montage=None, data_dir=None,
                         variable: str | None = None):
    """EEG segments of a MATLAB/NumPy file as MNE raw objects.

    Parameters
    ----------
    path : path
        ``.mat``, ``.npy`` or ``.npz``.
    sfreq : float, Hz
        Sampling rate of the data (files do not store it).
    ch_names : sequence of str, optional
        The rows' channel names, in order.
    montage : str, optional
        Instead of ``ch_names``: a montage whose channels, in its order, are the rows
        (e.g. ``'deepsif75'``; see :func:`lightbunny.leadfield.resolve_montage`).
    data_dir : path, optional
        fsaverage994 data folder (for ``montage='deepsif75'``).
    variable : str, optional
        Array name in a ``.mat`` / ``.npz`` file.

    Returns
    -------
    segments : list of (str, mne.io.RawArray)
        One per segment: a label (``'name'``, or ``'name#k'`` for segment k of a 3-D array, k from
        0) and the data (n_chans, n_times), values as stored.
    """
    import mne

    if sfreq is None or not float(sfreq) > 0:
        raise ValueError(f"{path}: array files carry no sampling rate; give sfreq (--sfreq), "
                         f"got {sfreq!r}.")
    names = _names(ch_names, montage, data_dir, path)
    arr, var = read_array_file(path, variable)
    segs = array_segments(arr, len(names), path)
    logger.info("%s: %s %s read as %d segment(s) of %d channels x %d samples at %g Hz", path, var,
                arr.shape, len(segs), segs.shape[1], segs.shape[2], float(sfreq))
    info = mne.create_info(list(names), float(sfreq), "eeg")
    stem = Path(path).name
    return [(stem if len(segs) == 1 else f"{stem}#{k}",
             mne.io.RawArray(seg, info.copy(), verbose="error")) for k, seg in enumerate(segs)]


def _names(ch_names, montage, data_dir, path) -> list:
    if ch_names is not None and montage is not None:
        raise ValueError("Give the channel names or a montage, not both.")
    if ch_names is not None:
        names = [c.strip() for c in ch_names.split(",")] if isinstance(ch_names, str) \
            else [str(c) for c in ch_names]
        if len(set(names)) != len(names):
            raise ValueError(f"Duplicate channel names: {names}.")
        return names
    if montage is not None:
        from .leadfield import resolve_montage

        return list(resolve_montage(montage, data_dir=data_dir)[1])
    raise ValueError(f"{path}: array files carry no channel names; give them (--ch-names "
                     f"Fp1,Fp2,...) or a montage whose channels are the rows (--montage).")


# --------------------------------------------------------------------------------------------
# Leadfields
# --------------------------------------------------------------------------------------------


def _left_count(atlas) -> int:
    hemi = np.asarray(atlas.vertex_hemisphere)
    n_left = int((hemi == 0).sum())
    if not (hemi[:n_left] == 0).all():
        raise ValueError(f"Atlas {atlas.name!r} does not list its left-hemisphere vertices "
                         f"first; a forward solution cannot be placed on it.")
    return n_left


def region_sum(gain_vertices: np.ndarray, vertex_region: np.ndarray, n_regions: int) -> np.ndarray:
    """Sum vertex columns per region: ``out[c, r] = sum_{v: vertex_region[v] == r} g[c, v]``.

    Parameters
    ----------
    gain_vertices : ndarray, shape (n_chans, n_vertices)
    vertex_region : ndarray of int, shape (n_vertices,)
    n_regions : int

    Returns
    -------
    gain : ndarray, shape (n_chans, n_regions)

    Examples
    --------
    >>> region_sum(np.array([[1., 2., 4.]]), np.array([1, 0, 1]), 2).tolist()
    [[2.0, 5.0]]
    """
    out = np.zeros((gain_vertices.shape[0], n_regions))
    np.add.at(out.T, np.asarray(vertex_region), gain_vertices.T)
    return out


def load_leadfield_file(path, atlas, *, ch_names=None, montage=None, data_dir=None,
                        variable: str | None = None):
    """Import a leadfield file onto ``atlas`` (see the module docstring).

    Parameters
    ----------
    path : path
        ``.h5`` (package format), ``.mat`` / ``.npy`` / ``.npz`` array, or ``-fwd.fif``.
    atlas : Atlas
    ch_names, montage : optional
        Channel names of the rows (required for arrays; a montage also gives positions).
    data_dir : path, optional
        fsaverage994 data folder (for ``montage='deepsif75'``).
    variable : str, optional
        Array name in a ``.mat`` / ``.npz`` file (default: the only 2-D array, or ``fwd``,
        ``leadfield``, ...).

    Returns
    -------
    lightbunny.leadfield.Leadfield
        ``gain`` (n_chans, n_regions) in the file's unit; ``attrs['level']`` says whether the
        file was region- or vertex-level.
    """
    from .leadfield import Leadfield

    path = Path(path)
    name = path.name.lower()
    if name.endswith(".h5"):
        lf = Leadfield.load(path)
        if lf.n_regions != atlas.n_regions:
            raise ValueError(f"{path} has {lf.n_regions} regions; atlas {atlas.name!r} has "
                             f"{atlas.n_regions}.")
        return lf
    if name.endswith("-fwd.fif") or name.endswith("-fwd.fif.gz"):
        return _from_forward(path, atlas)
    if not is_array_file(path):
        raise ValueError(f"{path}: leadfield files must end in .h5, .mat, .npy, .npz or "
                         f"-fwd.fif.")
    arr, var = read_array_file(path, variable, prefer=LEADFIELD_VARIABLES)
    if arr.ndim != 2:
        raise ValueError(f"{path}: {var} has shape {arr.shape}; a leadfield is 2-D "
                         f"(channels x regions or vertices).")
    names, pos, label = _leadfield_channels(ch_names, montage, data_dir, path)
    if arr.shape[0] != len(names) and arr.shape[1] == len(names):
        arr = arr.T
    if arr.shape[0] != len(names):
        raise ValueError(f"{path}: {var} has shape {arr.shape}; neither axis has the "
                         f"{len(names)} channels given.")
    n_cols, nv, nr = arr.shape[1], atlas.n_vertices, atlas.n_regions
    if n_cols == nr:
        level, gain = "region", arr
    elif n_cols == nv:
        level, gain = "vertex", region_sum(arr, atlas.vertex_region, nr)
    elif n_cols == 3 * nv:
        level = "vertex (free orientation, x+y+z summed)"
        gain = region_sum(arr.reshape(len(names), nv, 3).sum(-1), atlas.vertex_region, nr)
    else:
        raise ValueError(f"{path}: {var} has {n_cols} columns; atlas {atlas.name!r} has "
                         f"{nr} regions and {nv} vertices (or {3 * nv} free-orientation "
                         f"columns). Is it for another atlas?")
    logger.info("%s: %s-level leadfield (%s, %d channels x %d columns) on atlas %s", path,
                level, var, arr.shape[0], n_cols, atlas.name)
    return Leadfield(gain=np.ascontiguousarray(gain), ch_names=tuple(names),
                     atlas_name=atlas.name, montage=label, head_model="imported",
                     orientation="imported", ch_pos=pos,
                     attrs={"source_file": str(path), "variable": var, "level": level,
                            "shape_in_file": list(arr.shape),
                            "units": "as in the file (unknown)",
                            "ch_pos_frame": "MNE 10-05 (fsaverage) frame, mm"})


def montage_positions(montage, data_dir=None):
    """Channel names and positions (mm, RAS: x right, y anterior) of a montage.

    Positions given in an unknown frame (EEGLAB locations such as DeepSIF's ``electrode_75.mat``,
    whose x points to the nose and y to the left ear) are mapped onto MNE's 10-05 positions by
    the similarity transform (scale, rotation, translation) that best fits the channels with
    10-05 names, so that topomaps and spline interpolation see a head the right way round.

    Returns
    -------
    label : str
    names : list of str
    pos : ndarray, shape (n_chans, 3), mm
    """
    from .leadfield import _canonical, _similarity, _standard_positions, resolve_montage

    label, names, pos, frame = resolve_montage(montage, data_dir=data_dir)
    pos = np.asarray(pos, dtype=float)
    if frame == "unknown":
        table = _standard_positions()
        lower = {k.lower(): k for k in table}
        common = [i for i, n in enumerate(names) if _canonical(str(n)).lower() in lower]
        if len(common) < 4:
            raise ValueError(f"montage {label}: only {len(common)} channels have 10-05 names; "
                             f"at least 4 are needed to orient positions given in an unknown "
                             f"frame.")
        dst = np.array([table[lower[_canonical(str(names[i])).lower()]] for i in common])
        scale, rot, shift = _similarity(pos[common], dst)
        pos = (scale * (rot @ pos.T)).T + shift
    return str(label), list(names), pos


def _leadfield_channels(ch_names, montage, data_dir, path):
    if montage is not None and ch_names is None:
        label, names, pos = montage_positions(montage, data_dir)
        return names, pos, label
    names = _names(ch_names, None, data_dir, path)
    pos = np.full((len(names), 3), np.nan)
    try:
        from .montage import channel_montage

        montage_obj, unknown = channel_montage(names, None)
        if montage_obj is not None:
            p = montage_obj.get_positions()["ch_pos"]
            pos = np.array([p[n] for n in names]) * 1000.0
    except Exception as err:  # positions are a convenience (topomaps); never fatal
        logger.debug("no positions for %s: %s", names, err)
    return names, pos, "custom"


def _from_forward(path: Path, atlas):
    import mne

    fwd = mne.read_forward_solution(path, verbose="error")
    with mne.use_log_level("error"):
        fwd = mne.pick_types_forward(fwd, meg=False, eeg=True)
    if len(fwd["src"]) == 1 and fwd["src"][0]["type"] in ("vol", "discrete"):
        return _from_discrete_forward(path, fwd, atlas)
    # a surface source space: mapped onto the atlas by the package's forward import (fsaverage
    # vertex numbers, or a subject's sphere.reg), free orientations projected on the normals
    from .leadfield import make_leadfield

    return make_leadfield(atlas, forward=fwd)


def _from_discrete_forward(path, fwd, atlas):
    """A forward on one discrete source space holding the atlas's vertices, in its order (as
    :func:`lightbunny.leadfield.make_leadfield` builds it): free-orientation dipoles projected
    on the atlas's cortical normals, then summed per region."""
    from .leadfield import Leadfield

    src = fwd["src"][0]
    n = int(fwd["nsource"])
    if n != atlas.n_vertices or src["nuse"] != atlas.n_vertices:
        raise ValueError(f"{path}: its discrete source space has {n} sources; atlas "
                         f"{atlas.name!r} has {atlas.n_vertices} vertices (one source per "
                         f"vertex, in the atlas's order, is needed).")
    names = list(fwd["info"]["ch_names"])
    data = fwd["sol"]["data"]
    if data.shape[1] == 3 * n:  # free orientation: project on the cortical normals
        g = np.einsum("cvk,vk->cv", data.reshape(len(names), n, 3), np.asarray(atlas.normals))
        level = "vertex (mne forward, free orientation projected on the atlas normals)"
    else:
        g, level = data, "vertex (mne forward, fixed orientation)"
    pos = np.array([ch["loc"][:3] for ch in fwd["info"]["chs"]]) * 1000.0
    logger.info("%s: %s, %d channels x %d vertices summed to %d regions", path, level,
                len(names), n, atlas.n_regions)
    return Leadfield(gain=region_sum(g, atlas.vertex_region, atlas.n_regions),
                     ch_names=tuple(names), atlas_name=atlas.name, montage="forward",
                     head_model="imported", orientation="normal", ch_pos=pos,
                     attrs={"source_file": str(path), "level": level, "units": "V/(A*m)",
                            "ch_pos_frame": "MNE head frame (mm)"})


__all__ = ["ARRAY_EXTS", "is_array_file", "montage_positions", "read_array_file", "array_segments",
           "read_array_recording", "region_sum", "load_leadfield_file"]
